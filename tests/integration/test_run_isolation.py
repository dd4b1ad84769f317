"""A task sees only its own run's data: in its view of the data dir, everything but its run's
directory, its work dir and what its launch names (an uploaded input, the code bundle) is an
empty tmpfs it cannot unmount; other tasks' processes (their environment, their files) are out
of its reach. A cache hit produced by another run is brought into the run that uses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import isolation_wf
import local_backend
import pytest

import flyte
import flyte.io
import flyte.remote


@pytest.fixture(params=["fork", "spawn"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    with local_backend.sandboxed(data, request.param):
        yield data


def _ok(run: flyte.remote.Run) -> object:
    done = run.wait(quiet=True)  # type: ignore[func-returnsdifferenttype]
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    return done.outputs()[0]


@pytest.mark.parametrize("pooled", [False, True], ids=["attempt", "worker"])
def test_a_task_sees_only_its_own_run(backend: Path, pooled: bool) -> None:
    left = _ok(flyte.run(isolation_wf.leave_file, text="private to run one"))
    assert isinstance(left, flyte.io.File)
    other = left.path.removeprefix("file://")
    assert Path(other).read_text() == "private to run one"  # the user sees it

    task = isolation_wf.pooled_look_around if pooled else isolation_wf.look_around
    run = flyte.run(task, other=other)
    seen = _ok(run)
    assert isinstance(seen, dict)
    assert seen["other"] == "FileNotFoundError", seen
    own = (f"data/_/flytesnacks/development/{run.name}/",)
    # A worker works in its own directory, and writes its attempts' logs itself.
    own += (f"logs/_/flytesnacks/development/{run.name}/", "workers/") if pooled else (f"work/{run.name}/",)
    for path in seen["files"].splitlines():
        # Besides those, only the code bundle its launch names (read-only).
        bundle = path.startswith("data/uploads/") and path.endswith(".tar.gz")
        assert path.startswith(own) or bundle, seen["files"]
    assert "backend.db" not in seen["files"]
    # refs/: what the run's cache hits name (see test_a_cache_hit_from_another_run_is_readable).
    top = "['data', 'logs', 'refs', 'workers']" if pooled else "['data', 'refs', 'work']"
    assert seen["top"] == top, seen
    # Unmounting is not allowed, and in a namespace of the task's own the mounts are locked.
    assert seen["umount"] == "-1 1", seen
    assert seen["nested"] == top, seen


def test_no_task_reaches_another_tasks_process(backend: Path) -> None:
    marker = f"marker-{time.time_ns()}"
    holder = flyte.with_runcontext(env_vars={isolation_wf.MARKER: marker}).run(
        isolation_wf.hold_secret, seconds=30
    )
    deadline = time.monotonic() + 60
    while flyte.remote.Run.get(holder.name).phase != flyte.models.ActionPhase.RUNNING:
        assert time.monotonic() < deadline, "the holder never ran"
        time.sleep(0.2)
    time.sleep(1)  # past its start-up, into the sleep
    assert _ok(flyte.run(isolation_wf.scan_environments, marker=marker)) == []
    flyte.remote.Run.get(holder.name).abort()


def test_a_cache_hit_from_another_run_is_readable(backend: Path) -> None:
    first = flyte.run(isolation_wf.read_cached, text="cached once", write=False)
    computed, _, _ = _ok(first)  # type: ignore[misc]
    assert computed.startswith("cached once ")
    second = flyte.run(isolation_wf.read_cached, text="cached once", write=True)
    content, path, written = _ok(second)  # type: ignore[misc]
    assert content == computed  # a hit: the task did not run again
    # Its file is linked to the first run's, so the second run's tasks see it read-only.
    assert written == "OSError", written
    # The hit's file was brought into the second run, whose tasks could not see the first.
    assert f"/{second.name}/" in path, path
    assert Path(path.removeprefix("file://")).read_text() == computed


def test_an_uploaded_input_is_readable(backend: Path, tmp_path: Path) -> None:
    local = tmp_path / "input.txt"
    local.write_text("from the user's machine")
    f = flyte.io.File.from_local_sync(str(local))
    assert _ok(flyte.run(isolation_wf.read_file, f=f)) == "from the user's machine"


def test_no_sandbox_shows_tasks_the_whole_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with local_backend.running(data, "--port", "0", "--no-sandbox") as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        left = _ok(flyte.run(isolation_wf.leave_file, text="for everyone"))
        assert isinstance(left, flyte.io.File)
        seen = _ok(flyte.run(isolation_wf.look_around, other=left.path.removeprefix("file://")))
    assert isinstance(seen, dict)
    assert seen["other"] == "for everyone", seen
    assert "backend.db" in seen["top"], seen


def test_naming_the_database_in_a_childs_inputs_opens_nothing(backend: Path) -> None:
    # Values may name runs' data, never the database or the keys.
    seen = _ok(flyte.run(isolation_wf.smuggle))
    assert isinstance(seen, list)
    assert all("bytes" not in entry for entry in seen), seen
