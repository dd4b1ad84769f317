"""What the remote objects share: their protobuf, rendered as a dict or JSON."""

from __future__ import annotations

from typing import Any

from flyte.remote._task import _client_and_scope


class ToJSONMixin:
    """``to_dict()`` and ``to_json()`` of the backend's message behind the object (``pb2``)."""

    pb2: Any

    def to_dict(self) -> dict[str, Any]:
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(self.pb2)

    def to_json(self) -> str:
        from google.protobuf.json_format import MessageToJson

        return MessageToJson(self.pb2)


def connection(project: str | None = None, domain: str | None = None) -> tuple[Any, Any]:
    """The client of the configured backend (else the running local one) and the scope calls
    use (org, project, domain)."""
    return _client_and_scope(project, domain)
