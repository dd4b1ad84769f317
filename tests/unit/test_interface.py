"""NativeInterface: signatures, binding, inputs/outputs conversion, typed interface and its hash."""

import dataclasses
import functools
import inspect
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from flyteidl2.core import types_pb2
from flyteidl2.task import common_pb2

from flyte._types import FlytePickleWarning, LiteralEngine, NativeInterface
from flyte.errors import RuntimeDataValidationError

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
EMPTY = inspect.Parameter.empty


@dataclasses.dataclass
class Job:
    name: str
    sizes: list[int] = dataclasses.field(default_factory=list)


class Stats(NamedTuple):
    mean: float
    count: int


class Blob:
    def __init__(self, payload: str) -> None:
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Blob) and other.payload == self.payload


def add(x: int, y: int = 2) -> int:
    return x + y


async def fetch(url: str, retries: int = 3, *, timeout: float | None = None) -> dict[str, str]:
    return {}


def nothing(flag: bool) -> None:
    pass


def pair(a: int) -> tuple[int, str]:
    return a, str(a)


def single_tuple(a: int) -> tuple[int]:
    return (a,)


def stats(values: list[float]) -> Stats:
    return Stats(sum(values) / len(values), len(values))


def variadic(n: int) -> tuple[int, ...]:
    return tuple(range(n))


def untyped(a, b=1):  # type: ignore[no-untyped-def]
    return a


def positional(a: int, /, b: int, *, c: int = 0) -> int:
    return a + b + c


def with_none_default(x: int = None) -> int:  # type: ignore[assignment]
    return x or 0


def jobs(items: list[dict[str, Job | None]], tags: set[str], when: Any = None) -> list[Job]:
    return []


def roundtrip_inputs(iface: NativeInterface, bound: dict[str, Any]) -> dict[str, Any]:
    message = iface.inputs_to_literals(bound, "task")
    wire = common_pb2.Inputs.FromString(message.SerializeToString())
    return iface.literals_to_inputs(wire)


def roundtrip_outputs(iface: NativeInterface, value: Any) -> Any:
    message = iface.outputs_to_literals(value, "task")
    wire = common_pb2.Outputs.FromString(message.SerializeToString())
    return iface.literals_to_outputs(wire)


# ------------------------------------------------------------------------------------------------
# signatures


def test_inputs_and_outputs_from_function() -> None:
    iface = NativeInterface.from_function(add)
    assert iface.inputs == {"x": (int, EMPTY), "y": (int, 2)}
    assert iface.outputs == {"o0": int}


def test_async_function() -> None:
    iface = NativeInterface.from_function(fetch)
    assert iface.inputs == {"url": (str, EMPTY), "retries": (int, 3), "timeout": (float | None, None)}
    assert iface.outputs == {"o0": dict[str, str]}


def test_output_shapes() -> None:
    assert NativeInterface.from_function(nothing).outputs == {}
    assert NativeInterface.from_function(pair).outputs == {"o0": int, "o1": str}
    assert NativeInterface.from_function(single_tuple).outputs == {"o0": int}
    assert NativeInterface.from_function(stats).outputs == {"mean": float, "count": int}
    assert NativeInterface.from_function(variadic).outputs == {"o0": tuple[int, ...]}
    assert NativeInterface.from_function(untyped).outputs == {"o0": EMPTY}


def test_unannotated_inputs() -> None:
    iface = NativeInterface.from_function(untyped)
    assert iface.inputs == {"a": (EMPTY, EMPTY), "b": (EMPTY, 1)}


def test_none_default_makes_the_type_optional() -> None:
    iface = NativeInterface.from_function(with_none_default)
    assert iface.inputs["x"] == (int | None, None)
    assert roundtrip_inputs(iface, iface.bind((), {}, "t")) == {"x": None}


