"""What the remote objects share: their protobuf, rendered as a dict or JSON."""

from __future__ import annotations

import os
from typing import Any

from flyte._initialize import current_config, data_dir, scope
from flyte.errors import RemoteTaskError

# Deferred imports: the backend client (the Rust extension, protobufs) loads when a remote call
# is made, not with `import flyte.remote`.


class ToJSONMixin:
    """``to_dict()`` and ``to_json()`` of the backend's message behind the object (``pb2``)."""

    pb2: Any

    def to_dict(self) -> dict[str, Any]:
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(self.pb2)

    def to_json(self) -> str:
        from google.protobuf.json_format import MessageToJson

        return MessageToJson(self.pb2)


def _client_and_scope(project: str | None, domain: str | None) -> tuple[Any, Any]:
    """Where deployed tasks are looked up: the configured endpoint, else (inside a task) the
    backend that runs it, else the local backend."""
    from flyte._bridge import contract
    from flyte._remote._client import BackendClient

    cfg = current_config()
    endpoint, insecure = cfg.endpoint, cfg.insecure
    if not endpoint and os.environ.get(contract.ENDPOINT):
        endpoint = os.environ[contract.ENDPOINT]
        insecure = os.environ.get(contract.INSECURE, "").lower() in ("1", "true", "yes")
    if not endpoint:
        from flyte._remote._local_backend import running_endpoint

        endpoint, insecure = running_endpoint(data_dir()), True
        if endpoint is None:
            raise RemoteTaskError(
                message="deployed tasks are looked up on a backend: configure an endpoint "
                "(flyte.init(endpoint=...)) or start one with `flyte start local`"
            )
    project = project or os.environ.get(contract.EXECUTION_PROJECT) or None
    domain = domain or os.environ.get(contract.EXECUTION_DOMAIN) or None
    return BackendClient(endpoint, insecure=insecure, auth=cfg.auth, ca_cert=cfg.ca_cert), scope(
        project, domain, cfg.org, endpoint
    )


def connection(project: str | None = None, domain: str | None = None) -> tuple[Any, Any]:
    """The client of the configured backend (else the running local one) and the scope calls
    use (org, project, domain)."""
    return _client_and_scope(project, domain)
