"""Secrets on the embedded backend: created, listed and deleted through SecretService (CLI),
sealed at rest, and delivered to exactly the tasks that declare them, as environment variables
or files; a declared secret that does not exist fails the action before its code runs."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_deploy import _cli

import flyte

WORKFLOW = """
import os
import flyte

env = flyte.TaskEnvironment(
    name="{prefix}_sec",
    secrets=[
        flyte.Secret(key="api-key", as_env_var="API_KEY"),
        flyte.Secret(key="db-password"),
        flyte.Secret(key="ssl-cert", mount="/etc/flyte/secrets"),
    ],
)
plain = flyte.TaskEnvironment(name="{prefix}_plain")
needs_missing = flyte.TaskEnvironment(name="{prefix}_missing", secrets=["not-created"])


@env.task
async def read_secrets() -> list[str]:
    cert_dir = os.environ["FLYTE_SECRETS_DEFAULT_DIR"]
    with open(os.path.join(cert_dir, "ssl-cert"), "rb") as f:
        cert = f.read().decode()
    return [os.environ["API_KEY"], os.environ["DB_PASSWORD"], cert]


@plain.task
async def sees_none() -> bool:
    return "API_KEY" in os.environ or "DB_PASSWORD" in os.environ


@needs_missing.task
async def never_runs() -> str:
    with open(os.environ["SIDE_EFFECT_FILE"], "w") as f:
        f.write("ran")
    return "ran"
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    from flyte import _core

    data = tmp_path / "backend"
    b = _core.Backend(str(data), str(Path(sys.executable).parent), port=0, max_parallel=4)
    try:
        yield b.endpoint, data
    finally:
        b.shutdown()


def _module(tmp_path: Path, endpoint: str) -> Any:
    from flyte._internal._modules import load_module

    prefix = "s" + uuid.uuid4().hex[:8]
    path = tmp_path / f"{prefix}_wf.py"
    path.write_text(textwrap.dedent(WORKFLOW.format(prefix=prefix)))
    module = load_module(path, tmp_path)
    flyte.init(endpoint=endpoint, insecure=True, root_dir=tmp_path)
    return module


def test_secrets_are_managed_sealed_and_delivered(
    tmp_path: Path, backend: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, data = backend
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"-----BEGIN CERT-----\nxyz\n")
    assert _cli(endpoint, tmp_path, "create", "secret", "api-key", "s3cr3t-value").returncode == 0
    made = _cli(endpoint, tmp_path, "create", "secret", "--from-file", str(cert), "ssl-cert")
    assert made.returncode == 0, made.stderr
    # A project-scoped secret wins over the one for every project.
    assert _cli(endpoint, tmp_path, "create", "secret", "db-password", "--value", "wide").returncode == 0
    scoped = _cli(
        endpoint,
        tmp_path,
        "create",
        "secret",
        "-p",
        "flytesnacks",
        "-d",
        "development",
        "db-password",
        "narrow",
    )
    assert scoped.returncode == 0, scoped.stderr

    again = _cli(endpoint, tmp_path, "create", "secret", "api-key", "other")
    assert again.returncode != 0 and "already exists" in again.stderr
    no_domain = _cli(endpoint, tmp_path, "create", "secret", "-p", "flytesnacks", "x", "y")
    assert no_domain.returncode != 0 and "--domain" in no_domain.stderr

    listed = _cli(endpoint, tmp_path, "get", "secret")
    assert listed.returncode == 0, listed.stderr
    assert "api-key" in listed.stdout and "ssl-cert" in listed.stdout and "db-password" in listed.stdout
    assert "s3cr3t-value" not in listed.stdout and "narrow" not in listed.stdout
    # Values are sealed at rest: not in the database, nor anywhere else in the data dir.
    for path in data.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-value" not in path.read_bytes(), path

    m = _module(tmp_path, endpoint)
    assert flyte.run(m.read_secrets).wait().result == [
        "s3cr3t-value",
        "narrow",
        "-----BEGIN CERT-----\nxyz\n",
    ]
    assert flyte.run(m.sees_none).wait().result is False

    side_effect = tmp_path / "side-effect"
    monkeypatch.setenv("SIDE_EFFECT_FILE", str(side_effect))
    failed = flyte.with_runcontext(env_vars={"SIDE_EFFECT_FILE": str(side_effect)}).run(m.never_runs)
    with pytest.raises(flyte.errors.RuntimeUserError) as missing:
        failed.wait().raise_for_status()
    assert "not-created" in str(missing.value)
    assert not side_effect.exists(), "the task's code must not run without its secrets"

    deleted = _cli(endpoint, tmp_path, "delete", "secret", "api-key")
    assert deleted.returncode == 0, deleted.stderr
    gone = _cli(endpoint, tmp_path, "get", "secret", "api-key")
    assert gone.returncode != 0 and "api-key" in gone.stderr


def test_local_mode_gets_the_same_secrets_or_the_environment(
    tmp_path: Path, backend: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, data = backend
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"local cert")
    for args in (("api-key", "from-store"), ("db-password", "pw"), ("--from-file", str(cert), "ssl-cert")):
        made = _cli(endpoint, tmp_path, "create", "secret", *args)
        assert made.returncode == 0, made.stderr
    m = _module(tmp_path, endpoint)
    monkeypatch.setenv("FLYTE_DATA_DIR", str(data))
    for name in ("API_KEY", "DB_PASSWORD", "NOT_CREATED"):
        monkeypatch.delenv(name, raising=False)
    local = flyte.with_runcontext(mode="local")
    assert local.run(m.read_secrets).result == ["from-store", "pw", "local cert"]

    side_effect = tmp_path / "local-side-effect"
    monkeypatch.setenv("SIDE_EFFECT_FILE", str(side_effect))
    with pytest.raises(flyte.errors.RuntimeUserError, match="not-created"):
        local.run(m.never_runs)
    assert not side_effect.exists()
    # The environment is a source too.
    monkeypatch.setenv("NOT_CREATED", "from-env")
    assert local.run(m.never_runs).result == "ran"
