"""`flyte run` end to end, through the installed `flyte` console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

WORKFLOW = textwrap.dedent(
    """
    import asyncio
    import enum
    from dataclasses import dataclass

    import flyte
    import flyte.io

    env = flyte.TaskEnvironment(name="cli_env")

    class Color(enum.Enum):
        RED = "red"
        BLUE = "blue"

    @dataclass
    class Cfg:
        name: str
        size: int = 1

    @env.task
    async def square(x: int) -> int:
        return x * x

    @env.task
    async def main(items: list[int], scale: float = 1.0, verbose: bool = False) -> float:
        \"\"\"Sum of squares, scaled.\"\"\"
        squares = await asyncio.gather(*[square(i) for i in items])
        return sum(squares) * scale

    @env.task
    def describe(cfg: Cfg, color: Color = Color.RED, loud: bool = False) -> str:
        text = f"{cfg.name}:{cfg.size}:{color.value}"
        return text.upper() if loud else text

    @env.task
    def fail(msg: str) -> str:
        raise ValueError(msg)

    @env.task
    def pair(a: int) -> tuple[int, str]:
        return a, str(a)

    @env.task
    def sizes(f: flyte.io.File, d: flyte.io.Dir) -> str:
        return f"{len(f.read())}:{len(d.list_files_sync())}:{f.path.split('://')[0]}"
    """
)


def flyte_cmd() -> list[str]:
    exe = shutil.which("flyte", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "flyte.cli._main"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*flyte_cmd(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "wf.py"
    path.write_text(WORKFLOW)
    return path


def test_version_and_help(tmp_path: Path) -> None:
    out = run_cli("--version", cwd=tmp_path)
    assert out.returncode == 0 and "flyte" in out.stdout
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0 and "run" in out.stdout


def test_run_local_parses_typed_inputs(wf: Path) -> None:
    out = run_cli("run", "--local", str(wf), "main", "--items", "[1,2,3]", "--scale", "0.5", cwd=wf.parent)
    assert out.returncode == 0, out.stderr
    assert "7.0" in out.stdout


def test_run_bool_flags_enums_and_dataclasses(wf: Path) -> None:
    out = run_cli(
        "run",
        "--local",
        str(wf),
        "describe",
        "--cfg",
        '{"name": "a", "size": 3}',
        "--color",
        "blue",
        "--loud",
        cwd=wf.parent,
    )
    assert out.returncode == 0, out.stderr
    assert "A:3:BLUE" in out.stdout
    out = run_cli("run", "--local", str(wf), "describe", "--cfg", '{"name": "b"}', "--no-loud", cwd=wf.parent)
    assert "b:1:red" in out.stdout


def test_json_output_and_several_outputs(wf: Path) -> None:
    out = run_cli("--output-format", "json", "run", "--local", str(wf), "pair", "--a", "4", cwd=wf.parent)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["outputs"] == {"o0": 4, "o1": "4"}
    assert payload["phase"] == "SUCCEEDED"


def test_task_help_lists_inputs(wf: Path) -> None:
    out = run_cli("run", "--local", str(wf), "main", "--help", cwd=wf.parent)
    assert out.returncode == 0
    assert "--items" in out.stdout and "--scale" in out.stdout and "Sum of squares" in out.stdout


def test_bad_argument_names_the_parameter(wf: Path) -> None:
    out = run_cli("run", "--local", str(wf), "main", "--items", "[1, 'x']", cwd=wf.parent)
    assert out.returncode == 2
    assert "--items" in out.stderr
    out = run_cli("run", "--local", str(wf), "main", cwd=wf.parent)
    assert out.returncode == 2 and "--items" in out.stderr
    out = run_cli("run", "--local", str(wf), "describe", "--cfg", '{"size": 2}', cwd=wf.parent)
    assert out.returncode == 2 and "--cfg" in out.stderr


def test_unknown_task_and_missing_file(wf: Path) -> None:
    out = run_cli("run", "--local", str(wf), "nope", cwd=wf.parent)
    assert out.returncode != 0
    assert "nope" in out.stderr and "main" in out.stderr
    out = run_cli("run", "--local", str(wf.parent / "missing.py"), "main", cwd=wf.parent)
    assert out.returncode != 0 and "missing.py" in out.stderr


def test_failing_run_exits_non_zero_without_traceback(wf: Path) -> None:
    out = run_cli("run", "--local", str(wf), "fail", "--msg", "it broke", cwd=wf.parent)
    assert out.returncode == 1
    assert "it broke" in out.stderr
    assert "Traceback" not in out.stderr
    verbose = run_cli("-v", "run", "--local", str(wf), "fail", "--msg", "it broke", cwd=wf.parent)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr


def test_module_with_import_error_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_real_module_xyz\n")
    out = run_cli("run", "--local", str(broken), "main", cwd=tmp_path)
    assert out.returncode != 0
    assert "not_a_real_module_xyz" in out.stderr and "Traceback" not in out.stderr


def test_example_workflow_runs() -> None:
    out = run_cli(
        "run", "--local", str(REPO / "examples" / "hello.py"), "main", "--numbers", "[1,2,3]", cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    # calculate: 7, 9, 11 -> squares 49, 81, 121 -> mean 83.666...
    assert "83.66" in out.stdout


def test_file_and_dir_inputs_and_raw_data_path(wf: Path) -> None:
    (wf.parent / "in.txt").write_text("12345")
    (wf.parent / "d").mkdir()
    for name in ("a", "b"):
        (wf.parent / "d" / name).write_text(name)
    raw = wf.parent / "raw"
    args = ["run", "--local", "--raw-data-path", str(raw), str(wf), "sizes"]
    out = run_cli(*args, "--f", "in.txt", "--d", "d", cwd=wf.parent)
    assert out.returncode == 0, out.stderr
    assert "5:2:file" in out.stdout
    # The local inputs were stored under the raw data path, with the run's data.
    assert sorted(p.name for p in raw.rglob("*") if p.is_file()) == ["a", "b", "in.txt"]

    missing = run_cli(*args, "--f", "nope.txt", "--d", "d", cwd=wf.parent)
    assert missing.returncode == 2 and "--f" in missing.stderr and "is not a file" in missing.stderr
    not_dir = run_cli(*args, "--f", "in.txt", "--d", "in.txt", cwd=wf.parent)
    assert not_dir.returncode == 2 and "is not a directory" in not_dir.stderr
    bad_raw = run_cli(
        "run", "--local", "--raw-data-path", "ftp://x/y", str(wf), "pair", "--a", "1", cwd=wf.parent
    )
    assert (
        bad_raw.returncode == 2
        and "--raw-data-path" in bad_raw.stderr
        and "unsupported scheme" in bad_raw.stderr
    )
