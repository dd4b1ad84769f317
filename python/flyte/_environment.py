"""TaskEnvironment: configuration shared by a group of tasks."""

from __future__ import annotations

import glob
import re
import sys
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from flyte._cache import Cache, normalize_cache
from flyte._doc import Documentation
from flyte._pod import PodTemplate
from flyte._resources import Resources
from flyte._retry import RetryStrategy
from flyte._reusable import ReusePolicy
from flyte._secret import normalize_secrets
from flyte._task import DEFAULT_MAX_INLINE_IO_BYTES, FROM_FUNCTION, AsyncFunctionTaskTemplate, TaskTemplate
from flyte._timeout import TimeoutType
from flyte._trigger import Trigger

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

if TYPE_CHECKING:
    from flyte._image import Image

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

#: Every environment defined in this process, in definition order (used by deploy).
_ENVIRONMENTS: dict[str, TaskEnvironment] = {}


@dataclass(eq=False)
class Environment:
    """What every kind of environment has: a name, an image, resources, secrets, environment
    variables, and the environments deployed with it (``depends_on``)."""

    name: str
    depends_on: list[Environment] = field(default_factory=list)
    pod_template: Any = None
    description: str | None = None
    secrets: Any = None
    env_vars: dict[str, str] | None = None
    resources: Resources | None = None
    interruptible: bool = False
    image: str | Image | Literal["auto"] | None = "auto"
    #: Extra files bundled with the code (templates, data, configs): paths or glob patterns,
    #: relative to the directory of the file that defines the environment, or absolute.
    include: tuple[str, ...] = ()
    #: The identity a cluster runs the environment's tasks as (a Kubernetes service account).
    service_account: str | None = None

    def __post_init__(self) -> None:
        kind = type(self).__name__
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"{kind} name {self.name!r} is not valid: use letters, digits, '_' and '-', "
                "starting with a letter or digit (e.g. 'my_env')"
            )
        self.secrets = normalize_secrets(self.secrets)
        if isinstance(self.include, str) or not all(isinstance(p, str) for p in self.include):
            raise TypeError(
                f"{kind}({self.name!r}): include must be a list of paths, e.g. include=['templates/']"
            )
        self.include = tuple(self.include)
        # Relative `include` paths are read from where the environment is defined.
        self._source_dir = _caller_dir()
        if self.service_account is not None and (
            not isinstance(self.service_account, str) or not self.service_account.strip()
        ):
            raise ValueError(f"{kind}({self.name!r}): service_account must be a non-empty name")
        if self.env_vars is not None:
            if not isinstance(self.env_vars, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.env_vars.items()
            ):
                raise TypeError(f"{kind}({self.name!r}): env_vars must be a dict of str to str")
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise TypeError(
                f"{kind}({self.name!r}): resources must be flyte.Resources, got {type(self.resources).__name__}"
            )
        if self.image is not None and not isinstance(self.image, str) and not _is_image(self.image):
            raise TypeError(
                f"{kind}({self.name!r}): image must be a URI string, 'auto' or flyte.Image, "
                f"got {type(self.image).__name__}"
            )
        if self.pod_template is not None and not isinstance(self.pod_template, (str, PodTemplate)):
            raise TypeError(
                f"{kind}({self.name!r}): pod_template must be a flyte.PodTemplate or the name of one a "
                f"cluster defines, got {type(self.pod_template).__name__}"
            )
        for dep in self.depends_on:
            if not isinstance(dep, Environment):
                raise TypeError(f"depends_on must list environments, got {type(dep).__name__}")

    def included_files(self) -> list[Path]:
        """The files ``include`` names, expanded (directories recursively, globs matched)."""
        found: list[Path] = []
        for entry in self.include:
            pattern = Path(entry).expanduser()
            if not pattern.is_absolute():
                pattern = (self._source_dir or Path.cwd()) / pattern
            matches = (
                [Path(p) for p in sorted(glob.glob(str(pattern), recursive=True))]
                if glob.has_magic(entry)
                else [pattern]
            )
            if not matches or not matches[0].exists():
                raise FileNotFoundError(
                    f"{type(self).__name__}({self.name!r}): include {entry!r} matches nothing"
                )
            for match in matches:
                if match.is_dir():
                    found.extend(sorted(p for p in match.rglob("*") if p.is_file()))
                else:
                    found.append(match)
        return [p.resolve() for p in found]

    def clone_with(
        self,
        name: str,
        image: str | Image | Literal["auto"] | None = None,
        resources: Resources | None = None,
        env_vars: dict[str, str] | None = None,
        secrets: Any = None,
        depends_on: list[TaskEnvironment] | None = None,
        description: str | None = None,
        interruptible: bool | None = None,
        include: tuple[str, ...] | None = None,
        service_account: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A new environment named ``name``: this one's settings, with those given replaced
        (``cache``, ``reusable``, ``plugin_config``, ``queue`` and ``pod_template`` too, by
        keyword). It has no tasks."""
        others = {"cache", "reusable", "plugin_config", "queue", "pod_template"}
        unknown = set(kwargs) - others
        if unknown:
            raise TypeError(f"clone_with: unexpected argument(s) {', '.join(sorted(unknown))}")
        given = {
            "image": image,
            "resources": resources,
            "env_vars": env_vars,
            "secrets": secrets,
            "depends_on": depends_on,
            "description": description,
            "interruptible": interruptible,
            "include": include,
            "service_account": service_account,
            **kwargs,
        }
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}
        settings["depends_on"] = list(self.depends_on)
        unknown = {k for k in given if k not in settings}
        if unknown:
            raise TypeError(f"clone_with: {type(self).__name__} has no {', '.join(sorted(unknown))}")
        settings.update({k: v for k, v in given.items() if v is not None})
        clone = type(self)(name=name, **settings)
        clone._source_dir = self._source_dir
        return clone

    def add_dependency(self, *envs: Environment) -> None:
        """Declares that tasks here call tasks of ``envs`` (they are deployed together)."""
        for env in envs:
            if not isinstance(env, Environment):
                raise TypeError(f"add_dependency expects environments, got {type(env).__name__}")
            if env is self:
                raise ValueError(f"{type(self).__name__} {self.name!r} cannot depend on itself")
            if env not in self.depends_on:
                self.depends_on.append(env)


@dataclass(eq=False)
class TaskEnvironment(Environment):
    """Tasks defined with ``@env.task`` share this environment's image, resources,
    secrets, environment variables, cache policy and reuse policy."""

    cache: str | Cache = "disable"
    reusable: ReusePolicy | None = None
    plugin_config: Any = None
    queue: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reusable is not None and not isinstance(self.reusable, ReusePolicy):
            raise TypeError(
                f"TaskEnvironment({self.name!r}): reusable must be flyte.ReusePolicy, got {type(self.reusable).__name__}"
            )
        # Validate early: a typo in the cache policy should fail at definition, not at run.
        self.cache = normalize_cache(self.cache)
        self._tasks: dict[str, TaskTemplate[Any, Any, Any]] = {}
        if self.plugin_config is not None:
            plugin = self._task_class()
            if self.reusable is not None and not getattr(plugin, "supports_reuse_policy", False):
                raise ValueError(
                    f"TaskEnvironment({self.name!r}): {plugin.__name__} tasks cannot run in reusable workers; "
                    "drop reusable= or plugin_config="
                )
        _ENVIRONMENTS[self.name] = self

    def _task_class(self) -> type[AsyncFunctionTaskTemplate[Any, Any, Any]]:
        """What ``@env.task`` makes: the plugin class registered for ``plugin_config``'s type."""
        if self.plugin_config is None:
            return AsyncFunctionTaskTemplate
        from flyte._task_plugins import TaskPluginRegistry

        plugin = TaskPluginRegistry.find(type(self.plugin_config))
        if plugin is None:
            raise ValueError(
                f"TaskEnvironment({self.name!r}): no task plugin is registered for plugin_config of type "
                f"{type(self.plugin_config).__name__}; register one with flyte.extend.TaskPluginRegistry.register()"
            )
        return plugin

    @classmethod
    def from_task(
        cls, name: str, *tasks: TaskTemplate[Any, Any, Any], depends_on: list[Environment] | None = None
    ) -> TaskEnvironment:
        """An environment holding tasks made without one (plugin templates), so they can be
        deployed, and named in other environments' ``depends_on``. The tasks must share one
        image (or have none)."""
        for t in tasks:
            if not isinstance(t, TaskTemplate):
                raise TypeError(f"from_task expects tasks, got {type(t).__name__}")
            if t.env is not None:
                raise ValueError(f"task {t.name} already belongs to environment {t.env.name!r}")
        images = [t.image for t in tasks]
        if any(i != images[0] for i in images[1:]):
            raise ValueError("tasks of one environment must share an image; these have different ones")
        image = images[0] if images else "auto"
        env = cls(name=name, image=image, depends_on=list(depends_on or []))
        for t in tasks:
            env._tasks[t.name] = t
            t.parent_env = weakref.ref(env)
            t.parent_env_name = name
        return env

    def __repr__(self) -> str:
        return f"TaskEnvironment(name={self.name!r}, tasks={list(self._tasks)})"

    @property
    def tasks(self) -> dict[str, TaskTemplate[Any, Any, Any]]:
        return dict(self._tasks)

    @overload
    def task(self, _func: F) -> F: ...

    @overload
    def task(
        self,
        _func: None = None,
        *,
        short_name: str | None = None,
        cache: str | Cache | None = None,
        cache_version: str | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = 0,
        report: bool = False,
        docs: str | Documentation | None = None,
        pod_template: Any = None,
        max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES,
        triggers: Trigger | Iterable[Trigger] = (),
        interruptible: bool | None = None,
        queue: str | None = None,
        service_account: str | None = None,
        links: Iterable[Any] = (),
        entrypoint: bool = False,
        produces_artifacts: bool = False,
    ) -> Callable[[F], F]: ...

    def task(
        self,
        _func: Callable[..., Any] | None = None,
        *,
        short_name: str | None = None,
        cache: str | Cache | None = None,
        cache_version: str | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = 0,
        report: bool = False,
        docs: str | Documentation | None = None,
        pod_template: Any = None,
        max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES,
        triggers: Trigger | Iterable[Trigger] = (),
        interruptible: bool | None = None,
        queue: str | None = None,
        service_account: str | None = None,
        links: Iterable[Any] = (),
        entrypoint: bool = False,
        produces_artifacts: bool = False,
    ) -> Any:
        """Registers a function as a task of this environment (``@env.task`` or ``@env.task(...)``)."""
        if cache_version is not None:
            cache = normalize_cache(cache if cache is not None else "auto", version=cache_version)
        trigger_list = (triggers,) if isinstance(triggers, Trigger) else tuple(triggers)
        for t in trigger_list:
            if not isinstance(t, Trigger):
                raise TypeError(f"triggers must be flyte.Trigger objects, got {type(t).__name__}")

        task_class = self._task_class()

        def wrap(func: Callable[..., Any]) -> AsyncFunctionTaskTemplate[Any, Any, Any]:
            name = getattr(func, "__name__", None)
            if not callable(func) or name is None:
                raise TypeError(f"@env.task expects a function, got {type(func).__name__}")
            t = task_class(
                func=func,
                name=f"{self.name}.{name}",
                interface=FROM_FUNCTION,
                short_name=short_name or name,
                image=self.image,
                resources=self.resources,
                cache=cache if cache is not None else self.cache,
                retries=retries,
                timeout=timeout,
                reusable=self.reusable,
                docs=docs,
                env_vars=self.env_vars,
                secrets=self.secrets,
                service_account=service_account if service_account is not None else self.service_account,
                pod_template=pod_template if pod_template is not None else self.pod_template,
                report=report,
                queue=queue if queue is not None else self.queue,
                interruptible=self.interruptible if interruptible is None else interruptible,
                entrypoint=entrypoint,
                produces_artifacts=produces_artifacts,
                parent_env=weakref.ref(self),
                parent_env_name=self.name,
                max_inline_io_bytes=max_inline_io_bytes,
                triggers=trigger_list,
                links=tuple(links),
                **({"plugin_config": self.plugin_config} if self.plugin_config is not None else {}),
            )
            _check_trigger_inputs(t)
            self._tasks[t.name] = t
            return t

        if _func is not None:
            return wrap(_func)
        return wrap


def _caller_dir() -> Path | None:
    """The directory of the file that made the environment (outside this module and dataclasses)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename != __file__ and not filename.startswith("<"):
            return Path(filename).resolve().parent
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _is_image(value: Any) -> bool:
    # An Image object means flyte._image is loaded already; don't import it for a string.
    from flyte._image import Image

    return isinstance(value, Image)


def _check_trigger_inputs(t: AsyncFunctionTaskTemplate[Any, Any, Any]) -> None:
    if not t.triggers:
        return
    import inspect

    params = inspect.signature(t.func).parameters
    for trig in t.triggers:
        # The firing-time input is only delivered when the task declares it.
        unknown = set(trig.inputs or {}) - set(params) - {trig.trigger_time_input}
        if unknown:
            raise ValueError(
                f"trigger {trig.name!r} of {t.name} sets inputs {sorted(unknown)} that the task does not take"
            )
