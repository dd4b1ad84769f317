"""Round trips, literal shapes, errors and determinism of the type engine."""

import collections
import dataclasses
import datetime as dt
import enum
import hashlib
import math
import os
import subprocess
import sys
import textwrap
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, NewType, Optional, Union

import pydantic
import pytest
import typing_extensions
from flyteidl2.core import literals_pb2, types_pb2

from flyte._types import FlytePickleWarning, LiteralEngine, LiteralTransformer
from flyte.errors import RuntimeDataValidationError

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


class Fruit(str, enum.Enum):
    APPLE = "apple"
    PEAR = "pear"


@dataclasses.dataclass
class Inner:
    a: int
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    color: Color = Color.RED
    when: dt.datetime | None = None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    labels: set[str] = dataclasses.field(default_factory=set)
    raw: bytes = b""


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class OtherPoint:
    x: int
    y: int


class Model(pydantic.BaseModel):
    title: str
    points: list[Point] = []
    level: Level = Level.LOW
    created: dt.date | None = None


# pydantic needs typing_extensions.TypedDict before Python 3.12.
class Movie(typing_extensions.TypedDict):
    name: str
    year: int


class Pair(NamedTuple):
    left: int
    right: str


class Opaque:
    """A class the engine does not know: pickled."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.v == self.v

    def __hash__(self) -> int:
        return hash(self.v)


UserId = NewType("UserId", int)

UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
NEG = dt.timezone(dt.timedelta(hours=-3, minutes=-15, seconds=-7))


def roundtrip(value: Any, tp: Any) -> Any:
    lit = LiteralEngine.to_literal(value, tp)
    # Through the wire format, as another process would see it.
    wire = literals_pb2.Literal.FromString(lit.SerializeToString(deterministic=True))
    return LiteralEngine.to_python(wire, tp)


ROUND_TRIPS = [
    (0, int),
    (-5, int),
    (2**63 - 1, int),
    (-(2**63), int),
    (0.0, float),
    (-2.5, float),
    (float("inf"), float),
    ("", str),
    ("héllo\n", str),
    (False, bool),
    (True, bool),
    (b"", bytes),
    (b"\x00\xff\x10", bytes),
    (None, None),
    (None, type(None)),
    (dt.datetime(2024, 2, 29, 13, 14, 15, 123456), dt.datetime),
    (dt.datetime(1, 1, 1), dt.datetime),
    (dt.datetime(1969, 12, 31, 23, 59, 59, 999999), dt.datetime),
    (dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime),
    (dt.datetime(1970, 1, 1, tzinfo=UTC), dt.datetime),
    (dt.datetime(2024, 1, 1, 10, 0, tzinfo=IST), dt.datetime),
    (dt.datetime(1950, 6, 1, 0, 0, 1, 5, tzinfo=NEG), dt.datetime),
    (dt.date(2024, 2, 29), dt.date),
    (dt.date(1, 1, 1), dt.date),
    (dt.timedelta(0), dt.timedelta),
    (dt.timedelta(days=-1, microseconds=3), dt.timedelta),
    (dt.timedelta(days=12345, seconds=7, microseconds=999999), dt.timedelta),
    (-dt.timedelta(microseconds=1), dt.timedelta),
    (Color.GREEN, Color),
    (Level.HIGH, Level),
    (Fruit.PEAR, Fruit),
    ("b", Literal["a", "b"]),
    ([], list[int]),
    ([1, 2, 3], list[int]),
    ([[1.5], [], [2.0, 3.0]], list[list[float]]),
    ((1, 2, 3), tuple[int, ...]),
    ({}, dict[str, int]),
    ({"b": 1, "a": 2}, dict[str, int]),
    ({"x": {"y": [True]}}, dict[str, dict[str, list[bool]]]),
    ({3, 1, 2}, set[int]),
    (frozenset({"q", "p"}), frozenset[str]),
    ({1: "a", 2: "b"}, dict[int, str]),
    ({Color.RED: 1}, dict[Color, int]),
    (None, Optional[int]),  # noqa: UP045
    (3, int | None),
    (3, int | None),
    ("s", Union[int, str]),
    (1.0, Union[int, float]),
    (1, Union[int, float]),
    (True, Union[int, bool]),
    (1, Union[bool, int]),
    ([Color.RED, Color.GREEN], list[Color]),
    (Inner(1, ["x"]), Inner),
    (
        Outer(
            "o",
            Inner(2),
            Color.GREEN,
            dt.datetime(2020, 5, 5, 1, 2, 3, tzinfo=UTC),
            {"z": 1.5, "a": 2.0},
            {"b", "a"},
            b"\xff\x00",
        ),
        Outer,
    ),
    (Outer("naive", Inner(0), when=dt.datetime(2020, 5, 5, 1, 2, 3)), Outer),
    ([Inner(1), Inner(2, ["a", "b"])], list[Inner]),
    (
        [{"a": None, "b": Outer("x", Inner(1, ["t"]))}, {}],
        list[dict[str, Outer | None]],
    ),
    (Model(title="m", points=[Point(1, 2)], level=Level.HIGH, created=dt.date(2020, 1, 2)), Model),
    ({"name": "Heat", "year": 1995}, Movie),
    (Pair(1, "r"), Pair),
    ((1, "x"), tuple[int, str]),
    (2, Literal[1, 2]),
    (UserId(7), UserId),
    (5, Annotated[int, "some metadata"]),
    ({"k": [1, 2.5, "s", None, True, b"b", {"n": {}}]}, dict),
    ([1, "two", [3]], list),
    ({"any": 1}, Any),
    (42, Any),
    ("text", Any),
    (None, Any),
    ((1, 2), Any),
    ({1, 2}, Any),
    (Opaque(3), Any),
    (Opaque(4), Opaque),
    ([Opaque(5)], list[Opaque]),
    ({"k": 1}, dict[Any, Any]),
    ([1, "a"], list[Any]),
    ({"a", "b"}, set),
    ((1, "a"), tuple),
]


@pytest.mark.filterwarnings("ignore::flyte._types.FlytePickleWarning")
@pytest.mark.parametrize(("value", "tp"), ROUND_TRIPS, ids=lambda v: repr(v)[:40])
def test_round_trip(value: Any, tp: Any) -> None:
    back = roundtrip(value, tp)
    assert back == value
    assert type(back) is type(value)


def test_round_trip_nan() -> None:
    assert math.isnan(roundtrip(float("nan"), float))


def test_datetime_keeps_naive_and_aware() -> None:
    naive = roundtrip(dt.datetime(2021, 3, 4, 5, 6, 7), dt.datetime)
    assert naive.tzinfo is None
    aware = roundtrip(dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC), dt.datetime)
    assert aware.utcoffset() == dt.timedelta(0)
    shifted = roundtrip(dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=IST), dt.datetime)
    assert shifted.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert shifted.hour == 5


def test_datetime_wire_format() -> None:
    lit = LiteralEngine.to_literal(dt.datetime(1970, 1, 2, 0, 0, 1, 500, tzinfo=UTC), dt.datetime)
    ts = lit.scalar.primitive.datetime
    assert (ts.seconds, ts.nanos) == (86401, 500_000)
    assert dict(lit.metadata) == {}
    naive = LiteralEngine.to_literal(dt.datetime(1970, 1, 2), dt.datetime)
    assert naive.scalar.primitive.datetime.seconds == 86400
    assert dict(naive.metadata) == {"tz": "naive"}


def test_datetime_without_marker_reads_as_utc() -> None:
    # What another SDK writes: a bare Timestamp, no metadata.
    lit = literals_pb2.Literal()
    lit.scalar.primitive.datetime.seconds = 3600
    assert LiteralEngine.to_python(lit, dt.datetime) == dt.datetime(1970, 1, 1, 1, tzinfo=UTC)


def test_duration_wire_format() -> None:
    lit = LiteralEngine.to_literal(dt.timedelta(seconds=-1, microseconds=250000), dt.timedelta)
    assert (lit.scalar.primitive.duration.seconds, lit.scalar.primitive.duration.nanos) == (0, -750_000_000)
    lit = LiteralEngine.to_literal(dt.timedelta(seconds=-2, microseconds=250000), dt.timedelta)
    assert (lit.scalar.primitive.duration.seconds, lit.scalar.primitive.duration.nanos) == (-1, -750_000_000)


def test_primitive_literal_shapes() -> None:
    assert LiteralEngine.to_literal(0, int).scalar.primitive.WhichOneof("value") == "integer"
    assert LiteralEngine.to_literal(0.0, float).scalar.primitive.WhichOneof("value") == "float_value"
    assert LiteralEngine.to_literal("", str).scalar.primitive.WhichOneof("value") == "string_value"
    assert LiteralEngine.to_literal(False, bool).scalar.primitive.WhichOneof("value") == "boolean"
    assert LiteralEngine.to_literal(None, None).scalar.WhichOneof("value") == "none_type"
    binary = LiteralEngine.to_literal(b"ab", bytes).scalar.binary
    assert (binary.value, binary.tag) == (b"ab", "")
    assert LiteralEngine.to_literal([], list[int]).WhichOneof("value") == "collection"
    assert LiteralEngine.to_literal({}, dict[str, int]).WhichOneof("value") == "map"
    assert LiteralEngine.to_literal(Color.GREEN, Color).scalar.primitive.string_value == "green"
    assert LiteralEngine.to_literal(Level.HIGH, Level).scalar.primitive.string_value == "HIGH"


def test_int_is_accepted_for_float() -> None:
    lit = LiteralEngine.to_literal(3, float)
    assert lit.scalar.primitive.WhichOneof("value") == "float_value"
    back = LiteralEngine.to_python(lit, float)
    assert back == 3.0 and type(back) is float


def test_str_subclass_travels_as_plain_text() -> None:
    lit = LiteralEngine.to_literal(Fruit.APPLE, str)
    assert lit.scalar.primitive.string_value == "apple"
    assert type(LiteralEngine.to_python(lit, str)) is str


@pytest.mark.parametrize(
    ("value", "tp", "expected"),
    [
        ("abc", int, "x: expected int, got str ('abc')"),
        (True, int, "x: expected int, got bool (True)"),
        (1.5, int, "x: expected int, got float (1.5)"),
        (2**63, int, "does not fit in 64 bits"),
        (True, float, "x: expected float, got bool (True)"),
        (1, str, "x: expected str, got int (1)"),
        (1, bool, "x: expected bool, got int (1)"),
        ("ab", bytes, "x: expected bytes, got str ('ab')"),
        (0, None, "x: expected None, got int (0)"),
        (dt.date(2020, 1, 1), dt.datetime, "expected datetime, got date"),
        (dt.datetime(2020, 1, 1), dt.date, "expected date, got datetime"),
        (5, dt.timedelta, "expected timedelta, got int (5)"),
        ("blue", Color, "expected Color (one of 'red', 'green'), got str ('blue')"),
        ("c", Literal["a", "b"], "expected one of 'a', 'b', got str ('c')"),
        ("abc", list[str], "expected list[str], got str ('abc')"),
        ({"a": 1}, list[str], "expected list[str], got dict"),
        (5, list[int], "expected list[int], got int (5)"),
        ([1, 2, "3"], list[int], "x: x[2]: expected int, got str ('3')"),
        ([[1], [2, None]], list[list[int]], "x: x[1][1]: expected int, got None"),
        ({"a": 1, "b": "no"}, dict[str, int], "x: x['b']: expected int, got str ('no')"),
        ({1: 1}, dict[str, int], "x: x[1]: expected a str key, got int (1)"),
        ([1], dict[str, int], "expected dict[str, int], got list"),
        (1.5, Union[int, str], "x: expected int | str, got float (1.5)"),
        (True, Union[float, int], "expected float | int, got bool (True)"),
        ([1, "a"], list[int] | None, "x: x[1]: expected int, got str ('a')"),
        ({"x": "a", "y": 2}, Point, "x: x.x: expected int, got str ('a')"),
        ({"x": 1}, Point, "x: x.y: missing required field"),
        (Point("a", 2), Point, "x: x.x: expected int, got str ('a')"),  # type: ignore[arg-type]
        ([Point(1, 2), {"x": 1, "y": "q"}], list[Point], "x: x[1].y: expected int, got str ('q')"),
        ({"title": "t", "points": [{"x": 1}]}, Model, "x: x.points[0].y: missing required field"),
        (Opaque(1), Point, "expected Point, got Opaque"),
        (3, Opaque, "x: expected Opaque, got int (3)"),
        ("nope", dict, "x: expected dict, got str ('nope')"),
        (5, list, "x: expected list, got int (5)"),
        ({"name": "n"}, Movie, "x: x.year: missing required field"),
    ],
)
def test_mismatch_errors(value: Any, tp: Any, expected: str) -> None:
    with pytest.raises(RuntimeDataValidationError) as info:
        LiteralEngine.to_literal(value, tp, "x")
    assert expected in str(info.value)
    assert info.value.var == "x"
    assert isinstance(info.value, TypeError)


def test_nested_error_names_the_path() -> None:
    value = [{"k": None}, {"k": Outer("o", Inner("bad"))}]  # type: ignore[arg-type]
    with pytest.raises(RuntimeDataValidationError) as info:
        LiteralEngine.to_literal(value, list[dict[str, Outer | None]], "items")
    assert "items[1]['k'].inner.a: expected int, got str ('bad')" in str(info.value)


def test_decode_mismatch_raises() -> None:
    lit = LiteralEngine.to_literal("abc", str)
    with pytest.raises(RuntimeDataValidationError, match="expected int, got a string_value literal"):
        LiteralEngine.to_python(lit, int)
    with pytest.raises(RuntimeDataValidationError, match="expected list"):
        LiteralEngine.to_python(lit, list[int])
    bad_enum = LiteralEngine.to_literal("purple", str)
    with pytest.raises(RuntimeDataValidationError, match="purple"):
        LiteralEngine.to_python(bad_enum, Color)
    nested = LiteralEngine.to_literal({"a": ["x"]}, dict[str, list[str]])
    with pytest.raises(RuntimeDataValidationError, match=r"v\['a'\]\[0\]: expected int"):
        LiteralEngine.to_python(nested, dict[str, list[int]], "v")


def test_integral_float_literal_reads_as_int() -> None:
    lit = LiteralEngine.to_literal(4.0, float)
    assert LiteralEngine.to_python(lit, int) == 4
    with pytest.raises(RuntimeDataValidationError):
        LiteralEngine.to_python(LiteralEngine.to_literal(4.5, float), int)


def test_offloaded_literal_gives_clear_error() -> None:
    lit = literals_pb2.Literal()
    lit.offloaded_metadata.uri = "s3://bucket/key"
    with pytest.raises(RuntimeDataValidationError, match="offloaded to s3://bucket/key"):
        LiteralEngine.to_python(lit, int)


# ------------------------------------------------------------------------------------------------
# unions


def test_union_literal_carries_variant_type_and_tag() -> None:
    lit = LiteralEngine.to_literal(1.0, Union[int, float])
    union = lit.scalar.union
    assert union.value.scalar.primitive.float_value == 1.0
    assert union.type.simple == types_pb2.FLOAT
    assert union.type.structure.tag == "float"
    none = LiteralEngine.to_literal(None, str | None).scalar.union
    assert none.value.scalar.WhichOneof("value") == "none_type"
    assert none.type.simple == types_pb2.NONE


def test_union_prefers_exact_variant() -> None:
    assert type(roundtrip(1.0, Union[int, float])) is float
    assert type(roundtrip(1, Union[float, int])) is int
    assert type(roundtrip(True, Union[int, float, bool])) is bool
    # No exact variant: the first that accepts the value.
    assert roundtrip(1, Union[float, str]) == 1.0
    assert type(roundtrip(1, Union[float, str])) is float


def test_union_of_same_shaped_dataclasses_reads_the_right_one() -> None:
    back = roundtrip(OtherPoint(1, 2), Union[Point, OtherPoint])
    assert type(back) is OtherPoint
    back = roundtrip(Point(1, 2), Union[Point, OtherPoint])
    assert type(back) is Point


def test_union_of_lists_reads_the_right_one() -> None:
    assert roundtrip(["a"], Union[list[int], list[str]]) == ["a"]
    assert roundtrip([1], Union[list[int], list[str]]) == [1]


def test_union_dict_for_dataclass() -> None:
    assert roundtrip({"x": 1, "y": 2}, Point | None) == Point(1, 2)


def test_union_reads_plain_literals() -> None:
    # A producer that does not wrap values in a union literal.
    assert LiteralEngine.to_python(LiteralEngine.to_literal(5, int), int | None) == 5
    assert LiteralEngine.to_python(LiteralEngine.to_literal(None, None), int | None) is None
    assert LiteralEngine.to_python(literals_pb2.Literal(), int | None) is None


def test_union_value_reads_as_its_variant() -> None:
    lit = LiteralEngine.to_literal(5, int | None)
    assert LiteralEngine.to_python(lit, int) == 5


def test_union_literal_type_lists_tagged_variants() -> None:
    lt = LiteralEngine.to_literal_type(Union[int, str, None, list[int]])
    tags = [v.structure.tag for v in lt.union_type.variants]
    assert tags == ["int", "str", "none", "Typed List"]
    assert lt.union_type.variants[3].collection_type.simple == types_pb2.INTEGER


# ------------------------------------------------------------------------------------------------
# containers


def test_list_accepts_any_iterable() -> None:
    assert roundtrip((x * 2 for x in range(3)), list[int]) == [0, 2, 4]
    assert roundtrip(range(3), list[int]) == [0, 1, 2]
    assert roundtrip((1, 2), list[int]) == [1, 2]
    assert roundtrip({"b", "a", "c"}, list[str]) == ["a", "b", "c"]


def test_list_accepts_abc_annotations() -> None:
    assert roundtrip([1, 2], typing.Sequence[int]) == [1, 2]
    assert roundtrip(iter([1, 2]), typing.Iterator[int]) == [1, 2]
    assert roundtrip({"a": 1}, typing.Mapping[str, int]) == {"a": 1}
    assert roundtrip([1], typing.List[int]) == [1]


def test_dict_keys_read_back_sorted() -> None:
    back = roundtrip({"b": 1, "a": 2, "c": 3}, dict[str, int])
    assert list(back) == ["a", "b", "c"]


def test_mapping_subclass_accepted() -> None:
    ordered = collections.OrderedDict([("z", 1), ("y", 2)])
    assert roundtrip(ordered, dict[str, int]) == {"z": 1, "y": 2}


def test_nested_literal_shapes() -> None:
    lit = LiteralEngine.to_literal([{"a": None, "b": Point(1, 2)}], list[dict[str, Point | None]])
    entry = lit.collection.literals[0].map.literals
    assert entry["a"].scalar.union.value.scalar.WhichOneof("value") == "none_type"
    point = entry["b"].scalar.union
    assert point.value.scalar.binary.tag == "msgpack"
    assert point.type.simple == types_pb2.STRUCT
    assert point.type.structure.tag == "Object-Dataclass-Transformer"


# ------------------------------------------------------------------------------------------------
# dataclasses and pydantic


def test_dataclass_is_msgpack_binary_with_struct_type() -> None:
    lit = LiteralEngine.to_literal(Point(1, 2), Point)
    assert lit.scalar.binary.tag == "msgpack"
    import msgpack

    assert msgpack.unpackb(lit.scalar.binary.value) == {"x": 1, "y": 2}
    lt = LiteralEngine.to_literal_type(Point)
    assert lt.simple == types_pb2.STRUCT
    assert lt.metadata["title"] == "Point"
    assert set(lt.metadata["properties"].keys()) == {"x", "y"}


def test_dataclass_accepts_dict_input() -> None:
    back = roundtrip({"name": "n", "inner": {"a": "3"}, "color": "green"}, Outer)
    assert back == Outer("n", Inner(3), Color.GREEN)


def test_pydantic_accepts_dict_input() -> None:
    back = roundtrip({"title": "t", "points": [{"x": 1, "y": 2}], "level": 2}, Model)
    assert back == Model(title="t", points=[Point(1, 2)], level=Level.HIGH)


def test_dataclass_with_non_utf8_bytes() -> None:
    value = Outer("b", Inner(1), raw=bytes(range(256)))
    assert roundtrip(value, Outer).raw == bytes(range(256))


def test_dataclass_with_unknown_field_type_is_pickled() -> None:
    @dataclasses.dataclass
    class Holder:
        thing: Opaque

    with pytest.warns(FlytePickleWarning):
        lit = LiteralEngine.to_literal(Holder(Opaque(2)), Holder, "holder_value")
    assert lit.scalar.binary.tag == "PythonPickle"
    assert LiteralEngine.to_python(lit, Holder) == Holder(Opaque(2))


def test_dataclass_from_generic_struct() -> None:
    # The UI sends structs as google.protobuf.Struct.
    lit = literals_pb2.Literal()
    lit.scalar.generic.update({"x": 1, "y": 2})
    assert LiteralEngine.to_python(lit, Point) == Point(1, 2)


def test_struct_literal_type_annotation() -> None:
    lt = LiteralEngine.to_literal_type(Model)
    assert lt.annotation.annotations["cache-key-metadata"]["serialization-format"] == "msgpack"
    assert lt.metadata["title"] == "Model"


# ------------------------------------------------------------------------------------------------
# untyped values and pickling


def test_bare_dict_is_msgpack() -> None:
    lit = LiteralEngine.to_literal({"b": [1, 2], "a": None}, dict)
    assert lit.scalar.binary.tag == "msgpack"
    assert LiteralEngine.to_literal_type(dict).simple == types_pb2.STRUCT


def test_any_value_that_msgpack_cannot_keep_is_pickled() -> None:
    with pytest.warns(FlytePickleWarning):
        lit = LiteralEngine.to_literal({"when": dt.date(2020, 1, 1)}, dict, "pickled_dict")
    assert lit.scalar.binary.tag == "PythonPickle"
    assert LiteralEngine.to_python(lit, dict) == {"when": dt.date(2020, 1, 1)}


def test_unknown_type_is_pickled_with_blob_literal_type() -> None:
    lt = LiteralEngine.to_literal_type(Opaque)
    assert lt.blob.format == "PythonPickle"
    assert lt.blob.dimensionality == types_pb2.BlobType.SINGLE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlytePickleWarning)
        lit = LiteralEngine.to_literal(Opaque(1), Opaque)
    assert lit.scalar.binary.tag == "PythonPickle"


def test_pickle_warning_once_per_variable() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LiteralEngine.to_literal(Opaque(1), Opaque, "once_var")
        LiteralEngine.to_literal(Opaque(2), Opaque, "once_var")
        LiteralEngine.to_literal(Opaque(3), Opaque, "other_var")
    messages = [str(w.message) for w in caught if issubclass(w.category, FlytePickleWarning)]
    assert len(messages) == 2
    assert "once_var" in messages[0] and "Opaque" in messages[0]
    assert "\n" not in messages[0]
    assert issubclass(FlytePickleWarning, UserWarning)


def test_msgpack_values_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LiteralEngine.to_literal({"a": [1, 2]}, dict, "quiet")
        LiteralEngine.to_literal(None, Any, "quiet_none")


# ------------------------------------------------------------------------------------------------
# literal types


def test_literal_types() -> None:
    assert LiteralEngine.to_literal_type(int).simple == types_pb2.INTEGER
    assert LiteralEngine.to_literal_type(float).simple == types_pb2.FLOAT
    assert LiteralEngine.to_literal_type(str).simple == types_pb2.STRING
    assert LiteralEngine.to_literal_type(bool).simple == types_pb2.BOOLEAN
    assert LiteralEngine.to_literal_type(bytes).simple == types_pb2.BINARY
    assert LiteralEngine.to_literal_type(None).simple == types_pb2.NONE
    assert LiteralEngine.to_literal_type(dt.datetime).simple == types_pb2.DATETIME
    assert LiteralEngine.to_literal_type(dt.date).simple == types_pb2.DATETIME
    assert LiteralEngine.to_literal_type(dt.timedelta).simple == types_pb2.DURATION
    assert list(LiteralEngine.to_literal_type(Color).enum_type.values) == ["red", "green"]
    assert list(LiteralEngine.to_literal_type(Level).enum_type.values) == ["LOW", "HIGH"]
    assert list(LiteralEngine.to_literal_type(Literal["a", "b"]).enum_type.values) == ["a", "b"]
    assert LiteralEngine.to_literal_type(list[int]).collection_type.simple == types_pb2.INTEGER
    assert LiteralEngine.to_literal_type(set[str]).collection_type.simple == types_pb2.STRING
    nested = LiteralEngine.to_literal_type(dict[str, list[float]])
    assert nested.map_value_type.collection_type.simple == types_pb2.FLOAT
    assert LiteralEngine.to_literal_type(dict[int, str]).simple == types_pb2.STRUCT


def test_to_literal_type_returns_a_copy() -> None:
    lt = LiteralEngine.to_literal_type(int)
    lt.simple = types_pb2.STRING
    assert LiteralEngine.to_literal_type(int).simple == types_pb2.INTEGER


def test_unhashable_annotation() -> None:
    tp = Annotated[int, {"unhashable": []}]
    assert roundtrip(3, tp) == 3
    assert LiteralEngine.to_literal_type(tp).simple == types_pb2.INTEGER


# ------------------------------------------------------------------------------------------------
# registry


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Celsius) and other.degrees == self.degrees


class Kelvin(Celsius):
    pass


class CelsiusTransformer(LiteralTransformer[Celsius]):
    def __init__(self) -> None:
        super().__init__("celsius", Celsius)

    def get_literal_type(self, tp: Any) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(simple=types_pb2.FLOAT)

    def to_literal(self, value: Celsius, tp: Any) -> literals_pb2.Literal:
        if not isinstance(value, Celsius):
            raise TypeError(f"not a temperature: {value!r}")
        return literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(float_value=value.degrees))
        )

    def to_python(self, lit: literals_pb2.Literal, tp: Any) -> Celsius:
        return tp(lit.scalar.primitive.float_value)


@pytest.fixture
def celsius() -> typing.Iterator[CelsiusTransformer]:
    transformer = CelsiusTransformer()
    LiteralEngine.register(transformer)
    try:
        yield transformer
    finally:
        LiteralEngine.unregister(Celsius)


def test_registered_transformer(celsius: CelsiusTransformer) -> None:
    lit = LiteralEngine.to_literal(Celsius(21.5), Celsius)
    assert lit.scalar.primitive.float_value == 21.5
    assert roundtrip(Celsius(3), Celsius) == Celsius(3)
    assert roundtrip(Kelvin(3), Kelvin) == Kelvin(3)
    assert type(roundtrip(Kelvin(3), Kelvin)) is Kelvin
    assert roundtrip([Celsius(1), Celsius(2)], list[Celsius]) == [Celsius(1), Celsius(2)]
    assert roundtrip(None, Celsius | None) is None
    assert roundtrip(Celsius(1), Celsius | None) == Celsius(1)
    assert LiteralEngine.to_literal_type(Celsius).simple == types_pb2.FLOAT
    with pytest.raises(RuntimeDataValidationError, match=r"temps\[1\]: .*not a temperature"):
        LiteralEngine.to_literal([Celsius(1), "hot"], list[Celsius], "temps")


def test_register_twice_needs_override(celsius: CelsiusTransformer) -> None:
    with pytest.raises(ValueError, match="already registered"):
        LiteralEngine.register(CelsiusTransformer())
    LiteralEngine.register(CelsiusTransformer(), override=True)


def test_unregistered_type_is_pickled_again(celsius: CelsiusTransformer) -> None:
    LiteralEngine.unregister(Celsius)
    assert LiteralEngine.to_literal_type(Celsius).blob.format == "PythonPickle"
    LiteralEngine.register(celsius)


# ------------------------------------------------------------------------------------------------
# determinism


def _digest(lit: literals_pb2.Literal) -> str:
    return hashlib.sha256(lit.SerializeToString(deterministic=True)).hexdigest()


def test_equal_dicts_serialize_equally() -> None:
    a = {"x": 1, "y": {"p": [1], "q": None}}
    b = {"y": {"q": None, "p": [1]}, "x": 1}
    assert _digest(LiteralEngine.to_literal(a, dict)) == _digest(LiteralEngine.to_literal(b, dict))
    assert _digest(LiteralEngine.to_literal(a, Any)) == _digest(LiteralEngine.to_literal(b, Any))
    typed_a = {"x": [1], "y": [2]}
    typed_b = {"y": [2], "x": [1]}
    assert _digest(LiteralEngine.to_literal(typed_a, dict[str, list[int]])) == _digest(
        LiteralEngine.to_literal(typed_b, dict[str, list[int]])
    )
    dc_a = Outer("n", Inner(1), scores={"a": 1.0, "b": 2.0})
    dc_b = Outer("n", Inner(1), scores={"b": 2.0, "a": 1.0})
    assert _digest(LiteralEngine.to_literal(dc_a, Outer)) == _digest(LiteralEngine.to_literal(dc_b, Outer))


_DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import dataclasses, hashlib, sys, warnings
    from typing import Any
    warnings.simplefilter("ignore")
    from flyte._types import LiteralEngine

    @dataclasses.dataclass
    class Rec:
        names: set[str]
        by_key: dict[str, list[str]]
        maybe: frozenset[str] | None = None

    words = ["kiwi", "apple", "fig", "banana", "cherry", "date", "elder", "grape"]
    cases = [
        (set(words), set[str]),
        (frozenset(words), frozenset[str]),
        (set(words), list[str]),
        ({w: len(w) for w in words}, dict[str, int]),
        ({w: [w] for w in words}, dict),
        (Rec(set(words), {w: [w, w] for w in words}, frozenset(words)), Rec),
        ([Rec(set(words[:3]), {})], list[Rec | None]),
        (set(words), Any),
        ({"k": set(words), "t": (frozenset(words), 1)}, Any),
        ({w: i for i, w in enumerate(words)}, dict[str, Any]),
    ]
    for value, tp in cases:
        lit = LiteralEngine.to_literal(value, tp)
        print(hashlib.sha256(lit.SerializeToString(deterministic=True)).hexdigest())
    """
)


def test_serialization_is_identical_across_processes() -> None:
    outputs = []
    for seed in ("1", "2", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(PYTHON_DIR))
        result = subprocess.run(
            [sys.executable, "-c", _DETERMINISM_SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(result.stdout.split())
    assert len(outputs[0]) == 10
    assert outputs[0] == outputs[1] == outputs[2]


def test_union_variant_order_is_kept_per_annotation() -> None:
    # Union[int, float] == Union[float, int] in typing; the engine must still keep each order.
    first = LiteralEngine.to_literal_type(Union[int, float])
    second = LiteralEngine.to_literal_type(Union[float, int])
    assert [v.structure.tag for v in first.union_type.variants] == ["int", "float"]
    assert [v.structure.tag for v in second.union_type.variants] == ["float", "int"]
    nested = LiteralEngine.to_literal_type(list[Union[str, int]])
    assert [v.structure.tag for v in nested.collection_type.union_type.variants] == ["str", "int"]


def test_union_with_foreign_tag_prefers_matching_type() -> None:
    lit = LiteralEngine.to_literal(1.0, Union[int, float])
    lit.scalar.union.type.structure.tag = "Python float"
    back = LiteralEngine.to_python(lit, Union[int, float])
    assert back == 1.0 and type(back) is float
