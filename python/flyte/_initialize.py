"""``flyte.init`` and ``flyte.init_from_config``: where runs go and as whom."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyte import _logging
from flyte._context import ctx
from flyte.errors import InitializationError
from flyte.syncify import syncify

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
    #: "local" (this machine), "remote" (refused when a build is asked for), or a plugin's
    #: flyte.extend.ImageBuilder.
    image_builder: Any = "local"
    api_key: str | None = None
    #: How clients sign in to the endpoint (``flyte._remote._auth``); None: they do not.
    auth: dict[str, Any] | None = None
    #: PEM certificates of a private CA for the endpoint (``admin.caCertFilePath``).
    ca_cert: bytes | None = None
    #: Image URIs by reference name (``Image.from_ref_name``): ``init(images=...)`` over the
    #: config file's ``image.image_refs``.
    images: tuple[tuple[str, str], ...] = ()
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


#: Parameters of the reference SDK's ``init`` this SDK cannot honour, each with why; they are
#: accepted at their default values only, so code that leaves them alone runs unchanged.
_UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "insecure_skip_verify": (
        False,
        "TLS certificates are always verified; give ca_cert_file_path for a private CA",
    ),
    "proxy_command": (None, "connections through an authenticating proxy are not supported"),
    "auth_client_config": (None, "the sign-in endpoints are discovered from the backend"),
    "http_proxy_url": (None, "connections through an HTTP proxy are not supported"),
    "rpc_retries": (3, "calls to the backend are retried by the client's own policy"),
    "batch_size": (1000, "listing pages have the backend's size"),
    "source_config_path": (None, "the configuration file is named with init_from_config(path)"),
    "sync_local_sys_paths": (True, "the code bundle always carries the import roots tasks need"),
    "load_plugin_type_transformers": (True, "type-transformer plugins are not loaded from entry points"),
    "local_tracked": (False, "local runs are always recorded in the data dir"),
    "local_tracked_strict": (False, "local runs are always recorded in the data dir"),
}


def _refuse_unsupported(given: dict[str, Any]) -> None:
    for name, value in given.items():
        default, why = _UNSUPPORTED[name]
        if value != default:
            raise InitializationError.because(f"flyte.init({name}={value!r}) is not supported here: {why}")


@syncify
async def init(
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    root_dir: str | os.PathLike[str] | None = None,
    log_level: int | str | None = None,
    log_format: str | None = None,
    reset_root_logger: bool = False,
    user_log_level: int | str | None = None,
    endpoint: str | None = None,
    headless: bool = False,
    insecure: bool = False,
    insecure_skip_verify: bool = False,
    ca_cert_file_path: str | None = None,
    auth_type: str = "Pkce",
    command: list[str] | None = None,
    proxy_command: list[str] | None = None,
    api_key: str | None = None,
    client_id: str | None = None,
    client_credentials_secret: str | None = None,
    auth_client_config: Any = None,
    rpc_retries: int = 3,
    http_proxy_url: str | None = None,
    disable_keyring: bool = False,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: Any = "local",
    images: Any = None,
    image_registry: str | None = None,
    source_config_path: str | None = None,
    sync_local_sys_paths: bool = True,
    load_plugin_type_transformers: bool = True,
    local_persistence: bool = False,
    local_tracked: bool = False,
    local_tracked_strict: bool = False,
    scopes: list[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    _from_config: Any = None,
) -> None:
    """Configures this process. With no endpoint, runs execute locally (and are always recorded
    in the data dir, whatever ``local_persistence`` says).

    Signing in, as in the reference SDK: ``api_key`` (or ``$FLYTE_API_KEY``) is an application's
    credentials; ``client_id`` + ``client_credentials_secret`` the client-credentials flow;
    ``auth_type="ExternalCommand"`` runs ``command`` for a token; otherwise a TLS endpoint that
    requires it gets a browser sign-in (``headless=True``: the device-code flow). Tokens are
    cached under ``~/.flyte/tokens`` unless ``disable_keyring``. ``init(...)`` in sync code,
    ``await init.aio(...)`` in async code.
    """
    from dataclasses import replace

    from flyte._config import Config
    from flyte._remote._auth import API_KEY_ENV, ca_cert_of, settings_for

    global _config
    _refuse_unsupported({name: value for name, value in locals().items() if name in _UNSUPPORTED})
    if client_credentials_secret is not None and not (client_id or (_from_config and _from_config.client_id)):
        raise InitializationError(
            "InvalidClientSecret", "user", "client_credentials_secret needs client_id as well"
        )
    if isinstance(image_builder, str) and image_builder not in ("local", "remote"):
        raise InitializationError.because(
            f"image_builder must be 'local', 'remote' or an ImageBuilder, got {image_builder!r}"
        )
    if not isinstance(image_builder, str) and not callable(getattr(image_builder, "build_image", None)):
        raise InitializationError.because(
            f"image_builder {image_builder!r} is not an ImageBuilder (flyte.extend.ImageBuilder: build_image, "
            "get_checkers)"
        )
    if log_format not in (None, "console", "json"):
        raise InitializationError.because(f"log_format must be 'console' or 'json', got {log_format!r}")
    _logging.configure(log_level, log_format, reset_root_logger, user_log_level)
    cfg = _from_config or Config()
    flow = cfg.auth_type
    if auth_type != "Pkce" or headless:
        flow = "DeviceFlow" if headless and auth_type == "Pkce" else auth_type
    if client_credentials_secret is not None:
        flow = "ClientSecret"
    cfg = replace(
        cfg,
        auth_type=flow,
        client_id=client_id or cfg.client_id,
        scopes=tuple(scopes) if scopes is not None else cfg.scopes,
        auth_command=tuple(command) if command is not None else cfg.auth_command,
        ca_cert_file_path=ca_cert_file_path or cfg.ca_cert_file_path,
        disable_token_cache=disable_keyring or cfg.disable_token_cache,
    )
    key = api_key or os.environ.get(API_KEY_ENV) or None
    if key and not endpoint:
        from flyte._bridge import signin

        endpoint = signin.decode_api_key(key)[0]
    auth = None
    if endpoint:
        auth = settings_for(cfg, insecure=bool(insecure), api_key=key)
        if auth is not None and client_credentials_secret is not None and not key:
            auth = {**auth, "flow": "ClientSecret", "client_secret": client_credentials_secret}
    from flyte._storage._config import Storage
    from flyte._storage._store import configure as configure_storage

    if storage is not None and not isinstance(storage, Storage):
        raise TypeError(
            f"flyte.init(storage=...) takes flyte.storage.S3, GCS, ABFS or Storage settings, got {type(storage).__name__}"
        )
    configure_storage(storage)
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
            ca_cert=ca_cert_of(cfg),
            image_registry=image_registry or cfg.image_registry,
            image_platforms=cfg.image_platforms,
            images=_image_refs(images, cfg.image_refs),
            data_dir=Path(data_dir).expanduser() if data_dir is not None else None,
            storage=storage,
        )


@syncify
async def init_from_config(
    path_or_config: Any = None,
    root_dir: str | os.PathLike[str] | None = None,
    log_level: int | str | None = None,
    log_format: str = "console",
    user_log_level: int | str | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: str | None = None,
    images: Any = None,
    sync_local_sys_paths: bool = True,
    **overrides: Any,
) -> None:
    """Configures this process from a config file (a path, or a :class:`flyte.config.Config`),
    found as ``flyte get config`` shows when not given; ``org``/``project``/``domain`` override
    the file's."""
    from flyte._config import load_config
    from flyte.config import Config as GroupedConfig

    if isinstance(path_or_config, GroupedConfig):
        # flyte.config's view (e.g. Config.auto().with_params(...)): its values win over the file's.
        given = {k: v for k, v in path_or_config.flat().items() if v is not None}
        cfg = load_config(path_or_config.source, **{**given, **overrides})
    else:
        cfg = load_config(path_or_config, **overrides)
    await init.aio(
        endpoint=cfg.endpoint,
        insecure=cfg.insecure,
        project=project or cfg.project,
        domain=domain or cfg.domain,
        org=org or cfg.org,
        root_dir=root_dir,
        log_level=log_level,
        log_format=log_format,
        user_log_level=user_log_level,
        storage=storage,
        batch_size=batch_size,
        image_builder=image_builder or cfg.image_builder,
        images=images,
        sync_local_sys_paths=sync_local_sys_paths,
        _from_config=cfg,
    )


