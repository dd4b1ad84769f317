"""Keeping a pool of warm containers that run many task invocations each."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Tuple, Union

TTL = Union[int, float, timedelta]


def _check_count(label: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{label} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{label} must be at least {minimum}")
    return value


def _to_ttl(field_name: str, value: object) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        ttl = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        ttl = timedelta(seconds=value)
    else:
        raise TypeError(
            f"ReusePolicy({field_name}={value!r}) must be seconds or a timedelta, "
            f"e.g. {field_name}=300 or {field_name}=timedelta(minutes=5)"
        )
    if ttl <= timedelta(0):
        raise ValueError(f"ReusePolicy({field_name}={value!r}) must be positive")
    return ttl


@dataclass(frozen=True)
class ReusePolicy:
    """Run a task environment in long-lived containers instead of one container per invocation.

    ``replicas`` is a fixed count or a ``(min, max)`` autoscaling range. ``concurrency`` is how many
    invocations one replica runs at once (more than 1 only helps async tasks). ``idle_ttl`` shuts the
    whole pool down after that much idleness; ``scaledown_ttl`` is how long a single idle replica is kept
    while scaling down. Both take seconds or a ``timedelta`` (30 seconds by default) and are stored as
    ``timedelta``; None keeps a pool (or a replica) until the backend stops. ``scope="run"`` gives
    every run its own pool instead of one pool shared by all runs (``"global"``).
    """

    replicas: int | Tuple[int, int] = 2
    idle_ttl: TTL | None = 30
    concurrency: int = 1
    scaledown_ttl: TTL | None = 30
    scope: Literal["global", "run"] = "global"

    def __post_init__(self) -> None:
        replicas = self.replicas
        if isinstance(replicas, (tuple, list)):
            if len(replicas) != 2:
                raise ValueError(
                    f"ReusePolicy(replicas={replicas!r}) must be a count or a (min, max) pair, e.g. replicas=(1, 4)"
                )
            low = _check_count(f"ReusePolicy(replicas={replicas!r}) min", replicas[0], 0)
            high = _check_count(f"ReusePolicy(replicas={replicas!r}) max", replicas[1], 1)
            if low > high:
                raise ValueError(f"ReusePolicy(replicas={replicas!r}): min must not exceed max")
            object.__setattr__(self, "replicas", (low, high))
        else:
            try:
                _check_count(f"ReusePolicy(replicas={replicas!r})", replicas, 1)
            except TypeError:
                raise TypeError(
                    f"ReusePolicy(replicas={replicas!r}) must be an int or a (min, max) pair, e.g. replicas=2"
                ) from None
        _check_count(f"ReusePolicy(concurrency={self.concurrency!r})", self.concurrency, 1)
        if self.scope not in ("global", "run"):
            raise ValueError(f"ReusePolicy(scope={self.scope!r}) must be 'global' or 'run'")
        object.__setattr__(self, "idle_ttl", _to_ttl("idle_ttl", self.idle_ttl))
        object.__setattr__(self, "scaledown_ttl", _to_ttl("scaledown_ttl", self.scaledown_ttl))

    @property
    def min_replicas(self) -> int:
        return self.replicas[0] if isinstance(self.replicas, tuple) else self.replicas

    @property
    def max_replicas(self) -> int:
        return self.replicas[1] if isinstance(self.replicas, tuple) else self.replicas

    def get_scaledown_ttl(self) -> timedelta | None:
        """How long an idle replica is kept while the pool scales down (None: until it stops)."""
        return self.scaledown_ttl  # type: ignore[return-value]  # made a timedelta in __post_init__

    @property
    def capacity(self) -> int:
        """How many invocations the pool can run at once when fully scaled up."""
        return self.max_replicas * self.concurrency


__all__ = ["ReusePolicy"]
