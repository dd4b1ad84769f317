"""Conversion of Python values to ``flyteidl2.core`` literals and back.

Every Python type is compiled once into a converter object (cached per type) that writes a value
straight into a caller-provided ``Literal``: building protobuf messages through keyword constructors
copies every nested message, which costs several microseconds per level on the hot path of a task call.

Converters signal a value that does not fit with ``_Mismatch``, which records where inside a nested
value the problem is as it propagates; the public entry points turn it into
``RuntimeDataValidationError``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime as _dt
import enum
import inspect
import numbers
import sys
import threading
import types
import typing
import warnings
from typing import Any, Generic, TypeVar

from flyteidl2.core import types_pb2
from flyteidl2.core.literals_pb2 import Literal
from flyteidl2.core.types_pb2 import LiteralType

from flyte._types._msgpack import NOT_EXACT, canonical_data, exact_data, packb, unpackb
from flyte.errors import RuntimeDataValidationError

T = TypeVar("T")

MSGPACK_TAG = "msgpack"
PICKLE_FORMAT = "PythonPickle"
# Literal.metadata key that keeps a datetime's timezone: the Timestamp itself can only hold an instant.
TZ_METADATA_KEY = "tz"
_TZ_NAIVE = "naive"

_NoneType = type(None)
_EMPTY = inspect.Parameter.empty
_STRUCT_ANNOTATION = {"cache-key-metadata": {"serialization-format": MSGPACK_TAG}}


class FlytePickleWarning(UserWarning):
    """A value is transported with cloudpickle because its type is unknown or not annotated."""


# --------------------------------------------------------------------------------------------------
# errors


class _Mismatch(Exception):
    """A value or literal does not fit its declared type (internal; see ``render``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def at(self, segment: str) -> _Mismatch:
        # Segments are collected innermost first while the exception unwinds.
        self.segments.append(segment)
        return self

    def render(self, where: str) -> str:
        if not self.segments:
            return self.message
        return f"{where}{''.join(reversed(self.segments))}: {self.message}"


def _short_repr(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    return f"{type(value).__name__} ({_short_repr(value)})"


def type_label(tp: Any) -> str:
    """A short, readable name for a type annotation, used in messages."""
    if tp is _EMPTY:
        return "<unannotated>"
    if tp is _NoneType or tp is None:
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    if isinstance(tp, str):
        return tp
    text = repr(tp)
    return text.replace("typing.", "").replace("collections.abc.", "")


def _literal_kind(lit: Literal) -> str:
    kind = lit.WhichOneof("value")
    if kind == "scalar":
        scalar = lit.scalar
        sub = scalar.WhichOneof("value")
        if sub == "primitive":
            return scalar.primitive.WhichOneof("value") or "empty primitive"
        if sub == "binary":
            tag = scalar.binary.tag
            return f"binary ({tag})" if tag else "binary"
        return sub or "empty scalar"
    return kind or "empty"


def _unwrap(lit: Literal) -> Literal | None:
    """The literal inside a union literal, so a union value can be read as one of its variants."""
    kind = lit.WhichOneof("value")
    if kind == "scalar":
        if lit.scalar.WhichOneof("value") == "union":
            return lit.scalar.union.value
        return None
    if kind == "offloaded_metadata":
        raise _Mismatch(
            f"the literal is offloaded to {lit.offloaded_metadata.uri}; it must be downloaded before conversion"
        )
    return None


# --------------------------------------------------------------------------------------------------
# pickling bookkeeping

_tls = threading.local()
_warned: set[tuple[str, str]] = set()


def _note_pickled(value: Any) -> None:
    _tls.pickled = type(value)


def start_pickle_watch() -> None:
    _tls.pickled = None


def pickled_type() -> type | None:
    """The type of the last value pickled since ``start_pickle_watch`` in this thread, if any."""
    return getattr(_tls, "pickled", None)


def warn_pickled_once(function: str, variable: str, pickled: type, declared: Any) -> None:
    key = (function, variable)
    if key in _warned:
        return
    _warned.add(key)
    declared_text = "no type annotation" if declared is _EMPTY else f"type {type_label(declared)}"
    warnings.warn(
        f"{function}: {variable} ({declared_text}) got a {pickled.__qualname__} value that can only be pickled "
        "with cloudpickle, and pickles only load under the same Python and library versions; use a supported "
        "type (int, str, list[...], dict[str, ...], a dataclass, a pydantic model, ...) to avoid this.",
        FlytePickleWarning,
        stacklevel=4,
    )


# --------------------------------------------------------------------------------------------------
# converters


class _Converter:
    """Compiled conversion for one Python type."""

    label: str = "value"
    # Union variants carry this in ``LiteralType.structure.tag`` so a reader can pick the variant back.
    tag: str = ""
    may_pickle: bool = False
    #: An immutable value of exactly this type reads back from its literal as an equal value of
    #: the same type, so an in-process call may hand the value itself on.
    round_trips: bool = False

    def __init__(self, tp: Any) -> None:
        self.tp = tp
        self._lt: LiteralType | None = None
        self._tagged_lt: LiteralType | None = None

    def exact(self, value: Any) -> bool:
        """Whether ``value`` has exactly this converter's type (used to prefer a union variant)."""
        return False

    def write(self, value: Any, out: Literal) -> None:
        raise NotImplementedError

    def read(self, lit: Literal) -> Any:
        raise NotImplementedError

    def build_literal_type(self) -> LiteralType:
        raise NotImplementedError

    @property
    def literal_type(self) -> LiteralType:
        lt = self._lt
        if lt is None:
            lt = self._lt = self.build_literal_type()
        return lt

    @property
    def tagged_literal_type(self) -> LiteralType:
        lt = self._tagged_lt
        if lt is None:
            lt = LiteralType()
            lt.CopyFrom(self.literal_type)
            lt.structure.tag = self.tag
            self._tagged_lt = lt
        return lt

    def mismatch(self, value: Any) -> _Mismatch:
        return _Mismatch(f"expected {self.label}, got {_describe(value)}")

    def read_other(self, lit: Literal) -> Any:
        inner = _unwrap(lit)
        if inner is not None:
            return self.read(inner)
        raise _Mismatch(f"expected {self.label}, got a {_literal_kind(lit)} literal")


def _simple_type(simple: int) -> LiteralType:
    lt = LiteralType()
    lt.simple = simple  # type: ignore[assignment,unused-ignore]
    return lt


class _IntConverter(_Converter):
    label = tag = "int"
    round_trips = True

    def exact(self, value: Any) -> bool:
        return type(value) is int

    def write(self, value: Any, out: Literal) -> None:
        if type(value) is not int:
            # numpy integers register as numbers.Integral; bool is an int subclass but never an int here.
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise self.mismatch(value)
            value = int(value)
        try:
            out.scalar.primitive.integer = value
        except ValueError:
            raise _Mismatch(f"int {value} does not fit in 64 bits") from None

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        value = prim.integer
        if value or prim.WhichOneof("value") == "integer":
            return value
        if prim.WhichOneof("value") == "float_value" and prim.float_value.is_integer():
            return int(prim.float_value)
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.INTEGER)


class _FloatConverter(_Converter):
    label = tag = "float"
    round_trips = True

    def exact(self, value: Any) -> bool:
        return type(value) is float

    def write(self, value: Any, out: Literal) -> None:
        if type(value) is not float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise self.mismatch(value)
            try:
                value = float(value)
            except (OverflowError, ValueError):
                raise self.mismatch(value) from None
        out.scalar.primitive.float_value = value

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        value = prim.float_value
        if value or prim.WhichOneof("value") == "float_value":
            return value
        if prim.WhichOneof("value") == "integer":
            return float(prim.integer)
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.FLOAT)


