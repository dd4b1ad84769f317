"""Offloaded data: files, directories and data frames passed between tasks by reference.

``flyte.io.File`` and ``flyte.io.Dir`` are references to data in storage (``file://`` under the
data dir by default); ``flyte.io.DataFrame`` is a reference to a parquet dataset. pandas, pyarrow
and ``pd.DataFrame`` / ``pa.Table`` annotations are handled without this package importing them.
"""

from __future__ import annotations

from flyte.io._dataframe import PARQUET, DataFrame
from flyte.io._dir import Dir, EmptyDir
from flyte.io._file import File, HashFunction, HashMethod, new_remote_uri
from flyte.io._transformers import register_all as _register_all

_register_all()

__all__ = ["PARQUET", "DataFrame", "Dir", "EmptyDir", "File", "HashFunction", "HashMethod", "new_remote_uri"]
