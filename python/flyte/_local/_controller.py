"""Local mode: every action runs in this process, as a coroutine or in a thread.

The Rust ledger names every action and keeps the run's record; the Rust store keeps the
cache. Inputs and outputs still go through flyteidl2 literals, so a task sees exactly
what it would see on a backend, and a wrong input type fails before the task runs.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import logging
import os
import threading
import time
from typing import Any

from flyte._aio import finish_returned_coroutine
from flyte._bridge import cache, journal, ledger, notify, policy
from flyte._checkpoint import Checkpoint
from flyte._condition import literal_value, parse_value, to_literal, webhook_spec
from flyte._context import ActionContext, _current
from flyte._internal._runner import Call, Runner
from flyte._local._secrets import provide
from flyte._policy import task_policy
from flyte._storage import join
from flyte._task_errors import as_user_error, explain_await_error, is_recoverable
from flyte.errors import (
    ConditionFailedError,
    ConditionTimedoutError,
    DeadlineExceededError,
    MaxRuntimeExceededError,
    TaskTimeoutError,
)

log = logging.getLogger("flyte")


@atexit.register
def _finish_recording() -> None:
    for failure in journal.drain_journals():
        log.warning("%s", failure)


class LocalRun(Runner):
    """State of one run in local mode."""

    mode = "local"

    def __init__(
        self,
        name: str,
        *,
        overwrite_cache: bool = False,
        disable_run_cache: bool = False,
        env_vars: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.overwrite_cache = overwrite_cache
        self.disable_run_cache = disable_run_cache
        #: The run's environment variables (``with_runcontext(env_vars=...)``): over a task's own,
        #: as on a backend.
        self.env_vars = dict(env_vars or {})
        #: What the process environment held before this run set variables, to put back.
        self._saved_env: dict[str, str | None] = {}
        #: The run's durable record (and the data dir's cache); None until :meth:`record_in`.
        self.journal: Any = None
        #: Outputs of the actions an earlier process of this run finished, by action name.
        self.replayed: dict[str, bytes] = {}

    def record_in(self, journal: Any, replayed: dict[str, bytes]) -> None:
        """Records the run's actions in ``journal`` from now on; ``replayed`` holds what an
        earlier process of the same run finished (a resumed run does not run it again)."""
        root = self.ledger.get(ledger.ROOT_ACTION)
        self.journal = journal
        self.replayed = replayed
        self.ledger = ledger.Ledger(self.name, journal)
        if root is not None:
            self.ledger.record_root(root.task_name)

    def _set_env(self, call: Call) -> None:
        """A task's environment variables (its TaskEnvironment's, then the run's), set in this
        process: local tasks share one environment, so concurrent tasks of environments that
        disagree on a variable see the last one set."""
        layered = policy.task_environment(
            list((call.task.env_vars or {}).items()), list(self.env_vars.items())
        )
        for key, value in layered:
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def close(self) -> None:
        self._restore_env()
        super().close()
        if self.journal is not None:
            # The run is over once its outputs are known; the last of its record is committed
            # behind the caller's back (and waited for when the interpreter exits).
            self.journal.close(wait=False)

    # -- resuming and caching --------------------------------------------------------------

    def _recorded(self, call: Call) -> tuple[bool, Any]:
        """The outputs of an action an earlier process of this run finished, if any."""
        raw = self.replayed.pop(call.name, None)
        if raw is None:
            return False, None
        from flyteidl2.task import common_pb2

        self.ledger.replayed(call.name)
        return True, call.task.interface.literals_to_outputs(common_pb2.Outputs.FromString(raw))

    def _cache_key(self, call: Call) -> str | None:
        return None if self.journal is None or self.disable_run_cache else self.cache_key(call)

    def _cache_lookup(self, call: Call, key: str | None) -> tuple[bool, Any]:
        if key is None or call.task.cache.behavior == "override" or self.overwrite_cache:
            return False, None
        raw = self.journal.cache_get(key, call.task.cache.max_age_ms())
        if raw is None:
            return False, None
        try:
            from flyteidl2.task import common_pb2

            return True, call.task.interface.literals_to_outputs(common_pb2.Outputs.FromString(raw))
        except Exception as e:  # noqa: BLE001 - a bad entry is a miss, never a failure
            log.warning("ignoring unreadable cache entry for %s: %s", call.task.name, e)
            return False, None

    def _cache_store(self, call: Call, key: str | None, outputs: bytes) -> None:
        if key is not None:
            self.journal.cache_put(key, call.task.name, outputs)

    # -- execution --------------------------------------------------------------------

    def _child(self, call: Call, attempt: int) -> ActionContext:
        custom = call.parent.custom_context if call.parent is not None else self.custom_context
        return ActionContext(
            run=self,
            action_name=call.name,
            task=call.task,
            attempt=attempt,
            custom_context=custom,
        )

    def checkpoint_of(self, c: ActionContext) -> Checkpoint:
        # Made when the task first asks: most actions never do, and they are many.
        if c.checkpoint is None:
            c.checkpoint = Checkpoint(
                self._checkpoint_location(c.action_name, c.attempt),
                self._checkpoint_location(c.action_name, c.attempt - 1) if c.attempt > 1 else None,
            )
        return c.checkpoint

    def _checkpoint_location(self, action_name: str, attempt: int) -> str:
        """Where attempt ``attempt`` of an action keeps its checkpoint (as the backend lays
        out its attempts' checkpoint prefixes)."""
        return join(self.raw_data_prefix(action_name), str(attempt), "checkpoint") + "/"

    def _failed(self, call: Call, err: BaseException) -> BaseException:
        """Ends an action whose attempt cannot be retried (its outputs are unusable)."""
        self.ledger.finish(call.name, "FAILED", str(err), error_code=type(err).__name__)
        return as_user_error(err, call.task.name)

    def _limit(self, call: Call) -> tuple[float, bool] | None:
        """How long this attempt may run, by the core's rules (None: no bound)."""
        if call.task.timeout is None:
            return None
        return self.ledger.attempt_limit(call.name, task_policy(call.task))

    def _attempt_failed(self, call: Call, attempt: int, err: BaseException) -> float | None:
        """Hands a failed attempt to the core: seconds until the next attempt, or None when the
        action ended (the core recorded it FAILED or TIMED_OUT)."""
        ours = isinstance(err, TaskTimeoutError) and getattr(err, "action_name", None) == call.name
        delay = self.ledger.attempt_failed(
            call.name,
            task_policy(call.task),
            type(err).__name__,
            str(err),
            retryable=is_recoverable(err),
            timed_out=ours,
            deadline=ours and isinstance(err, DeadlineExceededError),
        )
        if delay is not None:
            log.info(
                "%s (%s) attempt %d failed: %s; retrying in %.3gs",
                call.task.name,
                call.name,
                attempt,
                err,
                delay,
            )
        return delay

    def _succeeded(self, call: Call, key: str | None, result: Any, child: ActionContext) -> Any:
        iface = call.task.interface
        # Still the child's outputs: data they store goes under the child's raw data prefix.
        token = _current.set(child)
        try:
            outputs_pb = iface.outputs_to_literals(result, call.task.name, call.task.max_inline_io_bytes)
        except Exception as e:
            raise self._failed(call, e) from None
        finally:
            _current.reset(token)
        outputs = outputs_pb.SerializeToString()
        self._cache_store(call, key, outputs)
        self.ledger.finish(call.name, "SUCCEEDED", outputs=outputs)
        return result if iface.native_outputs(result) else iface.literals_to_outputs(outputs_pb)

    def _provide_secrets(self, call: Call) -> None:
        try:
            provide(call.task, self.project, self.domain)
        except Exception as e:
            self.ledger.finish(call.name, "FAILED", str(e), error_code=type(e).__name__)
            raise

    async def execute_async(self, call: Call) -> Any:
        key = self._cache_key(call)
        if key is None or not call.task.cache.serialize:
            return await self._execute_async(call, key)
        # Serialized: the core's cache gate lets one call per key run; the others wait for it
        # and then find its outputs in the cache.
        ticket = cache.cache_ticket()
        try:
            await cache.cache_turn(key, ticket)
            return await self._execute_async(call, key)
        finally:
            cache.cache_done(key, ticket)

    def _prepare_attempts(self, call: Call, key: str | None) -> tuple[bool, Any]:
        """Before the first attempt: outputs an earlier process of this run or the cache already
        has (``(True, value)``), else the task's secrets and environment are set up."""
        # The common case (nothing replayed, no cache) skips both look-ups: they are per action.
        if self.replayed:
            done, value = self._recorded(call)
            if done:
                return True, value
        if key is not None:
            hit, value = self._cache_lookup(call, key)
            if hit:
                self.ledger.finish(call.name, "SUCCEEDED", None, True)
                return True, value
        if call.task.secrets:
            self._provide_secrets(call)
        if call.task.env_vars or self.env_vars:
            self._set_env(call)
        return False, None

    async def _execute_async(self, call: Call, key: str | None) -> Any:
        done, value = self._prepare_attempts(call, key)
        if done:
            return value
        task = call.task
        while True:
            attempt = self.ledger.start_attempt(call.name)
            limit = None if task.timeout is None else self._limit(call)
            child = self._child(call, attempt)
            kwargs = call.native_kwargs
            if kwargs is None:
                kwargs = task.interface.literals_to_inputs(call.inputs_pb)
            token = _current.set(child)
            try:
                if limit is None:
                    result = await task.body(**kwargs)
                else:
                    result = await _async_with_timeout(task.body(**kwargs), child, limit)
            except asyncio.CancelledError:
                self.ledger.finish(call.name, "ABORTED", "cancelled", error_code="Cancelled")
                raise
            except Exception as e:
                err = explain_await_error(e, child)
                delay = self._attempt_failed(call, attempt, err)
                if delay is None:
                    raise as_user_error(err, task.name) from None
                if delay:
                    await asyncio.sleep(delay)
                continue
            finally:
                _current.reset(token)
            return self._succeeded(call, key, result, child)

    def execute_sync(self, call: Call) -> Any:
        key = self._cache_key(call)
        if key is None or not call.task.cache.serialize:
            return self._execute_sync(call, key)
        ticket = cache.cache_ticket()
        try:
            cache.cache_turn_blocking(key, ticket)
            return self._execute_sync(call, key)
        finally:
            cache.cache_done(key, ticket)

    def _execute_sync(self, call: Call, key: str | None) -> Any:
        done, value = self._prepare_attempts(call, key)
        if done:
            return value
        task = call.task
        while True:
            attempt = self.ledger.start_attempt(call.name)
            limit = None if task.timeout is None else self._limit(call)
            child = self._child(call, attempt)
            kwargs = call.native_kwargs
            if kwargs is None:
                kwargs = task.interface.literals_to_inputs(call.inputs_pb)
            token = _current.set(child)
            try:
                if limit is None:
                    result = finish_returned_coroutine(task.body(**kwargs))
                else:
                    result = finish_returned_coroutine(_sync_with_timeout(task.body, kwargs, child, limit))
            except Exception as e:
                delay = self._attempt_failed(call, attempt, e)
                if delay is None:
                    raise as_user_error(e, task.name) from None
                if delay:
                    time.sleep(delay)
                continue
            finally:
                _current.reset(token)
            return self._succeeded(call, key, result, child)

    # -- conditions: asked for on the terminal ---------------------------------------------

    async def register_condition(self, c: ActionContext, condition: Any) -> None:
        name = self.condition_action(c, condition)
        if condition.webhook is not None and name not in self.replayed:
            # No server receives signals here: the value is typed at the terminal. The callback
            # names the condition for whoever the webhook tells.
            failure = await asyncio.to_thread(
                notify.fire_condition_webhook,
                webhook_spec(condition.webhook).SerializeToString(),
                f"local://conditions/{condition.name}/signal",
            )
            if failure:
                log.warning("%s", failure)
        condition._registered = True

    async def wait_condition(self, c: ActionContext, condition: Any) -> Any:
        from flyteidl2.core import literals_pb2

        if not condition._registered:
            await self.register_condition(c, condition)
        name = self.condition_action(c, condition)
        raw = self.replayed.pop(name, None)
        if raw is not None:
            self.ledger.replayed(name)
            return literal_value(literals_pb2.Literal.FromString(raw), condition.data_type)
        record = self.ledger.get(name)
        if record is not None and ledger.is_terminal(record.phase):
            raise ConditionFailedError(f"condition {condition.name!r} already ended ({record.phase})")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def ask() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (_ask_terminal(condition), None)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting task
                outcome = (None, e)
            try:
                loop.call_soon_threadsafe(_settle, answer, *outcome)
            except RuntimeError:
                pass  # the run is over (the wait timed out): nobody wants the answer now

        # A daemon thread: a prompt nobody answers must not keep the process from exiting.
        threading.Thread(target=ask, name=f"flyte-condition-{condition.name}", daemon=True).start()
        try:
            value = await asyncio.wait_for(answer, condition.timeout_seconds)
        except asyncio.TimeoutError:
            err: BaseException = ConditionTimedoutError(
                f"condition {condition.name!r} was not signalled within {condition.timeout_seconds}s"
            )
            self.condition_ended(name, "TIMED_OUT", err)
            raise err from None
        except EOFError:
            err = ConditionFailedError(
                f"condition {condition.name!r} got no value: the terminal's input ended"
            )
            self.condition_ended(name, "FAILED", err)
            raise err from None
        self.ledger.finish(
            name, "SUCCEEDED", outputs=to_literal(value, condition.data_type).SerializeToString()
        )
        return value

    async def execute_root(self, call: Call) -> Any:
        self.loop = asyncio.get_running_loop()
        if call.task.is_async:
            return await self.execute_async(call)
        return await self.execute_sync_in_thread(call)


#: One prompt on the terminal at a time: conditions waited for concurrently take turns.
_PROMPT_LOCK = threading.Lock()


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def _ask_terminal(condition: Any) -> Any:
    """Reads the condition's value from standard input, asking again until it parses."""
    import sys

    with _PROMPT_LOCK:
        out = sys.stderr
        out.write(f"\nCondition {condition.name!r}")
        if condition.description:
            out.write(f": {condition.description}")
        kind = "y/n" if condition.data_type is bool else condition.data_type.__name__
        while True:
            out.write(f"\n{condition.prompt} [{kind}]: ")
            out.flush()
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            try:
                return parse_value(line.rstrip("\n"), condition.data_type)
            except ValueError as e:
                out.write(f"{e}")


def _timed_out(child: ActionContext, limit: tuple[float, bool]) -> TaskTimeoutError:
    """The error an attempt of ``child`` gets when it ran past its limit (``limit[1]``: the
    limit was the action's deadline rather than one attempt's runtime)."""
    seconds, deadline = limit
    task = child.task
    assert task is not None
    what = "reached its deadline" if deadline else "timed out"
    message = f"{task.name} ({child.action_name}) {what} after {seconds:g}s"
    err: TaskTimeoutError = DeadlineExceededError(message) if deadline else MaxRuntimeExceededError(message)
    err.action_name = child.action_name  # type: ignore[attr-defined]
    return err


async def _async_with_timeout(coro: Any, child: ActionContext, limit: tuple[float, bool]) -> Any:
    inner = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({inner}, timeout=limit[0])
    except asyncio.CancelledError:
        inner.cancel()
        raise
    if inner in done:
        return inner.result()
    child.abandoned = True
    inner.cancel()
    await asyncio.wait({inner}, timeout=1.0)
    raise _timed_out(child, limit)


def _sync_with_timeout(
    func: Any, kwargs: dict[str, Any], child: ActionContext, limit: tuple[float, bool]
) -> Any:
    """Runs sync task code in its own thread so the caller can stop waiting.

    Python cannot stop a thread: after a timeout the code keeps running in the background,
    but its action is marked abandoned, so it cannot start further tasks.
    """
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
    cv = contextvars.copy_context()

    def target() -> None:
        try:
            fut.set_result(cv.run(func, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            fut.set_exception(e)

    threading.Thread(target=target, name=f"flyte-timeout-{child.action_name}", daemon=True).start()
    try:
        return fut.result(timeout=limit[0])
    except concurrent.futures.TimeoutError:
        if fut.done():
            return fut.result()
        child.abandoned = True
        raise _timed_out(child, limit) from None
