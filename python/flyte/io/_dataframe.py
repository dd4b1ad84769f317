"""``flyte.io.DataFrame``: a reference to a parquet dataset in storage.

pandas, pyarrow and polars are imported only when a data frame is actually written or read.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from flyte import _storage
from flyte.io._file import is_uri, local_path_of, new_remote_uri, sha256_of_bytes, uploading
from flyte.io._frames import to_parquet_bytes

T = TypeVar("T")

PARQUET = "parquet"
#: File name of the single part a dataset is written as (``<uri>/00000.parquet``).
PART_NAME = "00000.parquet"


def _read_parquet(uri: str) -> Any:
    """A pyarrow Table from a parquet file, or from every ``*.parquet`` file under a directory prefix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    local = local_path_of(uri)
    if local is not None:
        import os

        if os.path.isdir(local):
            parts = sorted(
                os.path.join(dp, fn) for dp, _, fns in os.walk(local) for fn in fns if fn.endswith(".parquet")
            )
            if not parts:
                raise ValueError(f"no parquet files under {uri}")
            return pa.concat_tables([pq.read_table(p) for p in parts])
        return pq.read_table(local)
    if uri.endswith(".parquet"):
        return pq.read_table(io.BytesIO(_storage.get_bytes_sync(uri)))
    items = sorted(x for x in _storage.list_files_sync(uri) if str(x).endswith(".parquet"))
    if not items:
        raise ValueError(f"no parquet files under {uri}")
    tables = []
    for item in items:
        item_uri = item if is_uri(item) else _storage.join(uri, item)
        tables.append(pq.read_table(io.BytesIO(_storage.get_bytes_sync(item_uri))))
    return pa.concat_tables(tables)


class DataFrame(BaseModel):
    """A data frame, by reference: a parquet dataset at ``uri`` (a directory of parts, or one file).

    ``DataFrame.wrap_df(df)`` (or ``from_df``) wraps a pandas / pyarrow / polars frame, stored when
    the value leaves its task; ``await DataFrame.from_local(df)`` stores it at once. Reading is as
    in the reference SDK: ``await ref.open(pd.DataFrame).all()`` (``all_sync()`` in sync code);
    ``to_pandas()``, ``to_arrow()`` and ``to_polars()`` are shortcuts.
    """

    uri: str | None = None
    #: ``"parquet"`` (also what an empty format means).
    format: str = ""
    #: Content hash of the written parquet bytes, when known.
    hash: str | None = None

    _raw_df: Any = PrivateAttr(default=None)
    _dataframe_type: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        # A bare path or URI (JSON inputs, dataclass fields given as strings) names the dataset.
        if isinstance(data, (str, os.PathLike)):
            return {"uri": os.fspath(data)}
        return data

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def wrap_df(cls, val: Any = None, uri: str | None = None) -> DataFrame:
        """Wraps a pandas / pyarrow / polars frame; it is written (to ``uri``, else a fresh
        location) when the value leaves the task, so wrapping costs nothing until then."""
        instance = cls(uri=uri)
        instance._raw_df = val
        return instance

    @classmethod
    def from_df(cls, val: Any = None, uri: str | None = None) -> DataFrame:
        """Another name for :meth:`wrap_df`."""
        return cls.wrap_df(val, uri)

    @classmethod
    def from_local_sync(
        cls,
        df: Any,
        columns: Any = None,
        remote_destination: str | None = None,
        hash_method: Any = None,
    ) -> DataFrame:
        """Writes ``df`` as parquet now (to ``remote_destination``, else a fresh location), only
        the ``columns`` named when given, and returns the stored DataFrame. ``hash_method`` (a
        string, or a :class:`flyte.io.HashFunction` fed the parquet bytes) sets its identity."""
        return _storage.run_sync(cls.from_local(df, columns, remote_destination, hash_method))

    @classmethod
    async def from_local(
        cls,
        df: Any,
        columns: Any = None,
        remote_destination: str | None = None,
        hash_method: Any = None,
    ) -> DataFrame:
        """``await DataFrame.from_local(df)``: ``from_local_sync`` for async code."""
        import asyncio

        if columns is not None:
            df = _select(df, columns)
        data = await asyncio.to_thread(to_parquet_bytes, df)
        base = remote_destination or new_remote_uri()
        await _storage.put_bytes(data, _storage.join(base, PART_NAME))
        return cls(uri=base, format=PARQUET, hash=_identity(data, hash_method))

    @classmethod
    def from_existing_remote(cls, remote_path: str, format: str | None = None, **kwargs: Any) -> DataFrame:
        """A reference to a dataset already in storage; ``hash=`` may give its identity."""
        unknown = set(kwargs) - {"hash"}
        if unknown:
            raise TypeError(
                f"DataFrame.from_existing_remote: unexpected argument(s) {', '.join(sorted(unknown))}"
            )
        return cls(uri=remote_path, format=format or PARQUET, hash=kwargs.get("hash"))

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # Inside a dataclass or model a wrapped frame must be written, as for a task output.
        return handler(self.stored() if uploading(info) else self)

    def stored(self) -> DataFrame:
        """This value with its frame written: itself when it has a ``uri`` and no wrapped frame."""
        if self._raw_df is None:
            if self.uri is None:
                raise ValueError("a DataFrame needs a uri or a wrapped frame (DataFrame.wrap_df(df))")
            return self
        return DataFrame.from_local_sync(self._raw_df, remote_destination=self.uri)

    # -- reading ----------------------------------------------------------------------------

    @property
    def val(self) -> Any:
        """The wrapped frame, when this value was made from one (``wrap_df``), else None."""
        return self._raw_df

    @classmethod
    def columns(cls) -> dict[str, type]:
        """The columns a typed DataFrame subclass declares (none for DataFrame itself)."""
        return {}

    @classmethod
    def column_names(cls) -> list[str]:
        return list(cls.columns())

    def open(self, dataframe_type: type[T]) -> DataFrame:
        """Chooses the frame type ``all()`` / ``iter()`` read as (pandas, pyarrow, polars)."""
        _reader(dataframe_type)  # fail here, not at read, for a type nobody can read into
        self._dataframe_type = dataframe_type
        return self

    def all_sync(self) -> Any:
        """The whole dataset as the type chosen with ``open``."""
        if self._dataframe_type is None:
            raise ValueError("choose the frame type first: df.open(pandas.DataFrame).all_sync()")
        if self._raw_df is not None and isinstance(self._raw_df, self._dataframe_type):
            return self._raw_df
        return _convert(self.stored().to_arrow(), self._dataframe_type)

    async def all(self) -> Any:
        """``await df.open(pd.DataFrame).all()``: ``all_sync`` for async code."""
        import asyncio

        return await asyncio.to_thread(self.all_sync)

    async def iter(self) -> AsyncIterator[Any]:
        """An async iterator over the dataset, one frame (of the ``open`` type) per stored part."""
        if self._dataframe_type is None:
            raise ValueError("choose the frame type first: df.open(pandas.DataFrame).iter()")
        return _iterate(self.stored(), self._dataframe_type)

    def to_arrow(self) -> Any:
        if self._raw_df is not None:
            return _convert_any_to_arrow(self._raw_df)
        if self.format not in (PARQUET, ""):
            raise ValueError(f"DataFrame at {self.uri}: cannot read format {self.format!r}")
        assert self.uri is not None
        return _read_parquet(self.uri)

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.to_arrow())


