"""Passing a large File between two tasks, against the storage library moving the same bytes.

    python benchmarks/io/run.py [--size-mb 1024] [--storage local,s3] [--modes backend,local]

The workload: a producer task holds a local file of --size-mb and returns it as a
``flyte.io.File`` (``File.from_local``: upload, plus the content hash that identifies it);
a consumer task receives the File and makes it a local file (``download()``); the parent
task only passes the reference along. The transfer time is the upload (measured inside the
producer) plus the download (measured inside the consumer); throughput = bytes / that time.

The baseline moves the same bytes with the storage layer alone, in this process: for
``local``, ``shutil.copyfile`` to the storage location and back out; for ``s3``,
``obstore.put`` from the file and ``obstore.get`` streamed to a file (the library's own
defaults), against the same moto S3 server on 127.0.0.1.

Memory: the peak resident set (VmHWM) of the parent task, of the producer and of the
consumer. In ``backend`` mode each task is its own process (forked from a warm process
that already imported the SDK: its ~60 MB are included); in ``local`` mode all three share
this process, so one number covers them all.

Numbers are printed, never asserted. S3 needs moto (``pip install -e .[dev]``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

WORKFLOW = """
import os
import time

import flyte
from flyte.io import File

env = flyte.TaskEnvironment(name="bench_io")


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@env.task
async def produce(src: str) -> tuple[File, float, float]:
    t = time.perf_counter()
    f = await File.from_local(src)
    return f, time.perf_counter() - t, peak_mb()


@env.task
async def consume(f: File, size: int) -> tuple[float, float]:
    t = time.perf_counter()
    path = await f.download()
    elapsed = time.perf_counter() - t
    assert os.path.getsize(path) == size, (path, os.path.getsize(path), size)
    return elapsed, peak_mb()


@env.task
async def main(src: str, size: int) -> dict[str, float]:
    f, up, producer_mb = await produce(src)
    down, consumer_mb = await consume(f, size)
    return {
        "upload_s": up,
        "download_s": down,
        "producer_mb": producer_mb,
        "consumer_mb": consumer_mb,
        "parent_mb": peak_mb(),
    }
