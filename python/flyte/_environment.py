"""TaskEnvironment: configuration shared by a group of tasks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from flyte._cache import Cache, normalize_cache
from flyte._resources import Resources
from flyte._retry import RetryStrategy
from flyte._reusable import ReusePolicy
from flyte._secret import normalize_secrets
from flyte._task import DEFAULT_MAX_INLINE_IO_BYTES, TaskTemplate
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
class TaskEnvironment:
    """Tasks defined with ``@env.task`` share this environment's image, resources,
    secrets, environment variables, cache policy and reuse policy."""

    name: str
    depends_on: list[TaskEnvironment] = field(default_factory=list)
    pod_template: Any = None
    description: str | None = None
    secrets: Any = None
    env_vars: dict[str, str] | None = None
    resources: Resources | None = None
    interruptible: bool = False
    image: str | Image | Literal["auto"] | None = "auto"
    cache: str | Cache = "disable"
    reusable: ReusePolicy | None = None
    plugin_config: Any = None
    queue: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"TaskEnvironment name {self.name!r} is not valid: use letters, digits, '_' and '-', "
                "starting with a letter or digit (e.g. 'my_env')"
            )
        self.secrets = normalize_secrets(self.secrets)
        if self.env_vars is not None:
            if not isinstance(self.env_vars, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.env_vars.items()
            ):
                raise TypeError(f"TaskEnvironment({self.name!r}): env_vars must be a dict of str to str")
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise TypeError(
                f"TaskEnvironment({self.name!r}): resources must be flyte.Resources, got {type(self.resources).__name__}"
            )
        if self.reusable is not None and not isinstance(self.reusable, ReusePolicy):
            raise TypeError(
                f"TaskEnvironment({self.name!r}): reusable must be flyte.ReusePolicy, got {type(self.reusable).__name__}"
            )
        if self.image is not None and not isinstance(self.image, str) and not _is_image(self.image):
            raise TypeError(
                f"TaskEnvironment({self.name!r}): image must be a URI string, 'auto' or flyte.Image, "
                f"got {type(self.image).__name__}"
            )
        # Validate early: a typo in the cache policy should fail at definition, not at run.
        self.cache = normalize_cache(self.cache)
        for dep in self.depends_on:
            if not isinstance(dep, TaskEnvironment):
                raise TypeError(f"depends_on must list TaskEnvironments, got {type(dep).__name__}")
        self._tasks: dict[str, TaskTemplate[Any, Any]] = {}
        _ENVIRONMENTS[self.name] = self

    def __repr__(self) -> str:
        return f"TaskEnvironment(name={self.name!r}, tasks={list(self._tasks)})"

    @property
    def tasks(self) -> dict[str, TaskTemplate[Any, Any]]:
        return dict(self._tasks)

    def add_dependency(self, *envs: TaskEnvironment) -> None:
        """Declares that tasks here call tasks of ``envs`` (they are deployed together)."""
        for env in envs:
            if not isinstance(env, TaskEnvironment):
                raise TypeError(f"add_dependency expects TaskEnvironments, got {type(env).__name__}")
            if env is self:
                raise ValueError(f"TaskEnvironment {self.name!r} cannot depend on itself")
            if env not in self.depends_on:
                self.depends_on.append(env)

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
        timeout: TimeoutType | float | None = None,
        report: bool = False,
        docs: str | None = None,
        pod_template: Any = None,
        max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES,
        triggers: Trigger | Iterable[Trigger] = (),
        interruptible: bool | None = None,
        queue: str | None = None,
        links: Iterable[Any] = (),
    ) -> Callable[[F], F]: ...

    def task(
        self,
        _func: Callable[..., Any] | None = None,
        *,
        short_name: str | None = None,
        cache: str | Cache | None = None,
        cache_version: str | None = None,
        retries: int | RetryStrategy = 0,
        timeout: TimeoutType | float | None = None,
        report: bool = False,
        docs: str | None = None,
        pod_template: Any = None,
        max_inline_io_bytes: int = DEFAULT_MAX_INLINE_IO_BYTES,
        triggers: Trigger | Iterable[Trigger] = (),
        interruptible: bool | None = None,
        queue: str | None = None,
        links: Iterable[Any] = (),
    ) -> Any:
        """Registers a function as a task of this environment (``@env.task`` or ``@env.task(...)``)."""
        if cache_version is not None:
            cache = normalize_cache(cache if cache is not None else "auto", version=cache_version)
        trigger_list = (triggers,) if isinstance(triggers, Trigger) else tuple(triggers)
        for t in trigger_list:
            if not isinstance(t, Trigger):
                raise TypeError(f"triggers must be flyte.Trigger objects, got {type(t).__name__}")

        def wrap(func: Callable[..., Any]) -> TaskTemplate[Any, Any]:
            t = TaskTemplate(
                func,
                self,
                short_name=short_name,
                cache=cache,
                retries=retries,
                timeout=timeout,
                report=report,
                docs=docs,
                pod_template=pod_template,
                max_inline_io_bytes=max_inline_io_bytes,
                triggers=trigger_list,
                interruptible=interruptible,
                queue=queue,
                links=tuple(links),
            )
            _check_trigger_inputs(t)
            self._tasks[t.name] = t
            return t

        if _func is not None:
            return wrap(_func)
        return wrap


def _is_image(value: Any) -> bool:
    # An Image object means flyte._image is loaded already; don't import it for a string.
    from flyte._image import Image

    return isinstance(value, Image)


def _check_trigger_inputs(t: TaskTemplate[Any, Any]) -> None:
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
