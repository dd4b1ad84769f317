"""Machinery shared by the execution modes (local, in an action process on a backend)."""
