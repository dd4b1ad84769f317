#!/usr/bin/env python3
"""Local-mode benchmark runner: our flyte vs. the reference flyte==2.12.1.

Each (implementation, workload) pair runs ``workloads.py`` in its own fresh
subprocess, so the reported peak RSS belongs to that workload alone.  The
runner prints a comparison table and writes the raw records to
``benchmarks/results/local_mode.json``.

It is a report, not a test: missing a target still exits 0.  The exit code
is non-zero only when a workload crashes, times out or returns a wrong
result (or when an interpreter that was asked for is unusable).

Examples::

    python benchmarks/local_mode/run.py                       # ours (+ reference if set up)
    python benchmarks/local_mode/run.py --setup-reference     # create the reference venv first
    python benchmarks/local_mode/run.py --only reference --repeat 1
    python benchmarks/local_mode/run.py --workloads chain,map --scale 0.1   # quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
BENCH_DIR = HERE.parent
REPO = BENCH_DIR.parent
WORKLOADS_PY = HERE / "workloads.py"
RESULTS_FILE = BENCH_DIR / "results" / "local_mode.json"

REFERENCE_SPEC = "flyte==2.12.1"
REFERENCE_VERSION = "2.12.1"
DEFAULT_OURS = REPO / ".venv" / "bin" / "python"
DEFAULT_REFERENCE = BENCH_DIR / ".ref-venv" / "bin" / "python"

# Workload order and default sizes (must match workloads.WORKLOADS).
WORKLOADS: Dict[str, int] = {"fanout": 10_000, "map": 1_000, "chain": 1_000}

# Targets from the performance issue.
MAX_RATIO = 0.05  # ours.seconds / reference.seconds: local mode at least 20x faster
MAX_PEAK_MB = {"fanout": 100.0}  # ours peak RSS, per workload, every action recorded

# Reference timings quoted in the issue (for context only; never used for the verdict).
ISSUE_REFERENCE = {"fanout": (5.4, 212.0), "map": (1.2, None), "chain": (1.0, None)}

# Where both implementations put local-run artefacts by default.
FLYTE_TMP_DIRS = [Path("/tmp/flyte/metadata"), Path("/tmp/flyte/raw_data")]

QUIET_ENV = {
    "LOG_LEVEL": "error",
    "USER_LOG_LEVEL": "error",
    "FLYTE_LOG_LEVEL": "error",
    "DISABLE_RICH_LOGGING": "1",
    "PYTHONWARNINGS": "ignore",
    "NO_COLOR": "1",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Interpreters
# --------------------------------------------------------------------------
def flyte_version(python: Path) -> str | None:
    """``flyte.__version__`` as seen by ``python``, or None if flyte doesn't import."""
    return probe_flyte(python)[0]


def probe_flyte(python: Path) -> tuple[str | None, str]:
    """(``flyte.__version__`` or None, why it is None)."""
    if not python.exists():
        return None, f"{python} does not exist"
    try:
        proc = subprocess.run(
            [
                str(python),
                "-c",
                "import flyte, sys; sys.stdout.write(getattr(flyte, '__version__', 'unknown'))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(REPO),
            env={**os.environ, **QUIET_ENV},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return None, lines[-1] if lines else f"exit code {proc.returncode}"
    return (proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "unknown"), ""


def setup_reference(python: Path) -> None:
    """Create the reference venv (if needed) and install flyte==2.12.1 into it."""
    venv_dir = python.parent.parent
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        log(f"[setup] creating venv {venv_dir} with {base}")
        subprocess.run([base, "-m", "venv", str(venv_dir)], check=True)
    version = flyte_version(python)
    if version == REFERENCE_VERSION:
        log(f"[setup] reference venv already has flyte {version}")
        return
    log(f"[setup] pip install {REFERENCE_SPEC} into {venv_dir} (found: {version})")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REFERENCE_SPEC],
        check=True,
    )
    version = flyte_version(python)
    if version != REFERENCE_VERSION:
        raise SystemExit(f"[setup] reference venv imports flyte {version!r}, expected {REFERENCE_VERSION}")
    log(f"[setup] reference ready: flyte {version}")


# --------------------------------------------------------------------------
# Running one workload
# --------------------------------------------------------------------------
def _snapshot_tmp() -> Dict[Path, set]:
    snap = {}
    for d in FLYTE_TMP_DIRS:
        try:
            snap[d] = set(os.listdir(d))
        except OSError:
            snap[d] = set()
    return snap


def _cleanup_tmp(before: Dict[Path, set]) -> int:
    """Remove run directories created under /tmp/flyte since ``before``."""
    removed = 0
    for d, old in before.items():
        try:
            now = set(os.listdir(d))
        except OSError:
            continue
        for name in now - old:
            shutil.rmtree(d / name, ignore_errors=True)
            removed += 1
    return removed


def _last_json_line(text: str) -> Dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "workload" in obj:
            return obj
    return None


