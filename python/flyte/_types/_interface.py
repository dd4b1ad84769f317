"""The typed signature of a task: binding call arguments and converting inputs and outputs."""

from __future__ import annotations

import hashlib
import inspect
import typing
from collections.abc import Sequence
from typing import Any, Collection, Union

from flyteidl2.core import interface_pb2
from flyteidl2.task import common_pb2

from flyte._types._engine import (
    _EMPTY,
    _Converter,
    _describe,
    _Mismatch,
    converter,
    pickled_type,
    start_pickle_watch,
    type_label,
    warn_pickled_once,
)
from flyte._types._offload import load, max_inline_bytes, offload
from flyte.errors import RuntimeDataValidationError

_NoneType = type(None)
_RETURN = "return"

# How a function's return value maps onto its named outputs.
_SHAPE_NONE = "none"
_SHAPE_SINGLE = "single"
_SHAPE_TUPLE = "tuple"
_SHAPE_NAMEDTUPLE = "namedtuple"


def _closure_namespace(func: Any) -> dict[str, Any]:
    names = getattr(getattr(func, "__code__", None), "co_freevars", ())
    cells = getattr(func, "__closure__", None) or ()
    namespace = {}
    for name, cell in zip(names, cells, strict=False):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:  # a cell that is not filled yet
            pass
    return namespace


def _type_hints(func: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        pass
    # Some annotation does not resolve (typically a class local to another function under
    # `from __future__ import annotations`): resolve what can be, keep the rest as their strings,
    # which the engine then treats as unknown types (pickled, with a warning).
    annotations = dict(getattr(func, "__annotations__", None) or {})
    globalns = getattr(func, "__globals__", {})
    localns = _closure_namespace(func)
    hints = {}
    for name, annotation in annotations.items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, globalns, localns)
            except Exception:
                pass
        hints[name] = annotation
    return hints


def _accepts_none(tp: Any) -> bool:
    if tp is _EMPTY or tp is Any or tp is object or tp is None or tp is _NoneType or isinstance(tp, str):
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _accepts_none(typing.get_args(tp)[0])
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return any(_accepts_none(a) for a in typing.get_args(tp))
    return False


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _outputs_of(ret: Any) -> tuple[dict[str, Any], str, type | None]:
    if ret is _EMPTY:
        return {"o0": _EMPTY}, _SHAPE_SINGLE, None
    if ret is None or ret is _NoneType:
        return {}, _SHAPE_NONE, None
    if _is_namedtuple(ret):
        try:
            hints = typing.get_type_hints(ret, include_extras=True)
        except Exception:
            hints = dict(getattr(ret, "__annotations__", {}))
        return {f: hints.get(f, _EMPTY) for f in ret._fields}, _SHAPE_NAMEDTUPLE, ret
    if typing.get_origin(ret) is tuple and ret is not typing.Tuple:
        args = typing.get_args(ret)
        if not (len(args) == 2 and args[1] is Ellipsis):
            return {f"o{i}": a for i, a in enumerate(args)}, _SHAPE_TUPLE, None
    return {"o0": ret}, _SHAPE_SINGLE, None


