"""Workflow tests run in both modes: in-process (local) and on the embedded backend.

The backend is started once per test session inside this process (it is Rust, serving
from its own threads); every action it runs is a separate Python process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import flyte

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture(scope="session")
def backend_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's backend. It logs every request it receives; when the session ends, each
    one (all sent by this SDK: the client and the controller inside tasks) must pass
    flyteidl2's validation rules, as a Flyte 2 cluster would check them."""
    from protovalidation import checked_backend

    with checked_backend(tmp_path_factory.mktemp("backend")) as backend:
        yield backend.endpoint


@pytest.fixture(params=["local", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "remote":
        endpoint = request.getfixturevalue("backend_endpoint")
        flyte.init(endpoint=endpoint, insecure=True)
    return str(request.param)


@pytest.fixture
def run(mode: str):
    """Runs a task in the test's mode and returns its result (raising its error); the run
    carries the counters' location, as a user's settings would."""

    def go(task, *args, **kwargs):
        env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
        return flyte.with_runcontext(mode=mode, env_vars=env_vars).run(task, *args, **kwargs).wait().result

    return go


@pytest.fixture(autouse=True)
def _counters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `bump` keeps side-effect counters: files, so action processes can count too."""
    directory = tmp_path / "counters"
    directory.mkdir()
    monkeypatch.setenv("FLYTE_TEST_COUNTERS", str(directory))
    return directory


# -- webhook receivers (an HTTP server on 127.0.0.1) and a real S3 API (moto's server mode) -----

from hooks import hooks  # noqa: E402, F401 - the fixture, for every test here
from s3server import S3, aws_env, moto_server  # noqa: E402

BUCKET = "flyte-test-bucket"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """A moto S3 server with one bucket; AWS_* env vars point at it for the whole session."""
    with moto_server() as server, pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
            mp.delenv(name, raising=False)
        for name, value in aws_env(server.endpoint).items():
            mp.setenv(name, value)
        server.create_bucket(BUCKET)
        yield S3(server.endpoint, BUCKET)