class _StrConverter(_Converter):
    label = tag = "str"
    round_trips = True

    def exact(self, value: Any) -> bool:
        return type(value) is str

    def write(self, value: Any, out: Literal) -> None:
        if type(value) is not str:
            if not isinstance(value, str):
                raise self.mismatch(value)
            # str subclasses (str-valued enums) must travel as their plain text, not their repr.
            value = str.__str__(value)
        try:
            out.scalar.primitive.string_value = value
        except ValueError:
            raise _Mismatch(f"str {_short_repr(value)} is not valid unicode") from None

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        value = prim.string_value
        if value or prim.WhichOneof("value") == "string_value":
            return value
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.STRING)


class _BoolConverter(_Converter):
    label = tag = "bool"
    round_trips = True

    def exact(self, value: Any) -> bool:
        return type(value) is bool

    def write(self, value: Any, out: Literal) -> None:
        if type(value) is not bool:
            if type(value).__name__ != "bool_":  # numpy.bool_, without importing numpy
                raise self.mismatch(value)
            value = bool(value)
        out.scalar.primitive.boolean = value

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        if prim.boolean:
            return True
        if prim.WhichOneof("value") == "boolean":
            return False
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.BOOLEAN)


class _NoneConverter(_Converter):
    label = "None"
    tag = "none"
    round_trips = True

    def exact(self, value: Any) -> bool:
        return value is None

    def write(self, value: Any, out: Literal) -> None:
        if value is not None:
            raise self.mismatch(value)
        out.scalar.none_type.SetInParent()

    def read(self, lit: Literal) -> Any:
        if lit.scalar.WhichOneof("value") == "none_type" or lit.WhichOneof("value") is None:
            return None
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.NONE)


class _BytesConverter(_Converter):
    label = tag = "bytes"

    def exact(self, value: Any) -> bool:
        return type(value) is bytes

    def write(self, value: Any, out: Literal) -> None:
        if type(value) is not bytes:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise self.mismatch(value)
            value = bytes(value)
        out.scalar.binary.value = value

    def read(self, lit: Literal) -> Any:
        scalar = lit.scalar
        if scalar.WhichOneof("value") == "binary" and not scalar.binary.tag:
            return scalar.binary.value
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.BINARY)


_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _format_offset(offset: _dt.timedelta) -> str:
    total_us = (offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds
    sign = "-" if total_us < 0 else "+"
    seconds, micros = divmod(abs(total_us), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if secs or micros:
        text += f":{secs:02d}"
    if micros:
        text += f".{micros:06d}"
    return text


def _parse_offset(text: str) -> _dt.tzinfo:
    sign = -1 if text.startswith("-") else 1
    parts = text[1:].split(":")
    hours, minutes = int(parts[0]), int(parts[1])
    seconds = float(parts[2]) if len(parts) > 2 else 0.0
    return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes, seconds=seconds))


class _DatetimeConverter(_Converter):
    label = tag = "datetime"

    def exact(self, value: Any) -> bool:
        return type(value) is _dt.datetime

    def write(self, value: Any, out: Literal) -> None:
        if not isinstance(value, _dt.datetime):
            raise self.mismatch(value)
        offset = value.utcoffset()
        if offset is None:
            # A naive datetime keeps its wall-clock time: it is stored as if it were UTC and marked, so it
            # reads back naive and equal, whatever the timezones of the two machines.
            delta = value - _EPOCH
            out.metadata[TZ_METADATA_KEY] = _TZ_NAIVE
        else:
            delta = value - _EPOCH_UTC
            if offset:
                out.metadata[TZ_METADATA_KEY] = _format_offset(offset)
        ts = out.scalar.primitive.datetime
        ts.seconds = delta.days * 86400 + delta.seconds
        ts.nanos = delta.microseconds * 1000

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        if prim.WhichOneof("value") != "datetime":
            return self.read_other(lit)
        ts = prim.datetime
        delta = _dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
        tz = lit.metadata.get(TZ_METADATA_KEY) if lit.metadata else None
        if tz == _TZ_NAIVE:
            return _EPOCH + delta
        value = _EPOCH_UTC + delta
        if tz:
            value = value.astimezone(_parse_offset(tz))
        return value

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.DATETIME)


class _DateConverter(_Converter):
    label = tag = "date"

    def exact(self, value: Any) -> bool:
        return type(value) is _dt.date

    def write(self, value: Any, out: Literal) -> None:
        # A datetime is a date subclass, but silently dropping its time of day would lose data.
        if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
            raise self.mismatch(value)
        ts = out.scalar.primitive.datetime
        ts.seconds = (value.toordinal() - _EPOCH_ORDINAL) * 86400
        ts.nanos = 0

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        if prim.WhichOneof("value") != "datetime":
            return self.read_other(lit)
        ts = prim.datetime
        return (_EPOCH + _dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)).date()

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.DATETIME)