class NativeInterface:
    """Inputs and outputs of a Python function, and their conversion to and from literals.

    ``inputs`` maps each parameter name to ``(type, default)`` (default ``inspect.Parameter.empty``
    when there is none; type ``inspect.Parameter.empty`` when the parameter is not annotated).
    ``outputs`` maps output names (``o0``, ``o1``, ... or a NamedTuple's fields) to types.
    Converters are compiled on first use, so building an interface at import time is cheap.
    """

    inputs: dict[str, tuple[Any, Any]]
    outputs: dict[str, Any]
    #: The function's docstring, when made from a function.
    docstring: str | None

    def __init__(
        self,
        inputs: dict[str, tuple[Any, Any]],
        outputs: dict[str, Any],
        docstring: str | None = None,
        *,
        name: str = "",
        positional_only: Collection[str] = (),
        keyword_only: Collection[str] = (),
        output_tuple: type | None = None,
        single_output_as_tuple: bool = False,
    ) -> None:
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.docstring = docstring
        self.name = name
        if output_tuple is not None:
            self._shape = _SHAPE_NAMEDTUPLE
        elif not outputs:
            self._shape = _SHAPE_NONE
        elif len(outputs) == 1 and not single_output_as_tuple:
            self._shape = _SHAPE_SINGLE
        else:
            self._shape = _SHAPE_TUPLE
        self._output_tuple = output_tuple

        self._names = list(self.inputs)
        self._defaults = {n: d for n, (_, d) in self.inputs.items() if d is not _EMPTY}
        self._positional_only = frozenset(positional_only)
        self._keyword_ok = frozenset(n for n in self._names if n not in self._positional_only)
        self._keyword_only = frozenset(keyword_only)
        self._max_positional = sum(1 for n in self._names if n not in self._keyword_only)

        self._in_plan: list[tuple[str, _Converter, Any]] | None = None
        self._in_by_name: dict[str, _Converter] = {}
        self._out_plan: list[tuple[str, _Converter]] | None = None
        self._out_by_name: dict[str, _Converter] = {}
        # Whether every input / output converter round-trips (None: not worked out yet).
        self._in_round_trips: bool | None = None
        self._out_round_trips: bool | None = None
        self._typed: interface_pb2.TypedInterface | None = None
        self._hash: str | None = None

    def with_outputs(self, outputs: dict[str, Any]) -> NativeInterface:
        """The same inputs, taken the same way, with other outputs."""
        return NativeInterface(
            self.inputs,
            outputs,
            name=self.name,
            positional_only=self._positional_only,
            keyword_only=self._keyword_only,
        )

    @classmethod
    def from_callable(cls, func: Any) -> NativeInterface:
        """The interface of a function: its parameters and return annotation."""
        return cls.from_function(func)

    @classmethod
    def from_types(
        cls,
        inputs: dict[str, tuple[Any, Any]],
        outputs: dict[str, Any],
        default_inputs: dict[str, Any] | None = None,
    ) -> NativeInterface:
        """An interface from types: ``inputs`` maps names to ``(type, default)`` (default
        ``inspect.Parameter.empty`` for none), ``outputs`` names to types; ``default_inputs``
        gives defaults for some inputs besides."""
        merged = dict(inputs)
        for name, value in (default_inputs or {}).items():
            if name not in merged:
                raise ValueError(f"default for {name!r}, which is not an input ({sorted(merged)})")
            merged[name] = (merged[name][0], value)
        return cls(merged, outputs)

    def get_input_types(self) -> dict[str, Any]:
        """Each input's type, by name."""
        return {name: tp for name, (tp, _) in self.inputs.items()}

    def has_outputs(self) -> bool:
        return bool(self.outputs)

    def required_inputs(self) -> list[str]:
        """The inputs without a default, in order."""
        return [name for name, (_, default) in self.inputs.items() if default is _EMPTY]

    def num_required_inputs(self) -> int:
        return len(self.required_inputs())

    def convert_to_kwargs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A call's arguments by input name, defaults filled in; a wrong call raises TypeError."""
        return self.bind(args, kwargs, self.name)

    @property
    def json_schema(self) -> dict[str, Any]:
        """A JSON schema of the inputs (an object with one property per input)."""
        from pydantic import TypeAdapter

        properties: dict[str, Any] = {}
        for name, (tp, default) in self.inputs.items():
            schema = TypeAdapter(Any if tp is _EMPTY else tp).json_schema()
            if default is not _EMPTY:
                try:
                    schema["default"] = TypeAdapter(Any).dump_python(default, mode="json")
                except Exception:  # noqa: BLE001 - a default JSON cannot show is left out
                    pass
            properties[name] = schema
        return {"type": "object", "properties": properties, "required": self.required_inputs()}

    @classmethod
    def from_function(cls, func: Any) -> NativeInterface:
        target = inspect.unwrap(func)
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"
        signature = inspect.signature(target)
        hints = _type_hints(target)
        inputs: dict[str, tuple[Any, Any]] = {}
        positional_only: list[str] = []
        keyword_only: list[str] = []
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(
                    f"{name}: parameter '{param.name}': *args and **kwargs cannot be task inputs; "
                    "declare each input as a named parameter"
                )
            tp = hints.get(param.name, _EMPTY)
            if param.default is None and not _accepts_none(tp):
                # `x: int = None` means Optional[int] (what get_type_hints did before Python 3.11).
                tp = Union[tp, None]
            inputs[param.name] = (tp, param.default)
            if param.kind is param.POSITIONAL_ONLY:
                positional_only.append(param.name)
            elif param.kind is param.KEYWORD_ONLY:
                keyword_only.append(param.name)
        outputs, shape, output_tuple = _outputs_of(hints.get(_RETURN, _EMPTY))
        return cls(
            inputs,
            outputs,
            inspect.getdoc(target),
            name=name,
            positional_only=positional_only,
            keyword_only=keyword_only,
            output_tuple=output_tuple,
            single_output_as_tuple=shape == _SHAPE_TUPLE,
        )

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {type_label(t)}" for n, (t, _) in self.inputs.items())
        outs = ", ".join(f"{n}: {type_label(t)}" for n, t in self.outputs.items())
        return f"NativeInterface({self.name or '?'}: ({ins}) -> ({outs}))"

    # ---------------------------------------------------------------------------------------------
    # binding

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], task_name: str) -> dict[str, Any]:
        """Map a call's positional and keyword arguments to input names, filling defaults."""
        names = self._names
        given = len(args)
        if given > self._max_positional:
            raise TypeError(
                f"{task_name}() takes {self._max_positional} positional argument"
                f"{'' if self._max_positional == 1 else 's'} but {given} were given"
            )
        bound = dict(zip(names, args, strict=False))
        if kwargs:
            for key, value in kwargs.items():
                if key in bound:
                    raise TypeError(f"{task_name}() got multiple values for argument '{key}'")
                if key not in self._keyword_ok:
                    if key in self._positional_only:
                        raise TypeError(
                            f"{task_name}() got positional-only argument '{key}' passed as a keyword"
                        )
                    raise TypeError(f"{task_name}() got an unexpected keyword argument '{key}'")
                bound[key] = value
        elif given == len(names):
            return bound
        if len(bound) < len(names):
            missing = []
            for name in names:
                if name not in bound:
                    default = self._defaults.get(name, _EMPTY)
                    if default is _EMPTY:
                        missing.append(name)
                    else:
                        bound[name] = default
            if missing:
                listed = ", ".join(f"'{m}'" for m in missing)
                raise TypeError(
                    f"{task_name}() missing {len(missing)} required argument{'' if len(missing) == 1 else 's'}: "
                    f"{listed}"
                )
        return {name: bound[name] for name in names}

    # ---------------------------------------------------------------------------------------------
    # inputs

    def _inputs_plan(self) -> list[tuple[str, _Converter, Any]]:
        plan = self._in_plan
        if plan is None:
            plan = [(name, converter(tp), default) for name, (tp, default) in self.inputs.items()]
            self._in_by_name = {name: conv for name, conv, _ in plan}
            self._in_plan = plan
        return plan

    def _write(self, conv: _Converter, value: Any, out: Any, var: str, kind: str, task_name: str) -> None:
        if conv.may_pickle:
            start_pickle_watch()
        try:
            conv.write(value, out)
        except _Mismatch as e:
            raise RuntimeDataValidationError(var, e.render(var), task_name or self.name) from None
        if conv.may_pickle:
            pickled = pickled_type()
            if pickled is not None:
                declared = self.inputs[var][0] if kind == "input" else self.outputs[var]
                warn_pickled_once(task_name or self.name, f"{kind} '{var}'", pickled, declared)

    def inputs_to_literals(
        self, bound: dict[str, Any], task_name: str, max_inline_bytes: int | None = None
    ) -> common_pb2.Inputs:
        """Convert bound inputs (see ``bind``) to an Inputs message, one NamedLiteral per input in
        order; values over ``max_inline_bytes`` (the task's limit) or the process's limit,
        whichever is smaller, are offloaded."""
        message = common_pb2.Inputs()
        add = message.literals.add
        found = 0
        for name, conv, default in self._in_plan or self._inputs_plan():
            value = bound.get(name, _EMPTY)
            if value is _EMPTY:
                if default is _EMPTY:
                    raise TypeError(f"{task_name}() missing required argument: '{name}'")
                value = default
            else:
                found += 1
            named = add()
            named.name = name
            if conv.may_pickle:
                self._write(conv, value, named.value, name, "input", task_name)
                continue
            try:
                conv.write(value, named.value)
            except _Mismatch as e:
                raise RuntimeDataValidationError(name, e.render(name), task_name or self.name) from None
        if found != len(bound):
            unexpected = ", ".join(f"'{k}'" for k in bound if k not in self.inputs)
            raise TypeError(f"{task_name}() got unexpected inputs: {unexpected}")
        self._offload_large(message, self._in_by_name, max_inline_bytes)
        return message

    def partial_inputs_to_literals(self, values: dict[str, Any], where: str) -> common_pb2.Inputs:
        """Some inputs (e.g. a trigger's), converted with their declared types, plus the defaults
        of the inputs not given; required inputs may be missing."""
        unknown = sorted(set(values) - set(self.inputs))
        if unknown:
            raise TypeError(f"{where}: {', '.join(unknown)} not among the inputs ({', '.join(self.inputs)})")
        message = common_pb2.Inputs()
        for name, conv, default in self._inputs_plan():
            value = values.get(name, default)
            if value is _EMPTY:
                continue
            named = message.literals.add()
            named.name = name
            self._write(conv, value, named.value, name, "input", where)
        self._offload_large(message, self._in_by_name)
        return message

    def _offload_large(
        self, message: Any, convs: dict[str, _Converter], task_limit: int | None = None
    ) -> None:
        limit = max_inline_bytes()
        if task_limit is not None and task_limit < limit:
            limit = task_limit
        if message.ByteSize() <= limit:
            # No single value can be over the limit either.
            return
        for named in message.literals:
            if named.value.ByteSize() > limit:
                conv = convs.get(named.name)
                offload(named.value, conv.literal_type if conv is not None else None)

    def native_inputs(self, bound: dict[str, Any]) -> dict[str, Any] | None:
        """``bound`` (see ``bind``) when handing it to the task in this process is the same as
        reading its literals back (every value immutable and exactly of its declared type),
        else None."""
        every = self._in_round_trips
        if every is None:
            every = self._in_round_trips = all(conv.round_trips for _, conv, _ in self._inputs_plan())
        if not every:
            return None
        by_name = self._in_by_name
        for name, value in bound.items():
            if not by_name[name].exact(value):
                return None
        return bound

    def literals_to_inputs(self, inputs: common_pb2.Inputs, task_name: str = "") -> dict[str, Any]:
        """Read an Inputs message back into keyword arguments, filling defaults for absent inputs."""
        plan = self._inputs_plan()
        by_name = self._in_by_name
        task = task_name or self.name
        values: dict[str, Any] = {}
        for named in inputs.literals:
            name = named.name
            conv = by_name.get(name)
            if conv is None:
                known = ", ".join(self._names) or "none"
                raise RuntimeDataValidationError(
                    name, f"is not an input of this task (its inputs: {known})", task
                )
            value = named.value
            if value.WhichOneof("value") == "offloaded_metadata":
                value = load(value)
            try:
                values[name] = conv.read(value)
            except _Mismatch as e:
                raise RuntimeDataValidationError(name, e.render(name), task) from None
        if len(values) == len(plan):
            return values
        for name, _, default in plan:
            if name not in values:
                if default is _EMPTY:
                    raise RuntimeDataValidationError(name, "missing required input", task)
                values[name] = default
        return {name: values[name] for name in self._names}

    # ---------------------------------------------------------------------------------------------
    # outputs

    def _outputs_plan(self) -> list[tuple[str, _Converter]]:
        plan = self._out_plan
        if plan is None:
            plan = self._out_plan = [(name, converter(tp)) for name, tp in self.outputs.items()]
            self._out_by_name = dict(plan)
        return plan

    def outputs_to_literals(
        self, value: Any, task_name: str, max_inline_bytes: int | None = None
    ) -> common_pb2.Outputs:
        """Convert a function's return value (a tuple when there are several outputs) to Outputs,
        offloading values as ``inputs_to_literals`` does."""
        message = common_pb2.Outputs()
        plan = self._outputs_plan()
        shape = self._shape
        if shape == _SHAPE_SINGLE:
            name, conv = plan[0]
            named = message.literals.add()
            named.name = name
            self._write(conv, value, named.value, name, "output", task_name)
            self._offload_large(message, self._out_by_name, max_inline_bytes)
            return message
        if shape == _SHAPE_NONE:
            if value is not None:
                raise RuntimeDataValidationError(
                    _RETURN,
                    f"expected None (the function declares no outputs), got {_describe(value)}",
                    task_name,
                )
            return message
        if not isinstance(value, (tuple, list)) or len(value) != len(plan):
            expected = ", ".join(conv.label for _, conv in plan)
            raise RuntimeDataValidationError(
                _RETURN,
                f"expected a tuple of {len(plan)} values ({expected}), got {_describe(value)}",
                task_name,
            )
        add = message.literals.add
        for (name, conv), item in zip(plan, value, strict=True):
            named = add()
            named.name = name
            self._write(conv, item, named.value, name, "output", task_name)
        self._offload_large(message, self._out_by_name, max_inline_bytes)
        return message

    def native_outputs(self, value: Any) -> bool:
        """Whether a task's return value is what reading its output literals back gives (see
        ``native_inputs``), so an in-process caller may get the value itself."""
        plan = self._outputs_plan()
        every = self._out_round_trips
        if every is None:
            every = self._out_round_trips = all(conv.round_trips for _, conv in plan)
        if not every:
            return False
        shape = self._shape
        if shape == _SHAPE_SINGLE:
            return plan[0][1].exact(value)
        if shape == _SHAPE_NONE:
            return value is None
        # Several outputs come back as a tuple (or NamedTuple) of the declared shape.
        return False

    def literals_to_outputs(self, outputs: common_pb2.Outputs, task_name: str = "") -> Any:
        """Read Outputs back: None without outputs, the value for one, a tuple (or NamedTuple) for several."""
        shape = self._shape
        if shape == _SHAPE_NONE:
            return None
        plan = self._outputs_plan()
        literals = outputs.literals
        if shape == _SHAPE_SINGLE and len(literals) == 1:
            named = literals[0]
            name, conv = plan[0]
            if named.name == name:
                value = named.value
                if value.WhichOneof("value") == "offloaded_metadata":
                    value = load(value)
                try:
                    return conv.read(value)
                except _Mismatch as e:
                    raise RuntimeDataValidationError(name, e.render(name), task_name or self.name) from None
        by_name = {named.name: load(named.value) for named in literals}
        values = []
        for name, conv in plan:
            lit = by_name.get(name)
            if lit is None:
                raise RuntimeDataValidationError(name, "missing output", task_name or self.name)
            try:
                values.append(conv.read(lit))
            except _Mismatch as e:
                raise RuntimeDataValidationError(name, e.render(name), task_name or self.name) from None
        if shape == _SHAPE_SINGLE:
            return values[0]
        if shape == _SHAPE_NAMEDTUPLE:
            return self._output_tuple(*values)  # type: ignore[misc]
        return tuple(values)

    # ---------------------------------------------------------------------------------------------
    # typed interface

    def _typed_interface(self) -> interface_pb2.TypedInterface:
        typed = self._typed
        if typed is None:
            typed = interface_pb2.TypedInterface()
            typed.inputs.SetInParent()
            typed.outputs.SetInParent()
            for name, conv, _ in self._inputs_plan():
                entry = typed.inputs.variables.add()
                entry.key = name
                entry.value.type.CopyFrom(conv.literal_type)
            for name, conv in self._outputs_plan():
                entry = typed.outputs.variables.add()
                entry.key = name
                entry.value.type.CopyFrom(conv.literal_type)
            self._typed = typed
        return typed

    def to_typed_interface(self) -> interface_pb2.TypedInterface:
        copy = interface_pb2.TypedInterface()
        copy.CopyFrom(self._typed_interface())
        return copy

    def interface_hash(self) -> str:
        """SHA-256 (hex) of the typed interface's deterministic serialization: stable across processes."""
        digest = self._hash
        if digest is None:
            payload = self._typed_interface().SerializeToString(deterministic=True)
            digest = self._hash = hashlib.sha256(payload).hexdigest()
        return digest

    def default_inputs(self, task_name: str = "") -> list[common_pb2.NamedParameter]:
        """Every input as a NamedParameter (type, default literal if any, required), e.g. for a TaskSpec."""
        params = []
        for name, conv, default in self._inputs_plan():
            param = common_pb2.NamedParameter()
            param.name = name
            param.parameter.var.type.CopyFrom(conv.literal_type)
            if default is _EMPTY:
                param.parameter.required = True
            else:
                self._write(conv, default, param.parameter.default, name, "input", task_name)
            params.append(param)
        return params


def output_values(names: Sequence[str], value: Any) -> tuple[Any, ...]:
    """A task's return value as one entry per declared output."""
    if not names:
        return ()
    return (value,) if len(names) == 1 else tuple(value)
