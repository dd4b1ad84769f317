"""One storage module for every backend: a URI names where data lives.

Plain paths and ``file://`` URIs use the local filesystem; ``s3://``, ``gs://`` and ``abfs://``
(``az://``) use obstore, with credentials from the standard environment variables
(``AWS_*``, ``GOOGLE_*``, ``AZURE_STORAGE_*``) and, for S3, ``~/.aws/credentials``.
Every failure is a :class:`StorageError` (an ``OSError``) whose message names the URI and the cause.
"""

from typing import Any

from flyte._storage._store import (
    BucketNotFoundError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    store_for,
)
from flyte._storage._uri import is_remote, join, to_local_path

# Deferred imports: the operations import the object-store client (~100 ms), loaded on first
# use instead of with `import flyte`.
_OPS = frozenset(
    [
        "exists",
        "exists_sync",
        "get",
        "get_bytes",
        "get_bytes_sync",
        "get_sync",
        "list_files",
        "list_files_sync",
        "open_reader",
        "open_writer",
        "put",
        "put_bytes",
        "put_bytes_sync",
        "put_sync",
        "run_sync",
        "size",
        "size_sync",
    ]
)


def __getattr__(name: str) -> Any:
    if name in _OPS:
        from flyte._storage import _ops

        return getattr(_ops, name)
    raise AttributeError(f"module 'flyte._storage' has no attribute {name!r}")


__all__ = [
    "BucketNotFoundError",
    "ObjectNotFoundError",
    "StorageAccessDeniedError",
    "StorageError",
    "is_remote",
    "join",
    "store_for",
    "to_local_path",
    *sorted(_OPS),
]
