"""The benchmarks still run against the current API (at toy sizes; the numbers are not judged)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "FLYTE_DATA_DIR"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_backend_benchmark_runs() -> None:
    out = _run("benchmarks/backend/run.py", "--chain", "3", "--fanout", "5", "--stages")
    for mode in ("fresh", "reuse"):
        rows = [line for line in out.splitlines() if line.startswith(mode)]
        assert any("ms/call" in r for r in rows) and any("actions/s" in r for r in rows), out
    assert out.count("peak rss: backend / largest worker") == 4, out
    assert out.count("cpu per action") == 4 and out.count("written per action") == 4, out
    # Every stage of the attempts is timed, in both modes (4 of them: the chain and its 3 calls).
    for stage in ("parse", "load", "inputs", "setup", "run", "outputs"):
        assert out.count(f"stage {stage} (median of 4)") == 2, out


def test_io_benchmark_runs() -> None:
    out = _run("benchmarks/io/run.py", "--size-mb", "1", "--storage", "local", "--modes", "backend,local")
    assert "MB/s" in out or "MiB/s" in out, out
