"""Signing in to a backend: API keys."""

from flyte._core import decode_api_key

__all__ = ["decode_api_key"]
