"""Object stores (one per bucket/container, cached) and readable storage errors."""

from __future__ import annotations

import configparser
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte import _context
from flyte._storage._config import ABFS, S3
from flyte._storage._uri import RemoteLocation, parse_remote

if TYPE_CHECKING:
    from obstore.store import ObjectStore


class StorageError(OSError):
    """A storage operation failed; the message names the URI and the cause."""

    def __init__(self, message: str, uri: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.uri = uri

    def __str__(self) -> str:
        return self.message


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """No object (or no objects under a prefix) at the URI."""


class BucketNotFoundError(StorageError, FileNotFoundError):
    """The bucket or container of the URI does not exist."""


class StorageAccessDeniedError(StorageError, PermissionError):
    """The credentials were refused or lack permission."""


_S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)
_GCS_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_KEY")
_AZURE_ENV = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_STORAGE_USE_EMULATOR",
)

_stores: dict[tuple[object, ...], ObjectStore] = {}
_stores_lock = threading.Lock()

#: The settings of flyte.init(storage=...) (a flyte.storage.Storage), None for the defaults.
_settings: Any = None


#: Storage calls are logged here when the settings ask for it (``enable_debug``).
_log = logging.getLogger("flyte.storage")


def configure(settings: Any) -> None:
    """Uses ``settings`` (a ``flyte.storage.Storage``, or None) for the stores opened from now on."""
    global _settings
    _settings = settings
    debugging = settings is not None and settings.enable_debug
    _log.setLevel(logging.DEBUG if debugging else logging.NOTSET)
    if debugging and not _log.hasHandlers():
        # Nothing would show the lines otherwise (Python's fallback prints warnings only).
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        _log.addHandler(handler)


def settings() -> Any:
    return _settings


def _retry_config() -> dict[str, Any] | None:
    return _settings.retry_config() if _settings is not None else None


