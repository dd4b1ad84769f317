"""A real notebook, executed by a real Jupyter kernel (nbclient + ipykernel): tasks defined in
cells run locally and on the embedded backend (where they travel pickled, as ``__main__`` has no
file), and the seeds' notebook calls work — ``flyte.remote()``, ``list_runs()``, ``get_run()``,
``download_logs()``, ``run.logs.stream()``, ``run.wait()``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

DEFINE = """
import asyncio
import flyte

env = flyte.TaskEnvironment("notebook_env")

OFFSET = 100  # a notebook global the tasks read: it travels with them

@env.task
def shifted(x: int) -> int:
    print(f"shifting {x}")
    return x + OFFSET

@env.task
async def main(n: int) -> list[int]:
    print("fanning out")
    return list(await asyncio.gather(*(shifted.aio(i) for i in range(n))))


from dataclasses import dataclass

@dataclass
class Point:
    x: int
    y: int

@env.task
def flipped(p: Point) -> Point:
    return Point(x=p.y, y=p.x)
"""

LOCAL = """
flyte.init()
local = flyte.run(main, n=3)
local.logs.stream()
print("LOCAL", local.outputs()[0])
"""

BACKEND = """
flyte.init(endpoint={endpoint!r}, insecure=True)
run = flyte.run(main, n=4)
run.logs.stream()
done = run.wait()
print("BACKEND", done.phase.name, run.outputs()[0])
print("POINT", flyte.run(flipped, p=Point(1, 2)).wait(quiet=True).outputs()[0])
"""

REMOTE = """
remote = flyte.remote()
runs = remote.list_runs()
print("LISTED", run.name in [r.name for r in runs])
again = remote.get_run(run.name)
logs = again.download_logs({logs!r})
print("LOGS", sorted(p.name for p in logs.iterdir()))
"""


def _notebook(*cells: str) -> object:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell.strip()) for cell in cells]
    return nb


def _stdout(nb: object) -> str:
    out = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                out.append(output["text"])
    return "".join(out)


def _execute(nb: object, cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    # A kernel spec of this interpreter (the one with the SDK installed), in a clean home.
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    spec = tmp_path / "jupyter" / "kernels" / "flyte-test"
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "flyte test",
        "language": "python",
        "env": {"HOME": str(home), "FLYTE_DATA_DIR": str(tmp_path / "data")},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="flyte-test", resources={"metadata": {"path": str(cwd)}}
    )
    return client.execute()


def test_a_notebook_runs_locally_and_on_the_backend(
    backend_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    logs = tmp_path / "downloaded-logs"
    nb = _notebook(
        DEFINE,
        LOCAL,
        BACKEND.format(endpoint=backend_endpoint),
        REMOTE.format(logs=str(logs)),
    )
    done = _execute(nb, work, tmp_path, monkeypatch)
    out = _stdout(done)
    (tmp_path / "executed.ipynb").write_text(json.dumps(done, default=str))

    # Local mode: the tasks ran in the kernel itself and printed into the cell.
    assert "LOCAL [100, 101, 102]" in out, out
    # The backend: the cells' tasks ran in the backend's processes, the notebook global with them.
    assert "BACKEND SUCCEEDED [100, 101, 102, 103]" in out, out
    # A dataclass defined in the notebook travels with the task that uses it.
    assert "POINT Point(x=2, y=1)" in out, out
    # run.logs.stream() printed the root action's log, written in the backend's process.
    backend_part = out.split("BACKEND")[0].split("LOCAL")[-1]
    assert "fanning out" in backend_part, out
    # flyte.remote(): the run is listed, found by name, and its logs downloaded, one per attempt.
    assert "LISTED True" in out, out
    files = sorted(p.name for p in logs.iterdir())
    assert any(f.startswith("a0-") for f in files), files
    shifted_logs = [f for f in files if "shifted" in f]
    assert len(shifted_logs) == 4, files
    assert "shifting" in (logs / shifted_logs[0]).read_text()
