"""The run object of a local run: it has ended when ``flyte.run`` returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from flyte.errors import RuntimeUserError
from flyte.remote._action import ActionDetails, ActionInputs, ActionOutputs, WaitFor
from flyte.remote._logs import LocalRunLogs, RunLogs
from flyte.remote._run import Run, RunDetails
from flyte.syncify import syncify

#: What Run.actions() tells about each action.
_RECORD_FIELDS = (
    "name",
    "parent",
    "task_name",
    "kind",
    "group",
    "phase",
    "attempts",
    "started_at",
    "ended_at",
    "error",
    "cache_hit",
)


class LocalRun(Run):
    """A run in local mode: it has ended when ``flyte.run`` returns (a failure raised there), and
    its record is this process's ledger, not a backend's."""

    def __init__(
        self,
        name: str,
        task_name: str,
        where: Any,
        url: str,
        outputs: tuple[Any, ...],
        output_names: list[str],
        inputs: dict[str, Any],
        inputs_pb: Any,
        started: float,
        ledger: Any,
    ) -> None:
        from flyteidl2.common import identifier_pb2, phase_pb2
        from flyteidl2.task import task_definition_pb2
        from flyteidl2.workflow import run_definition_pb2

        status = run_definition_pb2.ActionStatus(phase=phase_pb2.ACTION_PHASE_SUCCEEDED, attempts=1)
        status.start_time.FromNanoseconds(int(started * 1e9))
        status.end_time.GetCurrentTime()
        action = run_definition_pb2.Action(
            id=identifier_pb2.ActionIdentifier(
                run=identifier_pb2.RunIdentifier(
                    org=where.org, project=where.project, domain=where.domain, name=name
                ),
                name="a0",
            ),
            metadata=run_definition_pb2.ActionMetadata(
                task=run_definition_pb2.TaskActionMetadata(
                    id=task_definition_pb2.TaskIdentifier(
                        org=where.org, project=where.project, domain=where.domain, name=task_name
                    )
                )
            ),
            status=status,
        )
        super().__init__(run_definition_pb2.Run(action=action))
        self._url = url
        self._output_values = ActionOutputs(_empty_outputs(), outputs, output_names)
        self._input_values = ActionInputs(inputs_pb, inputs)
        self._ledger = ledger

    @property
    def url(self) -> str:
        return self._url

    def sync(self) -> LocalRun:
        return self

    @syncify
    async def wait(self, quiet: bool = False, wait_for: WaitFor = "terminal") -> LocalRun:
        """Returns the run: a local run has ended already."""
        return self

    @syncify
    async def outputs(self) -> ActionOutputs:
        return self._output_values

    @syncify
    async def inputs(self) -> ActionInputs:
        return self._input_values

    @syncify
    async def input_literals(self) -> dict[str, Any]:
        return {nl.name: nl.value for nl in self._input_values.pb2.literals}

    @syncify
    async def raise_for_status(self) -> None:
        """Nothing to raise: a local run that failed raised from ``flyte.run``."""

    @syncify
    async def first_failure(self) -> ActionDetails | None:
        return None

    @syncify
    async def abort(self, reason: str = "Manually aborted from the SDK api.") -> None:
        """Nothing to stop: a local run has ended when ``flyte.run`` returns."""

    @syncify
    async def details(self) -> RunDetails:
        raise _backend_only(self.name, "details")

    @syncify
    async def output_literals(self) -> dict[str, Any]:
        raise _backend_only(self.name, "output_literals")

    @syncify
    async def typed_outputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        raise _backend_only(self.name, "typed_outputs")

    @syncify
    async def typed_inputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        raise _backend_only(self.name, "typed_inputs")

    @syncify
    async def get_logs(
        self, attempt: int | None = None, filter_system: bool = False, show_ts: bool = False
    ) -> AsyncIterator[str]:
        raise _backend_only(self.name, "get_logs")
        yield ""  # an async generator, like the backend run's

    @syncify
    async def show_logs(
        self,
        attempt: int | None = None,
        max_lines: int = 100,
        show_ts: bool = False,
        raw: bool = False,
        filter_system: bool = False,
    ) -> None:
        raise _backend_only(self.name, "show_logs")

    @property
    def logs(self) -> RunLogs:
        return LocalRunLogs(self)

    @syncify
    async def get_report(self, attempt: int | None = None) -> str:
        raise _backend_only(self.name, "get_report")

    @syncify
    async def code_bundle(self) -> str | None:
        return None

    @syncify
    async def download_code(
        self, dest: str | Path | None = None, extract: bool = True, attempt: int | None = None
    ) -> Path:
        raise _backend_only(self.name, "download_code")

    async def watch(self, cache_data_on_done: bool = False) -> AsyncIterator[ActionDetails]:
        raise _backend_only(self.name, "watch")
        yield  # an async generator, like the backend run's

    def actions(self) -> list[dict[str, Any]]:
        """The record of every action of the run: name, parent, task, phase, attempts, timings."""
        # The same shape as a backend run's records (flyte.remote.Run.actions).
        return [{field: getattr(r, field) for field in _RECORD_FIELDS} for r in self._ledger.actions()]

    def __repr__(self) -> str:
        return f"LocalRun(name={self.name!r}, task={self.task_name!r}, phase={self.phase.value}, url={self.url!r})"


def _empty_outputs() -> Any:
    from flyteidl2.task import common_pb2

    return common_pb2.Outputs()


def _backend_only(run_name: str, what: str) -> RuntimeUserError:
    return RuntimeUserError(
        "LocalRun",
        f"run {run_name} ran in local mode: {what}() reads a backend's record of a run, and a local run has "
        "none (its outputs, inputs and actions() are here; its logs went to this console)",
    )
