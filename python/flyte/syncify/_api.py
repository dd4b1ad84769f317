"""The machinery behind ``flyte.syncify``: one background event loop per process runs the
coroutines of sync callers, with the caller's context variables."""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from flyte._aio import running_loop

# Deferred imports: asyncio loads when a syncified function is first called, not with
# `import flyte` (which defines syncified functions).

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


class Syncify:
    """A decorator (``syncify = Syncify()``) whose wrapped coroutines run, for sync callers, on
    an event loop of its own in a daemon thread named ``name``."""

    def __init__(self, name: str = "flyte_syncify") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, classmethod):
            return _SyncWrapper(self, obj.__func__, bind_class=True)
        if isinstance(obj, staticmethod):
            return _SyncWrapper(self, obj.__func__, bind_class=False, static=True)
        if inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj):
            return _SyncWrapper(self, obj)
        raise TypeError(f"syncify wraps an async function (or method), got {obj!r}")

    def loop(self) -> asyncio.AbstractEventLoop:
        import asyncio

        with self._lock:
            # After fork the thread is gone; the child starts its own.
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                threading.Thread(target=serve, name=self.name, daemon=True).start()
                ready.wait()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` to its end for a sync caller (in this thread's context) and returns its value."""
        import concurrent.futures

        loop = self.loop()
        if running_loop() is loop:
            coro.close()
            raise RuntimeError("a syncified function was called synchronously on its own loop; use .aio()")
        context = contextvars.copy_context()
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

        def settle(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                outcome.cancel()
            elif task.exception() is not None:
                outcome.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                outcome.set_result(task.result())

        def start() -> None:
            # create_task inside context.run: the task runs with the caller's context variables.
            context.run(loop.create_task, coro).add_done_callback(settle)

        loop.call_soon_threadsafe(start)
        return outcome.result()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over an async iterator, for sync callers."""
        it = agen.__aiter__()
        while True:
            try:
                yield self.run(_next(it))
            except StopAsyncIteration:
                return


async def _next(it: AsyncIterator[T]) -> T:
    return await it.__anext__()


class _SyncWrapper(Generic[T]):
    """A syncified function: call it for the value, ``.aio`` for the awaitable (or async iterator)."""

    def __init__(
        self,
        owner: Syncify,
        fn: Callable[..., Any],
        *,
        bind_class: bool = False,
        static: bool = False,
        bound_to: Any = None,
    ) -> None:
        self._owner = owner
        self.fn = fn
        self._bind_class = bind_class
        self._static = static
        self._bound_to = bound_to
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, instance: Any, cls: type | None = None) -> Any:
        if self._static:
            return self
        target = cls if self._bind_class else instance
        if target is None:
            return self
        return _SyncWrapper(self._owner, self.fn, bind_class=self._bind_class, bound_to=target)

    @property
    def __signature__(self) -> inspect.Signature:
        sig = inspect.signature(self.fn)
        if self._bound_to is not None:
            return sig.replace(parameters=list(sig.parameters.values())[1:])
        return sig

    def _args(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (self._bound_to, *args) if self._bound_to is not None else args

    def aio(self, *args: Any, **kwargs: Any) -> Any:
        """The awaitable (an async iterator, for an async generator function)."""
        return self.fn(*self._args(args), **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.fn(*self._args(args), **kwargs)
        if inspect.isasyncgen(result):
            return self._owner.iterate(result)
        return self._owner.run(result)

    def __repr__(self) -> str:
        return f"<syncified {getattr(self.fn, '__qualname__', self.fn)!r}>"


syncify = Syncify()
