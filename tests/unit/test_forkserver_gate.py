"""The fork server's children wait for the backend's go-ahead (sent once the child's pid is
recorded) before they run anything; a server that dies first takes its waiting children with it,
so a killed backend never leaves a child it cannot find again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    program = tmp_path / "program.py"
    program.write_text(f"from pathlib import Path\nPath({str(tmp_path / 'ran')!r}).touch()\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flyte._runtime._forkserver", "--program", str(program)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _fork(proc: subprocess.Popen[str], tmp_path: Path, rid: int) -> int:
    assert proc.stdin is not None and proc.stdout is not None
    request = {"id": rid, "args": [], "env": {}, "cwd": str(tmp_path), "log": str(tmp_path / f"{rid}.log")}
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    assert reply["id"] == rid, reply
    return int(reply["pid"])


def test_a_child_runs_only_after_its_go_ahead(server: subprocess.Popen[str], tmp_path: Path) -> None:
    pid = _fork(server, tmp_path, 1)
    time.sleep(0.5)
    assert not (tmp_path / "ran").exists()
    assert not _exited(pid)
    assert server.stdin is not None
    server.stdin.write(json.dumps({"go": 1, "pid": pid}) + "\n")
    server.stdin.flush()
    deadline = time.monotonic() + 30
    while not (tmp_path / "ran").exists():
        assert time.monotonic() < deadline, "the child never ran"
        time.sleep(0.02)


def test_a_server_killed_before_the_go_ahead_takes_its_child_along(
    server: subprocess.Popen[str], tmp_path: Path
) -> None:
    first = _fork(server, tmp_path, 1)
    second = _fork(server, tmp_path, 2)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 30
    while not (_exited(first) and _exited(second)):
        assert time.monotonic() < deadline, "a child outlived its server while waiting"
        time.sleep(0.02)
    assert not (tmp_path / "ran").exists()
