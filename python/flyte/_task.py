"""A task: a Python function plus how it should run.

Called outside of a run, a task is just its function. Called inside a run, every call
becomes an action: it gets a deterministic name, its inputs are converted to literals,
and it runs (locally, or on a backend) with the task's retries, timeout and cache.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from flyte import _context
from flyte._aio import running_loop as _running_loop
from flyte._cache import Cache, VersionParameters, body_hash, normalize_cache
from flyte._doc import Documentation, documentation_of
from flyte._resources import Resources
from flyte._retry import RetryStrategy, normalize_retries
from flyte._secret import normalize_secrets
from flyte._timeout import Timeout, TimeoutType, timeout_from_request

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

if TYPE_CHECKING:
    from flyte._environment import TaskEnvironment
    from flyte._image import Image
    from flyte._reusable import ReusePolicy
    from flyte._secret import Secret
    from flyte._trigger import Trigger
    from flyte._types import NativeInterface

P = ParamSpec("P")
R = TypeVar("R")

#: Above this many bytes, inputs and outputs are offloaded to storage instead of inlined.
DEFAULT_MAX_INLINE_IO_BYTES = 10 * 1024 * 1024


class TaskTemplate(Generic[P, R]):
    """A function registered with ``@env.task``."""

    def __init__(
        self,
        func: Callable[P, R],
        env: TaskEnvironment,
        *,
        short_name: str | None = None,
        cache: str | Cache | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = None,
        report: bool = False,
        docs: str | Documentation | None = None,
        pod_template: Any = None,
        max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES,
        triggers: tuple[Trigger, ...] = (),
        interruptible: bool | None = None,
        queue: str | None = None,
        service_account: str | None = None,
        links: tuple[Any, ...] = (),
        entrypoint: bool = False,
    ) -> None:
        if not callable(func):
            raise TypeError(f"@env.task expects a function, got {type(func).__name__}")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"task {func.__name__!r}: generator functions cannot be tasks; return a list instead"
            )
        self.func = func
        self.env = env
        self.name = f"{env.name}.{func.__name__}"
        self.short_name = short_name or func.__name__
        self.cache: Cache = normalize_cache(cache if cache is not None else env.cache)
        self.retries: RetryStrategy = normalize_retries(retries)
        self.timeout: Timeout | None = timeout_from_request(timeout)
        self.report = bool(report)
        self.docs: Documentation = documentation_of(docs, func)
        self.pod_template = pod_template if pod_template is not None else env.pod_template
        if not isinstance(max_inline_io_bytes, int) or max_inline_io_bytes <= 0:
            raise ValueError(f"max_inline_io_bytes must be a positive int, got {max_inline_io_bytes!r}")
        self.max_inline_io_bytes = max_inline_io_bytes
        self.triggers = triggers
        self.interruptible = env.interruptible if interruptible is None else interruptible
        self.queue = queue if queue is not None else env.queue
        self.links = links
        self.service_account = service_account if service_account is not None else env.service_account
        #: Shown as a task to start runs from (a cluster's UI lists entrypoints first).
        self.entrypoint = bool(entrypoint)
        self.resources: Resources | None = env.resources
        self.secrets: tuple[Secret, ...] = env.secrets
        self.env_vars: dict[str, str] = dict(env.env_vars or {})
        self.image: str | Image | None = env.image
        self.reusable: ReusePolicy | None = env.reusable
        self.is_async = inspect.iscoroutinefunction(func)
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- identity ---------------------------------------------------------------------

    @functools.cached_property
    def interface(self) -> NativeInterface:
        from flyte._types import NativeInterface

        return NativeInterface.from_function(self.func)

    @functools.cached_property
    def body_hash(self) -> str:
        return body_hash(self.func)

    @functools.cached_property
    def identity(self) -> str:
        """What makes two calls "the same task": name, interface and body — not config."""
        return f"{self.name}|{self.interface.interface_hash()}|{self.body_hash}"

    @functools.cached_property
    def inputs_have_references(self) -> bool:
        """Whether inputs can be references to data (files, dataframes), identified by content."""
        from flyte._internal._identity import inputs_have_references

        return inputs_have_references(self.interface.to_typed_interface())

    @property
    def cache_version(self) -> str:
        if self.cache.policies is None:
            return self.cache.version_override or self.body_hash
        return self.cache.get_version(VersionParameters(func=self.func, image=self.image))

    # -- calling ----------------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        c = _context.current()
        if c is None:
            return self.func(*args, **kwargs)
        if self.is_async:
            if c.run.in_sync_code(c):
                # A sync caller cannot await: run the async task to completion for it.
                return c.run.call_blocking(self, c, args, kwargs)  # type: ignore[no-any-return]
            return c.run.call_async(self, c, args, kwargs)  # type: ignore[return-value]
        if _running_loop() is not None:
            c.last_sync_call = self.name
        return c.run.call_sync(self, c, args, kwargs)  # type: ignore[no-any-return]

    def aio(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Calls the task as an awaitable, whether it is sync or async.

        Sync tasks run in a worker thread, so several of them can run at once under
        ``asyncio.gather``.
        """
        c = _context.current()
        if c is None:
            if self.is_async:
                return self.func(*args, **kwargs)  # type: ignore[return-value]
            return _as_coroutine(self.func, args, kwargs)
        if self.is_async:
            return c.run.call_async(self, c, args, kwargs)  # type: ignore[return-value]
        return c.run.call_sync_in_thread(self, c, args, kwargs)  # type: ignore[return-value]

    def override(self, **changes: Any) -> TaskTemplate[P, R]:
        """A copy of the task with some settings changed, for one call or many.

        Identity (and so action IDs and cache keys) does not change: only how it runs.
        """
        unknown = set(changes) - _OVERRIDABLE
        if unknown:
            raise TypeError(
                f"{self.name}.override() got unexpected settings {sorted(unknown)}; "
                f"it accepts {sorted(_OVERRIDABLE)}"
            )
        new = copy.copy(self)
        for key, value in changes.items():
            if key == "cache":
                value = normalize_cache(value)
            elif key == "retries":
                value = normalize_retries(value)
            elif key == "timeout":
                value = timeout_from_request(value)
            elif key == "resources":
                if value is not None and not isinstance(value, Resources):
                    raise TypeError(f"resources must be flyte.Resources, got {type(value).__name__}")
            elif key == "secrets":
                value = normalize_secrets(value)
            elif key == "env_vars":
                value = dict(value or {})
            setattr(new, key, value)
        # The core's policy object was made from the original's retries and timeout.
        new.__dict__.pop("_policy", None)
        return new

    def __copy__(self) -> TaskTemplate[P, R]:
        # Needed because __reduce__ (by-reference pickling) would make copy.copy return self.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        # Tasks travel (e.g. inside partials) by reference to their module attribute.
        return (_load_task, (self.func.__module__, self.func.__qualname__))


_OVERRIDABLE = frozenset(
    {
        "resources",
        "retries",
        "timeout",
        "cache",
        "env_vars",
        "secrets",
        "short_name",
        "reusable",
        "pod_template",
        "queue",
        "interruptible",
        "max_inline_io_bytes",
    }
)


def _load_task(module: str, qualname: str) -> TaskTemplate[Any, Any]:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, TaskTemplate):
        raise TypeError(f"{module}.{qualname} is not a task")
    return obj


async def _as_coroutine(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return func(*args, **kwargs)
