"""Batching the work of many concurrent callers through one async function.

A shared, expensive resource (a model on a GPU, a rate-limited API) is used best in batches.
Callers ``submit`` records one at a time and await a future each; the batcher gathers records
into batches bounded by a cost budget, a size cap and a wait, runs ``process_fn`` on each
batch, and hands every caller its own result.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, TypeVar, runtime_checkable

log = logging.getLogger("flyte.extras")

RecordT = TypeVar("RecordT")
ResultT = TypeVar("ResultT")

#: ``async def f(batch: list[Record]) -> list[Result]``, results in the batch's order.
ProcessFn = Callable[[list[RecordT]], Awaitable[list[ResultT]]]
InferenceFn = ProcessFn
#: ``(record) -> int``: what a record costs (tokens, bytes, ...).
CostEstimatorFn = Callable[[RecordT], int]
TokenEstimatorFn = CostEstimatorFn


@runtime_checkable
class CostEstimator(Protocol):
    """A record that knows its cost: the batcher asks it when ``submit`` is given none."""

    def estimate_cost(self) -> int: ...


@runtime_checkable
class TokenEstimator(Protocol):
    """A record that knows how many tokens it is (asked by :class:`TokenBatcher`)."""

    def estimate_tokens(self) -> int: ...


@dataclass
class BatchStats:
    """What a batcher has done so far."""

    total_submitted: int = 0
    total_completed: int = 0
    total_batches: int = 0
    total_batch_cost: int = 0
    avg_batch_size: float = 0.0
    avg_batch_cost: float = 0.0
    #: Seconds spent inside ``process_fn``.
    busy_time_s: float = 0.0
    #: Seconds the processing side waited for a batch.
    idle_time_s: float = 0.0

    @property
    def utilization(self) -> float:
        """The share of time spent processing, from 0.0 to 1.0."""
        total = self.busy_time_s + self.idle_time_s
        return self.busy_time_s / total if total > 0 else 0.0

    def _record(self, size: int, cost: int, busy: float) -> None:
        self.busy_time_s += busy
        self.total_batches += 1
        self.total_completed += size
        self.total_batch_cost += cost
        self.avg_batch_size = self.total_completed / self.total_batches
        self.avg_batch_cost = self.total_batch_cost / self.total_batches


@dataclass
class _Pending(Generic[RecordT, ResultT]):
    record: RecordT
    cost: int
    future: asyncio.Future[ResultT]


def _positive(name: str, value: object, minimum: float = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{name}={value!r} must be a number of at least {minimum}")


class DynamicBatcher(Generic[RecordT, ResultT]):
    """Runs records from many concurrent producers through ``process_fn`` in batches.

    A batch closes when its records' costs reach ``target_batch_cost``, when it holds
    ``max_batch_size`` records, or ``batch_timeout_s`` after its first record arrived, as long as
    it has ``min_batch_size`` records by then (it waits for more otherwise, unless the batcher is
    stopping). Up to ``prefetch_batches`` closed batches wait while one is processed;
    ``max_queue_size`` submitted records wait for a batch before ``submit`` itself waits.

    A record's cost is ``estimated_cost`` when given, else ``cost_estimator(record)``, else
    ``record.estimate_cost()`` (:class:`CostEstimator`), else ``default_cost``. When
    ``process_fn`` raises, or returns a list of another length, every record of the batch gets
    that error.

    ``async with DynamicBatcher(process_fn=f) as batcher: result = await (await batcher.submit(x))``
    """

    def __init__(
        self,
        process_fn: ProcessFn[RecordT, ResultT],
        *,
        cost_estimator: CostEstimatorFn[RecordT] | None = None,
        target_batch_cost: int = 32_000,
        max_batch_size: int = 256,
        min_batch_size: int = 1,
        batch_timeout_s: float = 0.05,
        max_queue_size: int = 5_000,
        prefetch_batches: int = 2,
        default_cost: int = 1,
    ) -> None:
        # An async function, or an object whose __call__ is one.
        if not inspect.iscoroutinefunction(process_fn) and not inspect.iscoroutinefunction(
            type(process_fn).__call__
        ):
            raise TypeError(
                f"{type(self).__name__}: process_fn must be an async function, got {process_fn!r}"
            )
        _positive("target_batch_cost", target_batch_cost)
        _positive("max_batch_size", max_batch_size)
        _positive("min_batch_size", min_batch_size)
        _positive("batch_timeout_s", batch_timeout_s, 0)
        _positive("max_queue_size", max_queue_size)
        _positive("prefetch_batches", prefetch_batches)
        _positive("default_cost", default_cost, 0)
        if min_batch_size > max_batch_size:
            raise ValueError(f"min_batch_size={min_batch_size} is more than max_batch_size={max_batch_size}")
        self._process_fn = process_fn
        self._cost_estimator = cost_estimator
        self._target_batch_cost = target_batch_cost
        self._max_batch_size = max_batch_size
        self._min_batch_size = min_batch_size
        self._batch_timeout_s = batch_timeout_s
        self._max_queue_size = max_queue_size
        self._prefetch_batches = prefetch_batches
        self._default_cost = default_cost
        self._stats = BatchStats()
        self._incoming: asyncio.Queue[_Pending[RecordT, ResultT] | None] | None = None
        self._batches: asyncio.Queue[list[_Pending[RecordT, ResultT]] | None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    @property
    def stats(self) -> BatchStats:
        return self._stats

    @property
    def is_running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Starts gathering and processing batches (on the running event loop)."""
        if self._running:
            raise RuntimeError(f"{type(self).__name__} is already running")
        # Queues belong to the loop that uses them: made here, not in __init__.
        self._incoming = asyncio.Queue(maxsize=self._max_queue_size)
        self._batches = asyncio.Queue(maxsize=self._prefetch_batches)
        self._running = True
        self._tasks = [
            asyncio.create_task(self._gather(), name=f"{type(self).__name__}-gather"),
            asyncio.create_task(self._process(), name=f"{type(self).__name__}-process"),
        ]

    async def stop(self) -> None:
        """Processes everything submitted so far, then stops."""
        if not self._running:
            return
        assert self._incoming is not None
        self._running = False  # no more submissions
        await self._incoming.put(None)
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._tasks = []
        log.info(
            "%s stopped: %d records in %d batches, %.0f%% busy",
            type(self).__name__,
            self._stats.total_completed,
            self._stats.total_batches,
            self._stats.utilization * 100,
        )

    async def __aenter__(self) -> DynamicBatcher[RecordT, ResultT]:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def submit(self, record: RecordT, *, estimated_cost: int | None = None) -> asyncio.Future[ResultT]:
        """Queues ``record``; returns the future of its result. Waits while the queue is full."""
        if not self._running or self._incoming is None:
            raise RuntimeError(
                f"{type(self).__name__} is not running: use `async with` or call start() first"
            )
        cost = self._estimate_cost(record, estimated_cost)
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ValueError(f"a record's estimated cost must be an int of at least 0, got {cost!r}")
        pending: _Pending[RecordT, ResultT] = _Pending(
            record, cost, asyncio.get_running_loop().create_future()
        )
        await self._incoming.put(pending)
        self._stats.total_submitted += 1
        return pending.future

    async def submit_batch(
        self, records: Sequence[RecordT], *, estimated_cost: Sequence[int] | None = None
    ) -> list[asyncio.Future[ResultT]]:
        """Queues several records; their futures, in order."""
        if estimated_cost is not None and len(estimated_cost) != len(records):
            raise ValueError(f"{len(estimated_cost)} estimated costs for {len(records)} records")
        costs: Sequence[int | None] = estimated_cost if estimated_cost is not None else [None] * len(records)
        return [await self.submit(r, estimated_cost=c) for r, c in zip(records, costs, strict=True)]

    def _estimate_cost(self, record: RecordT, override: int | None) -> int:
        if override is not None:
            return override
        if self._cost_estimator is not None:
            return self._cost_estimator(record)
        if isinstance(record, CostEstimator):
            return record.estimate_cost()
        return self._default_cost

    async def _gather(self) -> None:
        """Closes batches and hands them to processing; ends after the stop marker."""
        assert self._incoming is not None and self._batches is not None
        incoming, batches = self._incoming, self._batches
        batch: list[_Pending[RecordT, ResultT]] = []
        cost = 0
        deadline: float | None = None  # when the open batch's wait runs out
        stopping = False
        while not stopping:
            timed_out = False
            try:
                if deadline is None:
                    item = await incoming.get()
                else:
                    item = await asyncio.wait_for(incoming.get(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                item, timed_out = None, True
            if item is not None:
                batch.append(item)
                cost += item.cost
                if deadline is None:
                    deadline = time.monotonic() + self._batch_timeout_s
            elif not timed_out:
                stopping = True
            full = cost >= self._target_batch_cost or len(batch) >= self._max_batch_size
            due = timed_out and len(batch) >= self._min_batch_size
            if batch and (full or due or stopping):
                await batches.put(batch)
                batch, cost, deadline = [], 0, None
            elif timed_out:
                deadline = None  # too few records yet: the next one starts a new wait
        await batches.put(None)

    async def _process(self) -> None:
        assert self._batches is not None
        waited_since = time.monotonic()
        while True:
            batch = await self._batches.get()
            started = time.monotonic()
            self._stats.idle_time_s += started - waited_since
            if batch is None:
                return
            records = [p.record for p in batch]
            try:
                results = await self._process_fn(records)
                if not isinstance(results, list) or len(results) != len(batch):
                    got = f"{len(results)} results" if isinstance(results, list) else repr(type(results))
                    raise ValueError(f"process_fn returned {got} for a batch of {len(batch)} records")
                for pending, result in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)
            except Exception as e:  # noqa: BLE001 - every caller of the batch gets the error
                log.warning("%s: a batch of %d failed: %s", type(self).__name__, len(batch), e)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(e)
            self._stats._record(len(batch), sum(p.cost for p in batch), time.monotonic() - started)
            waited_since = time.monotonic()


@dataclass
class Prompt:
    """A text prompt that estimates its tokens (about four characters each)."""

    text: str

    def estimate_tokens(self) -> int:
        return len(self.text) // 4 + 1


class TokenBatcher(DynamicBatcher[RecordT, ResultT]):
    """A :class:`DynamicBatcher` spoken to in tokens, for LLM inference: ``inference_fn``,
    ``token_estimator``, ``target_batch_tokens``, ``default_token_estimate`` and
    ``submit(record, estimated_tokens=...)``; records may implement :class:`TokenEstimator`."""

    def __init__(
        self,
        inference_fn: ProcessFn[RecordT, ResultT] | None = None,
        *,
        process_fn: ProcessFn[RecordT, ResultT] | None = None,
        token_estimator: CostEstimatorFn[RecordT] | None = None,
        cost_estimator: CostEstimatorFn[RecordT] | None = None,
        target_batch_tokens: int | None = None,
        target_batch_cost: int = 32_000,
        default_token_estimate: int | None = None,
        default_cost: int = 1,
        max_batch_size: int = 256,
        min_batch_size: int = 1,
        batch_timeout_s: float = 0.05,
        max_queue_size: int = 5_000,
        prefetch_batches: int = 2,
    ) -> None:
        fn = inference_fn if inference_fn is not None else process_fn
        if fn is None:
            raise TypeError("TokenBatcher needs inference_fn (or process_fn)")
        super().__init__(
            fn,
            cost_estimator=token_estimator if token_estimator is not None else cost_estimator,
            target_batch_cost=target_batch_tokens if target_batch_tokens is not None else target_batch_cost,
            max_batch_size=max_batch_size,
            min_batch_size=min_batch_size,
            batch_timeout_s=batch_timeout_s,
            max_queue_size=max_queue_size,
            prefetch_batches=prefetch_batches,
            default_cost=default_token_estimate if default_token_estimate is not None else default_cost,
        )

    def _estimate_cost(self, record: RecordT, override: int | None) -> int:
        if override is None and self._cost_estimator is None and isinstance(record, TokenEstimator):
            return record.estimate_tokens()
        return super()._estimate_cost(record, override)

    async def submit(  # type: ignore[override]
        self, record: RecordT, *, estimated_tokens: int | None = None, estimated_cost: int | None = None
    ) -> asyncio.Future[ResultT]:
        """Queues ``record`` (``estimated_tokens`` or ``estimated_cost`` overrides its estimate)."""
        cost = estimated_tokens if estimated_tokens is not None else estimated_cost
        return await super().submit(record, estimated_cost=cost)
