"""How this process reaches object storage: settings given to ``flyte.init(storage=...)``.

They apply to the stores this process opens (uploads of code, inputs, ``File``/``Dir`` data,
``flyte.storage`` calls). Settings left unset come from the usual environment variables
(``AWS_*``, ``GOOGLE_*``, ``AZURE_STORAGE_*``); ``auto()`` reads the ``FLYTE_*`` ones as well.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: Environment variables ``auto()`` reads, by setting.
_COMMON_ENV = {
    "enable_debug": "FLYTE_STORAGE_DEBUG",
    "retries": "FLYTE_STORAGE_RETRIES",
    "backoff": "FLYTE_STORAGE_BACKOFF_SECONDS",
}
_S3_ENV = {
    "endpoint": "FLYTE_AWS_ENDPOINT",
    "access_key_id": "FLYTE_AWS_ACCESS_KEY_ID",
    "secret_access_key": "FLYTE_AWS_SECRET_ACCESS_KEY",
    "addressing_style": "FLYTE_AWS_S3_ADDRESSING_STYLE",
}
_ABFS_ENV = {
    "account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "tenant_id": "AZURE_TENANT_ID",
    "client_id": "AZURE_CLIENT_ID",
    "client_secret": "AZURE_CLIENT_SECRET",
}


def _common_from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (debug := os.environ.get(_COMMON_ENV["enable_debug"])) is not None:
        out["enable_debug"] = debug.strip().lower() in ("1", "true", "yes", "on")
    if (retries := os.environ.get(_COMMON_ENV["retries"])) is not None:
        try:
            out["retries"] = int(retries)
        except ValueError:
            raise ValueError(f"{_COMMON_ENV['retries']}={retries!r} is not a whole number") from None
    if (backoff := os.environ.get(_COMMON_ENV["backoff"])) is not None:
        try:
            out["backoff"] = timedelta(seconds=float(backoff))
        except ValueError:
            raise ValueError(f"{_COMMON_ENV['backoff']}={backoff!r} is not a number of seconds") from None
    return out


def _set(env: dict[str, str]) -> dict[str, Any]:
    return {name: os.environ[var] for name, var in env.items() if os.environ.get(var)}


@dataclass(frozen=True)
class Storage:
    """Settings every store takes: how often a failed request is retried (``retries``, waiting
    ``backoff`` at first, then twice as long each time), whether storage calls are logged
    (``enable_debug``), and whether objects written inside a task carry the run and action
    that wrote them as object metadata (``attach_execution_metadata``)."""

    retries: int = 3
    backoff: timedelta = timedelta(seconds=5)
    enable_debug: bool = False
    attach_execution_metadata: bool = True

    def __post_init__(self) -> None:
        name = type(self).__name__
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"{name}(retries={self.retries!r}) must be a whole number, 0 or more")
        if not isinstance(self.backoff, timedelta) or self.backoff <= timedelta(0):
            raise ValueError(f"{name}(backoff={self.backoff!r}) must be a positive timedelta")
        for flag in ("enable_debug", "attach_execution_metadata"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{name}({flag}={getattr(self, flag)!r}) must be True or False")

    @classmethod
    def auto(cls) -> Storage:
        """The settings the ``FLYTE_STORAGE_*`` environment variables give."""
        return cls(**_common_from_env())

    def retry_config(self) -> dict[str, Any]:
        """The settings as obstore's retry configuration."""
        return {
            "max_retries": self.retries,
            "backoff": {
                "base": 2,
                "init_backoff": self.backoff,
                "max_backoff": max(self.backoff, timedelta(seconds=16)),
            },
            "retry_timeout": timedelta(minutes=3),
        }

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The store options these settings make (obstore's names, which its fsspec adapter takes
        too): retries, and with ``anonymous``, unsigned requests. ``kwargs`` are passed through
        and win."""
        out: dict[str, Any] = {"retry_config": self.retry_config()}
        if anonymous:
            out["config"] = {"skip_signature": True}
        out.update(kwargs)
        return out


@dataclass(frozen=True)
class S3(Storage):
    """Amazon S3 or an S3-compatible store (MinIO, moto...): ``endpoint`` (e.g.
    ``http://localhost:9000``), static keys, ``region``, and ``addressing_style`` ``"path"`` or
    ``"virtual"`` (bucket in the host name)."""

    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    addressing_style: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.addressing_style not in (None, "path", "virtual"):
            raise ValueError(f"S3(addressing_style={self.addressing_style!r}) must be 'path' or 'virtual'")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("S3(...): give access_key_id and secret_access_key together")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"S3(endpoint={self.endpoint!r}) must be an http:// or https:// URL")

    @classmethod
    def auto(cls, region: str | None = None) -> S3:
        """The settings the ``FLYTE_AWS_*`` and ``FLYTE_STORAGE_*`` environment variables give."""
        kwargs = {**_common_from_env(), **_set(_S3_ENV)}
        if region is not None:
            kwargs["region"] = region
        return cls(**kwargs)

    @classmethod
    def for_sandbox(cls) -> S3:
        """The MinIO of a Flyte sandbox cluster on this machine."""
        return cls(
            **_common_from_env(),
            endpoint="http://localhost:4566",
            access_key_id="minio",
            secret_access_key="miniostorage",
        )

    def store_config(self) -> dict[str, Any]:
        """What these settings set in an obstore ``S3Store`` config."""
        config: dict[str, Any] = {}
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if self.access_key_id and self.secret_access_key:
            config["access_key_id"] = self.access_key_id
            config["secret_access_key"] = self.secret_access_key
        if self.region:
            config["region"] = self.region
        if self.addressing_style:
            config["virtual_hosted_style_request"] = self.addressing_style == "virtual"
        return config

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        out = super().get_fsspec_kwargs(anonymous=anonymous)
        out["config"] = {**self.store_config(), **out.get("config", {})}
        if self.endpoint and self.endpoint.startswith("http://"):
            out["client_options"] = {"allow_http": True}
        out.update(kwargs)
        return out


@dataclass(frozen=True)
class GCS(Storage):
    """Google Cloud Storage; credentials come from ``GOOGLE_APPLICATION_CREDENTIALS`` or the
    machine's service account."""

    @classmethod
    def auto(cls) -> GCS:
        return cls(**_common_from_env())


@dataclass(frozen=True)
class ABFS(Storage):
    """Azure Blob Storage / Data Lake: an account and its key, or a service principal
    (``tenant_id``, ``client_id``, ``client_secret``)."""

    account_name: str | None = None
    account_key: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        principal = (self.tenant_id, self.client_id, self.client_secret)
        if any(principal) and not all(principal):
            raise ValueError("ABFS(...): a service principal needs tenant_id, client_id and client_secret")

    @classmethod
    def auto(cls) -> ABFS:
        """The settings the ``AZURE_*`` and ``FLYTE_STORAGE_*`` environment variables give."""
        return cls(**_common_from_env(), **_set(_ABFS_ENV))

    def store_config(self) -> dict[str, Any]:
        """What these settings set in an obstore ``AzureStore`` config."""
        config: dict[str, Any] = {}
        for name in ("account_name", "account_key", "tenant_id", "client_id", "client_secret"):
            if getattr(self, name):
                config[name] = getattr(self, name)
        return config

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        out = super().get_fsspec_kwargs(anonymous=anonymous)
        out["config"] = {**self.store_config(), **out.get("config", {})}
        out.update(kwargs)
        return out
