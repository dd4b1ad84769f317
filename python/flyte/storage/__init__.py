"""Reading and writing data wherever it lives: local paths, ``file://``, ``s3://``, ``gs://``,
``abfs://`` (``az://``). The functions are coroutines (``exists_sync`` is the blocking twin);
settings for the stores come from ``flyte.init(storage=S3(...))`` and the environment.

Inside a task, a path without a location (``put(f)`` with no ``to_path``) goes under the run's
raw data location, as the task's own ``File`` and ``Dir`` outputs do.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from flyte._storage._config import ABFS, GCS, S3, Storage
from flyte._storage._store import settings as _configured
from flyte._storage._uri import is_remote as _is_remote
from flyte._storage._uri import join as _join

# Deferred imports: the operations load the object-store client (~100 ms) on first use, not
# with `import flyte.storage`.

__all__ = [
    "ABFS",
    "GCS",
    "S3",
    "Storage",
    "exists",
    "exists_sync",
    "get",
    "get_configured_fsspec_kwargs",
    "get_random_local_directory",
    "get_random_local_path",
    "get_stream",
    "is_remote",
    "join",
    "open",
    "put",
    "put_stream",
]

_STREAM_CHUNK = 10 * 1024 * 1024


def _no_fsspec_options(kwargs: dict[str, Any], where: str) -> None:
    if kwargs:
        raise TypeError(
            f"flyte.storage.{where}() got {sorted(kwargs)}: filesystem options are not taken per call here; "
            "configure the store with flyte.init(storage=flyte.storage.S3(...)) (or GCS/ABFS)"
        )


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an object store (``s3://``...) rather than this machine."""
    return _is_remote(os.fspath(path))


def join(*paths: str) -> str:
    """Joins a location and path parts with ``/`` (no duplicate slashes)."""
    if not paths:
        raise ValueError("join needs at least one path")
    return _join(paths[0], *paths[1:])


def get_random_local_directory() -> Path:
    """A new, empty directory under the system's temporary directory."""
    return Path(tempfile.mkdtemp(prefix="flyte-"))


def get_random_local_path(file_path_or_file_name: str | Path | None = None) -> Path:
    """A path in a new temporary directory (not created), ending in the given file's name, or a
    random name."""
    name = Path(file_path_or_file_name).name if file_path_or_file_name else uuid.uuid4().hex
    return get_random_local_directory() / name


def _random_remote_path(name: str | None) -> str:
    """Where data without a destination goes: a new location under the current action's raw
    data prefix (outside tasks: the configured or default one), as new File and Dir data does."""
    from flyte._internal import _raw_data

    return _raw_data.new_remote_uri(name)


async def exists(path: str, **kwargs: Any) -> bool:
    """Whether a file or object is at ``path``."""
    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "exists")
    return await _ops.exists(path)


def exists_sync(path: str, **kwargs: Any) -> bool:
    """``exists``, blocking."""
    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "exists_sync")
    return _ops.exists_sync(path)


async def get(
    from_path: str, to_path: str | Path | None = None, recursive: bool = False, **kwargs: Any
) -> str:
    """Downloads ``from_path`` (with ``recursive``, everything under it) to ``to_path`` (default:
    a new temporary location); returns where it went."""
    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "get")
    if to_path is None:
        to_path = get_random_local_directory() if recursive else get_random_local_path(from_path.rstrip("/"))
    return await _ops.get(from_path, to_path, recursive=recursive)


async def put(
    from_path: str | Path,
    to_path: str | None = None,
    recursive: bool = False,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    max_concurrency: int | None = None,
    **kwargs: Any,
) -> str:
    """Uploads a local file (with ``recursive``, a directory) to ``to_path`` (default: a new
    location under the run's raw data); returns the location. ``batch_size`` files and
    ``max_concurrency`` parts of ``chunk_size`` bytes are sent at once."""
    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "put")
    if to_path is None:
        to_path = _random_remote_path(Path(from_path).name)
    return await _ops.put(
        from_path,
        to_path,
        recursive=recursive,
        chunk_size=chunk_size,
        max_concurrency=max_concurrency,
        batch_size=batch_size,
    )


