"""Reading and writing the small protocol files (inputs, outputs, errors) at a URI.

A thin layer over the storage module: local paths and ``file://`` are read and written
directly (these files are small and on the hot path of every action), anything else goes
through ``flyte._storage``. Local writes are atomic (temp file + rename) because a reader
may be polling for the file.
"""

from __future__ import annotations

from pathlib import Path

from flyte._storage._local import atomic_write_bytes
from flyte._storage._ops import exists_sync, get_bytes_sync, put_bytes_sync
from flyte._storage._uri import is_remote, join, to_local_path

__all__ = ["exists", "file_uri", "join", "read_bytes", "to_path", "write_bytes"]


def to_path(uri: str) -> Path:
    return to_local_path(uri)


def read_bytes(uri: str) -> bytes:
    if is_remote(uri):
        return get_bytes_sync(uri)
    return to_local_path(uri).read_bytes()


def exists(uri: str) -> bool:
    if is_remote(uri):
        return exists_sync(uri)
    return to_local_path(uri).exists()


def write_bytes(uri: str, data: bytes) -> None:
    if is_remote(uri):
        put_bytes_sync(data, uri)
    else:
        atomic_write_bytes(to_local_path(uri), data)


def file_uri(path: Path) -> str:
    return path.resolve().as_uri()
