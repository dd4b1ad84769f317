"""Request metadata a caller hands down to the backend, for setups where a proxy in front of
the backend authenticates (``flyte.init_passthrough``): the proxy reads these headers."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

_metadata: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "flyte_auth_metadata", default=()
)


@contextmanager
def auth_metadata(*kv: tuple[str, str]) -> Iterator[None]:
    """Sends these ``(key, value)`` pairs as request metadata (gRPC headers) with every backend
    call made inside the block, in addition to any given by an enclosing block."""
    if not kv:
        raise ValueError("auth_metadata needs at least one (key, value) pair")
    for pair in kv:
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise TypeError(f"auth_metadata takes (key, value) string pairs, got {pair!r}")
        key = pair[0]
        if not key or key != key.lower() or any(c.isspace() for c in key):
            raise ValueError(f"auth_metadata: {key!r} is not a metadata key (lower case, no spaces)")
    token = _metadata.set(_metadata.get() + tuple(kv))
    try:
        yield
    finally:
        _metadata.reset(token)


def current_auth_metadata() -> tuple[tuple[str, str], ...]:
    """The pairs ``auth_metadata`` blocks around the caller give."""
    return _metadata.get()