def _aws_profile_values() -> dict[str, str]:
    """Static keys and region from ~/.aws/credentials and ~/.aws/config for AWS_PROFILE (or default)."""
    profile = os.environ.get("AWS_PROFILE", "default")
    out: dict[str, str] = {}
    creds = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    conf = Path(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")).expanduser()
    for path, section in (
        (creds, profile),
        (conf, profile if profile == "default" else f"profile {profile}"),
    ):
        if not path.is_file():
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        if parser.has_section(section):
            for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region"):
                value = parser.get(section, name, fallback=None)
                if value and name not in out:
                    out[name] = value
    return out


def _make_s3(bucket: str) -> ObjectStore:
    from obstore.store import S3Store

    env = os.environ
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        config["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            client["allow_http"] = True
    profile = _aws_profile_values() if "AWS_ACCESS_KEY_ID" not in env else {}
    key_id = env.get("AWS_ACCESS_KEY_ID") or profile.get("aws_access_key_id")
    secret = env.get("AWS_SECRET_ACCESS_KEY") or profile.get("aws_secret_access_key")
    token = env.get("AWS_SESSION_TOKEN") or profile.get("aws_session_token")
    if key_id and secret:
        config["access_key_id"] = key_id
        config["secret_access_key"] = secret
        if token:
            config["token"] = token
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or profile.get("region")
    if region is None and "AWS_ACCESS_KEY_ID" in env:
        region = _aws_profile_values().get("region")
    config["region"] = region or "us-east-1"
    if isinstance(_settings, S3):
        # flyte.init(storage=S3(...)) wins over the environment.
        config.update(_settings.store_config())
        if _settings.endpoint and _settings.endpoint.startswith("http://"):
            client["allow_http"] = True
    # Anything else (web identity, container and instance credentials, ...) obstore reads from the
    # environment itself.
    return S3Store(
        bucket,
        config=config,  # type: ignore[arg-type]
        client_options=client or None,  # type: ignore[arg-type]
        retry_config=_retry_config(),  # type: ignore[arg-type]
    )


def _make_gcs(bucket: str) -> ObjectStore:
    from obstore.store import GCSStore

    # GOOGLE_SERVICE_ACCOUNT / GOOGLE_APPLICATION_CREDENTIALS / metadata server: read by obstore.
    return GCSStore(bucket, retry_config=_retry_config())  # type: ignore[arg-type]


def _make_azure(container: str, account: str) -> ObjectStore:
    from obstore.store import AzureStore

    # AZURE_STORAGE_ACCOUNT_NAME / _KEY / _SAS_TOKEN, AZURE_CLIENT_*: read by obstore, unless
    # flyte.init(storage=ABFS(...)) gives them.
    config: dict[str, Any] = _settings.store_config() if isinstance(_settings, ABFS) else {}
    if account:
        config["account_name"] = account
    return AzureStore(container, config=config or None, retry_config=_retry_config())  # type: ignore[arg-type]


def store_for(uri: str) -> tuple[ObjectStore, str]:
    """The object store for a remote URI's bucket and the object key within it.

    Stores are cached per bucket (and per credential environment), thread-safe.
    """
    loc = parse_remote(uri)
    return _store(loc), loc.key


def _store(loc: RemoteLocation) -> ObjectStore:
    env_names = {"s3": _S3_ENV, "gs": _GCS_ENV, "az": _AZURE_ENV}[loc.scheme]
    cache_key: tuple[object, ...] = (
        os.getpid(),
        loc.scheme,
        loc.bucket,
        loc.account,
        tuple(os.environ.get(n) for n in env_names),
        id(_settings),
    )
    with _stores_lock:
        store = _stores.get(cache_key)
        if store is None:
            try:
                if loc.scheme == "s3":
                    store = _make_s3(loc.bucket)
                elif loc.scheme == "gs":
                    store = _make_gcs(loc.bucket)
                else:
                    store = _make_azure(loc.bucket, loc.account)
            except Exception as exc:
                err = map_error(exc, loc.uri(loc.key))
                raise StorageError(f"cannot configure storage for {loc.base}: {err}", err.uri) from exc
            _stores[cache_key] = store
            debug(f"opened a {loc.scheme} store for {loc.base}")
        return store


def debug(message: str) -> None:
    """Logs a storage call when flyte.init(storage=...(enable_debug=True)) asks for it."""
    if _settings is not None and _settings.enable_debug:
        _log.debug(message)


def execution_attributes() -> dict[str, str] | None:
    """Object metadata naming the run and action writing an object, inside a task (unless
    flyte.init(storage=...(attach_execution_metadata=False)) turns it off)."""
    if _settings is not None and not _settings.attach_execution_metadata:
        return None
    c = _context.current()
    if c is None:
        return None
    return {"flyte-run": c.run.name, "flyte-action": c.action_name}


_CODE_RE = re.compile(r"<Code>([^<]+)</Code>")
_MISSING_BUCKET = ("NoSuchBucket", "ContainerNotFound", "The specified bucket does not exist")
_DENIED = (
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationFailure",
    "AuthenticationFailed",
    "403 Forbidden",
    "401 Unauthorized",
)
_CRED_HINT = {
    "s3": "check AWS credentials",
    "gs": "check Google credentials (GOOGLE_APPLICATION_CREDENTIALS)",
    "az": "check Azure credentials (AZURE_STORAGE_ACCOUNT_NAME/KEY)",
}


def map_error(exc: BaseException, uri: str) -> StorageError:
    """Turn an obstore (or OS) error into a StorageError with a human message."""
    if isinstance(exc, StorageError):
        return exc
    from obstore import exceptions as obe

    text = str(exc)
    code_match = _CODE_RE.search(text)
    code = code_match.group(1) if code_match else ""
    try:
        loc: RemoteLocation | None = parse_remote(uri)
    except ValueError:
        loc = None
    if loc is not None and any(m in text for m in _MISSING_BUCKET):
        what = "container" if loc.scheme == "az" else "bucket"
        return BucketNotFoundError(f"{what} '{loc.bucket}' does not exist (accessing {uri})", uri)
    if isinstance(exc, (obe.PermissionDeniedError, obe.UnauthenticatedError, PermissionError)) or any(
        m in text for m in _DENIED
    ):
        hint = _CRED_HINT.get(loc.scheme, "check permissions") if loc else "check permissions"
        detail = f": {code}" if code else ""
        return StorageAccessDeniedError(f"access denied to {uri} ({hint}){detail}", uri)
    if isinstance(exc, (obe.NotFoundError, FileNotFoundError)):
        return ObjectNotFoundError(f"no object at {uri}", uri)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if len(first) > 300:
        first = first[:300] + "..."
    return StorageError(f"storage operation on {uri} failed: {first}", uri)
