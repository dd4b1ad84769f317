"""``flyte.io.File``: a reference to one file in storage (or on local disk), passed by reference."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlparse

from pydantic import (
    BaseModel,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from flyte import _storage
from flyte._aio import running_loop
from flyte._context import current
from flyte._internal._raw_data import new_remote_uri
from flyte._types._engine import UPLOAD_CONTEXT
from flyte.io._frames import to_parquet_bytes

R = TypeVar("R")

_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------------
# helpers shared by File, Dir and DataFrame

#: What a custom cache key / hash function of ``from_local`` may be.
HashMethod = str | Callable[[str], str]


def uploading(info: SerializationInfo) -> bool:
    """Whether a pydantic dump is the SDK's own, which must turn local paths into stored data."""
    context = info.context
    return isinstance(context, dict) and bool(context.get(UPLOAD_CONTEXT))


def custom_hash(hash_method: HashMethod | None, local: str) -> str | None:
    if hash_method is None:
        return None
    if isinstance(hash_method, str):
        return hash_method
    if callable(hash_method):
        value = hash_method(local)
        if not isinstance(value, str) or not value:
            raise TypeError(f"hash_method must return a non-empty str, got {value!r}")
        return value
    raise TypeError(
        f"hash_method must be a str or a function of the local path, got {type(hash_method).__name__}"
    )


def local_path_of(path: str) -> str | None:
    """The local filesystem path behind ``path`` (a plain path or a ``file://`` URI), else None."""
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if "://" in path:
        return None
    return path


def is_uri(path: str) -> bool:
    """Whether ``path`` is already a storage URI (``file://`` included) rather than a plain local path."""
    return "://" in path


def sha256_of_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wants_sync() -> bool:
    """Whether a dual (sync-or-async) API call should do its work now instead of returning a coroutine.

    Inside a sync task (even one running on the event loop's thread), or anywhere no event loop runs,
    nothing could await the result, so the work is done synchronously.
    """
    c = current()
    if c is not None and c.task is not None and not c.task.is_async:
        return True
    return running_loop() is None


def dual(sync_fn: Callable[[], R], async_fn: Callable[[], Awaitable[R]]) -> Any:
    """``sync_fn()`` when the caller cannot await (see ``wants_sync``), else the coroutine ``async_fn()``."""
    if wants_sync():
        return sync_fn()
    return async_fn()


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _checked_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    local = os.fspath(path)
    if not os.path.isfile(local):
        raise FileNotFoundError(f"File.from_local: {local!r} is not a file")
    return local, os.path.basename(local)


def upload_hashed_sync(
    local: str,
    uri: str,
    hasher: Callable[[str], str],
    hash_method: HashMethod | None,
    recursive: bool = False,
) -> tuple[str, str]:
    """Stores ``local`` at ``uri``; returns where it went and its identity (``hash_method``'s, or
    ``hasher``'s, which reads the data a second time: alongside the upload, not after it)."""
    digest = custom_hash(hash_method, local)
    if digest is not None:
        return _storage.put_sync(local, uri, recursive=recursive) or uri, digest
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flyte-hash") as pool:
        hashing = pool.submit(hasher, local)
        stored = _storage.put_sync(local, uri, recursive=recursive) or uri
        return stored, hashing.result()


async def upload_hashed(
    local: str,
    uri: str,
    hasher: Callable[[str], str],
    hash_method: HashMethod | None,
    recursive: bool = False,
) -> tuple[str, str]:
    """``upload_hashed_sync`` for async code."""
    import asyncio

    digest = custom_hash(hash_method, local)
    if digest is not None:
        return await _storage.put(local, uri, recursive=recursive) or uri, digest
    computed, stored = await asyncio.gather(
        asyncio.to_thread(hasher, local), _storage.put(local, uri, recursive=recursive)
    )
    return stored or uri, computed


