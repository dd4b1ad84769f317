"""The chaos suite: faults injected into the embedded backend at random points of real runs, and
malformed requests sent to every method it serves. Prints one table of figures and exits non-zero
if any invariant breaks: no run lost or stuck, no child re-run after it finished, no panic, an
intact database.

    python tests/chaos/suite.py [--seed N] [--trials N] [--requests N] [--only KIND,...]

`make chaos` runs the full suite; `make test` a bounded one (tests/chaos/test_chaos.py). The seed
is printed first: the same seed replays the same kill points and requests.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import http.client
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import chaos_wf  # noqa: E402
from protowire import varint  # noqa: E402

import flyte  # noqa: E402

KILL_KINDS = ("backend", "repeated backend", "parent", "child", "fork server/worker")
STORAGE_KINDS = ("disk full", "read-only")
ALL_KINDS = (*KILL_KINDS, *STORAGE_KINDS, "malformed requests")
WAVES, WIDTH = 4, 8
EXPECTED = sum(range(WAVES * WIDTH))
# After its last fault a run has this long to end before it counts as stuck.
SETTLE_SECONDS = 240.0
# Requests larger than this are refused; the malformed-request backend runs with it.
MESSAGE_LIMIT = 64 * 1024


@dataclass
class Row:
    """The figures of one kind of fault."""

    trials: int = 0
    faults: int = 0
    right: int = 0
    lost: int = 0
    stuck: int = 0
    finished_rerun: int = 0
    inflight_rerun: int = 0
    panics: int = 0
    db_ok: bool = True
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    notes: list[str] = field(default_factory=list)

    def broken(self) -> list[str]:
        problems = [
            f"{n} {what}"
            for n, what in (
                (self.lost, "runs lost"),
                (self.stuck, "runs stuck"),
                (self.finished_rerun, "finished children re-run"),
                (self.panics, "panics"),
            )
            if n
        ]
        if not self.db_ok:
            problems.append("database integrity check failed")
        return problems + [n for n in self.notes if n.startswith("BROKEN")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backend:
    """`flyte start local` on a fixed port and data dir (so surviving task processes find it
    again), killed and started at will; its stderr kept in a file to look for panics."""

    def __init__(self, data: Path, *args: str) -> None:
        self.data, self.args, self.port = data, args, _free_port()
        self.stderr = data.parent / f"{data.name}.stderr"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        flyte_exe = str(Path(sys.executable).parent / "flyte")
        deadline = time.monotonic() + 60
        while True:
            with open(self.stderr, "a") as err:
                self.proc = subprocess.Popen(
                    [
                        flyte_exe,
                        "start",
                        "local",
                        "--data-dir",
                        str(self.data),
                        "--port",
                        str(self.port),
                        *self.args,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            assert self.proc.stdout is not None
            if self.proc.stdout.readline().strip() == self.endpoint:
                return
            # The killed instance's port or lock may take a moment to be released.
            self.proc.wait(timeout=60)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backend does not start again; see {self.stderr}")
            time.sleep(0.2)

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def panics(self) -> int:
        texts = [self.stderr.read_text(errors="replace")] if self.stderr.exists() else []
        texts += [p.read_text(errors="replace") for p in (self.data / "logs").glob("backend*.log*")]
        return sum(t.count("panicked") for t in texts)

    def integrity_ok(self) -> bool:
        with contextlib.closing(sqlite3.connect(self.data / "backend.db")) as db:
            return bool(db.execute("PRAGMA integrity_check").fetchone() == ("ok",))


@contextlib.contextmanager
def serving(data: Path, row: Row, *args: str) -> Iterator[Backend]:
    backend = Backend(data, *args)
    backend.start()
    flyte.init(endpoint=backend.endpoint, insecure=True)
    try:
        yield backend
    finally:
        backend.stop()
        row.panics += backend.panics()
        row.db_ok = row.db_ok and backend.integrity_ok()


# -- what the tasks marked ---------------------------------------------------------------------


def _events(marks: Path) -> list[list[str]]:
    path = marks / "events"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _running_children(marks: Path) -> list[int]:
    started: dict[tuple[str, str], int] = {}
    for event in _events(marks):
        if event[0] in ("start", "end"):
            key = (event[1], event[2])
            started[key] = started.get(key, 0) + (1 if event[0] == "start" else -1)
    return sorted({int(pid) for (_, pid), n in started.items() if n > 0 and _alive(int(pid))})


def _parent_pid(marks: Path) -> int | None:
    parents = [int(e[1]) for e in _events(marks) if e[0] == "parent"]
    return parents[-1] if parents and _alive(parents[-1]) else None


def _fork_server_pid(backend: Backend) -> int | None:
    assert backend.proc is not None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == backend.proc.pid and b"flyte._runtime._forkserver" in cmdline:
            return int(stat.parent.name)
    return None


def _wait_for(find: Callable[[], Any], seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.02)
    return None


# -- one run, judged ---------------------------------------------------------------------------


def _attempts(data: Path, run: str) -> dict[str, tuple[set[int], set[int]]]:
    """Per child action: the attempts that ran (a log each: every child prints) and those whose
    outputs are complete."""
    found: dict[str, tuple[set[int], set[int]]] = {}
    for log in data.glob(f"logs/*/*/*/{run}/*/*.log"):
        if log.parent.name != "a0":
            found.setdefault(log.parent.name, (set(), set()))[0].add(int(log.stem))
    for out in data.glob(f"data/*/*/*/{run}/*/*/outputs.pb"):
        action = out.parent.parent.name
        if action != "a0" and out.parent.name.isdigit():
            found.setdefault(action, (set(), set()))[1].add(int(out.parent.name))
    return found


def _settle(run: Any, row: Row, data: Path) -> None:
    """Waits for the run to end and adds what happened to it to ``row``."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            if run.sync().done():
                break
        except Exception:  # noqa: BLE001 - the backend may be starting again; looked at later
            pass
        if time.monotonic() > deadline:
            row.stuck += 1
            row.notes.append(f"run {run.name} stuck in {run.phase}")
            return
        time.sleep(0.1)
    try:
        right = run.phase == flyte.models.ActionPhase.SUCCEEDED and run.outputs()[0] == EXPECTED
    except Exception as e:  # noqa: BLE001 - a run whose outputs cannot be read is not right
        right = False
        row.notes.append(f"run {run.name}: {e}")
    if right:
        row.right += 1
    else:
        row.lost += 1
        row.notes.append(f"run {run.name} ended {run.phase}")
    attempts = _attempts(data, run.name)
    if right and (
        len(attempts) != WAVES * WIDTH
        or not all(started and complete for started, complete in attempts.values())
    ):
        # The figures below would be blind: say so rather than report zeros.
        row.notes.append(f"BROKEN: run {run.name}'s attempts are not where the suite looks for them")
    for action, (started, complete) in sorted(attempts.items()):
        finished_again = {k for k in started if complete and k > min(complete)}
        row.finished_rerun += len(finished_again)
        if finished_again:
            row.notes.append(
                f"run {run.name}: action {action} ran attempts {sorted(started)} though attempt "
                f"{min(complete)} had complete outputs"
            )
        row.inflight_rerun += max(len(started) - 1 - len(finished_again), 0)


