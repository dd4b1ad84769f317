"""Tasks the web UI tests run: a group of children, a report, a File output, a dataclass
input, a child that fails after a retry, and one that sleeps until aborted."""

import asyncio
from dataclasses import dataclass

import flyte
import flyte.report
from flyte.io import File

env = flyte.TaskEnvironment(name="ui_demo")


@dataclass
class Point:
    x: int
    label: str


@env.task
async def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


@env.task(retries=1)
async def flaky(x: int) -> int:
    raise ValueError(f"no luck with {x}")


@env.task(report=True)
async def reporter(points: list[Point]) -> File:
    await flyte.report.replace.aio(f"<h1>Report</h1><p>{len(points)} points</p>")
    await flyte.report.flush.aio()
    f = File.new_remote()
    async with f.open("wb") as fh:
        await fh.write(b"hello file")
    return f


@env.task
async def main(n: int = 3, fail: bool = False) -> dict[str, int]:
    with flyte.group("squares"):
        squares = await asyncio.gather(*[square(i) for i in range(n)])
    await reporter([Point(x=i, label=f"p{i}") for i in range(n)])
    if fail:
        await flaky(1)
    return {str(i): s for i, s in enumerate(squares)}


@env.task
async def nap(seconds: float) -> str:
    print(f"napping {seconds}", flush=True)
    await asyncio.sleep(seconds)
    return "woke"


@env.task
async def slow() -> str:
    # A child that finishes while the page is open: the tree fills in live.
    await nap(1.0)
    print("starting to sleep", flush=True)
    return await nap(300.0)


@env.task(cache="auto")
async def doubled(x: int) -> int:
    return 2 * x


@flyte.trace
async def summarize(values: list[int]) -> str:
    return f"{len(values)} values, total {sum(values)}"


@env.task
async def mapped(n: int = 3) -> str:
    # flyte.map's own group, a cached task (its second call a cache hit) and a trace.
    values = [v async for v in flyte.map.aio(doubled, range(n))]
    again = await doubled(0)
    return await summarize([*values, again])
