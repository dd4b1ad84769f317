"""Reading and writing the small protocol files (inputs, outputs, errors) at a URI.

Only local paths and ``file://`` URIs for now; object stores arrive with flyte.io.
Writes are atomic (temp file + rename) because a reader may poll for the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse


def to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else uri)
    raise ValueError(
        f"unsupported storage location {uri!r}: only local paths and file:// are available in this build"
    )


def join(prefix: str, *names: str) -> str:
    return prefix.rstrip("/") + "/" + "/".join(n.strip("/") for n in names)


def read_bytes(uri: str) -> bytes:
    return to_path(uri).read_bytes()


def exists(uri: str) -> bool:
    return to_path(uri).exists()


def write_bytes(uri: str, data: bytes) -> None:
    path = to_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_uri(path: Path) -> str:
    return path.resolve().as_uri()
