"""Type transformers: File / Dir as blob literals, data frames as structured-dataset literals.

File, Dir and flyte.io.DataFrame are registered when ``flyte.io`` is imported (their annotations
cannot exist before that). pandas / pyarrow / polars frames are registered by
``register_frame_transformers`` for whichever of those libraries is already imported; it never
imports them itself. The type engine calls it (through ``LAZY_TYPE_NAMES``) the first time it meets
one of those classes.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from flyteidl2.core import types_pb2
from flyteidl2.core.literals_pb2 import Literal
from flyteidl2.core.types_pb2 import LiteralType

from flyte._types import LiteralEngine, LiteralTransformer
from flyte.io._dataframe import PARQUET, DataFrame, _read_parquet
from flyte.io._dir import Dir
from flyte.io._file import File

#: Literal.metadata key that keeps a File/Dir name that differs from the last segment of its URI.
NAME_METADATA_KEY = "flyte.io/name"

#: ``module.QualName`` of the frame classes handled here -> the library module that defines them.
LAZY_TYPE_NAMES: dict[str, str] = {
    "pandas.DataFrame": "pandas",
    "pandas.core.frame.DataFrame": "pandas",
    "pyarrow.lib.Table": "pyarrow",
    "polars.dataframe.frame.DataFrame": "polars",
}


def _blob_type(dimensionality: int, format: str = "") -> LiteralType:
    lt = LiteralType()
    lt.blob.format = format
    lt.blob.dimensionality = dimensionality  # type: ignore[assignment,unused-ignore]
    return lt


def _read_blob(lit: Literal, dimensionality: int, what: str) -> tuple[str, str, str | None, str | None]:
    if lit.WhichOneof("value") != "scalar" or lit.scalar.WhichOneof("value") != "blob":
        kind = (
            lit.scalar.WhichOneof("value") if lit.WhichOneof("value") == "scalar" else lit.WhichOneof("value")
        )
        raise TypeError(f"expected a blob literal for {what}, got {kind or 'an empty'} literal")
    blob = lit.scalar.blob
    if blob.metadata.type.dimensionality != dimensionality:
        want = "single file" if dimensionality == types_pb2.BlobType.SINGLE else "multipart (directory)"
        raise TypeError(f"{what} needs a {want} blob, got {blob.uri!r} with another dimensionality")
    name = lit.metadata.get(NAME_METADATA_KEY) or None
    return blob.uri, blob.metadata.type.format, (lit.hash or None), name


def _write_blob(
    uri: str, dimensionality: int, format: str, hash: str | None, name: str | None, out: Literal
) -> None:
    blob = out.scalar.blob
    blob.uri = uri
    blob.metadata.type.format = format
    blob.metadata.type.dimensionality = dimensionality  # type: ignore[assignment,unused-ignore]
    if hash:
        out.hash = hash
    if name and name != uri.rstrip("/").rsplit("/", 1)[-1]:
        out.metadata[NAME_METADATA_KEY] = name


class BlobTransformer(LiteralTransformer[Any]):
    """File (a single-file blob) or Dir (a multipart blob): a local path is stored on the way out."""

    def __init__(self, python_type: type[File] | type[Dir], dimensionality: int) -> None:
        super().__init__(python_type.__name__, python_type)
        self.dimensionality = dimensionality

    def get_literal_type(self, tp: Any) -> LiteralType:
        return _blob_type(self.dimensionality)

    def to_literal(self, value: Any, tp: Any) -> Literal:
        if not isinstance(value, self.python_type):
            raise TypeError(f"not a flyte.io.{self.name}")
        # A local path leaves the task that made it: stored so that other actions can read it.
        ref = value.stored()
        out = Literal()
        _write_blob(ref.path, self.dimensionality, ref.format, ref.hash, ref.name, out)
        return out

    def to_python(self, lit: Literal, tp: Any) -> Any:
        uri, fmt, digest, name = _read_blob(lit, self.dimensionality, self.name)
        return self.python_type(path=uri, name=name, hash=digest, format=fmt)


def _dataset_type() -> LiteralType:
    lt = LiteralType()
    lt.structured_dataset_type.format = PARQUET
    return lt


def _write_dataset(ref: DataFrame, out: Literal) -> None:
    ref = ref.stored()
    assert ref.uri is not None
    sd = out.scalar.structured_dataset
    sd.uri = ref.uri
    sd.metadata.structured_dataset_type.format = ref.format or PARQUET
    if ref.hash:
        out.hash = ref.hash


def _read_dataset(lit: Literal, what: str) -> DataFrame:
    if lit.WhichOneof("value") != "scalar" or lit.scalar.WhichOneof("value") != "structured_dataset":
        kind = (
            lit.scalar.WhichOneof("value") if lit.WhichOneof("value") == "scalar" else lit.WhichOneof("value")
        )
        raise TypeError(f"expected a structured dataset literal for {what}, got {kind or 'an empty'} literal")
    sd = lit.scalar.structured_dataset
    return DataFrame(
        uri=sd.uri, format=sd.metadata.structured_dataset_type.format or PARQUET, hash=lit.hash or None
    )


class DataFrameTransformer(LiteralTransformer[DataFrame]):
    """flyte.io.DataFrame: the reference itself travels; nothing is read or written."""

    def __init__(self) -> None:
        super().__init__("DataFrame", DataFrame)

    def get_literal_type(self, tp: Any) -> LiteralType:
        return _dataset_type()

    def to_literal(self, value: DataFrame, tp: Any) -> Literal:
        if not isinstance(value, DataFrame):
            raise TypeError("not a flyte.io.DataFrame")
        out = Literal()
        _write_dataset(value, out)
        return out

    def to_python(self, lit: Literal, tp: Any) -> DataFrame:
        return _read_dataset(lit, "DataFrame")


class FrameTransformer(LiteralTransformer[Any]):
    """A library's data frame class (pandas, pyarrow, polars): written as parquet, read back whole."""

    def __init__(self, name: str, python_type: type, reader: str) -> None:
        super().__init__(name, python_type)
        self.reader = reader

    def get_literal_type(self, tp: Any) -> LiteralType:
        return _dataset_type()

    def to_literal(self, value: Any, tp: Any) -> Literal:
        if not isinstance(value, self.python_type):
            raise TypeError(f"not a {self.name}")
        out = Literal()
        _write_dataset(DataFrame.from_local_sync(value), out)
        return out

    def to_python(self, lit: Literal, tp: Any) -> Any:
        ref = _read_dataset(lit, self.name)
        assert ref.uri is not None
        table = _read_parquet(ref.uri)
        if self.reader == "pandas":
            return table.to_pandas()
        if self.reader == "polars":
            import polars as pl

            return pl.from_arrow(table)
        return table


