"""The backend's data dir on a small file system (a tmpfs mounted for the test) that fills up
while a run goes on: new work is refused with a clear error, reads keep working, and once space
comes back the run finishes by itself — no restart — with an intact database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import local_backend
import pytest
import restart_wf

import flyte


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    # Unbuffered: nothing is left to write (and fail) when the file is closed.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
        except OSError:
            pass
    return filler


def test_a_full_disk_pauses_a_run_and_space_coming_back_resumes_it(small_disk: Path) -> None:
    env = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    data = small_disk / "data"
    with local_backend.running(data) as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        run = flyte.with_runcontext(env_vars=env).run(restart_wf.chain, n=10, pause=0.3)
        time.sleep(1.5)
        filler = _fill(small_disk)
        time.sleep(3)
        # Reads go on; new work is refused, saying why.
        assert run.sync().phase == flyte.models.ActionPhase.RUNNING
        with pytest.raises(Exception, match="(?i)full|space"):
            flyte.with_runcontext(env_vars=env).run(restart_wf.chain, n=1)
        filler.unlink()
        done = run.wait(quiet=True)
        assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
        assert done.outputs()[0] == sum(range(10))
        # The next run goes through as usual.
        assert (
            flyte.with_runcontext(env_vars=env)
            .run(restart_wf.chain, n=2, pause=0)
            .wait(quiet=True)
            .outputs()[0]
            == 1
        )
    with sqlite3.connect(data / "backend.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_briefly_read_only_data_dir_pauses_a_run_without_failing_it(small_disk: Path) -> None:
    env = {"FLYTE_TEST_COUNTERS": os.environ["FLYTE_TEST_COUNTERS"]}
    data = small_disk / "data"
    with local_backend.running(data) as endpoint:
        flyte.init(endpoint=endpoint, insecure=True)
        run = flyte.with_runcontext(env_vars=env).run(restart_wf.chain, n=10, pause=0.3)
        time.sleep(1.5)
        # Read-only from now on for every file opened by its path (a read-only bind mount over
        # the data dir; what is open already stays writable, as on a remount that a busy file
        # system refuses).
        subprocess.run(["mount", "--bind", str(data), str(data)], check=True)
        # Making a mount read-only fails (EBUSY) while a write through it is under way.
        for _ in range(100):
            if (
                subprocess.run(["mount", "-o", "remount,ro,bind", str(data)], capture_output=True).returncode
                == 0
            ):
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"cannot make {data} read-only")
        try:
            time.sleep(4)
            # Its launches fail meanwhile, as system retries that back off: the run waits.
            assert not run.sync().done(), run.phase
        finally:
            subprocess.run(["umount", str(data)], check=True)
        done = run.wait(quiet=True)
        assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
        assert done.outputs()[0] == sum(range(10))
    with sqlite3.connect(data / "backend.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