class _TimedeltaConverter(_Converter):
    label = tag = "timedelta"

    def exact(self, value: Any) -> bool:
        return type(value) is _dt.timedelta

    def write(self, value: Any, out: Literal) -> None:
        if not isinstance(value, _dt.timedelta):
            raise self.mismatch(value)
        micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        # google.protobuf.Duration wants seconds and nanos with the same sign.
        seconds, rest = divmod(abs(micros), 1_000_000)
        sign = -1 if micros < 0 else 1
        duration = out.scalar.primitive.duration
        duration.seconds = sign * seconds
        duration.nanos = sign * rest * 1000

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        if prim.WhichOneof("value") != "duration":
            return self.read_other(lit)
        duration = prim.duration
        return _dt.timedelta(seconds=duration.seconds, microseconds=duration.nanos / 1000)

    def build_literal_type(self) -> LiteralType:
        return _simple_type(types_pb2.DURATION)


class _EnumConverter(_Converter):
    """An Enum travels as a string: its value when every value is a str, otherwise its member name."""

    tag = "DefaultEnumTransformer"

    def __init__(self, tp: type[enum.Enum]) -> None:
        super().__init__(tp)
        members = list(tp)
        self.by_value = all(isinstance(m.value, str) for m in members)
        self.keys = [m.value if self.by_value else m.name for m in members]
        self.members: dict[str, enum.Enum] = dict(zip(self.keys, members, strict=True))
        self.key_of: dict[enum.Enum, str] = {m: k for k, m in self.members.items()}
        shown = ", ".join(repr(k) for k in self.keys[:8]) + (", ..." if len(self.keys) > 8 else "")
        self.label = f"{tp.__qualname__} (one of {shown})"

    def exact(self, value: Any) -> bool:
        return isinstance(value, self.tp)

    def _lookup(self, value: Any) -> str | None:
        if isinstance(value, self.tp):
            return self.key_of[value]
        if isinstance(value, str):
            if value in self.members:
                return value
            member = self.tp.__members__.get(value)
            if member is not None:
                return self.key_of[member]
            return None
        try:
            return self.key_of[self.tp(value)]
        except (ValueError, TypeError, KeyError):
            return None

    def write(self, value: Any, out: Literal) -> None:
        key = self._lookup(value)
        if key is None:
            raise self.mismatch(value)
        out.scalar.primitive.string_value = key

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        if prim.WhichOneof("value") != "string_value":
            return self.read_other(lit)
        text = prim.string_value
        member = self.members.get(text)
        if member is None:
            member = self.tp.__members__.get(text)
            if member is None:
                raise _Mismatch(f"expected {self.label}, got {text!r}")
        return member

    def build_literal_type(self) -> LiteralType:
        lt = LiteralType()
        lt.enum_type.values.extend(self.keys)
        return lt


class _LiteralStrConverter(_Converter):
    """``typing.Literal["a", "b"]``: an enum literal type whose values read back as plain strings."""

    tag = "DefaultEnumTransformer"

    def __init__(self, tp: Any, values: tuple[str, ...]) -> None:
        super().__init__(tp)
        self.values = values
        self.allowed = frozenset(values)
        self.label = f"one of {', '.join(repr(v) for v in values)}"

    def exact(self, value: Any) -> bool:
        return type(value) is str and value in self.allowed

    def write(self, value: Any, out: Literal) -> None:
        if not isinstance(value, str) or value not in self.allowed:
            raise self.mismatch(value)
        out.scalar.primitive.string_value = str.__str__(value)

    def read(self, lit: Literal) -> Any:
        prim = lit.scalar.primitive
        if prim.WhichOneof("value") != "string_value":
            return self.read_other(lit)
        text = prim.string_value
        if text not in self.allowed:
            raise _Mismatch(f"expected {self.label}, got {text!r}")
        return text

    def build_literal_type(self) -> LiteralType:
        lt = LiteralType()
        lt.enum_type.values.extend(self.values)
        return lt


_TOTALLY_ORDERED = (str, int, float, bytes)


def _canonical_order(items: collections.abc.Set[Any], conv: _Converter) -> list[Any]:
    """The elements of a set in an order that does not depend on the process's hash seed."""
    if all(type(x) in _TOTALLY_ORDERED for x in items):
        try:
            return sorted(items)
        except TypeError:
            pass
    keyed = []
    for x in items:
        tmp = Literal()
        conv.write(x, tmp)
        keyed.append((tmp.SerializeToString(deterministic=True), x))
    keyed.sort(key=lambda pair: pair[0])
    return [x for _, x in keyed]


def _as_sequence(conv: _Converter, value: Any, elem: _Converter) -> list[Any] | tuple[Any, ...]:
    if type(value) is list or type(value) is tuple:
        return value
    if isinstance(value, (str, bytes, bytearray, memoryview, collections.abc.Mapping)):
        raise conv.mismatch(value)
    if isinstance(value, collections.abc.Set):
        return _canonical_order(value, elem)
    try:
        return list(value)
    except TypeError:
        raise conv.mismatch(value) from None


class _ListConverter(_Converter):
    tag = "Typed List"

    def __init__(self, tp: Any, elem: _Converter, container: type = list) -> None:
        super().__init__(tp)
        self.elem = elem
        self.container = container
        self.may_pickle = elem.may_pickle
        self.label = f"{container.__name__}[{elem.label}{', ...' if container is tuple else ''}]"

    def exact(self, value: Any) -> bool:
        return type(value) is self.container

    def write(self, value: Any, out: Literal) -> None:
        items = _as_sequence(self, value, self.elem)
        if not items:
            out.collection.SetInParent()
            return
        add = out.collection.literals.add
        write = self.elem.write
        for i, item in enumerate(items):
            try:
                write(item, add())
            except _Mismatch as e:
                raise e.at(f"[{i}]") from None

    def _read_items(self, lit: Literal) -> list[Any]:
        if lit.WhichOneof("value") != "collection":
            return list(self.read_other(lit))
        read = self.elem.read
        lits = lit.collection.literals
        try:
            return [read(x) for x in lits]
        except _Mismatch:
            pass
        # Rerun one by one only on failure, to report the index without slowing the common path.
        for i, x in enumerate(lits):
            try:
                read(x)
            except _Mismatch as e:
                raise e.at(f"[{i}]") from None
        raise AssertionError("unreachable")

    def read(self, lit: Literal) -> Any:
        items = self._read_items(lit)
        if self.container is list or type(items) is self.container:
            return items
        return self.container(items)

    def build_literal_type(self) -> LiteralType:
        lt = LiteralType()
        lt.collection_type.CopyFrom(self.elem.literal_type)
        return lt