def _start_run(marks: Path, pooled: bool = False) -> Any:
    marks.mkdir(parents=True, exist_ok=True)
    return flyte.run(chaos_wf.fan, waves=WAVES, width=WIDTH, marks=str(marks), pooled=pooled)


def _kill(pid: int | None, row: Row) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        row.faults += 1


# -- the scenarios -----------------------------------------------------------------------------


def kill_trials(kind: str, trials: int, rng: random.Random, work: Path) -> Row:
    row = Row()
    data = work / "data"
    with serving(data, row) as backend:
        for trial in range(trials):
            row.trials += 1
            marks = work / f"marks-{trial}"
            pooled = kind == "fork server/worker" and trial % 2 == 1
            run = _start_run(marks, pooled)
            if kind == "backend":
                time.sleep(rng.uniform(0.1, 2.0))
                backend.crash()
                row.faults += 1
                backend.start()
            elif kind == "repeated backend":
                for _ in range(rng.randint(3, 5)):
                    time.sleep(rng.uniform(0.2, 1.2))
                    backend.crash()
                    row.faults += 1
                    backend.start()
            elif kind == "parent":
                time.sleep(rng.uniform(0.1, 2.0))
                _kill(_wait_for(functools.partial(_parent_pid, marks)), row)
            elif kind == "child":
                time.sleep(rng.uniform(0.1, 2.0))
                running = _wait_for(functools.partial(_running_children, marks))
                _kill(rng.choice(running) if running else None, row)
            elif pooled:
                # A reusable worker: every attempt it runs is lost with it.
                time.sleep(rng.uniform(0.1, 2.0))
                running = _wait_for(functools.partial(_running_children, marks))
                _kill(rng.choice(running) if running else None, row)
            else:
                time.sleep(rng.uniform(0.1, 2.0))
                _kill(_wait_for(functools.partial(_fork_server_pid, backend)), row)
            _settle(run, row, data)
    return row


