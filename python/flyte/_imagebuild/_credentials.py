"""An image's ``registry_secret``: the registry credentials the local builder pulls and pushes with.

The secret holds a Docker ``config.json`` (``{"auths": {"HOST": {"auth": base64("user:pass")}}}``),
which is what ``flyte create secret --type image_pull NAME --from-file ~/.docker/config.json``
stores and what a cluster's image pull secret holds. The builder looks for it the way a task
looks for its secrets: the secret's environment variable when set, else this data dir's secret
store. It is written to a private file for the build only (buildah's ``--authfile``, Docker's
``DOCKER_CONFIG``) and removed afterwards.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flyte._bridge import backend
from flyte._image import Image
from flyte._imagebuild._dockerfile import build_secrets, secret_id
from flyte._initialize import data_dir, scope
from flyte._secret import Secret


class CredentialsError(ValueError):
    """An image's registry secret is missing or not a Docker config.json."""


def _lookup(secret: Secret, env: str | None) -> bytes | None:
    """A secret's value for a build: its environment variable when set, else this data dir's
    secret store (as a task finds its secrets); None when neither has it."""
    if env is not None and env in os.environ:
        return os.environ[env].encode()
    where = scope()
    value = backend.read_secret(str(data_dir()), where.project, where.domain, secret.key)
    return None if value is None else bytes(value)


def _secret_value(image: Image) -> bytes | None:
    secret = image.registry_secret
    if secret is None:
        return None
    env = secret.env_var_name()
    value = _lookup(secret, env)
    if value is None:
        raise CredentialsError(
            f"image {image.uri} names registry_secret {secret.key!r}, which is neither set in the "
            f"environment{f' (${env})' if env else ''} nor stored in this data dir; store the registry's "
            f"Docker config.json with `flyte create secret --type image_pull {secret.key} --from-file "
            "~/.docker/config.json`"
        )
    return value


def _checked(image: Image, value: bytes) -> bytes:
    key = image.registry_secret.key if image.registry_secret else "?"
    try:
        config = json.loads(value)
    except ValueError:
        config = None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict) or not auths:
        raise CredentialsError(
            f"registry_secret {key!r} of image {image.uri} is not a Docker config.json with "
            '"auths" ({"auths": {"HOST": {"auth": "<base64 user:password>"}}})'
        )
    return value


@contextmanager
def registry_auth(image: Image) -> Iterator[Path | None]:
    """A private Docker config.json with the image's registry credentials for the duration of
    a build, or ``None`` when the image has no registry secret (the tools' own logins apply)."""
    value = _secret_value(image)
    if value is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="flyte-registry-auth-") as directory:  # mode 0700
        path = Path(directory) / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_checked(image, value))
        yield path


def _build_secret_value(image: Image, secret: Secret) -> bytes:
    env = secret.env_var_name() or Secret._derived_env_var_name(secret.key, secret.group)
    value = _lookup(secret, env)
    if value is None:
        raise CredentialsError(
            f"image {image.uri} mounts secret {secret.key!r} while it builds, which is neither set in "
            f"the environment (${env}) nor stored in this data dir; store it with "
            f"`flyte create secret {secret.key}`"
        )
    return value


@contextmanager
def secret_mount_args(image: Image) -> Iterator[list[str]]:
    """The builder's ``--secret id=...,src=...`` arguments for the secrets the image's steps
    mount, each written to a private file for the duration of the build."""
    secrets = build_secrets(image)
    if not secrets:
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="flyte-build-secrets-") as directory:  # mode 0700
        args: list[str] = []
        for secret in secrets:
            path = Path(directory) / secret_id(secret)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(_build_secret_value(image, secret))
            args += ["--secret", f"id={secret_id(secret)},src={path}"]
        yield args
