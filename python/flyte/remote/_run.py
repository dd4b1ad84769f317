"""Runs: what ``flyte.run`` returns, and what ``Run.get`` / ``Run.listall`` find on a backend.

A run is its root action (``a0``) plus the settings it was started with; most of what a run
can tell is its root action's (phase, inputs, outputs, logs, report).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flyte.errors import ActionNotFoundError, RuntimeUserError
from flyte.models import ActionPhase
from flyte.remote._action import (
    Action,
    ActionDetails,
    ActionInputs,
    ActionOutputs,
    WaitFor,
    _client_of,
    _download_code,
    _report,
    _with_org,
)
from flyte.remote._common import (
    TimeFilter,
    ToJSONMixin,
    add_phase_filter,
    add_time_filter,
    backend_endpoint,
    connection,
    set_sort,
)
from flyte.syncify import syncify

if TYPE_CHECKING:
    from flyte.remote._logs import RunLogs

# Deferred imports: protobufs and the backend client load on the first remote call.


class Run(ToJSONMixin):
    """A run (``run_definition.Run``): follow it, read its outputs, logs and report, abort it."""

    pb2: Any
    #: The run's root action.
    action: Action

    def __init__(
        self, pb2: Any, _details: RunDetails | None = None, _preserve_original_types: bool = False
    ) -> None:
        if not pb2.HasField("action"):
            raise ValueError("a Run is made from a run_definition.Run with its root action")
        self.pb2 = pb2
        self.action = Action(pb2.action)
        self._details = _details
        self._preserve_original_types = _preserve_original_types
        #: The interface of the task, when this process started the run: outputs come back as
        #: the task's own classes rather than look-alikes guessed from the backend's types.
        self._interface: Any = None

    # -- finding runs ---------------------------------------------------------------------

    @syncify
    @classmethod
    async def listall(
        cls,
        in_phase: tuple[ActionPhase | str, ...] | None = None,
        task_name: str | None = None,
        task_version: str | None = None,
        created_by_subject: str | None = None,
        sort_by: tuple[str, Literal["asc", "desc"]] | None = None,
        limit: int = 100,
        project: str | None = None,
        domain: str | None = None,
        created_at: TimeFilter | None = None,
        updated_at: TimeFilter | None = None,
        with_labels: dict[str, str] | None = None,
        with_label_keys: list[str] | None = None,
        paused_actions_only: bool = False,
    ) -> AsyncIterator[Run]:
        """The runs of a project and domain (default: the configured ones), oldest first unless
        ``sort_by`` says otherwise, at most ``limit``; every filter given must hold."""
        from flyteidl2.common import identifier_pb2, list_pb2

        if limit <= 0:
            return
        client, where = connection(project, domain)
        request = list_pb2.ListRequest(limit=min(100, limit))
        set_sort(request, sort_by)
        add_phase_filter(request, in_phase)
        eq = list_pb2.Filter.EQUAL
        for field, value in (
            ("task_name", task_name),
            ("task_version", task_version),
            ("created_by", created_by_subject),
        ):
            if value:
                request.filters.add(function=eq, field=field, values=[value])
        add_time_filter(request, "created_at", created_at)
        add_time_filter(request, "updated_at", updated_at)
        for key, value in (with_labels or {}).items():
            request.filters.add(function=eq, field=f"labels.{key}", values=[value])
        for key in with_label_keys or []:
            request.filters.add(function=list_pb2.Filter.EXISTS, field=f"labels.{key}")
        project_id = identifier_pb2.ProjectIdentifier(
            organization=where.org, domain=where.domain, name=where.project
        )
        seen = 0
        while True:
            runs, token = await client.list_runs_page(project_id, request, paused_actions_only)
            for pb2 in runs:
                seen += 1
                if seen > limit:
                    return
                _with_org(pb2.action, where.org)
                yield cls(pb2)
            if not token:
                return
            request.token = token

    @syncify
    @classmethod
    async def get(cls, name: str) -> Run:
        """The run named ``name`` in the configured project and domain."""
        from flyteidl2.workflow import run_definition_pb2

        details = await RunDetails.get.aio(name=name)
        action = details.action_details.pb2
        pb2 = run_definition_pb2.Run(
            action=run_definition_pb2.Action(id=action.id, metadata=action.metadata, status=action.status)
        )
        return cls(pb2=pb2, _details=details)

    # -- what it is -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.pb2.action.id.run.name)

    @property
    def task_name(self) -> str | None:
        """The task the run started with."""
        return self.action.task_name

    @property
    def phase(self) -> ActionPhase:
        """Where the run is (as last seen: ``wait``, ``watch`` and ``sync`` look again)."""
        return self.action.phase

    @property
    def raw_phase(self) -> Any:
        return self.action.raw_phase

    @property
    def url(self) -> str:
        """The run's page: the embedded backend's web UI, or a cluster's console (same path)."""
        endpoint, insecure = backend_endpoint()
        host = endpoint.split("://", 1)[-1].removeprefix("/").rstrip("/")
        run = self.pb2.action.id.run
        scheme = "http" if insecure else "https"
        return f"{scheme}://{host}/v2/runs/project/{run.project}/domain/{run.domain}/{run.name}"

    def done(self) -> bool:
        return self.action.done()

    # -- following it -------------------------------------------------------------------------

    def sync(self) -> Run:
        """Looks at the run again on the backend and updates this object."""
        syncify.run(self.action.sync())
        self.pb2.action.CopyFrom(self.action.pb2)
        return self

    @syncify
    async def wait(self, quiet: bool = False, wait_for: WaitFor = "terminal") -> Run:
        """Waits until the run ends (or, with ``wait_for``, runs or has logs), saying how it
        ended unless ``quiet``; returns the run. A failed run does not raise here:
        ``raise_for_status()`` or ``outputs()`` do."""
        await self.action.wait(quiet=quiet, wait_for=wait_for)
        self.pb2.action.CopyFrom(self.action.pb2)
        return self

    async def watch(self, cache_data_on_done: bool = False) -> AsyncIterator[ActionDetails]:
        """The root action's details now and at every change until the run ends; this object
        follows along."""
        async for details in self.action.watch(cache_data_on_done=cache_data_on_done):
            self.pb2.action.CopyFrom(self.action.pb2)
            yield details

    @syncify
    async def abort(self, reason: str = "Manually aborted from the SDK api.") -> None:
        """Stops the run and every action in it; a run that already ended stays as it is."""
        try:
            await _client_of(self.pb2.action.id).abort_run(self.pb2.action.id.run, reason)
        except ActionNotFoundError:
            return

    @syncify
    async def raise_for_status(self) -> None:
        """Raises the run's failure as awaiting its task in a task would (a timeout as its
        ``TaskTimeoutError`` kind, an abort as ``ActionAbortedError``); nothing if it succeeded.
        A run that has not ended raises ``RuntimeUserError`` (``RunNotDoneError``)."""
        if not self.done():
            raise RuntimeUserError(
                "RunNotDoneError",
                f"run {self.name} is {self.phase.value}: wait() for it before raise_for_status()",
            )
        if self.phase == ActionPhase.SUCCEEDED:
            return
        (await self.details.aio()).action_details._raise_failure()

    # -- details, data, logs -------------------------------------------------------------------

    @syncify
    async def details(self) -> RunDetails:
        """The run's details (settings and root action), fetched anew until the run has ended."""
        if self._details is None or not self._details.done():
            self._details = await RunDetails.get_details.aio(self.pb2.action.id.run)
        self._details._preserve_original_types = self._preserve_original_types
        if self._interface is not None:
            self._details.action_details._interface = self._interface
        return self._details

    @syncify
    async def inputs(self) -> ActionInputs:
        return await (await self.details.aio()).inputs()

    @syncify
    async def outputs(self) -> ActionOutputs:
        """The run's outputs (a tuple, also by name); a failed run raises its error, a run that
        has not ended RuntimeError."""
        details = await self.details.aio()
        try:
            return await details.outputs()
        finally:
            self.pb2.action.status.CopyFrom(details.action_details.pb2.status)
            self.action.pb2.status.CopyFrom(details.action_details.pb2.status)

    @property
    def result(self) -> Any:
        """The run's single output, a tuple of several, or None; waits for the run to end and
        raises its error if it failed."""
        if not self.done():
            self.wait(quiet=True)
        outs = self.outputs()
        if len(outs) == 0:
            return None
        return outs[0] if len(outs) == 1 else tuple(outs)

    @syncify
    async def output_literals(self) -> dict[str, Any]:
        return await (await self.details.aio()).output_literals()

    @syncify
    async def input_literals(self) -> dict[str, Any]:
        return await (await self.details.aio()).input_literals()

    @syncify
    async def typed_outputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        return await (await self.details.aio()).typed_outputs(types, deserializers)

    @syncify
    async def typed_inputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        return await (await self.details.aio()).typed_inputs(types, deserializers)

    @syncify
    async def first_failure(self) -> ActionDetails | None:
        """The first action that failed (a step inside the run before the root, whose error
        usually repeats it), or None."""
        fallback: ActionDetails | None = None
        async for action in Action.listall.aio(for_run_name=self.name, in_phase=(ActionPhase.FAILED,)):
            details = await action.details()
            if action.parent_name:
                return details
            fallback = fallback or details
        return fallback

    @syncify
    async def get_logs(
        self, attempt: int | None = None, filter_system: bool = False, show_ts: bool = False
    ) -> AsyncIterator[str]:
        """The root action's log lines (default: latest attempt), following them while it runs."""
        async for line in self.action.get_logs.aio(attempt, filter_system=filter_system, show_ts=show_ts):
            yield line

    @syncify
    async def show_logs(
        self,
        attempt: int | None = None,
        max_lines: int = 100,
        show_ts: bool = False,
        raw: bool = False,
        filter_system: bool = False,
    ) -> None:
        await self.action.show_logs.aio(attempt, max_lines, show_ts, raw, filter_system)

    @property
    def logs(self) -> RunLogs:
        """The log lines of the run's actions: ``run.logs.stream()`` prints the root's as they
        come, ``run.logs.lines()`` yields them, ``run.logs.download(path)`` saves them all."""
        from flyte.remote._logs import RunLogs

        return RunLogs(self)

    @syncify
    async def download_logs(self, path: str | Path | None = None) -> Path:
        """Saves the log of every attempt of every action of the run into the directory
        ``path`` (default: ``<run name>-logs`` here); returns the directory. Actions still
        running are followed until they end."""
        return await self.logs.download.aio(path)

    @syncify
    async def get_report(self, attempt: int | None = None) -> str:
        """The HTML report of the root action (``Action.get_report`` for others)."""
        return await _report(self.pb2.action.id, attempt)

    @syncify
    async def code_bundle(self) -> str | None:
        """Where the code bundle the run ran is stored (a URI), or None for code in its image."""
        return (await self.details.aio()).action_details.code_bundle

    @syncify
    async def download_code(
        self, dest: str | Path | None = None, extract: bool = True, attempt: int | None = None
    ) -> Path:
        """Downloads (and unless ``extract`` is False, unpacks) the code the run ran."""
        return await _download_code((await self.details.aio()).action_details, dest, extract)

    def actions(self) -> list[dict[str, Any]]:
        """Every action of the run: name, parent, task, kind, group, phase, attempts, cache hit."""
        return syncify.run(_action_records(self))

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, task={self.task_name!r}, phase={self.phase.value})"


async def _action_records(run: Run) -> list[dict[str, Any]]:
    from flyteidl2.core import catalog_pb2

    out = []
    async for a in Action.listall.aio(for_run_name=run.name):
        meta, status = a.pb2.metadata, a.pb2.status
        out.append(
            {
                "name": a.name,
                "parent": a.parent_name,
                "group": meta.group or None,
                "phase": ActionPhase.from_protobuf(status.phase).name,
                "attempts": status.attempts,
                "task_name": meta.task.id.name if meta.HasField("task") else meta.trace.name,
                "kind": "trace" if meta.HasField("trace") else "task",
                "cache_hit": status.cache_status == catalog_pb2.CACHE_HIT,
            }
        )
    return out


def created_run(created: Any, run_id: Any) -> Run:
    """The run a CreateRun answered with (``created``), named as the backend named it, in the
    org, project and domain of the ``run_id`` it was asked for (the backend may leave them out)."""
    from flyteidl2.workflow import run_definition_pb2

    pb2 = run_definition_pb2.Run()
    pb2.CopyFrom(created)
    named = pb2.action.id.run.name or run_id.name
    pb2.action.id.run.CopyFrom(run_id)
    pb2.action.id.run.name = named
    pb2.action.id.name = pb2.action.id.name or "a0"
    return Run(pb2)


