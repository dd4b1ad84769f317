"""Behaviour that only a backend has: memory limits, and code frozen at submission."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import backend_wf

import flyte


def test_oom_is_caught_and_retried_with_more_memory(backend_endpoint: str) -> None:
    flyte.init(endpoint=backend_endpoint, insecure=True)
    run = flyte.with_runcontext(mode="remote").run(backend_wf.careful, mb=400)
    assert run.result == "OOM (OOMKilled), then with 2Gi: 400"


WORKFLOW = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    import flyte

    env = flyte.TaskEnvironment(name="frozen")

    @env.task
    async def child() -> str:
        return "v1"

    @env.task
    async def parent(flag: str) -> str:
        # Wait until the test has edited this file, then call the child.
        while not Path(flag).exists():
            await asyncio.sleep(0.05)
        return await child()

    if __name__ == "__main__":
        flyte.init(endpoint=sys.argv[1], insecure=True)
        run = flyte.with_runcontext(mode="remote", copy_style=sys.argv[3]).run(parent, flag=sys.argv[2])
        print("RUN", run.name, flush=True)
        print("RESULT", run.result, flush=True)
    """
)


def _run_editing_midway(tmp_path: Path, endpoint: str, copy_style: str) -> str:
    script = tmp_path / "frozen_wf.py"
    script.write_text(WORKFLOW)
    flag = tmp_path / f"edited-{copy_style}"
    env = {**os.environ, "FLYTE_DATA_DIR": str(tmp_path / "client")}
    proc = subprocess.Popen(
        [sys.executable, str(script), endpoint, str(flag), copy_style],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("RUN "), proc.stderr.read() if proc.stderr else ""
    # The run is submitted; change the code on disk, then let the parent go on.
    script.write_text(WORKFLOW.replace('return "v1"', 'return "v2"'))
    flag.write_text("go")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


def test_code_is_taken_as_of_submission(tmp_path: Path, backend_endpoint: str) -> None:
    assert _run_editing_midway(tmp_path, backend_endpoint, "loaded_modules") == "RESULT v1"
    # Without a bundle, actions read the files in place, and see the edit.
    assert _run_editing_midway(tmp_path, backend_endpoint, "none") == "RESULT v2"


def test_an_attempt_that_cannot_start_in_time_times_out(tmp_path: Path) -> None:
    """`Timeout(max_queued_time=...)`: an attempt waiting for a free slot longer than that ends
    TIMED_OUT (a backend with one slot, held by another task)."""
    from protovalidation import checked_backend

    with checked_backend(tmp_path / "backend", max_parallel=1) as backend:
        flyte.init(endpoint=backend.endpoint, insecure=True)
        run = flyte.with_runcontext(mode="remote").run(backend_wf.jam)
        occupied, outcome = run.result.split("; ")
        assert occupied == "occupied"
        assert outcome.startswith("timed out: ") and "max_queued_time" in outcome, outcome
