"""``flyte.io.DataFrame``: a reference to a parquet dataset in storage.

pandas, pyarrow and polars are imported only when a data frame is actually written or read.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, model_validator

from flyte import _storage
from flyte.io._file import is_uri, local_path_of, new_remote_uri, sha256_of_bytes
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

    ``DataFrame.from_df(df)`` stores a pandas / pyarrow / polars frame; ``to_pandas()``, ``to_arrow()``
    or ``open(pd.DataFrame).all()`` read it back wherever it is needed.
    """

    uri: str
    format: str = PARQUET
    #: Content hash of the written parquet bytes, when known.
    hash: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        # A bare path or URI (JSON inputs, dataclass fields given as strings) names the dataset.
        if isinstance(data, (str, os.PathLike)):
            return {"uri": os.fspath(data)}
        return data

    @classmethod
    def from_df(cls, df: Any, uri: str | None = None) -> DataFrame:
        """Writes ``df`` (pandas, pyarrow or polars) as parquet to ``uri`` (default: a fresh location)."""
        data = to_parquet_bytes(df)
        base = uri or new_remote_uri()
        _storage.put_bytes_sync(data, _storage.join(base, PART_NAME))
        return cls(uri=base, hash=sha256_of_bytes(data))

    @classmethod
    def from_existing_remote(cls, uri: str, format: str = PARQUET) -> DataFrame:
        return cls(uri=uri, format=format)

    def to_arrow(self) -> Any:
        if self.format not in (PARQUET, ""):
            raise ValueError(f"DataFrame at {self.uri}: cannot read format {self.format!r}")
        return _read_parquet(self.uri)

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    def open(self, as_type: type[T]) -> _Opened[T]:
        """``df.open(pd.DataFrame).all()``: read the whole dataset as ``as_type``."""
        return _Opened(self, as_type)


class _Opened(Generic[T]):
    def __init__(self, ref: DataFrame, as_type: type[T]) -> None:
        self.ref = ref
        self.as_type = as_type

    def all(self) -> T:
        mod = self.as_type.__module__.split(".", 1)[0]
        if mod == "pandas":
            return self.ref.to_pandas()  # type: ignore[no-any-return]
        if mod == "pyarrow":
            return self.ref.to_arrow()  # type: ignore[no-any-return]
        if mod == "polars":
            return self.ref.to_polars()  # type: ignore[no-any-return]
        raise TypeError(f"cannot open a DataFrame as {self.as_type!r} (use pandas, pyarrow or polars)")


def frame_modules_loaded() -> list[str]:
    """Which of the data frame libraries this process has imported so far."""
    return [m for m in ("pandas", "pyarrow", "polars") if m in sys.modules]