FILE_TRANSFORMER = BlobTransformer(File, types_pb2.BlobType.SINGLE)
DIR_TRANSFORMER = BlobTransformer(Dir, types_pb2.BlobType.MULTIPART)
DATAFRAME_TRANSFORMER = DataFrameTransformer()

_frames_lock = threading.Lock()
_frames: dict[str, FrameTransformer] = {}


def register_frame_transformers() -> None:
    """Registers transformers for the frame libraries already imported (pandas, pyarrow, polars)."""
    with _frames_lock:
        candidates: list[tuple[str, str, str]] = [
            ("pandas", "DataFrame", "pandas.DataFrame"),
            ("pyarrow", "Table", "pyarrow.Table"),
            ("polars", "DataFrame", "polars.DataFrame"),
        ]
        for module, attr, label in candidates:
            if module in _frames:
                continue
            mod = sys.modules.get(module)
            cls = getattr(mod, attr, None) if mod is not None else None
            if not isinstance(cls, type):
                continue
            t = FrameTransformer(label, cls, module)
            if not LiteralEngine.has_transformer(cls):  # a user's own transformer stays
                LiteralEngine.register(t)
            _frames[module] = t


def register_all() -> None:
    """Registers File, Dir, flyte.io.DataFrame and the frame transformers (idempotent)."""
    for t in (FILE_TRANSFORMER, DIR_TRANSFORMER, DATAFRAME_TRANSFORMER):
        LiteralEngine.register(t, override=True)
    register_frame_transformers()
