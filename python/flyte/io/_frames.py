"""Data frames (pandas, pyarrow, polars) as parquet: shared by ``File`` and ``DataFrame``.

The libraries are imported only when a frame is converted, not with ``flyte.io``.
"""

from __future__ import annotations

import io
from typing import Any


def to_arrow_table(df: Any) -> Any:
    """A pyarrow Table from a pandas DataFrame, a pyarrow Table, or anything with a
    ``to_arrow()`` (a polars DataFrame, a ``flyte.io.DataFrame``)."""
    import pyarrow as pa

    if isinstance(df, pa.Table):
        return df
    if type(df).__module__.split(".", 1)[0] == "pandas":
        return pa.Table.from_pandas(df)
    if callable(getattr(df, "to_arrow", None)):
        return df.to_arrow()
    raise TypeError(f"cannot store a {type(df).__qualname__} as parquet (expected pandas, pyarrow or polars)")


def to_parquet_bytes(df: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(to_arrow_table(df), buf)
    return buf.getvalue()