def run_one(
    impl: str, python: Path, workload: str, n: int, repeat: int, timeout: float, keep_tmp: bool
) -> Dict[str, Any]:
    cmd = [str(python), str(WORKLOADS_PY), "--workload", workload, "--n", str(n), "--repeat", str(repeat)]
    # The subprocess runs in a private directory that is also its TMPDIR: it collects
    # whatever tempfile.* creates (the reference leaks an empty mkdtemp() directory per
    # process), keeps config files in the repo (./config.yaml, .flyte/) out of the
    # picture, and is removed afterwards.
    private_tmp = tempfile.mkdtemp(prefix=f"flyte-bench-{impl}-{workload}-")
    env = {**os.environ, **QUIET_ENV, "TMPDIR": private_tmp}
    before = _snapshot_tmp()
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=private_tmp, env=env)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = None
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    wall = time.perf_counter() - start
    removed = 0
    if not keep_tmp:
        removed = _cleanup_tmp(before)
        shutil.rmtree(private_tmp, ignore_errors=True)

    record = _last_json_line(out) or {"workload": workload, "n": n}
    record["impl"] = impl
    record["python_exe"] = str(python)
    record["returncode"] = rc
    record["process_wall_seconds"] = wall
    record["tmp_dirs_removed"] = removed
    if rc is None:
        record["ok"] = False
        record["error"] = f"timed out after {timeout:.0f}s"
    elif "seconds" not in record:
        record["ok"] = False
        record["error"] = f"no JSON result line (exit code {rc})"
    elif rc != 0 and record.get("ok", True):
        record["ok"] = False
        record["error"] = f"exit code {rc}"
    record.setdefault("ok", rc == 0)
    if not record["ok"]:
        record["stdout_tail"] = out[-3000:]
        record["stderr_tail"] = err[-3000:]
    return record


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def _fmt_s(rec: Dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    if not rec.get("ok") or "seconds" not in rec:
        return "FAILED"
    return f"{rec['seconds']:.4f}"


def _fmt_mb(rec: Dict[str, Any] | None) -> str:
    if rec is None or "peak_rss_mb" not in rec:
        return "-"
    return f"{rec['peak_rss_mb']:.1f}"


def compare(workload: str, ours: Dict[str, Any] | None, ref: Dict[str, Any] | None) -> Dict[str, Any]:
    row: Dict[str, Any] = {
        "workload": workload,
        "ratio": None,
        "ratio_ok": None,
        "peak_ok": None,
        "target_met": None,
    }
    ours_ok = bool(ours and ours.get("ok"))
    ref_ok = bool(ref and ref.get("ok"))
    if ours_ok and ref_ok and ref["seconds"] > 0:
        row["ratio"] = ours["seconds"] / ref["seconds"]
        row["ratio_ok"] = row["ratio"] <= MAX_RATIO
        if ours.get("cpu_seconds") is not None and ref.get("cpu_seconds"):
            row["cpu_ratio"] = ours["cpu_seconds"] / ref["cpu_seconds"]
    if ours_ok and workload in MAX_PEAK_MB:
        row["peak_ok"] = ours["peak_rss_mb"] < MAX_PEAK_MB[workload]
    checks = [c for c in (row["ratio_ok"], row["peak_ok"]) if c is not None]
    if ours is not None and not ours_ok:
        row["target_met"] = False
    elif row["ratio_ok"] is None:
        row["target_met"] = None  # cannot judge without a reference timing
    else:
        row["target_met"] = all(checks)
    return row


def print_table(
    rows: List[Dict[str, Any]], results: Dict[str, Dict[str, Any]], ours_missing: bool = False
) -> None:
    headers = [
        "workload",
        "n",
        "ours s",
        "reference s",
        "ratio",
        "ours peak MB",
        "reference peak MB",
        "target met?",
    ]
    lines = []
    for row in rows:
        w = row["workload"]
        ours = results.get("ours", {}).get(w)
        ref = results.get("reference", {}).get(w)
        n = (ours or ref or {}).get("n", "-")
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        if ours_missing:
            verdict = "NO (ours unavailable)"
        elif row["target_met"] is None:
            verdict = "n/a"
            if row["peak_ok"] is False:
                verdict = "NO (peak)"
        elif row["target_met"]:
            verdict = "yes"
        else:
            why = []
            if ours is not None and not ours.get("ok"):
                why.append("failed")
            if row["ratio_ok"] is False:
                why.append(f"ratio>{MAX_RATIO}")
            if row["peak_ok"] is False:
                why.append(f"peak>={MAX_PEAK_MB[w]:.0f}MB")
            verdict = "NO (" + ", ".join(why) + ")"
        lines.append([w, str(n), _fmt_s(ours), _fmt_s(ref), ratio, _fmt_mb(ours), _fmt_mb(ref), verdict])
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(headers)]

    def fmt(cells: List[str]) -> str:
        return "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"

    print(fmt(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print(fmt(line))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ours", type=Path, default=DEFAULT_OURS, help=f"python with our flyte (default {DEFAULT_OURS})"
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE,
        help=f"python with {REFERENCE_SPEC} (default {DEFAULT_REFERENCE})",
    )
    parser.add_argument(
        "--setup-reference",
        action="store_true",
        help=f"create the reference venv and install {REFERENCE_SPEC}",
    )
    parser.add_argument("--only", choices=["ours", "reference"], help="run a single implementation")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs per workload, best is reported (default 3)"
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset (default: all)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every workload size (e.g. 0.1 for a smoke run)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed per workload subprocess"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"raw results JSON (default {RESULTS_FILE})"
    )
    parser.add_argument(
        "--keep-tmp",
        action="store_true",
        help="keep the /tmp/flyte run directories and the private TMPDIR of each workload",
    )
    args = parser.parse_args(argv)

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    sizes = {w: max(1, int(round(WORKLOADS[w] * args.scale))) for w in workloads}
    repeat = max(1, args.repeat)
    ours_py = args.ours.expanduser().absolute()
    ref_py = args.reference.expanduser().absolute()

    status = 0
    notes: List[str] = []
    impls: Dict[str, Path] = {}

    if args.only in (None, "reference"):
        if args.setup_reference:
            setup_reference(ref_py)
        ref_version = flyte_version(ref_py)
        if ref_version is None:
            msg = f"reference interpreter {ref_py} missing or cannot import flyte"
            if args.only == "reference":
                log(f"ERROR: {msg} (use --setup-reference)")
                return 2
            notes.append(f"{msg}: running ours only (pass --setup-reference to create it)")
        else:
            if ref_version != REFERENCE_VERSION:
                notes.append(f"reference interpreter has flyte {ref_version}, expected {REFERENCE_VERSION}")
            impls["reference"] = ref_py

    if args.only in (None, "ours"):
        ours_version, why = probe_flyte(ours_py)
        if ours_version is None:
            notes.append(
                f"ours: {ours_py} cannot import flyte ({why}); build it first (e.g. maturin develop)"
            )
            status = 1
        else:
            impls["ours"] = ours_py

    for note in notes:
        log(f"NOTE: {note}")

    load_before = os.getloadavg()
    cpus = os.cpu_count() or 1
    if load_before[0] > 0.5 * cpus:
        log(
            f"WARNING: machine is busy (1-min load {load_before[0]:.2f} on {cpus} cores); timings will be noisy"
        )

    results: Dict[str, Dict[str, Any]] = {impl: {} for impl in impls}
    # Interleave implementations per workload so drifting machine load hits both alike.
    order = [i for i in ("ours", "reference") if i in impls]
    for workload in workloads:
        for impl in order:
            log(f"[run] {impl:9s} {workload:6s} n={sizes[workload]} repeat={repeat} ...")
            rec = run_one(impl, impls[impl], workload, sizes[workload], repeat, args.timeout, args.keep_tmp)
            results[impl][workload] = rec
            if rec.get("ok"):
                log(
                    f"      {rec['seconds']:.3f}s (all: {', '.join(f'{s:.3f}' for s in rec['all_seconds'])}), "
                    f"cpu {rec.get('cpu_seconds') or 0:.3f}s, peak {rec['peak_rss_mb']:.1f} MB, "
                    f"flyte {rec.get('flyte_version')}"
                )
            else:
                status = 1
                log(f"      FAILED: {rec.get('error')}")
                for key in ("stderr_tail", "stdout_tail"):
                    tail = (rec.get(key) or "").strip()
                    if tail:
                        log(
                            "      "
                            + key
                            + ":\n"
                            + "\n".join("        " + ln for ln in tail.splitlines()[-25:])
                        )

    rows = [
        compare(w, results.get("ours", {}).get(w), results.get("reference", {}).get(w)) for w in workloads
    ]

    print()
    print(
        f"Local-mode benchmark (best of {repeat}; target: ours/reference <= {MAX_RATIO}, "
        f"fanout peak < {MAX_PEAK_MB['fanout']:.0f} MB)"
    )
    ours_missing = args.only in (None, "ours") and "ours" not in impls
    print_table(rows, results, ours_missing=ours_missing)
    cpu_ratios = [f"{r['workload']} {r['cpu_ratio']:.3f}" for r in rows if r.get("cpu_ratio") is not None]
    if cpu_ratios:
        print(
            "cpu-time ratios, ours/reference (informational, less sensitive to machine load): "
            + ", ".join(cpu_ratios)
        )
    if "reference" not in impls:
        print(
            "reference not run: ratios cannot be computed" + ("" if args.only else " (use --setup-reference)")
        )
    for note in notes:
        print(f"note: {note}")
    load_after = os.getloadavg()
    print(f"machine: {cpus} cores, load avg before {load_before[0]:.2f}, after {load_after[0]:.2f}")

    payload = {
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpus": cpus,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "runner_python": sys.version.split()[0],
        },
        "settings": {
            "repeat": repeat,
            "scale": args.scale,
            "sizes": sizes,
            "max_ratio": MAX_RATIO,
            "max_peak_mb": MAX_PEAK_MB,
            "issue_reference": ISSUE_REFERENCE,
            "interpreters": {k: str(v) for k, v in impls.items()},
        },
        "notes": notes,
        "results": results,
        "comparison": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"raw results: {args.output}")
    return status


if __name__ == "__main__":
    sys.exit(main())
