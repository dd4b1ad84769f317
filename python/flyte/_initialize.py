"""``flyte.init`` and ``flyte.init_from_config``: where runs go and as whom."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyte.errors import InitializationError

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).


@dataclass(frozen=True)
class InitConfig:
    endpoint: str | None = None
    insecure: bool = False
    project: str | None = None
    domain: str | None = None
    org: str | None = None
    root_dir: Path | None = None
    image_builder: str = "local"
    api_key: str | None = None
    #: How clients sign in to the endpoint (``flyte._remote._auth``); None: they do not.
    auth: dict[str, Any] | None = None
    #: PEM certificates of a private CA for the endpoint (``admin.caCertFilePath``).
    ca_cert: bytes | None = None
    #: Where images without a registry of their own, the default image included, are pushed
    #: (``image.registry``).
    image_registry: str | None = None
    #: The platforms the default image is built for (``image.platforms``); empty: both.
    image_platforms: tuple[str, ...] = ()
    data_dir: Path | None = None
    storage: Any = None
    sources: dict[str, str] = field(default_factory=dict)


_lock = threading.Lock()
_config: InitConfig | None = None


def init(
    endpoint: str | None = None,
    insecure: bool = False,
    project: str | None = None,
    domain: str | None = None,
    org: str | None = None,
    root_dir: str | os.PathLike[str] | None = None,
    log_level: int | str | None = None,
    image_builder: str = "local",
    api_key: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    storage: Any = None,
    *,
    _from_config: Any = None,
) -> None:
    """Configures this process. With no endpoint, runs execute locally.

    ``api_key`` (or ``$FLYTE_API_KEY``) signs in with an application's credentials; without
    one, a TLS endpoint that requires authentication gets a browser sign-in."""
    from flyte._config import Config
    from flyte._remote._auth import API_KEY_ENV, ca_cert_of, settings_for

    global _config
    key = api_key or os.environ.get(API_KEY_ENV) or None
    auth = settings_for(_from_config or Config(), insecure=bool(insecure), api_key=key) if endpoint else None
    if image_builder not in ("local", "remote"):
        raise InitializationError.because(f"image_builder must be 'local' or 'remote', got {image_builder!r}")
    if log_level is not None:
        import logging

        logging.getLogger("flyte").setLevel(log_level)
    with _lock:
        _config = InitConfig(
            endpoint=endpoint or None,
            insecure=bool(insecure),
            project=project,
            domain=domain,
            org=org,
            root_dir=Path(root_dir).resolve() if root_dir is not None else None,
            image_builder=image_builder,
            api_key=api_key,
            auth=auth,
            ca_cert=ca_cert_of(_from_config) if _from_config is not None else None,
            image_registry=_from_config.image_registry if _from_config is not None else None,
            image_platforms=_from_config.image_platforms if _from_config is not None else (),
            data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
            storage=storage,
        )


def init_from_config(
    path_or_config: str | os.PathLike[str] | None = None,
    root_dir: str | os.PathLike[str] | None = None,
    log_level: int | str | None = None,
    image_builder: str | None = None,
    **overrides: Any,
) -> None:
    """Configures this process from a config file, found as ``flyte get config`` shows."""
    from flyte._config import load_config

    cfg = load_config(path_or_config, **overrides)
    init(
        endpoint=cfg.endpoint,
        insecure=cfg.insecure,
        project=cfg.project,
        domain=cfg.domain,
        org=cfg.org,
        root_dir=root_dir,
        log_level=log_level,
        image_builder=image_builder or cfg.image_builder,
        _from_config=cfg,
    )


def current_config() -> InitConfig:
    """The configuration set by ``init``, or defaults (local execution) if it was not called."""
    return _config if _config is not None else InitConfig()


def is_initialized() -> bool:
    return _config is not None


#: What a run on a backend belongs to when nothing is configured: the project and domain a
#: fresh Flyte 2 cluster (and the embedded backend) starts with.
DEFAULT_PROJECT = "flytesnacks"
DEFAULT_DOMAIN = "development"
#: The org of a single-tenant cluster, which ignores it (identifiers still need one).
DEFAULT_ORG = "local"


@dataclass(frozen=True)
class Scope:
    """Where a run on a backend lives: org, project, domain (all non-empty, as a cluster requires)."""

    org: str
    project: str
    domain: str


def org_from_endpoint(endpoint: str | None) -> str | None:
    """A multi-tenant cluster's org is the first label of its host name (``acme.cloud.example.com``)."""
    if not endpoint:
        return None
    host = endpoint.split("://", 1)[-1].lstrip("/").split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    labels = host.split(".")
    if len(labels) < 3 or all(label.isdigit() for label in labels):
        return None  # localhost, an IP address, or a bare domain: no org in it
    return labels[0]


def scope(
    project: str | None = None,
    domain: str | None = None,
    org: str | None = None,
    endpoint: str | None = None,
) -> Scope:
    """The org, project and domain a backend call uses: the arguments (the caller's, else the
    configuration's), else (inside a task) what the executor set, else a fresh cluster's."""
    # Here, not at the top: `import flyte` does not load the Rust extension.
    from flyte._bridge import contract

    cfg = current_config()
    org = org or cfg.org or os.environ.get(contract.ORG_NAME) or org_from_endpoint(endpoint or cfg.endpoint)
    return Scope(
        org=org or DEFAULT_ORG,
        project=project or cfg.project or DEFAULT_PROJECT,
        domain=domain or cfg.domain or DEFAULT_DOMAIN,
    )


def data_dir() -> Path:
    """Where local state lives: ``init(data_dir=...)``, else ``$FLYTE_DATA_DIR``, else ``~/.flyte/local``."""
    cfg = current_config()
    if cfg.data_dir is not None:
        return cfg.data_dir
    env = os.environ.get("FLYTE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".flyte" / "local"
