"""What the remote objects share: their protobuf, rendered as a dict or JSON."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flyte._initialize import current_config, data_dir, scope
from flyte.errors import RemoteTaskError
from flyte.models import ActionPhase

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


def backend_endpoint() -> tuple[str, bool]:
    """The backend remote calls go to, and whether without TLS: the configured endpoint, else
    (inside a task) the backend that runs it, else the local backend."""
    from flyte._bridge import contract

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
                message="flyte.remote works with a backend: configure an endpoint "
                "(flyte.init(endpoint=...)) or start one with `flyte start local`"
            )
    return endpoint, insecure


def _client_and_scope(project: str | None, domain: str | None) -> tuple[Any, Any]:
    """A client of the backend remote calls go to (``backend_endpoint``) and the scope of
    ``project``/``domain`` there."""
    from flyte._bridge import contract
    from flyte._remote._client import BackendClient

    cfg = current_config()
    endpoint, insecure = backend_endpoint()
    project = project or os.environ.get(contract.EXECUTION_PROJECT) or None
    domain = domain or os.environ.get(contract.EXECUTION_DOMAIN) or None
    return BackendClient(endpoint, insecure=insecure, auth=cfg.auth, ca_cert=cfg.ca_cert), scope(
        project, domain, cfg.org, endpoint
    )


def connection(project: str | None = None, domain: str | None = None) -> tuple[Any, Any]:
    """The client of the configured backend (else the running local one) and the scope calls
    use (org, project, domain)."""
    return _client_and_scope(project, domain)


@dataclass
class TimeFilter:
    """A time range to list by: ``after`` is inclusive, ``before`` exclusive; either may be open."""

    after: datetime | None = None
    before: datetime | None = None


def add_time_filter(request: Any, field_name: str, tf: TimeFilter | None) -> None:
    """Adds ``tf`` to a ``ListRequest`` as filters on ``field_name`` (UTC ISO-8601 values)."""
    from flyteidl2.common import list_pb2

    if tf is None:
        return
    if not isinstance(tf, TimeFilter):
        raise TypeError(f"{field_name} takes a flyte.remote.TimeFilter, got {type(tf).__name__}")
    if tf.after is not None:
        request.filters.add(
            function=list_pb2.Filter.GREATER_THAN_OR_EQUAL, field=field_name, values=[_utc_iso(tf.after)]
        )
    if tf.before is not None:
        request.filters.add(
            function=list_pb2.Filter.LESS_THAN, field=field_name, values=[_utc_iso(tf.before)]
        )


def _utc_iso(when: datetime) -> str:
    # A naive datetime means local time, as datetime.astimezone takes it.
    return when.astimezone(timezone.utc).isoformat()


def add_phase_filter(request: Any, in_phase: Any) -> None:
    """Adds "phase is one of ``in_phase``" (ActionPhase members or their names) to a ListRequest."""
    from flyteidl2.common import list_pb2

    if not in_phase:
        return
    if isinstance(in_phase, str | ActionPhase):
        in_phase = (in_phase,)
    values = []
    for p in in_phase:
        try:
            phase = p if isinstance(p, ActionPhase) else ActionPhase(str(p).lower())
        except ValueError:
            known = ", ".join(m.value for m in ActionPhase)
            raise ValueError(f"in_phase: {p!r} is not a phase (phases: {known})") from None
        values.append(str(phase.to_protobuf_value()))
    function = list_pb2.Filter.EQUAL if len(values) == 1 else list_pb2.Filter.VALUE_IN
    request.filters.add(function=function, field="phase", values=values)


def set_sort(request: Any, sort_by: tuple[str, str] | None) -> None:
    """Sorts a ListRequest by ``(field, "asc" | "desc")``, oldest first when not given."""
    from flyteidl2.common import list_pb2

    key, order = sort_by or ("created_at", "asc")
    if order not in ("asc", "desc"):
        raise ValueError(f"sort_by=({key!r}, {order!r}): the order is 'asc' or 'desc'")
    direction = list_pb2.Sort.ASCENDING if order == "asc" else list_pb2.Sort.DESCENDING
    request.sort_by_fields.add(key=key, direction=direction)
