"""Python types for literal types: how a task deployed by someone else is called from here.

Only the interface of such a task is known (a ``TypedInterface``), so its inputs and outputs
get the Python type that writes and reads the same literals. Anything without an exact match
(structs, enums, pickled values) becomes ``Any``, which writes a value by what it is.
"""

from __future__ import annotations

import datetime
import inspect
from typing import Any, Optional

from flyteidl2.core import interface_pb2, types_pb2

from flyte._types._interface import NativeInterface
from flyte.io import DataFrame, Dir, File

_SIMPLE: dict[int, Any] = {
    types_pb2.INTEGER: int,
    types_pb2.FLOAT: float,
    types_pb2.STRING: str,
    types_pb2.BOOLEAN: bool,
    types_pb2.DATETIME: datetime.datetime,
    types_pb2.DURATION: datetime.timedelta,
    types_pb2.BINARY: bytes,
    types_pb2.NONE: type(None),
}


def python_type(lt: types_pb2.LiteralType) -> Any:
    kind = lt.WhichOneof("type")
    if kind == "simple" and lt.simple in _SIMPLE:
        return _SIMPLE[lt.simple]
    if kind == "collection_type":
        return list[python_type(lt.collection_type)]  # type: ignore[misc]
    if kind == "map_value_type":
        return dict[str, python_type(lt.map_value_type)]  # type: ignore[misc]
    if kind == "union_type":
        variants = [python_type(v) for v in lt.union_type.variants]
        others = [v for v in variants if v is not type(None)]
        if len(others) == 1 and len(variants) == 2:
            return Optional[others[0]]  # noqa: UP045 - a runtime type expression
        return Any
    if kind == "blob" and not lt.blob.format:
        return Dir if lt.blob.dimensionality == types_pb2.BlobType.MULTIPART else File
    if kind == "structured_dataset_type":
        return DataFrame
    return Any


def interface_of(typed: interface_pb2.TypedInterface, defaults: dict[str, Any], name: str) -> NativeInterface:
    """A NativeInterface for a typed interface; ``defaults`` are Python values by input name."""
    inputs = {
        entry.key: (python_type(entry.value.type), defaults.get(entry.key, inspect.Parameter.empty))
        for entry in typed.inputs.variables
    }
    outputs = {entry.key: python_type(entry.value.type) for entry in typed.outputs.variables}
    return NativeInterface(inputs, outputs, name=name)