class _SetConverter(_ListConverter):
    """``set[T]`` travels as a collection sorted into a canonical order, so equal sets hash equally."""

    tag = "Typed Set"

    def __init__(self, tp: Any, elem: _Converter, container: type) -> None:
        super().__init__(tp, elem, container)
        self.label = f"{container.__name__}[{elem.label}]"

    def exact(self, value: Any) -> bool:
        return isinstance(value, (set, frozenset))

    def write(self, value: Any, out: Literal) -> None:
        if isinstance(value, (str, bytes, bytearray, memoryview, collections.abc.Mapping)):
            raise self.mismatch(value)
        if not isinstance(value, collections.abc.Set):
            try:
                value = set(value)
            except TypeError:
                raise self.mismatch(value) from None
        super().write(_canonical_order(value, self.elem), out)

    def read(self, lit: Literal) -> Any:
        items = self._read_items(lit)
        try:
            return self.container(items)
        except TypeError as e:
            raise _Mismatch(f"cannot build a {self.label}: {e}") from None


class _DictConverter(_Converter):
    """``dict[str, V]`` as a LiteralMap.

    A LiteralMap has no order, and deterministic serialization sorts its keys, so dicts read back
    with their keys sorted; that is also what makes equal dicts produce equal bytes.
    """

    tag = "Typed Dict"

    def __init__(self, tp: Any, value: _Converter) -> None:
        super().__init__(tp)
        self.value = value
        self.may_pickle = value.may_pickle
        self.label = f"dict[str, {value.label}]"

    def exact(self, value: Any) -> bool:
        return type(value) is dict

    def write(self, value: Any, out: Literal) -> None:
        if not isinstance(value, collections.abc.Mapping):
            raise self.mismatch(value)
        if not value:
            out.map.SetInParent()
            return
        entries = out.map.literals
        write = self.value.write
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise _Mismatch(f"expected a str key, got {_describe(key)}").at(f"[{_short_repr(key)}]")
                key = str.__str__(key)
            try:
                write(item, entries[key])
            except _Mismatch as e:
                raise e.at(f"[{key!r}]") from None
            except ValueError:
                raise _Mismatch("key is not valid unicode").at(f"[{_short_repr(key)}]") from None

    def read(self, lit: Literal) -> Any:
        if lit.WhichOneof("value") != "map":
            return self.read_other(lit)
        entries = lit.map.literals
        read = self.value.read
        result = {}
        for key in sorted(entries):
            try:
                result[key] = read(entries[key])
            except _Mismatch as e:
                raise e.at(f"[{key!r}]") from None
        return result

    def build_literal_type(self) -> LiteralType:
        lt = LiteralType()
        lt.map_value_type.CopyFrom(self.value.literal_type)
        return lt


class _UnionConverter(_Converter):
    def __init__(self, tp: Any, variants: list[_Converter]) -> None:
        super().__init__(tp)
        self.variants = variants
        self.tag = "Typed Union"
        self.may_pickle = any(v.may_pickle for v in variants)
        self.label = " | ".join(v.label for v in variants)
        self.by_tag: dict[str, list[_Converter]] = {}
        for v in variants:
            self.by_tag.setdefault(v.tag, []).append(v)
        self.none_variant = next((v for v in variants if isinstance(v, _NoneConverter)), None)

    def exact(self, value: Any) -> bool:
        return any(v.exact(value) for v in self.variants)

    def write(self, value: Any, out: Literal) -> None:
        union = out.scalar.union
        # Exact-type variants first, so Union[int, float] keeps 1.0 a float and True stays a bool.
        exact_error: _Mismatch | None = None
        exact_count = 0
        for variant in self.variants:
            if not variant.exact(value):
                continue
            exact_count += 1
            try:
                variant.write(value, union.value)
            except _Mismatch as e:
                union.value.Clear()
                exact_error = exact_error or e
                continue
            union.type.CopyFrom(variant.tagged_literal_type)
            return
        for variant in self.variants:
            if exact_count and variant.exact(value):
                continue
            try:
                variant.write(value, union.value)
            except _Mismatch:
                union.value.Clear()
                continue
            union.type.CopyFrom(variant.tagged_literal_type)
            return
        out.Clear()
        if exact_error is not None and exact_count == 1:
            raise exact_error
        raise self.mismatch(value)

    def read(self, lit: Literal) -> Any:
        scalar = lit.scalar
        if lit.WhichOneof("value") == "scalar" and scalar.WhichOneof("value") == "union":
            union = scalar.union
            candidates = self.by_tag.get(union.type.structure.tag)
            if candidates and len(candidates) > 1:
                # Several variants share a tag (two dataclasses, list[int] | list[str]): the full
                # literal type written with the value tells them apart.
                same = [c for c in candidates if c.tagged_literal_type == union.type]
                candidates = same + [c for c in candidates if c not in same]
            elif not candidates:
                # A tag from another producer: try the variants whose type matches first, so an int
                # variant does not claim a float written as 1.0.
                essence = _type_essence(union.type)
                same = [v for v in self.variants if _type_essence(v.literal_type) == essence]
                candidates = same + [v for v in self.variants if v not in same]
            return self._read_first(union.value, candidates)
        if self.none_variant is not None and (
            scalar.WhichOneof("value") == "none_type" or lit.WhichOneof("value") is None
        ):
            return None
        # A plain literal (from a producer that does not wrap unions): take the first variant that reads it.
        return self._read_first(lit, self.variants)

    def _read_first(self, lit: Literal, candidates: list[_Converter]) -> Any:
        first_error: _Mismatch | None = None
        for variant in candidates:
            try:
                return variant.read(lit)
            except _Mismatch as e:
                first_error = first_error or e
        if len(candidates) == 1 and first_error is not None:
            raise first_error
        raise _Mismatch(f"expected {self.label}, got a {_literal_kind(lit)} literal that none of them reads")

    def build_literal_type(self) -> LiteralType:
        lt = LiteralType()
        lt.union_type.variants.extend(v.tagged_literal_type for v in self.variants)
        return lt


