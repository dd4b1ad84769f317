"""``flyte.load_plugin_config``: a task plugin's configuration object, written as YAML.

The file names the configuration class and its constructor arguments; nested dataclasses,
lists and mappings of them, enums and pydantic models are built from the nested YAML values
by the types the class declares::

    plugin: my_plugins.SparkConfig
    config:
      executors: 4
      driver:
        memory: 4Gi
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class PluginConfigError(ValueError):
    """A plugin configuration file that cannot be turned into its configuration object."""


def load_plugin_config(path: str | Path) -> Any:
    """The plugin configuration object described by the YAML file at ``path`` (a mapping with
    ``plugin``, the configuration class's full name, and ``config``, its arguments)."""
    file = Path(path)
    try:
        document = yaml.safe_load(file.read_text())
    except OSError as e:
        raise PluginConfigError(f"cannot read plugin config {file}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise PluginConfigError(f"{file} is not valid YAML: {e}") from None
    if not isinstance(document, Mapping) or "plugin" not in document:
        raise PluginConfigError(f"{file} must be a mapping with a 'plugin' key naming the config class")
    unknown = set(document) - {"plugin", "config"}
    if unknown:
        raise PluginConfigError(
            f"{file}: unknown top-level keys {sorted(unknown)}; only 'plugin' and 'config'"
        )
    name = document["plugin"]
    if not isinstance(name, str) or "." not in name:
        raise PluginConfigError(f"{file}: 'plugin' must be a class's full name, e.g. my_plugins.SparkConfig")
    cls = _import_class(name, file)
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise PluginConfigError(f"{file}: 'config' must be a mapping of {cls.__name__}'s arguments")
    return _build(cls, config, f"{file}: config")


def _import_class(name: str, file: Path) -> type:
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and module_name.startswith(e.name):
                continue
            raise
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise PluginConfigError(
                f"{file}: module {module_name} has no {'.'.join(parts[split:])}"
            ) from None
        if not isinstance(obj, type):
            raise PluginConfigError(f"{file}: {name} is not a class")
        return obj
    raise PluginConfigError(f"{file}: cannot import {name}: no module {parts[0]!r}")


def _build(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for variant in (a for a in args if a is not type(None)):
            try:
                return _build(variant, value, where)
            except (PluginConfigError, TypeError, ValueError) as e:
                errors.append(str(e))
        raise PluginConfigError(f"{where}: {value!r} fits none of {tp}: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value not in args:
            raise PluginConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple and args and args[-1] is not Ellipsis:
        if not isinstance(value, list) or len(value) != len(args):
            raise PluginConfigError(f"{where}: expected a list of {len(args)} items, got {value!r}")
        return tuple(_build(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, value, strict=True)))
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if not isinstance(value, list):
            raise PluginConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        container = origin or tp
        return items if container is list else container(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise PluginConfigError(f"{where}: expected a mapping, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {k: _build(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, where)
    if isinstance(tp, type) and hasattr(tp, "model_validate"):
        try:
            return tp.model_validate(value)
        except ValueError as e:
            raise PluginConfigError(f"{where}: {e}") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value == member.value or value == member.name:
                return member
        raise PluginConfigError(
            f"{where}: {value!r} is not a {tp.__name__} ({', '.join(m.name for m in tp)})"
        )
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise PluginConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise PluginConfigError(f"{where}: expected a mapping of {cls.__name__}'s fields, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = set(value) - set(fields)
    if unknown:
        raise PluginConfigError(f"{where}: {cls.__name__} has no {', '.join(sorted(map(str, unknown)))}")
    kwargs = {name: _build(hints.get(name, Any), v, f"{where}.{name}") for name, v in value.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise PluginConfigError(f"{where}: {cls.__name__}: {e}") from None
