"""Where a piece of code runs: which run, which action, which group.

The current action is a context variable, so it follows asyncio tasks (each gets a copy
when created) and is handed explicitly to the threads that run sync tasks.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flyte._names import generate_random_name

if TYPE_CHECKING:
    from flyte._checkpoint import Checkpoint, CheckpointPaths
    from flyte._internal._runner import Runner
    from flyte._task import TaskTemplate


@dataclass
class ActionContext:
    """The action whose code is running right now."""

    run: Runner
    action_name: str
    task: TaskTemplate[Any, Any, Any] | None
    attempt: int = 1
    group: str | None = None
    custom_context: Mapping[str, str] = field(default_factory=dict)
    #: Set when the caller gave up on this action (timeout): calls it still makes are refused.
    abandoned: bool = False
    #: Name of a sync task called from async code, to explain a later "can't be awaited" error.
    last_sync_call: str | None = None
    #: The attempt's checkpoint (a ``flyte.Checkpoint``), made by its runner when first asked for.
    checkpoint: Checkpoint | None = None
    #: What the task's ``pre`` hook returned (a plugin's per-attempt state), when it has one.
    data: dict[str, Any] | None = None

    def with_group(self, group: str) -> ActionContext:
        full = f"{self.group}/{group}" if self.group else group
        return dataclasses.replace(self, group=full)


_current: contextvars.ContextVar[ActionContext | None] = contextvars.ContextVar("flyte_action", default=None)


def current() -> ActionContext | None:
    return _current.get()


@contextmanager
def active(ctx: ActionContext) -> Iterator[ActionContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class ActionID:
    """Identity of an action, as ``flyte.ctx().action`` exposes it. Without ``run_name`` it is a
    run's own identity (the run is named like its root)."""

    name: str
    run_name: str = None  # type: ignore[assignment]  # filled from name
    project: str | None = None
    domain: str | None = None
    org: str | None = None

    def __post_init__(self) -> None:
        if self.run_name is None:
            object.__setattr__(self, "run_name", self.name)

    @classmethod
    def create_random(cls) -> ActionID:
        """The identity of a new run with a fresh random name."""
        name = generate_random_name()
        return cls(name=name, run_name=name)

    def new_sub_action(self, name: str | None = None) -> ActionID:
        """The identity of another action of the same run (a fresh random name by default)."""
        return dataclasses.replace(self, name=name or generate_random_name())

    def unique_id_str(self, salt: str | None = None) -> str:
        """``project-domain-run-action`` (and ``-salt``): unique across a backend's runs."""
        v = f"{self.project}-{self.domain}-{self.run_name}-{self.name}"
        return v if salt is None else f"{v}-{salt}"


@dataclass(frozen=True)
class TaskContext:
    """What a running task can learn about where it runs (``flyte.ctx()``)."""

    action: ActionID
    mode: str
    task_name: str | None
    attempt_number: int
    group: str | None
    custom_context: Mapping[str, str]
    run_dir: str
    #: Where this action's new data (files, directories, offloaded values) goes.
    raw_data_path: str = ""
    #: The running action itself, which the properties below ask.
    _action: ActionContext | None = field(default=None, repr=False, compare=False)

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The attempt's checkpoint: ``save`` what an attempt after a failure should resume
        from, ``load`` what the attempt before saved."""
        return self._action.run.checkpoint_of(self._action) if self._action else None

    @property
    def run_base_dir(self) -> str:
        """The run's directory (its outputs, reports), a path or a URI."""
        return self.run_dir

    @property
    def output_path(self) -> str | None:
        """Where this action's outputs (and report) are written."""
        return self._action.run.output_path(self._action.action_name) if self._action else None

    @property
    def input_path(self) -> str | None:
        """Where this action's inputs were read from (None when they were handed over in this
        process, as in local mode)."""
        return self._action.run.input_path(self._action.action_name) if self._action else None

    @property
    def version(self) -> str | None:
        """The version of the code the action runs (its code bundle's digest, or the version it
        was deployed as); None in local mode, which runs the code in place."""
        return self._action.run.code_version if self._action else None

    @property
    def report(self) -> Any:
        """The action's report (``flyte.report``): its tabs, what was logged to it."""
        return self._action.run.report_of(self._action) if self._action else None

    @property
    def group_data(self) -> str | None:
        """The group (``flyte.group``) the action runs in, if any."""
        return self.group

    @property
    def interactive_mode(self) -> bool:
        """Whether the run was started from an interactive session (a notebook or REPL)."""
        return bool(self._action and self._action.run.interactive)

    @property
    def run_start_time(self) -> datetime | None:
        """When the run started (UTC): the time a backend started it (the trigger's time for a
        triggered run), or when a local run began."""
        return self._action.run.run_start_time if self._action else None

    @property
    def disable_run_cache(self) -> bool:
        """Whether this run neither reads nor writes the task cache (``with_runcontext(disable_run_cache=True)``)."""
        return bool(self._action and self._action.run.disable_run_cache)

    @property
    def data(self) -> dict[str, Any]:
        """What the task's ``pre`` hook returned for this attempt (task plugins keep the state
        they set up here); empty for tasks without one."""
        return (self._action.data if self._action else None) or {}

    def replace(self, **kwargs: Any) -> TaskContext:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **kwargs)

    @property
    def checkpoint_paths(self) -> CheckpointPaths | None:
        """Where this attempt saves its checkpoint, and where the previous attempt saved its own."""
        return self.checkpoint.paths if self.checkpoint is not None else None

    @property
    def run_name(self) -> str:
        return self.action.run_name

    def is_in_cluster(self) -> bool:
        return self.mode == "remote"


def ctx() -> TaskContext | None:
    """The context of the running task, or ``None`` outside of any task."""
    c = _current.get()
    if c is None:
        return None
    run = c.run
    return TaskContext(
        action=ActionID(
            name=c.action_name,
            run_name=run.name,
            project=run.project,
            domain=run.domain,
            org=run.org,
        ),
        mode=run.mode,
        task_name=c.task.name if c.task is not None else None,
        attempt_number=c.attempt,
        group=c.group,
        custom_context=dict(c.custom_context),
        run_dir=str(run.run_dir),
        raw_data_path=run.raw_data_prefix(c.action_name),
        _action=c,
    )


@contextmanager
def group(name: str) -> Iterator[None]:
    """Groups the actions started inside the block under ``name``.

    Groups only organise actions (and take part in their IDs); they do not change how
    anything runs. Outside of a task this does nothing.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"flyte.group needs a non-empty name, got {name!r}")
    c = _current.get()
    if c is None:
        yield
        return
    with active(c.with_group(name)):
        yield


@contextmanager
def custom_context(**values: str) -> Iterator[None]:
    """Adds key/value pairs to the custom context seen by tasks called inside the block."""
    c = _current.get()
    if c is None:
        yield
        return
    merged = {**c.custom_context, **{k: str(v) for k, v in values.items()}}
    with active(dataclasses.replace(c, custom_context=merged)):
        yield


def get_custom_context() -> dict[str, Any]:
    c = _current.get()
    return dict(c.custom_context) if c is not None else {}
