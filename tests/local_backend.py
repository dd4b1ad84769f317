"""`flyte start local` as a separate process, for tests that need a backend of their own (one
they can kill, restart or send invalid requests to)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def start(data: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts a backend on ``data`` (``args``: more `flyte start local` options); the process and
    the endpoint it printed ("" if it exited before printing one)."""
    flyte_exe = str(Path(sys.executable).parent / "flyte")
    proc = subprocess.Popen(
        [flyte_exe, "start", "local", "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def running(data: Path, *args: str) -> Iterator[str]:
    """A backend on a free port (unless ``args`` name one) for the block; its endpoint."""
    proc, endpoint = start(data, *(args or ("--port", "0")))
    try:
        assert endpoint.startswith("127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        yield endpoint
    finally:
        stop(proc)


def user_namespaces() -> bool:
    """Whether this system gives processes user namespaces (which the backend's sandbox needs)."""
    return subprocess.run(["unshare", "--user", "--mount", "true"], capture_output=True).returncode == 0


@contextmanager
def sandboxed(data: Path, launcher: str) -> Iterator[str]:
    """A backend on ``data`` whose attempts start with ``launcher`` (fork or spawn), connected
    to with ``flyte.init``; skips the test where the sandbox cannot exist."""
    import pytest

    import flyte

    if not user_namespaces():
        pytest.skip("this system gives processes no user namespaces")
    with running(data, "--port", "0", "--launcher", launcher) as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        yield endpoint
