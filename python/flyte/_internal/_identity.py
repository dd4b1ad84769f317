"""The bytes that identify a call's inputs, for action names and cache keys.

A reference to data (a file, a directory, a dataframe) names where the data was put, and
that place is new every time the data is uploaded: hashing the reference would give a
re-executed parent different child names (breaking recovery) and identical content
different cache keys. So a literal that carries a content hash is identified by that hash
alone. Only interfaces that can hold such references pay for the walk, and inputs that were
offloaded (their URI depends on where they were written, their hash on the content only).
"""

from __future__ import annotations

from typing import Any


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
    # Files nested in dataclasses travel inside their msgpack value, without a literal hash.
    return False


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


def identity_bytes(inputs: Any, references: bool) -> bytes:
    """Deterministic bytes of ``inputs`` (a flyteidl2 Inputs), references replaced by hashes."""
    if not references and not any(named.value.HasField("offloaded_metadata") for named in inputs.literals):
        return bytes(inputs.SerializeToString(deterministic=True))
    normalized = type(inputs)()
    normalized.CopyFrom(inputs)
    for named in normalized.literals:
        _normalize(named.value)
    return bytes(normalized.SerializeToString(deterministic=True))