class Reference(BaseModel):
    """What File and Dir share: a ``path`` (a storage URI or a local path) and its identity."""

    path: str
    name: str | None = None
    #: Content hash (``sha256`` hex) when known; identical content gives identical cache keys.
    hash: str | None = None
    #: Blob format, e.g. ``"parquet"``, ``"csv"``; empty when unspecified.
    format: str = ""

    _local: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, data: Any) -> Any:
        # A bare path or URI (JSON inputs, dataclass fields given as strings) names the data.
        if isinstance(data, (str, os.PathLike)):
            return {"path": os.fspath(data)}
        return data

    def model_post_init(self, context: Any, /) -> None:
        if self.name is None:
            self.name = _basename(self.path) or None

    @classmethod
    def _local_exists(cls, path: str) -> bool:
        raise NotImplementedError

    @classmethod
    def _store_local(cls, path: str) -> Any:
        raise NotImplementedError

    def stored(self) -> Any:
        """This value with a storage URI as its path: itself, or a stored copy of a local path."""
        if is_uri(self.path):
            return self
        if not self._local_exists(self.path):
            raise ValueError(f"local {type(self).__name__.lower()} {self.path!r} does not exist")
        copy = self._store_local(self.path)
        copy.name = self.name or copy.name
        copy.format = self.format
        if self.hash:
            copy.hash = self.hash
        return copy

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # Inside a dataclass or model the value travels inside its parent's: a local path must be
        # stored first, as it would be for an input or output of its own.
        return handler(self.stored() if uploading(info) else self)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Reference)
        return (self.path, self.name, self.hash, self.format) == (
            other.path,
            other.name,
            other.hash,
            other.format,
        )


# --------------------------------------------------------------------------------------------------
# File


