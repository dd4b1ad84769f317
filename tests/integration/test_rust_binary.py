"""`flyte-submit`, the Rust binary that embeds Python and the controller's client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

WORKFLOW = textwrap.dedent(
    """
    import asyncio
    import flyte
    import flyte.io

    env = flyte.TaskEnvironment(name="from_rust")

    @env.task
    async def double(x: int) -> int:
        return 2 * x

    @env.task
    async def main(xs: list[int], label: str = "sum") -> dict[str, int]:
        return {label: sum(await asyncio.gather(*[double(x) for x in xs]))}

    @env.task
    async def broken(x: int) -> int:
        raise ValueError(f"bad {x}")

    @env.task
    def shout(f: flyte.io.File) -> flyte.io.File:
        return flyte.io.File.from_string(f.read().upper(), "loud.txt")
    """
)


def submit_binary() -> Path:
    explicit = os.environ.get("FLYTE_SUBMIT_BIN")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = Path(explicit) if explicit else target / "release" / "flyte-submit"
    if not path.exists():
        pytest.fail(f"{path} is missing: `make test` builds it (cargo test --release builds the binary)")
    return path


def run_binary(tmp_path: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
        "FLYTE_DATA_DIR": str(tmp_path / "client"),
    }
    return subprocess.run(
        [str(submit_binary()), "--endpoint", endpoint, "--insecure", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_submits_watches_and_exits_with_the_result(tmp_path: Path, backend_endpoint: str) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    out = run_binary(tmp_path, backend_endpoint, "wf.py", "main", "--inputs", '{"xs": [1, 2, 3]}')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "task from_rust.main"
    assert lines[1].startswith("run r") and lines[1].endswith("created")
    phases = [line.split()[1] for line in lines if line.startswith("phase ")]
    assert phases[-1] == "SUCCEEDED"
    assert json.loads(lines[-1].removeprefix("outputs ")) == {"o0": {"sum": 12}}


def test_failed_run_and_bad_input_exit_non_zero(tmp_path: Path, backend_endpoint: str) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    failed = run_binary(tmp_path, backend_endpoint, "wf.py", "broken", "--inputs", '{"x": 4}')
    assert failed.returncode == 1
    assert "phase FAILED" in failed.stdout and "bad 4" in failed.stdout
    bad = run_binary(tmp_path, backend_endpoint, "wf.py", "main", "--inputs", '{"xs": "nope"}')
    assert bad.returncode == 2 and "xs" in bad.stderr
    unknown = run_binary(tmp_path, backend_endpoint, "wf.py", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    usage = subprocess.run([str(submit_binary())], capture_output=True, text=True)
    assert usage.returncode == 2 and "--endpoint" in usage.stderr and "Usage:" in usage.stderr
    extra = subprocess.run(
        [str(submit_binary()), "--endpoint", "x:1", "--colour", "red", "wf.py", "main"],
        capture_output=True,
        text=True,
    )
    assert extra.returncode == 2 and "--colour" in extra.stderr
    helped = subprocess.run([str(submit_binary()), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--inputs" in helped.stdout


def test_file_inputs_and_outputs(tmp_path: Path, backend_endpoint: str) -> None:
    (tmp_path / "wf.py").write_text(WORKFLOW)
    (tmp_path / "quiet.txt").write_text("hush")
    out = run_binary(tmp_path, backend_endpoint, "wf.py", "shout", "--inputs", '{"f": "quiet.txt"}')
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1].removeprefix("outputs "))["o0"]
    assert result["name"] == "loud.txt" and result["path"].startswith("file://")
    assert Path(result["path"].removeprefix("file://")).read_text() == "HUSH"
    missing = run_binary(tmp_path, backend_endpoint, "wf.py", "shout", "--inputs", '{"f": "absent.txt"}')
    assert missing.returncode == 2 and "absent.txt" in missing.stderr