def _identity(data: bytes, hash_method: Any) -> str:
    if hash_method is None:
        return sha256_of_bytes(data)
    if isinstance(hash_method, str):
        return hash_method
    update, result = getattr(hash_method, "update", None), getattr(hash_method, "result", None)
    if callable(update) and callable(result):
        update(data)
        return str(result())
    raise TypeError(f"hash_method must be a str or a flyte.io.HashFunction, got {type(hash_method).__name__}")


def _select(df: Any, columns: Any) -> Any:
    names = list(columns) if not isinstance(columns, dict) else list(columns)
    module = type(df).__module__.split(".", 1)[0]
    if module == "pyarrow":
        return df.select(names)
    return df[names]


def _reader(dataframe_type: Any) -> str:
    module = getattr(dataframe_type, "__module__", "").split(".", 1)[0]
    if module not in ("pandas", "pyarrow", "polars"):
        raise TypeError(f"cannot open a DataFrame as {dataframe_type!r} (use pandas, pyarrow or polars)")
    return module


def _convert(table: Any, dataframe_type: Any) -> Any:
    module = _reader(dataframe_type)
    if module == "pandas":
        return table.to_pandas()
    if module == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table


def _convert_any_to_arrow(df: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(df, pa.Table):
        return df
    return pq.read_table(io.BytesIO(to_parquet_bytes(df)))


async def _iterate(ref: DataFrame, dataframe_type: Any) -> AsyncIterator[Any]:
    import asyncio

    assert ref.uri is not None
    for part in await asyncio.to_thread(_parts, ref.uri):
        yield _convert(await asyncio.to_thread(_read_parquet, part), dataframe_type)


def _parts(uri: str) -> list[str]:
    """The parquet files of a dataset, in order (the URI itself when it is one file)."""
    if uri.endswith(".parquet"):
        return [uri]
    local = local_path_of(uri)
    if local is not None:
        if os.path.isfile(local):
            return [uri]
        return sorted(
            os.path.join(dp, fn) for dp, _, fns in os.walk(local) for fn in fns if fn.endswith(".parquet")
        )
    items = sorted(x for x in _storage.list_files_sync(uri) if str(x).endswith(".parquet"))
    return [item if is_uri(item) else _storage.join(uri, item) for item in items]


def frame_modules_loaded() -> list[str]:
    """Which of the data frame libraries this process has imported so far."""
    return [m for m in ("pandas", "pyarrow", "polars") if m in sys.modules]
