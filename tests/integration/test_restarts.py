"""The embedded backend killed (SIGKILL) under a running run and started again on the same data
dir: a backend restart is not the run's fault, so it uses none of its retries (the backend runs
with a system budget of 1 here), and a step that finished just before the crash — outputs
written, not yet recorded — is kept rather than run again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import local_backend
import pytest
import restart_wf
from counters import count

import flyte


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backend:
    """`flyte start local` on a fixed port and data dir, killed and started again at will."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, _free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            self.proc, endpoint = local_backend.start(
                self.data, "--port", str(self.port), "--system-retries", "1"
            )
            if endpoint == self.endpoint:
                return
            # The previous instance's port or lock may take a moment to be released.
            self.proc.wait(timeout=30)
            assert time.monotonic() < deadline, self.proc.stderr.read() if self.proc.stderr else ""
            time.sleep(0.2)

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            local_backend.stop(self.proc)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    b = Backend(tmp_path / "data")
    b.start()
    flyte.init(endpoint=b.endpoint, insecure=True)
    try:
        yield b
    finally:
        b.stop()


def _env() -> dict[str, str]:
    return {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}


def test_a_run_outlives_repeated_backend_crashes(backend: Backend) -> None:
    run = flyte.with_runcontext(env_vars=_env()).run(restart_wf.chain, n=8)
    for _ in range(4):
        time.sleep(1.2)
        backend.crash()
        backend.start()
    done = run.wait(quiet=True)
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    assert done.outputs()[0] == sum(range(8))
    # The parent was started again after crashes (more often than its system budget of 1
    # allows, and it has no retries of its own), and no step ran more than once per crash.
    assert count("chain") >= 3
    runs_of_steps = sum(count(f"step-{i}") for i in range(8))
    assert 8 <= runs_of_steps <= 8 + 4


def test_a_step_that_finished_before_the_crash_is_kept(backend: Backend, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run = flyte.with_runcontext(env_vars=_env()).run(restart_wf.chain, n=4, gate_at=2, gate=str(gate))
    ready = Path(f"{gate}.ready")
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline, "the step never reached its gate"
        time.sleep(0.05)
    step_pid = int(ready.read_text())
    # The backend is frozen while the step finishes (outputs written, process gone), then dies
    # before it could record that.
    assert backend.proc is not None
    os.kill(backend.proc.pid, signal.SIGSTOP)
    Path(f"{gate}.go").touch()
    while Path(f"/proc/{step_pid}").exists():
        assert time.monotonic() < deadline, "the step did not finish"
        time.sleep(0.02)
    backend.crash()
    backend.start()
    done = run.wait(quiet=True)
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    assert done.outputs()[0] == 0 + 1 + 2 + 3
    assert count("step-2") == 1, "the finished step ran again"
    # Three steps and the parent twice: the gated step's one attempt stands.
    steps = [a for a in done.actions() if a["task_name"] == "restarts.step"]
    assert len(steps) == 4 and all(a["phase"] == "SUCCEEDED" for a in steps)
    assert sorted(a["attempts"] for a in steps) == [1, 1, 1, 1]
