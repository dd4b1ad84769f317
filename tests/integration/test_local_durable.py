"""Local runs are durable and inspectable: recorded in the data dir like a backend run, listed by
`flyte get run`, and resumed by name after the process running them was killed, without running
the actions that had finished again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flyteidl2.common import phase_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from counters import count  # noqa: E402

FINISHING = 6  # children that finish before the kill
WAITING = 4  # children still running when the process is killed

WORKFLOW = f"""
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from counters import bump

import flyte

env = flyte.TaskEnvironment(name="durable")


@env.task
async def child(i: int) -> int:
    bump(f"child-{{i}}")
    if i >= {FINISHING}:
        # Held until the test releases it: these are unfinished when the process is killed.
        release = Path(os.environ["RELEASE_FILE"])
        while not release.exists():
            await asyncio.sleep(0.02)
    return i * i


@env.task
def square_sum(values: list[int]) -> int:
    bump("square_sum")
    return sum(values)


@env.task
async def main(n: int) -> int:
    squares = await asyncio.gather(*(child(i) for i in range(n)))
    return await square_sum.aio(list(squares))
"""


def _flyte(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "flyte"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def _finished_children(db: Path, run: str) -> int:
    """Children of `run` recorded as succeeded (read with SQLite itself, as any reader would)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            row = conn.execute(
                "SELECT COUNT(*) FROM actions WHERE run = ? AND name != 'a0' AND phase = ?",
                (run, phase_pb2.ActionPhase.ACTION_PHASE_SUCCEEDED),
            ).fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
    return int(row[0])


@pytest.fixture
def project(tmp_path: Path, _counters: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    work = tmp_path / "project"
    work.mkdir()
    (work / "durable_wf.py").write_text(textwrap.dedent(WORKFLOW))
    env = {
        **os.environ,
        "FLYTE_DATA_DIR": str(tmp_path / "data"),
        "RELEASE_FILE": str(tmp_path / "release"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    env.pop("FLYTE_ENDPOINT", None)
    yield work, env
    _flyte("stop", "local", env=env, cwd=work)


def test_a_killed_local_run_resumes_without_rerunning_finished_actions(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    work, env = project
    db = tmp_path / "data" / "backend.db"
    n = FINISHING + WAITING
    argv = [str(Path(sys.executable).parent / "flyte"), "run", "--local", "--name", "durable-1"]
    argv += ["durable_wf.py", "main", "--n", str(n)]
    first = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while _finished_children(db, "durable-1") < FINISHING:
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the finishing children were never recorded"
            time.sleep(0.05)
        # Every waiting child has started too before the kill.
        while any(count(f"child-{i}") == 0 for i in range(FINISHING, n)):
            assert time.monotonic() < deadline, "the waiting children never started"
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

    # `flyte get run` serves the data dir's records (starting its backend, which the fixture
    # stops): the killed run shows as failed (its process is gone), with what had finished.
    shown = _flyte("get", "run", "durable-1", env=env, cwd=work)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "FAILED" in shown.stdout, shown.stdout
    actions = _flyte("get", "action", "durable-1", env=env, cwd=work)
    assert actions.returncode == 0, actions.stdout + actions.stderr
    assert actions.stdout.count("SUCCEEDED") >= FINISHING, actions.stdout

    # Resumed under the same name with other inputs: refused, nothing lost.
    other = _flyte(
        "run", "--local", "--name", "durable-1", "durable_wf.py", "main", "--n", "3", env=env, cwd=work
    )
    assert other.returncode != 0
    assert "other inputs" in other.stdout + other.stderr

    # Resumed with the same inputs (while the backend serves the same database): the children
    # that finished are not run again, the others are, and the result is right.
    (tmp_path / "release").write_text("go")
    resumed = _flyte(
        "run", "--local", "--name", "durable-1", "durable_wf.py", "main", "--n", str(n), env=env, cwd=work
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert str(sum(i * i for i in range(n))) in resumed.stdout
    assert [count(f"child-{i}") for i in range(FINISHING)] == [1] * FINISHING
    assert [count(f"child-{i}") for i in range(FINISHING, n)] == [2] * WAITING
    assert count("square_sum") == 1

    shown = _flyte("get", "run", "durable-1", env=env, cwd=work)
    assert shown.returncode == 0 and "SUCCEEDED" in shown.stdout, shown.stdout
    listing = _flyte("get", "run", env=env, cwd=work)
    assert "durable-1" in listing.stdout, listing.stdout

    # Running a finished run again by name replays it: nothing runs.
    again = _flyte(
        "run", "--local", "--name", "durable-1", "durable_wf.py", "main", "--n", str(n), env=env, cwd=work
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert str(sum(i * i for i in range(n))) in again.stdout
    assert count("square_sum") == 1
    assert [count(f"child-{i}") for i in range(n)] == [1] * FINISHING + [2] * WAITING
