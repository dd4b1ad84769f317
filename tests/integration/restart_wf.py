"""A parent that calls its steps one after another, slowly enough for a test to kill the
backend between (and during) them; a step can be held at a gate the test opens."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from counters import bump

import flyte

env = flyte.TaskEnvironment(name="restarts")


@env.task
async def step(i: int, gate: str) -> int:
    bump(f"step-{i}")
    if gate:
        Path(f"{gate}.ready").write_text(str(os.getpid()))
        while not Path(f"{gate}.go").exists():
            await asyncio.sleep(0.02)
    return i


@env.task(retries=0)
async def chain(n: int, gate_at: int = -1, gate: str = "", pause: float = 0.4) -> int:
    bump("chain")
    total = 0
    for i in range(n):
        total += await step(i, gate if i == gate_at else "")
        await asyncio.sleep(pause)
    return total