def _type_essence(lt: LiteralType) -> LiteralType:
    essence = LiteralType()
    essence.CopyFrom(lt)
    for field in ("structure", "metadata", "annotation"):
        essence.ClearField(field)
    return essence


def _struct_literal_type(metadata: dict[str, Any] | None) -> LiteralType:
    lt = LiteralType()
    lt.simple = types_pb2.STRUCT
    lt.annotation.annotations.update(_STRUCT_ANNOTATION)
    if metadata:
        lt.metadata.update(metadata)
    return lt


#: Pydantic serialization context key that tells flyte.io values nested in a struct to store
#: local paths while being dumped (see flyte.io._file.Reference).
UPLOAD_CONTEXT = "flyte.io/upload"
_DUMP_CONTEXT = {UPLOAD_CONTEXT: True}


class _StructConverter(_Converter):
    """Dataclasses, pydantic models and other shapes pydantic understands, as msgpack binaries.

    The value is dumped by pydantic in python mode and then made JSON-like by ``canonical_data``,
    which keeps bytes as msgpack binaries, sorts map keys and set members (so equal values give equal
    bytes in every process), and reads back through pydantic validation.
    """

    def __init__(self, tp: Any, adapter: Any, cls: type | None, tag: str) -> None:
        from pydantic import ValidationError
        from pydantic_core import PydanticSerializationError

        super().__init__(tp)
        self.validation_error = ValidationError
        self.serialization_error = PydanticSerializationError
        self.adapter = adapter
        self.cls = cls
        self.tag = tag
        self.label = type_label(tp)

    def exact(self, value: Any) -> bool:
        return self.cls is not None and isinstance(value, self.cls)

    def write(self, value: Any, out: Literal) -> None:
        if self.cls is None or not isinstance(value, self.cls):
            # Dicts (parsed JSON from the CLI), tuples and TypedDicts are checked and converted here.
            try:
                value = self.adapter.validate_python(value)
            except self.validation_error as e:
                raise _from_validation_error(e, self.label, value) from None
        try:
            data = self.adapter.dump_python(value, mode="python", warnings="error", context=_DUMP_CONTEXT)
        except self.serialization_error as e:
            raise self._explain_dump_error(value, e) from None
        try:
            payload = packb(canonical_data(data))
        except (self.serialization_error, TypeError, ValueError, OverflowError) as e:
            raise _Mismatch(
                f"cannot serialize {_describe(value)} as {self.label}: {_first_line(e)}"
            ) from None
        binary = out.scalar.binary
        binary.value = payload
        binary.tag = MSGPACK_TAG

    def _explain_dump_error(self, value: Any, error: Exception) -> _Mismatch:
        """A dataclass built with wrong field types only fails when dumped; validating its fields
        again names the offending field."""
        try:
            loose = self.adapter.dump_python(value, mode="python", warnings="none")
            self.adapter.validate_python(loose)
        except self.validation_error as e:
            return _from_validation_error(e, self.label, value)
        except Exception:
            pass
        return _Mismatch(f"cannot serialize {_describe(value)} as {self.label}: {_first_line(error)}")

    def read(self, lit: Literal) -> Any:
        scalar = lit.scalar
        kind = scalar.WhichOneof("value") if lit.WhichOneof("value") == "scalar" else None
        if kind == "binary" and scalar.binary.tag == MSGPACK_TAG:
            try:
                data = unpackb(scalar.binary.value)
            except Exception as e:
                raise _Mismatch(f"corrupt msgpack payload for {self.label}: {e}") from None
        elif kind == "generic":
            from google.protobuf.json_format import MessageToDict

            data = MessageToDict(scalar.generic)
        else:
            return self.read_other(lit)
        try:
            return self.adapter.validate_python(data)
        except self.validation_error as e:
            raise _from_validation_error(e, self.label, data) from None

    def build_literal_type(self) -> LiteralType:
        try:
            schema = self.adapter.json_schema()
        except Exception:  # some valid types (callables, arbitrary types) have no JSON schema
            schema = None
        return _struct_literal_type(schema)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[-1].strip() if text else type(e).__name__


# Pydantic error types ("int_parsing", "string_type", ...) whose meaning is simply "expected <type>".
_PYDANTIC_EXPECTED = {
    "int": "int",
    "float": "float",
    "string": "str",
    "bool": "bool",
    "bytes": "bytes",
    "list": "list",
    "tuple": "tuple",
    "set": "set",
    "frozen_set": "frozenset",
    "dict": "dict",
    "datetime": "datetime",
    "date": "date",
    "time": "time",
    "time_delta": "timedelta",
    "model": "an object",
    "dataclass": "an object",
    "model_attributes": "an object",
    "none_required": "None",
}


