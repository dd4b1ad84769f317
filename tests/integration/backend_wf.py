"""Tasks whose behaviour only exists on a backend: memory limits and their recovery."""

from __future__ import annotations

import time

import flyte

env = flyte.TaskEnvironment(name="backend_only", resources=flyte.Resources(memory="200Mi"))


@env.task
async def hog(mb: int) -> int:
    data = bytearray(mb * 1024 * 1024)
    # Touch every page: untouched pages of a zeroed allocation take no memory.
    for i in range(0, len(data), 4096):
        data[i] = 1
    time.sleep(2)
    return len(data) // (1024 * 1024)


@env.task
async def careful(mb: int) -> str:
    try:
        return f"fit: {await hog(mb)}"
    except flyte.errors.OOMError as e:
        bigger = hog.override(resources=flyte.Resources(memory="2Gi"))
        return f"OOM ({e.code}), then with 2Gi: {await bigger(mb)}"


queue_env = flyte.TaskEnvironment(name="queue_limits")


@queue_env.task
async def occupy(seconds: float) -> str:
    time.sleep(seconds)
    return "occupied"


@queue_env.task(timeout=flyte.Timeout(max_queued_time=0.5))
async def impatient() -> str:
    return "started"


@queue_env.task
async def jam() -> str:
    """With one slot: `occupy` takes it, so `impatient` waits in the queue past its limit."""
    import asyncio

    busy = asyncio.create_task(occupy(4))
    await asyncio.sleep(1.5)
    try:
        outcome = await impatient()
    except flyte.errors.TaskTimeoutError as e:
        outcome = f"timed out: {e}"
    return f"{await busy}; {outcome}"
