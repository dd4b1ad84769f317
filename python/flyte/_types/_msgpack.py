"""Canonical msgpack encoding: equal values give equal bytes in every process.

Map keys are sorted and set members ordered by their own encoding, because dict insertion order and
set iteration order (string hashes are randomized per process) would otherwise leak into cache keys
and action IDs.
"""

from __future__ import annotations

from typing import Any

import msgpack

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_NoneType = type(None)
_SCALARS = (str, int, float, bool, bytes, _NoneType)


def packb(data: Any) -> bytes:
    payload: bytes = msgpack.packb(data, use_bin_type=True)
    return payload


def unpackb(payload: bytes) -> Any:
    # Non-string map keys (dict[int, ...]) are legitimate here; msgpack refuses them by default.
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def _sorted_map(mapping: dict[Any, Any]) -> dict[Any, Any]:
    keys = list(mapping)
    if all(type(k) is str for k in keys):
        keys.sort()
    else:
        keys.sort(key=packb)
    return {k: mapping[k] for k in keys}


def canonical_data(value: Any) -> Any:
    """Turn pydantic's python-mode dump into msgpack-ready data (bytes stay bytes), canonically ordered."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return _sorted_map({canonical_data(k): canonical_data(v) for k, v in value.items()})
    if kind is list or kind is tuple:
        return [canonical_data(v) for v in value]
    if kind is set or kind is frozenset:
        items = [canonical_data(v) for v in value]
        items.sort(key=packb)
        return items
    if kind is bytearray or kind is memoryview:
        return bytes(value)
    from pydantic_core import to_jsonable_python

    # Leaves such as datetime, Enum members, UUID, Decimal, Path: their JSON form, as pydantic would write.
    return canonical_data(to_jsonable_python(value))


class _NotExact(Exception):
    pass


def _exact(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is float or kind is bool or kind is bytes or value is None:
        return value
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        raise _NotExact
    if kind is list:
        return [_exact(v) for v in value]
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) not in _SCALARS or (type(k) is int and not _INT_MIN <= k <= _INT_MAX):
                raise _NotExact
            out[k] = _exact(v)
        return _sorted_map(out)
    raise _NotExact


NOT_EXACT: Any = object()


def exact_data(value: Any) -> Any:
    """Canonical msgpack-ready copy of ``value`` if msgpack gives it back unchanged, else NOT_EXACT.

    Only None, bool, int (64-bit), float, str, bytes, lists and dicts with such keys qualify: tuples,
    sets, subclasses (str enums) and everything else would come back as a different type.
    """
    try:
        return _exact(value)
    except _NotExact:
        return NOT_EXACT
