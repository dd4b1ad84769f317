"""A parent that dies (SIGKILL) on its first attempt, after it started children."""

from __future__ import annotations

import asyncio
import os
import signal

from counters import bump, count

import flyte

env = flyte.TaskEnvironment(name="recovery")


@env.task
async def child(i: int) -> int:
    bump(f"child-{i}")
    return i * 10


@env.task
async def slow_child(i: int) -> int:
    bump(f"slow-{i}")
    await asyncio.sleep(4)
    return i


@flyte.trace
async def traced(x: int) -> int:
    bump("trace")
    return x + 1


@env.task
async def parent(n: int) -> int:
    attempt = bump("parent")
    done = await asyncio.gather(*[child(i) for i in range(n)])
    t = await traced(sum(done))
    slow = asyncio.ensure_future(slow_child(1))
    # Let the slow child be enqueued and start before the crash.
    while count("slow-1") == 0:
        await asyncio.sleep(0.05)
    if attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return t + await slow
