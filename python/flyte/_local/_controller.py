"""Local mode: every action runs in this process, as a coroutine or in a thread.

The Rust ledger names every action and keeps the run's record; the Rust store keeps the
cache. Inputs and outputs still go through flyteidl2 literals, so a task sees exactly
what it would see on a backend, and a wrong input type fails before the task runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte import _core
from flyte._aio import running_loop
from flyte._context import ActionContext, _current
from flyte._task_errors import as_user_error
from flyte.errors import ActionAbortedError, BaseRuntimeError, TaskTimeoutError

if TYPE_CHECKING:
    from flyte._task import TaskTemplate

log = logging.getLogger("flyte")

#: Threads for sync tasks started with ``.aio()`` (and the root, when it is sync). Nested
#: sync tasks that block on children hold a thread each, so the pool is generous; threads
#: are only created when needed.
_MAX_SYNC_THREADS = 256

_AWAIT_ERROR = "can't be used in 'await' expression"


@dataclass(slots=True)
class Call:
    """A prepared call: validated inputs and a name in the ledger."""

    task: TaskTemplate[Any, Any]
    parent: ActionContext | None
    name: str
    inputs_pb: Any
    inputs_bytes: bytes


class LocalRun:
    """State of one run in local mode."""

    mode = "local"

    def __init__(
        self,
        name: str,
        *,
        store: Any,
        run_dir: Path,
        project: str | None = None,
        domain: str | None = None,
        org: str | None = None,
        custom_context: dict[str, str] | None = None,
        overwrite_cache: bool = False,
    ) -> None:
        self.name = name
        self.project = project
        self.domain = domain
        self.org = org
        self.custom_context = dict(custom_context or {})
        self.overwrite_cache = overwrite_cache
        self.store = store
        self.run_dir = run_dir
        self.ledger = _core.Ledger(name)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=_MAX_SYNC_THREADS, thread_name_prefix=f"flyte-{name}"
        )
        self._async_locks: dict[str, asyncio.Lock] = {}
        self._sync_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- preparing calls ----------------------------------------------------------------

    def prepare(self, task: TaskTemplate[Any, Any], parent: ActionContext, args: Any, kwargs: Any) -> Call:
        """Validates the inputs and names the action, in the caller's thread and order.

        Naming happens here, at call time, so identical calls get their sequence numbers in
        the order the caller made them, not in the order asyncio happens to run them.
        """
        if parent.abandoned:
            raise ActionAbortedError(
                message=f"{parent.task.name if parent.task else 'action'} {parent.action_name} was abandoned "
                f"(its caller stopped waiting for it); it cannot start {task.name}"
            )
        iface = task.interface
        inputs_pb = iface.inputs_to_literals(iface.bind(args, kwargs, task.name), task.name)
        data = inputs_pb.SerializeToString(deterministic=True)
        name, _ = self.ledger.submit(parent.action_name, task.identity, data, parent.group, task.name)
        return Call(task, parent, name, inputs_pb, data)

    def prepare_root(self, task: TaskTemplate[Any, Any], args: Any, kwargs: Any) -> Call:
        iface = task.interface
        inputs_pb = iface.inputs_to_literals(iface.bind(args, kwargs, task.name), task.name)
        name = self.ledger.record_root(task.name)
        return Call(task, None, name, inputs_pb, inputs_pb.SerializeToString(deterministic=True))

    # -- entry points used by TaskTemplate ------------------------------------------------

    def call_async(self, task: TaskTemplate[Any, Any], parent: ActionContext, args: Any, kwargs: Any) -> Any:
        return self.execute_async(self.prepare(task, parent, args, kwargs))

    def call_sync(self, task: TaskTemplate[Any, Any], parent: ActionContext, args: Any, kwargs: Any) -> Any:
        return self.execute_sync(self.prepare(task, parent, args, kwargs))

    def call_sync_in_thread(
        self, task: TaskTemplate[Any, Any], parent: ActionContext, args: Any, kwargs: Any
    ) -> Any:
        return self.execute_sync_in_thread(self.prepare(task, parent, args, kwargs))

    def call_blocking(
        self, task: TaskTemplate[Any, Any], parent: ActionContext, args: Any, kwargs: Any
    ) -> Any:
        """An async task called from sync code: run it on an event loop and wait."""
        call = self.prepare(task, parent, args, kwargs)
        with self.blocking_loop() as loop:
            return asyncio.run_coroutine_threadsafe(self.execute_async(call), loop).result()

    def in_sync_code(self, c: ActionContext) -> bool:
        """Whether the code calling a task is synchronous (and so cannot await)."""
        loop = running_loop()
        if loop is None:
            return True
        # A sync task called directly from async code runs on the loop's own thread.
        return c.task is not None and not c.task.is_async and loop is self.loop

    @contextmanager
    def blocking_loop(self) -> Iterator[asyncio.AbstractEventLoop]:
        """A loop that sync code may block on while async work runs on it.

        That is the run's loop, unless the sync code runs on the run's loop thread itself
        (blocking it): then a private loop on a thread of its own, for as long as needed.
        """
        if self.loop is None:
            raise RuntimeError("the run's event loop is not running")
        if running_loop() is not self.loop:
            yield self.loop
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"flyte-{self.name}-private-loop", daemon=True
        )
        thread.start()
        try:
            yield loop
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    async def execute_sync_in_thread(self, call: Call) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, contextvars.copy_context().run, self.execute_sync, call
        )

    # -- caching --------------------------------------------------------------------------

    def _cache_key(self, call: Call) -> str | None:
        cache = call.task.cache
        if cache.behavior == "disable" or self.store is None:
            return None
        data = call.inputs_bytes
        if cache.ignored_inputs:
            kept = type(call.inputs_pb)()
            kept.literals.extend(
                lit for lit in call.inputs_pb.literals if lit.name not in cache.ignored_inputs
            )
            data = kept.SerializeToString(deterministic=True)
        task = call.task
        return _core.cache_key(
            task.name, task.interface.interface_hash(), task.cache_version, data, cache.salt or ""
        )

    def _cache_lookup(self, call: Call, key: str | None) -> tuple[bool, Any]:
        if key is None or call.task.cache.behavior == "override" or self.overwrite_cache:
            return False, None
        raw = self.store.cache_get(key)
        if raw is None:
            return False, None
        try:
            from flyteidl2.task import common_pb2

            return True, call.task.interface.literals_to_outputs(common_pb2.Outputs.FromString(raw))
        except Exception as e:  # noqa: BLE001 - a bad entry is a miss, never a failure
            log.warning("ignoring unreadable cache entry for %s: %s", call.task.name, e)
            return False, None

    def _cache_store(self, call: Call, key: str | None, outputs_pb: Any) -> None:
        if key is not None:
            self.store.cache_put(key, call.task.name, outputs_pb.SerializeToString())

    def _sync_lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._sync_locks.setdefault(key, threading.Lock())

    def _async_lock(self, key: str) -> asyncio.Lock:
        with self._locks_guard:
            return self._async_locks.setdefault(key, asyncio.Lock())

    # -- execution --------------------------------------------------------------------

    def _child(self, call: Call, attempt: int) -> ActionContext:
        custom = call.parent.custom_context if call.parent is not None else self.custom_context
        return ActionContext(
            run=self, action_name=call.name, task=call.task, attempt=attempt, custom_context=custom
        )

    def _failed(self, call: Call, err: BaseException) -> BaseException:
        phase = "TIMED_OUT" if isinstance(err, TaskTimeoutError) else "FAILED"
        self.ledger.finish(call.name, phase, f"{type(err).__name__}: {err}")
        return as_user_error(err, call.task.name)

    def _should_retry(self, call: Call, attempt: int, err: BaseException) -> bool:
        if attempt > call.task.retries:
            return False
        log.info("%s (%s) attempt %d failed: %s; retrying", call.task.name, call.name, attempt, err)
        return True

    def _succeeded(self, call: Call, key: str | None, result: Any) -> Any:
        iface = call.task.interface
        try:
            outputs_pb = iface.outputs_to_literals(result, call.task.name)
        except Exception as e:
            raise self._failed(call, e) from None
        self._cache_store(call, key, outputs_pb)
        self.ledger.finish(call.name, "SUCCEEDED")
        return iface.literals_to_outputs(outputs_pb)

    async def execute_async(self, call: Call) -> Any:
        key = self._cache_key(call)
        if key is not None and call.task.cache.serialize:
            async with self._async_lock(key):
                return await self._execute_async(call, key)
        return await self._execute_async(call, key)

    async def _execute_async(self, call: Call, key: str | None) -> Any:
        hit, value = self._cache_lookup(call, key)
        if hit:
            self.ledger.finish(call.name, "SUCCEEDED", None, True)
            return value
        task = call.task
        attempt = 0
        while True:
            attempt = self.ledger.start_attempt(call.name)
            child = self._child(call, attempt)
            kwargs = task.interface.literals_to_inputs(call.inputs_pb)
            token = _current.set(child)
            try:
                if task.timeout is None:
                    result = await task.func(**kwargs)
                else:
                    result = await _async_with_timeout(task.func(**kwargs), child)
            except asyncio.CancelledError:
                self.ledger.finish(call.name, "ABORTED", "cancelled")
                raise
            except Exception as e:
                err = _explain_await_error(e, child)
                if self._should_retry(call, attempt, err):
                    continue
                raise self._failed(call, err) from None
            finally:
                _current.reset(token)
            return self._succeeded(call, key, result)

    def execute_sync(self, call: Call) -> Any:
        key = self._cache_key(call)
        if key is not None and call.task.cache.serialize:
            with self._sync_lock(key):
                return self._execute_sync(call, key)
        return self._execute_sync(call, key)

    def _execute_sync(self, call: Call, key: str | None) -> Any:
        hit, value = self._cache_lookup(call, key)
        if hit:
            self.ledger.finish(call.name, "SUCCEEDED", None, True)
            return value
        task = call.task
        while True:
            attempt = self.ledger.start_attempt(call.name)
            child = self._child(call, attempt)
            kwargs = task.interface.literals_to_inputs(call.inputs_pb)
            token = _current.set(child)
            try:
                if task.timeout is None:
                    result = task.func(**kwargs)
                else:
                    result = _sync_with_timeout(task.func, kwargs, child)
            except Exception as e:
                if self._should_retry(call, attempt, e):
                    continue
                raise self._failed(call, e) from None
            finally:
                _current.reset(token)
            return self._succeeded(call, key, result)

    async def execute_root(self, call: Call) -> Any:
        self.loop = asyncio.get_running_loop()
        if call.task.is_async:
            return await self.execute_async(call)
        return await self.execute_sync_in_thread(call)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _async_with_timeout(coro: Any, child: ActionContext) -> Any:
    task = child.task
    assert task is not None and task.timeout is not None
    inner = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({inner}, timeout=task.timeout)
    except asyncio.CancelledError:
        inner.cancel()
        raise
    if inner in done:
        return inner.result()
    child.abandoned = True
    inner.cancel()
    await asyncio.wait({inner}, timeout=1.0)
    raise TaskTimeoutError(message=f"{task.name} ({child.action_name}) timed out after {task.timeout:g}s")


def _sync_with_timeout(func: Any, kwargs: dict[str, Any], child: ActionContext) -> Any:
    """Runs sync task code in its own thread so the caller can stop waiting.

    Python cannot stop a thread: after a timeout the code keeps running in the background,
    but its action is marked abandoned, so it cannot start further tasks.
    """
    task = child.task
    assert task is not None and task.timeout is not None
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
    cv = contextvars.copy_context()

    def target() -> None:
        try:
            fut.set_result(cv.run(func, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            fut.set_exception(e)

    threading.Thread(target=target, name=f"flyte-timeout-{child.action_name}", daemon=True).start()
    try:
        return fut.result(timeout=task.timeout)
    except concurrent.futures.TimeoutError:
        if fut.done():
            return fut.result()
        child.abandoned = True
        raise TaskTimeoutError(
            message=f"{task.name} ({child.action_name}) timed out after {task.timeout:g}s"
        ) from None


def _explain_await_error(e: Exception, child: ActionContext) -> Exception:
    """``await sync_task(...)`` fails inside Python with a generic message; name ``.aio()``."""
    if (
        isinstance(e, TypeError)
        and _AWAIT_ERROR in str(e)
        and child.last_sync_call
        and not isinstance(e, BaseRuntimeError)
    ):
        short = child.last_sync_call.rsplit(".", 1)[-1]
        better = TypeError(
            f"{child.last_sync_call} is a sync task and cannot be awaited: call it without `await`, "
            f"or use `await {short}.aio(...)` to run it concurrently from async code"
        )
        better.__traceback__ = e.__traceback__
        return better
    return e
