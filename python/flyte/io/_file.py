"""``flyte.io.File``: a reference to one file in storage (or on local disk), passed by reference."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, Union, runtime_checkable
from urllib.parse import unquote, urlparse

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from flyte import _storage
from flyte._internal._raw_data import new_remote_uri, stable_remote_uri
from flyte._types._engine import UPLOAD_CONTEXT
from flyte.io._frames import to_parquet_bytes

R = TypeVar("R")

_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------------
# helpers shared by File, Dir and DataFrame


def uploading(info: SerializationInfo) -> bool:
    """Whether a pydantic dump is the SDK's own, which must turn local paths into stored data."""
    context = info.context
    return isinstance(context, dict) and bool(context.get(UPLOAD_CONTEXT))


@runtime_checkable
class HashMethod(Protocol):
    """Something that hashes data fed to it piece by piece (``update``), then says the digest
    (``result``); ``reset`` starts over."""

    def update(self, data: Any) -> None: ...

    def result(self) -> str: ...

    def reset(self) -> None: ...


class HashFunction:
    """A :class:`HashMethod` made from a function of the data: ``update(data)`` hashes ``data``
    with it and ``result()`` says the last value. Files are given to it whole."""

    def __init__(self, fn: Callable[[Any], str]) -> None:
        self._fn = fn
        self._value: str | None = None

    @classmethod
    def from_fn(cls, fn: Callable[[Any], str]) -> HashFunction:
        return cls(fn)

    def update(self, data: Any) -> None:
        self._value = self._fn(data)

    def result(self) -> str:
        if self._value is None:
            raise ValueError("HashFunction.result(): update() was never called")
        return self._value

    def reset(self) -> None:
        self._value = None


#: What identifies uploaded content instead of its SHA-256: a fixed string, a HashMethod that
#: reads the bytes, or (this SDK's shorthand) a function of the local path.
HashSpec = Union[str, HashMethod, Callable[[str], str]]


def custom_hash(hash_method: HashSpec | None, local: str) -> str | None:
    if hash_method is None:
        return None
    if isinstance(hash_method, str):
        return hash_method
    if isinstance(hash_method, HashFunction):
        hash_method.update(Path(local).read_bytes())
        value: Any = hash_method.result()
    elif isinstance(hash_method, HashMethod):
        hash_method.reset()
        with open(local, "rb") as f:
            while chunk := f.read(_CHUNK):
                hash_method.update(chunk)
        value = hash_method.result()
    elif callable(hash_method):
        value = hash_method(local)
    else:
        raise TypeError(
            "hash_method must be a str, a flyte.io.HashFunction (or another object with update/result), "
            f"or a function of the local path; got {type(hash_method).__name__}"
        )
    if not isinstance(value, str) or not value:
        raise TypeError(f"hash_method must produce a non-empty str, got {value!r}")
    return value


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
    hash_method: HashSpec | None,
    transfer: Transfer,
) -> tuple[str, str]:
    """Stores ``local`` at ``uri``; returns where it went and its identity (``hash_method``'s, or
    ``hasher``'s, which reads the data a second time: alongside the upload, not after it)."""
    return _storage.run_sync(upload_hashed(local, uri, hasher, hash_method, transfer))


async def upload_hashed(
    local: str,
    uri: str,
    hasher: Callable[[str], str],
    hash_method: HashSpec | None,
    transfer: Transfer,
) -> tuple[str, str]:
    """``upload_hashed_sync`` for async code."""
    import asyncio

    if hash_method is not None:
        # The caller's hash first: one that fails (or gives nothing) uploads nothing.
        digest = await asyncio.to_thread(custom_hash, hash_method, local)
        assert digest is not None
        return await _storage.put(local, uri, **transfer.options()) or uri, digest
    computed, stored = await asyncio.gather(
        asyncio.to_thread(hasher, local), _storage.put(local, uri, **transfer.options())
    )
    return stored or uri, computed


