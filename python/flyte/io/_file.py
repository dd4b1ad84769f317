"""``flyte.io.File``: a reference to one file in storage (or on local disk), passed by reference."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, PrivateAttr

R = TypeVar("R")

#: Set by the backend per attempt: where an action's new data goes (a URI prefix, used as is).
RAW_DATA_PREFIX_ENV = "_FLYTE_RAW_DATA_PREFIX"
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------------
# helpers shared by File, Dir and DataFrame


def raw_data_prefix() -> str:
    """The URI prefix new data of the current action (or of this process, outside tasks) goes under."""
    env = os.environ.get(RAW_DATA_PREFIX_ENV)
    if env:
        return env.rstrip("/")
    from flyte._context import ctx
    from flyte._initialize import data_dir

    raw = data_dir().expanduser().resolve() / "raw"
    tc = ctx()
    base = raw / tc.action.run_name / tc.action.name if tc is not None else raw / "_"
    return base.as_uri()


def new_remote_uri(name: str | None = None) -> str:
    """A fresh, unique URI under the current raw data prefix, ending in ``name`` if given."""
    uri = f"{raw_data_prefix()}/{uuid.uuid4().hex}"
    if name:
        uri += "/" + name.strip("/")
    return uri


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
    from flyte._aio import running_loop
    from flyte._context import current

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


# --------------------------------------------------------------------------------------------------
# File


class File(BaseModel):
    """A file, by reference: ``path`` is a storage URI (``file://``, ``s3://``, ...) or a local path.

    Tasks take and return ``File`` values; only the reference travels between actions, and the
    content is read where it is needed (``read``, ``open``, ``download``). A local path is uploaded
    when the value leaves the task that made it.
    """

    path: str
    name: str | None = None
    #: Content hash (``sha256`` hex) when known; identical content gives identical cache keys.
    hash: str | None = None
    #: Blob format, e.g. ``"parquet"``, ``"csv"``; empty when unspecified.
    format: str = ""

    _local: str | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        if self.name is None:
            self.name = _basename(self.path) or None

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def from_existing_remote(cls, uri: str, name: str | None = None, format: str = "") -> File:
        """A reference to a file already in storage (nothing is copied)."""
        return cls(path=uri, name=name, format=format)

    @classmethod
    def new_remote(cls, name: str | None = None, format: str = "") -> File:
        """A File at a fresh location in storage, to be written with ``open("wb")``."""
        return cls(path=new_remote_uri(name), name=name, format=format)

    @classmethod
    def from_local_sync(
        cls, path: str | os.PathLike[str], remote_destination: str | None = None, format: str = ""
    ) -> File:
        """Uploads the local file at ``path`` and returns a File for the stored copy."""
        from flyte import _storage

        local = os.fspath(path)
        if not os.path.isfile(local):
            raise FileNotFoundError(f"File.from_local: {local!r} is not a file")
        name = os.path.basename(local)
        digest = sha256_of_file(local)
        uri = remote_destination or new_remote_uri(name)
        uri = _storage.put_sync(local, uri) or uri
        return cls(path=uri, name=name, hash=digest, format=format)

    @classmethod
    async def _from_local_async(
        cls, path: str | os.PathLike[str], remote_destination: str | None = None, format: str = ""
    ) -> File:
        from flyte import _storage

        local = os.fspath(path)
        if not os.path.isfile(local):
            raise FileNotFoundError(f"File.from_local: {local!r} is not a file")
        name = os.path.basename(local)
        import asyncio

        digest = await asyncio.to_thread(sha256_of_file, local)
        uri = remote_destination or new_remote_uri(name)
        uri = await _storage.put(local, uri) or uri
        return cls(path=uri, name=name, hash=digest, format=format)

    @classmethod
    def from_local(
        cls, path: str | os.PathLike[str], remote_destination: str | None = None, format: str = ""
    ) -> Any:
        """Uploads a local file: ``await File.from_local(p)`` in async code.

        Where nothing can await (a sync task, or no running event loop) it uploads right away and
        returns the File itself, so ``return File.from_local("x.txt")`` works in a sync task.
        """
        return dual(
            lambda: cls.from_local_sync(path, remote_destination, format),
            lambda: cls._from_local_async(path, remote_destination, format),
        )

    @classmethod
    def from_bytes(cls, data: bytes, name: str | None = None, format: str = "") -> File:
        """Stores ``data`` as a new file and returns it."""
        from flyte import _storage

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
        from flyte.io._dataframe import to_parquet_bytes

        return cls.from_bytes(to_parquet_bytes(df), name or "data.parquet", format="parquet")

    # -- reading ----------------------------------------------------------------------------

    @property
    def local_path(self) -> str | None:
        """The file's path on this machine when it is already here (no download), else None."""
        if self._local is not None and os.path.exists(self._local):
            return self._local
        return local_path_of(self.path)

    def exists(self) -> bool:
        from flyte import _storage

        local = self.local_path
        if local is not None:
            return os.path.isfile(local)
        return bool(_storage.exists_sync(self.path))

    def read_bytes(self) -> bytes:
        """The whole content."""
        local = self.local_path
        if local is not None:
            return Path(local).read_bytes()
        from flyte import _storage

        return bytes(_storage.get_bytes_sync(self.path))

    async def read_bytes_async(self) -> bytes:
        local = self.local_path
        if local is not None:
            return Path(local).read_bytes()
        from flyte import _storage

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
            from flyte import _storage

            target = _storage.get_sync(self.path, target) or target
        if local_path is None:
            self._local = target
        return target

    async def _download_async(self, local_path: str | os.PathLike[str] | None = None) -> str:
        local = self.local_path
        if local is not None or (local_path is None and self._local is not None):
            import asyncio

            return await asyncio.to_thread(self.download_sync, local_path)
        from flyte import _storage

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
        from flyte import _storage

        if "w" in mode:
            self.hash = None
            self._local = None
            raw: Any = _storage.open_writer(self.path)
        else:
            raw = _storage.open_reader(self.path)
        if "b" in mode:
            return raw  # type: ignore[no-any-return]
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, File):
            return NotImplemented
        return (self.path, self.name, self.hash, self.format) == (
            other.path,
            other.name,
            other.hash,
            other.format,
        )

    def __fspath__(self) -> str:
        return self.download_sync()

    def __str__(self) -> str:
        return self.path
