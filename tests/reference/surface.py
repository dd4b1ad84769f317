"""Prints the public surface of the `flyte` importable in this interpreter as JSON.

Run with the reference SDK's interpreter and with ours; `test_surface.py` compares the two.
It imports nothing from the tests so it runs unchanged in either virtualenv.

For every public module: its public names (``__all__``, else what the module defines), and
for each name its kind, signature, sync/async shape, and — for classes — the same for every
public member. Defaults are recorded only when they are plain values, which compare by value.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import pkgutil
import sys
import warnings
from typing import Any

_PLAIN = (bool, int, float, str, bytes, type(None))


def _default(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return {"none": True}
    if isinstance(value, enum.Enum):
        return {"value": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, _PLAIN):
        return {"value": repr(value)}
    if isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value):
        return {"value": repr(tuple(value))}
    return {"complex": type(value).__name__}


def _signature(obj: Any) -> list[dict[str, Any]] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [
        {"name": p.name, "kind": p.kind.name, "default": _default(p.default)} for p in sig.parameters.values()
    ]


def _unwrap(obj: Any) -> Any:
    """The function under a sync/async wrapper object (`.aio` carriers wrap a function)."""
    for attr in ("func", "__wrapped__", "_fn", "fn"):
        inner = getattr(obj, attr, None)
        if inner is not None and (inspect.isfunction(inner) or inspect.ismethod(inner)):
            return inner
    return obj


def _shape(obj: Any) -> dict[str, Any]:
    inner = _unwrap(obj)
    # A plain decorator over an `async def` still hands back a coroutine; a sync/async
    # carrier (one with `.aio`) runs it to completion instead.
    awaited = inspect.iscoroutinefunction(obj) or (
        not hasattr(obj, "aio") and inspect.iscoroutinefunction(inspect.unwrap(obj))
    )
    return {
        "coroutine": awaited,
        "async_generator": inspect.isasyncgenfunction(inner) and not hasattr(obj, "aio"),
        "generator": inspect.isgeneratorfunction(obj),
        "aio": hasattr(obj, "aio"),
    }


def _callable(obj: Any, bound: bool = False) -> dict[str, Any]:
    signature = _signature(obj)
    # A method's receiver is not something callers pass: whether it shows depends only on
    # how the method was wrapped.
    if bound and signature and signature[0]["name"] in ("self", "cls"):
        signature = signature[1:]
    return {"kind": "function", "signature": signature, **_shape(obj)}


def _member(cls: type, name: str) -> dict[str, Any] | None:
    try:
        raw = inspect.getattr_static(cls, name)
    except AttributeError:
        return None
    if isinstance(raw, property):
        return {"kind": "property"}
    if isinstance(raw, (staticmethod, classmethod)):
        return {**_callable(getattr(cls, name), bound=True), "kind": type(raw).__name__}
    if inspect.isfunction(raw):
        return {**_callable(raw, bound=True), "kind": "method"}
    if inspect.isclass(raw):
        return {"kind": "class"}
    if callable(raw) or hasattr(raw, "aio"):
        return {**_callable(getattr(cls, name), bound=True), "kind": "method"}
    if hasattr(raw, "__get__") and not isinstance(raw, _PLAIN):
        return {"kind": "property"}
    return {"kind": "attribute"}


def _class(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    names = set(getattr(cls, "__dataclass_fields__", {}))
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "abc", "typing", "enum") or klass.__module__.startswith(
            "pydantic"
        ):
            continue
        names.update(vars(klass))
        names.update(getattr(klass, "__annotations__", {}))
    pydantic = any(k.__module__.startswith("pydantic") for k in cls.__mro__)
    for name in sorted(names):
        if name.startswith("_") or (pydantic and name.startswith("model_")):
            continue
        info = _member(cls, name)
        members[name] = info if info is not None else {"kind": "attribute"}
    return {
        "kind": "enum" if issubclass(cls, enum.Enum) else "class",
        "signature": _signature(cls),
        "bases": [b.__name__ for b in cls.__mro__[1:]],
        "context_manager": hasattr(cls, "__enter__"),
        "async_context_manager": hasattr(cls, "__aenter__"),
        "iterator": hasattr(cls, "__iter__"),
        "async_iterator": hasattr(cls, "__aiter__"),
        "members": members,
        "enum_members": [m.name for m in cls] if issubclass(cls, enum.Enum) else [],
    }


def _describe(obj: Any) -> dict[str, Any]:
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if inspect.isclass(obj):
        return _class(obj)
    if callable(obj) or hasattr(obj, "aio"):
        return _callable(obj)
    return {"kind": "value", "type": type(obj).__name__}


def _public_names(module: Any) -> list[str]:
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    found = []
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        owner = getattr(value, "__module__", module.__name__)
        if isinstance(owner, str) and owner.split(".")[0] == "flyte":
            found.append(name)
    return found


def modules() -> list[str]:
    """Every public module: the package, its public submodules, and theirs one level down."""
    import flyte

    found = ["flyte"]
    for info in pkgutil.iter_modules(flyte.__path__):
        if info.name.startswith("_"):
            continue
        name = f"flyte.{info.name}"
        found.append(name)
        if info.ispkg:
            try:
                package = importlib.import_module(name)
            except Exception:  # an optional dependency missing: the module is still public
                continue
            found.extend(
                f"{name}.{sub.name}"
                for sub in pkgutil.iter_modules(package.__path__)
                if not sub.name.startswith("_")
            )
    return sorted(found)


def surface(names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # recorded, not fatal: the comparison decides what it means
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        described: dict[str, Any] = {}
        for public in _public_names(module):
            if not hasattr(module, public):
                described[public] = {"kind": "missing"}
                continue
            described[public] = _describe(getattr(module, public))
        out[name] = {"names": described}
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    names = sys.argv[1:] or modules()
    json.dump({"modules": names, "surface": surface(names)}, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
