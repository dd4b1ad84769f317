"""flyte.extras' batchers: records from many producers go through one async function in
batches bounded by cost, size and a wait; every producer gets its own result or the batch's
error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from flyte.extras import BatchStats, CostEstimator, DynamicBatcher, Prompt, TokenBatcher, TokenEstimator


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_results_reach_their_callers_in_batches_bounded_by_cost_and_size() -> None:
    seen: list[list[int]] = []

    async def double(batch: list[int]) -> list[int]:
        seen.append(list(batch))
        await asyncio.sleep(0)
        return [x * 2 for x in batch]

    async def main() -> tuple[list[int], BatchStats]:
        async with DynamicBatcher(double, target_batch_cost=10, max_batch_size=4, batch_timeout_s=0.2) as b:
            futures = await b.submit_batch(list(range(10)), estimated_cost=[3] * 10)
            results = list(await asyncio.gather(*futures))
        return results, b.stats

    results, stats = run(main())
    assert results == [x * 2 for x in range(10)]
    assert all(len(batch) <= 4 for batch in seen)
    # A batch closes once its cost reaches 10: four records of cost 3.
    assert [len(batch) for batch in seen] == [4, 4, 2]
    assert stats.total_submitted == stats.total_completed == 10 and stats.total_batches == 3
    assert stats.avg_batch_size == pytest.approx(10 / 3) and stats.total_batch_cost == 30
    assert 0.0 < stats.utilization <= 1.0


def test_a_batch_waits_for_its_minimum_until_the_batcher_stops() -> None:
    seen: list[int] = []

    async def count(batch: list[str]) -> list[int]:
        seen.append(len(batch))
        return [len(x) for x in batch]

    async def main() -> list[int]:
        b = DynamicBatcher(count, min_batch_size=3, batch_timeout_s=0.01)
        await b.start()
        first = await b.submit("a")
        await asyncio.sleep(0.1)  # the wait ran out several times: still below the minimum
        assert not first.done() and seen == []
        rest = [await b.submit(x) for x in ("bb", "ccc")]
        await asyncio.sleep(0.1)
        last = await b.submit("dddd")
        await b.stop()  # stopping flushes what is left, below the minimum or not
        return list(await asyncio.gather(first, *rest, last))

    assert run(main()) == [1, 2, 3, 4]
    assert seen == [3, 1]


def test_costs_come_from_the_estimators() -> None:
    @dataclass
    class Request:
        payload: str

        def estimate_cost(self) -> int:
            return len(self.payload)

    assert isinstance(Request("x"), CostEstimator) and isinstance(Prompt("x"), TokenEstimator)
    costs: list[int] = []

    async def echo(batch: list[object]) -> list[object]:
        return batch

    async def main() -> None:
        async with DynamicBatcher(echo, default_cost=7) as b:
            for record, override in ((Request("abcd"), None), ("plain", None), (Request("abcd"), 1)):
                costs.append(b._estimate_cost(record, override))
        async with DynamicBatcher(echo, cost_estimator=lambda r: 42) as b:
            costs.append(b._estimate_cost(Request("abcd"), None))
        async with TokenBatcher(inference_fn=echo, default_token_estimate=9) as t:
            costs.append(t._estimate_cost(Prompt("x" * 40), None))
            costs.append(t._estimate_cost("plain", None))
            result = await (await t.submit(Prompt("hi"), estimated_tokens=3))
            assert result == Prompt("hi")

    run(main())
    assert costs == [4, 7, 1, 42, 11, 9]


def test_a_failing_batch_fails_each_of_its_callers_and_the_batcher_goes_on() -> None:
    calls = 0

    async def flaky(batch: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model crashed")
        if calls == 2:
            return batch[:-1]  # one result short
        return batch

    async def main() -> None:
        async with DynamicBatcher(flaky, max_batch_size=2, batch_timeout_s=0.01) as b:
            first = await b.submit_batch([1, 2])
            await asyncio.sleep(0.05)
            second = await b.submit_batch([3, 4])
            await asyncio.sleep(0.05)
            third = await b.submit_batch([5, 6])
            for f in first:
                with pytest.raises(RuntimeError, match="model crashed"):
                    await f
            for f in second:
                with pytest.raises(ValueError, match="returned 1 results for a batch of 2"):
                    await f
            assert [await f for f in third] == [5, 6]

    run(main())


def test_misuse_is_refused_clearly() -> None:
    def not_async(batch: list[int]) -> list[int]:
        return batch

    async def ok(batch: list[int]) -> list[int]:
        return batch

    with pytest.raises(TypeError, match="process_fn must be an async function"):
        DynamicBatcher(not_async)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_batch_size=0"):
        DynamicBatcher(ok, max_batch_size=0)
    with pytest.raises(ValueError, match="min_batch_size=5 is more than max_batch_size=2"):
        DynamicBatcher(ok, min_batch_size=5, max_batch_size=2)
    with pytest.raises(TypeError, match="needs inference_fn"):
        TokenBatcher()

    async def main() -> None:
        b = DynamicBatcher(ok)
        with pytest.raises(RuntimeError, match="is not running"):
            await b.submit(1)
        async with b:
            with pytest.raises(RuntimeError, match="already running"):
                await b.start()
            with pytest.raises(ValueError, match="2 estimated costs for 1 records"):
                await b.submit_batch([1], estimated_cost=[1, 2])
            with pytest.raises(ValueError, match="estimated cost must be an int"):
                await b.submit(1, estimated_cost=-1)
        assert not b.is_running

    run(main())
