"""Finding, reading and writing the SDK's YAML configuration file.

The effective configuration is built in layers, each overriding the one before it:
built-in defaults, the config file, ``FLYTE_*`` environment variables, and explicit
arguments (``flyte.init_from_config(...)`` keywords or global CLI options).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from flyte.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_ENV_VAR = "FLYTE_CONFIG"
DEFAULT_CREATE_PATH = Path(".flyte") / "config.yaml"
IMAGE_BUILDERS = ("local", "remote")

# Settings that can come from the environment; FLYTE_CONFIG is handled by discovery.
ENV_VARS: Mapping[str, str] = MappingProxyType(
    {
        "endpoint": "FLYTE_ENDPOINT",
        "insecure": "FLYTE_INSECURE",
        "project": "FLYTE_PROJECT",
        "domain": "FLYTE_DOMAIN",
        "org": "FLYTE_ORG",
        "auth_type": "FLYTE_AUTH_TYPE",
        "client_id": "FLYTE_ADMIN_CLIENTID",
        "client_secret_location": "FLYTE_ADMIN_CLIENTSECRETLOCATION",
        "client_secret_env_var": "FLYTE_ADMIN_CLIENTSECRETENVVAR",
        "scopes": "FLYTE_ADMIN_SCOPES",
        "auth_command": "FLYTE_AUTH_COMMAND",
        "ca_cert_file_path": "FLYTE_ADMIN_CACERTFILEPATH",
        "disable_token_cache": "FLYTE_ADMIN_DISABLEKEYRING",
        "image_platforms": "FLYTE_IMAGE_PLATFORMS",
    }
)

#: How a client signs in (``admin.authType``), as the reference SDK spells them.
AUTH_TYPES = ("Pkce", "DeviceFlow", "ClientSecret", "ExternalCommand", "Passthrough")

# Where each setting lives in the nested file layout: (section, key).
_NESTED_KEYS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "endpoint": ("admin", "endpoint"),
        "insecure": ("admin", "insecure"),
        "project": ("task", "project"),
        "domain": ("task", "domain"),
        "org": ("task", "org"),
        "image_builder": ("image", "builder"),
        "image_registry": ("image", "registry"),
        "image_platforms": ("image", "platforms"),
        "image_refs": ("image", "image_refs"),
        "auth_type": ("admin", "authType"),
        "client_id": ("admin", "clientId"),
        "client_secret_location": ("admin", "clientSecretLocation"),
        "client_secret_env_var": ("admin", "clientSecretEnvVar"),
        "scopes": ("admin", "scopes"),
        "auth_command": ("admin", "command"),
        "ca_cert_file_path": ("admin", "caCertFilePath"),
        "disable_token_cache": ("admin", "disableKeyring"),
    }
)

# The flat layout shown in the SDK README puts these at the top level instead.
_FLAT_KEYS = ("endpoint", "insecure", "project", "domain", "org")

# A ./config.yaml is only taken as ours when it has one of these, because plenty of
# unrelated projects keep a config.yaml at their root.
_MARKER_KEYS = ("admin", "task", "image", "endpoint")

_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})

SOURCE_DEFAULT = "default"
SOURCE_ARGUMENT = "argument"
SOURCE_DISCOVERED = "discovered"


@dataclass(frozen=True)
class Config:
    """The effective configuration, and for every setting the layer it came from."""

    endpoint: str | None = None
    insecure: bool = False
    project: str | None = None
    domain: str | None = None
    org: str | None = None
    image_builder: str = "local"
    image_registry: str | None = None
    #: The platforms the default image is built for (default: linux/amd64 and linux/arm64).
    image_platforms: tuple[str, ...] = ()
    #: Image URIs by reference name (``Image.from_ref_name``).
    image_refs: tuple[tuple[str, str], ...] = ()
    #: Signing in to a backend that requires it (see ``flyte._remote._auth``).
    auth_type: str | None = None
    client_id: str | None = None
    client_secret_location: str | None = None
    client_secret_env_var: str | None = None
    scopes: tuple[str, ...] = ()
    auth_command: tuple[str, ...] = ()
    #: A PEM bundle of CAs to trust for the endpoint (a private CA).
    ca_cert_file_path: str | None = None
    #: Keep tokens in memory only, not in ``~/.flyte/tokens``.
    disable_token_cache: bool = False
    #: ``flyte start local``: image name (or prefix) -> the environment that runs it.
    local_images: tuple[tuple[str, str], ...] = ()
    path: Path | None = None
    # Excluded from hashing because mappings are unhashable; still part of equality.
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-friendly values (``path`` as a string)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in SETTINGS}
        out["path"] = str(self.path) if self.path is not None else None
        return out


SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(Config) if f.name not in ("path", "sources"))


def _error(message: str) -> ConfigError:
    # ConfigError's first positional parameter is the error code, not the message.
    return ConfigError.because(message)


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _fallback_paths() -> list[Path]:
    """Locations tried after ./config.yaml, first found wins."""
    home = _home()
    return [
        Path.cwd() / ".flyte" / "config.yaml",
        home / ".union" / "config.yaml",
        home / ".flyte" / "config.yaml",
    ]


def _existing_file(raw: str | os.PathLike[str], origin: str) -> Path:
    p = Path(raw).expanduser().absolute()
    if not p.exists():
        raise _error(f"Config file {p} ({origin}) does not exist")
    if not p.is_file():
        raise _error(f"Config file {p} ({origin}) is not a file")
    return p


def _discover(explicit: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    if explicit is not None and os.fspath(explicit) != "":
        return _existing_file(explicit, "given explicitly"), SOURCE_ARGUMENT
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return _existing_file(from_env, f"from {CONFIG_ENV_VAR}"), f"env {CONFIG_ENV_VAR}"
    local = Path.cwd() / "config.yaml"
    if local.is_file():
        if _looks_like_flyte_config(local):
            return local, SOURCE_DISCOVERED
    for candidate in _fallback_paths():
        if candidate.is_file():
            return candidate, SOURCE_DISCOVERED
    return None, SOURCE_DEFAULT


def discover_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use, or ``None`` when there is none.

    Order: ``explicit``, ``$FLYTE_CONFIG``, ``./config.yaml`` (only if it looks like a Flyte
    config), ``./.flyte/config.yaml``, ``~/.union/config.yaml``, ``~/.flyte/config.yaml``.
    An explicit path or ``$FLYTE_CONFIG`` naming a missing file raises :class:`ConfigError`.
    """
    return _discover(explicit)[0]


