"""Local-mode benchmark workloads.

This module only uses the public Flyte 2 API, so the very same file runs
against our implementation and against the reference ``flyte`` package from
PyPI.  Whichever ``flyte`` the running interpreter imports is the one measured.

Workloads
---------
fanout  async parent that ``asyncio.gather``s ``n`` trivial async sub-tasks
map     sync parent that runs ``list(flyte.map(sub_sync, range(n)))``
chain   sync parent that calls a trivial sync sub-task ``n`` times in a row

Run one workload and print one JSON line::

    python workloads.py --workload fanout --n 10000 --repeat 1

Only the ``flyte.with_runcontext(mode="local").run(...)`` call is timed.
Every repeat runs inside the same process, so ``peak_rss_mb`` is the
process-wide peak across all repeats (and includes the interpreter, the
import of ``flyte`` and ``flyte.init()``).
"""

from __future__ import annotations

import os

# Keep both implementations quiet so the JSON line on stdout stays parseable.
# These must be set before ``flyte`` is imported.
os.environ.setdefault("LOG_LEVEL", "error")
os.environ.setdefault("USER_LOG_LEVEL", "error")
os.environ.setdefault("DISABLE_RICH_LOGGING", "1")
os.environ.setdefault("FLYTE_LOG_LEVEL", "error")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Tuple  # noqa: E402

_T_IMPORT0 = time.perf_counter()
import flyte  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _T_IMPORT0

env = flyte.TaskEnvironment(name="local_mode_bench")


# --------------------------------------------------------------------------
# Sub-tasks
# --------------------------------------------------------------------------
@env.task
async def sub(x: int) -> int:
    return x + 1


@env.task
def sub_sync(x: int) -> int:
    return x + 1


@env.task
def inc(x: int) -> int:
    return x + 1


# --------------------------------------------------------------------------
# Parent tasks (the things passed to ``run``)
# --------------------------------------------------------------------------
@env.task
async def fanout(n: int) -> int:
    results = await asyncio.gather(*[sub(i) for i in range(n)])
    return sum(results)


@env.task
def map_parent(n: int) -> int:
    results = list(flyte.map(sub_sync, range(n)))
    return sum(results)


@env.task
def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


def _triangular(n: int) -> int:
    # sum(i + 1 for i in range(n))
    return n * (n + 1) // 2


# name -> (parent task, default n, expected result as a function of n)
WORKLOADS: Dict[str, Tuple[Any, int, Callable[[int], int]]] = {
    "fanout": (fanout, 10_000, _triangular),
    "map": (map_parent, 1_000, _triangular),
    "chain": (chain, 1_000, lambda n: n),
}


# --------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------
def _silence_logging() -> None:
    for name in ("flyte", "flyte.user", "flyte._core", "asyncio", ""):
        logging.getLogger(name).setLevel(logging.ERROR)


def _init() -> None:
    init = getattr(flyte, "init", None)
    if init is not None:
        init()
    # init() may (re)configure log levels; force them back down.
    _silence_logging()


def _single(value: Any) -> Any:
    """The only element of a one-element sequence of outputs, else ``value``."""
    if isinstance(value, (str, bytes, dict, list)):
        return value
    try:
        if len(value) == 1:
            return value[0]
    except (TypeError, KeyError, IndexError):
        pass
    return value


def _unwrap(result: Any) -> Any:
    """Turn whatever ``run`` returned into the task's native output.

    Implementations may return the native value directly, or a ``Run``-like
    handle whose ``.outputs()`` is a one-element sequence of outputs (a tuple
    subclass in the reference, a ``Sequence`` in ours).
    """
    if isinstance(result, (int, float, str, list, dict)) or result is None:
        return result
    outputs = getattr(result, "outputs", None)
    if outputs is not None:
        return _single(outputs() if callable(outputs) else outputs)
    return _single(result)


def _peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes on macOS, KiB on Linux
        return usage / (1024 * 1024)
    return usage / 1024


def run_workload(name: str, n: int, repeat: int) -> Dict[str, Any]:
    task, _default_n, expected_fn = WORKLOADS[name]
    expected = expected_fn(n)

    t0 = time.perf_counter()
    _init()
    init_seconds = time.perf_counter() - t0

    timings: List[float] = []
    cpu_timings: List[float] = []
    ok = True
    error = None
    got: Any = None
    for _ in range(repeat):
        runner = flyte.with_runcontext(mode="local")
        cpu_start = time.process_time()
        start = time.perf_counter()
        try:
            result = runner.run(task, n=n)
        except BaseException as exc:  # report it as a failed record, then exit non-zero
            import traceback

            traceback.print_exc(file=sys.stderr)
            ok = False
            error = f"run raised {type(exc).__name__}: {exc}"[:1000]
            break
        timings.append(time.perf_counter() - start)
        cpu_timings.append(time.process_time() - cpu_start)
        got = _unwrap(result)
        if got != expected:
            ok = False
            error = f"wrong result: expected {expected!r}, got {got!r} (raw {type(result).__name__})"
            break

    return {
        "workload": name,
        "n": n,
        "seconds": min(timings) if timings else None,
        "all_seconds": timings,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        # CPU time (user + system, all threads) of each timed run: less sensitive
        # than wall time to other load on the machine.
        "cpu_seconds": min(cpu_timings) if cpu_timings else None,
        "all_cpu_seconds": cpu_timings,
        "ok": ok,
        "error": error,
        "result": got if isinstance(got, (int, float, str)) else repr(got)[:200],
        "expected": expected,
        "import_seconds": IMPORT_SECONDS,
        "init_seconds": init_seconds,
        "flyte_version": getattr(flyte, "__version__", "unknown"),
        "flyte_file": getattr(flyte, "__file__", None),
        "python": sys.version.split()[0],
    }


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--n", type=int, default=None, help="size (default depends on the workload)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)

    n = args.n if args.n is not None else WORKLOADS[args.workload][1]
    record = run_workload(args.workload, n, max(1, args.repeat))
    sys.stdout.flush()
    # The last line of stdout is the machine-readable result.
    print(json.dumps(record), flush=True)
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
