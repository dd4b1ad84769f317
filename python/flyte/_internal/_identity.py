"""The bytes that identify a call's inputs, for action names and cache keys.

A reference to data (a file, a directory, a dataframe) names where the data was put, and
that place is new every time the data is uploaded: hashing the reference would give a
re-executed parent different child names (breaking recovery) and identical content
different cache keys. So a literal that carries a content hash is identified by that hash
alone; inside a dataclass or model (a msgpack value) a hashed File/Dir/DataFrame loses its
location. Only interfaces that can hold such references pay for the walk, and inputs that were
offloaded (their URI depends on where they were written, their hash on the content only).
"""

from __future__ import annotations

from typing import Any

from flyte._types._msgpack import canonical_data, packb, unpackb


def _type_has_references(lt: Any) -> bool:
    which = lt.WhichOneof("type")
    if which in ("blob", "structured_dataset_type"):
        return True
    if which == "collection_type":
        return _type_has_references(lt.collection_type)
    if which == "map_value_type":
        return _type_has_references(lt.map_value_type)
    if which == "union_type":
        return any(_type_has_references(v) for v in lt.union_type.variants)
    if which == "simple" and lt.HasField("metadata"):
        # A dataclass or model: its JSON schema defines File/Dir/DataFrame when it holds one.
        defs = lt.metadata.fields.get("$defs")
        if defs is not None and defs.WhichOneof("kind") == "struct_value":
            for definition in defs.struct_value.fields.values():
                props = definition.struct_value.fields.get("properties")
                if props is not None and frozenset(props.struct_value.fields) in _REFERENCE_SHAPES:
                    return True
    return False


#: Field sets of a dumped File or Dir, and of a dumped DataFrame: inside a dataclass or model,
#: such a value with a hash is identified by the hash, not by where it was stored.
_REFERENCE_SHAPES = (frozenset({"path", "name", "hash", "format"}), frozenset({"uri", "format", "hash"}))
#: What a hashed reference is not identified by (as for a top-level one: only the hash counts).
_LOCATION_KEYS = ("path", "uri", "name")


def _strip_locations(data: Any) -> bool:
    """Blanks location and name of every hashed File/Dir/DataFrame dump in ``data``; True if any."""
    changed = False
    if isinstance(data, dict):
        if frozenset(data) in _REFERENCE_SHAPES and isinstance(data.get("hash"), str) and data["hash"]:
            for key in _LOCATION_KEYS:
                if key in data:
                    data[key] = ""
            return True
        for value in data.values():
            changed = _strip_locations(value) or changed
    elif isinstance(data, list):
        for value in data:
            changed = _strip_locations(value) or changed
    return changed


def inputs_have_references(typed_interface: Any) -> bool:
    """Whether any input of the interface can be a reference to data."""
    return any(_type_has_references(entry.value.type) for entry in typed_interface.inputs.variables)


def _normalize(lit: Any) -> None:
    if lit.hash:
        content = lit.hash
        lit.Clear()
        lit.hash = content
        return
    which = lit.WhichOneof("value")
    if which == "collection":
        for item in lit.collection.literals:
            _normalize(item)
    elif which == "map":
        for item in lit.map.literals.values():
            _normalize(item)
    elif which == "scalar" and lit.scalar.WhichOneof("value") == "union":
        _normalize(lit.scalar.union.value)
    elif (
        which == "scalar"
        and lit.scalar.WhichOneof("value") == "binary"
        and lit.scalar.binary.tag == "msgpack"
    ):
        try:
            data = unpackb(lit.scalar.binary.value)
        except Exception:  # noqa: BLE001 - not ours to judge here; identified by its bytes
            return
        if _strip_locations(data):
            lit.scalar.binary.value = packb(canonical_data(data))


def identity_bytes(inputs: Any, references: bool) -> bytes:
    """Deterministic bytes of ``inputs`` (a flyteidl2 Inputs), references replaced by hashes."""
    if not references and not any(named.value.HasField("offloaded_metadata") for named in inputs.literals):
        return bytes(inputs.SerializeToString(deterministic=True))
    return _normalized_bytes(inputs)


def identity_and_serialized(inputs: Any, references: bool) -> tuple[bytes, bytes]:
    """:func:`identity_bytes` and ``inputs`` serialized: one serialization when they are the same
    (no references to replace), which is the common case."""
    if not references and not any(named.value.HasField("offloaded_metadata") for named in inputs.literals):
        serialized = bytes(inputs.SerializeToString(deterministic=True))
        return serialized, serialized
    return _normalized_bytes(inputs), bytes(inputs.SerializeToString())


def _normalized_bytes(inputs: Any) -> bytes:
    normalized = type(inputs)()
    normalized.CopyFrom(inputs)
    for named in normalized.literals:
        _normalize(named.value)
    return bytes(normalized.SerializeToString(deterministic=True))