def _looks_like_flyte_config(path: Path) -> bool:
    try:
        data = _read_yaml(path)
    except ConfigError as e:
        # Not necessarily ours, so a broken file here must not stop discovery.
        logger.debug("Skipping %s: %s", path, e)
        return False
    if isinstance(data, Mapping) and any(k in data for k in _MARKER_KEYS):
        return True
    logger.debug("Skipping %s: it has none of the keys %s", path, ", ".join(_MARKER_KEYS))
    return False


def _read_yaml(path: Path) -> Any:
    import yaml  # deferred: the CLI imports this module just to build its command tree

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _error(f"Cannot read config file {path}: {e}") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _error(f"Invalid YAML in config file {path}{where}: {problem}") from e


def _parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _error(f"{where} must be true or false, got {value!r}")


def _parse_str(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        raise _error(f"{where} must be a string, got {type(value).__name__} {value!r}")
    value = value.strip()
    return value or None


def _parse_builder(value: Any, where: str) -> str | None:
    text = _parse_str(value, where)
    if text is None:
        return None
    text = text.lower()
    if text not in IMAGE_BUILDERS:
        raise _error(f"{where} must be one of {', '.join(IMAGE_BUILDERS)}, got {value!r}")
    return text


def _parse_images(value: Any, where: str, base: Path | None = None) -> tuple[tuple[str, str], ...]:
    """``{image name or prefix: environment dir}``; relative dirs are taken from ``base``."""
    if not isinstance(value, Mapping):
        raise _error(f"{where} must be a mapping of image name to environment directory, got {value!r}")
    out: list[tuple[str, str]] = []
    for name, directory in value.items():
        if not isinstance(name, str) or not name.strip():
            raise _error(f"{where}: image names must be non-empty strings, got {name!r}")
        text = _parse_str(directory, f"{where}: '{name}'")
        if text is None:
            raise _error(f"{where}: '{name}' needs an environment directory")
        path = Path(text).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        out.append((name.strip(), str(path)))
    return tuple(out)


def _parse_words(value: Any, where: str, *, shell: bool) -> tuple[str, ...]:
    """A list, or a string: a JSON array, else words (split like a shell, or at commas and
    spaces)."""
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise _error(f"{where} must be a list of strings, got {value!r}")
        return tuple(v for v in value if v.strip())
    text = _parse_str(value, where)
    if text is None:
        return ()
    if text.startswith("["):
        import json

        try:
            parsed = json.loads(text)
        except ValueError as e:
            raise _error(f"{where} is not a JSON list: {e}") from None
        return _parse_words(parsed, where, shell=shell)
    if shell:
        import shlex

        return tuple(shlex.split(text))
    return tuple(w for w in re.split(r"[,\s]+", text) if w)


def _parse_auth_type(value: Any, where: str) -> str | None:
    text = _parse_str(value, where)
    if text is None:
        return None
    for known in AUTH_TYPES:
        if text.lower() == known.lower():
            return known
    raise _error(f"{where} must be one of {', '.join(AUTH_TYPES)}, got {value!r}")


def _parse_refs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``{reference name: image URI}``."""
    if not isinstance(value, Mapping):
        raise _error(f"{where} must be a mapping of image reference name to image URI, got {value!r}")
    out = []
    for name, uri in value.items():
        if not isinstance(name, str) or not name.strip() or not isinstance(uri, str) or not uri.strip():
            raise _error(f"{where}: {name!r}: {uri!r} is not a reference name and an image URI")
        out.append((name.strip(), uri.strip()))
    return tuple(sorted(out))


def _parse_setting(name: str, value: Any, where: str) -> Any:
    if name == "local_images":
        return _parse_images(value, where)
    if name == "image_refs":
        return _parse_refs(value, where)
    if name in ("insecure", "disable_token_cache"):
        return _parse_bool(value, where)
    if name == "auth_type":
        return _parse_auth_type(value, where)
    if name in ("scopes", "image_platforms"):
        return _parse_words(value, where, shell=False)
    if name == "auth_command":
        return _parse_words(value, where, shell=True)
    if name == "image_builder":
        return _parse_builder(value, where)
    return _parse_str(value, where)


def normalize_endpoint(endpoint: str) -> tuple[str, bool | None]:
    """Put an endpoint into the form gRPC expects.

    Returns the endpoint and whether its scheme implies a plaintext connection
    (``True`` for ``http://``, ``None`` when the scheme says nothing).
    """
    text = endpoint.strip()
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        _check_target(text, endpoint)
        return text, None
    parts = urlsplit(text)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # gRPC targets have no path, so a console URL pasted here still names the right host.
        logger.debug("Dropping the path of endpoint %s", endpoint)
    if not parts.netloc:
        raise _error(f"Endpoint {endpoint!r} has no host")
    _check_target(parts.netloc, endpoint)
    return f"dns:///{parts.netloc}", True if scheme.lower() == "http" else None


#: host[:port], the host a name, an IPv4 address or a bracketed IPv6 address.
_HOST_PORT = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$")
#: gRPC target schemes that name something other than a host (sockets, address lists).
_OTHER_TARGETS = ("unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")


def _check_target(text: str, given: str) -> None:
    """Refuses what no gRPC client can connect to, naming the forms that work."""
    forms = "host:port, dns:///host:port, http(s)://host[:port] or unix:/path"
    if not text or any(ch.isspace() for ch in text):
        raise _error(f"Endpoint {given!r} is not an address: use {forms}")
    if text.lower().startswith(_OTHER_TARGETS):
        return
    host = text
    if text.lower().startswith("dns:"):
        # dns:///host[:port] or dns://authority/host[:port]
        host = text[4:].lstrip("/")
        if text[4:].startswith("//") and not text[4:].startswith("///"):
            host = host.partition("/")[2]
    match = _HOST_PORT.match(host)
    if match is None or (match.group(1) is not None and not 0 < int(match.group(1)) < 65536):
        raise _error(f"Endpoint {given!r} is not an address: use {forms}")


def _section(data: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(f"{path}: '{name}' must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _settings_from_file(path: Path) -> dict[str, Any]:
    data = _read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise _error(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")

    sections = {name: _section(data, name, path) for name in ("admin", "task", "image", "local")}
    known_by_section: dict[str, set[str]] = {name: set() for name in sections}
    for section, key in _NESTED_KEYS.values():
        known_by_section[section].add(key)
    known_by_section["local"].add("images")
    for section, mapping in sections.items():
        for key in mapping:
            if key not in known_by_section[section]:
                logger.debug("%s: ignoring unknown key '%s.%s'", path, section, key)
    for key in data:
        if key not in sections and key not in _FLAT_KEYS:
            logger.debug("%s: ignoring unknown key '%s'", path, key)

    values: dict[str, Any] = {}
    for name, (section, key) in _NESTED_KEYS.items():
        nested_raw = sections[section].get(key)
        nested = (
            None if nested_raw is None else _parse_setting(name, nested_raw, f"{path}: '{section}.{key}'")
        )
        flat = None
        if name in _FLAT_KEYS and data.get(name) is not None:
            flat = _parse_setting(name, data[name], f"{path}: '{name}'")
        if nested is not None and flat is not None and nested != flat:
            raise _error(
                f"{path}: '{name}' and '{section}.{key}' disagree ({flat!r} vs {nested!r}); keep only one"
            )
        value = nested if nested is not None else flat
        if value is not None:
            values[name] = value
    images = sections["local"].get("images")
    if images is not None:
        values["local_images"] = _parse_images(images, f"{path}: 'local.images'", path.parent)
    return values


def _settings_from_env() -> dict[str, tuple[Any, str]]:
    values: dict[str, tuple[Any, str]] = {}
    for name, var in ENV_VARS.items():
        raw = os.environ.get(var)
        if raw is None or raw.strip() == "":
            continue
        value = _parse_setting(name, raw, f"environment variable {var}")
        if value is not None:
            values[name] = (value, f"env {var}")
    return values


def _settings_from_arguments(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(SETTINGS))
    if unknown:
        raise TypeError(
            f"Unknown config setting(s): {', '.join(unknown)}; expected one of {', '.join(SETTINGS)}"
        )
    values: dict[str, Any] = {}
    for name, raw in overrides.items():
        if raw is None:
            continue
        value = _parse_setting(name, raw, f"argument {name}")
        if value is not None:
            values[name] = value
    return values


def _apply_layer(
    values: dict[str, Any], sources: dict[str, str], layer: Mapping[str, Any], source_of: Mapping[str, str]
) -> None:
    # An http:// endpoint implies plaintext unless the same layer says otherwise.
    endpoint = layer.get("endpoint")
    implied_insecure: bool | None = None
    if endpoint is not None:
        endpoint, implied_insecure = normalize_endpoint(endpoint)
    for name, value in layer.items():
        values[name] = endpoint if name == "endpoint" else value
        sources[name] = source_of[name]
    if implied_insecure is not None and "insecure" not in layer:
        values["insecure"] = implied_insecure
        sources["insecure"] = source_of["endpoint"]


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Config:
    """Build the effective configuration.

    ``path`` is an explicit config file; without it the file is discovered (see
    :func:`discover_config_path`). Keyword ``overrides`` are setting names of :class:`Config`
    and beat everything else; those that are ``None`` are ignored.
    """
    arguments = _settings_from_arguments(overrides)
    config_path, path_source = _discover(path)

    values: dict[str, Any] = {f.name: f.default for f in fields(Config) if f.name in SETTINGS}
    sources: dict[str, str] = dict.fromkeys(SETTINGS, SOURCE_DEFAULT)

    if config_path is not None:
        from_file = _settings_from_file(config_path)
        _apply_layer(values, sources, from_file, dict.fromkeys(from_file, f"file {config_path}"))
    env = _settings_from_env()
    _apply_layer(values, sources, {k: v for k, (v, _) in env.items()}, {k: s for k, (_, s) in env.items()})
    _apply_layer(values, sources, arguments, dict.fromkeys(arguments, SOURCE_ARGUMENT))

    sources["path"] = path_source
    return Config(**values, path=config_path, sources=MappingProxyType(sources))


def write_config(
    path: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    insecure: bool | None = None,
    project: str | None = None,
    domain: str | None = None,
    org: str | None = None,
    builder: str | None = None,
) -> Path:
    """Write a config file in the nested layout, creating parent directories.

    Settings left as ``None`` are omitted, except the image builder, which is always
    written (``local`` by default) so the file shows where to switch it. An existing file
    is overwritten; callers that must not clobber one check first.
    """
    import yaml

    target = Path(path if path is not None else DEFAULT_CREATE_PATH).expanduser()

    admin: dict[str, Any] = {}
    if endpoint is not None:
        text = _parse_str(endpoint, "endpoint")
        if text is not None:
            admin["endpoint"], implied = normalize_endpoint(text)
            if insecure is None:
                insecure = bool(implied)
    if insecure is not None:
        admin["insecure"] = _parse_bool(insecure, "insecure")
    task: dict[str, Any] = {}
    for key, raw in (("domain", domain), ("org", org), ("project", project)):
        if raw is not None:
            text = _parse_str(raw, key)
            if text is not None:
                task[key] = text
    image = {"builder": (_parse_builder(builder, "builder") if builder is not None else None) or "local"}

    document: dict[str, Any] = {}
    if admin:
        document["admin"] = admin
    document["image"] = image
    if task:
        document["task"] = task

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False), encoding="utf-8")
    return target


__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CREATE_PATH",
    "ENV_VARS",
    "IMAGE_BUILDERS",
    "SETTINGS",
    "Config",
    "discover_config_path",
    "load_config",
    "normalize_endpoint",
    "write_config",
]
