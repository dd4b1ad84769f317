"""The example workflow of the README: `flyte run --local examples/hello.py main --numbers '[1,2,3]'`."""

import asyncio

import flyte

env = flyte.TaskEnvironment(
    name="hello_world",
    resources=flyte.Resources(memory="250Mi"),
)


@env.task
def calculate(x: int) -> int:
    return x * 2 + 5


@env.task
async def square(x: int) -> int:
    return x * x


@env.task
async def main(numbers: list[int]) -> float:
    # Sync tasks join the async fan-out through .aio(); async tasks are awaited directly.
    doubled = await asyncio.gather(*[calculate.aio(n) for n in numbers])
    with flyte.group("squares"):
        squares = await asyncio.gather(*[square(n) for n in doubled])
    return sum(squares) / len(squares)


if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.run(main, numbers=list(range(10)))
    print(f"Result: {run.result}")
    print(f"View at: {run.url}")