@dataclass(frozen=True)
class Transfer:
    """How an upload to an object store goes: ``chunk_size`` bytes per multipart part,
    ``max_concurrency`` parts of one file in flight, ``batch_size`` files of a directory in
    flight (None: the storage layer's defaults). Copies to local paths ignore all three: there
    are no parts."""

    chunk_size: int | None = None
    max_concurrency: int | None = None
    batch_size: int | None = None
    recursive: bool = False

    def __post_init__(self) -> None:
        for name in ("chunk_size", "max_concurrency", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def options(self) -> dict[str, Any]:
        return {
            "recursive": self.recursive,
            "chunk_size": self.chunk_size,
            "max_concurrency": self.max_concurrency,
            "batch_size": self.batch_size,
        }


async def _awaited(value: Awaitable[R]) -> R:
    return await value


class Reference(BaseModel):
    """What File and Dir share: a ``path`` (a storage URI or a local path) and its identity."""

    path: str
    name: str | None = None
    #: Content hash (``sha256`` hex) when known; identical content gives identical cache keys.
    hash: str | None = None
    #: Blob format, e.g. ``"parquet"``, ``"csv"``; empty when unspecified.
    format: str = ""

    _local: str | None = PrivateAttr(default=None)
    _lazy_uploader: Callable[[], Awaitable[tuple[str | None, str]]] | None = PrivateAttr(default=None)

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

    @property
    def lazy_uploader(self) -> Callable[[], Awaitable[tuple[str | None, str]]] | None:
        """An async function that stores the data when the value leaves its task and returns
        ``(hash, uri)``: set it to defer an upload until (and unless) the value is passed on."""
        return self._lazy_uploader

    @lazy_uploader.setter
    def lazy_uploader(self, uploader: Callable[[], Awaitable[tuple[str | None, str]]] | None) -> None:
        if uploader is not None and not callable(uploader):
            raise TypeError(f"lazy_uploader must be an async function, got {type(uploader).__name__}")
        self._lazy_uploader = uploader

    def stored(self) -> Any:
        """This value with a storage URI as its path: itself, or a stored copy of a local path."""
        if self._lazy_uploader is not None:
            digest, uri = _storage.run_sync(_awaited(self._lazy_uploader()))
            copy = self.model_copy(update={"path": uri, "hash": digest or self.hash})
            copy._lazy_uploader = None
            return copy
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
    content is read where it is needed (``open``, ``download``). A local path is uploaded when the
    value leaves the task that made it. As in the reference SDK, the I/O methods are coroutines
    with ``*_sync`` twins for sync code.
    """

    #: Hashes what is written through ``open("wb")``; the digest becomes ``hash`` on close.
    hash_method: SkipJsonSchema[Any] = Field(default=None, exclude=True, repr=False)

    @classmethod
    def _local_exists(cls, path: str) -> bool:
        return os.path.isfile(path)

    @classmethod
    def _store_local(cls, path: str) -> File:
        return cls.from_local_sync(path)

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def from_existing_remote(cls, remote_path: str, file_cache_key: str | None = None) -> File:
        """A reference to a file already in storage (nothing is copied).

        ``file_cache_key`` identifies the content for cache keys and action names; without it the
        URI does (the content is not read).
        """
        return cls(path=remote_path, hash=file_cache_key)

    @classmethod
    def new_remote(cls, file_name: str | None = None, hash_method: HashMethod | None = None) -> File:
        """A File at a fresh location in storage, to be written with ``open("wb")``; with a
        ``hash_method`` the written bytes are hashed on the way."""
        return cls(path=new_remote_uri(file_name), name=file_name, hash_method=hash_method)

    @classmethod
    def named_remote(cls, name: str) -> File:
        """A File whose location follows from ``name`` and the current action (its raw-data
        prefix), so a retried attempt writes to the same place instead of a new one."""
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ValueError(f"File.named_remote: {name!r} must be a plain file name such as 'data.csv'")
        return cls(path=stable_remote_uri(name), name=name)

    @classmethod
    def from_local_sync(
        cls,
        local_path: str | os.PathLike[str],
        remote_destination: str | None = None,
        hash_method: HashSpec | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
    ) -> File:
        """Uploads the local file and returns a File for the stored copy.

        The content's SHA-256 identifies it (cache keys, action names) unless ``hash_method``
        gives the identity: a string, a :class:`HashFunction` (or any object with
        ``update``/``result``) fed the bytes, or a function of the local path. ``chunk_size``
        and ``max_concurrency`` tune a multipart upload to an object store.
        """
        local, name = _checked_file(local_path)
        transfer = Transfer(chunk_size, max_concurrency)
        uri, digest = upload_hashed_sync(
            local, remote_destination or new_remote_uri(name), sha256_of_file, hash_method, transfer
        )
        return cls(path=uri, name=name, hash=digest)

    @classmethod
    async def from_local(
        cls,
        local_path: str | os.PathLike[str],
        remote_destination: str | None = None,
        hash_method: HashSpec | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
    ) -> File:
        """Uploads a local file: ``await File.from_local(p)`` (``from_local_sync`` in sync code)."""
        local, name = _checked_file(local_path)
        transfer = Transfer(chunk_size, max_concurrency)
        uri, digest = await upload_hashed(
            local, remote_destination or new_remote_uri(name), sha256_of_file, hash_method, transfer
        )
        return cls(path=uri, name=name, hash=digest)

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

    def exists_sync(self) -> bool:
        local = self.local_path
        if local is not None:
            return os.path.isfile(local)
        return bool(_storage.exists_sync(self.path))

    async def exists(self) -> bool:
        """Whether the file is there (``exists_sync`` in sync code)."""
        local = self.local_path
        if local is not None:
            return os.path.isfile(local)
        return bool(await _storage.exists(self.path))

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

    async def download(self, local_path: str | os.PathLike[str] | None = None) -> str:
        """``await f.download()``: a local path with the content (``download_sync`` in sync code)."""
        local = self.local_path
        if local is not None or (local_path is None and self._local is not None):
            import asyncio

            return await asyncio.to_thread(self.download_sync, local_path)

        target = self._download_target(local_path)
        target = await _storage.get(self.path, target) or target
        if local_path is None:
            self._local = target
        return target

    def open_sync(
        self,
        mode: str = "rb",
        block_size: int | None = None,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        compression: str | None = None,
        **kwargs: Any,
    ) -> IO[Any]:
        """A streaming file object, as a context manager: ``"rb"``/``"r"``/``"rt"`` read,
        ``"wb"``/``"w"``/``"wt"`` write straight to ``path`` (the object appears on close).

        ``block_size`` is the read-ahead buffer; ``compression="gzip"`` (or ``"infer"``: from
        the name) (de)compresses on the way; ``encoding`` applies to text modes. ``cache_type``
        ``"readahead"`` (buffered) and ``"none"`` (unbuffered reads) are supported."""
        return self._opened(mode, block_size, cache_type, cache_options, compression, kwargs)

    def open(
        self,
        mode: str = "rb",
        block_size: int | None = None,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        compression: str | None = None,
        **kwargs: Any,
    ) -> Opening:
        """``async with f.open("rb") as fh: data = await fh.read()`` as in the reference SDK;
        ``with f.open("rb") as fh:`` works too, giving ``open_sync``'s file object."""
        return Opening(lambda: self._opened(mode, block_size, cache_type, cache_options, compression, kwargs))

    def _opened(
        self,
        mode: str,
        block_size: int | None,
        cache_type: str,
        cache_options: dict[str, Any] | None,
        compression: str | None,
        options: dict[str, Any],
    ) -> IO[Any]:
        encoding = options.pop("encoding", None)
        chunk_size = options.pop("chunk_size", None)
        max_concurrency = options.pop("max_concurrency", None)
        if options:
            raise TypeError(f"File.open: unexpected option(s) {', '.join(sorted(options))}")
        text = mode in ("r", "rt", "w", "wt")
        binary = mode in ("rb", "wb")
        if not (text or binary):
            raise ValueError(f"File.open: mode must be 'rb', 'r', 'rt', 'wb', 'w' or 'wt', got {mode!r}")
        if cache_type not in ("readahead", "none"):
            raise ValueError(f"File.open: cache_type must be 'readahead' or 'none', got {cache_type!r}")
        if cache_options:
            raise ValueError("File.open: cache_options apply to fsspec caches, which this SDK does not use")
        writing = mode.startswith("w")
        raw = (
            self._raw_writer(chunk_size, max_concurrency)
            if writing
            else self._raw_reader(block_size, cache_type)
        )
        if compression == "infer":
            compression = "gzip" if (self.name or self.path).endswith(".gz") else None
        if compression is not None:
            if compression != "gzip":
                raise ValueError(
                    f"File.open: compression must be 'gzip', 'infer' or None, got {compression!r}"
                )
            import gzip

            raw = gzip.GzipFile(fileobj=raw, mode="wb" if writing else "rb")  # type: ignore[assignment]
        if text:
            return io.TextIOWrapper(raw, encoding=encoding or "utf-8")  # type: ignore[arg-type]
        return raw

    def _raw_reader(self, block_size: int | None, cache_type: str) -> IO[bytes]:
        local = self.local_path
        if local is not None:
            buffering = 0 if cache_type == "none" else (block_size or -1)
            return open(local, "rb", buffering=buffering)
        if block_size is not None:
            return _storage.open_reader(self.path, block_size)  # type: ignore[no-any-return]
        return _storage.open_reader(self.path)  # type: ignore[no-any-return]

    def _raw_writer(self, chunk_size: int | None, max_concurrency: int | None) -> IO[bytes]:
        self.hash = None  # the content changes
        local = self.local_path
        if local is not None:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            writer: Any = open(local, "wb")
        else:
            self._local = None
            writer = _storage.open_writer(self.path, chunk_size=chunk_size, max_concurrency=max_concurrency)
        if self.hash_method is None:
            return writer  # type: ignore[no-any-return]
        return _HashingWriter(writer, self)  # type: ignore[return-value]

    def __fspath__(self) -> str:
        return self.download_sync()

    def __str__(self) -> str:
        return self.path


class _HashingWriter(io.RawIOBase):
    """Feeds what is written to the file's ``hash_method``; the digest becomes its ``hash``."""

    def __init__(self, inner: IO[bytes], file: File) -> None:
        self._inner = inner
        self._file = file
        method = file.hash_method
        if isinstance(method, HashFunction):
            self._whole: bytearray | None = bytearray()
        else:
            self._whole = None
            method.reset()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = self._inner.write(data)
        if self._whole is not None:
            self._whole += bytes(data)
        else:
            self._file.hash_method.update(bytes(data))
        return n

    def close(self) -> None:
        if self.closed:
            return
        self._inner.close()
        method = self._file.hash_method
        if self._whole is not None:
            method.update(bytes(self._whole))
        self._file.hash = method.result()
        super().close()

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None and hasattr(self._inner, "__exit__"):
            # Aborting: the inner writer discards the partial object; no hash for it.
            self._inner.__exit__(*exc)
            super().close()
            return
        self.close()


class Opening:
    """What ``File.open`` returns: a context manager for ``with`` (a plain file object) and for
    ``async with`` (the same file, with awaitable ``read``/``write``/``close``)."""

    def __init__(self, make: Callable[[], IO[Any]]) -> None:
        self._make = make
        self._file: IO[Any] | None = None

    def __enter__(self) -> IO[Any]:
        self._file = self._make()
        return self._file.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        assert self._file is not None
        return self._file.__exit__(*exc)

    async def __aenter__(self) -> AsyncFile:
        import asyncio

        self._file = await asyncio.to_thread(self._make)
        return AsyncFile(self._file)

    async def __aexit__(self, *exc: Any) -> Any:
        import asyncio

        assert self._file is not None
        return await asyncio.to_thread(self._file.__exit__, *exc)


class AsyncFile:
    """A file object for async code: I/O runs off the event loop."""

    def __init__(self, inner: IO[Any]) -> None:
        self._inner = inner

    async def read(self, size: int = -1) -> Any:
        import asyncio

        return await asyncio.to_thread(self._inner.read, size)

    async def readline(self) -> Any:
        import asyncio

        return await asyncio.to_thread(self._inner.readline)

    async def write(self, data: Any) -> int:
        import asyncio

        return await asyncio.to_thread(self._inner.write, data)

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self._inner.close)

    def __aiter__(self) -> AsyncFile:
        return self

    async def __anext__(self) -> Any:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line