def storage_trials(kind: str, trials: int, rng: random.Random, work: Path) -> Row:
    row = Row()
    if os.geteuid() != 0:
        row.notes.append("skipped: mounting a small file system needs root")
        return row
    disk = work / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(disk)], check=True)
    try:
        data = disk / "data"
        with serving(data, row) as backend:
            for trial in range(trials):
                row.trials += 1
                run = _start_run(work / f"marks-{trial}")
                time.sleep(rng.uniform(0.2, 2.0))
                if kind == "disk full":
                    filler = disk / "filler"
                    # Unbuffered: nothing is left to write (and fail) when the file is closed.
                    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
                        while True:
                            f.write(b"\0" * (1 << 20))
                    row.faults += 1
                    time.sleep(rng.uniform(1.0, 3.0))
                    refused = _refused_while_full(work / f"marks-{trial}-refused")
                    if not refused:
                        row.notes.append("BROKEN: a new run was accepted on a full disk")
                    filler.unlink()
                else:
                    _make_read_only(data)
                    row.faults += 1
                    try:
                        time.sleep(rng.uniform(1.0, 3.0))
                    finally:
                        subprocess.run(["umount", str(data)], check=True)
                _settle(run, row, data)
            assert backend.proc is not None and backend.proc.poll() is None
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
    return row


def _make_read_only(data: Path) -> None:
    """A read-only bind mount over ``data``: every file opened by its path from now on."""
    subprocess.run(["mount", "--bind", str(data), str(data)], check=True)
    # Making a mount read-only fails (EBUSY) while a write through it is under way: try again.
    for _ in range(100):
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(data)], capture_output=True).returncode == 0:
            return
        time.sleep(0.02)
    subprocess.run(["umount", str(data)], check=False)
    raise RuntimeError(f"cannot make {data} read-only")


def _refused_while_full(marks: Path) -> bool:
    try:
        _start_run(marks)
    except Exception as e:  # noqa: BLE001 - the refusal is what is expected
        return "space" in str(e).lower() or "full" in str(e).lower()
    return False


# -- malformed requests --------------------------------------------------------------------------


# What the embedded backend serves; requests to other services only ever meet UNIMPLEMENTED.
SERVED = {
    "flyteidl2.actions.ActionsService",
    "flyteidl2.auth.AuthMetadataService",
    "flyteidl2.auth.IdentityService",
    "flyteidl2.cluster.ClusterService",
    "flyteidl2.dataproxy.DataProxyService",
    "flyteidl2.project.ProjectService",
    "flyteidl2.secret.SecretService",
    "flyteidl2.task.TaskService",
    "flyteidl2.trigger.TriggerService",
    "flyteidl2.workflow.RunLogsService",
    "flyteidl2.workflow.RunService",
}


def _services() -> list[Any]:
    import importlib
    import pkgutil

    import flyteidl2

    services = {}
    for module in pkgutil.walk_packages(flyteidl2.__path__, "flyteidl2."):
        if not module.name.endswith("_pb2"):
            continue
        try:
            loaded = importlib.import_module(module.name)
        except Exception:  # noqa: BLE001, S112 - a module that does not import has no services to try
            continue
        for service in loaded.DESCRIPTOR.services_by_name.values():
            if service.full_name in SERVED:
                services[service.full_name] = service
    missing = SERVED - set(services)
    if missing:
        raise RuntimeError(f"flyteidl2 does not describe {sorted(missing)}")
    return sorted(services.values(), key=lambda s: s.full_name)


