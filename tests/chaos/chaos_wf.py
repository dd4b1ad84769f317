"""The chaos suite's workload: a parent that starts its children in waves, each child marking
when it starts and ends (in a file every process of a trial appends to), so the suite knows
which processes to kill and how often each child ran."""

from __future__ import annotations

import asyncio
import os

import flyte

env = flyte.TaskEnvironment(name="chaos")
pooled_env = flyte.TaskEnvironment(
    name="chaos_pooled", reusable=flyte.ReusePolicy(replicas=2, concurrency=8, idle_ttl=60)
)


def mark(marks: str, line: str) -> None:
    # One write of a short line to a file opened for appending lands whole.
    fd = os.open(os.path.join(marks, "events"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


async def _work(i: int, marks: str) -> int:
    mark(marks, f"start {i} {os.getpid()}")
    # An attempt on a reusable worker gets its log file when it first prints: the suite counts
    # the attempts that ran by their logs.
    print(f"child {i} starts", flush=True)
    # 0.1 to 0.46 s, the same for a child every time it runs.
    await asyncio.sleep(0.1 + (i * 7919 % 10) / 25)
    mark(marks, f"end {i} {os.getpid()}")
    return i


@env.task
async def child(i: int, marks: str) -> int:
    return await _work(i, marks)


@pooled_env.task
async def pooled_child(i: int, marks: str) -> int:
    return await _work(i, marks)


@env.task
async def fan(waves: int, width: int, marks: str, pooled: bool = False) -> int:
    mark(marks, f"parent {os.getpid()}")
    step = pooled_child if pooled else child
    total = 0
    for wave in range(waves):
        total += sum(await asyncio.gather(*(step(wave * width + i, marks) for i in range(width))))
    return total
