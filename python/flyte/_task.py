"""A task: a Python function (or a plugin's ``execute``) plus how it should run.

Called outside of a run, a task is just its function. Called inside a run, every call
becomes an action: it gets a deterministic name, its inputs are converted to literals,
and it runs (locally, or on a backend) with the task's retries, timeout and cache.

``TaskTemplate`` is the dataclass plugins extend (``flyte.extend``): a subclass sets
``task_type``, fills ``custom_config`` for its backend plugin, and may wrap the body in
``pre``/``post`` or replace ``execute``. ``@env.task`` makes ``AsyncFunctionTaskTemplate``s
(or the plugin class registered for the environment's ``plugin_config``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from flyte import _context
from flyte._aio import finish_returned_coroutine
from flyte._aio import running_loop as _running_loop
from flyte._cache import VersionParameters, body_hash, normalize_cache
from flyte._doc import Documentation, documentation_of
from flyte._internal import _interactive
from flyte._pod import PodTemplate
from flyte._resources import Resources
from flyte._retry import RetryStrategy, normalize_retries
from flyte._secret import normalize_secrets
from flyte._timeout import TimeoutType, timeout_from_request

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

if TYPE_CHECKING:
    import weakref

    from flyte._environment import TaskEnvironment
    from flyte._image import Image
    from flyte._reusable import ReusePolicy
    from flyte._trigger import Trigger
    from flyte._types import NativeInterface
    from flyte.models import SerializationContext

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

#: Above this many bytes, inputs and outputs are offloaded to storage instead of inlined.
DEFAULT_MAX_INLINE_IO_BYTES = 10 * 1024 * 1024

#: ``interface=`` value that means "read it from ``func`` when first needed": defining a task
#: stays cheap, and annotations may name types defined later in the module.
FROM_FUNCTION: Any = type("FromFunction", (), {"__repr__": lambda self: "<from function>"})()


class _InterfaceField:
    """The ``interface`` field: a required dataclass field whose value may be inferred lazily.

    A non-data descriptor: a value in the instance's dict is read directly (task calls read the
    interface on every call); ``__post_init__`` leaves ``FROM_FUNCTION`` out of the dict, so the
    first read lands here and stores what the function declares."""

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            # No class-level value: dataclasses then treat the field as required.
            raise AttributeError("interface")
        from flyte._types import NativeInterface

        value = NativeInterface.from_function(obj.func)
        obj.__dict__["interface"] = value
        return value


@dataclass(kw_only=True, eq=False, repr=False)
class TaskTemplate(Generic[P, R, F]):
    """A task: its name, interface, and how it runs (image, resources, cache, retries, ...).

    Subclass it for a task whose body is not a Python function (implement ``execute``), or
    subclass ``AsyncFunctionTaskTemplate`` to change how functions run (``pre``/``post``) and
    what the backend is told (``task_type``, ``custom_config``).
    """

    name: str
    interface: NativeInterface = _InterfaceField()  # type: ignore[assignment]
    short_name: str = ""
    task_type: str = "python"
    task_type_version: int = 0
    image: str | Image | Literal["auto"] | None = "auto"
    resources: Resources | None = None
    cache: Any = "disable"
    interruptible: bool = False
    retries: int | RetryStrategy = 0
    reusable: ReusePolicy | None = None
    docs: str | Documentation | None = None
    env_vars: dict[str, str] | None = None
    secrets: Any = None
    service_account: str | None = None
    timeout: TimeoutType | float | None = None
    pod_template: Any = None
    report: bool = False
    queue: str | None = None
    debuggable: bool = False
    entrypoint: bool = False
    produces_artifacts: bool = False
    parent_env: weakref.ReferenceType[TaskEnvironment] | None = None
    parent_env_name: str | None = None
    ref: bool = field(default=False, init=False)
    max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES
    triggers: tuple[Trigger, ...] = ()
    links: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.__dict__.get("interface") is FROM_FUNCTION:
            del self.__dict__["interface"]  # read from the function on first use
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{type(self).__name__} needs a non-empty name, got {self.name!r}")
        if not self.short_name:
            self.short_name = self.name
        if not isinstance(self.task_type, str) or not self.task_type:
            raise ValueError(
                f"task {self.name}: task_type must be a non-empty string, got {self.task_type!r}"
            )
        self.cache = normalize_cache(self.cache)
        self.retries = normalize_retries(self.retries)
        self.timeout = timeout_from_request(self.timeout)
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise TypeError(
                f"task {self.name}: resources must be flyte.Resources, got {type(self.resources).__name__}"
            )
        self.secrets = normalize_secrets(self.secrets)
        self.env_vars = dict(self.env_vars or {})
        if self.service_account is not None and not isinstance(self.service_account, str):
            raise TypeError(
                f"task {self.name}: service_account must be a string, got {type(self.service_account).__name__}"
            )
        if self.pod_template is not None and not isinstance(self.pod_template, (str, PodTemplate)):
            raise TypeError(
                f"task {self.name}: pod_template must be a flyte.PodTemplate or the name of one a cluster "
                f"defines, got {type(self.pod_template).__name__}"
            )
        if not isinstance(self.max_inline_io_bytes, int) or self.max_inline_io_bytes <= 0:
            raise ValueError(f"max_inline_io_bytes must be a positive int, got {self.max_inline_io_bytes!r}")
        self.triggers = tuple(self.triggers)
        self.links = tuple(self.links)
        self.report = bool(self.report)
        self.entrypoint = bool(self.entrypoint)
        if self.docs is None or isinstance(self.docs, str):
            self.docs = documentation_of(self.docs, getattr(self, "func", None))
        if "_module" not in self.__dict__:
            self._module = _defining_module()
        #: The task an ``override`` copy was made from (it is found by that one's name).
        self._origin: TaskTemplate[Any, Any, Any] | None = self.__dict__.get("_origin")

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- what the environment and the runtime read ---------------------------------------

    @property
    def env(self) -> TaskEnvironment | None:
        """The environment the task belongs to (None for a template made on its own)."""
        return self.parent_env() if self.parent_env is not None else None

    @property
    def is_async(self) -> bool:
        """Whether calling the task inside a run gives an awaitable (``execute`` is async)."""
        return True

    @property
    def source_file(self) -> str | None:
        """The file the task's code is in, when it has one."""
        return None

    @property
    def native_interface(self) -> NativeInterface:
        return self.interface

    @functools.cached_property
    def body(self) -> Callable[..., Any]:
        """What an attempt runs with the task's inputs as keyword arguments."""
        return self.execute

    @functools.cached_property
    def body_hash(self) -> str:
        return body_hash(type(self).execute)

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
        return self.cache.get_version(VersionParameters(func=getattr(self, "func", None), image=self.image))

    # -- what plugins implement ---------------------------------------------------------

    async def pre(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Runs before the body; what it returns is ``flyte.ctx().data`` while the body runs."""
        return {}

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """The task's body: what one attempt does with the inputs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement execute()")

    async def post(self, return_vals: Any) -> Any:
        """Runs after the body succeeded, with what it returned."""
        return return_vals

    def config(self, sctx: SerializationContext) -> dict[str, str]:
        """Key/value settings sent to the backend with the task (``TaskTemplate.config``)."""
        return {}

    def custom_config(self, sctx: SerializationContext) -> dict[str, Any]:
        """A plugin's settings for its backend plugin (``TaskTemplate.custom``)."""
        return {}

    def data_loading_config(self, sctx: SerializationContext) -> Any:
        """How a raw container gets its inputs and gives back outputs (``core.DataLoadingConfig``),
        for containers that have no SDK inside; None for tasks run by this SDK's runtime."""
        return None

    def container_args(self, serialize_context: SerializationContext) -> list[str]:
        """The container's arguments; empty: the task runs under this SDK's runtime."""
        return []

    def sql(self, sctx: SerializationContext) -> str | None:
        """The statement of a SQL task, sent as ``TaskTemplate.sql``."""
        return None

    def forward(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """What calling the task outside of any run does."""
        raise NotImplementedError(
            f"{self.name} has no local form: start it with flyte.run(...) or call it from a task"
        )

    # -- calling ----------------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        c = _context.current()
        if c is None:
            return self.forward(*args, **kwargs)  # type: ignore[no-any-return]
        if self.is_async:
            if c.run.in_sync_code(c):
                # A sync caller cannot await: run the async task to completion for it.
                return c.run.call_blocking(self, c, args, kwargs)  # type: ignore[no-any-return]
            return c.run.call_async(self, c, args, kwargs)  # type: ignore[no-any-return]
        if _running_loop() is not None:
            c.last_sync_call = self.name
        return c.run.call_sync(self, c, args, kwargs)  # type: ignore[no-any-return]

    async def aio(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Calls the task as an awaitable, whether it is sync or async.

        Sync tasks run in a worker thread, so several of them can run at once under
        ``asyncio.gather``.
        """
        c = _context.current()
        if c is None:
            value = self.forward(*args, **kwargs)
            return await value if inspect.isawaitable(value) else value  # type: ignore[no-any-return]
        if self.is_async:
            return await c.run.call_async(self, c, args, kwargs)  # type: ignore[no-any-return]
        return await c.run.call_sync_in_thread(self, c, args, kwargs)  # type: ignore[no-any-return]

    def override(
        self,
        *,
        short_name: str | None = None,
        resources: Resources | None = None,
        cache: Any = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | None = None,
        reusable: ReusePolicy | Literal["off"] | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: Any = None,
        service_account: str | None = None,
        max_inline_io_bytes: int | None = None,
        pod_template: Any = None,
        queue: str | None = None,
        interruptible: bool | None = None,
        entrypoint: bool | None = None,
        produces_artifacts: bool | None = None,
        links: tuple[Any, ...] = (),
        plugin_config: Any = None,
        **kwargs: Any,
    ) -> TaskTemplate[P, R, F]:
        """A copy of the task with some settings changed, for one call or many.

        Settings left out (or ``None``) keep the task's own. Identity (and so action IDs and
        cache keys) does not change: only how it runs. ``reusable="off"`` runs the copy in a
        fresh process per action.
        """
        for key in kwargs:
            if key in ("name", "image", "docs", "interface", "func"):
                raise ValueError(f"{self.name}.override(): {key} cannot be overridden")
        field_names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = set(kwargs) - field_names
        if unknown:
            raise TypeError(f"{self.name}.override() got unexpected settings {sorted(unknown)}")
        policy = self.reusable if reusable is None else (None if reusable == "off" else reusable)
        if policy is not None:
            for key, value in (
                ("resources", resources),
                ("env_vars", env_vars),
                ("secrets", secrets),
                ("service_account", service_account),
            ):
                if value is not None:
                    raise ValueError(
                        f"{self.name}.override(): {key} cannot change while the task is reusable "
                        "(its warm workers were started with the environment's); pass reusable='off' too"
                    )
        changes: dict[str, Any] = dict(kwargs)
        if short_name:
            changes["short_name"] = short_name
        if resources is not None:
            if not isinstance(resources, Resources):
                raise TypeError(f"resources must be flyte.Resources, got {type(resources).__name__}")
            changes["resources"] = resources
        if cache is not None:
            changes["cache"] = normalize_cache(cache)
        if retries:
            changes["retries"] = normalize_retries(retries)
        if timeout is not None:
            changes["timeout"] = timeout_from_request(timeout)
        if reusable is not None:
            changes["reusable"] = policy
        if env_vars is not None:
            changes["env_vars"] = dict(env_vars)
        if secrets is not None:
            changes["secrets"] = normalize_secrets(secrets)
        if service_account is not None:
            changes["service_account"] = service_account
        if max_inline_io_bytes is not None:
            if not isinstance(max_inline_io_bytes, int) or max_inline_io_bytes <= 0:
                raise ValueError(f"max_inline_io_bytes must be a positive int, got {max_inline_io_bytes!r}")
            changes["max_inline_io_bytes"] = max_inline_io_bytes
        for key, value in (
            ("pod_template", pod_template),
            ("queue", queue),
            ("interruptible", interruptible),
            ("entrypoint", entrypoint),
            ("produces_artifacts", produces_artifacts),
        ):
            if value is not None:
                changes[key] = value
        if links:
            changes["links"] = tuple(links)
        if plugin_config is not None:
            return self._as_plugin(plugin_config, changes)
        if "pod_template" in changes and not isinstance(changes["pod_template"], (str, PodTemplate)):
            raise TypeError(
                f"{self.name}.override(): pod_template must be a flyte.PodTemplate or the name of one a "
                f"cluster defines, got {type(changes['pod_template']).__name__}"
            )
        new = copy.copy(self)
        new.__dict__.update(changes)
        # The core's policy object and the body were made from the original's settings.
        new.__dict__.pop("_policy", None)
        new.__dict__.pop("body", None)
        new._origin = self._origin or self
        return new

    def _as_plugin(self, plugin_config: Any, changes: dict[str, Any]) -> TaskTemplate[P, R, F]:
        from flyte._task_plugins import TaskPluginRegistry

        cls = TaskPluginRegistry.find(type(plugin_config))
        if cls is None:
            raise ValueError(
                f"no task plugin is registered for {type(plugin_config).__name__}: register one with "
                "flyte.extend.TaskPluginRegistry.register(config_type, plugin_class)"
            )
        if "plugin_config" not in {f.name for f in dataclasses.fields(cls)}:
            raise TypeError(f"{cls.__name__} takes no plugin_config")
        accepted = {f.name for f in dataclasses.fields(cls) if f.init}
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.init and f.name != "interface" and f.name in accepted
        }
        values.update(changes, plugin_config=plugin_config)
        if not isinstance(self, cls):
            # A field the task left at its class's default takes the plugin's default instead
            # (task_type and the like); what was set explicitly carries over.
            mine = {f.name: f.default for f in dataclasses.fields(type(self))}
            theirs = {f.name: f.default for f in dataclasses.fields(cls)}
            for name in list(values):
                default = theirs.get(name, dataclasses.MISSING)
                if (
                    name not in changes
                    and default is not dataclasses.MISSING
                    and values[name] == mine.get(name)
                ):
                    values[name] = default
        new = cls(interface=self.__dict__.get("interface", FROM_FUNCTION), **values)
        new._module = self._module
        new._origin = self._origin or self
        return new

    def __copy__(self) -> TaskTemplate[P, R, F]:
        # Needed because __reduce__ (by-reference pickling) would make copy.copy return self.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        if _interactive.pickling_session() and _interactive.defined_in_main(self):
            # A notebook's task has no module to be found in: it travels whole, its environment
            # (a weak reference here) with it.
            state = dict(self.__dict__)
            parent = state.get("parent_env")
            if isinstance(parent, weakref.ref):
                state["parent_env"] = parent()
            return (object.__new__, (type(self),), state, None, None, _restore_session_task)
        # Tasks travel (e.g. inside partials) by reference to their module attribute.
        return (_load_task, self._import_location())

    def _import_location(self) -> tuple[str, str]:
        """(module, qualified name) under which the task can be imported again."""
        return task_location(self)


@dataclass(kw_only=True, eq=False, repr=False)
class RuntimeTaskTemplate(TaskTemplate[P, R, F]):
    """A task run by this SDK's runtime in the task's container (the container arguments are
    the runtime's command line, made when the task is serialized)."""

    #: A plugin's own loader of tasks in the reference SDK; tasks here are always found by
    #: module and name, so only ``None`` is accepted.
    task_resolver: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task_resolver is not None:
            raise ValueError(
                f"task {self.name}: task_resolver is not supported; the runtime loads a task by its "
                "module and name, so define the task at module level"
            )


@dataclass(kw_only=True, eq=False, repr=False)
class AsyncFunctionTaskTemplate(RuntimeTaskTemplate[P, R, F]):
    """A task whose body is a Python function (sync or async): what ``@env.task`` makes."""

    func: F
    plugin_config: Any = None
    debuggable: bool = True

    def __post_init__(self) -> None:
        func = self.func
        if not callable(func):
            raise TypeError(f"@env.task expects a function, got {type(func).__name__}")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"task {getattr(func, '__name__', func)!r}: generator functions cannot be tasks; return a list instead"
            )
        self._module = getattr(func, "__module__", None)
        super().__post_init__()
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def source_file(self) -> str | None:
        code = getattr(self.func, "__code__", None)
        return code.co_filename if code is not None else None

    @property
    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the task's inputs."""
        return self.interface.json_schema  # type: ignore[no-any-return]

    @functools.cached_property
    def body(self) -> Callable[..., Any]:
        cls = type(self)
        hooked = (
            cls.execute is not AsyncFunctionTaskTemplate.execute
            or cls.pre is not TaskTemplate.pre
            or cls.post is not TaskTemplate.post
        )
        if not hooked:
            return self.func
        if self.is_async:
            return self.execute
        return functools.partial(_run_sync_hooked, self)

    @functools.cached_property
    def body_hash(self) -> str:
        return body_hash(self.func)

    def forward(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.func(*args, **kwargs)

    async def execute(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """``pre``, then the function, then ``post``."""
        _set_data(await self.pre(*args, **kwargs))
        if self.is_async:
            value = await self.func(*args, **kwargs)
        else:
            import asyncio

            value = await asyncio.to_thread(self.func, *args, **kwargs)
        await self.post(value)
        return value  # type: ignore[no-any-return]


def _run_sync_hooked(task: AsyncFunctionTaskTemplate[Any, Any, Any], **kwargs: Any) -> Any:
    """The body of a sync function task whose class adds ``pre``/``post`` or its own ``execute``."""
    if type(task).execute is not AsyncFunctionTaskTemplate.execute:
        return finish_returned_coroutine(task.execute(**kwargs))
    _set_data(finish_returned_coroutine(task.pre(**kwargs)))
    value = finish_returned_coroutine(task.func(**kwargs))
    finish_returned_coroutine(task.post(value))
    return value


def _set_data(data: Any) -> None:
    if data is None:
        return
    if not isinstance(data, dict):
        raise TypeError(f"pre() must return a dict (it becomes flyte.ctx().data), got {type(data).__name__}")
    c = _context.current()
    if c is not None:
        c.data = dict(data)


def _defining_module() -> str | None:
    """The module whose code made a template: the first caller that is not a template's own
    ``__init__``/``__post_init__`` (a plugin's, or the dataclass-generated one) nor this SDK."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        constructing = frame.f_code.co_name in ("__init__", "__post_init__") and isinstance(
            frame.f_locals.get("self"), TaskTemplate
        )
        if not constructing and name != "flyte" and not name.startswith("flyte."):
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def task_location(task: TaskTemplate[Any, Any, Any]) -> tuple[str, str]:
    """(module, qualified name) under which ``task`` can be imported again."""
    func = getattr(task, "func", None)
    if func is not None and getattr(func, "__module__", None):
        return func.__module__, func.__qualname__
    module_name = task._module
    module = sys.modules.get(module_name) if module_name else None
    # An override's copy is found as the task it was made from (its changes travel in the spec).
    wanted = (task, task._origin or task)
    if module is not None:
        for attr, value in vars(module).items():
            if any(value is w for w in wanted):
                return module_name, attr  # type: ignore[return-value]
    raise ValueError(
        f"task {task.name} cannot be found by module and name: assign it to a module-level "
        "variable so action processes can import it"
    )


def _restore_session_task(task: TaskTemplate[Any, Any, Any], state: dict[str, Any]) -> None:
    env = state.get("parent_env")
    if env is not None and not isinstance(env, weakref.ref):
        _interactive.keep(env)
        state = {**state, "parent_env": weakref.ref(env)}
    task.__dict__.update(state)


def _load_task(module: str, qualname: str) -> TaskTemplate[Any, Any, Any]:
    import importlib

    loaded = _interactive.loaded_task(qualname) if module == "__main__" else None
    if loaded is not None:
        return loaded  # type: ignore[no-any-return]
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, TaskTemplate):
        raise TypeError(f"{module}.{qualname} is not a task")
    return obj
