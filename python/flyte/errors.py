"""Exceptions raised by the SDK and by tasks.

A task failure reaches its caller as an exception whose class derives both from the
original exception's class and from :class:`RuntimeUserError`, so ``except ValueError``
and ``except flyte.errors.RuntimeUserError`` both catch it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, NoReturn, TypeVar

ErrorKind = Literal["user", "system", "unknown"]


def silence_polling_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event-loop exception handler that drops the ``BlockingIOError`` a non-blocking poll
    raises when nothing is ready, and hands everything else to the loop's default handler."""
    if isinstance(context.get("exception"), BlockingIOError):
        return
    loop.default_exception_handler(context)


class BaseRuntimeError(RuntimeError):
    """Base of every error that the runtime attributes to a task or to the system."""

    kind: ErrorKind = "unknown"
    code: str = "Unknown"

    def __init__(
        self, code: str | None, kind: ErrorKind | None, root_cause_message: str, worker: str | None = None
    ) -> None:
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.message = root_cause_message
        self.worker = worker
        super().__init__(root_cause_message)

    def __str__(self) -> str:
        return self.message if hasattr(self, "message") else super().__str__()

    def _reraise(self, *_: object) -> NoReturn:
        # `flyte.map(..., return_exceptions=True)` hands failures back as values; arithmetic on
        # one (`sum(results)`) raises the sub-task's own error rather than a puzzling TypeError.
        raise self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _reraise
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _reraise


class RuntimeUserError(BaseRuntimeError):
    """A failure caused by user code (an exception raised by a task, a bad input, ...)."""

    kind: ErrorKind = "user"
    code = "UserError"

    def __init__(self, code: str | None = None, message: str = "", worker: str | None = None) -> None:
        super().__init__(code, "user", message, worker)


class RuntimeSystemError(BaseRuntimeError):
    """A failure of the platform: a lost worker, a storage outage, a crashed process."""

    kind: ErrorKind = "system"
    code = "SystemError"

    def __init__(self, code: str | None = None, message: str = "", worker: str | None = None) -> None:
        super().__init__(code, "system", message, worker)


class RuntimeUnknownError(BaseRuntimeError):
    """A failure that could not be attributed."""

    def __init__(self, code: str | None = None, message: str = "", worker: str | None = None) -> None:
        super().__init__(code, "unknown", message, worker)


class UnionRpcError(RuntimeSystemError):
    """A call to the backend's API failed (the name is the reference SDK's)."""

    code = "RpcError"


class OOMError(RuntimeUserError):
    """The task exceeded its memory limit."""

    code = "OOMKilled"


#: Codes a backend puts on a failure it attributes to a GPU or NVSwitch fault.
GPU_FAULT_CODES: tuple[str, ...] = (
    "GpuXidError",
    "GpuFallenOffBus",
    "GpuEccUncorrectable",
    "GpuRowRemapPending",
    "GpuNvlinkError",
    "GpuGspError",
)


class GPUFaultError(BaseRuntimeError):
    """The task failed because a GPU (Xid) or NVSwitch (SXid) fault was reported on its node;
    the fault's details are attributes, ``None`` where the backend did not say."""

    def __init__(
        self,
        code: str,
        kind: ErrorKind,
        message: str,
        worker: str | None = None,
        *,
        fault_kind: str | None = None,
        fault_code: int | None = None,
        fault_name: str | None = None,
        severity: str | None = None,
        gpu_uuid: str | None = None,
        gpu_index: int | None = None,
        node: str | None = None,
        pci_bus_id: str | None = None,
        process: str | None = None,
    ) -> None:
        BaseRuntimeError.__init__(self, code, kind, message, worker)
        self.fault_kind = fault_kind
        self.fault_code = fault_code
        self.fault_name = fault_name
        self.severity = severity
        self.gpu_uuid = gpu_uuid
        self.gpu_index = gpu_index
        self.node = node
        self.pci_bus_id = pci_bus_id
        self.process = process

    @property
    def xid(self) -> int | None:
        """The NVIDIA Xid number, when the fault was a GPU Xid."""
        return self.fault_code if self.fault_kind == "xid" else None

    @property
    def sxid(self) -> int | None:
        """The NVSwitch SXid number, when the fault was an NVSwitch SXid."""
        return self.fault_code if self.fault_kind == "sxid" else None


class GPUFaultUserError(GPUFaultError, RuntimeUserError):
    """A GPU fault attributed to the task (e.g. an illegal memory access)."""

    def __init__(self, code: str, message: str, worker: str | None = None, **fault: Any) -> None:
        GPUFaultError.__init__(self, code, "user", message, worker, **fault)


