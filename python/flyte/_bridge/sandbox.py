"""A fork server's child narrowing what it sees of the backend's data dir to what its attempt
may reach (its run, its work dir, what its launch names), in namespaces of its own."""

from __future__ import annotations

from flyte._core import enter_view

__all__ = ["enter_view"]