def _validation_message(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    got = _describe(error.get("input"))
    if kind == "missing":
        return "missing required field"
    for suffix in ("_type", "_parsing", "_exact"):
        if kind.endswith(suffix):
            expected = _PYDANTIC_EXPECTED.get(kind[: -len(suffix)])
            if expected is not None:
                return f"expected {expected}, got {got}"
    message = str(error.get("msg", kind))
    return f"{message[:1].lower()}{message[1:]}, got {got}"


def _from_validation_error(e: Any, label: str, value: Any) -> _Mismatch:
    errors = e.errors(include_url=False)
    first = errors[0] if errors else {}
    segments = [f"[{part}]" if isinstance(part, int) else f".{part}" for part in first.get("loc", ())]
    if not segments:
        return _Mismatch(f"expected {label}, got {_describe(value)}")
    message = _validation_message(first)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    mismatch = _Mismatch(message)
    mismatch.segments = list(reversed(segments))
    return mismatch


class _AnyConverter(_Converter):
    """``Any``, bare ``dict`` and bare ``list``.

    A value made only of types msgpack gives back exactly (None, bool, int, float, str, bytes, lists,
    dicts with scalar keys) travels as msgpack; anything else is pickled.
    """

    may_pickle = True

    def __init__(self, tp: Any, container: type | None = None) -> None:
        super().__init__(tp)
        self.container = container
        self.label = type_label(tp) if container is None else container.__name__
        self.tag = {dict: "Typed Dict", list: "Typed List"}.get(container, "Any")  # type: ignore[call-overload]

    def exact(self, value: Any) -> bool:
        return self.container is not None and type(value) is self.container

    def write(self, value: Any, out: Literal) -> None:
        container = self.container
        if container is dict:
            if not isinstance(value, collections.abc.Mapping):
                raise self.mismatch(value)
            if type(value) is not dict:
                value = dict(value)
        elif container is list:
            if type(value) is not list:
                value = list(_as_sequence(self, value, _ANY))
        elif value is None:
            out.scalar.none_type.SetInParent()
            return
        data = exact_data(value)
        if data is not NOT_EXACT:
            binary = out.scalar.binary
            binary.value = packb(data)
            binary.tag = MSGPACK_TAG
            return
        _write_pickle(value, out)

    def read(self, lit: Literal) -> Any:
        value = read_any(lit)
        if self.container is not None and type(value) is not self.container:
            raise _Mismatch(f"expected {self.label}, got {_describe(value)}")
        return value

    def build_literal_type(self) -> LiteralType:
        return _struct_literal_type(None)


def _set_members_in_order(members: collections.abc.Set[Any]) -> list[Any]:
    try:
        return sorted(members)
    except TypeError:
        return sorted(members, key=lambda m: (type(m).__qualname__, repr(m)))


class _SortedSet:
    """Pickles as a set whose members are written in sorted order."""

    def __init__(self, kind: type, members: list[Any]) -> None:
        self.kind = kind
        self.members = members

    def __reduce__(self) -> tuple[Any, ...]:
        return self.kind, (self.members,)


def _sets_sorted(value: Any, memo: dict[int, Any]) -> Any:
    """A copy of the built-in containers in ``value`` with every set replaced by a ``_SortedSet``.

    Set iteration order follows string hashes, which are randomized per process, and the C pickler
    offers no hook for sets; without this an equal set would pickle to different bytes (and a
    different cache key) in every process. Shared and cyclic containers stay shared through ``memo``.
    """
    kind = type(value)
    if (
        kind is not list
        and kind is not dict
        and kind is not tuple
        and kind is not set
        and kind is not frozenset
    ):
        return value
    key = id(value)
    if key in memo:
        return memo[key]
    if kind is list:
        copy: Any = []
        memo[key] = copy
        copy.extend(_sets_sorted(v, memo) for v in value)
        return copy
    if kind is dict:
        copy = {}
        memo[key] = copy
        for k, v in value.items():
            copy[k] = _sets_sorted(v, memo)
        return copy
    memo[key] = value  # a tuple reached again through itself stays as it is
    if kind is tuple:
        copy = tuple(_sets_sorted(v, memo) for v in value)
    else:
        copy = _SortedSet(kind, [_sets_sorted(m, memo) for m in _set_members_in_order(value)])
    memo[key] = copy
    return copy


def _pickle_dumps(value: Any) -> bytes:
    import cloudpickle

    payload: bytes = cloudpickle.dumps(_sets_sorted(value, {}))
    return payload


def _write_pickle(value: Any, out: Literal) -> None:
    try:
        payload = _pickle_dumps(value)
    except Exception as e:
        raise _Mismatch(f"cannot pickle {_describe(value)}: {_first_line(e)}") from None
    _note_pickled(value)
    binary = out.scalar.binary
    binary.value = payload
    binary.tag = PICKLE_FORMAT


def _read_pickle(lit: Literal) -> Any:
    import pickle

    try:
        return pickle.loads(lit.scalar.binary.value)
    except Exception as e:
        raise _Mismatch(f"cannot unpickle the value: {_first_line(e)}") from None


def _supports_isinstance(tp: Any) -> bool:
    if not isinstance(tp, type) or tp is _EMPTY:  # Parameter.empty is a class too
        return False
    try:
        isinstance(None, tp)
    except TypeError:  # e.g. TypedDict classes refuse instance checks
        return False
    return True


class _PickleConverter(_Converter):
    """Types the engine does not know, and unannotated values: cloudpickle in a binary literal."""

    tag = "FlytePickle"
    may_pickle = True

    def __init__(self, tp: Any) -> None:
        super().__init__(tp)
        self.cls = tp if _supports_isinstance(tp) else None
        self.label = type_label(tp)

    def exact(self, value: Any) -> bool:
        return self.cls is not None and isinstance(value, self.cls)

    def write(self, value: Any, out: Literal) -> None:
        if self.cls is not None:
            if not isinstance(value, self.cls):
                raise self.mismatch(value)
        elif value is None:
            # An unannotated function that returns nothing must not pickle (and warn about) None.
            out.scalar.none_type.SetInParent()
            return
        _write_pickle(value, out)

    def read(self, lit: Literal) -> Any:
        scalar = lit.scalar
        kind = scalar.WhichOneof("value") if lit.WhichOneof("value") == "scalar" else None
        if kind == "binary" and scalar.binary.tag in (PICKLE_FORMAT, ""):
            return _read_pickle(lit)
        if kind == "none_type":
            return None
        if kind == "blob" and scalar.blob.metadata.type.format == PICKLE_FORMAT:
            raise _Mismatch(f"the pickled value is stored at {scalar.blob.uri}; it must be downloaded first")
        return self.read_other(lit)

    def build_literal_type(self) -> LiteralType:
        lt = LiteralType()
        lt.blob.format = PICKLE_FORMAT
        lt.blob.dimensionality = types_pb2.BlobType.SINGLE
        lt.metadata.update({"python_class_name": str(self.tp) if self.tp is not _EMPTY else "<unannotated>"})
        return lt


_ANY = _AnyConverter(Any)


def read_any(lit: Literal) -> Any:
    """Read a literal without a declared type, from its shape alone."""
    kind = lit.WhichOneof("value")
    if kind == "scalar":
        scalar = lit.scalar
        sub = scalar.WhichOneof("value")
        if sub == "binary":
            tag = scalar.binary.tag
            if tag == MSGPACK_TAG:
                return unpackb(scalar.binary.value)
            if tag == PICKLE_FORMAT:
                return _read_pickle(lit)
            return scalar.binary.value
        if sub == "none_type":
            return None
        if sub == "union":
            return read_any(scalar.union.value)
        if sub == "primitive":
            prim = scalar.primitive
            which = prim.WhichOneof("value")
            if which == "integer":
                return prim.integer
            if which == "float_value":
                return prim.float_value
            if which == "string_value":
                return prim.string_value
            if which == "boolean":
                return prim.boolean
            if which == "datetime":
                return _DATETIME.read(lit)
            if which == "duration":
                return _TIMEDELTA.read(lit)
        if sub == "generic":
            from google.protobuf.json_format import MessageToDict

            return MessageToDict(scalar.generic)
    elif kind == "collection":
        return [read_any(x) for x in lit.collection.literals]
    elif kind == "map":
        entries = lit.map.literals
        return {k: read_any(entries[k]) for k in sorted(entries)}
    elif kind is None:
        return None
    _unwrap(lit)  # raises a clear error for offloaded literals
    raise _Mismatch(f"cannot read a {_literal_kind(lit)} literal without a known type")


class LiteralTransformer(Generic[T]):
    """Extension point: teaches the engine a Python type (File, Dir, DataFrame, ...).

    Subclasses implement ``get_literal_type``, ``to_literal`` and ``to_python``. Raise ``TypeError`` or
    ``ValueError`` for a value or literal that does not fit; the engine reports it with its location.
    """

    def __init__(self, name: str, python_type: type[T]) -> None:
        self.name = name
        self.python_type = python_type

    def get_literal_type(self, tp: Any) -> LiteralType:
        raise NotImplementedError

    def to_literal(self, value: T, tp: Any) -> Literal:
        raise NotImplementedError

    def to_python(self, lit: Literal, tp: Any) -> T:
        raise NotImplementedError

    def is_instance(self, value: Any) -> bool:
        return isinstance(value, self.python_type)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {type_label(self.python_type)})"


