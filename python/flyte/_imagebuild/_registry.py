"""Asking an OCI registry whether an image tag exists (the distribution API's manifest HEAD).

Anonymous access first; when the registry asks for a token (``WWW-Authenticate: Bearer``) one
is fetched, with the credentials ``docker login`` / ``buildah login`` stored for that registry
when there are any. Registries on a loopback address are spoken to over plain HTTP, as Docker
does for 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_TIMEOUT = 30


class RegistryError(RuntimeError):
    """A registry could not answer."""


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    tag: str

    @property
    def insecure(self) -> bool:
        return is_loopback(self.host)

    @property
    def base_url(self) -> str:
        api_host = "registry-1.docker.io" if self.host == "docker.io" else self.host
        return f"{'http' if self.insecure else 'https'}://{api_host}"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse(uri: str) -> Reference:
    """``[host/]repository[:tag]`` as Docker reads it (no host: Docker Hub)."""
    name, _, digest = uri.partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = "docker.io", name
    tag = "latest"
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if digest:
        tag = digest
    if host == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return Reference(host, path, tag)


def qualified(uri: str) -> str:
    """``uri`` with its registry spelled out (``python:3.11`` is ``docker.io/library/python:3.11``),
    so builders never resolve a short name their own way."""
    ref = parse(uri)
    if "@" in uri:
        return f"{ref.host}/{ref.repository}@{ref.tag}"
    return f"{ref.host}/{ref.repository}:{ref.tag}"


def _stored_credentials(host: str, auth_file: Path | None = None) -> str | None:
    """A ``user:password`` base64 blob for ``host``: from ``auth_file`` (an image's registry
    secret) when given, else stored by a login, if any."""
    candidates = [auth_file] if auth_file is not None else []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    candidates.append(Path.home() / ".docker" / "config.json")
    for path in candidates:
        try:
            auths = json.loads(path.read_text()).get("auths", {})
        except (OSError, ValueError):
            continue
        for key, entry in auths.items():
            if re.sub(r"^https?://", "", key).split("/")[0] == host and isinstance(entry, dict):
                auth = entry.get("auth")
                if isinstance(auth, str) and auth:
                    return auth
    return None


def _token(challenge: str, ref: Reference, auth_file: Path | None) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        raise RegistryError(f"{ref.host} asked for a token without saying where to get one")
    params.setdefault("scope", f"repository:{ref.repository}:pull")
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(params)}")
    credentials = _stored_credentials(ref.host, auth_file)
    if credentials:
        request.add_header("Authorization", f"Basic {credentials}")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, ValueError) as e:
        raise RegistryError(f"getting a token from {realm} failed: {e}") from None
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str):
        raise RegistryError(f"{realm} returned no token")
    return token


def manifest_exists(uri: str, auth_file: Path | None = None) -> bool:
    """Whether ``uri`` names an image (or image index) the registry has; ``auth_file`` is a
    Docker config.json whose credentials are used before the stored logins."""
    ref = parse(uri)
    url = f"{ref.base_url}/v2/{ref.repository}/manifests/{ref.tag}"

    def head(authorization: str | None) -> int:
        request = urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFEST_TYPES})
        if authorization:
            request.add_header("Authorization", authorization)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            if e.code == 401 and authorization is None:
                challenge = e.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("bearer"):
                    return head(f"Bearer {_token(challenge, ref, auth_file)}")
                credentials = _stored_credentials(ref.host, auth_file)
                if challenge.lower().startswith("basic") and credentials:
                    return head(f"Basic {credentials}")
            return e.code
        except urllib.error.URLError as e:
            raise RegistryError(f"the registry {ref.host} cannot be reached: {e.reason}") from None

    status = head(None)
    if status == 200:
        return True
    if status in (401, 403, 404):
        # No access counts as "not there": the push that follows says why, with the
        # builder's own credentials.
        return False
    raise RegistryError(f"{ref.host} answered {status} for {uri}")
