"""A run's logs as a notebook reads them: ``run.logs.stream()``, ``run.logs.lines()``,
``run.download_logs()``."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte.errors import RuntimeUserError
from flyte.remote._action import Action, _log_lines
from flyte.syncify import syncify

if TYPE_CHECKING:
    from flyte.remote._run import Run

# Deferred imports: the backend client loads on the first call.

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _action_id(run: Run, action: str) -> Any:
    from flyteidl2.common import identifier_pb2

    action_id = identifier_pb2.ActionIdentifier()
    action_id.CopyFrom(run.pb2.action.id)
    action_id.name = action
    return action_id


class RunLogs:
    """The log lines of a run's actions (the root action, ``a0``, unless another is named).
    A running action's lines are followed until it ends."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @syncify
    async def lines(
        self, action: str = "a0", attempt: int | None = None, show_ts: bool = False
    ) -> AsyncIterator[str]:
        """The lines of an attempt (default: the latest), as they are written."""
        async for line in _log_lines(_action_id(self._run, action), attempt, False, show_ts):
            yield line

    @syncify
    async def stream(self, action: str = "a0", attempt: int | None = None, show_ts: bool = False) -> None:
        """Prints the lines of an attempt (default: the latest) as they are written, until the
        action ends."""
        async for line in self.lines.aio(action, attempt, show_ts):
            print(line, flush=True)

    @syncify
    async def download(self, path: str | Path | None = None) -> Path:
        """Writes every attempt's log of every action of the run into the directory ``path``
        (default: ``<run name>-logs`` here), one file per attempt named
        ``<action>-<task>-attempt<N>.log``; returns the directory."""
        target = Path(path) if path is not None else Path.cwd() / f"{self._run.name}-logs"
        target.mkdir(parents=True, exist_ok=True)
        async for action in Action.listall.aio(for_run_name=self._run.name):
            attempts = action.pb2.status.attempts
            task = _UNSAFE.sub("_", action.task_name or "")
            for attempt in range(1, attempts + 1):
                lines = [line async for line in self.lines.aio(action.name, attempt)]
                if not lines:
                    continue
                name = (
                    f"{action.name}-{task}-attempt{attempt}.log"
                    if task
                    else f"{action.name}-attempt{attempt}.log"
                )
                (target / name).write_text("\n".join(lines) + "\n")
        return target


class LocalRunLogs(RunLogs):
    """A local run's tasks ran in this process: what they printed went to this process's own
    output (the notebook cell, the terminal) as they ran, so there is nothing to fetch."""

    @syncify
    async def lines(
        self, action: str = "a0", attempt: int | None = None, show_ts: bool = False
    ) -> AsyncIterator[str]:
        raise _printed_here(self._run)
        yield ""  # an async generator, like the backend run's

    @syncify
    async def stream(self, action: str = "a0", attempt: int | None = None, show_ts: bool = False) -> None:
        print(
            f"(run {self._run.name} ran in this process: its tasks' output is printed above)", file=sys.stderr
        )

    @syncify
    async def download(self, path: str | Path | None = None) -> Path:
        raise _printed_here(self._run)


def _printed_here(run: Run) -> Exception:
    return RuntimeUserError(
        "LocalRunLogs",
        f"run {run.name} ran in this process (local mode): its tasks printed to this process's output; "
        "logs are kept for runs on a backend",
    )
