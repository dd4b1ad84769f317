"""Embedded-backend benchmarks: per-action overhead, fan-out throughput, import time.

    python benchmarks/backend/run.py [--chain 50] [--fanout 1000] [--max-parallel 8]

Starts a backend on a temporary data dir (in this process: it serves from Rust threads),
then times, through the public API:

- chain: a parent calling N trivial sub-tasks one after another. Every action is its own
  Python process (forked from a warm one with --launcher fork, the default; a fresh
  interpreter with --launcher spawn), so total / (N + 1) is the per-action overhead
  (target <= 150 ms).
- fanout: a parent gathering N trivial sub-tasks; N / total is the throughput
  (target >= 20 actions/s on 2 cores).
- import: `python -c "import flyte"`, best of 7 (target <= 120 ms), for this interpreter
  and, when present, the reference implementation's virtualenv (benchmarks/.ref-venv).

Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

WORKFLOW = """
import asyncio
import flyte

env = flyte.TaskEnvironment(name="bench_backend")


@env.task
async def leaf(x: int) -> int:
    return x + 1


@env.task
async def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = await leaf(x)
    return x


@env.task
async def fanout(n: int) -> int:
    return sum(await asyncio.gather(*[leaf(i) for i in range(n)]))
"""


def import_time(python: str, repeat: int = 7) -> float | None:
    if not Path(python).exists():
        return None
    best = float("inf")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-c", "import flyte"], env=env, capture_output=True)  # warm .pyc files
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run([python, "-c", "import flyte"], env=env, capture_output=True)
        elapsed = time.perf_counter() - t
        if out.returncode != 0:
            return None
        best = min(best, elapsed)
    return best


def _chain_breakdown(run: object) -> tuple[float, float]:
    """Median run time of the chain's actions, and median gap between one ending and the next starting."""
    import statistics

    from flyte.remote import Action

    def seconds(ts: object) -> float:
        return ts.seconds + ts.nanos / 1e9  # type: ignore[attr-defined]

    actions = Action.listall(for_run_name=run.name)  # type: ignore[attr-defined]
    spans = sorted(
        (seconds(a.pb2.status.start_time), seconds(a.pb2.status.end_time)) for a in actions if a.parent_name
    )
    runs = [end - start for start, end in spans]
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    return 1000 * statistics.median(runs), 1000 * statistics.median(gaps or [0.0])


def _stage_rows(path: Path) -> list[tuple[str, str, str]]:
    """Median time of each stage of the action processes (the chain's), from their marks."""
    import json
    import statistics

    if not path.exists():
        return [("", "  stages", "none recorded (is the SDK installed in the action processes?)")]
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = list(runs[0]) if runs else []
    rows: list[tuple[str, str, str]] = []
    previous = None
    for stage in order:
        spans = [r[stage] - (r[previous] if previous else 0.0) for r in runs if stage in r]
        rows.append(("", f"  stage {stage} (median of {len(spans)})", f"{statistics.median(spans):.2f} ms"))
        previous = stage
    total = statistics.median(r[order[-1]] for r in runs) if order else 0.0
    rows.append(("", "  in the action process's main (median)", f"{total:.2f} ms"))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chain", type=int, default=50)
    p.add_argument("--fanout", type=int, default=1000)
    p.add_argument("--max-parallel", type=int, default=8)
    p.add_argument("--launcher", choices=["fork", "spawn"], default="fork", help="how action processes start")
    p.add_argument(
        "--stages",
        action="store_true",
        help="also break the chain's action processes down by stage (medians)",
    )
    args = p.parse_args()

    import flyte
    from flyte import _core
    from flyte._remote._local_backend import default_bin_dir
    from flyte._runtime._stages import STAGE_TIMES_ENV

    work = Path(tempfile.mkdtemp(prefix="flyte-bench-"))
    os.environ["FLYTE_DATA_DIR"] = str(work / "client")
    stage_file = work / "stages.jsonl"
    if args.stages:
        # Action processes inherit this process's environment (the backend runs in it).
        os.environ[STAGE_TIMES_ENV] = str(stage_file)
    (work / "bench_backend_wf.py").write_text(WORKFLOW)
    sys.path.insert(0, str(work))
    import bench_backend_wf as wf  # type: ignore[import-not-found]

    fork = [sys.executable, "-m", "flyte._runtime._forkserver"] if args.launcher == "fork" else None
    backend = _core.Backend(
        str(work / "backend"),
        str(default_bin_dir()),
        port=0,
        max_parallel=args.max_parallel,
        fork_server=fork,
    )
    flyte.init(endpoint=backend.endpoint, insecure=True)
    rows: list[tuple[str, str, str]] = []
    try:
        t = time.perf_counter()
        r = flyte.with_runcontext(mode="remote").run(wf.chain, n=args.chain)
        assert r.result == args.chain, r.result
        chain_s = time.perf_counter() - t
        per_action = chain_s / (args.chain + 1)
        rows.append(
            (
                "chain",
                f"{args.chain} sequential sub-tasks: {chain_s:.2f} s",
                f"{per_action * 1000:.0f} ms/action (target <= 150)",
            )
        )
        run_ms, gap_ms = _chain_breakdown(r)
        rows.append(("", "  of which: median action run time / gap", f"{run_ms:.0f} ms / {gap_ms:.0f} ms"))
        if args.stages:
            rows += _stage_rows(stage_file)
            os.environ.pop(STAGE_TIMES_ENV)

        t = time.perf_counter()
        r = flyte.with_runcontext(mode="remote").run(wf.fanout, n=args.fanout)
        assert r.result == args.fanout * (args.fanout + 1) // 2, r.result
        fan_s = time.perf_counter() - t
        rows.append(
            (
                "fanout",
                f"{args.fanout} parallel sub-tasks: {fan_s:.2f} s",
                f"{args.fanout / fan_s:.1f} actions/s (target >= 20)",
            )
        )
    finally:
        backend.shutdown()

    ours = import_time(sys.executable)
    ref = import_time(str(REPO / "benchmarks" / ".ref-venv" / "bin" / "python"))
    imp = f"ours {ours * 1000:.0f} ms" if ours else "ours: failed"
    imp += (
        f", reference {ref * 1000:.0f} ms" if ref else ", reference: not installed (see benchmarks/README.md)"
    )
    rows.append(("import", "python -c 'import flyte', best of 7", imp + " (target <= 120)"))

    width = max(len(r[1]) for r in rows)
    print(f"{'benchmark':<8}  {'what':<{width}}  result")
    for name, what, result in rows:
        print(f"{name:<8}  {what:<{width}}  {result}")
    print(
        f"(launcher {args.launcher}, load average {os.getloadavg()[0]:.2f}, "
        f"max_parallel {args.max_parallel}, {os.cpu_count()} cpus)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
