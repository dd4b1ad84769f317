"""Secrets a task needs, and where they appear inside the task's container."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Union

# The platform mounts secret files under one fixed directory; any other path would silently not exist.
SECRETS_MOUNT_PATH = "/etc/flyte/secrets"

_ENV_VAR_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
_NON_ALNUM_RE = r"[^A-Za-z0-9]"


def is_valid_env_var_name(name: str) -> bool:
    return bool(re.fullmatch(_ENV_VAR_RE, name))


def _check_name(field_name: str, value: object, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise TypeError(f"Secret({field_name}={value!r}) must be a string, e.g. Secret(key='my-api-key')")
    if not value.strip() or value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"Secret({field_name}={value!r}) must be non-empty and contain no whitespace")


@dataclass(frozen=True)
class Secret:
    """A secret from the secret store, exposed to the task as an env var or as a file.

    By default the secret lands in an env var named after ``group`` and ``key``
    (``Secret(key="access-key", group="aws")`` -> ``AWS_ACCESS_KEY``). ``as_env_var`` picks another
    name; ``mount`` exposes it as a file under ``/etc/flyte/secrets`` instead.
    """

    key: str
    group: str | None = None
    mount: str | None = None
    as_env_var: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key, required=True)
        _check_name("group", self.group, required=False)
        if self.mount is not None and self.as_env_var is not None:
            raise ValueError(
                f"Secret(key={self.key!r}) sets both mount={self.mount!r} and as_env_var={self.as_env_var!r}; "
                "a secret is exposed either as a file or as an env var, pick one"
            )
        if self.mount is not None:
            mount: object = self.mount
            if isinstance(mount, os.PathLike):
                mount = os.fspath(mount)
            if not isinstance(mount, str):
                raise TypeError(
                    f"Secret(mount={self.mount!r}) must be a path string, e.g. mount={SECRETS_MOUNT_PATH!r}"
                )
            if PurePosixPath(mount) != PurePosixPath(SECRETS_MOUNT_PATH):
                raise ValueError(
                    f"Secret(mount={self.mount!r}) is not supported; secrets are mounted as files only under "
                    f"mount={SECRETS_MOUNT_PATH!r}"
                )
            object.__setattr__(self, "mount", SECRETS_MOUNT_PATH)
        if self.as_env_var is not None:
            if not isinstance(self.as_env_var, str):
                raise TypeError(
                    f"Secret(as_env_var={self.as_env_var!r}) must be a string such as 'MY_API_KEY'"
                )
            if not is_valid_env_var_name(self.as_env_var):
                suggestion = self._derived_env_var_name(self.as_env_var, None)
                if not is_valid_env_var_name(suggestion):
                    suggestion = f"_{suggestion}"
                raise ValueError(
                    f"Secret(as_env_var={self.as_env_var!r}) is not a valid environment variable name; "
                    f"use letters, digits and '_' not starting with a digit, e.g. {suggestion!r}"
                )

    @staticmethod
    def _derived_env_var_name(key: str, group: str | None) -> str:
        raw = f"{group}_{key}" if group else key
        return re.sub(_NON_ALNUM_RE, "_", raw).upper()

    def stable_hash(self) -> str:
        """A hash of the secret's request (key, group, mount, env var) that every process computes alike."""
        import hashlib

        parts = (self.key, self.group or "", str(self.mount) if self.mount else "", self.as_env_var or "")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def env_var_name(self) -> str | None:
        """The env var holding the secret's value in the task, or ``None`` when it is mounted as a file."""
        if self.mount is not None:
            return None
        if self.as_env_var is not None:
            return self.as_env_var
        return self._derived_env_var_name(self.key, self.group)


SecretRequest = Union[str, Secret, Sequence[Union[str, Secret]]]


def normalize_secrets(secrets: SecretRequest | None) -> tuple[Secret, ...]:
    """Turn the ``secrets=`` forms users write (a key, a Secret, or a list of either) into Secrets.

    Rejects two secrets that would land in the same env var, since one would silently hide the other.
    """
    if secrets is None:
        return ()
    items: Sequence[str | Secret]
    if isinstance(secrets, (str, Secret)):
        items = (secrets,)
    elif isinstance(secrets, Sequence):
        items = secrets
    else:
        raise TypeError(
            f"secrets={secrets!r} must be a key, a flyte.Secret or a list of them, "
            "e.g. secrets=[flyte.Secret(key='api-key')]"
        )
    result: list[Secret] = []
    seen: dict[str, Secret] = {}
    for item in items:
        if isinstance(item, str):
            item = Secret(key=item)
        elif not isinstance(item, Secret):
            raise TypeError(f"secrets entry {item!r} must be a key string or a flyte.Secret")
        env = item.env_var_name()
        if env is not None:
            if env in seen and seen[env] != item:
                raise ValueError(
                    f"secrets {seen[env]!r} and {item!r} both land in env var {env!r}; "
                    "give one of them a different as_env_var"
                )
            seen[env] = item
        if item not in result:
            result.append(item)
    return tuple(result)


__all__ = ["SECRETS_MOUNT_PATH", "Secret", "SecretRequest", "is_valid_env_var_name", "normalize_secrets"]
