"""Storage URIs: parsing, joining and the local/remote split.

A URI is either a plain local path, a ``file://`` URI, or a remote object store URI:
``s3://bucket/key``, ``gs://bucket/key`` (also ``gcs://``), ``abfs://container@account.dfs.core.windows.net/key``
(also ``abfss://``, ``az://container/key``, ``azure://container/key``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

S3_SCHEMES = frozenset({"s3", "s3a"})
GCS_SCHEMES = frozenset({"gs", "gcs"})
AZURE_SCHEMES = frozenset({"abfs", "abfss", "az", "azure", "adl"})
REMOTE_SCHEMES = S3_SCHEMES | GCS_SCHEMES | AZURE_SCHEMES


def _scheme(uri: str) -> str:
    """The lower-cased scheme of ``uri``, or "" for a plain path (Windows drive letters included)."""
    head, sep, _ = uri.partition("://")
    if not sep or len(head) < 2 or not head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return ""
    return head.lower()


def is_remote(uri: str) -> bool:
    """True for object store URIs, False for plain paths and ``file://`` URIs."""
    scheme = _scheme(uri)
    return scheme not in ("", "file")


def to_local_path(uri: str | os.PathLike[str]) -> Path:
    """The local path of a plain path or a ``file://`` URI; ValueError for anything else."""
    text = os.fspath(uri)
    scheme = _scheme(text)
    if scheme == "":
        return Path(text)
    if scheme != "file":
        raise ValueError(f"{text!r} is not a local path or file:// URI")
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{text!r} names a remote host; only file:///absolute/path is supported")
    return Path(unquote(parts.path))


def join(prefix: str, *parts: str) -> str:
    """Join URI parts with single slashes: ``join("s3://b/", "/x/", "y")`` is ``"s3://b/x/y"``."""
    segments = [seg for part in parts for seg in part.split("/") if seg]
    tail = "/".join(segments)
    if "://" in prefix:
        head, _, rest = prefix.partition("://")
        base = f"{head}://{rest.rstrip('/')}"
        if not tail:
            return base if rest.strip("/") else f"{head}://{rest}"
        if not rest.strip("/"):
            # "file:///" + "a" -> "file:///a"; "s3://" has no bucket, keep the shape anyway.
            return f"{head}://{'/' if rest.startswith('/') else ''}{tail}"
        return f"{base}/{tail}"
    if prefix == "":
        return tail
    base = prefix.rstrip("/")
    if not tail:
        return prefix if base == "" else base
    return f"{base}/{tail}"


@dataclass(frozen=True)
class RemoteLocation:
    """A parsed remote URI."""

    scheme: str  # "s3", "gs" or "az" (normalised)
    bucket: str  # bucket or container
    account: str  # Azure storage account ("" if not in the URI); "" for S3/GCS
    key: str  # object key (no leading slash; may be "" for the bucket root)
    base: str  # "<scheme>://<netloc>" exactly as given, used to build URIs of listed objects

    def uri(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base


def parse_remote(uri: str) -> RemoteLocation:
    scheme = _scheme(uri)
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(f"unsupported storage URI {uri!r} (use a path, file://, s3://, gs:// or abfs://)")
    parts = urlsplit(uri)
    netloc = parts.netloc
    key = unquote(parts.path).lstrip("/")
    if not netloc:
        raise ValueError(f"storage URI {uri!r} has no bucket")
    base = f"{uri.partition('://')[0]}://{netloc}"
    if scheme in S3_SCHEMES:
        return RemoteLocation("s3", netloc, "", key, base)
    if scheme in GCS_SCHEMES:
        return RemoteLocation("gs", netloc, "", key, base)
    container, at, host = netloc.partition("@")
    account = host.split(".", 1)[0] if at else ""
    return RemoteLocation("az", container, account, key, base)
