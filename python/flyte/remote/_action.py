"""Actions of runs on a backend: where each is, its inputs and outputs, logs and report.

A run is a tree of actions; its root is ``a0``. ``Action`` is an action as the backend lists
it (identity, phase, times); ``ActionDetails`` adds its spec, error, attempts and data.
"""

from __future__ import annotations

import asyncio
from collections import UserDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from flyte.errors import ActionNotFoundError, RuntimeSystemError
from flyte.models import ActionPhase
from flyte.remote._common import (
    TimeFilter,
    ToJSONMixin,
    add_phase_filter,
    add_time_filter,
    connection,
    set_sort,
)
from flyte.syncify import syncify

# Deferred imports: protobufs and the backend client load on the first remote call.

WaitFor = Literal["terminal", "running", "logs-ready"]

#: How long a watch waits before looking again when the backend's stream ended early.
_RESUBSCRIBE_SECONDS = 0.2


def _client(project: str | None = None, domain: str | None = None) -> Any:
    return connection(project, domain)[0]


def _client_of(action_id: Any) -> Any:
    return _client(action_id.run.project or None, action_id.run.domain or None)


def _action_id(run_name: str, name: str) -> Any:
    """The identifier of action ``name`` of run ``run_name`` in the configured project."""
    from flyteidl2.common import identifier_pb2

    if not run_name or not name:
        raise ValueError(
            "an action is named by its run (run_name=...) and its own name (name=..., e.g. 'a0')"
        )
    _, where = connection()
    return identifier_pb2.ActionIdentifier(
        run=identifier_pb2.RunIdentifier(
            org=where.org, project=where.project, domain=where.domain, name=run_name
        ),
        name=name,
    )


def _from_uri(uri: str) -> tuple[str, str]:
    """``(run, action)`` from ``<run>/<action>`` (optionally prefixed by project/domain or a URL)."""
    parts = [p for p in uri.rstrip("/").split("/") if p]
    if len(parts) < 2:
        raise ValueError(f"{uri!r} does not name an action: expected '<run name>/<action name>'")
    return parts[-2], parts[-1]


def _with_org(pb2: Any, org: str) -> Any:
    """``pb2`` (a message with an action ``id``) named in ``org``: a backend that keeps no orgs
    answers with an empty one, and requests naming the action need it back."""
    if org and not pb2.id.run.org:
        pb2.id.run.org = org
    return pb2


def _utc(ts: Any) -> datetime:
    return ts.ToDatetime().replace(tzinfo=timezone.utc)


def _is_done(raw_phase: int) -> bool:
    return ActionPhase.from_protobuf(raw_phase).is_terminal


@dataclass
class PhaseTransitionInfo:
    """One phase an attempt went through, and when."""

    phase: ActionPhase
    start_time: datetime
    end_time: datetime | None

    @property
    def duration(self) -> timedelta:
        """How long the attempt was (or has been, while it still is) in this phase."""
        return (self.end_time or datetime.now(timezone.utc)) - self.start_time


