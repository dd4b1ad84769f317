"""Time that survives a crash: inside a task, ``time()``, ``now()`` and the deadline of
``sleep()`` are recorded as traces, so a recovered task sees the values its first attempt saw
and sleeps only what is left. Outside a task they are the plain clock.

``flyte.durable.sleep(60)`` in sync code, ``await flyte.durable.sleep.aio(60)`` in async code.
"""

from __future__ import annotations

from flyte.durable._time import now, sleep, time

__all__ = ["now", "sleep", "time"]
