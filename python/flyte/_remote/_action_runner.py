"""Running inside an action's process on a backend (embedded or a cluster).

Each sub-task call becomes a flyteidl2 ``Action`` submitted through the Rust controller,
which enqueues it (idempotently: a re-executed parent re-derives the same names and so
finds the children it already started) and waits for it to finish. Retries, timeouts and
memory limits are the backend's job; this side only names, submits and decodes.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flyte._bridge import controller, ledger
from flyte._condition import literal_type_of, literal_value, webhook_spec
from flyte._context import ActionContext
from flyte._internal import _uris
from flyte._internal._runner import Call, Runner
from flyte._internal._serialize import CodeRef, task_identifier, task_spec
from flyte._task import TaskTemplate
from flyte._task_errors import as_user_error
from flyte.errors import (
    GPU_FAULT_CODES,
    ActionAbortedError,
    ConditionFailedError,
    ConditionTimedoutError,
    DeadlineExceededError,
    GPUFaultSystemError,
    GPUFaultUserError,
    MaxQueuedTimeExceededError,
    MaxRuntimeExceededError,
    OOMError,
    RuntimeSystemError,
    RuntimeUserError,
    TaskTimeoutError,
)

# Codes naming the bound that fired: a backend's, and the error classes' own (a parent that
# re-raised a child's timeout records its class name).
_TIMEOUTS: dict[str, type[TaskTimeoutError]] = {
    "MAX_RUNTIME_EXCEEDED": MaxRuntimeExceededError,
    "QUEUED_TIMEOUT_EXCEEDED": MaxQueuedTimeExceededError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "TaskTimeout": MaxRuntimeExceededError,
    "TaskTimeoutError": TaskTimeoutError,
    "MaxRuntimeExceededError": MaxRuntimeExceededError,
    "MaxQueuedTimeExceededError": MaxQueuedTimeExceededError,
    "DeadlineExceededError": DeadlineExceededError,
}


def _gpu_fault(err: Any) -> dict[str, Any]:
    """The typed GPU fault a backend attached to a failure, as GPUFaultError's keywords; only
    what it set (the message is prose and is not parsed)."""
    from flyteidl2.core import execution_pb2

    if not err.HasField("gpu_fault"):
        return {}
    fault = err.gpu_fault
    kinds = {execution_pb2.GpuFault.KIND_XID: "xid", execution_pb2.GpuFault.KIND_SXID: "sxid"}
    severities = {
        execution_pb2.GpuFault.SEVERITY_USER: "user",
        execution_pb2.GpuFault.SEVERITY_WARN: "warn",
        execution_pb2.GpuFault.SEVERITY_CRITICAL: "critical",
    }
    fields: dict[str, Any] = {
        "fault_kind": kinds.get(fault.kind),
        "fault_code": fault.code or None,
        "fault_name": fault.name or None,
        "severity": severities.get(fault.severity),
        "gpu_uuid": fault.gpu_uuid or None,
        "node": fault.node or None,
        "pci_bus_id": fault.pci_bus_id or None,
        "process": fault.process or None,
    }
    if fault.HasField("gpu_index"):
        fields["gpu_index"] = fault.gpu_index
    return {k: v for k, v in fields.items() if v is not None}


def error_from_update(task_name: str, phase_name: str, err: Any) -> BaseException:
    """The exception a caller sees for a failed child, rebuilt from its ExecutionError."""
    from flyteidl2.core import execution_pb2

    code, message = err.code, err.message or f"{task_name} ended in phase {phase_name}"
    timeout = _TIMEOUTS.get(code)
    if timeout is not None or phase_name == "ACTION_PHASE_TIMED_OUT":
        return (timeout or TaskTimeoutError)(message)
    if code in GPU_FAULT_CODES:
        fault = _gpu_fault(err)
        if err.kind == execution_pb2.ExecutionError.ErrorKind.SYSTEM:
            return GPUFaultSystemError(code, message, err.worker or None, **fault)
        return GPUFaultUserError(code, message, err.worker or None, **fault)
    if "OOM" in code.upper():
        return OOMError(code, message, err.worker or None)
    if phase_name == "ACTION_PHASE_ABORTED":
        return ActionAbortedError(message)
    if err.kind == execution_pb2.ExecutionError.ErrorKind.SYSTEM:
        return RuntimeSystemError(code or "SystemError", message)
    if err.error_uri:
        try:
            import cloudpickle

            # The backend points at the attempt's error.pb; the runtime pickles the exception
            # beside it.
            pickled = _uris.join(err.error_uri.rsplit("/", 1)[0], "error.pkl")
            exc = cloudpickle.loads(_uris.read_bytes(pickled))
            if isinstance(exc, BaseException):
                return as_user_error(exc, task_name)
        except Exception:  # noqa: BLE001 - the code and message below still say what happened
            pass
    import builtins

    builtin = getattr(builtins, code, None) if code else None
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        # Without the pickled original, a builtin type is still worth keeping for `except`.
        try:
            return as_user_error(builtin(message), task_name)
        except Exception:  # noqa: BLE001 - exotic constructors: fall through
            pass
    return RuntimeUserError(code or "UserError", message)


def with_context(inputs: Any, custom_context: Any) -> Any:
    """Inputs carrying the caller's custom context (flyteidl2 ``Inputs.context``).

    The context travels with the inputs but is not part of the action's name: names are
    derived from the inputs alone, before this is added.
    """
    if not custom_context:
        return inputs
    out = type(inputs)()
    out.CopyFrom(inputs)
    for k, v in sorted(custom_context.items()):
        out.context.add(key=k, value=v)
    return out


class ActionRunner(Runner):
    """The runner of one action's process: its sub-actions go to the backend."""

    mode = "remote"

    def __init__(
        self,
        run_name: str,
        *,
        action_name: str,
        controller: Any,
        run_output_base: str,
        code: CodeRef,
        outputs_prefix: str,
        project: str | None,
        domain: str | None,
        org: str | None,
        run_start_time: datetime | None = None,
        raw_data_path: str | None = None,
    ) -> None:
        super().__init__(
            run_name,
            run_dir=run_output_base,
            project=project,
            domain=domain,
            org=org,
            run_start_time=run_start_time,
        )
        self.action_name = action_name
        self.outputs_prefix = outputs_prefix
        self.controller = controller
        self.run_output_base = run_output_base
        self.code = code
        self.code_version = code.version or None
        #: Where this process's action read its inputs (set by the runtime).
        self.inputs_uri: str | None = None
        #: Where the backend wants this action's new data (None: under the run's base).
        self.attempt_raw_data_path = raw_data_path.rstrip("/") if raw_data_path else None
        self._specs: dict[int, tuple[Any, Any, Any]] = {}

    @property
    def interactive(self) -> bool:
        return False  # a backend's action process: its code came from a bundle or an image

    def output_path(self, action_name: str) -> str | None:
        if action_name == self.action_name:
            return self.outputs_prefix
        return super().output_path(action_name)

    def input_path(self, action_name: str) -> str | None:
        return self.inputs_uri if action_name == self.action_name else None

    def report_uri(self, action_name: str) -> str:
        # This process runs one action; its report goes beside its outputs, where the
        # backend (and a cluster's console) looks for it.
        if action_name == self.action_name:
            return _uris.join(self.outputs_prefix, "report.html")
        return super().report_uri(action_name)

    def raw_data_prefix(self, action_name: str) -> str:
        # Everything this attempt runs belongs to its own action (traces included); the
        # backend chose where that action's data goes.
        return self.attempt_raw_data_path or super().raw_data_prefix(action_name)

    def close(self) -> None:
        super().close()
        # The controller may serve further attempts (a reusable worker's): this one's watch of
        # its children is no longer needed.
        self.controller.release(self.action_id(self.action_name).SerializeToString())

    # -- identities -----------------------------------------------------------------------

    def action_id(self, name: str) -> Any:
        from flyteidl2.common import identifier_pb2

        return identifier_pb2.ActionIdentifier(
            run=identifier_pb2.RunIdentifier(
                org=self.org or "", project=self.project or "", domain=self.domain or "", name=self.name
            ),
            name=name,
        )

    def _spec(self, task: TaskTemplate[Any, Any, Any]) -> tuple[Any, Any]:
        # Per task object, not per name: `task.override(...)` makes a same-named task whose
        # resources, retries or timeout differ.
        cached = self._specs.get(id(task))
        if cached is None or cached[0] is not task:
            if not isinstance(task, TaskTemplate):
                # A deployed task (flyte.remote's, a layer above) runs its own code, as
                # deployed: its id and spec as found.
                return task.task_id, task.spec
            kw = {"project": self.project, "domain": self.domain, "org": self.org}
            cached = (task, task_identifier(task, self.code, **kw), task_spec(task, self.code, **kw))
            self._specs[id(task)] = cached
        return cached[1], cached[2]

    # -- sub-actions ----------------------------------------------------------------------

    async def execute_async(self, call: Call) -> Any:
        from flyteidl2.workflow import state_service_pb2

        self.ledger.start_attempt(call.name)
        task, name = call.task, call.name
        try:
            # Serialized in a call of its own: the messages (each with its own arena, several
            # KB) are gone while the child runs, which matters with thousands waiting.
            submitted = self.controller.submit(self._action_bytes(call))
            # Nor are the call's inputs (a message, native values) kept while it runs.
            del call
            raw = await submitted
        except controller.ControllerError as e:
            self.ledger.finish(name, "FAILED", str(e), error_code=e.code)
            raise RuntimeSystemError(e.code, f"submitting {task.name} ({name}) failed: {e.message}") from None
        update = state_service_pb2.ActionUpdate.FromString(raw)
        return self._result(task, name, update)

    def _action_bytes(self, call: Call) -> bytes:
        """The serialized ``Action`` of a sub-task call, its inputs written where it reads them."""
        from flyteidl2.actions import actions_service_pb2
        from flyteidl2.workflow import run_definition_pb2

        task = call.task
        parent = call.parent
        assert parent is not None
        input_uri = _uris.join(self.run_output_base, call.name, "inputs.pb")
        if not _uris.exists(input_uri):
            _uris.write_bytes(
                input_uri, with_context(call.inputs_pb, parent.custom_context).SerializeToString()
            )
        tid, spec = self._spec(task)
        task_action = run_definition_pb2.TaskAction(id=tid, spec=spec, queue=task.queue or "")
        key = self.cache_key(call)
        if key is not None:
            task_action.cache_key.value = key
        action = actions_service_pb2.Action(
            action_id=self.action_id(call.name),
            parent_action_name=parent.action_name,
            input_uri=input_uri,
            run_output_base=self.run_output_base,
            group=parent.group or "",
            task=task_action,
        )
        return action.SerializeToString()

    def _result(self, task: TaskTemplate[Any, Any, Any], name: str, update: Any) -> Any:
        from flyteidl2.common import phase_pb2
        from flyteidl2.task import common_pb2

        phase = phase_pb2.ActionPhase.Name(update.phase)
        if ledger.is_success(phase):
            outputs = common_pb2.Outputs.FromString(
                _uris.read_bytes(_uris.join(update.output_uri, "outputs.pb"))
            )
            self.ledger.finish(name, "SUCCEEDED")
            return task.interface.literals_to_outputs(outputs)
        err = error_from_update(task.name, phase, update.error)
        short = phase.removeprefix("ACTION_PHASE_")
        self.ledger.finish(
            name,
            short if short in ("FAILED", "ABORTED", "TIMED_OUT") else "FAILED",
            str(err),
            error_code=type(err).__name__,
        )
        return _raise(err)

    def execute_sync(self, call: Call) -> Any:
        import asyncio

        with self.blocking_loop() as loop:
            return asyncio.run_coroutine_threadsafe(self.execute_async(call), loop).result()

    async def execute_sync_in_thread(self, call: Call) -> Any:
        # Nothing runs here: the child is another process, so no thread is needed.
        return await self.execute_async(call)

    # -- conditions -----------------------------------------------------------------------

    async def register_condition(self, c: ActionContext, condition: Any) -> None:
        from flyteidl2.actions import actions_service_pb2
        from flyteidl2.workflow import run_definition_pb2
        from google.protobuf import duration_pb2

        name = self.condition_action(c, condition)
        spec = run_definition_pb2.ConditionAction(
            name=condition.name,
            type=literal_type_of(condition.data_type),
            prompt=condition.prompt,
            description=condition.description,
            prompt_type=(
                run_definition_pb2.CONDITION_PROMPT_TYPE_MARKDOWN
                if condition.prompt_type == "markdown"
                else run_definition_pb2.CONDITION_PROMPT_TYPE_TEXT
            ),
        )
        seconds = condition.timeout_seconds
        if seconds is not None:
            spec.timeout.CopyFrom(duration_pb2.Duration(seconds=int(seconds), nanos=int(seconds % 1 * 1e9)))
        if condition.webhook is not None:
            spec.webhook.CopyFrom(webhook_spec(condition.webhook))
        action = actions_service_pb2.Action(
            action_id=self.action_id(name),
            parent_action_name=c.action_name,
            # A condition takes no inputs; the place is named as for any action.
            input_uri=_uris.join(self.run_output_base, name, "inputs.pb"),
            run_output_base=self.run_output_base,
            group=c.group or "",
            condition=spec,
        )
        try:
            # Idempotent: a task run again after a crash finds the condition it declared.
            await self.controller.enqueue(action.SerializeToString())
        except controller.ControllerError as e:
            self.condition_ended(name, "FAILED", RuntimeSystemError(e.code, e.message))
            raise RuntimeSystemError(
                e.code, f"declaring condition {condition.name!r} ({name}) failed: {e.message}"
            ) from None
        condition._registered = True

    async def wait_condition(self, c: ActionContext, condition: Any) -> Any:
        from flyteidl2.common import phase_pb2
        from flyteidl2.workflow import state_service_pb2

        if not condition._registered:
            await self.register_condition(c, condition)
        name = self.condition_action(c, condition)
        try:
            raw = await self.controller.wait(self.action_id(name).SerializeToString(), c.action_name)
        except controller.ControllerError as e:
            raise RuntimeSystemError(
                e.code, f"waiting for condition {condition.name!r} ({name}) failed: {e.message}"
            ) from None
        update = state_service_pb2.ActionUpdate.FromString(raw)
        phase = phase_pb2.ActionPhase.Name(update.phase).removeprefix("ACTION_PHASE_")
        if phase == "SUCCEEDED" and update.HasField("value"):
            value = literal_value(update.value, condition.data_type)
            self.condition_ended(name, "SUCCEEDED")
            return value
        detail = update.error.message or f"it ended {phase}"
        err: BaseException
        if phase == "ABORTED":
            err = ActionAbortedError(f"condition {condition.name!r} was aborted: {detail}")
        elif phase == "TIMED_OUT":
            err = ConditionTimedoutError(f"condition {condition.name!r} was not signalled in time: {detail}")
        else:
            err = ConditionFailedError(f"condition {condition.name!r} failed: {detail}")
        self.condition_ended(name, phase if phase in ("ABORTED", "TIMED_OUT") else "FAILED", err)
        raise err

    # -- traces ---------------------------------------------------------------------------

    async def trace_replay(self, c: ActionContext, name: str, info: Any) -> tuple[bool, Any]:
        from flyteidl2.common import phase_pb2
        from flyteidl2.task import common_pb2
        from flyteidl2.workflow import state_service_pb2

        raw = await self.controller.get(self.action_id(name).SerializeToString(), c.action_name)
        if raw is None:
            return False, None
        update = state_service_pb2.ActionUpdate.FromString(raw)
        if not ledger.is_success(phase_pb2.ActionPhase.Name(update.phase)):
            return False, None
        outputs = common_pb2.Outputs.FromString(_uris.read_bytes(_uris.join(update.output_uri, "outputs.pb")))
        return True, info.interface.literals_to_outputs(outputs)

    def trace_replay_sync(self, c: ActionContext, name: str, info: Any) -> tuple[bool, Any]:
        import asyncio

        with self.blocking_loop() as loop:
            return asyncio.run_coroutine_threadsafe(self.trace_replay(c, name, info), loop).result()

    async def trace_record(
        self,
        c: ActionContext,
        name: str,
        info: Any,
        inputs: Any,
        result: Any,
        error: BaseException | None,
    ) -> None:
        from flyteidl2.actions import actions_service_pb2
        from flyteidl2.common import phase_pb2
        from flyteidl2.task import common_pb2, task_definition_pb2
        from flyteidl2.workflow import run_definition_pb2

        started = self.trace_starts.get(name)
        super().trace_record_sync(c, name, info, inputs, result, error)
        prefix = _uris.join(self.run_output_base, name, "trace") + "/"
        # As for a task action, the inputs the trace was called with are kept beside it.
        input_uri = prefix + "inputs.pb"
        _uris.write_bytes(input_uri, inputs.SerializeToString())
        phase = phase_pb2.ActionPhase.ACTION_PHASE_SUCCEEDED
        if error is None:
            try:
                outputs = info.interface.outputs_to_literals(result, info.name)
            except Exception:  # noqa: BLE001 - an unrecordable result just is not replayed
                return
            _uris.write_bytes(prefix + "outputs.pb", outputs.SerializeToString())
        else:
            phase = phase_pb2.ActionPhase.ACTION_PHASE_FAILED
        trace = run_definition_pb2.TraceAction(
            name=info.name,
            phase=phase,
            outputs=common_pb2.OutputReferences(output_uri=prefix),
            spec=task_definition_pb2.TraceSpec(interface=info.interface.to_typed_interface()),
        )
        now = time.time()
        trace.start_time.FromNanoseconds(int((started or now) * 1e9))
        trace.end_time.FromNanoseconds(int(now * 1e9))
        action = actions_service_pb2.Action(
            action_id=self.action_id(name),
            parent_action_name=c.action_name,
            input_uri=input_uri,
            run_output_base=self.run_output_base,
            group=c.group or "",
            trace=trace,
        )
        try:
            await self.controller.enqueue(action.SerializeToString())
        except controller.ControllerError:
            # A trace that cannot be recorded only costs a re-run after a crash.
            pass

    def trace_record_sync(
        self,
        c: ActionContext,
        name: str,
        info: Any,
        inputs: Any,
        result: Any,
        error: BaseException | None,
    ) -> None:
        import asyncio

        with self.blocking_loop() as loop:
            record = self.trace_record(c, name, info, inputs, result, error)
            asyncio.run_coroutine_threadsafe(record, loop).result()


def _raise(err: BaseException) -> Any:
    raise err
