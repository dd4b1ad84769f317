"""``flyte.types``: the type engine as the reference SDK's users extend and call it.

Transformers written for the reference implement ``get_literal_type`` and the coroutine methods
``to_literal`` / ``to_python_value``; registered with ``TypeEngine.register``, they take part in
every conversion (task inputs and outputs in both modes), through an adapter that runs them
inside this SDK's synchronous engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import threading
import types
import typing
from collections.abc import Iterable, KeysView, Sequence
from typing import Any, Generic, Protocol, TypeVar, get_origin, runtime_checkable

import cloudpickle
from flyteidl2.core import interface_pb2, literals_pb2
from flyteidl2.core.literals_pb2 import Literal, LiteralMap
from flyteidl2.core.types_pb2 import LiteralType

import flyte.storage as storage
from flyte._aio import finish_returned_coroutine
from flyte._internal import _uris
from flyte._types import _engine, _offload
from flyte._types._engine import LiteralEngine, LiteralTransformer, read_any, type_label
from flyte._types._guess import interface_of, python_type
from flyte._types._interface import NativeInterface
from flyte.io import _transformers

T = TypeVar("T")


class TypeTransformerFailedError(TypeError, AssertionError, ValueError):
    """A transformer could not convert a value or a literal (it does not fit the type)."""


class RestrictedTypeError(TypeTransformerFailedError):
    """A type registered with ``TypeEngine.register_restricted_type`` was used as an input or output."""


class TypeTransformer(Generic[T]):
    """Teaches the type engine a Python type: its literal type, and how values of it become
    literals and back. Subclasses implement ``get_literal_type``, ``to_literal`` and
    ``to_python_value`` (the last two are coroutines) and raise ``TypeTransformerFailedError``
    (or ``AssertionError``/``TypeError``/``ValueError``) for what does not fit."""

    def __init__(self, name: str, t: type[T], enable_type_assertions: bool = True) -> None:
        self._name = name
        self._t = t
        self._type_assertions_enabled = enable_type_assertions

    @property
    def name(self) -> str:
        return self._name

    @property
    def python_type(self) -> type[T]:
        return self._t

    @property
    def type_assertions_enabled(self) -> bool:
        """Whether values are checked with ``assert_type`` before ``to_literal`` is called."""
        return self._type_assertions_enabled

    def isinstance_generic(self, obj: Any, generic_alias: Any) -> None:
        origin = get_origin(generic_alias)
        if not isinstance(obj, origin):
            raise TypeTransformerFailedError(f"value {obj!r} is not a {type_label(origin)}")

    def assert_type(self, t: type[T], v: T) -> None:
        """Raises ``TypeTransformerFailedError`` when ``v`` is not a ``t``."""
        if isinstance(t, types.GenericAlias):
            self.isinstance_generic(v, t)
            return
        if not hasattr(t, "__origin__") and isinstance(t, type) and not isinstance(v, t):
            raise TypeTransformerFailedError(
                f"expected a {type_label(t)}, got {v!r} of type {type_label(type(v))}"
            )

    def get_literal_type(self, t: type[T]) -> LiteralType:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_literal_type")

    def guess_python_type(self, literal_type: LiteralType) -> type[T]:
        """The Python type for ``literal_type``, for transformers that can tell."""
        raise ValueError(f"{type(self).__name__} cannot tell a Python type from a literal type")

    async def to_literal(self, python_val: T, python_type: type[T], expected: LiteralType) -> Literal:
        raise NotImplementedError(f"{type(self).__name__} does not implement to_literal")

    async def to_python_value(self, lv: Literal, expected_python_type: type[T]) -> T | None:
        raise NotImplementedError(f"{type(self).__name__} does not implement to_python_value")

    def schema_match(self, schema: dict[str, Any]) -> bool:
        """Whether a JSON schema describes this transformer's type (pydantic models compare
        title, type and required fields)."""
        if not isinstance(schema, dict):
            return False
        model_schema = getattr(self.python_type, "model_json_schema", None)
        if model_schema is None:
            return False
        try:
            mine = model_schema()
        except Exception:  # noqa: BLE001 - a type without a schema matches nothing
            return False
        return bool(
            schema.get("title") == mine.get("title")
            and schema.get("type") == mine.get("type")
            and set(schema.get("required", [])) == set(mine.get("required", []))
        )

    def from_binary_idl(
        self, binary_idl_object: literals_pb2.Binary, expected_python_type: type[T]
    ) -> T | None:
        """A value of ``expected_python_type`` from a msgpack ``Binary`` literal."""
        if binary_idl_object.tag != _engine.MSGPACK_TAG:
            raise TypeTransformerFailedError(f"unsupported binary format {binary_idl_object.tag!r}")
        lit = Literal()
        lit.scalar.binary.CopyFrom(binary_idl_object)
        return LiteralEngine.to_python(lit, expected_python_type)  # type: ignore[no-any-return]

    def to_html(self, python_val: T, expected_python_type: type[T]) -> str:
        """The value as HTML (for reports)."""
        return html.escape(str(python_val))

    def __repr__(self) -> str:
        return f"{self._name} transforms {type_label(self._t)}"


class _Registered(LiteralTransformer[Any]):
    """A ``TypeTransformer`` inside the engine: its coroutines are run to completion here."""

    def __init__(self, transformer: TypeTransformer[Any], python_type: type) -> None:
        super().__init__(transformer.name, python_type)
        self.public = transformer

    def get_literal_type(self, tp: Any) -> LiteralType:
        return _translating(lambda: self.public.get_literal_type(tp))

    def to_literal(self, value: Any, tp: Any) -> Literal:
        if self.public.type_assertions_enabled:
            _translating(lambda: self.public.assert_type(tp, value))
        expected = self.get_literal_type(tp)
        return _translating(lambda: finish_returned_coroutine(self.public.to_literal(value, tp, expected)))

    def to_python(self, lit: Literal, tp: Any) -> Any:
        return _translating(lambda: finish_returned_coroutine(self.public.to_python_value(lit, tp)))


def _translating(step: typing.Callable[[], Any]) -> Any:
    """Runs a transformer's step; an ``AssertionError`` (what the reference asks transformers
    to raise) is reported like the engine's own mismatches."""
    try:
        return step()
    except RestrictedTypeError:
        raise
    except AssertionError as e:
        raise TypeTransformerFailedError(str(e) or type(e).__name__) from None