class GPUFaultSystemError(GPUFaultError, RuntimeSystemError):
    """A GPU fault of the hardware or driver; retrying elsewhere may succeed."""

    def __init__(self, code: str, message: str, worker: str | None = None, **fault: Any) -> None:
        GPUFaultError.__init__(self, code, "system", message, worker, **fault)


class TaskTimeoutError(RuntimeUserError):
    """The task ran longer than its ``timeout`` allows."""

    def __init__(self, message: str, code: str = "TaskTimeoutError") -> None:
        super().__init__(code, message)


class MaxRuntimeExceededError(TaskTimeoutError):
    """An attempt ran longer than ``Timeout.max_runtime`` (or a plain ``timeout``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="MaxRuntimeExceededError")


class MaxQueuedTimeExceededError(TaskTimeoutError):
    """The action waited in the queue longer than ``Timeout.max_queued_time``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="MaxQueuedTimeExceededError")


class DeadlineExceededError(TaskTimeoutError):
    """The action, queueing and every retry included, outlived ``Timeout.deadline``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="DeadlineExceededError")


class TaskInterruptedError(RuntimeUserError):
    """An interruptible task's machine was taken away."""

    code = "Interrupted"


class RunConflictError(RuntimeUserError, ValueError):
    """A local run cannot use the name it was given: another process is running it, it is a
    backend run, or it was started with other inputs."""

    code = "RunConflict"


class NonRecoverableError(RuntimeUserError):
    """Raise this from a task to fail it for good: no retry is tried, whatever is left of its
    ``retries``."""

    def __init__(self, message: str, code: str = "NonRecoverableError") -> None:
        super().__init__(code, message)


class RetriesExhaustedError(RuntimeUserError):
    """Every attempt of a task failed."""

    code = "RetriesExhausted"


class CustomError(RuntimeUserError):
    """Raise this (or a subclass) from a task to fail it with a code of your choosing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)

    @classmethod
    def from_exception(cls, e: BaseException) -> CustomError:
        return cls(type(e).__name__, str(e))


class RuntimeDataValidationError(RuntimeUserError, TypeError):
    """A value does not match the declared type of a task input or output."""

    code = "DataValidationError"

    def __init__(self, var: str, e: Exception | str, task_name: str = "") -> None:
        self.var = var
        self.task_name = task_name
        where = f"{task_name}: " if task_name else ""
        super().__init__(self.code, f"{where}{var}: {e}")


class NotInTaskContextError(RuntimeUserError):
    """An API that needs a running task was used outside of one."""

    code = "NotInTaskContext"


_Init = TypeVar("_Init", bound="InitializationError")


class InitializationError(BaseRuntimeError):
    """``flyte.init`` was not called, or was given a bad configuration."""

    kind: ErrorKind = "user"
    code = "InitializationError"

    def __init__(
        self, code: str | None, kind: ErrorKind | None, root_cause_message: str, worker: str | None = None
    ) -> None:
        super().__init__(code, kind, root_cause_message, worker)

    @classmethod
    def because(cls: type[_Init], message: str) -> _Init:
        """The error with this class's code and kind, saying ``message``."""
        return cls(None, None, message)


class ConfigError(InitializationError):
    """A configuration file or value is malformed."""

    code = "ConfigError"


class _CodedUserError(RuntimeUserError):
    """A user error whose constructor takes only a message: the class fixes the code."""

    def __init__(self, message: str) -> None:
        super().__init__(self.code, message)


class ActionAbortedError(_CodedUserError):
    """The action was aborted before it finished."""

    code = "ActionAbortedError"


class CodeBundleError(_CodedUserError):
    """The code bundle of a run could not be made, uploaded or unpacked."""

    code = "CodeBundleError"


class ConditionAlreadyExistsError(_CodedUserError):
    """A condition with that name already exists in the run."""

    code = "ConditionAlreadyExistsError"


class ConditionFailedError(_CodedUserError):
    """A condition was resolved as failed."""

    code = "ConditionFailedError"


class ConditionNotFoundError(_CodedUserError):
    """No condition with that name exists in the run."""

    code = "ConditionNotFoundError"


class ConditionTimedoutError(_CodedUserError):
    """Nobody resolved a condition before its timeout."""

    code = "ConditionTimedoutError"


class DeploymentError(_CodedUserError):
    """Deploying an environment failed."""

    code = "DeploymentError"


class ImageBuildError(_CodedUserError):
    """Building or pushing a container image failed."""

    code = "ImageBuildError"


class InlineIOMaxBytesBreached(_CodedUserError):
    """Inputs or outputs passed inline exceed the task's ``max_inline_io_bytes``."""

    code = "InlineIOMaxBytesBreached"


class ModuleLoadError(_CodedUserError):
    """A module holding tasks could not be loaded."""

    code = "ModuleLoadError"