"""


def make_source(path: Path, size_mb: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size_mb):
            # Distinct blocks, so nothing along the way can deduplicate or compress them.
            f.write(i.to_bytes(8, "little") + block[8:])


def baseline_local(src: Path, work: Path) -> tuple[float, float]:
    stored = work / "baseline-store" / "data.bin"
    stored.parent.mkdir(parents=True, exist_ok=True)
    out = work / "baseline-out.bin"
    t = time.perf_counter()
    shutil.copyfile(src, stored)
    up = time.perf_counter() - t
    shutil.copyfile(stored, out)
    down = time.perf_counter() - t - up
    stored.unlink()
    out.unlink()
    return up, down


def baseline_s3(src: Path, work: Path, bucket: str) -> tuple[float, float]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        config={
            "endpoint": os.environ["AWS_ENDPOINT_URL"],
            "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
            "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            "region": "us-east-1",
        },
        client_options={"allow_http": True},
    )
    key = f"baseline/{os.getpid()}/data.bin"
    out = work / "baseline-out.bin"
    t = time.perf_counter()
    obstore.put(store, key, src)
    up = time.perf_counter() - t
    with open(out, "wb") as f:
        for chunk in obstore.get(store, key).stream():
            f.write(chunk)
    down = time.perf_counter() - t - up
    out.unlink()
    obstore.delete(store, key)
    return up, down


def child(kind: str, src: Path, work: Path) -> int:
    """One measurement in a fresh process, so that its peak memory is its own; prints JSON."""
    import json

    size = src.stat().st_size
    if kind == "baseline-local":
        up, down = baseline_local(src, work)
        print(json.dumps({"upload_s": up, "download_s": down}))
        return 0
    if kind == "baseline-s3":
        up, down = baseline_s3(src, work, "bench")
        print(json.dumps({"upload_s": up, "download_s": down}))
        return 0
    storage = kind.removeprefix("local-")
    import flyte

    sys.path.insert(0, str(work))
    import bench_io_wf as wf  # type: ignore[import-not-found]

    raw = str(work / "raw") if storage == "local" else "s3://bench/raw"
    flyte.init()
    result = flyte.with_runcontext(mode="local", raw_data_path=raw).run(wf.main, src=str(src), size=size)
    print(json.dumps(result.wait().result))
    return 0


def in_child(kind: str, src: Path, work: Path) -> dict[str, float]:
    import json
    import subprocess

    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--src", str(src), "--work", str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{out.stderr[-3000:]}")
    values: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    values["wall_s"] = time.perf_counter() - t
    return values


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mb", type=int, default=1024)
    p.add_argument("--storage", default="local,s3", help="comma-separated: local, s3")
    p.add_argument("--modes", default="backend,local", help="comma-separated: backend, local")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.src, args.work)
    storages = [s for s in args.storage.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]

    work = Path(tempfile.mkdtemp(prefix="flyte-bench-io-"))
    os.environ["FLYTE_DATA_DIR"] = str(work / "client")
    (work / "bench_io_wf.py").write_text(WORKFLOW)
    sys.path.insert(0, str(work))
    src = work / "source.bin"
    make_source(src, args.size_mb)
    size = src.stat().st_size

    moto = None
    if "s3" in storages:
        sys.path.insert(0, str(REPO / "tests"))
        from s3server import aws_env, moto_server  # type: ignore[import-not-found]

        moto = moto_server()
        server = moto.__enter__()
        server.create_bucket("bench")
        os.environ.update(aws_env(server.endpoint))

    import flyte
    from flyte import _core
    from flyte._remote._local_backend import default_bin_dir

    backend = None
    if "backend" in modes:
        # Started after the AWS settings are in the environment: its action processes inherit them.
        backend = _core.Backend(
            str(work / "backend"),
            str(default_bin_dir()),
            port=0,
            max_parallel=4,
            fork_server=[sys.executable, "-m", "flyte._runtime._forkserver"],
        )
    import bench_io_wf as wf  # type: ignore[import-not-found]

    rows: list[list[str]] = []
    try:
        for storage in storages:
            b = in_child(f"baseline-{storage}", src, work)
            base = b["upload_s"] + b["download_s"]
            base_mbs = size / base / 1e6
            rows.append(
                [
                    storage,
                    "storage library alone",
                    f"{base:.2f} ({b['upload_s']:.2f} up + {b['download_s']:.2f} down)",
                    f"{base_mbs:.0f}",
                ]
            )
            raw = str(work / "raw") if storage == "local" else "s3://bench/raw"
            for mode in modes:
                if mode == "backend":
                    assert backend is not None
                    flyte.init(endpoint=backend.endpoint, insecure=True)
                    t = time.perf_counter()
                    r = flyte.with_runcontext(mode="remote", raw_data_path=raw).run(
                        wf.main, src=str(src), size=size
                    )
                    m = r.wait().result
                    wall = time.perf_counter() - t
                else:
                    m = in_child(f"local-{storage}", src, work)
                    wall = m["wall_s"]
                transfer = m["upload_s"] + m["download_s"]
                mbs = size / transfer / 1e6
                rows.append(
                    [
                        storage,
                        f"File between two tasks ({mode}; run {wall:.1f} s)",
                        f"{transfer:.2f} ({m['upload_s']:.2f} up + {m['download_s']:.2f} down)",
                        f"{mbs:.0f} ({100 * mbs / base_mbs:.0f}% of the library)",
                        f"{m['parent_mb']:.0f}",
                        f"{m['producer_mb']:.0f}",
                        f"{m['consumer_mb']:.0f}",
                        "",
                    ]
                )
    finally:
        if backend is not None:
            backend.shutdown()
        if moto is not None:
            moto.__exit__(None, None, None)
        shutil.rmtree(work, ignore_errors=True)

    header = ["storage", "what", "transfer s", "MB/s", "parent MB", "producer MB", "consumer MB"]
    table = [header] + [(r + [""] * len(header))[: len(header)] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(
        f"({args.size_mb} MB file, load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus; "
        "peak memory is VmHWM; in local mode the three tasks share one process)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
