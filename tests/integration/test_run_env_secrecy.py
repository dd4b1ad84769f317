"""A run's environment variables are how users hand it credentials: the run's tasks get the
values, but no file of the data dir (database, its WAL, logs) holds them in plain text, and
neither RunSpec replies nor the CLI show them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import attempt_token_wf
import local_backend
import pytest

import flyte

# Made at run time: the test's own file travels in the code bundle, so a literal would be found.
SECRET = f"s3cr3t-{uuid.uuid4().hex}"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    with local_backend.running(data) as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        yield endpoint, data


def test_run_env_values_reach_tasks_and_nothing_else(backend: tuple[str, Path]) -> None:
    endpoint, data = backend
    run = flyte.with_runcontext(env_vars={"API_TOKEN": SECRET}).run(
        attempt_token_wf.fingerprint_of, "API_TOKEN"
    )
    done = run.wait(quiet=True)
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    assert done.outputs()[0] == hashlib.sha256(SECRET.encode()).hexdigest()

    from flyteidl2.common import identifier_pb2

    from flyte._remote._client import BackendClient

    run_id = identifier_pb2.RunIdentifier(org="", project="flytesnacks", domain="development", name=run.name)
    details = asyncio.run(BackendClient(endpoint, insecure=True).get_run_details(run_id))
    shown = {pair.key: pair.value for pair in details.run_spec.envs.values}
    assert shown == {"API_TOKEN": "(hidden)"}

    env = {**os.environ, "FLYTE_ENDPOINT": endpoint, "FLYTE_INSECURE": "true"}
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "flyte"), "--output-format", "json", "get", "run", run.name],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert run.name in cli.stdout
    assert SECRET not in cli.stdout + cli.stderr

    leaked = [
        str(path.relative_to(data))
        for path in data.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaked == []
