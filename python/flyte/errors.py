"""Exceptions raised by the SDK and by tasks.

A task failure reaches its caller as an exception whose class derives both from the
original exception's class and from :class:`RuntimeUserError`, so ``except ValueError``
and ``except flyte.errors.RuntimeUserError`` both catch it.
"""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["user", "system", "unknown"]


class BaseRuntimeError(RuntimeError):
    """Base of every error that the runtime attributes to a task or to the system."""

    kind: ErrorKind = "unknown"
    code: str = "Unknown"

    def __init__(self, code: str | None = None, message: str = "", worker: str | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        self.worker = worker
        super().__init__(message)

    def __str__(self) -> str:
        return self.message if hasattr(self, "message") else super().__str__()


class RuntimeUserError(BaseRuntimeError):
    """A failure caused by user code (an exception raised by a task, a bad input, ...)."""

    kind: ErrorKind = "user"
    code = "UserError"


class RuntimeSystemError(BaseRuntimeError):
    """A failure of the platform: a lost worker, a storage outage, a crashed process."""

    kind: ErrorKind = "system"
    code = "SystemError"


class RuntimeUnknownError(BaseRuntimeError):
    """A failure that could not be attributed."""


class OOMError(RuntimeUserError):
    """The task exceeded its memory limit."""

    code = "OOMKilled"


class TaskTimeoutError(RuntimeUserError):
    """The task ran longer than its ``timeout``."""

    code = "TaskTimeout"


class TaskInterruptedError(RuntimeSystemError):
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


class ActionAbortedError(RuntimeUserError):
    """The action was aborted before it finished."""

    code = "Aborted"


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

    def __init__(self, var: str, message: str, task_name: str = "") -> None:
        self.var = var
        self.task_name = task_name
        where = f"{task_name}: " if task_name else ""
        super().__init__(self.code, f"{where}{var}: {message}")


class NotInTaskContextError(RuntimeUserError):
    """An API that needs a running task was used outside of one."""

    code = "NotInTaskContext"


class InitializationError(RuntimeUserError):
    """``flyte.init`` was not called, or was given a bad configuration."""

    code = "InitializationError"


class ConfigError(InitializationError):
    """A configuration file or value is malformed."""

    code = "ConfigError"


class ModuleLoadError(RuntimeUserError):
    """A module holding tasks could not be loaded."""

    code = "ModuleLoadError"


class ReferenceTaskError(RuntimeUserError):
    """A referenced (remote) task could not be found or called."""

    code = "ReferenceTaskError"


class RemoteTaskError(RuntimeUserError):
    """A remote task failed."""

    code = "RemoteTaskError"


class ActionNotFoundError(RuntimeUserError):
    """No action or run with that name exists."""

    code = "ActionNotFound"


class LogsNotYetAvailableError(RuntimeSystemError):
    """Logs of the action are not available yet."""

    code = "LogsNotYetAvailable"


class ReportError(RuntimeUserError):
    """A report could not be written."""

    code = "ReportError"


class DeploymentError(RuntimeUserError):
    """Deploying an environment failed."""

    code = "DeploymentError"


class ImageBuildError(RuntimeUserError):
    """Building a container image failed."""

    code = "ImageBuildError"


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
    "ConfigError",
    "CustomError",
    "DeploymentError",
    "ImageBuildError",
    "ImagePullBackOffError",
    "InitializationError",
    "InvalidImageNameError",
    "LogsNotYetAvailableError",
    "ModuleLoadError",
    "NotInTaskContextError",
    "OOMError",
    "PrimaryContainerNotFoundError",
    "ReferenceTaskError",
    "RemoteTaskError",
    "ReportError",
    "RetriesExhaustedError",
    "RunConflictError",
    "RuntimeDataValidationError",
    "RuntimeSystemError",
    "RuntimeUnknownError",
    "RuntimeUserError",
    "TaskInterruptedError",
    "TaskTimeoutError",
]
