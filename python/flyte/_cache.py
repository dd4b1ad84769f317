"""How a task's outputs are cached and looked up across runs."""

from __future__ import annotations

import ast
import hashlib
import inspect
import marshal
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol, Union, get_args, runtime_checkable

CacheBehavior = Literal["auto", "override", "disable"]
CACHE_BEHAVIORS: tuple[str, ...] = get_args(CacheBehavior)

CacheRequest = Union[CacheBehavior, "Cache"]


def _behavior_error(label: str, value: object) -> ValueError:
    options = ", ".join(repr(b) for b in CACHE_BEHAVIORS)
    hint = ""
    if value is True:
        hint = ' (the v1 cache=True is now cache="auto")'
    elif value is False:
        hint = ' (the v1 cache=False is now cache="disable")'
    return ValueError(f"{label} is not a cache behavior; use one of {options} or flyte.Cache(...){hint}")


def body_hash(func: Callable[..., Any]) -> str:
    """Hash of what the function does, ignoring decorators, comments and formatting.

    Decorator arguments (retries, cache, ...) are configuration, not behaviour, so they
    must not change the identity of the task.
    """
    func = inspect.unwrap(func)
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
        node = tree.body[0]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.decorator_list = []
        digest_input = ast.dump(node, annotate_fields=False).encode()
    except (OSError, TypeError, SyntaxError, IndexError):
        # No source (e.g. defined in an interactive session without history): the code
        # object is the next best description of the body.
        code = func.__code__
        digest_input = marshal.dumps((code.co_code, code.co_consts, code.co_names, code.co_varnames))
    return hashlib.sha256(digest_input).hexdigest()


@dataclass(frozen=True)
class VersionParameters:
    """What a cache policy may derive a version from: the task's function and its image."""

    func: Callable[..., Any] | None
    image: Any = None


@runtime_checkable
class CachePolicy(Protocol):
    """Decides a task's cache version: ``get_version(salt, params)`` returns a string that
    changes whenever cached outputs must not be reused (e.g. a hash of the code it depends on)."""

    def get_version(self, salt: str, params: VersionParameters) -> str: ...


@dataclass(frozen=True)
class Cache:
    """Caching of a task's outputs.

    ``behavior``: ``"auto"`` reuses cached outputs when the inputs and the task's version match,
    ``"override"`` always runs and replaces the cached outputs, ``"disable"`` never caches.
    ``version_override`` pins the cache version instead of deriving it from the task's definition;
    ``serialize`` makes concurrent runs with identical inputs wait for one execution;
    ``ignored_inputs`` are left out of the cache key; ``salt`` is mixed into it. ``policies``
    (:class:`CachePolicy` objects) decide the version instead of the hash of the function's body.
    ``max_age`` (a ``timedelta`` or seconds) is the oldest cached result the task reuses; older
    ones are computed again (``None`` or zero: any age).
    """

    behavior: CacheBehavior = "auto"
    version_override: str | None = None
    serialize: bool = False
    ignored_inputs: tuple[str, ...] | str = ()
    salt: str = ""
    policies: CachePolicy | list[CachePolicy] | None = None
    max_age: timedelta | int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.behavior, bool) or self.behavior not in CACHE_BEHAVIORS:
            raise _behavior_error(f"Cache(behavior={self.behavior!r})", self.behavior)
        if self.version_override is not None:
            if not isinstance(self.version_override, str) or not self.version_override.strip():
                raise ValueError(
                    f"Cache(version_override={self.version_override!r}) must be a non-empty string such as 'v1.0'"
                )
        if not isinstance(self.serialize, bool):
            raise TypeError(f"Cache(serialize={self.serialize!r}) must be True or False")
        if not isinstance(self.salt, str):
            raise TypeError(f"Cache(salt={self.salt!r}) must be a string")
        object.__setattr__(self, "ignored_inputs", _normalize_ignored(self.ignored_inputs))
        max_age = self.max_age
        if max_age is not None:
            if isinstance(max_age, bool) or not isinstance(max_age, (int, timedelta)):
                raise TypeError(f"Cache(max_age={max_age!r}) must be a timedelta or a number of seconds")
            if isinstance(max_age, int):
                max_age = timedelta(seconds=max_age)
            if max_age < timedelta(0):
                raise ValueError(f"Cache(max_age={self.max_age!r}) must not be negative")
            object.__setattr__(self, "max_age", max_age)
        if self.policies is not None:
            policies = self.policies if isinstance(self.policies, (list, tuple)) else [self.policies]
            for policy in policies:
                if not callable(getattr(policy, "get_version", None)):
                    raise TypeError(f"Cache(policies=...): {policy!r} has no get_version(salt, params)")

    @property
    def enabled(self) -> bool:
        return self.behavior != "disable"

    def is_enabled(self) -> bool:
        return self.enabled

    def get_ignored_inputs(self) -> tuple[str, ...]:
        return self.ignored_inputs  # type: ignore[return-value]

    def max_age_ms(self) -> int | None:
        """The oldest cached result to reuse, in milliseconds (None: any age)."""
        if not isinstance(self.max_age, timedelta) or self.max_age <= timedelta(0):
            return None
        return max(1, int(self.max_age.total_seconds() * 1000))

    def get_version(self, params: VersionParameters | None = None) -> str:
        """The cache version: ``""`` when disabled, ``version_override`` when given, else what the
        ``policies`` say of ``params`` (by default: a hash of the function's body)."""
        if not self.enabled:
            return ""
        if self.version_override is not None:
            return self.version_override
        if params is None:
            raise ValueError("Cache.get_version needs VersionParameters when no version_override is set")
        if self.policies is None:
            return body_hash(params.func) if params.func is not None else ""
        policies = self.policies if isinstance(self.policies, (list, tuple)) else [self.policies]
        combined = ""
        for policy in policies:
            try:
                combined += policy.get_version(self.salt, params)
            except Exception as e:
                raise ValueError(f"cache policy {policy!r} failed to give a version: {e}") from e
        return hashlib.sha256(combined.encode()).hexdigest()


