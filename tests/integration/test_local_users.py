"""Without an authorization server a backend serves only the user who started it: another local
user reaching its loopback port is refused on every protocol (gRPC, Connect, the web UI), while
the owner's clients — ours, the reference SDK, a browser — need nothing extra."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import local_backend
import pytest

OTHER_USER = "nobody"


@pytest.fixture
def backend_endpoint(tmp_path: Path) -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root (CI runs as root)")
    with local_backend.running(tmp_path / "data") as endpoint:
        yield endpoint


def curl(*args: str, user: str | None = None, data: bytes = b"") -> tuple[int, str]:
    """curl's HTTP status and body, run as ``user`` (this process's user if None); ``data`` is
    on curl's stdin (another user cannot read this test's files)."""
    command = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    done = subprocess.run(command, capture_output=True, input=data, timeout=60, check=True)
    body, _, status = done.stdout.decode(errors="replace").rpartition("\n")
    return int(status), body


def connect_call(endpoint: str, method: str, message: bytes, user: str | None) -> tuple[int, str]:
    """A unary Connect call with a binary protobuf body."""
    return curl(
        "-X",
        "POST",
        "-H",
        "content-type: application/proto",
        "--data-binary",
        "@-",
        f"http://{endpoint}/flyteidl2.workflow.RunService/{method}",
        user=user,
        data=message,
    )


def connect_list_runs(endpoint: str, user: str | None) -> tuple[int, str]:
    return connect_call(endpoint, "ListRuns", b"", user)


def test_another_user_is_refused_on_every_protocol(backend_endpoint: str) -> None:
    status, body = curl(f"http://{backend_endpoint}/", user=OTHER_USER)
    assert status == 403, body
    assert "serves only the user who started it" in body

    status, body = connect_list_runs(backend_endpoint, OTHER_USER)
    assert status == 403, body
    error = json.loads(body)
    assert error["code"] == "permission_denied"
    assert "uid 0" in error["message"] and "comes from uid" in error["message"]

    # gRPC over HTTP/2: an empty ListRunsRequest, framed.
    done = subprocess.run(
        [
            "runuser", "-u", OTHER_USER, "--",
            "curl", "-sS", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge",
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "--data-binary", "@-",
            f"http://{backend_endpoint}/flyteidl2.workflow.RunService/ListRuns",
        ],
        input=b"\x00\x00\x00\x00\x00",
        capture_output=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    headers = done.stdout.decode().lower()
    assert "grpc-status: 7" in headers, headers


def test_a_refused_user_cannot_start_a_run(backend_endpoint: str) -> None:
    from flyteidl2.common import identifier_pb2
    from flyteidl2.workflow import run_service_pb2

    create = run_service_pb2.CreateRunRequest(
        run_id=identifier_pb2.RunIdentifier(
            org="", project="flytesnacks", domain="development", name="intruder"
        )
    )
    status, body = connect_call(backend_endpoint, "CreateRun", create.SerializeToString(), OTHER_USER)
    assert status == 403, body
    # The owner sees no run: nothing was created.
    status, body = connect_list_runs(backend_endpoint, None)
    assert status == 200, body
    assert "intruder" not in body


def test_the_owner_needs_nothing_extra(backend_endpoint: str) -> None:
    status, body = curl("-L", f"http://{backend_endpoint}/")
    assert status == 200, body
    assert "<html" in body.lower()
    status, body = connect_list_runs(backend_endpoint, None)
    assert status == 200, body
