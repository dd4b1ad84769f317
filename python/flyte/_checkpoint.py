"""Checkpoints: state a task saves while it works, which its next attempt (after a failure or a
lost machine) loads to carry on instead of starting over.

Each attempt has a checkpoint location of its own and sees the previous attempt's. The backend
passes both (``{{.checkpointOutputPrefix}}`` / ``{{.prevCheckpointPrefix}}``); local mode
makes them in the run's data. A checkpoint is one object: bytes or a file as they are, a
directory as a gzip'd tar of what is in it.
"""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flyte._logging import system_logger
from flyte._storage import StorageError, join

# Deferred imports: the storage operations (the object-store client, ~50 ms and several MB)
# load when a checkpoint is loaded or saved; every local attempt has a checkpoint, few use it.

#: A downloaded checkpoint that is not an archive is put here, under ``Checkpoint.path``.
PAYLOAD_NAME = "payload"
#: The object's name when the backend gives a location ending in "/" (a prefix).
_OBJECT_NAME = "_flytecheckpoints"


@dataclass(frozen=True)
class CheckpointPaths:
    """Where an attempt saves its checkpoint, and where the previous attempt saved its own
    (None on a first attempt)."""

    prev_checkpoint_path: str | None
    checkpoint_path: str


def latest_checkpoint(
    root: pathlib.Path,
    glob_pattern: str = "**/last.ckpt",
    *,
    key: Callable[[pathlib.Path], Any] | None = None,
) -> pathlib.Path | None:
    """The file under ``root`` matching ``glob_pattern`` that ranks highest by ``key`` (default:
    the newest), or None; e.g. a training framework's ``last.ckpt`` in a loaded checkpoint."""
    root = pathlib.Path(root)
    matches = [p for p in root.glob(glob_pattern) if p.is_file()]
    if not matches:
        return None
    return max(matches, key=key or (lambda p: p.stat().st_mtime))


def _object_uri(location: str) -> str:
    return join(location, _OBJECT_NAME) if location.endswith("/") else location


class BaseCheckpoint(ABC):
    """What a checkpoint offers a task: a local working directory (``path``), whether an
    earlier attempt left one (``prev_exists``), and loading and saving, async and sync."""

    @property
    @abstractmethod
    def path(self) -> pathlib.Path:
        """A local directory to put checkpoint files in, and where ``load`` restores them."""

    @abstractmethod
    def prev_exists(self) -> bool:
        """Whether this attempt was given an earlier attempt's checkpoint location."""

    @abstractmethod
    async def load(self) -> pathlib.Path | None:
        """Restores the earlier attempt's checkpoint; None when there is none."""

    @abstractmethod
    async def save(self, data: pathlib.Path | str | bytes) -> None:
        """Saves ``data`` (bytes, a file or a directory) as this attempt's checkpoint."""

    @abstractmethod
    def load_sync(self) -> pathlib.Path | None:
        """``load`` for sync code."""

    @abstractmethod
    def save_sync(self, data: pathlib.Path | str | bytes) -> None:
        """``save`` for sync code."""


class Checkpoint(BaseCheckpoint):
    """The checkpoint of one attempt: ``save`` writes to ``checkpoint_dest``, ``load`` reads
    ``checkpoint_src`` (the previous attempt's) into ``path``. A directory comes back as the tree
    it was (``load`` returns ``path``); bytes or a file as ``path / "payload"``."""

    def __init__(self, checkpoint_dest: str, checkpoint_src: str | None = None) -> None:
        if not checkpoint_dest:
            raise ValueError("Checkpoint needs a destination (checkpoint_dest)")
        self._dest = checkpoint_dest
        src = (checkpoint_src or "").strip().strip('"')
        # A first attempt gets an empty previous location (a cluster passes two quote marks).
        self._src = src or None
        # Made on first use: every attempt has a checkpoint, few tasks use it.
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def paths(self) -> CheckpointPaths:
        return CheckpointPaths(prev_checkpoint_path=self._src, checkpoint_path=self._dest)

    @property
    def remote_destination(self) -> str:
        return self._dest

    @property
    def remote_source(self) -> str | None:
        return self._src

    @property
    def path(self) -> pathlib.Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="flyte-checkpoint-")
        return pathlib.Path(self._dir.name)

    def prev_exists(self) -> bool:
        return self._src is not None

    def load_sync(self) -> pathlib.Path | None:
        from flyte._storage._ops import exists_sync, get_sync

        if self._src is None:
            return None
        source = _object_uri(self._src)
        try:
            if not exists_sync(source):
                # The earlier attempt failed before it saved anything.
                return None
            with tempfile.TemporaryDirectory(prefix="flyte-checkpoint-dl-") as scratch:
                archive = pathlib.Path(scratch) / "checkpoint"
                get_sync(source, archive)
                for child in self.path.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
                if tarfile.is_tarfile(archive):
                    _extract(archive, self.path)
                    return self.path
                shutil.move(str(archive), self.path / PAYLOAD_NAME)
                return self.path / PAYLOAD_NAME
        except StorageError as e:
            system_logger.warning("could not load the previous checkpoint from %s: %s", source, e)
            return None

    def save_sync(self, data: pathlib.Path | str | bytes) -> None:
        from flyte._storage._ops import put_bytes_sync, put_sync

        target = _object_uri(self._dest)
        if isinstance(data, (bytes, bytearray, memoryview)):
            put_bytes_sync(bytes(data), target)
            return
        if not isinstance(data, (str, pathlib.Path)):
            raise TypeError(f"Checkpoint.save takes bytes, a file or a directory, got {type(data).__name__}")
        source = pathlib.Path(data)
        if source.is_file():
            put_sync(source, target)
        elif source.is_dir():
            with tempfile.TemporaryDirectory(prefix="flyte-checkpoint-up-") as scratch:
                archive = pathlib.Path(scratch) / "checkpoint.tar.gz"
                with tarfile.open(archive, "w:gz") as tar:
                    for child in sorted(source.iterdir()):
                        tar.add(child, arcname=child.name)
                put_sync(archive, target)
        else:
            raise FileNotFoundError(f"Checkpoint.save: {source} does not exist")

    async def load(self) -> pathlib.Path | None:
        return await asyncio.to_thread(self.load_sync)

    async def save(self, data: pathlib.Path | str | bytes) -> None:
        await asyncio.to_thread(self.save_sync, data)

    def __repr__(self) -> str:
        return f"Checkpoint(dest={self._dest!r}, src={self._src!r})"


def _extract(archive: pathlib.Path, dest: pathlib.Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
            return
        # Python before 3.10.12 / 3.11.4 has no extraction filters: refuse what would escape.
        for member in tar.getmembers():
            parts = pathlib.PurePosixPath(member.name).parts
            if member.name.startswith("/") or ".." in parts or member.issym() or member.islnk():
                raise StorageError(f"the checkpoint holds an unsafe path: {member.name}", str(archive))
        tar.extractall(dest)
