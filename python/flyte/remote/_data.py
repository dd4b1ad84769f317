"""Uploading local data to a backend's storage, through its data proxy (no storage credentials
needed here): ``flyte.remote.upload_file(path)`` returns the URL tasks read it from."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flyte.remote._common import connection
from flyte.syncify import syncify

# Deferred imports: the upload client (and the protobufs it needs) loads when something is
# uploaded, not with `import flyte.remote`.


@syncify
async def upload_file(
    fp: str | os.PathLike[str], verify: bool = True, fname: str | None = None, content_type: str | None = None
) -> tuple[str, str]:
    """Uploads the file at ``fp``; returns its MD5 (hex) and the URL tasks read it from.

    ``fname`` names the object (default: the file's name). ``verify=False`` (skip TLS checks) is
    not supported: certificates are always verified. The object's content type is whatever the
    store makes of the bytes; a ``content_type`` other than ``application/octet-stream`` is refused.
    """
    import asyncio

    from flyte._remote._upload import upload_bytes

    if not verify:
        raise ValueError("upload_file(verify=False): TLS certificates are always verified")
    if content_type not in (None, "application/octet-stream"):
        raise ValueError(f"upload_file(content_type={content_type!r}): uploads are application/octet-stream")
    path = Path(fp)
    if not path.is_file():
        raise FileNotFoundError(f"upload_file: {path} is not a file")
    data = await asyncio.to_thread(path.read_bytes)
    client, where = connection()
    url = await upload_bytes(client, data, fname or path.name, where)
    return hashlib.md5(data).hexdigest(), url  # noqa: S324 - the content's identity, as the store keeps it


@syncify
async def upload_dir(dir_path: str | os.PathLike[str], verify: bool = True, prefix: str | None = None) -> str:
    """Uploads the files under ``dir_path`` into one remote directory named ``prefix`` (a random
    one by default) and returns its URL, which tasks read as a ``flyte.io.Dir``. As in the
    reference SDK the remote directory is flat: files keep their names, not their folders, so
    two files of the same name in different folders are refused."""
    import asyncio
    import uuid

    from flyte._remote._upload import upload_bytes

    if not verify:
        raise ValueError("upload_dir(verify=False): TLS certificates are always verified")
    root = Path(dir_path)
    if not root.is_dir():
        raise NotADirectoryError(f"upload_dir: {root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"upload_dir: {root} has no files")
    by_name: dict[str, Path] = {}
    for path in files:
        if path.name in by_name:
            raise ValueError(
                f"upload_dir: {by_name[path.name]} and {path} have the same name; the remote directory is flat"
            )
        by_name[path.name] = path
    prefix = prefix or uuid.uuid4().hex
    client, where = connection()
    uploads = [
        upload_bytes(client, await asyncio.to_thread(path.read_bytes), path.name, where, filename_root=prefix)
        for path in files
    ]
    urls = await asyncio.gather(*uploads)
    return urls[0][: -len(files[0].name)].rstrip("/")
