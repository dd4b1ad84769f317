"""Fresh names for runs (and actions given no deterministic name)."""

from __future__ import annotations

import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def generate_random_name() -> str:
    """A fresh run name, as the SDK names runs that are not given one: ``r`` and 19 random
    lower-case letters and digits (a valid name on any cluster)."""
    return "r" + "".join(secrets.choice(_ALPHABET) for _ in range(19))
