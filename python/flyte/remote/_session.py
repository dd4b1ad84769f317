"""``flyte.remote()``: the backend ``flyte.init`` points at, as a notebook cell uses it —
``remote.list_runs()``, ``remote.get_run(name)`` — over the same objects as ``Run.listall``,
``Run.get`` and ``Task.get``."""

from __future__ import annotations

from flyte.models import ActionPhase
from flyte.remote._run import Run
from flyte.remote._task import RemoteTask, Task
from flyte.syncify import syncify


class Remote:
    """Runs and deployed tasks of the configured backend (else the local one), in the
    configured project and domain."""

    @syncify
    async def list_runs(
        self,
        limit: int = 100,
        task_name: str | None = None,
        in_phase: tuple[ActionPhase | str, ...] | None = None,
    ) -> list[Run]:
        """The newest runs first, at most ``limit``, optionally of one task or in some phases."""
        return [
            run
            async for run in Run.listall.aio(
                in_phase=in_phase, task_name=task_name, sort_by=("created_at", "desc"), limit=limit
            )
        ]

    @syncify
    async def get_run(self, name: str) -> Run:
        """The run named ``name``."""
        return await Run.get.aio(name)

    def get_task(self, name: str, version: str | None = None) -> RemoteTask:
        """A deployed task (``ENV.TASK``): ``version``, else the latest; fetched on first use."""
        return Task.get(name, version=version, auto_version=None if version else "latest")

    def __repr__(self) -> str:
        return "Remote()"
