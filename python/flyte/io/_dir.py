"""``flyte.io.Dir``: a reference to a directory (a prefix of files) in storage, passed by reference."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

from flyte import _storage
from flyte.io._file import (
    File,
    HashSpec,
    Reference,
    Transfer,
    _basename,
    is_uri,
    local_path_of,
    new_remote_uri,
    sha256_of_file,
    upload_hashed,
    upload_hashed_sync,
)


def _tree_hash(root: str) -> str:
    """A content hash of a local directory tree: relative paths and file contents, in sorted order."""
    h = hashlib.sha256()
    for rel, full in _files_under(root):
        h.update(rel.replace(os.sep, "/").encode())
        h.update(b"\0")
        h.update(sha256_of_file(full).encode())
        h.update(b"\n")
    return h.hexdigest()


def _files_under(root: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            full = os.path.join(dirpath, fn)
            found.append((os.path.relpath(full, root), full))
    return found


def _checked_dir(path: str | os.PathLike[str]) -> tuple[str, str]:
    local = os.path.abspath(os.fspath(path))
    if not os.path.isdir(local):
        raise NotADirectoryError(f"Dir.from_local: {local!r} is not a directory")
    return local, os.path.basename(local.rstrip(os.sep))


#: The path of a Dir that stands for "no directory" (``Dir.empty()``, ``EmptyDir()``).
EMPTY_DIR_PATH = "::flyte-empty-dir::"


class Dir(Reference):
    """A directory, by reference: ``path`` is a storage URI prefix or a local directory.

    As in the reference SDK the I/O methods are coroutines with ``*_sync`` twins. ``walk()``
    serves both kinds of code: ``async for f in d.walk()`` yields ``File`` references, and a
    plain ``for path in d.walk()`` yields local paths (the directory downloaded once).
    """

    @classmethod
    def _local_exists(cls, path: str) -> bool:
        return os.path.isdir(path)

    @classmethod
    def _store_local(cls, path: str) -> Dir:
        return cls.from_local_sync(path)

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def from_existing_remote(cls, remote_path: str, dir_cache_key: str | None = None) -> Dir:
        """A reference to a directory already in storage; ``dir_cache_key`` identifies its content."""
        return cls(path=remote_path, hash=dir_cache_key)

    @classmethod
    def new_remote(cls, dir_name: str | None = None, hash: str | None = None) -> Dir:
        """A Dir at a fresh location in storage; add files with ``File(path=d.child(...)).open("wb")``."""
        return cls(path=new_remote_uri(dir_name), name=dir_name, hash=hash)

    @classmethod
    def empty(cls) -> Dir:
        """A Dir standing for "no directory was produced" (see ``is_empty``)."""
        return EmptyDir()

    def stored(self) -> Any:
        if self.is_empty:
            # The sentinel travels as is (a plain Dir on the other side, still empty).
            return Dir(path=EMPTY_DIR_PATH, name="")
        return super().stored()

    @property
    def is_empty(self) -> bool:
        """Whether this is ``Dir.empty()`` / ``EmptyDir()``, also after passing between tasks."""
        return self.path == EMPTY_DIR_PATH

    def child(self, relative: str) -> str:
        """The URI (or path) of ``relative`` inside this directory."""
        if is_uri(self.path):
            return str(_storage.join(self.path, relative))
        return os.path.join(self.path, relative)

    @classmethod
    def from_local_sync(
        cls,
        local_path: str | os.PathLike[str],
        remote_destination: str | None = None,
        dir_cache_key: str | None = None,
        batch_size: int | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        *,
        hash_method: HashSpec | None = None,
    ) -> Dir:
        """Uploads the local directory (recursively) and returns a Dir for the stored copy.

        Its identity (cache keys, action names) is a hash of the relative paths and contents of
        its files, unless ``dir_cache_key`` (a string) or ``hash_method`` gives one. For object
        stores, ``batch_size`` files go at once, each in ``chunk_size`` parts with
        ``max_concurrency`` in flight.
        """
        local, name = _checked_dir(local_path)
        uri = remote_destination or new_remote_uri(name)
        transfer = Transfer(chunk_size, max_concurrency, batch_size, recursive=True)
        uri, digest = upload_hashed_sync(local, uri, _tree_hash, dir_cache_key or hash_method, transfer)
        return cls(path=uri, name=name, hash=digest)

    @classmethod
    async def from_local(
        cls,
        local_path: str | os.PathLike[str],
        remote_destination: str | None = None,
        dir_cache_key: str | None = None,
        batch_size: int | None = None,
        chunk_size: int | None = None,
        max_concurrency: int | None = None,
        *,
        hash_method: HashSpec | None = None,
    ) -> Dir:
        """Uploads a local directory: ``await Dir.from_local(p)`` (``from_local_sync`` in sync code)."""
        local, name = _checked_dir(local_path)
        uri = remote_destination or new_remote_uri(name)
        transfer = Transfer(chunk_size, max_concurrency, batch_size, recursive=True)
        uri, digest = await upload_hashed(local, uri, _tree_hash, dir_cache_key or hash_method, transfer)
        return cls(path=uri, name=name, hash=digest)

    # -- reading ----------------------------------------------------------------------------

    @property
    def local_path(self) -> str | None:
        if self._local is not None and os.path.isdir(self._local):
            return self._local
        return local_path_of(self.path)

    def exists_sync(self) -> bool:
        if self.is_empty:
            return False
        local = self.local_path
        if local is not None:
            return os.path.isdir(local)
        return bool(_storage.list_files_sync(self.path))

    async def exists(self) -> bool:
        """Whether the directory is there, with at least one file (``exists_sync`` in sync code)."""
        import asyncio

        return await asyncio.to_thread(self.exists_sync)

    def _download_target(self, local_path: str | os.PathLike[str] | None) -> str:
        if local_path is not None:
            return os.fspath(local_path)
        return os.path.join(tempfile.mkdtemp(prefix="flyte-dir-"), self.name or "dir")

    def download_sync(self, local_path: str | os.PathLike[str] | None = None) -> str:
        """A local directory with the content: the directory itself when it is local, else a copy."""
        local = self.local_path
        if local_path is None and local is not None:
            return local
        target = self._download_target(local_path)
        if local is not None:
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            os.makedirs(target, exist_ok=True)
            target = _storage.get_sync(self.path, target, recursive=True) or target
        if local_path is None:
            self._local = target
        return target

    async def download(self, local_path: str | os.PathLike[str] | None = None) -> str:
        """``await d.download()``: a local directory with the content (``download_sync`` in sync code)."""
        if self.local_path is not None:
            import asyncio

            return await asyncio.to_thread(self.download_sync, local_path)

        target = self._download_target(local_path)
        os.makedirs(target, exist_ok=True)
        target = await _storage.get(self.path, target, recursive=True) or target
        if local_path is None:
            self._local = target
        return target

    def list_files_sync(self) -> list[File]:
        """The files in the directory (recursively, sorted) as ``File`` references; nothing is downloaded."""
        return [f for _, f in self._files()]

    async def list_files(self) -> list[File]:
        """``list_files_sync`` for async code."""
        import asyncio

        return await asyncio.to_thread(self.list_files_sync)

    def _files(self) -> list[tuple[str, File]]:
        """(path relative to the directory, File) of every file, sorted."""
        if self.is_empty:
            return []
        local = self.local_path
        if local is not None and not is_uri(self.path):
            return [(rel, File(path=full, name=os.path.basename(full))) for rel, full in _files_under(local)]
        if local_path_of(self.path) is not None:
            base = self.path.rstrip("/")
            root = local_path_of(base) or ""
            return [
                (rel, File(path=base + "/" + rel.replace(os.sep, "/"), name=os.path.basename(full)))
                for rel, full in _files_under(root)
            ]
        found: list[tuple[str, File]] = []
        base = self.path.rstrip("/") + "/"
        for item in sorted(_storage.list_files_sync(self.path)):
            uri = item if is_uri(item) else str(_storage.join(self.path, item))
            rel = uri[len(base) :] if uri.startswith(base) else _basename(uri)
            found.append((rel, File(path=uri)))
        return found

    def get_file_sync(self, file_name: str) -> File | None:
        """The file ``file_name`` (a path relative to the directory), or None when it is not there."""
        target = file_name.strip("/")
        for rel, f in self._files():
            if rel.replace(os.sep, "/") == target:
                return f
        return None

    async def get_file(self, file_name: str) -> File | None:
        """``get_file_sync`` for async code."""
        import asyncio

        return await asyncio.to_thread(self.get_file_sync, file_name)

    def walk_sync(
        self, recursive: bool = True, file_pattern: str = "*", max_depth: int | None = None
    ) -> Iterator[File]:
        """The files as ``File`` references, sorted: all of them (``recursive``), or those at most
        ``max_depth`` folders down, whose name matches the glob ``file_pattern``."""
        for _, f in self._selected(recursive, max_depth, file_pattern):
            yield f

    def walk(self, recursive: bool = True, max_depth: int | None = None) -> Walk:
        """``async for f in d.walk()``: the files as ``File`` references (reference SDK);
        ``for path in d.walk()``: local paths of the files, downloading the directory once."""
        return Walk(self, recursive, max_depth)

    def _selected(self, recursive: bool, max_depth: int | None, pattern: str) -> list[tuple[str, File]]:
        import fnmatch

        if max_depth is not None and (
            isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0
        ):
            raise ValueError(f"max_depth must be a non-negative int, got {max_depth!r}")
        depth = max_depth if max_depth is not None else (None if recursive else 0)
        chosen = []
        for rel, f in self._files():
            parts = rel.replace(os.sep, "/").split("/")
            if depth is not None and len(parts) - 1 > depth:
                continue
            if fnmatch.fnmatch(parts[-1], pattern):
                chosen.append((rel, f))
        return chosen

    def __fspath__(self) -> str:
        return self.download_sync()

    def __str__(self) -> str:
        return self.path


class Walk:
    """What ``Dir.walk`` returns: async-iterable as ``File`` references, iterable as local paths."""

    def __init__(self, folder: Dir, recursive: bool, max_depth: int | None) -> None:
        self._folder = folder
        self._recursive = recursive
        self._max_depth = max_depth

    def __iter__(self) -> Iterator[str]:
        chosen = {
            rel.replace(os.sep, "/")
            for rel, _ in self._folder._selected(self._recursive, self._max_depth, "*")
        }
        root = self._folder.download_sync()
        for rel, full in _files_under(root):
            if rel.replace(os.sep, "/") in chosen:
                yield full

    async def __aiter__(self) -> AsyncIterator[File]:
        import asyncio

        for _, f in await asyncio.to_thread(self._folder._selected, self._recursive, self._max_depth, "*"):
            yield f


class EmptyDir(Dir):
    """A Dir standing for "no directory was produced": a task whose output type is ``Dir`` may
    return it; the receiver sees a ``Dir`` whose ``is_empty`` is true."""

    def __init__(self, **data: Any) -> None:
        data["path"] = EMPTY_DIR_PATH
        data.setdefault("name", "")
        super().__init__(**data)
