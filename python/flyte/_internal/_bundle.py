"""Code bundles: the user's source files, frozen at submission time.

A run executes the code as it was when the run was submitted, not as it is on disk when
an action process starts: the files are packed into a deterministic tar.gz (same files,
same bytes) whose digest also versions the tasks in it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
import sysconfig
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

CopyStyle = Literal["loaded_modules", "all", "none"]

_SKIP_DIRS = {
    "__pycache__",
    ".git",
    ".venv",
    "venv",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
}


@dataclass(frozen=True)
class Bundle:
    root: Path
    files: tuple[str, ...]  # paths relative to root, sorted
    data: bytes  # the tar.gz
    digest: str


def module_root(module: ModuleType) -> Path:
    """The directory that must be on sys.path for ``module`` to import under its name."""
    file = getattr(module, "__file__", None)
    if not file:
        raise ValueError(f"module {module.__name__} has no file; tasks must be defined in a .py file")
    path = Path(file).resolve()
    depth = module.__name__.count(".")
    if path.name == "__init__.py":
        depth += 1
    root = path.parent
    for _ in range(depth):
        root = root.parent
    return root


def _installed_prefixes() -> list[Path]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return [Path(p).resolve() for p in paths if p]


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def loaded_module_files(root: Path) -> list[Path]:
    """Source files of the modules imported so far that live under ``root``."""
    installed = [p for p in _installed_prefixes() if not _is_under(root, p)]
    flyte_pkg = Path(__file__).resolve().parents[1]
    found: set[Path] = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if not _is_under(path, root) or _is_under(path, flyte_pkg):
            continue
        if any(_is_under(path, p) for p in installed):
            continue
        if any(part in _SKIP_DIRS for part in path.relative_to(root).parts):
            continue
        found.add(path)
        # Packages need their __init__ files to import.
        parent = path.parent
        while parent != root and _is_under(parent, root):
            init = parent / "__init__.py"
            if init.exists():
                found.add(init)
            parent = parent.parent
    return sorted(found)


def all_files(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".so")) and "__pycache__" in dirpath:
                continue
            out.append(Path(dirpath) / name)
    return out


def build(
    root: Path, copy_style: CopyStyle, extra: Iterable[Path] = (), generated: dict[str, bytes] | None = None
) -> Bundle | None:
    """Packs the code under ``root``, the ``extra`` files (an environment's ``include``) and the
    ``generated`` members (name: bytes; a notebook's pickled tasks); None for
    ``copy_style="none"`` (code is read in place)."""
    if copy_style == "none":
        if generated:
            raise ValueError(
                f"copy_style='none' reads code in place, but {', '.join(sorted(generated))} exist only in "
                "this session (tasks defined in a notebook): use copy_style 'loaded_modules' or 'all'"
            )
        return None
    root = root.resolve()
    paths = loaded_module_files(root) if copy_style == "loaded_modules" else all_files(root)
    for path in extra:
        if not _is_under(path.resolve(), root):
            raise ValueError(
                f"include {path} is outside the code root {root}; bundles hold files under it only"
            )
    paths = sorted(set(paths) | {p.resolve() for p in extra})
    members = [(path.relative_to(root).as_posix(), path.read_bytes()) for path in paths]
    members += sorted((generated or {}).items())
    raw = io.BytesIO()
    names: list[str] = []
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, data in members:
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
            names.append(rel)
    packed = gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
    return Bundle(root=root, files=tuple(names), data=packed, digest=hashlib.sha256(packed).hexdigest())


def _umask() -> int:
    """This process's file-creation mask, read without changing it (Linux), else the usual."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def extract(data: bytes, dest: Path) -> None:
    """Unpacks a bundle into ``dest``, refusing entries that would land outside it."""
    dest = dest.resolve()
    mask = _umask()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not _is_under(target, dest) or not member.isfile():
                raise ValueError(f"refusing bundle entry {member.name!r}")
            # tarfile sets each file's mode from the archive; the process's umask (0077 under
            # the embedded backend: private files) still decides who else may read it.
            member.mode &= ~mask
        tar.extractall(dest, filter="data") if sys.version_info >= (3, 12) else tar.extractall(dest)  # noqa: S202
