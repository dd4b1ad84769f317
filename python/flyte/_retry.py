"""How a task's failed attempts are tried again: how many times, and how far apart.

The rules themselves (who may retry, the delay formula, the deadline) live in the Rust core,
which both local mode and the backend follow; this module only describes a task's wishes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).


@dataclass(frozen=True)
class Backoff:
    """Waits between a task's own retries: the n-th retry (0-based) starts
    ``min(base * factor**n, cap)`` after the failure.

    ``factor=1.0`` waits ``base`` every time; a ``factor`` above 1 needs a ``cap``.
    """

    base: timedelta
    factor: float = 1.0
    cap: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.base, timedelta):
            raise TypeError(f"Backoff.base must be a timedelta, got {type(self.base).__name__}")
        if self.base < timedelta(0):
            raise ValueError(f"Backoff.base must be >= 0, got {self.base}")
        factor: Any = self.factor
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not math.isfinite(factor):
            raise ValueError(f"Backoff.factor must be a finite number, got {factor!r}")
        if self.cap is not None:
            if not isinstance(self.cap, timedelta):
                raise TypeError(f"Backoff.cap must be a timedelta or None, got {type(self.cap).__name__}")
            if self.cap < timedelta(0):
                raise ValueError(f"Backoff.cap must be >= 0, got {self.cap}")
        # The remaining rules (factor >= 1, a cap when the delay grows) are the core's.
        self.compute_delay(0)

    def compute_delay(self, n: int) -> timedelta:
        """The wait before retry ``n`` (0-based), as local mode and the backend apply it."""
        from flyte._bridge import policy

        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"the retry index must be an int >= 0, got {n!r}")
        cap = None if self.cap is None else self.cap.total_seconds()
        try:
            seconds = policy.backoff_delay(self.base.total_seconds(), float(self.factor), cap, n)
        except ValueError as e:
            raise ValueError(f"Backoff: {e}") from None
        return timedelta(seconds=seconds)


@dataclass
class RetryStrategy:
    """A task's retries: ``count`` more attempts after a failure of its own, ``backoff``
    apart (back to back without one). A task that raises
    :class:`flyte.errors.NonRecoverableError` is not retried."""

    count: int
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ValueError(f"RetryStrategy.count must be an int (a retry count), got {self.count!r}")
        if self.count < 0:
            raise ValueError(f"RetryStrategy.count must be greater than or equal to 0, got {self.count}")
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise TypeError(
                f"RetryStrategy.backoff must be a flyte.Backoff, got {type(self.backoff).__name__}"
            )


def normalize_retries(retries: int | RetryStrategy | None) -> RetryStrategy:
    """``retries=`` of a task as a RetryStrategy (an int is a count)."""
    if retries is None:
        return RetryStrategy(count=0)
    if isinstance(retries, RetryStrategy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise ValueError(f"retries must be an int (a retry count) or a flyte.RetryStrategy, got {retries!r}")
    return RetryStrategy(count=retries)
