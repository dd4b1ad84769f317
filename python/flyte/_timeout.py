"""How long an action may take.

``max_runtime`` bounds each attempt (it starts again with every retry); ``max_queued_time``
bounds how long each attempt may wait to start; ``deadline`` bounds the whole action, from
being queued to its end over all attempts, and ends it TIMED_OUT whatever retries are left.
An unset or zero bound is no bound. A bare number of seconds or a timedelta given as a
task's ``timeout`` is its ``max_runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Union


@dataclass
class Timeout:
    max_runtime: timedelta | int | None = None
    max_queued_time: timedelta | int | None = None
    deadline: timedelta | int | None = None

    def __post_init__(self) -> None:
        for field in ("max_runtime", "max_queued_time", "deadline"):
            seconds_of(getattr(self, field), f"Timeout.{field}")


TimeoutType = Union[Timeout, int, timedelta]


def seconds_of(value: timedelta | int | float | None, what: str) -> float | None:
    """A bound in seconds; None for no bound (unset or zero)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{what} must be seconds or a timedelta, got {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be seconds or a timedelta, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return seconds or None


def timeout_from_request(timeout: TimeoutType | float | None) -> Timeout | None:
    """A task's ``timeout=`` as a Timeout, or None when it sets no bound."""
    if timeout is None:
        return None
    if isinstance(timeout, Timeout):
        result = timeout
    elif isinstance(timeout, int | float | timedelta) and not isinstance(timeout, bool):
        result = Timeout(
            max_runtime=timeout if not isinstance(timeout, float) else timedelta(seconds=timeout)
        )
    else:
        raise ValueError(f"timeout must be a flyte.Timeout, seconds or a timedelta, got {timeout!r}")
    if all(seconds_of(getattr(result, f), f) is None for f in ("max_runtime", "max_queued_time", "deadline")):
        return None
    return result