class ActionInputs(UserDict[str, Any], ToJSONMixin):
    """The inputs of an action by name (a dict), with the backend's literals as ``pb2``."""

    pb2: Any
    data: dict[str, Any]

    def __init__(self, pb2: Any, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.pb2 = pb2

    def __repr__(self) -> str:
        return f"ActionInputs({self.data!r})"


class ActionOutputs(tuple, ToJSONMixin):  # type: ignore[type-arg]
    """The outputs of an action: a tuple in declaration order, also readable by name
    (``named_outputs``, or as attributes ``o0``, ``o1``...)."""

    pb2: Any
    _fields: list[str]

    def __new__(cls, pb2: Any, data: tuple[Any, ...], fields: list[str] | None = None) -> ActionOutputs:
        obj = super().__new__(cls, data)
        obj.pb2 = pb2
        obj._fields = list(fields) if fields is not None else [f"o{i}" for i in range(len(data))]
        if len(obj._fields) != len(data):
            raise ValueError(f"ActionOutputs: {len(data)} values for {len(obj._fields)} names {obj._fields}")
        for name, value in zip(obj._fields, data, strict=True):
            setattr(obj, name, value)
        return obj

    def __init__(self, pb2: Any, data: tuple[Any, ...], fields: list[str] | None = None) -> None:
        # Everything is set by __new__ (a tuple's items are fixed there).
        super().__init__()

    @cached_property
    def named_outputs(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.named_outputs.items())
        return f"ActionOutputs({inner})"


class _ActionFields:
    """What an action and its details both tell, from the same message fields."""

    pb2: Any

    @property
    def phase(self) -> ActionPhase:
        return ActionPhase.from_protobuf(self.pb2.status.phase)

    @property
    def raw_phase(self) -> Any:
        """The backend's phase number (``flyteidl2.common.ActionPhase``)."""
        return self.pb2.status.phase

    @property
    def name(self) -> str:
        return str(self.pb2.id.name)

    @property
    def run_name(self) -> str:
        return str(self.pb2.id.run.name)

    @property
    def parent_name(self) -> str | None:
        return self.pb2.metadata.parent or None

    @property
    def relation(self) -> Any:
        """What run this one was derived from (a rerun or recovery), or None."""
        return self.pb2.metadata.relation if self.pb2.metadata.HasField("relation") else None

    @property
    def action_id(self) -> Any:
        return self.pb2.id

    def done(self) -> bool:
        """Whether the action has ended (as last seen: look again with ``sync``, ``wait`` or a
        fresh ``get``)."""
        return _is_done(self.pb2.status.phase)


class Action(_ActionFields, ToJSONMixin):
    """An action of a run on a backend, as listed (``run_definition.Action``)."""

    def __init__(self, pb2: Any, _details: ActionDetails | None = None) -> None:
        self.pb2 = pb2
        self._details = _details

    # -- finding actions ------------------------------------------------------------------

    @syncify
    @classmethod
    async def listall(
        cls,
        for_run_name: str,
        in_phase: tuple[ActionPhase | str, ...] | None = None,
        parent_name: str | None = None,
        sort_by: tuple[str, Literal["asc", "desc"]] | None = None,
        created_at: TimeFilter | None = None,
        updated_at: TimeFilter | None = None,
    ) -> AsyncIterator[Action]:
        """The actions of run ``for_run_name`` (oldest first unless ``sort_by`` says otherwise),
        optionally only those in some phases, directly under ``parent_name``, or created or
        updated in a time range."""
        from flyteidl2.common import identifier_pb2, list_pb2

        client, where = connection()
        request = list_pb2.ListRequest(limit=100)
        set_sort(request, sort_by)
        add_phase_filter(request, in_phase)
        if parent_name:
            request.filters.add(function=list_pb2.Filter.EQUAL, field="parent_name", values=[parent_name])
        add_time_filter(request, "created_at", created_at)
        add_time_filter(request, "updated_at", updated_at)
        run_id = identifier_pb2.RunIdentifier(
            org=where.org, project=where.project, domain=where.domain, name=for_run_name
        )
        while True:
            actions, token = await client.list_actions_page(run_id, request)
            for pb2 in actions:
                yield cls(_with_org(pb2, where.org))
            if not token:
                return
            request.token = token

    @syncify
    @classmethod
    async def get(
        cls, uri: str | None = None, /, run_name: str | None = None, name: str | None = None
    ) -> Action:
        """An action by ``run_name`` and ``name`` (e.g. ``"a0"``, the run's root), or by a
        ``"<run>/<action>"`` path."""
        if uri:
            run_name, name = _from_uri(uri)
        details = await ActionDetails.get_details.aio(_action_id(run_name or "", name or ""))
        return cls._of(details)

    @classmethod
    def _of(cls, details: ActionDetails) -> Action:
        from flyteidl2.workflow import run_definition_pb2

        d = details.pb2
        return cls(run_definition_pb2.Action(id=d.id, metadata=d.metadata, status=d.status), _details=details)

    # -- what it is ---------------------------------------------------------------------------

    @property
    def task_name(self) -> str | None:
        meta = self.pb2.metadata
        if meta.HasField("task") and meta.task.HasField("id"):
            return str(meta.task.id.name)
        return None

    @property
    def start_time(self) -> datetime:
        return _utc(self.pb2.status.start_time)

    # -- talking to the backend ---------------------------------------------------------

    async def details(self) -> ActionDetails:
        """The action's details (spec, error, attempts), fetched once it has ended, else anew."""
        if self._details is None or not self._details.done():
            self._details = await ActionDetails.get_details.aio(self.action_id)
        return self._details

    async def sync(self) -> Action:
        """Looks at the action again and updates this object."""
        self._details = await ActionDetails.get_details.aio(self.action_id)
        self._take(self._details)
        return self

    def _take(self, details: ActionDetails) -> None:
        self.pb2.status.CopyFrom(details.pb2.status)
        self.pb2.metadata.CopyFrom(details.pb2.metadata)

    async def watch(
        self, cache_data_on_done: bool = False, wait_for: WaitFor = "terminal"
    ) -> AsyncIterator[ActionDetails]:
        """The action's details now and at every change, until it ends (or, with ``wait_for``,
        until it runs or its logs can be read); this object follows along."""
        last: ActionDetails | None = None
        async for details in ActionDetails.watch.aio(self.action_id):
            last = self._details = details
            self._take(details)
            yield details
            if details.done():
                break
            if wait_for == "running" and details.is_running:
                break
            if wait_for == "logs-ready" and details.logs_available():
                break
        if cache_data_on_done and last is not None and last.done():
            await last._fetch_data()

    async def wait(self, quiet: bool = False, wait_for: WaitFor = "terminal") -> None:
        """Waits until the action ends (or runs, or has logs: ``wait_for``), saying how it ended
        unless ``quiet``. A failure is not raised here: see ``outputs()``."""
        if wait_for not in ("terminal", "running", "logs-ready"):
            raise ValueError(f"wait_for={wait_for!r}: expected 'terminal', 'running' or 'logs-ready'")
        last_phase = None
        if not self.done():
            async for details in self.watch(wait_for=wait_for):
                if not quiet and details.phase != last_phase:
                    last_phase = details.phase
                    _say(f"{self._what()}: {details.phase.value}")
        if not quiet and self.done():
            details = await self.details()
            if details.phase == ActionPhase.SUCCEEDED:
                _say(f"{self._what()} completed successfully")
            else:
                _say(f"{self._what()} ended {details.phase.value}: {details.error_message}")

    def _what(self) -> str:
        return (
            f"Run '{self.run_name}'"
            if self.name == "a0"
            else f"Action '{self.name}' of run '{self.run_name}'"
        )

    @syncify
    async def abort(self, reason: str = "Manually aborted from the SDK.") -> None:
        """Stops the action (and what it started); an action that already ended stays as it is."""
        try:
            await _client_of(self.action_id).abort_action(self.action_id, reason)
        except ActionNotFoundError:
            return

    @syncify
    async def get_logs(
        self, attempt: int | None = None, filter_system: bool = False, show_ts: bool = False
    ) -> AsyncIterator[str]:
        """The log lines of an attempt (default: the latest), following them while it runs."""
        async for line in _log_lines(self.action_id, attempt, filter_system, show_ts):
            yield line

    @syncify
    async def show_logs(
        self,
        attempt: int | None = None,
        max_lines: int = 30,
        show_ts: bool = False,
        raw: bool = False,
        filter_system: bool = False,
    ) -> None:
        """Prints the log lines of an attempt (default: the latest) as they come; without
        ``raw``, only the last ``max_lines`` lines are kept on screen."""
        await _show_logs(self.action_id, attempt, max_lines, show_ts, raw, filter_system)

    @syncify
    async def get_report(self, attempt: int | None = None) -> str:
        """The HTML report of an attempt (default: the latest) written with ``flyte.report``."""
        return await _report(self.action_id, attempt)

    @syncify
    async def download_code(
        self, dest: str | Path | None = None, extract: bool = True, attempt: int | None = None
    ) -> Path:
        """Downloads the code bundle the action ran into ``dest`` (default: a directory named
        after the run) and unpacks it, unless ``extract`` is False; returns the directory (or
        the archive). ``attempt`` is accepted for the reference's signature: every attempt of
        an action runs the same bundle."""
        return await _download_code(await self.details(), dest, extract)

    def __repr__(self) -> str:
        return f"Action(run={self.run_name!r}, name={self.name!r}, task={self.task_name!r}, phase={self.phase.value})"


async def _download_code(details: ActionDetails, dest: str | Path | None, extract: bool) -> Path:
    import io
    import tarfile

    from flyte._internal import _uris

    uri = details.code_bundle
    if uri is None:
        raise RuntimeError(
            f"{details.run_name}/{details.name} ran code baked into its image: there is no code bundle to download"
        )
    target = Path(dest) if dest is not None else Path.cwd() / details.run_name
    target.mkdir(parents=True, exist_ok=True)
    data = await asyncio.to_thread(_uris.read_bytes, uri)
    if not extract:
        archive = target / uri.rsplit("/", 1)[-1]
        archive.write_bytes(data)
        return archive
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
        else:  # Python before 3.10.12 / 3.11.4: no extraction filters; refuse unsafe members.
            for member in tar.getmembers():
                if (
                    member.name.startswith("/")
                    or ".." in Path(member.name).parts
                    or member.issym()
                    or member.islnk()
                ):
                    raise RuntimeError(f"the code bundle {uri} holds an unsafe path: {member.name}")
            tar.extractall(target)
    return target


def _say(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


async def _log_lines(
    action_id: Any, attempt: int | None, filter_system: bool, show_ts: bool
) -> AsyncIterator[str]:
    from flyteidl2.logs.dataplane import payload_pb2

    client = _client_of(action_id)
    async for resp in client.tail_logs(action_id, attempt or 0):
        for batch in resp.logs:
            for line in batch.lines:
                if filter_system and line.originator == payload_pb2.LogLineOriginator.SYSTEM:
                    continue
                text = line.message.rstrip("\n")
                if show_ts and line.HasField("timestamp"):
                    text = f"{_utc(line.timestamp).isoformat()} {text}"
                yield text


async def _show_logs(
    action_id: Any, attempt: int | None, max_lines: int, show_ts: bool, raw: bool, filter_system: bool
) -> None:
    lines = _log_lines(action_id, attempt, filter_system, show_ts)
    if raw:
        async for line in lines:
            print(line, flush=True)
        return
    from collections import deque

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    shown: deque[str] = deque(maxlen=max_lines)
    with Live(Text(""), console=Console(), auto_refresh=False, transient=False) as live:
        async for line in lines:
            shown.append(line)
            live.update(Text("\n".join(shown)), refresh=True)


async def _report(action_id: Any, attempt: int | None) -> str:
    import urllib.error
    import urllib.request

    client = _client_of(action_id)
    if attempt is None:
        attempt = max((await client.get_action_details(action_id)).status.attempts, 1)
    url = await client.report_link(action_id, attempt)

    def fetch() -> str:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - the backend's signed URL
                return response.read().decode("utf-8")  # type: ignore[no-any-return]
        except urllib.error.URLError as e:
            raise RuntimeSystemError("ReportDownloadFailed", f"downloading the report failed: {e}") from None

    return await asyncio.to_thread(fetch)


class ActionDetails(_ActionFields, ToJSONMixin):
    """An action with everything the backend knows of it (``run_definition.ActionDetails``):
    its task, error, attempts and phase history, inputs and outputs."""

    def __init__(
        self,
        pb2: Any,
        _inputs: ActionInputs | None = None,
        _outputs: ActionOutputs | None = None,
        _preserve_original_types: bool = False,
        _action_data: Any = None,
    ) -> None:
        self.pb2 = pb2
        self._inputs = _inputs
        self._outputs = _outputs
        # Kept for the reference's signature: values always come back as the types the
        # interface declares (or the caller's, with typed_inputs/typed_outputs).
        self._preserve_original_types = _preserve_original_types
        self._action_data = _action_data
        #: The caller's own interface of the task, when known (a run it started), which
        #: decodes values into the caller's own classes rather than look-alikes.
        self._interface: Any = None

    # -- finding ------------------------------------------------------------------------------

    @syncify
    @classmethod
    async def get_details(cls, action_id: Any) -> ActionDetails:
        return cls(_with_org(await _client_of(action_id).get_action_details(action_id), action_id.run.org))

    @syncify
    @classmethod
    async def get(
        cls, uri: str | None = None, /, run_name: str | None = None, name: str | None = None
    ) -> ActionDetails:
        """The details of action ``name`` of run ``run_name`` (or of ``"<run>/<action>"``)."""
        if uri:
            run_name, name = _from_uri(uri)
        return await cls.get_details.aio(_action_id(run_name or "", name or ""))

    @syncify
    @classmethod
    async def watch(cls, action_id: Any) -> AsyncIterator[ActionDetails]:
        """The action's details now and at every change until it ends. A stream the backend
        ends early (a restart) is picked up again."""
        from flyteidl2.common import phase_pb2

        from flyte._bridge import ledger

        client = _client_of(action_id)
        while True:
            try:
                async for pb2 in client.watch_action_details(action_id):
                    details = cls(_with_org(pb2, action_id.run.org))
                    yield details
                    if details.done():
                        return
            except RuntimeSystemError:
                pass
            pb2 = await client.get_action_details(action_id)
            if ledger.is_terminal(phase_pb2.ActionPhase.Name(pb2.status.phase)):
                yield cls(_with_org(pb2, action_id.run.org))
                return
            await asyncio.sleep(_RESUBSCRIBE_SECONDS)

    async def watch_updates(self, cache_data_on_done: bool = False) -> AsyncIterator[ActionDetails]:
        """Like ``watch``, for this action; this object takes the final state."""
        async for details in ActionDetails.watch.aio(self.action_id):
            yield details
            if details.done():
                self.pb2 = details.pb2
                break
        if cache_data_on_done and self.done():
            await self._fetch_data()

    # -- what it is ---------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.phase == ActionPhase.RUNNING

    @property
    def task_name(self) -> str | None:
        if self.pb2.HasField("task"):
            return str(self.pb2.task.task_template.id.name)
        meta = self.pb2.metadata
        if meta.HasField("task"):
            return str(meta.task.id.name)
        return None

    @property
    def code_bundle(self) -> str | None:
        """Where the code bundle the action ran is stored (a URI), or None when it ran code
        baked into its image."""
        if not self.pb2.HasField("task") or self.pb2.task.task_template.WhichOneof("target") not in (
            "container",
            "k8s_pod",
        ):
            return None
        from flyte._internal._serialize import template_container

        args = list(template_container(self.pb2.task.task_template).args)
        for flag, value in zip(args, args[1:], strict=False):
            if flag == "--bundle":
                return value
        return None

    @property
    def metadata(self) -> Any:
        return self.pb2.metadata

    @property
    def status(self) -> Any:
        return self.pb2.status

    @property
    def error_info(self) -> Any:
        return self.pb2.error_info if self.pb2.HasField("error_info") else None

    @property
    def error_message(self) -> str:
        """The error's message, or "" when the action did not fail."""
        return str(self.pb2.error_info.message) if self.pb2.HasField("error_info") else ""

    @property
    def abort_info(self) -> Any:
        return self.pb2.abort_info if self.pb2.HasField("abort_info") else None

    @property
    def runtime(self) -> timedelta:
        """How long the action has run (until it ended, or until now)."""
        status = self.pb2.status
        if not status.HasField("start_time"):
            return timedelta(0)
        end = _utc(status.end_time) if status.HasField("end_time") else datetime.now(timezone.utc)
        return end - _utc(status.start_time)

    @property
    def attempts(self) -> int:
        return int(self.pb2.status.attempts)

    def _attempt(self, attempt: int | None) -> Any:
        number = self.attempts if attempt is None else attempt
        for a in self.pb2.attempts:
            if a.attempt == number:
                return a
        return None

    def get_phase_transitions(self, attempt: int | None = None) -> list[PhaseTransitionInfo]:
        """The phases an attempt (1-based; default: the latest) went through, with their times."""
        found = self._attempt(attempt)
        if found is None:
            return []
        return [
            PhaseTransitionInfo(
                phase=ActionPhase.from_protobuf(t.phase),
                start_time=_utc(t.start_time),
                end_time=_utc(t.end_time) if t.HasField("end_time") else None,
            )
            for t in found.phase_transitions
        ]

    @property
    def phase_durations(self) -> dict[ActionPhase, timedelta]:
        """Time spent in each phase by the latest attempt."""
        return {t.phase: t.duration for t in self.get_phase_transitions()}

    @property
    def queued_time(self) -> timedelta | None:
        return self.phase_durations.get(ActionPhase.QUEUED)

    @property
    def waiting_for_resources_time(self) -> timedelta | None:
        return self.phase_durations.get(ActionPhase.WAITING_FOR_RESOURCES)

    @property
    def initializing_time(self) -> timedelta | None:
        return self.phase_durations.get(ActionPhase.INITIALIZING)

    @property
    def running_time(self) -> timedelta | None:
        return self.phase_durations.get(ActionPhase.RUNNING)

    def logs_available(self, attempt: int | None = None) -> bool:
        found = self._attempt(attempt)
        return bool(found is not None and found.logs_available)

    # -- data -----------------------------------------------------------------------------------

    def _native_interface(self) -> Any:
        if self._interface is not None:
            return self._interface
        from flyte._types._guess import interface_of

        name = self.task_name or self.name
        if self.pb2.HasField("task"):
            return interface_of(self.pb2.task.task_template.interface, {}, name)
        if self.pb2.HasField("trace"):
            return interface_of(self.pb2.trace.interface, {}, name)
        return None

    async def _fetch_data(self) -> Any:
        if self._action_data is None:
            self._action_data = await _client_of(self.action_id).get_action_data(self.action_id)
        return self._action_data

    def _raise_failure(self) -> None:
        from flyteidl2.common import phase_pb2
        from flyteidl2.core import execution_pb2

        from flyte._remote._action_runner import error_from_update

        info = self.error_info
        err = execution_pb2.ExecutionError(
            code=info.code if info else "",
            message=(info.message if info else "")
            or (
                self.abort_info.reason
                if self.abort_info
                else f"{self.run_name}/{self.name} ended {self.phase.value}"
            ),
            kind=info.kind if info else 0,
        )
        raise error_from_update(self.task_name or self.name, phase_pb2.ActionPhase.Name(self.raw_phase), err)

    async def inputs(self) -> ActionInputs:
        """The action's inputs by name, as Python values."""
        if self._inputs is None:
            data = await self._fetch_data()
            iface = self._native_interface()
            values = iface.literals_to_inputs(data.inputs, self.task_name or "") if iface is not None else {}
            self._inputs = ActionInputs(data.inputs, values)
        return self._inputs

    async def outputs(self) -> ActionOutputs:
        """The action's outputs. An action that has not ended has none yet (RuntimeError); one
        that failed raises its error, as awaiting it in a task would."""
        if self._outputs is None:
            if not self.done():
                # The details may be old: look once more before saying it has not ended.
                self.pb2 = (await ActionDetails.get_details.aio(self.action_id)).pb2
                if not self.done():
                    raise RuntimeError(
                        f"{self.run_name}/{self.name} is {self.phase.value}: it has no outputs until it ends "
                        "(wait() for it first)"
                    )
            if self.phase != ActionPhase.SUCCEEDED:
                self._raise_failure()
            from flyte._types._interface import output_values

            data = await self._fetch_data()
            iface = self._native_interface()
            names = list(iface.outputs) if iface is not None else [nl.name for nl in data.outputs.literals]
            value = iface.literals_to_outputs(data.outputs, self.task_name or "") if names else None
            self._outputs = ActionOutputs(data.outputs, output_values(names, value), names)
        return self._outputs

    async def output_literals(self) -> dict[str, Any]:
        """The raw output literals by name, nothing converted."""
        data = await self._fetch_data()
        return {nl.name: nl.value for nl in data.outputs.literals}

    async def input_literals(self) -> dict[str, Any]:
        """The raw input literals by name, nothing converted."""
        data = await self._fetch_data()
        return {nl.name: nl.value for nl in data.inputs.literals}

    async def typed_outputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        """The outputs named in ``types``, converted to those types; a type in ``deserializers``
        is built by its callable from the raw value (a dict for structured values)."""
        return _typed(await self.output_literals(), types, deserializers or {})

    async def typed_inputs(
        self, types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]] | None = None
    ) -> dict[str, Any]:
        """The inputs named in ``types``, converted like ``typed_outputs``."""
        return _typed(await self.input_literals(), types, deserializers or {})

    def __repr__(self) -> str:
        error = f", error={self.error_message!r}" if self.error_message else ""
        return (
            f"ActionDetails(run={self.run_name!r}, name={self.name!r}, task={self.task_name!r}, "
            f"phase={self.phase.value}, attempts={self.attempts}{error})"
        )


def _typed(
    literals: dict[str, Any], types: dict[str, type], deserializers: dict[type, Callable[[Any], Any]]
) -> dict[str, Any]:
    from flyte._types import LiteralEngine

    out: dict[str, Any] = {}
    for name, tp in types.items():
        if name not in literals:
            continue
        if tp in deserializers:
            # The raw payload: a dict for structured values, else the plain value.
            lit = literals[name]
            structured = lit.scalar.HasField("generic") or lit.scalar.HasField("binary")
            out[name] = deserializers[tp](LiteralEngine.to_python(lit, dict if structured else Any, name))
        else:
            out[name] = LiteralEngine.to_python(literals[name], tp, name)
    return out
