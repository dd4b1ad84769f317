"""How this process signs in to a backend, from the config (``admin.authType`` and friends)
or an API key, as the Rust client takes it (``auth=`` of ``RpcClient`` and ``Controller``).

As with the reference SDK: nothing is sent over a plaintext (insecure) connection unless a
sign-in is configured explicitly; over TLS, a backend that rejects a call gets the configured
flow, browser sign-in (PKCE) by default. An API key (``FLYTE_API_KEY``) is an application's
client id and secret. A client secret in the config (a file, or a variable naming it) means
the client-credentials flow, whatever ``authType`` says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte._bridge import signin
from flyte.errors import InitializationError

if TYPE_CHECKING:
    from flyte._config import Config

API_KEY_ENV = "FLYTE_API_KEY"


def token_cache_dir() -> str:
    return str(Path(os.path.expanduser("~")) / ".flyte" / "tokens")


def from_api_key(api_key: str) -> dict[str, Any]:
    try:
        _endpoint, client_id, secret, _org = signin.decode_api_key(api_key)
    except ValueError as e:
        raise InitializationError("InvalidApiKey", "user", f"{API_KEY_ENV} or api_key: {e}") from None
    return {"flow": "ClientSecret", "client_id": client_id, "client_secret": secret, "cache_dir": None}


def _client_secret(cfg: Config) -> str | None:
    if cfg.client_secret_location:
        path = Path(cfg.client_secret_location).expanduser()
        try:
            return path.read_text().strip() or None
        except OSError as e:
            raise InitializationError(
                "InvalidClientSecret", "user", f"admin.clientSecretLocation: cannot read {path}: {e}"
            ) from None
    if cfg.client_secret_env_var:
        value = os.environ.get(cfg.client_secret_env_var)
        if not value:
            raise InitializationError(
                "InvalidClientSecret",
                "user",
                f"admin.clientSecretEnvVar names {cfg.client_secret_env_var}, which is not set",
            )
        return value.strip()
    return None


def settings_for(cfg: Config, *, insecure: bool, api_key: str | None = None) -> dict[str, Any] | None:
    """The ``auth=`` settings for a client of ``cfg``'s backend, or None for no sign-in."""
    if api_key:
        return from_api_key(api_key)
    cache = None if cfg.disable_token_cache else token_cache_dir()
    common: dict[str, Any] = {"scopes": list(cfg.scopes), "cache_dir": cache, "client_id": cfg.client_id}
    secret = _client_secret(cfg)
    if secret is not None:
        if not cfg.client_id:
            raise InitializationError(
                "InvalidClientSecret", "user", "a client secret needs admin.clientId as well"
            )
        return {**common, "flow": "ClientSecret", "client_secret": secret}
    flow = cfg.auth_type
    if flow == "Passthrough" or (flow is None and insecure):
        return None
    if flow == "ExternalCommand":
        return {**common, "flow": flow, "command": list(cfg.auth_command), "cache_dir": None}
    return {**common, "flow": flow or "Pkce"}


def ca_cert_of(cfg: Config) -> bytes | None:
    """The PEM bundle ``admin.caCertFilePath`` names, read now so a wrong path fails early."""
    if not cfg.ca_cert_file_path:
        return None
    path = Path(cfg.ca_cert_file_path).expanduser()
    try:
        return path.read_bytes()
    except OSError as e:
        raise InitializationError(
            "InvalidCaCert", "user", f"admin.caCertFilePath: cannot read {path}: {e}"
        ) from None
