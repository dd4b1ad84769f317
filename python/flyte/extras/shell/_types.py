"""What a shell task declares: its inputs' kinds, its outputs, and how inputs become flags."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Tuple, Type, Union, get_args, get_origin

from flyte.io import Dir, File

listMode = Literal["join", "repeat", "comma"]
DictMode = Literal["pairs", "equals"]

_SCALARS = (int, float, str)
_PRIMITIVE_OUTPUTS = (int, float, str, bool)


@dataclass(frozen=True)
class Glob:
    """An output that is the files the script writes into ``{outputs.<name>}/`` matching
    ``pattern``; the caller gets a ``list[File]`` (a ``Dir`` on the wire)."""

    pattern: str = "*"


def _check_stream_type(which: str, tp: Any) -> None:
    if tp is not File and tp not in _PRIMITIVE_OUTPUTS:
        raise TypeError(f"{which}.type must be File or one of int, float, str, bool; got {tp!r}")


@dataclass(frozen=True)
class Stdout:
    """An output that is what the script prints (a File, or parsed as a primitive ``type``)."""

    type: Type[Any] = File

    def __post_init__(self) -> None:
        _check_stream_type("Stdout", self.type)


@dataclass(frozen=True)
class Stderr:
    """An output that is what the script writes to stderr (a File, or a primitive ``type``)."""

    type: Type[Any] = File

    def __post_init__(self) -> None:
        _check_stream_type("Stderr", self.type)


OutputSpec = Union[Type[Any], Glob, Stdout, Stderr]


@dataclass(frozen=True)
class FlagSpec:
    """How ``{flags.<name>}`` renders an input: ``flag`` (``-name`` by default) then the value
    (``separator`` between them for scalars); a list of files once (``join``), once per file
    (``repeat``) or comma-joined (``comma``); a dict as ``flag key value ...`` (``pairs``) or
    ``flagkey=value ...`` (``equals``)."""

    flag: str
    list_mode: listMode = "join"
    separator: str = " "
    dict_mode: DictMode = "pairs"

    @classmethod
    def coerce(cls, name: str, alias: str | Tuple[str, str] | FlagSpec | None) -> FlagSpec:
        if alias is None:
            return cls(flag=f"-{name}")
        if isinstance(alias, FlagSpec):
            return alias
        if isinstance(alias, str):
            return cls(flag=alias)
        if isinstance(alias, tuple) and len(alias) == 2 and isinstance(alias[0], str):
            flag, mode = alias
            if mode in ("join", "repeat", "comma"):
                return cls(flag=flag, list_mode=mode)  # type: ignore[arg-type]
            if mode in ("pairs", "equals"):
                return cls(flag=flag, dict_mode=mode)  # type: ignore[arg-type]
            raise TypeError(
                f"flag_aliases[{name!r}]: mode {mode!r} is none of join, repeat, comma (lists) or pairs, equals (dicts)"
            )
        raise TypeError(f"flag_aliases[{name!r}] = {alias!r}: give a flag, (flag, mode) or a FlagSpec")


def optional_inner(tp: Any) -> tuple[bool, Any]:
    """``(True, T)`` for ``T | None``; ``(False, tp)`` otherwise."""
    if get_origin(tp) in (Union, types.UnionType):
        args = get_args(tp)
        rest = [a for a in args if a is not type(None)]
        if len(args) == 2 and len(rest) == 1:
            return True, rest[0]
    return False, tp


def input_kind(name: str, tp: Any) -> str:
    """bool, scalar, file, dir, list_file or dict_str; TypeError for anything else."""
    _, inner = optional_inner(tp)
    if inner is bool:
        return "bool"
    if inner in _SCALARS:
        return "scalar"
    if inner is File:
        return "file"
    if inner is Dir:
        return "dir"
    if get_origin(inner) is list and get_args(inner) == (File,):
        return "list_file"
    if get_origin(inner) is dict and get_args(inner) == (str, str):
        return "dict_str"
    raise TypeError(
        f"input {name!r}: {tp!r} is not a shell task input type; use File, Dir, list[File], dict[str, str], "
        "int, float, str, bool, or one of them | None"
    )


def check_output(name: str, spec: Any) -> None:
    if isinstance(spec, (Glob, Stdout, Stderr)):
        return
    if isinstance(spec, type) and (spec in (File, Dir) or spec in _PRIMITIVE_OUTPUTS):
        return
    raise TypeError(
        f"output {name!r}: {spec!r} is neither File, Dir, int, float, str, bool nor Glob, Stdout, Stderr"
    )
