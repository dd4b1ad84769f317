"""What every mode does the same way: naming calls, entering sync/async code, threads.

A run's Runner is what ``TaskTemplate.__call__`` talks to. Subclasses decide how a named,
validated call is executed: in this process (local mode) or as an action on a backend.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte._aio import running_loop
from flyte._bridge import ledger
from flyte._context import ActionContext
from flyte._internal._identity import identity_and_serialized, identity_bytes
from flyte._internal._raw_data import run_base
from flyte._storage._uri import join
from flyte.errors import ActionAbortedError
from flyte.report._report import report_for

if TYPE_CHECKING:
    from flyte._condition import _Condition
    from flyte._task import TaskTemplate

#: Threads for sync tasks started with ``.aio()`` (and the root, when it is sync). Nested
#: sync tasks that block on children hold a thread each, so the pool is generous; threads
#: are only created when needed.
_MAX_SYNC_THREADS = 256


@dataclass(slots=True)
class Call:
    """A prepared call: validated inputs and a name in the ledger."""

    task: TaskTemplate[Any, Any, Any]
    parent: ActionContext | None
    name: str
    inputs_pb: Any
    #: What identifies the inputs (data references by content hash), for names and cache keys.
    inputs_bytes: bytes
    #: The inputs as the task takes them, when that needs no conversion back from literals.
    native_kwargs: dict[str, Any] | None = None


class Runner:
    """State of one run (or, on a backend, of one action's process)."""

    mode = "local"
    #: Where the run's actions are recorded durably, when it keeps such a record (local runs).
    journal: Any = None

    def __init__(
        self,
        name: str,
        *,
        run_dir: str | Path,
        project: str | None = None,
        domain: str | None = None,
        org: str | None = None,
        custom_context: dict[str, str] | None = None,
        raw_data_path: str | None = None,
        run_start_time: datetime | None = None,
    ) -> None:
        self.name = name
        #: When the run started (UTC), as ``flyte.ctx().run_start_time`` tells tasks.
        self.run_start_time = run_start_time or datetime.now(timezone.utc)
        self._raw_data_path = raw_data_path
        self._raw_data_base: str | None = None
        self.project = project
        self.domain = domain
        self.org = org
        self.custom_context = dict(custom_context or {})
        #: The run's directory (a local path, or a URI such as ``s3://...`` on a cluster).
        self.run_dir = str(run_dir)
        self.ledger = ledger.Ledger(name)
        #: When each traced call now running began (epoch seconds), by its action name.
        self.trace_starts: dict[str, float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=_MAX_SYNC_THREADS, thread_name_prefix=f"flyte-{name}"
        )

    @property
    def raw_data_base(self) -> str:
        """Where the run's new data goes, ``<raw_data_path or data dir/raw>/<run>``. Worked out
        when first needed: an action on a backend usually has a prefix of its own."""
        if self._raw_data_base is None:
            self._raw_data_base = run_base(self.name, self._raw_data_path)
        return self._raw_data_base

    def report_uri(self, action_name: str) -> str:
        """Where an action's report (``flyte.report``) is written."""
        return join(self.run_dir, action_name, "report.html")

    #: The version of the code this process runs (None: the code in place, not a bundle).
    code_version: str | None = None
    #: Whether the run neither reads nor writes the task cache (``with_runcontext(disable_run_cache=True)``).
    disable_run_cache: bool = False

    @property
    def interactive(self) -> bool:
        """Whether the process that started the run is an interactive session."""
        return hasattr(sys, "ps1") or "ipykernel" in sys.modules

    def output_path(self, action_name: str) -> str | None:
        """Where an action's outputs and report go."""
        return join(self.run_dir, action_name)

    def input_path(self, action_name: str) -> str | None:
        """Where an action's inputs were read from; None when they never left this process."""
        return None

    def checkpoint_of(self, c: ActionContext) -> Any:
        """The checkpoint of attempt ``c`` (None when its runner gave it none)."""
        return c.checkpoint

    def report_of(self, c: ActionContext) -> Any:
        """The report of action ``c`` of this run."""
        return report_for(c)

    def raw_data_prefix(self, action_name: str) -> str:
        """Where an action of this run puts new data (files, offloaded values)."""
        return join(self.raw_data_base, action_name)

    #: Where a backend put this attempt's new data: a per-attempt prefix (None: not a backend's
    #: attempt, or one without its own prefix).
    attempt_raw_data_path: str | None = None

    # -- execution, by mode ---------------------------------------------------------------

    async def execute_async(self, call: Call) -> Any:
        raise NotImplementedError

    def execute_sync(self, call: Call) -> Any:
        raise NotImplementedError

    # Traces: a traced call is named like a sub-action; a backend can hand back the result
    # recorded before a crash (replay) and records new results. Sync variants exist so that
    # sync code never has to block the loop these calls may need.

    async def trace_replay(self, c: ActionContext, name: str, info: Any) -> tuple[bool, Any]:
        """A result recorded for this traced call before a crash, if any."""
        return False, None

    def trace_replay_sync(self, c: ActionContext, name: str, info: Any) -> tuple[bool, Any]:
        return False, None

    async def trace_record(
        self,
        c: ActionContext,
        name: str,
        info: Any,
        inputs: Any,
        result: Any,
        error: BaseException | None,
    ) -> None:
        self.trace_record_sync(c, name, info, inputs, result, error)

    def trace_record_sync(
        self,
        c: ActionContext,
        name: str,
        info: Any,
        inputs: Any,
        result: Any,
        error: BaseException | None,
    ) -> None:
        self.trace_starts.pop(name, None)
        if error is None:
            self.ledger.finish(name, "SUCCEEDED")
        else:
            self.ledger.finish(name, "FAILED", str(error), error_code=type(error).__name__)

    # Conditions: a named sub-action of the task that declares it, which waits for a value
    # from outside the run. Named like any call, so a re-executed task finds its conditions
    # (and the values they were given) again.

    def condition_action(self, c: ActionContext, condition: _Condition[Any]) -> str:
        """The action name of ``condition`` in the task ``c`` (named when first seen)."""
        if condition._action_name is None:
            condition._action_name, _ = self.ledger.submit(
                c.action_name, f"condition:{condition.name}", b"", c.group, condition.name, "condition"
            )
        return condition._action_name

    async def register_condition(self, c: ActionContext, condition: _Condition[Any]) -> None:
        """Declares ``condition`` in the run (its webhook, if any, is called)."""
        raise NotImplementedError

    async def wait_condition(self, c: ActionContext, condition: _Condition[Any]) -> Any:
        """The value ``condition`` is signalled with (declared first if it was not)."""
        raise NotImplementedError

    def condition_ended(self, name: str, phase: str, error: BaseException | None = None) -> None:
        """Records the end of a condition's action once (a condition may be waited for again)."""
        record = self.ledger.get(name)
        if record is not None and not ledger.is_terminal(record.phase):
            if error is None:
                self.ledger.finish(name, phase)
            else:
                self.ledger.finish(name, phase, str(error), error_code=type(error).__name__)

    def cache_key(self, call: Call) -> str | None:
        """The call's cache key, or None when its task does not cache.

        Ignored inputs are left out; everything else that defines the task's version is in.
        """
        cache = call.task.cache
        if cache.behavior == "disable":
            return None
        data = call.inputs_bytes
        task = call.task
        if cache.ignored_inputs:
            kept = type(call.inputs_pb)()
            kept.literals.extend(
                lit for lit in call.inputs_pb.literals if lit.name not in cache.ignored_inputs
            )
            data = identity_bytes(kept, task.inputs_have_references)
        return ledger.cache_key(
            task.name, task.interface.interface_hash(), task.cache_version, data, cache.salt or ""
        )

    # -- preparing calls ----------------------------------------------------------------

    def prepare(
        self, task: TaskTemplate[Any, Any, Any], parent: ActionContext, args: Any, kwargs: Any
    ) -> Call:
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
        bound = iface.bind(args, kwargs, task.name)
        inputs_pb = iface.inputs_to_literals(bound, task.name, task.max_inline_io_bytes)
        data, serialized = identity_and_serialized(inputs_pb, task.inputs_have_references)
        # A run with a journal records each action's inputs with it.
        literals = serialized if self.journal is not None else None
        name, _ = self.ledger.submit(
            parent.action_name, task.identity, data, parent.group, task.name, "task", literals
        )
        return Call(task, parent, name, inputs_pb, data, iface.native_inputs(bound))

    def prepare_root(self, task: TaskTemplate[Any, Any, Any], args: Any, kwargs: Any) -> Call:
        iface = task.interface
        inputs_pb = iface.inputs_to_literals(
            iface.bind(args, kwargs, task.name), task.name, task.max_inline_io_bytes
        )
        name = self.ledger.record_root(task.name)
        return Call(task, None, name, inputs_pb, identity_bytes(inputs_pb, task.inputs_have_references))

    # -- entry points used by TaskTemplate ------------------------------------------------

    def call_async(
        self, task: TaskTemplate[Any, Any, Any], parent: ActionContext, args: Any, kwargs: Any
    ) -> Any:
        return self.execute_async(self.prepare(task, parent, args, kwargs))

    def call_sync(
        self, task: TaskTemplate[Any, Any, Any], parent: ActionContext, args: Any, kwargs: Any
    ) -> Any:
        return self.execute_sync(self.prepare(task, parent, args, kwargs))

    def call_sync_in_thread(
        self, task: TaskTemplate[Any, Any, Any], parent: ActionContext, args: Any, kwargs: Any
    ) -> Any:
        return self.execute_sync_in_thread(self.prepare(task, parent, args, kwargs))

    def call_blocking(
        self, task: TaskTemplate[Any, Any, Any], parent: ActionContext, args: Any, kwargs: Any
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

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
