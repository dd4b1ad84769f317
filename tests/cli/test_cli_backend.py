"""The CLI against the embedded backend: `flyte start local`, `run -f`, `get`, `abort`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

WORKFLOW = textwrap.dedent(
    """
    import asyncio
    import flyte

    env = flyte.TaskEnvironment(name="cli_backend")

    @env.task
    async def square(x: int) -> int:
        print(f"squaring {x}", flush=True)
        return x * x

    @env.task
    async def main(items: list[int]) -> int:
        print("main starting", flush=True)
        return sum(await asyncio.gather(*[square(i) for i in items]))

    @env.task
    def fail(msg: str) -> str:
        raise ValueError(msg)

    @env.task
    async def sleepy(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "woke"
    """
)


def flyte_exe() -> str:
    return str(Path(sys.executable).parent / "flyte")


def cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [flyte_exe(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    return tmp_path


@pytest.fixture
def started_backend(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "backend-data"
    proc = subprocess.Popen(
        # The other tests use the default fork server; this one covers fresh interpreters.
        [flyte_exe(), "start", "local", "--port", "0", "--data-dir", str(data), "--launcher", "spawn"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert endpoint.startswith("127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        yield endpoint, data
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_run_follow_against_an_explicit_endpoint(workdir: Path, started_backend: tuple[str, Path]) -> None:
    endpoint, _ = started_backend
    env = {**os.environ, "FLYTE_DATA_DIR": str(workdir / "client")}
    out = cli(
        "--endpoint",
        endpoint,
        "--insecure",
        "run",
        "-f",
        "wf.py",
        "main",
        "--items",
        "[1,2,3]",
        cwd=workdir,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "14" in out.stdout
    assert "main starting" in out.stdout  # the root action's logs, streamed
    assert "succeeded" in out.stderr  # the phases it went through

    failed = cli(
        "--endpoint",
        endpoint,
        "--insecure",
        "run",
        "-f",
        "wf.py",
        "fail",
        "--msg",
        "no way",
        cwd=workdir,
        env=env,
    )
    assert failed.returncode == 1
    assert (
        "no way" in failed.stderr
        and "Traceback (most recent call last)" not in failed.stderr.split("Error")[-1]
    )


def test_a_second_backend_on_the_same_data_dir_is_refused(
    workdir: Path, started_backend: tuple[str, Path]
) -> None:
    _, data = started_backend
    out = cli(
        "start",
        "local",
        "--port",
        "0",
        "--data-dir",
        str(data),
        cwd=workdir,
        env=dict(os.environ),
        timeout=60,
    )
    assert out.returncode != 0 and "already running" in out.stderr


def test_run_without_endpoint_starts_the_local_backend_and_get_commands(workdir: Path) -> None:
    data = workdir / "data"
    env = {**os.environ, "FLYTE_DATA_DIR": str(data), "HOME": str(workdir)}
    try:
        out = cli("run", "-f", "wf.py", "main", "--items", "[2,3]", cwd=workdir, env=env)
        assert out.returncode == 0, out.stderr
        assert "13" in out.stdout
        run_name = out.stderr.split("Started run ")[1].split()[0]

        runs = cli("--output-format", "json", "get", "run", cwd=workdir, env=env)
        assert runs.returncode == 0, runs.stderr
        assert run_name in [r["run"] for r in json.loads(runs.stdout)]

        one = cli("get", "run", run_name, cwd=workdir, env=env)
        assert one.returncode == 0 and "SUCCEEDED" in one.stdout and "o0" in one.stdout
        assert "scalar" not in one.stdout, "values, not protobuf text"
        # JSON: one object, typed values.
        shown = json.loads(
            cli("--output-format", "json", "get", "run", run_name, cwd=workdir, env=env).stdout
        )
        assert shown["run"] == run_name and shown["phase"] == "SUCCEEDED"
        assert shown["outputs"] == {"o0": 13} and shown["attempts"] == 1
        assert isinstance(shown["duration_seconds"], float) and shown["error"] is None

        actions = cli("--output-format", "json", "get", "action", run_name, cwd=workdir, env=env)
        rows = json.loads(actions.stdout)
        assert len(rows) == 3 and {r["task"] for r in rows} == {"cli_backend.main", "cli_backend.square"}

        child = next(r["action"] for r in rows if r["task"] == "cli_backend.square")
        detail = json.loads(
            cli("--output-format", "json", "get", "action", run_name, child, cwd=workdir, env=env).stdout
        )
        assert detail["inputs"] in ({"x": 2}, {"x": 3}) and detail["outputs"]["o0"] in (4, 9)
        logs = cli("get", "logs", run_name, child, cwd=workdir, env=env)
        assert logs.returncode == 0 and "squaring" in logs.stdout

        missing = cli("get", "run", "rdoesnotexist", cwd=workdir, env=env)
        assert missing.returncode != 0 and "rdoesnotexist" in missing.stderr

        # Abort a long run.
        started = cli("run", "wf.py", "sleepy", "--seconds", "120", cwd=workdir, env=env)
        assert started.returncode == 0, started.stderr
        sleepy = started.stderr.split("Started run ")[1].split()[0]
        aborted = cli("abort", "run", sleepy, cwd=workdir, env=env)
        assert aborted.returncode == 0, aborted.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = cli("--output-format", "json", "get", "run", sleepy, cwd=workdir, env=env)
            if "ABORTED" in state.stdout:
                break
            time.sleep(0.5)
        assert "ABORTED" in state.stdout
    finally:
        stopped = cli("stop", "local", cwd=workdir, env=env, timeout=60)
        assert stopped.returncode == 0 and "Stopped" in stopped.stderr
        assert not (data / "backend.json").exists()
