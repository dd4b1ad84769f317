"""Embedded-backend benchmarks: sequential chains and fan-outs of trivial actions, with a
fresh process per action and on reusable workers, next to Ray and DBOS on the same machine.

    python benchmarks/backend/run.py [--chain 1000] [--fanout 1000,10000] [--modes fresh,reuse]
                                     [--stages] [--with-peers]

Starts a backend on a temporary data dir (in this process: it serves from Rust threads) for
each mode and workload, and runs through the public API:

- chain: a parent calling N trivial sub-tasks one after another; ms per call.
- fanout: a parent gathering N trivial sub-tasks; actions per second.

Modes: ``fresh`` runs every action in its own process (forked from a warm one, as `flyte
start local` does); ``reuse`` runs the sub-tasks on reusable workers
(``ReusePolicy(replicas=2, concurrency=32)``). For each: wall time, CPU per action of the
backend (this process) and of the task processes, the peak resident memory of the backend
and of the largest task process, and the files and bytes written to the data dir per action.

``--with-peers`` creates virtualenvs for Ray and DBOS (cached in ``--peer-cache``) and runs the
same workloads with them in this invocation (``peers.py``). ``--stages`` breaks the chain's
attempts down by stage (inside the attempt: parse, load, inputs, setup, run, outputs).
Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

WORKFLOW = """
import asyncio
import flyte

driver = flyte.TaskEnvironment(name="bench_driver")
fresh = flyte.TaskEnvironment(name="bench_fresh")
reuse = flyte.TaskEnvironment(
    name="bench_reuse", reusable=flyte.ReusePolicy(replicas=2, concurrency=32, idle_ttl=600)
)


@fresh.task
async def leaf(x: int) -> int:
    return x + 1


@reuse.task
async def reused_leaf(x: int) -> int:
    return x + 1


def _leaf(reused: bool):
    return reused_leaf if reused else leaf


@driver.task
async def chain(n: int, reused: bool) -> int:
    step = _leaf(reused)
    x = 0
    for _ in range(n):
        x = await step(x)
    return x


@driver.task
async def fanout(n: int, reused: bool) -> int:
    step = _leaf(reused)
    return sum(await asyncio.gather(*[step(i) for i in range(n)]))
"""


def _rss(pid: int | str) -> int:
    """Resident bytes of a process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


@dataclass
class Peaks:
    """Peak resident memory of this process (the backend), of the largest reusable worker and
    of the largest other task process, sampled every 100 ms while a workload runs."""

    backend: int = 0
    worker: int = 0
    task_process: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Peaks:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.1):
            self.backend = max(self.backend, _rss(me))
            for pid in _descendants(me):
                try:
                    worker = b"_runtime._worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if worker:
                    self.worker = max(self.worker, _rss(pid))
                else:
                    self.task_process = max(self.task_process, _rss(pid))


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _tree_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                size += (Path(root) / name).stat().st_size
                files += 1
            except OSError:
                pass
    return files, size


@dataclass
class Result:
    workload: str
    n: int
    seconds: float
    backend_cpu: float
    task_cpu: float
    peaks: Peaks
    files: int
    bytes: int

    def rows(self, mode: str) -> list[tuple[str, str, str]]:
        actions = self.n + 1
        if self.workload == "chain":
            speed = f"{self.seconds / self.n * 1000:.2f} ms/call"
        else:
            speed = f"{self.n / self.seconds:.0f} actions/s"
        return [
            (mode, f"{self.workload} {self.n}: {self.seconds:.2f} s", speed),
            (
                "",
                "  cpu per action: backend / task processes",
                f"{self.backend_cpu / actions * 1000:.2f} ms / {self.task_cpu / actions * 1000:.2f} ms",
            ),
            (
                "",
                "  peak rss: backend / largest worker / largest other task process",
                f"{self.peaks.backend / 2**20:.0f} MB / {self.peaks.worker / 2**20:.0f} MB / "
                f"{self.peaks.task_process / 2**20:.0f} MB",
            ),
            (
                "",
                "  written per action: files / bytes",
                f"{self.files / actions:.1f} / {self.bytes / actions:.0f}",
            ),
        ]


def run_workload(
    work: Path, workload: str, n: int, reused: bool, launcher: str, max_parallel: int, sandbox: bool = True
) -> Result:
    import bench_backend_wf as wf  # type: ignore[import-not-found]

    import flyte
    from flyte import _core
    from flyte._remote._local_backend import default_bin_dir, fork_server_command, worker_command

    data = Path(tempfile.mkdtemp(prefix=f"{workload}-", dir=work))
    backend = _core.Backend(
        str(data),
        str(default_bin_dir()),
        port=0,
        max_parallel=max_parallel,
        fork_server=fork_server_command() if launcher == "fork" else None,
        worker=worker_command(),
        sandbox=sandbox,
    )
    flyte.init(endpoint=backend.endpoint, insecure=True)
    task = wf.chain if workload == "chain" else wf.fanout
    expected = n if workload == "chain" else n * (n + 1) // 2
    before_files = _tree_size(data)
    cpu_self, cpu_children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    with Peaks() as peaks:
        t = time.perf_counter()
        try:
            result = flyte.with_runcontext(mode="remote").run(task, n=n, reused=reused).wait().result
        finally:
            seconds = time.perf_counter() - t
            backend_cpu = _cpu(resource.RUSAGE_SELF) - cpu_self
            # Task processes are counted once reaped: the workers and the fork server stop here.
            backend.shutdown()
    assert result == expected, (result, expected)
    files, size = _tree_size(data)
    return Result(
        workload,
        n,
        seconds,
        backend_cpu,
        _cpu(resource.RUSAGE_CHILDREN) - cpu_children,
        peaks,
        files - before_files[0],
        size - before_files[1],
    )


