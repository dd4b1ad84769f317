"""Local-file helpers that need no object-store client (cheap to import)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    """Writes ``data`` to ``dest`` so that readers see either nothing or all of it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
