"""Storage operations on URIs: transfer, bytes, listing and streaming file objects.

Local paths and ``file://`` URIs use the filesystem directly; remote URIs go through obstore.
Large files stream in chunks; directories transfer with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import threading
import uuid
from collections.abc import Awaitable, Coroutine, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import obstore

from flyte._storage._local import atomic_write_bytes as _atomic_write_bytes
from flyte._storage._store import (
    ObjectNotFoundError,
    StorageError,
    _store,
    debug,
    execution_attributes,
    map_error,
)
from flyte._storage._uri import RemoteLocation, is_remote, join, parse_remote, to_local_path

if TYPE_CHECKING:
    from obstore import ReadableFile, WritableFile
    from obstore.store import ObjectStore

T = TypeVar("T")

CONCURRENCY = 32  # files in flight for directory transfers
CHUNK = 8 << 20  # reader buffer and open_writer part size
STREAM_CHUNK = 1 << 20  # download stream chunk written to disk at a time
MIN_PART = 5 << 20  # S3's minimum multipart part size
MAX_PARTS = 9000  # stay under S3's 10,000-part limit
# Parts in flight per file. Peak memory of one large upload is about part size * (this + 2),
# i.e. ~20-40 MB; it is the bound that keeps a 100 GB file from costing more than that.
PART_CONCURRENCY = 2


def part_size(nbytes: int) -> int:
    """The multipart part size for an upload of ``nbytes``: 5 MB, larger for very big files."""
    need = -(-nbytes // MAX_PARTS)
    return max(MIN_PART, -(-need // (1 << 20)) << 20)


def _local_uri_form(prefix: str, path: Path) -> str:
    """Render a local path in the same form as ``prefix`` (plain path or file:// URI)."""
    if prefix.startswith("file://"):
        return path.absolute().as_uri()
    return str(path)


async def _bounded(aws: Iterable[Awaitable[T]], limit: int = CONCURRENCY) -> list[T]:
    """Run awaitables with at most ``limit`` at a time; the first error cancels the rest."""
    sem = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[T]) -> T:
        async with sem:
            return await aw

    tasks = [asyncio.ensure_future(one(aw)) for aw in aws]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for t in tasks:
            t.cancel()
        raise
    for t in pending:
        t.cancel()
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            raise t.exception()  # type: ignore[misc]
    return [t.result() for t in tasks]


def _copy_local(src: Path, dest: Path, recursive: bool, uri: str) -> None:
    if not src.exists():
        raise ObjectNotFoundError(f"no object at {uri}" if not recursive else f"no directory at {uri}", uri)
    if src.is_dir():
        if not recursive:
            raise StorageError(f"{uri} is a directory; pass recursive=True", uri)
        if dest.resolve().is_relative_to(src.resolve()):
            raise StorageError(f"cannot copy the directory {src} into itself ({dest})", uri)
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return
    if dest.is_dir():
        dest = dest / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() == dest.resolve():
        return
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- remote primitives


async def _upload_file(
    store: ObjectStore,
    key: str,
    src: Path,
    uri: str,
    chunk_size: int | None = None,
    max_concurrency: int | None = None,
) -> None:
    part = max(chunk_size, MIN_PART) if chunk_size else part_size(src.stat().st_size)
    try:
        await obstore.put_async(
            store,
            key,
            src,
            chunk_size=part,
            max_concurrency=max_concurrency or PART_CONCURRENCY,
            attributes=execution_attributes(),
        )
    except Exception as exc:
        raise map_error(exc, uri) from exc