class RunDetails(ToJSONMixin):
    """A run with its settings (``run_spec``: labels, env vars, ...) and its root action's details."""

    pb2: Any
    action_details: ActionDetails

    def __init__(self, pb2: Any, _preserve_original_types: bool = False) -> None:
        self.pb2 = pb2
        self._preserve_original_types = _preserve_original_types
        self.action_details = ActionDetails(pb2.action, _preserve_original_types=_preserve_original_types)

    @syncify
    @classmethod
    async def get_details(cls, run_id: Any) -> RunDetails:
        from flyteidl2.common import identifier_pb2

        root = identifier_pb2.ActionIdentifier(run=run_id, name="a0")
        details = await _client_of(root).get_run_details(run_id)
        _with_org(details.action, run_id.org)
        return cls(details)

    @syncify
    @classmethod
    async def get(cls, name: str | None = None) -> RunDetails:
        """The details of the run named ``name`` in the configured project and domain."""
        from flyteidl2.common import identifier_pb2

        if not name:
            raise ValueError("RunDetails.get needs the run's name")
        _, where = connection()
        run_id = identifier_pb2.RunIdentifier(
            org=where.org, project=where.project, domain=where.domain, name=name
        )
        return await cls.get_details.aio(run_id)

    @property
    def name(self) -> str:
        return self.action_details.run_name

    @property
    def task_name(self) -> str | None:
        return self.action_details.task_name

    @property
    def action_id(self) -> Any:
        return self.action_details.action_id

    def done(self) -> bool:
        return self.action_details.done()

    async def inputs(self) -> ActionInputs:
        return await self.action_details.inputs()

    async def outputs(self) -> ActionOutputs:
        return await self.action_details.outputs()

    async def output_literals(self) -> dict[str, Any]:
        return await self.action_details.output_literals()

    async def input_literals(self) -> dict[str, Any]:
        return await self.action_details.input_literals()

    async def typed_outputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        return await self.action_details.typed_outputs(types, deserializers)

    async def typed_inputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        return await self.action_details.typed_inputs(types, deserializers)

    def __repr__(self) -> str:
        return f"RunDetails(name={self.name!r}, task={self.task_name!r}, phase={self.action_details.phase.value})"
