"""Uploads to a backend's storage through ``DataProxyService.CreateUploadLocation``.

The backend answers with a signed URL to PUT the bytes to (an object store's, or its own HTTP
route) and the native URL under which tasks read them back, so the submitting machine needs no
storage credentials and tasks need no access to the submitting machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from flyte.errors import RuntimeSystemError

if TYPE_CHECKING:
    from flyte._initialize import Scope
    from flyte._remote._client import BackendClient

#: How long a signed URL stays valid: long enough for a slow upload of a large bundle.
_EXPIRY_SECONDS = 600


async def upload_bytes(
    client: BackendClient, data: bytes, filename: str, where: Scope, filename_root: str = ""
) -> str:
    """PUTs ``data`` where the backend says and returns the URL tasks read it from.

    The location is derived from the content's MD5 (so uploading the same bytes twice lands on
    the same object), or is ``filename_root/filename`` when a root is given.
    """
    from flyteidl2.dataproxy import dataproxy_service_pb2
    from google.protobuf import duration_pb2

    request = dataproxy_service_pb2.CreateUploadLocationRequest(
        org=where.org,
        project=where.project,
        domain=where.domain,
        filename=filename,
        filename_root=filename_root,
        content_md5=hashlib.md5(data).digest(),  # noqa: S324 - the object store's integrity check
        content_length=len(data),
        expires_in=duration_pb2.Duration(seconds=_EXPIRY_SECONDS),
    )
    location = await client.create_upload_location(request)
    await asyncio.to_thread(_put, location.signed_url, data, dict(location.headers))
    return str(location.native_url)


def _put(url: str, data: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
    request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=_EXPIRY_SECONDS) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace").strip()
        raise RuntimeSystemError(
            "UploadFailed", f"uploading to {url.split('?', 1)[0]} failed: HTTP {e.code} {detail}"
        ) from None
    except urllib.error.URLError as e:
        raise RuntimeSystemError("UploadFailed", f"uploading to {url.split('?', 1)[0]}: {e.reason}") from None
