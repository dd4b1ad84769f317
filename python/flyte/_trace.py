"""``@flyte.trace``: record a helper function's calls as actions of the running task.

A traced call runs inline, in the task's own process, but gets a deterministic action
name like a sub-task does, so it is visible in the run's record and (on a backend) its
result can be replayed when the task is recovered.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flyte import _context
from flyte._cache import body_hash

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

F = TypeVar("F", bound=Callable[..., Any])


class _TraceInfo:
    """What the ledger needs about a traced function, computed once. A generator's call is
    recorded as the list of what it yielded."""

    def __init__(self, func: Callable[..., Any], generator: bool = False) -> None:
        self.func = func
        self.generator = generator
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
                iface = NativeInterface.from_function(self.func)
                if self.generator:
                    iface = iface.with_outputs({"o0": list[_yielded_type(self.func)]})  # type: ignore[misc]
                self._interface = iface
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
    c.run.trace_starts[name] = time.time()
    return name, inputs


def _replayed(c: _context.ActionContext, name: str) -> None:
    c.run.trace_starts.pop(name, None)
    c.run.ledger.finish(name, "SUCCEEDED", None, True)


def _yielded_type(func: Callable[..., Any]) -> Any:
    """What a generator function's annotation says it yields (``Iterator[int]`` -> ``int``)."""
    import collections.abc
    import typing

    try:
        annotation = typing.get_type_hints(func).get("return")
    except Exception:  # noqa: BLE001 - an unresolvable annotation: the items are pickled
        return Any
    origin = typing.get_origin(annotation)
    generators = (
        collections.abc.Iterator,
        collections.abc.Iterable,
        collections.abc.Generator,
        collections.abc.AsyncIterator,
        collections.abc.AsyncIterable,
        collections.abc.AsyncGenerator,
    )
    args = typing.get_args(annotation)
    return args[0] if origin in generators and args else Any


def _trace_generator(func: Callable[..., Any]) -> Any:
    """A traced generator: the items it yields are recorded as one list, which a replay yields."""
    info = _TraceInfo(func, generator=True)

    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            c = _context.current()
            if c is None:
                async for item in func(*args, **kwargs):
                    yield item
                return
            name, inputs = _begin(info, c, args, kwargs)
            found, value = await c.run.trace_replay(c, name, info)
            if found:
                _replayed(c, name)
                for item in value:
                    yield item
                return
            items: list[Any] = []
            try:
                async for item in func(*args, **kwargs):
                    items.append(item)
                    yield item
            except Exception as e:
                await c.run.trace_record(c, name, info, inputs, None, e)
                raise
            await c.run.trace_record(c, name, info, inputs, items, None)

        return async_gen_wrapper

    @functools.wraps(func)
    def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
        c = _context.current()
        if c is None:
            yield from func(*args, **kwargs)
            return
        name, inputs = _begin(info, c, args, kwargs)
        found, value = c.run.trace_replay_sync(c, name, info)
        if found:
            _replayed(c, name)
            yield from value
            return
        items: list[Any] = []
        try:
            for item in func(*args, **kwargs):
                items.append(item)
                yield item
        except Exception as e:
            c.run.trace_record_sync(c, name, info, inputs, None, e)
            raise
        c.run.trace_record_sync(c, name, info, inputs, items, None)

    return gen_wrapper


def trace(func: F) -> F:
    """Records every call of ``func`` made inside a task as a traced action. A generator's
    (sync or async) yielded items are recorded as one list, replayed item by item."""
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        return _trace_generator(func)  # type: ignore[no-any-return]
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
