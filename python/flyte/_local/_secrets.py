"""Declared secrets in local mode: the same store the embedded backend keeps (this data
dir's), or the environment, with the same clear error when one is missing.

Local tasks share this process, so a secret becomes an environment variable of the process
(or a file in a private directory named by the variable a backend sets for mounted secrets).
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from flyte._bridge import backend, contract
from flyte._initialize import DEFAULT_DOMAIN, DEFAULT_PROJECT, data_dir
from flyte.errors import RuntimeUserError

if TYPE_CHECKING:
    from flyte._secret import Secret

_mount_dir: str | None = None


def _files_dir() -> str:
    global _mount_dir
    if _mount_dir is None:
        _mount_dir = tempfile.mkdtemp(prefix="flyte-secrets-")  # 0700
    return _mount_dir


def provide(task: Any, project: str | None, domain: str | None) -> None:
    """Makes ``task``'s declared secrets available, or raises naming the missing ones."""
    secrets: tuple[Secret, ...] = getattr(task, "secrets", ())
    if not secrets:
        return

    missing = []
    for secret in secrets:
        env = secret.env_var_name()
        if env is not None and env in os.environ:
            continue
        value = backend.read_secret(
            str(data_dir()), project or DEFAULT_PROJECT, domain or DEFAULT_DOMAIN, secret.key
        )
        if value is None:
            missing.append(secret.key)
            continue
        if env is not None:
            os.environ[env] = value.decode()
        else:
            directory = _files_dir()
            path = os.path.join(directory, secret.key)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(value)
            os.environ[contract.SECRETS_DIR] = directory
    if missing:
        names = ", ".join(repr(k) for k in missing)
        raise RuntimeUserError(
            "BadRequest",
            f"{task.name} declares secret(s) {names}, which are neither set in the environment nor stored "
            "in this data dir; create them with `flyte create secret NAME VALUE`",
        )