def _random_scalar(f: Any, rng: random.Random) -> Any:
    from google.protobuf.descriptor import FieldDescriptor as F

    t = f.cpp_type
    if t in (F.CPPTYPE_INT32, F.CPPTYPE_INT64):
        bound = 2**31 - 1 if t == F.CPPTYPE_INT32 else 2**63 - 1
        return rng.choice([0, -1, bound, -bound - 1, rng.randint(-1000, 1000)])
    if t in (F.CPPTYPE_UINT32, F.CPPTYPE_UINT64):
        return rng.choice([0, 1, 2**32 - 1 if t == F.CPPTYPE_UINT32 else 2**64 - 1, rng.randint(0, 10**6)])
    if t in (F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE):
        return rng.choice([0.0, -1.5, 1e30, float("nan"), float("inf")])
    if t == F.CPPTYPE_BOOL:
        return rng.random() < 0.5
    if t == F.CPPTYPE_ENUM:
        return rng.choice([v.number for v in f.enum_type.values] + [999, -7])
    if f.type == F.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 300))
    return rng.choice(
        [
            "",
            "x" * rng.randint(1, 5000),
            "../../../etc/passwd",
            "a\x00b",
            "🙂 spaces and / slashes",
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_.") for _ in range(rng.randint(1, 40))),
        ]
    )


def _fill(message: Any, rng: random.Random, depth: int = 0) -> Any:

    for f in message.DESCRIPTOR.fields:
        if rng.random() < 0.4:
            continue
        try:
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                continue
            if f.is_repeated:
                if f.message_type is not None:
                    if depth < 3:
                        for _ in range(rng.randint(0, 2)):
                            _fill(getattr(message, f.name).add(), rng, depth + 1)
                else:
                    getattr(message, f.name).extend(_random_scalar(f, rng) for _ in range(rng.randint(0, 3)))
            elif f.message_type is not None:
                if depth < 4:
                    _fill(getattr(message, f.name), rng, depth + 1)
            else:
                setattr(message, f.name, _random_scalar(f, rng))
        except (TypeError, ValueError):
            continue
    return message


def _malformed(method: Any, rng: random.Random) -> tuple[str, bytes]:
    """A request for ``method``: what is wrong with it, and its bytes."""
    from google.protobuf import message_factory

    how = rng.choice(["random bytes", "random values", "random values", "truncated", "oversized", "empty"])
    if how == "random bytes":
        return how, rng.randbytes(rng.randint(1, 2000))
    if how == "oversized":
        return how, b"\x7a" + varint(MESSAGE_LIMIT + 100) + b"x" * (MESSAGE_LIMIT + 100)
    if how == "empty":
        return how, b""
    filled = _fill(message_factory.GetMessageClass(method.input_type)(), rng)
    encoded = filled.SerializeToString()
    if how == "truncated" and len(encoded) > 1:
        return how, encoded[: rng.randint(1, len(encoded) - 1)]
    return how, encoded


def _connect_unary(endpoint: str, path: str, body: bytes) -> str:
    host, port = endpoint.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", path, body=body, headers={"content-type": "application/proto"})
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    if response.status == 200:
        return "OK"
    import json

    try:
        return str(json.loads(text)["code"]).upper()
    except (ValueError, KeyError):
        return f"HTTP {response.status}"


async def _grpc_call(client: Any, path: str, body: bytes, streaming: bool, drop: bool) -> str:
    from flyte._bridge import controller

    try:
        if streaming:
            stream = client.stream(path, body)
            if drop:
                stream.cancel()
                return "DROPPED"
            await asyncio.wait_for(stream.__anext__(), timeout=2.0)
            stream.cancel()
            return "OK"
        await client.unary(path, body)
        return "OK"
    except controller.ControllerError as e:
        return str(e.code)
    except (StopAsyncIteration, asyncio.TimeoutError):
        return "OK"


def malformed_requests(count: int, rng: random.Random, work: Path) -> Row:
    from flyte._bridge import rpc

    row = Row()
    data = work / "data"
    with serving(data, row, "--max-message-bytes", str(MESSAGE_LIMIT)) as backend:
        methods = [(s, m) for s in _services() for m in s.methods]
        rss_before = backend.rss_kb()

        async def barrage() -> None:
            client = rpc.RpcClient(backend.endpoint, insecure=True)
            for _ in range(count):
                service, method = rng.choice(methods)
                path = f"/{service.full_name}/{method.name}"
                how, body = _malformed(method, rng)
                if rng.random() < 0.05:
                    path = f"/{service.full_name}/NoSuch{method.name}"
                streaming = method.server_streaming
                if streaming or rng.random() < 0.5:
                    drop = streaming and rng.random() < 0.5
                    status = await _grpc_call(client, path, body, streaming, drop)
                else:
                    status = await asyncio.to_thread(_connect_unary, backend.endpoint, path, body)
                row.trials += 1
                row.statuses[status] += 1
                row.statuses[f"({how})"] += 0

        asyncio.run(barrage())
        alive = backend.proc is not None and backend.proc.poll() is None
        if not alive:
            row.notes.append("BROKEN: the backend died under malformed requests")
        else:
            row.notes.append(
                f"backend RSS {rss_before // 1024} MB before, {backend.rss_kb() // 1024} MB after"
            )
            # Still serving: a real run goes through.
            run = _start_run(work / "marks-after")
            _settle(run, row, data)
    return row


