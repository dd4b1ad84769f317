"""Reusable workers on the embedded backend: tasks of an environment with a `ReusePolicy` run
as attempts on warm worker processes, several at a time, each with its own log, timeout and
abort; workers stop when idle and are replaced when they die, and what they ran is retried."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import reuse_wf
from counters import count
from protovalidation import checked_backend

import flyte
import flyte.remote as remote


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A backend of this module's own: its workers get killed here."""
    with checked_backend(tmp_path_factory.mktemp("reuse-backend")) as backend:
        yield backend.endpoint


def _start(endpoint: str, task, *args, **kwargs):
    flyte.init(endpoint=endpoint, insecure=True)
    env_vars = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    return flyte.with_runcontext(mode="remote", env_vars=env_vars).run(task, *args, **kwargs)


def _run(endpoint: str, task, *args, **kwargs):
    return _start(endpoint, task, *args, **kwargs).wait().result


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(what: str, check, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {limit}s")


def _most_at_once(spans: list[tuple[int, float, float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_attempts_share_warm_workers_several_at_a_time(endpoint: str, sync: bool) -> None:
    spans = _run(endpoint, reuse_wf.fan, n=8, sync=sync)
    pids = {pid for pid, _, _ in spans}
    # replicas=2: at most two processes ran the eight actions, none of them the driver's.
    assert 1 <= len(pids) <= 2
    # concurrency=4: a worker ran several at once (async bodies on its loop, sync ones on threads).
    for pid in pids:
        assert _most_at_once([s for s in spans if s[0] == pid]) >= 2
    # The next run finds the same workers warm (scope "global").
    again = _run(endpoint, reuse_wf.fan, n=4, sync=sync)
    assert {pid for pid, _, _ in again} <= pids


def test_each_attempt_logs_to_its_own_log(endpoint: str) -> None:
    run = _start(endpoint, reuse_wf.fan, n=6, sync=False)
    run.wait()
    naps = [a for a in remote.Action.listall(for_run_name=run.name) if a.name != "a0"]
    assert len(naps) == 6
    seen = set()
    for action in naps:
        lines = [line for line in action.get_logs() if line.startswith("nap ")]
        # Six attempts printed at once in two processes; each log has its attempt's line only.
        assert len(lines) == 1, lines
        seen.add(lines[0])
    assert seen == {f"nap {i} runs" for i in range(6)}


def test_idle_workers_stop_and_new_ones_start(endpoint: str) -> None:
    first = _run(endpoint, reuse_wf.whoami)
    # idle_ttl=1s: the pool stops once idle; the next action gets a fresh worker.
    _wait_for("the idle worker's exit", lambda: not _alive(first))
    second = _run(endpoint, reuse_wf.whoami)
    assert second != first


def test_a_killed_workers_attempts_are_retried_once(endpoint: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "worker.pid"
    run = _start(endpoint, reuse_wf.survive, pidfile=str(pidfile))
    worker = int(_wait_for("the sleeper's start", lambda: pidfile.exists() and pidfile.read_text()))
    os.kill(worker, signal.SIGKILL)
    first, second = run.wait().result
    assert first == worker  # quick() ran on the worker that was killed later...
    assert count("quick") == 1  # ...and, finished, was not run again
    assert count("sleeper") == 2  # the attempt in flight was retried once, on a new worker
    assert second != worker
    sleeper = next(a for a in run.actions() if a["task_name"].endswith("sleeper"))
    assert sleeper["phase"] == "SUCCEEDED" and sleeper["attempts"] == 2


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_timeouts_stop_one_attempt(endpoint: str, sync: bool) -> None:
    kind, before, after = _run(endpoint, reuse_wf.time_out, sync=sync)
    assert kind in ("TaskTimeoutError", "MaxRuntimeExceededError")
    if sync:
        # A sync body cannot be stopped: its worker was replaced, not reused.
        assert after != before and not _alive(before)
    else:
        # The async body was cancelled; the worker went on serving.
        assert after == before


def test_an_abort_stops_the_attempt_not_the_worker(endpoint: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "worker.pid"
    run = _start(endpoint, reuse_wf.sleeper, pidfile=str(pidfile))
    worker = int(_wait_for("the sleeper's start", lambda: pidfile.exists() and pidfile.read_text()))
    run.abort()
    run.wait()
    assert run.phase == "aborted"
    assert _run(endpoint, reuse_wf.quick) == worker


def test_a_memory_limit_bounds_the_worker(endpoint: str) -> None:
    message = _run(endpoint, reuse_wf.overeat)
    assert message.startswith("OOMError"), message
    assert "300.0 MiB" in message
