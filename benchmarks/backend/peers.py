"""The backend benchmark's workloads on Ray and on DBOS, for comparison in the same run.

    python peers.py ray|dbos --chain N --fanout N[,N...]

Run with a virtualenv that has the peer installed (``ensure_venv`` makes one). Prints one
JSON line per workload: ``{"workload", "n", "seconds", "peak_rss"}`` (peak resident bytes of
this driver process). Both peers get the same trivial task (``x + 1``):

- Ray 2.x: a local cluster with ``num_cpus=2``, warmed up with one task; the fan-out is
  ``ray.get`` of N remote calls, the chain N calls one after another.
- DBOS 3.x: SQLite as its system database; the chain is a workflow calling a step N times,
  the fan-out N workflows enqueued on a queue.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: What each peer's virtualenv installs.
PEERS = {"ray": ["ray==2.*"], "dbos": ["dbos==3.*"]}


def ensure_venv(cache: Path, peer: str) -> Path:
    """The Python of a virtualenv (under ``cache``) with ``peer`` installed; made if missing."""
    venv = cache / f"{peer}-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", *PEERS[peer]],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{proc.stdout}{proc.stderr}")
    stamp.touch()
    return python


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _report(workload: str, n: int, seconds: float) -> None:
    print(json.dumps({"workload": workload, "n": n, "seconds": seconds, "peak_rss": _peak_rss()}), flush=True)


def run_ray(chain: int, fanouts: list[int]) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")

    @ray.remote
    def leaf(x: int) -> int:
        return x + 1

    ray.get([leaf.remote(i) for i in range(8)])  # workers started
    t = time.perf_counter()
    x = 0
    for _ in range(chain):
        x = ray.get(leaf.remote(x))
    assert x == chain
    if chain:
        _report("chain", chain, time.perf_counter() - t)
    for n in fanouts:
        t = time.perf_counter()
        total = sum(ray.get([leaf.remote(i) for i in range(n)]))
        assert total == n * (n + 1) // 2
        _report("fanout", n, time.perf_counter() - t)
    ray.shutdown()


def run_dbos(chain: int, fanouts: list[int]) -> None:
    from dbos import DBOS, Queue

    db = Path(tempfile.mkdtemp(prefix="dbos-bench-")) / "dbos.sqlite"
    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{db}"})
    # Newer DBOS 3 releases register queues in the database (after launch); older ones declare
    # them as objects (before launch).
    registered = hasattr(DBOS, "register_queue")
    queue = None if registered else Queue("bench")

    @DBOS.step()
    def leaf(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    def chained(n: int) -> int:
        x = 0
        for _ in range(n):
            x = leaf(x)
        return x

    @DBOS.workflow()
    def one(x: int) -> int:
        return leaf(x)

    DBOS.launch()
    if queue is None:
        queue = DBOS.register_queue("bench")
    if chain:
        t = time.perf_counter()
        assert chained(chain) == chain
        _report("chain", chain, time.perf_counter() - t)
    for n in fanouts:
        t = time.perf_counter()
        handles = [queue.enqueue(one, i) for i in range(n)]
        total = sum(h.get_result() for h in handles)
        assert total == n * (n + 1) // 2
        _report("fanout", n, time.perf_counter() - t)
    DBOS.destroy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("--chain", type=int, default=1000)
    p.add_argument("--fanout", default="1000")
    args = p.parse_args()
    fanouts = [int(n) for n in args.fanout.split(",") if n.strip()]
    (run_ray if args.peer == "ray" else run_dbos)(args.chain, fanouts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
