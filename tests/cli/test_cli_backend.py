"""The CLI against the embedded backend: `flyte start local`, `run -f`, `get`, `abort`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import local_backend
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
    # The other tests use the default fork server; this one covers fresh interpreters.
    with local_backend.running(data, "--port", "0", "--launcher", "spawn") as endpoint:
        yield endpoint, data


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


def _in_a_terminal(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> tuple[int, str]:
    """Runs the CLI attached to a pseudo-terminal (as a user's shell runs it); its exit status
    and everything it wrote there, with the terminal's control sequences removed."""
    import pty
    import re
    import select

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [flyte_exe(), *args],
        cwd=cwd,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**env, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"},
        close_fds=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the terminal closed: the program ended
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        status = proc.wait(timeout=30)
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    text = b"".join(chunks).decode(errors="replace")
    return status, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", text)


def test_run_in_a_terminal_follows_with_a_live_view(workdir: Path, started_backend: tuple[str, Path]) -> None:
    endpoint, _ = started_backend
    env = {**os.environ, "FLYTE_DATA_DIR": str(workdir / "client")}
    env.pop("NO_COLOR", None)
    args = ["--endpoint", endpoint, "--insecure", "run", "wf.py", "main", "--items", "[1,2,3,4,5,6,7,8,9,10]"]
    status, screen = _in_a_terminal(args, workdir, env)
    assert status == 0, screen
    # The view: the run's header with its page, the root with its children's counts per phase,
    # children drawn up to a limit and the rest counted, and the totals.
    assert re.search(r"Run \S+\s+succeeded", screen), screen
    assert f"http://{endpoint}/v2/runs/project/" in screen
    assert re.search(r"main\s+succeeded\s+[\d.]+s\s+\[succeeded 10\]", screen), screen
    assert re.search(r"square\s+succeeded", screen), screen
    assert "… 2 more" in screen, screen
    assert "11 actions: succeeded 11" in screen, screen
    # The root's log above it, then the outputs as values.
    assert "main starting" in screen
    assert screen.rstrip().endswith("385"), screen

    # --no-follow: started, not waited for.
    status, screen = _in_a_terminal([*args[:4], "--no-follow", *args[4:]], workdir, env)
    assert status == 0, screen
    assert "Follow it with: flyte get run" in screen and "385" not in screen


def test_piped_run_output_stays_plain(workdir: Path, started_backend: tuple[str, Path]) -> None:
    endpoint, _ = started_backend
    env = {**os.environ, "FLYTE_DATA_DIR": str(workdir / "client")}
    env.pop("NO_COLOR", None)
    args = ["--endpoint", endpoint, "--insecure", "run", "wf.py", "main", "--items", "[1,2]"]
    # Piped, a run is started and not followed unless asked.
    started = cli(*args, cwd=workdir, env=env)
    assert started.returncode == 0, started.stderr
    assert "Started run" in started.stderr and started.stdout == ""
    followed = cli(*args[:4], "--follow", *args[4:], cwd=workdir, env=env)
    assert followed.returncode == 0, followed.stderr
    assert "\x1b[" not in followed.stdout + followed.stderr
    assert "main starting" in followed.stdout and followed.stdout.rstrip().endswith("5")


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
        # Seed 004's form: `flyte logs <run>` (the root action) and `flyte logs <run> <action>`.
        root_logs = cli("logs", run_name, cwd=workdir, env=env)
        assert root_logs.returncode == 0 and "main starting" in root_logs.stdout
        assert cli("logs", run_name, child, cwd=workdir, env=env).stdout == logs.stdout

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


def test_the_data_dir_and_everything_in_it_is_private(
    workdir: Path, started_backend: tuple[str, Path]
) -> None:
    endpoint, data = started_backend
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
        "[1,2]",
        cwd=workdir,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert (data.stat().st_mode & 0o777) == 0o700
    assert (data / "backend.db").stat().st_mode & 0o777 == 0o600
    # The database, its journal, logs, inputs, outputs, code bundles: none readable by others.
    shared = [
        f"{p.relative_to(data)} {oct(p.stat().st_mode & 0o777)}"
        for p in data.rglob("*")
        if not p.is_symlink() and p.stat().st_mode & 0o077
    ]
    assert shared == []
    assert any(p.suffix == ".log" for p in data.rglob("*"))


def test_the_backend_logs_what_it_handles(workdir: Path, started_backend: tuple[str, Path]) -> None:
    endpoint, data = started_backend
    (workdir / "notify_run.py").write_text(
        textwrap.dedent(
            f"""
            import flyte
            from flyte.models import ActionPhase
            from flyte.notify import Webhook
            import wf

            flyte.init(endpoint={endpoint!r}, insecure=True)
            # Nothing listens on port 9: the backend cannot deliver this, and says so in its log.
            hook = Webhook(on_phase=ActionPhase.SUCCEEDED, url="http://127.0.0.1:9/hook")
            run = flyte.with_runcontext(notifications=[hook]).run(wf.main, items=[1])
            print(run.wait(quiet=True).phase.name)
            """
        )
    )
    env = {**os.environ, "FLYTE_DATA_DIR": str(workdir / "client")}
    done = subprocess.run(
        [sys.executable, "notify_run.py"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "SUCCEEDED" in done.stdout, done.stderr
    logs = sorted((data / "logs").glob("backend.*.log"))
    assert len(logs) == 1, sorted(p.name for p in (data / "logs").iterdir())
    deadline = time.monotonic() + 30
    while "notification not delivered" not in logs[0].read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = logs[0].read_text()
    assert "embedded backend starting" in text and endpoint in text
    assert "WARN" in text and "notification not delivered" in text
    assert logs[0].stat().st_mode & 0o777 == 0o600