async def get_stream(path: str, chunk_size: int = _STREAM_CHUNK, **kwargs: Any) -> AsyncIterator[bytes]:
    """The bytes at ``path``, ``chunk_size`` at a time."""
    import asyncio

    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "get_stream")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    reader = await asyncio.to_thread(_ops.open_reader, path)
    try:
        while chunk := await asyncio.to_thread(reader.read, chunk_size):
            yield chunk
    finally:
        reader.close()


async def put_stream(
    data_iterable: AsyncIterable[bytes] | Iterable[bytes] | bytes,
    *,
    name: str | None = None,
    to_path: str | None = None,
    size_hint: int | None = None,
    chunk_size: int | None = None,
    max_concurrency: int | None = None,
    **kwargs: Any,
) -> str:
    """Writes bytes (one ``bytes``, or an iterable or async iterable of chunks) to ``to_path``
    (default: a new location named ``name`` under the run's raw data); returns the location.
    ``size_hint`` (the expected total, in bytes) sizes the upload's parts when ``chunk_size`` is
    not given, so a very large stream stays within the store's part count."""
    import asyncio

    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "put_stream")
    if size_hint is not None and size_hint < 0:
        raise ValueError(f"size_hint must not be negative, got {size_hint}")
    if chunk_size is None and size_hint:
        chunk_size = _ops.part_size(size_hint)
    if to_path is None:
        to_path = _random_remote_path(name)
    writer = await asyncio.to_thread(
        _ops.open_writer, to_path, chunk_size=chunk_size, max_concurrency=max_concurrency
    )
    try:
        if isinstance(data_iterable, (bytes, bytearray, memoryview)):
            await asyncio.to_thread(writer.write, bytes(data_iterable))
        elif hasattr(data_iterable, "__aiter__"):
            async for chunk in data_iterable:  # type: ignore[union-attr]
                await asyncio.to_thread(writer.write, chunk)
        else:
            for chunk in data_iterable:  # type: ignore[union-attr]
                await asyncio.to_thread(writer.write, chunk)
    except BaseException:
        abort = getattr(writer, "abort", None)
        if abort is not None:
            abort()
        raise
    await asyncio.to_thread(writer.close)
    return to_path


async def open(path: str, mode: str = "rb", **kwargs: Any) -> io.BufferedIOBase:
    """A binary file object on ``path``: ``"rb"`` reads, ``"wb"`` writes (the object appears
    when it is closed; nothing does if the ``with`` block fails)."""
    import asyncio

    from flyte._storage import _ops

    _no_fsspec_options(kwargs, "open")
    if mode == "rb":
        return await asyncio.to_thread(_ops.open_reader, path)
    if mode == "wb":
        return await asyncio.to_thread(_ops.open_writer, path)
    raise ValueError(f"open(mode={mode!r}): the modes are 'rb' and 'wb'")


def get_configured_fsspec_kwargs(protocol: str | None = None, anonymous: bool = False) -> dict[str, Any]:
    """The store options of ``flyte.init(storage=...)`` for ``protocol`` (``"s3"``, ``"gs"``,
    ``"abfs"``), as obstore (and its fsspec adapter) names them."""
    configured = _configured()
    kinds: dict[str | None, type[Storage]] = {
        "s3": S3,
        "gs": GCS,
        "gcs": GCS,
        "abfs": ABFS,
        "az": ABFS,
        None: Storage,
    }
    if protocol not in kinds:
        raise ValueError(f"protocol {protocol!r}: expected one of 's3', 'gs', 'abfs' or None")
    wanted = kinds[protocol]
    if configured is None or not isinstance(configured, wanted):
        configured = wanted()
    return configured.get_fsspec_kwargs(anonymous=anonymous)
