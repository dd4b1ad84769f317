"""Workflows on reusable workers (`ReusePolicy`), for test_reuse.py."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from counters import bump, count

import flyte

# One process per action: the drivers, so that only the tasks under test share workers.
driver = flyte.TaskEnvironment("reuse_driver")
pool = flyte.TaskEnvironment(
    "reuse_pool", reusable=flyte.ReusePolicy(replicas=2, concurrency=4, idle_ttl=300)
)
single = flyte.TaskEnvironment(
    "reuse_single", reusable=flyte.ReusePolicy(replicas=1, concurrency=2, idle_ttl=300)
)
short = flyte.TaskEnvironment(
    "reuse_short", reusable=flyte.ReusePolicy(replicas=1, idle_ttl=1, scaledown_ttl=1)
)
capped = flyte.TaskEnvironment(
    "reuse_capped",
    reusable=flyte.ReusePolicy(replicas=1, concurrency=2, idle_ttl=300),
    resources=flyte.Resources(memory="300Mi"),
)

Span = tuple[int, float, float]


@pool.task
async def nap(i: int) -> Span:
    start = time.time()
    print(f"nap {i} runs")
    await asyncio.sleep(0.5)
    return os.getpid(), start, time.time()


@pool.task
def doze(i: int) -> Span:
    start = time.time()
    print(f"doze {i} runs")
    time.sleep(0.5)
    return os.getpid(), start, time.time()


@driver.task
async def fan(n: int, sync: bool) -> list[Span]:
    if sync:
        return list(await asyncio.gather(*(doze.aio(i) for i in range(n))))
    return list(await asyncio.gather(*(nap(i) for i in range(n))))


@short.task
async def whoami() -> int:
    return os.getpid()


@single.task
async def quick() -> int:
    bump("quick")
    return os.getpid()


@single.task
async def sleeper(pidfile: str) -> int:
    bump("sleeper")
    if count("sleeper") == 1:
        Path(pidfile).write_text(str(os.getpid()))
        await asyncio.sleep(600)
    return os.getpid()


@driver.task
async def survive(pidfile: str) -> tuple[int, int]:
    first = await quick()
    return first, await sleeper(pidfile)


@single.task(timeout=1)
async def overslept() -> int:
    await asyncio.sleep(600)
    return 0


@single.task(timeout=1)
def overslept_sync() -> int:
    time.sleep(30)
    return 0


@driver.task
async def time_out(sync: bool) -> tuple[str, int, int]:
    before = await quick()
    try:
        await (overslept_sync.aio() if sync else overslept())
        kind = "no error"
    except flyte.errors.TaskTimeoutError as e:
        kind = type(e).__name__
    return kind, before, await quick()


@capped.task
async def hog(mib: int) -> int:
    block = b"x" * (mib * 1024 * 1024)
    await asyncio.sleep(5)
    return len(block)


@driver.task
async def overeat() -> str:
    try:
        await hog(600)
    except flyte.errors.OOMError as e:
        return f"OOMError: {e}"
    return "no error"