class _Restricted(TypeTransformer[Any]):
    def get_literal_type(self, t: Any) -> LiteralType:
        raise RestrictedTypeError(
            f"{type_label(self.python_type)} ({self.name}) cannot be a task's input or output"
        )

    async def to_literal(self, python_val: Any, python_type: Any, expected: LiteralType) -> Literal:
        raise RestrictedTypeError(
            f"{type_label(self.python_type)} ({self.name}) cannot be a task's input or output"
        )

    async def to_python_value(self, lv: Literal, expected_python_type: Any) -> Any:
        raise RestrictedTypeError(
            f"{type_label(self.python_type)} ({self.name}) cannot be a task's input or output"
        )


class _Builtin(TypeTransformer[Any]):
    """What ``TypeEngine.get_transformer`` gives for a type the engine handles itself."""

    def get_literal_type(self, t: Any) -> LiteralType:
        return LiteralEngine.to_literal_type(t)

    def guess_python_type(self, literal_type: LiteralType) -> Any:
        return python_type(literal_type)

    async def to_literal(self, python_val: Any, python_type: Any, expected: LiteralType) -> Literal:
        return LiteralEngine.to_literal(python_val, python_type)

    async def to_python_value(self, lv: Literal, expected_python_type: Any) -> Any:
        return LiteralEngine.to_python(lv, expected_python_type)


