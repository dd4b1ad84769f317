"""Tasks run as the backend's user, so file permissions cannot keep them from the backend's
database and keys; no process started for tasks (an attempt, the fork server, a reusable
worker) can read them, while the backend keeps using them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attempt_token_wf
import local_backend
import pytest

import flyte


@pytest.fixture(params=["fork", "spawn"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    with local_backend.sandboxed(data, request.param):
        yield data


@pytest.mark.parametrize(
    "task", [attempt_token_wf.peek, attempt_token_wf.pooled_peek], ids=["attempt", "worker"]
)
def test_tasks_cannot_read_the_database_or_the_keys(backend: Path, task: object) -> None:
    done = flyte.run(task).wait(quiet=True)  # type: ignore[arg-type]
    assert done.phase == flyte.models.ActionPhase.SUCCEEDED, done
    # In a task's view of the data dir there is its run, and none of these files (see
    # test_run_isolation.py); a process that could still reach them would find /dev/null.
    assert done.outputs()[0] == {}
    # The backend itself still has them.
    assert (backend / "backend.db").stat().st_size > 0
    assert (backend / "secrets.key").stat().st_size > 0