@syncify
async def init_from_api_key(
    api_key: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    root_dir: str | os.PathLike[str] | None = None,
    log_level: int | str | None = None,
    log_format: str | None = None,
    storage: Any = None,
    batch_size: int = 1000,
    image_builder: Any = "local",
    images: Any = None,
    sync_local_sys_paths: bool = True,
    insecure_skip_verify: bool = False,
    ca_cert_file_path: str | None = None,
) -> None:
    """Configures this process from an API key (``$FLYTE_API_KEY`` when not given), which
    names the backend as well as the credentials."""
    from flyte._bridge import signin
    from flyte._remote._auth import API_KEY_ENV

    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise InitializationError.because(f"init_from_api_key needs an api_key (or ${API_KEY_ENV})")
    try:
        endpoint, _, _, org = signin.decode_api_key(key)
    except ValueError as e:
        raise InitializationError("InvalidApiKey", "user", f"api_key: {e}") from None
    await init.aio(
        org=org or None,
        project=project,
        domain=domain,
        root_dir=root_dir,
        log_level=log_level,
        log_format=log_format,
        endpoint=endpoint,
        api_key=key,
        storage=storage,
        batch_size=batch_size,
        image_builder=image_builder,
        images=images,
        sync_local_sys_paths=sync_local_sys_paths,
        insecure_skip_verify=insecure_skip_verify,
        ca_cert_file_path=ca_cert_file_path,
    )