class TypeEngine:
    """Converts Python values to literals and back (all class methods)."""

    #: Held while optional libraries' transformers are being registered.
    lazy_import_lock = threading.RLock()
    _REGISTRY: typing.ClassVar[dict[type, TypeTransformer[Any]]] = {}

    @classmethod
    def register(cls, transformer: TypeTransformer[Any], additional_types: list[type] | None = None) -> None:
        """Uses ``transformer`` for its Python type (and ``additional_types``) everywhere values
        are converted; a type that already has a transformer is refused."""
        if not isinstance(transformer, TypeTransformer):
            raise TypeError(
                f"register expects a flyte.types.TypeTransformer, got {type(transformer).__name__}"
            )
        for t in (transformer.python_type, *(additional_types or [])):
            existing = cls._REGISTRY.get(t)
            if existing is not None:
                raise ValueError(
                    f"transformer {existing.name!r} is already registered for {type_label(t)}; "
                    f"cannot register {transformer.name!r} too"
                )
            cls._install(t, transformer)

    @classmethod
    def register_restricted_type(cls, name: str, type: type[T]) -> None:  # noqa: A002 - the reference's name
        """Makes ``type`` refused as a task's input or output, with ``name`` in the message."""
        cls.register(_Restricted(name, type))

    @classmethod
    def register_additional_type(
        cls, transformer: TypeTransformer[T], additional_type: type[T], override: bool = False
    ) -> None:
        """Uses ``transformer`` for ``additional_type`` too (replacing one there with ``override``)."""
        if additional_type not in cls._REGISTRY or override:
            cls._install(additional_type, transformer)

    @classmethod
    def _install(cls, t: type, transformer: TypeTransformer[Any]) -> None:
        cls._REGISTRY[t] = transformer
        LiteralEngine.register(_Registered(transformer, t), override=True)

    @classmethod
    def get_transformer(cls, python_type: type) -> TypeTransformer[Any]:
        """The transformer that converts ``python_type`` (registered, or the engine's own)."""
        for klass in getattr(python_type, "__mro__", (python_type,)):
            found = cls._REGISTRY.get(klass)
            if found is not None:
                return found
        LiteralEngine.to_literal_type(python_type)  # raises for a type nothing can convert
        return _Builtin(type_label(python_type), python_type)

    @classmethod
    def lazy_import_transformers(cls) -> None:
        """Registers the transformers of the optional data frame libraries that are installed."""
        with cls.lazy_import_lock:
            _transformers.register_frame_transformers()

    @classmethod
    def to_literal_type(cls, python_type: type[T]) -> LiteralType:
        return LiteralEngine.to_literal_type(python_type)

    @classmethod
    def to_literal_checks(cls, python_val: Any, python_type: type[T], expected: LiteralType) -> None:
        """Raises ``TypeTransformerFailedError`` when ``python_val`` cannot be a ``python_type``
        of literal type ``expected``."""
        if not isinstance(expected, LiteralType):
            raise TypeTransformerFailedError(f"expected must be a LiteralType, got {type(expected).__name__}")
        if python_val is None and not _accepts_none(python_type):
            raise TypeTransformerFailedError(f"None is not a {type_label(python_type)}")

    @classmethod
    async def to_literal(cls, python_val: Any, python_type: type[T], expected: LiteralType) -> Literal:
        cls.to_literal_checks(python_val, python_type, expected)
        return LiteralEngine.to_literal(python_val, python_type)

    @classmethod
    async def unwrap_offloaded_literal(cls, lv: Literal) -> Literal:
        """The literal an offloaded one points to (read from storage); others as they are."""
        return await asyncio.to_thread(_offload.load, lv)

    @classmethod
    async def to_python_value(cls, lv: Literal, expected_python_type: type) -> Any:
        lv = await cls.unwrap_offloaded_literal(lv)
        return LiteralEngine.to_python(lv, expected_python_type)

    @classmethod
    def to_html(cls, python_val: Any, expected_python_type: type[Any]) -> str:
        """The value as HTML: its transformer's rendering, a data frame's table, or its text."""
        for klass in getattr(expected_python_type, "__mro__", ()):
            found = cls._REGISTRY.get(klass)
            if found is not None:
                return found.to_html(python_val, expected_python_type)
        to_frame_html = getattr(python_val, "to_html", None)
        if callable(to_frame_html) and type(python_val).__module__.startswith("pandas"):
            return str(to_frame_html(max_rows=10, max_cols=100))
        return html.escape(str(python_val))

    @classmethod
    def named_tuple_to_variable_map(cls, t: Any) -> interface_pb2.VariableMap:
        """The variables (name and literal type) of a ``NamedTuple`` type's fields."""
        hints = typing.get_type_hints(t)
        fields = getattr(t, "_fields", None)
        if fields is None:
            raise TypeError(f"{type_label(t)} is not a NamedTuple type")
        out = interface_pb2.VariableMap()
        for name in fields:
            entry = out.variables.add(key=name)
            entry.value.type.CopyFrom(LiteralEngine.to_literal_type(hints.get(name, Any)))
            entry.value.description = name
        return out

    @classmethod
    async def literal_map_to_kwargs(
        cls,
        lm: LiteralMap,
        python_types: dict[str, type] | None = None,
        literal_types: dict[str, interface_pb2.Variable] | None = None,
    ) -> dict[str, Any]:
        """Python values of a literal map: by ``python_types``, else guessed from ``literal_types``."""
        if python_types is None and literal_types is None:
            raise ValueError("literal_map_to_kwargs needs python_types or literal_types")
        if python_types is None:
            assert literal_types is not None
            python_types = {k: python_type(v.type) for k, v in literal_types.items()}
        missing = set(python_types) - set(lm.literals)
        if missing:
            raise TypeTransformerFailedError(f"the literal map has no {', '.join(sorted(missing))}")
        return {name: await cls.to_python_value(lm.literals[name], tp) for name, tp in python_types.items()}

    @classmethod
    async def dict_to_literal_map(
        cls, d: dict[str, Any], type_hints: dict[str, type] | None = None
    ) -> LiteralMap:
        """A literal map of ``d``, each value converted as its hint's type (else its own type)."""
        hints = type_hints or {}
        out = LiteralMap()
        for key, value in d.items():
            tp = hints.get(key, type(value))
            out.literals[key].CopyFrom(LiteralEngine.to_literal(value, tp, key))
        return out

    @classmethod
    def get_available_transformers(cls) -> KeysView[type]:
        """The types that have a registered transformer."""
        return cls._REGISTRY.keys()

    @classmethod
    def guess_python_types(
        cls, flyte_variable_list: Sequence[interface_pb2.VariableEntry]
    ) -> dict[str, type[Any]]:
        return {entry.key: cls.guess_python_type(entry.value.type) for entry in flyte_variable_list}

    @classmethod
    def guess_python_type(cls, flyte_type: LiteralType) -> type[T]:
        """The Python type that reads and writes literals of ``flyte_type``."""
        for transformer in cls._REGISTRY.values():
            try:
                return transformer.guess_python_type(flyte_type)
            except ValueError:
                continue
        return python_type(flyte_type)  # type: ignore[no-any-return]


