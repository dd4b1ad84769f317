"""Serialized caching: whose turn it is to fill a cache key."""

from flyte._core import cache_done, cache_ticket, cache_turn, cache_turn_blocking

__all__ = ["cache_done", "cache_ticket", "cache_turn", "cache_turn_blocking"]