@syncify
async def init_in_cluster(
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    api_key: str | None = None,
    endpoint: str | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Configures a process started by a backend (a task's pod) from what the backend set in
    its environment; returns the settings used."""
    from flyte._bridge import contract

    settings = {
        "org": org or os.environ.get(contract.ORG_NAME) or None,
        "project": project or os.environ.get(contract.EXECUTION_PROJECT) or None,
        "domain": domain or os.environ.get(contract.EXECUTION_DOMAIN) or None,
        "endpoint": endpoint or os.environ.get(contract.ENDPOINT) or None,
        "insecure": insecure,
    }
    if settings["endpoint"] is None:
        raise InitializationError.because(
            f"init_in_cluster: no endpoint given and ${contract.ENDPOINT} is not set (not inside a backend's task?)"
        )
    await init.aio(**settings, api_key=api_key)
    return settings


@syncify
async def init_passthrough(
    endpoint: str | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Configures this process to call ``endpoint`` without signing in itself (a proxy in front
    of the backend authenticates); returns the settings used."""
    settings = {"endpoint": endpoint, "org": org, "project": project, "domain": domain, "insecure": insecure}
    await init.aio(**settings, auth_type="Passthrough")
    return settings


def current_project() -> str:
    """The project of the running task, else the configured one; InitializationError if neither."""
    c = ctx()
    if c is not None and c.action.project:
        return c.action.project
    cfg = _config
    if cfg is None or not cfg.project:
        raise InitializationError(
            "ProjectNotInitializedError",
            "user",
            "no project: call flyte.init(project=...) or run inside a task",
        )
    return cfg.project


def current_domain() -> str:
    """The domain of the running task, else the configured one; InitializationError if neither."""
    c = ctx()
    if c is not None and c.action.domain:
        return c.action.domain
    cfg = _config
    if cfg is None or not cfg.domain:
        raise InitializationError(
            "DomainNotInitializedError", "user", "no domain: call flyte.init(domain=...) or run inside a task"
        )
    return cfg.domain


def is_control_plane_available() -> bool:
    """Whether ``flyte.run`` here submits to a backend: inside a task, when the task runs on one
    (not in a local run); outside tasks, when ``init`` named an endpoint."""
    c = ctx()
    if c is not None:
        return c.mode != "local"
    return _config is not None and bool(_config.endpoint)


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


def _image_refs(given: Any, configured: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``init(images=...)`` (a dict of reference name to image URI) over the config file's."""
    refs = dict(configured)
    if given is not None:
        if not isinstance(given, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in given.items()
        ):
            raise InitializationError.because(
                f"images must map image reference names to image URIs, e.g. {{'gpu': 'ghcr.io/org/gpu:1'}}, got {given!r}"
            )
        refs.update(given)
    return tuple(sorted(refs.items()))
