"""Turning an exception raised by task code into what the caller of the task sees."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from flyte.errors import BaseRuntimeError, NonRecoverableError, RuntimeUserError

if TYPE_CHECKING:
    from flyte._context import ActionContext

_AWAIT_ERROR = "can't be used in 'await' expression"

_combined: dict[type[BaseException], type[BaseException] | None] = {}
_lock = threading.Lock()


def _combined_class(cls: type[BaseException]) -> type[BaseException] | None:
    """A class deriving from both ``cls`` and RuntimeUserError, named like ``cls``.

    Returns None when Python cannot combine the two (incompatible instance layouts).
    """
    with _lock:
        if cls in _combined:
            return _combined[cls]
        try:
            new = type(
                cls.__name__, (cls, RuntimeUserError), {"__module__": cls.__module__, "code": cls.__name__}
            )
            new.__qualname__ = cls.__qualname__
            new.__str__ = cls.__str__  # type: ignore[method-assign,assignment]
        except TypeError:
            new = None
        _combined[cls] = new
        return new


def is_recoverable(exc: BaseException) -> bool:
    """Whether another attempt could help: the task's retries apply to every failure of its
    own except a :class:`NonRecoverableError`."""
    return not isinstance(exc, NonRecoverableError)


def as_user_error(exc: BaseException, task_name: str, worker: str | None = None) -> BaseException:
    """The exception a task's caller receives for ``exc``, raised by the task's own code.

    Errors that already are runtime errors (timeouts, OOM, a failure that came up from a
    deeper task) pass through unchanged.
    """
    if isinstance(exc, BaseRuntimeError) or not isinstance(exc, Exception):
        return exc
    cls = _combined_class(type(exc))
    message = str(exc)
    if cls is None:
        fallback = RuntimeUserError(type(exc).__name__, f"{type(exc).__name__}: {message}", worker)
        fallback.__cause__ = exc
        return fallback
    new: Any = BaseException.__new__(cls)
    new.args = exc.args
    try:
        new.__dict__.update(exc.__dict__)
    except AttributeError:
        pass
    new.message = message
    new.worker = worker
    new.task_name = task_name
    new.__traceback__ = exc.__traceback__
    new.__cause__ = exc.__cause__
    new.__context__ = exc.__context__
    return new  # type: ignore[no-any-return]


def explain_await_error(e: Exception, child: ActionContext) -> Exception:
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