class _TransformerConverter(_Converter):
    def __init__(self, tp: Any, transformer: LiteralTransformer[Any]) -> None:
        super().__init__(tp)
        self.transformer = transformer
        self.tag = transformer.name
        self.label = type_label(tp)

    def exact(self, value: Any) -> bool:
        return self.transformer.is_instance(value)

    def write(self, value: Any, out: Literal) -> None:
        try:
            lit = self.transformer.to_literal(value, self.tp)
        except (TypeError, ValueError) as e:
            raise _Mismatch(f"expected {self.label}, got {_describe(value)}: {e}") from None
        out.CopyFrom(lit)

    def read(self, lit: Literal) -> Any:
        inner = _unwrap(lit)
        try:
            return self.transformer.to_python(inner if inner is not None else lit, self.tp)
        except (TypeError, ValueError) as e:
            raise _Mismatch(f"cannot read {self.label}: {e}") from None

    def build_literal_type(self) -> LiteralType:
        return self.transformer.get_literal_type(self.tp)


_INT = _IntConverter(int)
_FLOAT = _FloatConverter(float)
_STR = _StrConverter(str)
_BOOL = _BoolConverter(bool)
_NONE = _NoneConverter(_NoneType)
_BYTES = _BytesConverter(bytes)
_DATETIME = _DatetimeConverter(_dt.datetime)
_DATE = _DateConverter(_dt.date)
_TIMEDELTA = _TimedeltaConverter(_dt.timedelta)

_SIMPLE: dict[Any, _Converter] = {
    int: _INT,
    float: _FLOAT,
    str: _STR,
    bool: _BOOL,
    _NoneType: _NONE,
    None: _NONE,
    bytes: _BYTES,
    _dt.datetime: _DATETIME,
    _dt.date: _DATE,
    _dt.timedelta: _TIMEDELTA,
}

_SEQUENCE_ORIGINS = {
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    collections.abc.Iterator,
    collections.abc.Generator,
}
_SET_ORIGINS = {
    set: set,
    frozenset: frozenset,
    collections.abc.Set: frozenset,
    collections.abc.MutableSet: set,
}
_MAPPING_ORIGINS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
_UNION_ORIGINS: set[Any] = {typing.Union, types.UnionType}


# --------------------------------------------------------------------------------------------------
# compiling types


_registry: dict[type, LiteralTransformer[Any]] = {}
_cache: dict[Any, _Converter] = {}
_cache_lock = threading.Lock()


def converter(tp: Any) -> _Converter:
    """The (cached) converter for a type annotation."""
    # Union and Literal compare equal whatever their order (also inside list[...] and the like), but
    # variant order decides preference and the literal type, so parameterized types are keyed by
    # their repr as well.
    key = (tp, repr(tp)) if typing.get_args(tp) else tp
    try:
        return _cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable annotation, e.g. Annotated[..., {"a": 1}]
        return _build(tp)
    conv = _build(tp)
    with _cache_lock:
        return _cache.setdefault(key, conv)


#: Optional libraries' classes ("module.QualName") -> the module that registers their
#: transformers. Keyed by name so that neither pandas nor pyarrow is imported until a task
#: actually uses one of their types.
_LAZY_TRANSFORMERS: dict[str, str] = {
    "pandas.DataFrame": "flyte.io._transformers",
    "pyarrow.lib.Table": "flyte.io._transformers",
    "polars.dataframe.frame.DataFrame": "flyte.io._transformers",
}


def _registered(tp: Any) -> LiteralTransformer[Any] | None:
    if not isinstance(tp, type) or (not _registry and not _LAZY_TRANSFORMERS):
        return None
    for klass in tp.__mro__:
        found = _registry.get(klass)
        if found is not None:
            return found
    if _LAZY_TRANSFORMERS:
        for klass in tp.__mro__:
            module = _LAZY_TRANSFORMERS.pop(f"{klass.__module__}.{klass.__qualname__}", None)
            if module is not None:
                import importlib

                importlib.import_module(module).register_frame_transformers()
                return _registry.get(klass)
    return None


def _is_pydantic_model(tp: Any) -> bool:
    # If pydantic was never imported, nothing can be a BaseModel; skip importing it for plain types.
    if "pydantic" not in sys.modules or not isinstance(tp, type):
        return False
    from pydantic import BaseModel

    return issubclass(tp, BaseModel)