def test_var_args_are_rejected() -> None:
    def star(*args: int) -> None: ...

    def double_star(**kwargs: int) -> None: ...

    with pytest.raises(TypeError, match="'args'"):
        NativeInterface.from_function(star)
    with pytest.raises(TypeError, match="'kwargs'"):
        NativeInterface.from_function(double_star)


def test_wrapped_function_uses_the_original_signature() -> None:
    def deco(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return wrapper

    iface = NativeInterface.from_function(deco(add))
    assert iface.inputs == {"x": (int, EMPTY), "y": (int, 2)}
    assert iface.outputs == {"o0": int}


def test_unresolvable_annotation_falls_back_to_pickle() -> None:
    def uses_missing(a: "NoSuchType", b: int) -> int:  # type: ignore[name-defined]  # noqa: F821
        return b

    iface = NativeInterface.from_function(uses_missing)
    assert iface.inputs["b"] == (int, EMPTY)
    assert iface.inputs["a"][0] == "NoSuchType"
    with pytest.warns(FlytePickleWarning, match="'a'"):
        message = iface.inputs_to_literals({"a": Blob("p"), "b": 1}, "t")
    assert iface.literals_to_inputs(message) == {"a": Blob("p"), "b": 1}


# ------------------------------------------------------------------------------------------------
# bind


def test_bind_positional_keyword_and_defaults() -> None:
    iface = NativeInterface.from_function(add)
    assert iface.bind((1,), {}, "add") == {"x": 1, "y": 2}
    assert iface.bind((1, 5), {}, "add") == {"x": 1, "y": 5}
    assert iface.bind((), {"y": 3, "x": 4}, "add") == {"x": 4, "y": 3}
    assert list(iface.bind((), {"y": 3, "x": 4}, "add")) == ["x", "y"]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "add() missing 1 required argument: 'x'"),
        ((1, 2, 3), {}, "add() takes 2 positional arguments but 3 were given"),
        ((1,), {"x": 2}, "add() got multiple values for argument 'x'"),
        ((1,), {"z": 2}, "add() got an unexpected keyword argument 'z'"),
    ],
)
def test_bind_errors(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    iface = NativeInterface.from_function(add)
    with pytest.raises(TypeError) as info:
        iface.bind(args, kwargs, "add")
    assert str(info.value) == message


def test_bind_positional_only_and_keyword_only() -> None:
    iface = NativeInterface.from_function(positional)
    assert iface.bind((1, 2), {"c": 3}, "p") == {"a": 1, "b": 2, "c": 3}
    assert iface.bind((1,), {"b": 2}, "p") == {"a": 1, "b": 2, "c": 0}
    with pytest.raises(TypeError, match="positional-only argument 'a'"):
        iface.bind((), {"a": 1, "b": 2}, "p")
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        iface.bind((1, 2, 3), {}, "p")
    with pytest.raises(TypeError, match="missing 2 required arguments: 'a', 'b'"):
        iface.bind((), {}, "p")


# ------------------------------------------------------------------------------------------------
# inputs


def test_inputs_to_literals_in_declaration_order() -> None:
    iface = NativeInterface.from_function(add)
    message = iface.inputs_to_literals({"y": 7, "x": 1}, "add")
    assert [n.name for n in message.literals] == ["x", "y"]
    assert [n.value.scalar.primitive.integer for n in message.literals] == [1, 7]


def test_inputs_round_trip_nested() -> None:
    iface = NativeInterface.from_function(jobs)
    bound = iface.bind(([{"a": Job("j", [1, 2]), "b": None}],), {"tags": {"y", "x"}}, "jobs")
    assert roundtrip_inputs(iface, bound) == {
        "items": [{"a": Job("j", [1, 2]), "b": None}],
        "tags": {"x", "y"},
        "when": None,
    }


def test_input_validation_names_parameter_and_task() -> None:
    iface = NativeInterface.from_function(add)
    with pytest.raises(RuntimeDataValidationError) as info:
        iface.inputs_to_literals({"x": "abc", "y": 2}, "my_env.add")
    assert info.value.var == "x"
    assert info.value.task_name == "my_env.add"
    assert str(info.value) == "my_env.add: x: expected int, got str ('abc')"


def test_nested_input_validation_names_the_path() -> None:
    iface = NativeInterface.from_function(jobs)
    bad = {"items": [{"a": Job("j")}, {"b": Job("k", [1, "two"])}], "tags": set(), "when": None}  # type: ignore[list-item]
    with pytest.raises(RuntimeDataValidationError) as info:
        iface.inputs_to_literals(bad, "jobs")
    assert info.value.var == "items"
    assert "items[1]['b'].sizes[1]: expected int, got str ('two')" in str(info.value)


def test_inputs_defaults_and_unexpected() -> None:
    iface = NativeInterface.from_function(add)
    message = iface.inputs_to_literals({"x": 1}, "add")
    assert [n.value.scalar.primitive.integer for n in message.literals] == [1, 2]
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        iface.inputs_to_literals({"y": 1}, "add")
    with pytest.raises(TypeError, match="unexpected inputs: 'z'"):
        iface.inputs_to_literals({"x": 1, "y": 2, "z": 3}, "add")
    with pytest.raises(TypeError, match="unexpected inputs: 'z'"):
        iface.inputs_to_literals({"x": 1, "z": 3}, "add")


def test_literals_to_inputs_fills_defaults_and_checks_names() -> None:
    iface = NativeInterface.from_function(add)
    only_x = common_pb2.Inputs()
    named = only_x.literals.add()
    named.name = "x"
    named.value.CopyFrom(LiteralEngine.to_literal(9, int))
    assert iface.literals_to_inputs(only_x) == {"x": 9, "y": 2}

    extra = common_pb2.Inputs()
    extra.CopyFrom(only_x)
    stray = extra.literals.add()
    stray.name = "nope"
    with pytest.raises(RuntimeDataValidationError, match="nope: is not an input"):
        iface.literals_to_inputs(extra)

    with pytest.raises(RuntimeDataValidationError, match="x: missing required input"):
        iface.literals_to_inputs(common_pb2.Inputs())

    wrong = common_pb2.Inputs()
    bad = wrong.literals.add()
    bad.name = "x"
    bad.value.CopyFrom(LiteralEngine.to_literal("s", str))
    with pytest.raises(RuntimeDataValidationError, match="x: expected int"):
        iface.literals_to_inputs(wrong, "add")


# ------------------------------------------------------------------------------------------------
# outputs


def test_outputs_single() -> None:
    iface = NativeInterface.from_function(add)
    message = iface.outputs_to_literals(3, "add")
    assert [n.name for n in message.literals] == ["o0"]
    assert roundtrip_outputs(iface, 3) == 3


def test_outputs_none() -> None:
    iface = NativeInterface.from_function(nothing)
    assert len(iface.outputs_to_literals(None, "nothing").literals) == 0
    assert roundtrip_outputs(iface, None) is None
    with pytest.raises(RuntimeDataValidationError, match="expected None"):
        iface.outputs_to_literals(5, "nothing")


def test_outputs_tuple() -> None:
    iface = NativeInterface.from_function(pair)
    message = iface.outputs_to_literals((1, "1"), "pair")
    assert [n.name for n in message.literals] == ["o0", "o1"]
    assert roundtrip_outputs(iface, (1, "1")) == (1, "1")
    with pytest.raises(
        RuntimeDataValidationError, match=r"expected a tuple of 2 values \(int, str\), got int"
    ):
        iface.outputs_to_literals(1, "pair")
    with pytest.raises(RuntimeDataValidationError, match="expected a tuple of 2 values"):
        iface.outputs_to_literals((1, "1", 2), "pair")
    with pytest.raises(RuntimeDataValidationError) as info:
        iface.outputs_to_literals((1, 2), "pair")
    assert info.value.var == "o1"


def test_outputs_single_element_tuple() -> None:
    iface = NativeInterface.from_function(single_tuple)
    assert roundtrip_outputs(iface, (4,)) == (4,)


def test_outputs_namedtuple() -> None:
    iface = NativeInterface.from_function(stats)
    message = iface.outputs_to_literals(Stats(1.5, 2), "stats")
    assert [n.name for n in message.literals] == ["mean", "count"]
    back = roundtrip_outputs(iface, Stats(1.5, 2))
    assert back == Stats(1.5, 2)
    assert type(back) is Stats


def test_outputs_variadic_tuple_is_one_value() -> None:
    iface = NativeInterface.from_function(variadic)
    back = roundtrip_outputs(iface, (1, 2, 3))
    assert back == (1, 2, 3)
    assert type(back) is tuple


def test_generator_output_for_list() -> None:
    def gen(n: int) -> list[int]:
        return [n]

    iface = NativeInterface.from_function(gen)
    assert roundtrip_outputs(iface, (i * i for i in range(4))) == [0, 1, 4, 9]


def test_missing_output_is_an_error() -> None:
    iface = NativeInterface.from_function(pair)
    partial = common_pb2.Outputs()
    named = partial.literals.add()
    named.name = "o0"
    named.value.CopyFrom(LiteralEngine.to_literal(1, int))
    with pytest.raises(RuntimeDataValidationError, match="o1: missing output"):
        iface.literals_to_outputs(partial)


# ------------------------------------------------------------------------------------------------
# pickling of unannotated values


def test_unannotated_function_returning_none_is_silent() -> None:
    def no_return_annotation(x: int):  # type: ignore[no-untyped-def]
        pass

    iface = NativeInterface.from_function(no_return_annotation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = iface.outputs_to_literals(None, "t")
    assert message.literals[0].value.scalar.WhichOneof("value") == "none_type"
    assert iface.literals_to_outputs(message) is None


def test_unannotated_output_value_is_pickled_with_one_warning() -> None:
    def returns_something(x: int):  # type: ignore[no-untyped-def]
        return Blob("x")

    iface = NativeInterface.from_function(returns_something)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = iface.outputs_to_literals(Blob("a"), "env.returns_something")
        iface.outputs_to_literals(Blob("b"), "env.returns_something")
    pickled = [w for w in caught if issubclass(w.category, FlytePickleWarning)]
    assert len(pickled) == 1
    text = str(pickled[0].message)
    assert "env.returns_something" in text and "output 'o0'" in text and "no type annotation" in text
    assert "\n" not in text
    assert first.literals[0].value.scalar.binary.tag == "PythonPickle"
    assert iface.literals_to_outputs(first) == Blob("a")


def test_unannotated_inputs_warn_once_per_variable() -> None:
    def two_untyped(p, q):  # type: ignore[no-untyped-def]
        return p

    iface = NativeInterface.from_function(two_untyped)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            message = iface.inputs_to_literals({"p": Blob("1"), "q": [1, 2]}, "two_untyped")
    texts = sorted(str(w.message) for w in caught if issubclass(w.category, FlytePickleWarning))
    assert len(texts) == 2
    assert "input 'p'" in texts[0] and "input 'q'" in texts[1]
    assert iface.literals_to_inputs(message) == {"p": Blob("1"), "q": [1, 2]}


def test_unknown_type_is_validated_then_pickled() -> None:
    def takes_blob(b: Blob) -> Blob:
        return b

    iface = NativeInterface.from_function(takes_blob)
    with pytest.raises(RuntimeDataValidationError, match="b: expected Blob, got int"):
        iface.inputs_to_literals({"b": 3}, "takes_blob")
    with pytest.warns(FlytePickleWarning, match="type Blob"):
        message = iface.inputs_to_literals({"b": Blob("z")}, "takes_blob")
    assert iface.literals_to_inputs(message) == {"b": Blob("z")}


# ------------------------------------------------------------------------------------------------
# typed interface and hash


def test_typed_interface() -> None:
    typed = NativeInterface.from_function(fetch).to_typed_interface()
    assert [v.key for v in typed.inputs.variables] == ["url", "retries", "timeout"]
    assert typed.inputs.variables[0].value.type.simple == types_pb2.STRING
    assert typed.inputs.variables[1].value.type.simple == types_pb2.INTEGER
    assert len(typed.inputs.variables[2].value.type.union_type.variants) == 2
    assert [v.key for v in typed.outputs.variables] == ["o0"]
    assert typed.outputs.variables[0].value.type.map_value_type.simple == types_pb2.STRING


def test_typed_interface_for_no_inputs_or_outputs() -> None:
    def bare() -> None: ...

    typed = NativeInterface.from_function(bare).to_typed_interface()
    assert typed.HasField("inputs") and typed.HasField("outputs")
    assert len(typed.inputs.variables) == 0 and len(typed.outputs.variables) == 0


def test_typed_interface_is_a_copy() -> None:
    iface = NativeInterface.from_function(add)
    before = iface.interface_hash()
    typed = iface.to_typed_interface()
    typed.inputs.variables[0].value.type.simple = types_pb2.STRING
    assert iface.to_typed_interface().inputs.variables[0].value.type.simple == types_pb2.INTEGER
    assert iface.interface_hash() == before


def test_interface_hash_follows_the_types() -> None:
    def a(x: int) -> int: ...

    def b(x: int) -> int: ...

    def c(x: float) -> int: ...

    def d(y: int) -> int: ...

    hashes = [NativeInterface.from_function(f).interface_hash() for f in (a, b, c, d)]
    assert hashes[0] == hashes[1]
    assert len(set(hashes)) == 3
    assert len(hashes[0]) == 64 and int(hashes[0], 16) >= 0


def test_default_inputs() -> None:
    params = NativeInterface.from_function(add).default_inputs()
    assert [p.name for p in params] == ["x", "y"]
    assert params[0].parameter.required and not params[0].parameter.HasField("default")
    assert not params[1].parameter.required
    assert params[1].parameter.default.scalar.primitive.integer == 2
    assert params[1].parameter.var.type.simple == types_pb2.INTEGER


_CROSS_PROCESS_SCRIPT = textwrap.dedent(
    """
    import dataclasses, hashlib, enum
    from typing import Optional
    from flyte._types import NativeInterface

    class Mode(enum.Enum):
        FAST = "fast"
        SLOW = "slow"

    @dataclasses.dataclass
    class Cfg:
        name: str
        opts: dict[str, int]
        flags: set[str]
        mode: Mode = Mode.FAST

    def task(cfg: Cfg, names: set[str], table: dict[str, list[float]], extra: dict,
             maybe: Optional[Cfg] = None) -> tuple[int, Optional[Cfg]]:
        ...

    iface = NativeInterface.from_function(task)
    words = ["pear", "plum", "apple", "quince", "lime", "fig"]
    bound = iface.bind(
        (Cfg("c", {w: i for i, w in enumerate(words)}, set(words)), set(words)),
        {"table": {w: [1.5] for w in words}, "extra": {w: {"n": w} for w in words}, "maybe": Cfg("m", {}, set())},
        "task",
    )
    inputs = iface.inputs_to_literals(bound, "task")
    print(iface.interface_hash())
    print(hashlib.sha256(inputs.SerializeToString(deterministic=True)).hexdigest())
    outputs = iface.outputs_to_literals((1, Cfg("o", {"b": 1, "a": 2}, {"y", "x"})), "task")
    print(hashlib.sha256(outputs.SerializeToString(deterministic=True)).hexdigest())
    """
)


def test_hashes_identical_across_processes() -> None:
    runs = []
    for seed in ("0", "7", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(PYTHON_DIR))
        result = subprocess.run(
            [sys.executable, "-c", _CROSS_PROCESS_SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        runs.append(result.stdout.split())
    assert len(runs[0]) == 3
    assert runs[0] == runs[1] == runs[2]