# -- the report ----------------------------------------------------------------------------------


def _table(rows: dict[str, Row]) -> str:
    head = (
        "scenario",
        "trials",
        "faults",
        "runs right",
        "lost",
        "stuck",
        "finished re-run",
        "in-flight re-run",
        "panics",
        "db ok",
    )
    lines = [head]
    for kind, r in rows.items():
        trials = f"{r.trials} requests" if kind == "malformed requests" else str(r.trials)
        lines.append(
            (
                kind,
                trials,
                str(r.faults),
                str(r.right),
                str(r.lost),
                str(r.stuck),
                str(r.finished_rerun),
                str(r.inflight_rerun),
                str(r.panics),
                "yes" if r.db_ok else "NO",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def run_suite(seed: int, trials: int, requests: int, only: tuple[str, ...] = ALL_KINDS) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for kind in only:
        # One generator per kind: a kind replays the same way whichever others run with it.
        rng = random.Random(f"{seed}:{kind}")
        # FLYTE_CHAOS_KEEP=1 keeps each kind's data dir (its path goes to stderr), to look into.
        keep = bool(os.environ.get("FLYTE_CHAOS_KEEP"))
        work = Path(tempfile.mkdtemp(prefix="flyte-chaos-"))
        try:
            started = time.monotonic()
            if kind in KILL_KINDS:
                rows[kind] = kill_trials(kind, trials, rng, work)
            elif kind in STORAGE_KINDS:
                rows[kind] = storage_trials(kind, max(1, trials // 4), rng, work)
            else:
                rows[kind] = malformed_requests(requests, rng, work)
            kept = f" (kept in {work})" if keep else ""
            print(f"  {kind}: {time.monotonic() - started:.0f} s{kept}", file=sys.stderr, flush=True)
        finally:
            if not keep:
                shutil.rmtree(work, ignore_errors=True)
    return rows


def report(seed: int, rows: dict[str, Row]) -> list[str]:
    """Prints the table and the details; the invariants broken (none: all held)."""
    print(_table(rows))
    statuses = collections.Counter[str]()
    for row in rows.values():
        statuses.update(row.statuses)
    if statuses:
        kinds = ", ".join(f"{k[1:-1]}" for k in sorted(statuses) if k.startswith("("))
        answered = ", ".join(f"{k} {n}" for k, n in statuses.most_common() if not k.startswith("("))
        print(f"\nmalformed requests ({kinds}) answered: {answered}")
    broken = []
    for kind, row in rows.items():
        for note in row.notes:
            print(f"{kind}: {note}")
        broken += [f"{kind}: {problem}" for problem in row.broken()]
    print(f"\nseed {seed} (replay: make chaos SEED={seed})")
    print("invariants held" if not broken else "INVARIANTS BROKEN:\n  " + "\n  ".join(broken))
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=None, help="replay a earlier suite (default: a new seed)")
    parser.add_argument(
        "--trials", type=int, default=20, help="runs per kind of kill (storage faults: a quarter)"
    )
    parser.add_argument("--requests", type=int, default=1000, help="malformed requests to send")
    parser.add_argument("--only", default=",".join(ALL_KINDS), help="kinds to run, comma-separated")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)
    only = tuple(k.strip() for k in args.only.split(",") if k.strip())
    unknown = [k for k in only if k not in ALL_KINDS]
    if unknown or args.trials < 1 or args.requests < 1:
        parser.error(
            f"unknown kinds {unknown}; known: {', '.join(ALL_KINDS)}" if unknown else "counts must be ≥ 1"
        )
    print(f"seed {seed}", flush=True)
    return 1 if report(seed, run_suite(seed, args.trials, args.requests, only)) else 0


if __name__ == "__main__":
    sys.exit(main())