def _struct(tp: Any, cls: type | None, tag: str) -> _Converter:
    from pydantic import TypeAdapter

    try:
        adapter = TypeAdapter(tp)
    except Exception:
        # Pydantic cannot describe it (e.g. a dataclass with a field of an arbitrary class): pickle it.
        return _PickleConverter(tp)
    return _StructConverter(tp, adapter, cls, tag)


def _build(tp: Any) -> _Converter:
    simple = _SIMPLE.get(tp) if _hashable(tp) else None
    if simple is not None:
        return simple
    if tp is _EMPTY:
        return _PickleConverter(_EMPTY)
    if tp is Any or tp is object:
        return _AnyConverter(tp)

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if origin is typing.Annotated:
        for meta in getattr(tp, "__metadata__", ()):
            if isinstance(meta, LiteralTransformer):
                return _TransformerConverter(args[0], meta)
        return converter(args[0])
    if origin in _UNION_ORIGINS:
        return _UnionConverter(tp, [converter(a) for a in args])
    if origin is typing.Literal:
        if args and all(type(a) is str for a in args):
            return _LiteralStrConverter(tp, args)
        return _struct(tp, None, "Object-Dataclass-Transformer")

    transformer = _registered(origin if origin is not None else tp)
    if transformer is not None:
        return _TransformerConverter(tp, transformer)

    if origin is None:
        return _build_class(tp)
    if not args and origin in (list, dict, set, frozenset, tuple):
        return _build_class(origin)  # typing.List, typing.Dict, ... without parameters

    if origin in _SEQUENCE_ORIGINS:
        return _ListConverter(tp, converter(args[0]) if args else _AnyConverter(Any))
    if origin in _SET_ORIGINS:
        return _SetConverter(tp, converter(args[0]) if args else _AnyConverter(Any), _SET_ORIGINS[origin])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _ListConverter(tp, converter(args[0]), tuple)
        return _struct(tp, tuple, "Object-Dataclass-Transformer")
    if origin in _MAPPING_ORIGINS:
        key_tp, value_tp = args if len(args) == 2 else (Any, Any)
        if key_tp is str:
            return _DictConverter(tp, converter(value_tp))
        # Keys that are not strings cannot be a LiteralMap; pydantic keeps them typed inside msgpack.
        conv = _struct(tp, None, "Typed Dict")
        return _AnyConverter(tp, dict) if isinstance(conv, _PickleConverter) else conv
    if isinstance(origin, type) and (dataclasses.is_dataclass(origin) or _is_pydantic_model(origin)):
        tag = "Pydantic Transformer" if _is_pydantic_model(origin) else "Object-Dataclass-Transformer"
        return _struct(tp, origin, tag)
    return _PickleConverter(tp)


def _build_class(tp: Any) -> _Converter:
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return converter(supertype)
    alias_value = getattr(tp, "__value__", None)  # PEP 695 `type X = ...`
    if alias_value is not None and not isinstance(tp, type):
        return converter(alias_value)
    if not isinstance(tp, type):
        return _PickleConverter(tp)
    if issubclass(tp, enum.Enum):
        return _EnumConverter(tp)
    if tp is dict or tp is list:
        return _AnyConverter(tp, tp)
    if tp is set or tp is frozenset:
        return _SetConverter(tp, _ANY, tp)
    if tp is tuple:
        return _ListConverter(tp, _ANY, tuple)
    if _is_pydantic_model(tp):
        return _struct(tp, tp, "Pydantic Transformer")
    if dataclasses.is_dataclass(tp):
        return _struct(tp, tp, "Object-Dataclass-Transformer")
    if issubclass(tp, tuple) and hasattr(tp, "_fields"):  # NamedTuple as a value
        return _struct(tp, tp, "Object-Dataclass-Transformer")
    if typing.is_typeddict(tp) or _is_typing_extensions_typeddict(tp):
        return _struct(tp, None, "Object-Dataclass-Transformer")
    return _PickleConverter(tp)


def _is_typing_extensions_typeddict(tp: Any) -> bool:
    te = sys.modules.get("typing_extensions")
    return te is not None and te.is_typeddict(tp)


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# public entry points


class LiteralEngine:
    """Converts Python values to ``flyteidl2.core`` literals and back, driven by type annotations."""

    @classmethod
    def register(cls, transformer: LiteralTransformer[Any], *, override: bool = False) -> None:
        """Use ``transformer`` for its python type and subclasses, before any built-in handling."""
        key = transformer.python_type
        existing = _registry.get(key)
        if existing is not None and existing is not transformer and not override:
            raise ValueError(f"a transformer for {type_label(key)} is already registered: {existing!r}")
        with _cache_lock:
            _registry[key] = transformer
            # Compiled converters may have resolved this type (or a container of it) differently.
            _cache.clear()

    @classmethod
    def has_transformer(cls, python_type: type) -> bool:
        """Whether a transformer is registered for exactly ``python_type``."""
        return python_type in _registry

    @classmethod
    def unregister(cls, python_type: type) -> None:
        """Forget the transformer registered for ``python_type`` (if any)."""
        with _cache_lock:
            _registry.pop(python_type, None)
            _cache.clear()

    @classmethod
    def to_literal_type(cls, tp: Any) -> LiteralType:
        lt = LiteralType()
        lt.CopyFrom(converter(tp).literal_type)
        return lt

    @classmethod
    def to_literal(cls, value: Any, tp: Any, where: str = "value") -> Literal:
        """Convert ``value`` of declared type ``tp``; raises RuntimeDataValidationError if it does not fit."""
        conv = converter(tp)
        out = Literal()
        if conv.may_pickle:
            start_pickle_watch()
        try:
            conv.write(value, out)
        except _Mismatch as e:
            raise RuntimeDataValidationError(where, e.render(where)) from None
        if conv.may_pickle:
            pickled = pickled_type()
            if pickled is not None:
                warn_pickled_once("LiteralEngine.to_literal", where, pickled, tp)
        return out

    @classmethod
    def to_python(cls, lit: Literal, tp: Any, where: str = "value") -> Any:
        """Read ``lit`` as a value of type ``tp``; raises RuntimeDataValidationError if it does not fit."""
        try:
            return converter(tp).read(lit)
        except _Mismatch as e:
            raise RuntimeDataValidationError(where, e.render(where)) from None


__all__ = ["FlytePickleWarning", "LiteralEngine", "LiteralTransformer"]
