"""``flyte.types`` as the reference's users extend it: a transformer with coroutine methods,
registered with ``TypeEngine.register``, converts a task's inputs and outputs in both modes;
the engine's class methods convert values, literal maps and interfaces."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import typing

import pytest
from flyteidl2.core import literals_pb2, types_pb2

import flyte
import flyte.errors
from flyte.types import (
    FlytePickle,
    Renderable,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
    guess_interface,
    literal_string_repr,
)


class Point:
    """A type the engine knows only through the transformer below."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


class PointTransformer(TypeTransformer[Point]):
    """Writes a point as the string "x,y" (reference style: coroutines, AssertionError)."""

    def __init__(self) -> None:
        super().__init__("Point", Point)

    def get_literal_type(self, t: type[Point]) -> types_pb2.LiteralType:
        return types_pb2.LiteralType(simple=types_pb2.STRING, metadata=None)

    async def to_literal(
        self, python_val: Point, python_type: type[Point], expected: types_pb2.LiteralType
    ) -> literals_pb2.Literal:
        await asyncio.sleep(0)
        assert expected.simple == types_pb2.STRING, "points are strings"
        lit = literals_pb2.Literal()
        lit.scalar.primitive.string_value = f"{python_val.x},{python_val.y}"
        return lit

    async def to_python_value(self, lv: literals_pb2.Literal, expected_python_type: type[Point]) -> Point:
        text = lv.scalar.primitive.string_value
        assert "," in text, f"{text!r} is not a point"
        x, y = text.split(",")
        return Point(int(x), int(y))

    def to_html(self, python_val: Point, expected_python_type: type[Point]) -> str:
        return f"<b>{python_val.x}</b>,<b>{python_val.y}</b>"


TypeEngine.register(PointTransformer())

env = flyte.TaskEnvironment(name="types_public")


@env.task
async def mirror(p: Point) -> Point:
    return Point(p.y, p.x)


@env.task
def shift(points: list[Point], by: int) -> dict[str, Point]:
    return {str(i): Point(p.x + by, p.y + by) for i, p in enumerate(points)}


@env.task
async def uses_points(p: Point) -> tuple[Point, dict[str, Point]]:
    m = await mirror(p)
    return m, await shift.aio([p, m], 10)


def test_a_registered_reference_style_transformer_converts_task_inputs_and_outputs(mode: str) -> None:
    run = flyte.with_runcontext(mode=mode).run(uses_points, Point(1, 2)).wait()
    assert run.outputs()[0] == Point(2, 1)
    assert run.outputs()[1] == {"0": Point(11, 12), "1": Point(12, 11)}


def test_a_value_the_transformer_refuses_is_a_validation_error() -> None:
    with pytest.raises(flyte.errors.RuntimeDataValidationError, match="expected a .*Point"):
        flyte.with_runcontext(mode="local").run(mirror, "1,2")  # type: ignore[arg-type]


def test_engine_class_methods_convert_values_and_maps() -> None:
    lit = asyncio.run(TypeEngine.to_literal(Point(3, 4), Point, TypeEngine.to_literal_type(Point)))
    assert lit.scalar.primitive.string_value == "3,4"
    assert asyncio.run(TypeEngine.to_python_value(lit, Point)) == Point(3, 4)
    assert isinstance(TypeEngine.get_transformer(Point), PointTransformer)
    assert Point in TypeEngine.get_available_transformers()
    builtin = TypeEngine.get_transformer(int)
    assert builtin.get_literal_type(int).simple == types_pb2.INTEGER
    assert (
        asyncio.run(
            builtin.to_python_value(
                asyncio.run(builtin.to_literal(5, int, builtin.get_literal_type(int))), int
            )
        )
        == 5
    )

    lm = asyncio.run(TypeEngine.dict_to_literal_map({"a": 1, "when": dt.timedelta(seconds=3)}, {"a": int}))
    assert set(lm.literals) == {"a", "when"}
    back = asyncio.run(TypeEngine.literal_map_to_kwargs(lm, {"a": int, "when": dt.timedelta}))
    assert back == {"a": 1, "when": dt.timedelta(seconds=3)}
    with pytest.raises(TypeTransformerFailedError, match="has no b"):
        asyncio.run(TypeEngine.literal_map_to_kwargs(lm, {"b": int}))

    class Pair(typing.NamedTuple):
        left: int
        right: str

    variables = TypeEngine.named_tuple_to_variable_map(Pair)
    assert [v.key for v in variables.variables] == ["left", "right"]
    assert variables.variables[1].value.type.simple == types_pb2.STRING
    assert TypeEngine.guess_python_type(TypeEngine.to_literal_type(list[int])) == list[int]
    assert TypeEngine.to_html(Point(1, 2), Point) == "<b>1</b>,<b>2</b>"
    assert TypeEngine.to_html("<x>", str) == "&lt;x&gt;"
    import pandas as pd

    assert "<table" in TypeEngine.to_html(pd.DataFrame({"a": [1, 2]}), pd.DataFrame)


def test_errors_and_restrictions() -> None:
    assert issubclass(TypeTransformerFailedError, (TypeError)) and issubclass(
        TypeTransformerFailedError, AssertionError
    )
    with pytest.raises(ValueError, match="already registered for .*Point"):
        TypeEngine.register(PointTransformer())
    bad = literals_pb2.Literal()
    bad.scalar.primitive.string_value = "nope"
    # The transformer's AssertionError is reported as the engine reports a mismatch.
    with pytest.raises(flyte.errors.RuntimeDataValidationError, match="'nope' is not a point"):
        asyncio.run(TypeEngine.to_python_value(bad, Point))

    class Secretive:
        pass

    TypeEngine.register_restricted_type("no-secrets", Secretive)
    with pytest.raises(TypeError, match="no-secrets"):
        TypeEngine.to_literal_type(Secretive)


def test_interfaces_pickles_and_display() -> None:
    from flyte._types import NativeInterface

    @dataclasses.dataclass
    class Cfg:
        n: int

    def f(a: int, b: str = "x") -> list[float]: ...

    native = NativeInterface.from_function(f)
    guessed = guess_interface(native.to_typed_interface(), native.default_inputs())
    assert guessed.inputs["a"][0] is int and guessed.inputs["b"] == (str, "x")
    assert guessed.outputs == {"o0": list[float]}

    path = asyncio.run(FlytePickle.to_pickle(Cfg(3)))
    assert asyncio.run(FlytePickle.from_pickle(path)) == Cfg(3)
    assert FlytePickle[int].python_type() is int and FlytePickle.python_type() is type(None)

    lm = asyncio.run(TypeEngine.dict_to_literal_map({"n": 1, "xs": [1.5, 2.5], "p": Point(1, 2)}))
    assert literal_string_repr(lm) == {"n": 1, "xs": [1.5, 2.5], "p": "1,2"}
    assert literal_string_repr(lm.literals["n"]) == 1

    class Html:
        def to_html(self, python_value: object) -> str:
            return "<i>html</i>"

    assert isinstance(Html(), Renderable)