class File(Reference):
    """A file, by reference: ``path`` is a storage URI (``file://``, ``s3://``, ...) or a local path.

    Tasks take and return ``File`` values; only the reference travels between actions, and the
    content is read where it is needed (``read``, ``open``, ``download``). A local path is uploaded
    when the value leaves the task that made it.
    """

    @classmethod
    def _local_exists(cls, path: str) -> bool:
        return os.path.isfile(path)

    @classmethod
    def _store_local(cls, path: str) -> File:
        return cls.from_local_sync(path)

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def from_existing_remote(
        cls, uri: str, name: str | None = None, format: str = "", file_cache_key: str | None = None
    ) -> File:
        """A reference to a file already in storage (nothing is copied).

        ``file_cache_key`` identifies the content for cache keys and action names; without it the
        URI does (the content is not read).
        """
        return cls(path=uri, name=name, format=format, hash=file_cache_key)

    @classmethod
    def new_remote(cls, name: str | None = None, format: str = "") -> File:
        """A File at a fresh location in storage, to be written with ``open("wb")``."""
        return cls(path=new_remote_uri(name), name=name, format=format)

    @classmethod
    def from_local_sync(
        cls,
        path: str | os.PathLike[str],
        remote_destination: str | None = None,
        format: str = "",
        hash_method: HashMethod | None = None,
    ) -> File:
        """Uploads the local file at ``path`` and returns a File for the stored copy.

        The content's SHA-256 identifies it (cache keys, action names) unless ``hash_method``
        gives the identity instead: a string, or a function of the local path returning one.
        """
        local, name = _checked_file(path)
        uri, digest = upload_hashed_sync(
            local, remote_destination or new_remote_uri(name), sha256_of_file, hash_method
        )
        return cls(path=uri, name=name, hash=digest, format=format)

    @classmethod
    async def _from_local_async(
        cls,
        path: str | os.PathLike[str],
        remote_destination: str | None = None,
        format: str = "",
        hash_method: HashMethod | None = None,
    ) -> File:
        local, name = _checked_file(path)
        uri, digest = await upload_hashed(
            local, remote_destination or new_remote_uri(name), sha256_of_file, hash_method
        )
        return cls(path=uri, name=name, hash=digest, format=format)

    @classmethod
    def from_local(
        cls,
        path: str | os.PathLike[str],
        remote_destination: str | None = None,
        format: str = "",
        hash_method: HashMethod | None = None,
    ) -> Any:
        """Uploads a local file: ``await File.from_local(p)`` in async code.

        Where nothing can await (a sync task, or no running event loop) it uploads right away and
        returns the File itself, so ``return File.from_local("x.txt")`` works in a sync task.
        """
        return dual(
            lambda: cls.from_local_sync(path, remote_destination, format, hash_method),
            lambda: cls._from_local_async(path, remote_destination, format, hash_method),
        )

    @classmethod
    def from_bytes(cls, data: bytes, name: str | None = None, format: str = "") -> File:
        """Stores ``data`` as a new file and returns it."""
        uri = new_remote_uri(name or "data.bin")
        _storage.put_bytes_sync(bytes(data), uri)
        return cls(path=uri, name=name, hash=sha256_of_bytes(data), format=format)

    @classmethod
    def from_string(cls, text: str, name: str | None = None, encoding: str = "utf-8") -> File:
        """Stores ``text`` as a new file and returns it (synchronously, usable in any task)."""
        return cls.from_bytes(text.encode(encoding), name or "data.txt")

    @classmethod
    def from_dataframe(cls, df: Any, name: str | None = None) -> File:
        """Stores a pandas/pyarrow/polars data frame as one parquet file and returns it."""
        return cls.from_bytes(to_parquet_bytes(df), name or "data.parquet", format="parquet")

    # -- reading ----------------------------------------------------------------------------

    @property
    def local_path(self) -> str | None:
        """The file's path on this machine when it is already here (no download), else None."""
        if self._local is not None and os.path.exists(self._local):
            return self._local
        return local_path_of(self.path)

    def exists(self) -> bool:
        local = self.local_path
        if local is not None:
            return os.path.isfile(local)
        return bool(_storage.exists_sync(self.path))

    def read_bytes(self) -> bytes:
        """The whole content."""
        local = self.local_path
        if local is not None:
            return Path(local).read_bytes()

        return bytes(_storage.get_bytes_sync(self.path))

    async def read_bytes_async(self) -> bytes:
        local = self.local_path
        if local is not None:
            return Path(local).read_bytes()

        return bytes(await _storage.get_bytes(self.path))

    def read(self, encoding: str = "utf-8") -> str:
        """The whole content as text."""
        return self.read_bytes().decode(encoding)

    def _download_target(self, local_path: str | os.PathLike[str] | None) -> str:
        if local_path is not None:
            target = os.fspath(local_path)
            if os.path.isdir(target):
                target = os.path.join(target, self.name or _basename(self.path) or "file")
        else:
            target = os.path.join(tempfile.mkdtemp(prefix="flyte-file-"), self.name or "file")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        return target

    def download_sync(self, local_path: str | os.PathLike[str] | None = None) -> str:
        """A local path with the content: the file itself when it is already local, else a copy."""
        local = self.local_path
        if local_path is None and local is not None:
            return local
        target = self._download_target(local_path)
        if local is not None:
            import shutil

            shutil.copyfile(local, target)
        else:
            target = _storage.get_sync(self.path, target) or target
        if local_path is None:
            self._local = target
        return target

    async def _download_async(self, local_path: str | os.PathLike[str] | None = None) -> str:
        local = self.local_path
        if local is not None or (local_path is None and self._local is not None):
            import asyncio

            return await asyncio.to_thread(self.download_sync, local_path)

        target = self._download_target(local_path)
        target = await _storage.get(self.path, target) or target
        if local_path is None:
            self._local = target
        return target

    def download(self, local_path: str | os.PathLike[str] | None = None) -> Any:
        """``await f.download()`` in async code; returns the local path directly where nothing can await."""
        return dual(lambda: self.download_sync(local_path), lambda: self._download_async(local_path))

    def open(self, mode: str = "rb", encoding: str | None = None) -> IO[Any]:
        """A streaming file object: ``"rb"``/``"r"`` read, ``"wb"``/``"w"`` write straight to ``path``."""
        if mode not in ("rb", "r", "wb", "w"):
            raise ValueError(f"File.open: mode must be 'rb', 'r', 'wb' or 'w', got {mode!r}")
        local = self.local_path
        if local is not None:
            if "w" in mode:
                Path(local).parent.mkdir(parents=True, exist_ok=True)
                self.hash = None  # the content changes
            return open(local, mode, encoding=encoding if "b" not in mode else None)

        if "w" in mode:
            self.hash = None
            self._local = None
            raw: Any = _storage.open_writer(self.path)
        else:
            raw = _storage.open_reader(self.path)
        if "b" in mode:
            return raw  # type: ignore[no-any-return]
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8")

    def __fspath__(self) -> str:
        return self.download_sync()

    def __str__(self) -> str:
        return self.path