async def _download_file(store: ObjectStore, key: str, dest: Path, uri: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        result = await obstore.get_async(store, key)
        with open(tmp, "wb") as f:
            async for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
                f.write(chunk)
        os.replace(tmp, dest)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise map_error(exc, uri) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


async def _list_keys(loc: RemoteLocation, uri: str) -> list[str]:
    store = _store(loc)
    prefix = loc.key.rstrip("/")
    keys: list[str] = []
    try:
        async for batch in obstore.list(store, prefix=prefix or None, chunk_size=1000):
            keys.extend(meta["path"] for meta in batch)
    except Exception as exc:
        raise map_error(exc, uri) from exc
    keys.sort()
    return keys


async def _refine_not_found(loc: RemoteLocation, uri: str, err: StorageError) -> StorageError:
    """A HEAD 404 carries no body: list once to tell a missing bucket from a missing object."""
    if not isinstance(err, ObjectNotFoundError):
        return err
    try:
        await _list_keys(RemoteLocation(loc.scheme, loc.bucket, loc.account, "", loc.base), uri)
    except StorageError as other:
        if not isinstance(other, ObjectNotFoundError):
            return other
    return err


async def _head(loc: RemoteLocation, uri: str) -> dict[str, Any]:
    store = _store(loc)
    try:
        return dict(await obstore.head_async(store, loc.key))
    except Exception as exc:
        raise await _refine_not_found(loc, uri, map_error(exc, uri)) from exc


# ---------------------------------------------------------------- public async API


async def put(
    local: str | os.PathLike[str],
    uri: str,
    *,
    recursive: bool = False,
    chunk_size: int | None = None,
    max_concurrency: int | None = None,
    batch_size: int | None = None,
) -> str:
    """Upload a local file (or, with ``recursive``, a whole directory) to ``uri``; returns ``uri``.

    For object stores: ``chunk_size`` is the multipart part size (at least S3's 5 MiB),
    ``max_concurrency`` the parts of one file in flight, ``batch_size`` the files in flight."""
    src = Path(local)
    debug(f"put {src} -> {uri}")
    if not is_remote(uri):
        await asyncio.to_thread(_copy_local, src, to_local_path(uri), recursive, str(local))
        return uri
    loc = parse_remote(uri)
    store = _store(loc)
    if src.is_dir():
        if not recursive:
            raise StorageError(f"{src} is a directory; pass recursive=True", uri)
        files = sorted(p for p in src.rglob("*") if p.is_file())
        await _bounded(
            (
                _upload_file(
                    store,
                    join(loc.key, p.relative_to(src).as_posix()),
                    p,
                    join(uri, p.relative_to(src).as_posix()),
                    chunk_size,
                    max_concurrency,
                )
                for p in files
            ),
            batch_size or CONCURRENCY,
        )
        return uri
    if not src.is_file():
        raise ObjectNotFoundError(f"no file at {src}", str(src))
    await _upload_file(store, loc.key, src, uri, chunk_size, max_concurrency)
    return uri


async def get(uri: str, local: str | os.PathLike[str], *, recursive: bool = False) -> str:
    """Download ``uri`` (or, with ``recursive``, every object under it) to ``local``; returns ``local``."""
    dest = Path(local)
    debug(f"get {uri} -> {dest}")
    if not is_remote(uri):
        await asyncio.to_thread(_copy_local, to_local_path(uri), dest, recursive, uri)
        return str(local)
    loc = parse_remote(uri)
    store = _store(loc)
    if recursive:
        keys = await _list_keys(loc, uri)
        if not keys:
            raise ObjectNotFoundError(f"no objects under {uri}", uri)
        prefix = loc.key.rstrip("/")
        start = len(prefix) + 1 if prefix else 0
        dest.mkdir(parents=True, exist_ok=True)
        await _bounded(_download_file(store, k, dest / k[start:], loc.uri(k)) for k in keys)
        return str(local)
    if dest.is_dir():
        dest = dest / loc.key.rsplit("/", 1)[-1]
    await _download_file(store, loc.key, dest, uri)
    return str(local)


async def put_bytes(data: bytes, uri: str) -> str:
    debug(f"put {len(data)} bytes -> {uri}")
    if not is_remote(uri):
        await asyncio.to_thread(_atomic_write_bytes, to_local_path(uri), data)
        return uri
    loc = parse_remote(uri)
    try:
        await obstore.put_async(_store(loc), loc.key, data, attributes=execution_attributes())
    except Exception as exc:
        raise map_error(exc, uri) from exc
    return uri


async def get_bytes(uri: str) -> bytes:
    if not is_remote(uri):
        path = to_local_path(uri)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(f"no object at {uri}", uri) from exc
    loc = parse_remote(uri)
    try:
        result = await obstore.get_async(_store(loc), loc.key)
        return (await result.bytes_async()).to_bytes()
    except Exception as exc:
        raise map_error(exc, uri) from exc


async def exists(uri: str) -> bool:
    """True if an object, or any object under ``uri`` as a prefix (a directory), exists."""
    if not is_remote(uri):
        return to_local_path(uri).exists()
    loc = parse_remote(uri)
    try:
        await _head(loc, uri)
        return True
    except ObjectNotFoundError:
        pass
    store = _store(loc)
    prefix = loc.key.rstrip("/")
    try:
        async for batch in obstore.list(store, prefix=prefix or None, chunk_size=1):
            if batch:
                return True
    except Exception as exc:
        raise map_error(exc, uri) from exc
    return False


async def size(uri: str) -> int:
    if not is_remote(uri):
        path = to_local_path(uri)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object at {uri}", uri)
        return path.stat().st_size
    return int((await _head(parse_remote(uri), uri))["size"])


async def list_files(prefix: str) -> list[str]:
    """Full URIs (or paths, for a plain-path prefix) of every object under ``prefix``, sorted."""
    if not is_remote(prefix):
        root = to_local_path(prefix)

        def walk() -> list[str]:
            if root.is_file():
                return [_local_uri_form(prefix, root)]
            return sorted(_local_uri_form(prefix, p) for p in root.rglob("*") if p.is_file())

        return await asyncio.to_thread(walk)
    loc = parse_remote(prefix)
    return [loc.uri(k) for k in await _list_keys(loc, prefix)]


# ---------------------------------------------------------------- streaming file objects


class _RemoteRaw(io.RawIOBase):
    def __init__(self, inner: ReadableFile, uri: str) -> None:
        self._inner = inner
        self._uri = uri

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view))
        except Exception as exc:
            raise map_error(exc, self._uri) from exc
        n = len(data)
        view[:n] = memoryview(data)
        return n

    def readall(self) -> bytes:
        try:
            return self._inner.read().to_bytes()
        except Exception as exc:
            raise map_error(exc, self._uri) from exc

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def open_reader(uri: str, chunk_size: int = CHUNK) -> io.BufferedIOBase:
    """A streaming binary reader: read()/read(n)/readline/iteration (lines), seek; a context manager."""
    if not is_remote(uri):
        try:
            return cast(io.BufferedReader, open(to_local_path(uri), "rb", buffering=chunk_size))  # noqa: SIM115
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectNotFoundError(f"no object at {uri}", uri) from exc
    loc = parse_remote(uri)
    try:
        inner = obstore.open_reader(_store(loc), loc.key, buffer_size=chunk_size)
    except Exception as exc:
        err = map_error(exc, uri)
        if isinstance(err, ObjectNotFoundError):
            err = run_sync(_refine_not_found(loc, uri, err))
        raise err from exc
    # The obstore reader buffers chunk_size; the BufferedReader on top only adds line reading.
    return io.BufferedReader(_RemoteRaw(inner, uri), buffer_size=io.DEFAULT_BUFFER_SIZE)