def _chain_stages(
    work: Path, n: int, reused: bool, launcher: str, max_parallel: int
) -> list[tuple[str, str, str]]:
    """Median time of each stage of the chain's attempts, from their marks."""
    import statistics

    from flyte._runtime._stages import STAGE_TIMES_ENV

    path = work / f"stages-{'reuse' if reused else 'fresh'}.jsonl"
    # Action processes inherit this process's environment (the backend runs in it).
    os.environ[STAGE_TIMES_ENV] = str(path)
    try:
        run_workload(work, "chain", n, reused, launcher, max_parallel)
    finally:
        os.environ.pop(STAGE_TIMES_ENV)
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


def import_time(python: str, repeat: int = 7) -> float | None:
    """Best wall time of `python -c "import flyte"` (None: that interpreter has no flyte)."""
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


def run_peers(cache: Path, chain: int, fanouts: list[int]) -> list[tuple[str, str, str]]:
    from peers import PEERS, ensure_venv

    rows: list[tuple[str, str, str]] = []
    for peer in PEERS:
        try:
            python = ensure_venv(cache, peer)
        except RuntimeError as e:
            rows.append((peer, "could not be installed", str(e).splitlines()[-1][:120]))
            continue
        args = [
            str(python),
            str(HERE / "peers.py"),
            peer,
            "--chain",
            str(chain),
            "--fanout",
            ",".join(map(str, fanouts)),
        ]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            rows.append((peer, "failed", (proc.stderr or proc.stdout).strip().splitlines()[-1][:160]))
            continue
        for line in proc.stdout.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r["workload"] == "chain":
                speed = f"{r['seconds'] / r['n'] * 1000:.2f} ms/call"
            else:
                speed = f"{r['n'] / r['seconds']:.0f} actions/s"
            rows.append((peer, f"{r['workload']} {r['n']}: {r['seconds']:.2f} s", speed))
            rows.append(("", "  peak rss: driver", f"{r['peak_rss'] / 2**20:.0f} MB"))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chain", type=int, default=1000)
    p.add_argument("--fanout", default="1000,10000", help="comma-separated sizes")
    p.add_argument("--modes", default="fresh,reuse", help="fresh, reuse, or both")
    p.add_argument("--max-parallel", type=int, default=8)
    p.add_argument("--launcher", choices=["fork", "spawn"], default="fork", help="how fresh processes start")
    p.add_argument("--stages", action="store_true", help="break the chain's fresh processes down by stage")
    p.add_argument(
        "--sandbox",
        choices=["on", "off", "both"],
        default="on",
        help="task processes in their own view of the data dir (on, the default), not (off), or each in turn",
    )
    p.add_argument(
        "--with-peers", action="store_true", help="also run Ray and DBOS (creates their virtualenvs)"
    )
    p.add_argument(
        "--peer-cache",
        type=Path,
        default=Path(os.environ.get("FLYTE_BENCH_CACHE", Path.home() / ".cache" / "flyte-bench")),
        help="where the peers' virtualenvs are kept",
    )
    args = p.parse_args()
    if args.chain < 0:
        p.error("--chain must be 0 (skip) or a positive number of calls")
    fanouts = [int(n) for n in args.fanout.split(",") if n.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in ("fresh", "reuse"):
            p.error(f"unknown mode {mode!r}: use fresh and/or reuse")

    work = Path(tempfile.mkdtemp(prefix="flyte-bench-"))
    os.environ["FLYTE_DATA_DIR"] = str(work / "client")
    (work / "bench_backend_wf.py").write_text(WORKFLOW)
    sys.path.insert(0, str(work))
    sys.path.insert(0, str(HERE))

    rows: list[tuple[str, str, str]] = []
    sandboxes = {"on": [True], "off": [False], "both": [True, False]}[args.sandbox]
    for mode in modes:
        reused = mode == "reuse"
        for sandbox in sandboxes:
            label = mode if sandbox else f"{mode}, no sandbox"
            if args.chain > 0:
                chain = run_workload(
                    work, "chain", args.chain, reused, args.launcher, args.max_parallel, sandbox
                )
                rows += chain.rows(label)
            for n in fanouts:
                fan = run_workload(work, "fanout", n, reused, args.launcher, args.max_parallel, sandbox)
                rows += fan.rows(label)
    if args.stages and args.chain > 0:
        for mode in modes:
            rows.append((mode, "the chain's attempts by stage", ""))
            rows += _chain_stages(work, args.chain, mode == "reuse", args.launcher, args.max_parallel)
    if args.with_peers:
        rows += run_peers(args.peer_cache, args.chain, fanouts)
    ours = import_time(sys.executable)
    ref = import_time(str(REPO / "benchmarks" / ".ref-venv" / "bin" / "python"))
    imp = f"ours {ours * 1000:.0f} ms" if ours else "ours: failed"
    imp += (
        f", reference {ref * 1000:.0f} ms" if ref else ", reference: not installed (see benchmarks/README.md)"
    )
    rows.append(("import", "python -c 'import flyte', best of 7", imp))

    width = max(len(r[1]) for r in rows)
    name_width = max(8, *(len(r[0]) for r in rows))
    print(f"{'mode':<{name_width}}  {'what':<{width}}  result")
    for name, what, result in rows:
        print(f"{name:<{name_width}}  {what:<{width}}  {result}")
    print(
        f"(launcher {args.launcher}, load average {os.getloadavg()[0]:.2f}, "
        f"max_parallel {args.max_parallel}, {os.cpu_count()} cpus)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
