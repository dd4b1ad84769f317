"""Offloading: a large input or output value travels as a reference to its serialized literal.

Every input and output literal whose serialized size exceeds the inline limit is written to
storage under the writing action's raw data prefix and replaced by an ``offloaded_metadata``
literal (URI, size, type). The file is named by the SHA-256 of its content, which is also put
in the literal's ``hash``, so action names and cache keys stay content-based although the
URI depends on where it was written. Readers load the literal back on first use.

The limit is ``FLYTE_MAX_INLINE_BYTES`` (bytes; a ``k``/``m``/``g`` suffix is accepted),
4 MiB by default. A run started with the variable set passes it on to its actions.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from flyteidl2.core.literals_pb2 import Literal

from flyte._internal._raw_data import raw_data_prefix

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

MAX_INLINE_ENV = "FLYTE_MAX_INLINE_BYTES"
DEFAULT_MAX_INLINE = 4 * 1024 * 1024

_SUFFIXES = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
}
_parsed: tuple[str | None, int] = (None, DEFAULT_MAX_INLINE)


def parse_size(text: str) -> int:
    """``"4096"``, ``"512k"``, ``"8MB"`` -> bytes; ValueError naming the variable otherwise."""
    raw = text.strip().lower()
    digits = raw.rstrip("bkmg")
    suffix = raw[len(digits) :]
    if not digits.isdigit() or suffix not in _SUFFIXES:
        raise ValueError(f"{MAX_INLINE_ENV}={text!r} is not a size in bytes (e.g. 4194304, 512k, 8m)")
    return int(digits) * _SUFFIXES[suffix]


# Read for every value a task takes or returns: os.environ.get costs microseconds (it encodes
# the key and goes through a mapping wrapper), a look-up in the table behind it does not.
_RAW_ENVIRON: dict[bytes, bytes] | None = getattr(os.environ, "_data", None)
_RAW_KEY = os.fsencode(MAX_INLINE_ENV)


def _limit_text() -> str | None:
    if _RAW_ENVIRON is not None:
        raw = _RAW_ENVIRON.get(_RAW_KEY)
        return None if raw is None else os.fsdecode(raw)
    return os.environ.get(MAX_INLINE_ENV)


def max_inline_bytes() -> int:
    """The current inline limit (the environment variable is re-read when it changes)."""
    global _parsed
    text = _limit_text()
    cached_text, value = _parsed
    if text == cached_text:
        return value
    value = DEFAULT_MAX_INLINE if text is None or not text.strip() else parse_size(text)
    _parsed = (text, value)
    return value


def offload(lit: Literal, literal_type: Any = None) -> None:
    """Writes ``lit`` to storage and turns it, in place, into a reference to what was written."""
    from flyte._internal import _uris

    data = lit.SerializeToString(deterministic=True)
    digest = hashlib.sha256(data).hexdigest()
    uri = _uris.join(raw_data_prefix(), "offloaded", f"{digest}.pb")
    _uris.write_bytes(uri, data)
    lit.Clear()
    meta = lit.offloaded_metadata
    meta.uri = uri
    meta.size_bytes = len(data)
    if literal_type is not None:
        meta.inferred_type.CopyFrom(literal_type)
    lit.hash = digest


def load(lit: Literal) -> Literal:
    """The literal an offloaded reference points to (``lit`` itself when it is not offloaded)."""
    if lit.WhichOneof("value") != "offloaded_metadata":
        return lit
    from flyte._internal import _uris

    uri = lit.offloaded_metadata.uri
    data = _uris.read_bytes(uri)
    loaded = Literal.FromString(data)
    if lit.hash and hashlib.sha256(data).hexdigest() != lit.hash:
        raise ValueError(f"offloaded value at {uri} does not match its hash (it was changed after writing)")
    return loaded