class _Writer(io.BufferedIOBase):
    """A write-only stream that commits on close() and aborts on an exception in its ``with`` block."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def writable(self) -> bool:
        return True

    def _commit(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            try:
                self._commit()
            finally:
                super().close()

    def abort(self) -> None:
        """Discard everything written; nothing appears at the URI."""
        if not self.closed:
            try:
                self._abort()
            finally:
                super().close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _LocalWriter(_Writer):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._dest = to_local_path(uri)
        self._dest.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self._dest.with_name(f".{self._dest.name}.{uuid.uuid4().hex}.part")
        self._file = open(self._tmp, "wb")  # noqa: SIM115

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def _commit(self) -> None:
        self._file.close()
        os.replace(self._tmp, self._dest)

    def _abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class _RemoteWriter(_Writer):
    def __init__(self, uri: str, inner: WritableFile) -> None:
        super().__init__(uri)
        self._inner = inner

    def write(self, data: Any) -> int:
        try:
            return self._inner.write(data)
        except Exception as exc:
            raise map_error(exc, self.uri) from exc

    def flush(self) -> None:
        # Deliberately a no-op: flushing a multipart upload early would create undersized parts.
        pass

    def _commit(self) -> None:
        try:
            self._inner.close()
        except Exception as exc:
            raise map_error(exc, self.uri) from exc

    def _abort(self) -> None:
        err = RuntimeError("aborted")
        try:
            # obstore's writer aborts the (multipart) upload when its block exits with an error.
            self._inner.__exit__(type(err), err, None)
        except Exception:
            pass


def open_writer(
    uri: str, *, chunk_size: int | None = None, max_concurrency: int | None = None
) -> io.BufferedIOBase:
    """A streaming binary writer: multipart upload for remote stores, atomic rename for local files.

    The object appears on close(); if the ``with`` block raises (or abort() is called), nothing does.
    ``chunk_size`` (part size, at least 5 MiB) and ``max_concurrency`` (parts in flight) tune the
    multipart upload.
    """
    debug(f"write -> {uri}")
    if not is_remote(uri):
        return _LocalWriter(uri)
    loc = parse_remote(uri)
    try:
        inner = obstore.open_writer(
            _store(loc),
            loc.key,
            attributes=execution_attributes(),
            buffer_size=max(chunk_size, MIN_PART) if chunk_size else CHUNK,
            max_concurrency=max_concurrency or PART_CONCURRENCY,
        )
    except Exception as exc:
        raise map_error(exc, uri) from exc
    return _RemoteWriter(uri, inner)


# ---------------------------------------------------------------- sync twins

_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_thread, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or _loop_thread is None or not _loop_thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="flyte-storage", daemon=True)
            thread.start()
            _loop, _loop_thread, _loop_pid = loop, thread, os.getpid()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a storage coroutine to completion from sync code, whether or not a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    loop = _background_loop()
    if threading.current_thread() is _loop_thread:
        coro.close()
        raise RuntimeError("flyte storage sync functions cannot be called from the storage thread")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def put_sync(
    local: str | os.PathLike[str],
    uri: str,
    *,
    recursive: bool = False,
    chunk_size: int | None = None,
    max_concurrency: int | None = None,
    batch_size: int | None = None,
) -> str:
    return run_sync(
        put(
            local,
            uri,
            recursive=recursive,
            chunk_size=chunk_size,
            max_concurrency=max_concurrency,
            batch_size=batch_size,
        )
    )


def get_sync(uri: str, local: str | os.PathLike[str], *, recursive: bool = False) -> str:
    return run_sync(get(uri, local, recursive=recursive))


def put_bytes_sync(data: bytes, uri: str) -> str:
    return run_sync(put_bytes(data, uri))


def get_bytes_sync(uri: str) -> bytes:
    return run_sync(get_bytes(uri))


def exists_sync(uri: str) -> bool:
    return run_sync(exists(uri))


def size_sync(uri: str) -> int:
    return run_sync(size(uri))


def list_files_sync(prefix: str) -> list[str]:
    return run_sync(list_files(prefix))
