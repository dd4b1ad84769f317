"""A nested view of :class:`flyte._config.Config` (one flat set of settings, each with its
source), in the reference SDK's groups. One reader decides every value; this only regroups."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyte import _config


@dataclass(frozen=True)
class PlatformConfig:
    """Where the backend is and how to sign in to it."""

    endpoint: str | None = None
    insecure: bool = False
    insecure_skip_verify: bool = False
    ca_cert_file_path: str | None = None
    console_endpoint: str | None = None
    command: list[str] | None = None
    proxy_command: list[str] | None = None
    client_id: str | None = None
    client_credentials_secret: str | None = None
    scopes: list[str] = field(default_factory=list)
    auth_mode: str = "Pkce"
    audience: str | None = None
    rpc_retries: int = 3
    http_proxy_url: str | None = None
    disable_keyring: bool = False


@dataclass(frozen=True)
class TaskConfig:
    """Where runs and deployments go."""

    org: str | None = None
    project: str | None = None
    domain: str | None = None


@dataclass(frozen=True)
class ImageConfig:
    """How images are built and where they are pushed."""

    builder: str | None = None
    image_refs: dict[str, str] = field(default_factory=dict)
    registry: str | None = None


@dataclass(frozen=True)
class LocalConfig:
    """Local runs. They are always recorded in the data dir here, so both flags read True."""

    persistence: bool = True
    tracked: bool = True
    tracked_strict: bool = False


@dataclass(frozen=True)
class Config:
    """Every setting, grouped; ``source`` is the file they were read from (None: none)."""

    platform: PlatformConfig = field(default_factory=PlatformConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    source: Path | None = None

    def with_params(
        self,
        platform: PlatformConfig | None = None,
        task: TaskConfig | None = None,
        image: ImageConfig | None = None,
    ) -> Config:
        return Config(
            platform or self.platform, task or self.task, image or self.image, self.local, self.source
        )

    @classmethod
    def auto(cls, config_file: str | os.PathLike[str] | None = None) -> Config:
        """The settings of ``config_file`` (else the discovered file), overridden by ``FLYTE_*``."""
        return from_flat(_config.load_config(config_file))

    def flat(self) -> dict[str, Any]:
        """These settings as the names ``flyte._config.load_config`` takes as overrides."""
        p = self.platform
        return {
            "endpoint": p.endpoint,
            "insecure": p.insecure,
            "org": self.task.org,
            "project": self.task.project,
            "domain": self.task.domain,
            "image_builder": self.image.builder,
            "image_registry": self.image.registry,
            "auth_type": None if p.auth_mode == "Pkce" else p.auth_mode,
            "client_id": p.client_id,
            "scopes": tuple(p.scopes) or None,
            "auth_command": tuple(p.command) if p.command else None,
            "ca_cert_file_path": p.ca_cert_file_path,
            "disable_token_cache": p.disable_keyring or None,
        }


def from_flat(cfg: _config.Config) -> Config:
    secret = os.environ.get(cfg.client_secret_env_var) if cfg.client_secret_env_var else None
    return Config(
        platform=PlatformConfig(
            endpoint=cfg.endpoint,
            insecure=cfg.insecure,
            ca_cert_file_path=cfg.ca_cert_file_path,
            command=list(cfg.auth_command) or None,
            client_id=cfg.client_id,
            client_credentials_secret=secret,
            scopes=list(cfg.scopes),
            auth_mode=cfg.auth_type or "Pkce",
            disable_keyring=cfg.disable_token_cache,
        ),
        task=TaskConfig(org=cfg.org, project=cfg.project, domain=cfg.domain),
        image=ImageConfig(builder=cfg.image_builder, registry=cfg.image_registry),
        source=cfg.path,
    )


def auto(config_file: str | os.PathLike[str] | None = None) -> Config:
    """``Config.auto``: the configuration as found (file, then ``FLYTE_*`` variables)."""
    return Config.auto(config_file)


def get_config_file(c: str | os.PathLike[str] | None) -> Path | None:
    """The config file ``c`` names, else the one discovered; None when there is none."""
    return _config.discover_config_path(c)


def set_if_exists(d: dict[str, Any], k: str, val: Any) -> dict[str, Any]:
    """``d`` with ``d[k] = val`` when ``val`` is set (a bool always counts as set)."""
    if isinstance(val, bool) or (val is not None and val):
        d[k] = val
    return d
