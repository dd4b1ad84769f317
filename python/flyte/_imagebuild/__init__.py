"""Turning Image descriptions into built, pushed container images."""
