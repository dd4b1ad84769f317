"""The clock, recorded: each reading is a traced call, replayed on recovery."""

from __future__ import annotations

import inspect
import time as _clock
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from flyte._trace import trace

T = TypeVar("T")


@trace
def durable_clock() -> float:
    return _clock.time()


@trace
async def durable_clock_async() -> float:
    return _clock.time()


@trace
def durable_deadline(seconds: float) -> float:
    return _clock.time() + seconds


@trace
async def durable_deadline_async(seconds: float) -> float:
    return _clock.time() + seconds


class _SyncAndAsync(Generic[T]):
    """A function with a sync form (call it) and an async one (``.aio``), each recording
    through the trace of its own kind."""

    def __init__(self, sync: Callable[..., T], async_: Callable[..., Awaitable[T]], doc: str) -> None:
        self._sync = sync
        self._async = async_
        self.__doc__ = doc
        self.__signature__ = inspect.signature(sync)

    def __call__(self, *args: Any) -> T:
        return self._sync(*args)

    def aio(self, *args: Any) -> Awaitable[T]:
        return self._async(*args)


def _check_seconds(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"flyte.durable.sleep: seconds must be a non-negative number, got {seconds!r}")
    return float(seconds)


def _sleep(seconds: float) -> None:
    deadline = durable_deadline(_check_seconds(seconds))
    _clock.sleep(max(0.0, deadline - _clock.time()))


async def _sleep_async(seconds: float) -> None:
    import asyncio

    deadline = await durable_deadline_async(_check_seconds(seconds))
    await asyncio.sleep(max(0.0, deadline - _clock.time()))


def _now() -> datetime:
    return datetime.fromtimestamp(durable_clock(), tz=timezone.utc)


async def _now_async() -> datetime:
    return datetime.fromtimestamp(await durable_clock_async(), tz=timezone.utc)


time: _SyncAndAsync[float] = _SyncAndAsync(
    durable_clock, durable_clock_async, "Seconds since the epoch, as first read (replayed on recovery)."
)
now: _SyncAndAsync[datetime] = _SyncAndAsync(
    _now, _now_async, "The current time (UTC, aware), as first read (replayed on recovery)."
)
sleep: _SyncAndAsync[None] = _SyncAndAsync(
    _sleep,
    _sleep_async,
    "Sleeps until ``seconds`` after the first attempt asked to (a recovered task sleeps what is left).",
)