class OnlyAsyncIOSupportedError(_CodedUserError):
    """The call needs an asyncio event loop (another loop implementation is running)."""

    code = "OnlyAsyncIOSupportedError"


class ParameterMaterializationError(_CodedUserError):
    """A parameter's value could not be produced."""

    code = "ParameterMaterializationError"


class RestrictedTypeError(_CodedUserError):
    """A value of a type that cannot cross a task boundary was passed or returned."""

    code = "RestrictedTypeUsage"


class SyncTaskCallInAsyncContextError(_CodedUserError):
    """A sync task was called directly inside a running event loop; use ``await task.aio(...)``."""

    code = "SyncTaskCallInAsyncContextError"


class TraceDoesNotAllowNestedTasksError(_CodedUserError):
    """A ``@flyte.trace`` function called a task; traces record plain functions only."""

    code = "TraceDoesNotAllowNestedTasksError"


class SlowDownError(_CodedUserError):
    """The backend asked the client to slow down."""

    code = "SlowDownError"


class ResourceExhaustedError(SlowDownError):
    """The backend is out of a resource (quota, capacity) for now."""

    code = "ResourceExhaustedError"


class RemoteTaskNotFoundError(_CodedUserError):
    """No deployed task has that name (and version)."""

    CODE = code = "RemoteTaskNotFoundError"


class RemoteTaskUsageError(_CodedUserError):
    """A remote task was used in a way it cannot be (e.g. called outside a run)."""

    CODE = code = "RemoteTaskUsageError"


class InvalidPackageError(RuntimeUserError):
    """A package named for an image or an environment cannot be installed."""

    code = "InvalidPackageError"

    def __init__(self, package_name: str, original_error: str) -> None:
        self.package_name = package_name
        super().__init__(self.code, f"package {package_name!r} cannot be installed: {original_error}")


class ActionNotFoundError(RuntimeUserError):
    """No action or run with that name exists."""

    code = "ActionNotFound"


class LogsNotYetAvailableError(BaseRuntimeError):
    """Logs of the action are not available yet."""

    kind: ErrorKind = "system"
    code = "LogsNotYetAvailable"

    def __init__(self, message: str) -> None:
        super().__init__(self.code, "system", message)


class ReferenceTaskError(RuntimeUserError):
    """A referenced (remote) task could not be found or called."""

    code = "ReferenceTaskError"


class RemoteTaskError(RuntimeUserError):
    """A remote task failed."""

    code = "RemoteTaskError"


class ReportError(RuntimeUserError):
    """A report could not be written."""

    code = "ReportError"


class InvalidImageNameError(RuntimeUserError, ValueError):
    """An image name or URI is not valid."""

    code = "InvalidImageName"


class ImagePullBackOffError(RuntimeUserError):
    """The container image could not be pulled."""

    code = "ImagePullBackOff"


class PrimaryContainerNotFoundError(RuntimeUserError):
    """The pod template names no primary container."""

    code = "PrimaryContainerNotFound"


__all__ = [
    "ActionAbortedError",
    "ActionNotFoundError",
    "BaseRuntimeError",
    "CodeBundleError",
    "ConditionAlreadyExistsError",
    "ConditionFailedError",
    "ConditionNotFoundError",
    "ConditionTimedoutError",
    "ConfigError",
    "CustomError",
    "DeadlineExceededError",
    "DeploymentError",
    "ErrorKind",
    "GPUFaultError",
    "GPUFaultSystemError",
    "GPUFaultUserError",
    "GPU_FAULT_CODES",
    "ImageBuildError",
    "ImagePullBackOffError",
    "InitializationError",
    "InlineIOMaxBytesBreached",
    "InvalidImageNameError",
    "InvalidPackageError",
    "LogsNotYetAvailableError",
    "MaxQueuedTimeExceededError",
    "MaxRuntimeExceededError",
    "ModuleLoadError",
    "NonRecoverableError",
    "NotInTaskContextError",
    "OOMError",
    "OnlyAsyncIOSupportedError",
    "ParameterMaterializationError",
    "PrimaryContainerNotFoundError",
    "ReferenceTaskError",
    "RemoteTaskError",
    "RemoteTaskNotFoundError",
    "RemoteTaskUsageError",
    "ReportError",
    "ResourceExhaustedError",
    "RestrictedTypeError",
    "RetriesExhaustedError",
    "RunConflictError",
    "RuntimeDataValidationError",
    "RuntimeSystemError",
    "RuntimeUnknownError",
    "RuntimeUserError",
    "SlowDownError",
    "SyncTaskCallInAsyncContextError",
    "TaskInterruptedError",
    "TaskTimeoutError",
    "TraceDoesNotAllowNestedTasksError",
    "UnionRpcError",
    "silence_polling_error",
]
