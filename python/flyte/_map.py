"""``flyte.map``: run a task over iterables, results in input order."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from flyte import _context
from flyte._task import TaskTemplate

_DEFAULT_THREADS = 32


def _unwrap(func: Any) -> tuple[TaskTemplate[Any, Any, Any], tuple[Any, ...], dict[str, Any]]:
    """The task behind ``func`` and the arguments a ``functools.partial`` binds."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    while isinstance(func, functools.partial):
        args = func.args + args
        kwargs = {**func.keywords, **kwargs}
        func = func.func
    if not isinstance(func, TaskTemplate):
        raise TypeError(
            f"flyte.map expects a task or a functools.partial of a task, got {type(func).__name__}; "
            "decorate the function with @env.task"
        )
    return func, args, kwargs


def _check_concurrency(concurrency: int) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
        raise ValueError(f"concurrency must be a non-negative int (0 = no limit), got {concurrency!r}")
    return concurrency


class _Mapper:
    """``flyte.map(task, *iterables)`` and ``flyte.map.aio(task, *iterables)``."""

    def __call__(
        self,
        func: Callable[..., Any],
        *iterables: Iterable[Any],
        concurrency: int = 0,
        return_exceptions: bool = True,
        group_name: str | None = None,
    ) -> Iterator[Any]:
        """Calls ``func`` with one item of each iterable at a time, yielding results in order.

        A failed call yields its exception (the reference SDK's default); with
        ``return_exceptions=False`` the first failure raises instead.
        """
        task, pargs, pkwargs = _unwrap(func)
        limit = _check_concurrency(concurrency)
        if not iterables:
            raise TypeError("flyte.map needs at least one iterable")
        return self._sync(task, pargs, pkwargs, iterables, limit, return_exceptions, group_name)

    def _sync(
        self,
        task: TaskTemplate[Any, Any, Any],
        pargs: tuple[Any, ...],
        pkwargs: dict[str, Any],
        iterables: tuple[Iterable[Any], ...],
        limit: int,
        return_exceptions: bool,
        group_name: str | None,
    ) -> Iterator[Any]:
        c = _context.current()
        if c is None:
            # Outside a run a task is its function: map it like the builtin would.
            for items in zip(*iterables, strict=False):
                try:
                    if task.is_async:
                        import asyncio

                        yield asyncio.run(task.forward(*pargs, *items, **pkwargs))
                    else:
                        yield task.forward(*pargs, *items, **pkwargs)
                except Exception as e:
                    if not return_exceptions:
                        raise
                    yield e
            return
        if task.is_async and not c.run.in_sync_code(c):
            raise RuntimeError(
                f"flyte.map over the async task {task.name} from async code would block the event loop; "
                "use `async for r in flyte.map.aio(...)` instead"
            )
        run = c.run
        group = group_name or f"map-{task.short_name}"
        gctx = c.with_group(group)
        workers = limit or _DEFAULT_THREADS
        pool = (
            None
            if task.is_async
            else concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="flyte-map")
        )
        window: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        loops = contextlib.ExitStack()
        loop = loops.enter_context(run.blocking_loop()) if pool is None else None

        def start(items: tuple[Any, ...]) -> concurrent.futures.Future[Any]:
            try:
                call = run.prepare(task, gctx, pargs + items, pkwargs)
            except Exception as e:  # a bad input fails this item, in order
                f: concurrent.futures.Future[Any] = concurrent.futures.Future()
                f.set_exception(e)
                return f
            if pool is not None:
                return pool.submit(contextvars.copy_context().run, run.execute_sync, call)
            import asyncio

            assert loop is not None
            return asyncio.run_coroutine_threadsafe(run.execute_async(call), loop)

        def take() -> Any:
            fut = window.popleft()
            try:
                return fut.result()
            except Exception as e:
                if not return_exceptions:
                    raise
                return e

        try:
            max_in_flight = limit or (workers * 4 if pool is not None else 1 << 30)
            for items in zip(*iterables, strict=False):
                window.append(start(items))
                if len(window) >= max_in_flight:
                    yield take()
            while window:
                yield take()
        finally:
            for f in window:
                f.cancel()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            loops.close()

    async def aio(
        self,
        func: Callable[..., Any],
        *iterables: Iterable[Any],
        concurrency: int = 0,
        return_exceptions: bool = True,
        group_name: str | None = None,
    ) -> AsyncIterator[Any]:
        """Async form of ``flyte.map``: ``async for result in flyte.map.aio(task, items)``."""
        import asyncio

        task, pargs, pkwargs = _unwrap(func)
        limit = _check_concurrency(concurrency)
        if not iterables:
            raise TypeError("flyte.map.aio needs at least one iterable")
        c = _context.current()
        sem = asyncio.Semaphore(limit) if limit else None

        async def one(coro: Any) -> Any:
            if sem is None:
                return await coro
            async with sem:
                return await coro

        pending: list[asyncio.Future[Any]] = []
        try:
            for items in zip(*iterables, strict=False):
                try:
                    if c is None:
                        pending.append(asyncio.ensure_future(one(task.aio(*pargs, *items, **pkwargs))))
                    else:
                        group = group_name or f"map-{task.short_name}"
                        # The call's task copies the context when it is made: inside the group.
                        with _context.active(c.with_group(group)):
                            pending.append(asyncio.ensure_future(one(task.aio(*pargs, *items, **pkwargs))))
                except Exception as e:
                    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                    failed.set_exception(e)
                    pending.append(failed)
            for fut in pending:
                try:
                    yield await fut
                except Exception as e:
                    if not return_exceptions:
                        raise
                    yield e
        finally:
            for fut in pending:
                if not fut.done():
                    fut.cancel()


map = _Mapper()
