"""Secrets kept by a backend: ``flyte.remote.Secret.create("api-key", "...")``. Values only go
in; what comes back is names, types and status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from flyte._initialize import current_config
from flyte.remote._common import ToJSONMixin, connection
from flyte.syncify import syncify

SecretTypes = Literal["regular", "image_pull"]


def _secret_id(name: str, cluster_pool: str | None) -> tuple[Any, Any]:
    """The client and the identifier of secret ``name``: in the configured project and domain,
    or, when neither is configured, for every project of the org."""
    from flyteidl2.secret import definition_pb2

    if cluster_pool is not None:
        raise ValueError(
            "cluster_pool: secrets scoped to a cluster pool are a Union feature this SDK does not have"
        )
    if not isinstance(name, str) or not name:
        raise ValueError("a secret needs a non-empty name")
    cfg = current_config()
    client, where = connection()
    return client, definition_pb2.SecretIdentifier(
        name=name, organization=where.org, project=cfg.project or "", domain=cfg.domain or ""
    )


@dataclass
class Secret(ToJSONMixin):
    """A secret's name, type (``"regular"`` or ``"image_pull"``) and metadata; never its value."""

    pb2: Any

    @property
    def name(self) -> str:
        return str(self.pb2.id.name)

    @property
    def type(self) -> str:
        from flyteidl2.secret import definition_pb2

        if self.pb2.secret_metadata.type == definition_pb2.SECRET_TYPE_IMAGE_PULL_SECRET:
            return "image_pull"
        return "regular"

    @syncify
    @classmethod
    async def create(
        cls, name: str, value: str | bytes, type: SecretTypes = "regular", cluster_pool: str | None = None
    ) -> None:
        """Stores ``value`` as secret ``name`` (``type="image_pull"``: registry credentials, a
        Docker config.json)."""
        if type not in ("regular", "image_pull"):
            raise ValueError(f"Secret type must be 'regular' or 'image_pull', got {type!r}")
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"a secret's value must be str or bytes, got {value.__class__.__name__}")
        client, secret_id = _secret_id(name, cluster_pool)
        data = value.encode() if isinstance(value, str) else value
        await client.create_secret(secret_id, data, image_pull=type == "image_pull")

    @syncify
    @classmethod
    async def get(cls, name: str, cluster_pool: str | None = None) -> Secret:
        client, secret_id = _secret_id(name, cluster_pool)
        return cls(await client.get_secret(secret_id))

    @syncify
    @classmethod
    async def listall(cls, limit: int = 10, cluster_pool: str | None = None) -> AsyncIterator[Secret]:
        """The secrets of the configured project and domain (of the org when neither is set);
        ``limit`` is the page size asked of the backend, not a bound on how many come back."""
        from flyteidl2.secret import definition_pb2

        if cluster_pool is not None:
            raise ValueError(
                "cluster_pool: secrets scoped to a cluster pool are a Union feature this SDK does not have"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        cfg = current_config()
        client, where = connection()
        found = await client.list_secrets(
            where.org, cfg.project or "", cfg.domain or "", limit=1 << 30, page_size=limit
        )
        for pb2 in found:
            yield cls(definition_pb2.Secret(id=pb2.id, secret_metadata=pb2.secret_metadata))

    @syncify
    @classmethod
    async def delete(cls, name: str, cluster_pool: str | None = None) -> None:
        client, secret_id = _secret_id(name, cluster_pool)
        await client.delete_secret(secret_id)
