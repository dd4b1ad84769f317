"""``@flyte.trace``: record a helper function's calls as actions of the running task.

A traced call runs inline, in the task's own process, but gets a deterministic action
name like a sub-task does, so it is visible in the run's record and (on a backend) its
result can be replayed when the task is recovered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from flyte import _context
from flyte._cache import body_hash

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

F = TypeVar("F", bound=Callable[..., Any])


class _TraceInfo:
    """What the ledger needs about a traced function, computed once."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.name = f"{func.__module__}.{func.__qualname__}"
        self._identity: str | None = None
        self._interface: Any = None

    @property
    def interface(self) -> Any:
        if self._interface is None:
            import warnings

            from flyte._types import NativeInterface

            # Helpers are often unannotated; pickling their values is expected, not news.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._interface = NativeInterface.from_function(self.func)
        return self._interface

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = f"trace|{self.name}|{body_hash(self.func)}"
        return self._identity

    def inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The call's inputs as a flyteidl2 ``Inputs`` message."""
        iface = self.interface
        return iface.inputs_to_literals(iface.bind(args, kwargs, self.name), self.name)


def _begin(
    info: _TraceInfo, c: _context.ActionContext, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """Names the call in the ledger; returns the name and the call's inputs."""
    from flyte._internal._identity import identity_bytes

    inputs = info.inputs(args, kwargs)
    ledger = c.run.ledger
    name, _ = ledger.submit(
        c.action_name, info.identity, identity_bytes(inputs, references=True), c.group, info.name, "trace"
    )
    ledger.start_attempt(name)
    return name, inputs


def _replayed(c: _context.ActionContext, name: str) -> None:
    c.run.ledger.finish(name, "SUCCEEDED", None, True)


def trace(func: F) -> F:
    """Records every call of ``func`` made inside a task as a traced action."""
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        raise TypeError(f"@flyte.trace does not support generator functions ({func.__qualname__})")
    info = _TraceInfo(func)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            c = _context.current()
            if c is None:
                return await func(*args, **kwargs)
            name, inputs = _begin(info, c, args, kwargs)
            found, value = await c.run.trace_replay(c, name, info)
            if found:
                _replayed(c, name)
                return value
            try:
                result = await func(*args, **kwargs)
            except Exception as e:
                await c.run.trace_record(c, name, info, inputs, None, e)
                raise
            await c.run.trace_record(c, name, info, inputs, result, None)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c = _context.current()
        if c is None:
            return func(*args, **kwargs)
        name, inputs = _begin(info, c, args, kwargs)
        found, value = c.run.trace_replay_sync(c, name, info)
        if found:
            _replayed(c, name)
            return value
        try:
            result = func(*args, **kwargs)
        except Exception as e:
            c.run.trace_record_sync(c, name, info, inputs, None, e)
            raise
        c.run.trace_record_sync(c, name, info, inputs, result, None)
        return result

    return wrapper  # type: ignore[return-value]