def _normalize_ignored(value: object) -> tuple[str, ...]:
    names: Iterable[object]
    if isinstance(value, str):
        names = (value,)
    elif isinstance(value, (tuple, list, set, frozenset)):
        names = value
    else:
        raise TypeError(
            f"Cache(ignored_inputs={value!r}) must be an input name or a tuple of them, e.g. ('debug',)"
        )
    result: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"Cache(ignored_inputs={value!r}): {name!r} is not an input name; "
                "list the task's parameter names, e.g. ignored_inputs=('debug',)"
            )
        if name not in result:
            result.append(name)
    # Sorted so that two spellings of the same set produce the same cache key.
    return tuple(sorted(result))


def normalize_cache(value: CacheRequest | str, version: str | None = None) -> Cache:
    """Turn what users pass as ``cache=`` (and the legacy ``cache_version=``) into a :class:`Cache`.

    ``None`` means caching is off. ``version`` supports ``@env.task(cache="override", cache_version="v1.2")``.
    """
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ValueError(f"cache_version={version!r} must be a non-empty string such as 'v1.2'")
    if value is None:
        if version is not None:
            raise ValueError(
                f"cache_version={version!r} was given without cache=...; use e.g. cache='auto', cache_version={version!r}"
            )
        return Cache(behavior="disable")
    if isinstance(value, Cache):
        cache = value
    elif isinstance(value, str) and value in CACHE_BEHAVIORS:
        cache = Cache(behavior=value)  # type: ignore[arg-type]
    else:
        raise _behavior_error(f"cache={value!r}", value)
    if version is None:
        return cache
    if not cache.enabled:
        raise ValueError(f"cache_version={version!r} has no effect with cache='disable'; drop one of them")
    if cache.version_override is not None and cache.version_override != version:
        raise ValueError(
            f"cache_version={version!r} conflicts with Cache(version_override={cache.version_override!r}); "
            "give the version once"
        )
    return Cache(
        behavior=cache.behavior,
        version_override=version,
        serialize=cache.serialize,
        ignored_inputs=cache.ignored_inputs,
        salt=cache.salt,
        policies=cache.policies,
    )


__all__ = ["CACHE_BEHAVIORS", "Cache", "CacheBehavior", "CacheRequest", "normalize_cache"]