def _accepts_none(tp: Any) -> bool:
    if tp is None or tp is type(None) or tp is Any:
        return True
    return type(None) in typing.get_args(tp)


@runtime_checkable
class Renderable(Protocol):
    """An object that renders values as HTML (a report tab's content)."""

    def to_html(self, python_value: Any) -> str: ...


class FlytePickle(Generic[T]):
    """A value stored as a cloudpickle file; ``FlytePickle[T]`` names the type it holds."""

    @classmethod
    def python_type(cls) -> type:
        return type(None)

    def __class_getitem__(cls, python_type: Any) -> Any:  # type: ignore[override]
        if python_type is None:
            return cls

        class _Of(FlytePickle):  # type: ignore[type-arg]
            __origin__ = FlytePickle

            @classmethod
            def python_type(cls) -> type:
                return python_type  # type: ignore[no-any-return]

        return _Of

    @classmethod
    async def to_pickle(cls, python_val: Any) -> str:
        """Pickles the value into storage (the run's, inside a task); returns where it is."""
        data = cloudpickle.dumps(python_val)
        local = storage.get_random_local_path(hashlib.sha256(data).hexdigest())
        local.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(local.write_bytes, data)
        return await storage.put(str(local))

    @classmethod
    async def from_pickle(cls, uri: str) -> Any:
        """The value pickled at ``uri`` (a local path or a remote URI)."""
        return cloudpickle.loads(await asyncio.to_thread(_uris.read_bytes, uri))


def guess_interface(
    interface: interface_pb2.TypedInterface, default_inputs: Iterable[Any] | None = None
) -> NativeInterface:
    """A ``NativeInterface`` for a typed interface (a deployed task's), with the defaults of
    ``default_inputs`` (``task.NamedParameter``s)."""
    defaults: dict[str, Any] = {}
    types_by_name = {entry.key: python_type(entry.value.type) for entry in interface.inputs.variables}
    for param in default_inputs or ():
        if param.parameter.HasField("default"):
            tp = types_by_name.get(param.name, Any)
            defaults[param.name] = LiteralEngine.to_python(param.parameter.default, tp, param.name)
    return interface_of(interface, defaults, "")


def literal_string_repr(lm: Any) -> Any:
    """Plain Python values (for display): of a literal, its value; of a literal map, named
    literals or a ``task.Inputs``/``task.Outputs``, a dict by name. Files, data frames and
    offloaded values show as their URIs."""
    if lm is None:
        return {}
    if isinstance(lm, Literal):
        return _plain(lm)
    if isinstance(lm, LiteralMap):
        return {k: _plain(v) for k, v in lm.literals.items()}
    if isinstance(lm, dict):
        return {k: _plain(v) for k, v in lm.items()}
    if hasattr(lm, "literals") and not isinstance(lm, LiteralMap):
        return {n.name: _plain(n.value) for n in lm.literals}
    if hasattr(lm, "name") and hasattr(lm, "value"):
        return {lm.name: _plain(lm.value)}
    raise ValueError(
        f"cannot show {type(lm).__name__} as values: give a Literal, LiteralMap, Inputs or Outputs"
    )


def _plain(lit: Literal) -> Any:
    kind = lit.WhichOneof("value")
    if kind == "offloaded_metadata":
        return lit.offloaded_metadata.uri
    if kind == "scalar":
        sub = lit.scalar.WhichOneof("value")
        if sub == "blob":
            return lit.scalar.blob.uri
        if sub == "structured_dataset":
            return lit.scalar.structured_dataset.uri
        if sub == "binary":
            try:
                return read_any(lit)
            except Exception:  # noqa: BLE001 - pickles and unknown formats show their size
                return f"<{lit.scalar.binary.tag or 'binary'}: {len(lit.scalar.binary.value)} bytes>"
        if sub == "error":
            return lit.scalar.error.message
    if kind == "collection":
        return [_plain(x) for x in lit.collection.literals]
    if kind == "map":
        return {k: _plain(v) for k, v in lit.map.literals.items()}
    return read_any(lit)
