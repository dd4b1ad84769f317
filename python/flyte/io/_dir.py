"""``flyte.io.Dir``: a reference to a directory (a prefix of files) in storage, passed by reference."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from flyte import _storage
from flyte.io._file import (
    File,
    HashMethod,
    Reference,
    dual,
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


class Dir(Reference):
    """A directory, by reference: ``path`` is a storage URI prefix or a local directory.

    ``walk()`` yields local paths of the files (downloading the whole directory once, files
    concurrently); ``list_files()`` gives them as ``File`` references without downloading.
    """

    @classmethod
    def _local_exists(cls, path: str) -> bool:
        return os.path.isdir(path)

    @classmethod
    def _store_local(cls, path: str) -> Dir:
        return cls.from_local_sync(path)

    # -- creating ---------------------------------------------------------------------------

    @classmethod
    def from_existing_remote(cls, uri: str, name: str | None = None, dir_cache_key: str | None = None) -> Dir:
        """A reference to a directory already in storage; ``dir_cache_key`` identifies its content."""
        return cls(path=uri, name=name, hash=dir_cache_key)

    @classmethod
    def new_remote(cls, name: str | None = None) -> Dir:
        """A Dir at a fresh location in storage; add files with ``File(path=d.child(...)).open("wb")``."""
        return cls(path=new_remote_uri(name), name=name)

    def child(self, relative: str) -> str:
        """The URI (or path) of ``relative`` inside this directory."""
        if is_uri(self.path):
            return str(_storage.join(self.path, relative))
        return os.path.join(self.path, relative)

    @classmethod
    def from_local_sync(
        cls,
        path: str | os.PathLike[str],
        remote_destination: str | None = None,
        hash_method: HashMethod | None = None,
    ) -> Dir:
        """Uploads the local directory ``path`` (recursively) and returns a Dir for the stored copy.

        Its identity (cache keys, action names) is a hash of the relative paths and contents of
        its files, unless ``hash_method`` gives one: a string, or a function of the local path.
        """
        local, name = _checked_dir(path)
        uri = remote_destination or new_remote_uri(name)
        uri, digest = upload_hashed_sync(local, uri, _tree_hash, hash_method, recursive=True)
        return cls(path=uri, name=name, hash=digest)

    @classmethod
    async def _from_local_async(
        cls,
        path: str | os.PathLike[str],
        remote_destination: str | None = None,
        hash_method: HashMethod | None = None,
    ) -> Dir:
        local, name = _checked_dir(path)
        uri = remote_destination or new_remote_uri(name)
        uri, digest = await upload_hashed(local, uri, _tree_hash, hash_method, recursive=True)
        return cls(path=uri, name=name, hash=digest)

    @classmethod
    def from_local(
        cls,
        path: str | os.PathLike[str],
        remote_destination: str | None = None,
        hash_method: HashMethod | None = None,
    ) -> Any:
        """Uploads a local directory: ``await Dir.from_local(p)``; synchronous where nothing can await."""
        return dual(
            lambda: cls.from_local_sync(path, remote_destination, hash_method),
            lambda: cls._from_local_async(path, remote_destination, hash_method),
        )

    # -- reading ----------------------------------------------------------------------------

    @property
    def local_path(self) -> str | None:
        if self._local is not None and os.path.isdir(self._local):
            return self._local
        return local_path_of(self.path)

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

    async def _download_async(self, local_path: str | os.PathLike[str] | None = None) -> str:
        if self.local_path is not None:
            import asyncio

            return await asyncio.to_thread(self.download_sync, local_path)

        target = self._download_target(local_path)
        os.makedirs(target, exist_ok=True)
        target = await _storage.get(self.path, target, recursive=True) or target
        if local_path is None:
            self._local = target
        return target

    def download(self, local_path: str | os.PathLike[str] | None = None) -> Any:
        """``await d.download()`` in async code; returns the local directory directly where nothing can await."""
        return dual(lambda: self.download_sync(local_path), lambda: self._download_async(local_path))

    def walk(self) -> Iterator[str]:
        """Local paths of all files in the directory (recursively, sorted), downloading it once first."""
        root = self.download_sync()
        for _, full in _files_under(root):
            yield full

    def list_files(self) -> list[File]:
        """The files in the directory (recursively, sorted) as ``File`` references; nothing is downloaded."""
        local = self.local_path
        if local is not None and not is_uri(self.path):
            return [File(path=full, name=os.path.basename(full)) for _, full in _files_under(local)]

        if local_path_of(self.path) is not None:
            base = self.path.rstrip("/")
            root = local_path_of(base) or ""
            return [
                File(path=base + "/" + rel.replace(os.sep, "/"), name=os.path.basename(full))
                for rel, full in _files_under(root)
            ]
        found: list[File] = []
        for item in sorted(_storage.list_files_sync(self.path)):
            uri = item if is_uri(item) else str(_storage.join(self.path, item))
            found.append(File(path=uri))
        return found

    def __fspath__(self) -> str:
        return self.download_sync()

    def __str__(self) -> str:
        return self.path
