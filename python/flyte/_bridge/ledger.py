"""A run's actions: their names (hashes of the calls), their record, and cache keys."""

from flyte._core import (
    ROOT_ACTION,
    ActionRecord,
    Ledger,
    action_name,
    cache_key,
    is_success,
    is_terminal,
    sha256_hex,
)

__all__ = [
    "ROOT_ACTION",
    "ActionRecord",
    "Ledger",
    "action_name",
    "cache_key",
    "is_success",
    "is_terminal",
    "sha256_hex",
]
