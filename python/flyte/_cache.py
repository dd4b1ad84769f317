"""How a task's outputs are cached and looked up across runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Union, get_args

CacheBehavior = Literal["auto", "override", "disable"]
CACHE_BEHAVIORS: tuple[str, ...] = get_args(CacheBehavior)

CacheRequest = Union[CacheBehavior, "Cache", None]


def _behavior_error(label: str, value: object) -> ValueError:
    options = ", ".join(repr(b) for b in CACHE_BEHAVIORS)
    hint = ""
    if value is True:
        hint = ' (the v1 cache=True is now cache="auto")'
    elif value is False:
        hint = ' (the v1 cache=False is now cache="disable")'
    return ValueError(f"{label} is not a cache behavior; use one of {options} or flyte.Cache(...){hint}")


@dataclass(frozen=True)
class Cache:
    """Caching of a task's outputs.

    ``behavior``: ``"auto"`` reuses cached outputs when the inputs and the task's version match,
    ``"override"`` always runs and replaces the cached outputs, ``"disable"`` never caches.
    ``version_override`` pins the cache version instead of deriving it from the task's definition;
    ``serialize`` makes concurrent runs with identical inputs wait for one execution;
    ``ignored_inputs`` are left out of the cache key; ``salt`` is mixed into it.
    """

    behavior: CacheBehavior = "auto"
    version_override: str | None = None
    serialize: bool = False
    ignored_inputs: tuple[str, ...] | str = ()
    salt: str = ""

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

    @property
    def enabled(self) -> bool:
        return self.behavior != "disable"


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
    )


__all__ = ["CACHE_BEHAVIORS", "Cache", "CacheBehavior", "CacheRequest", "normalize_cache"]
