"""Starting runs: ``flyte.run`` and ``flyte.with_runcontext(...).run``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flyte import _logging
from flyte._aio import loop_running_here as _loop_running_here
from flyte._initialize import current_config, data_dir, scope
from flyte._task import TaskTemplate
from flyte.errors import InitializationError, RunConflictError, TaskTimeoutError
from flyte.models import generate_random_name

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients, and the
# run objects of flyte.remote).

if TYPE_CHECKING:
    from flyte.remote._run import Run
    from flyte.remote._task import RemoteTask

Mode = Literal["local", "remote"]


def new_run_name() -> str:
    return generate_random_name()


@dataclass
class _RunContext:
    mode: Mode | None = None
    name: str | None = None
    project: str | None = None
    domain: str | None = None
    overwrite_cache: bool = False
    #: The run neither reads nor writes the task cache (local), and uploads its code afresh.
    disable_run_cache: bool = False
    custom_context: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    interruptible: bool | None = None
    copy_style: str = "loaded_modules"
    raw_data_path: str | None = None
    log_level: Any = None
    #: The identity a cluster runs the run's pods as (a Kubernetes service account).
    service_account: str | None = None
    #: The version a backend run's tasks are registered under (default: the code's digest).
    version: str | None = None
    run_start_time: datetime | None = None
    queue: str | None = None
    #: The run's notifications (a ``task.RunSpec`` holding only them), checked when given.
    notifications: Any = None

    @property
    def run(self) -> _RunEntry:
        """Starts a run with these settings: ``.run(task, ...)``, or ``await .run.aio(task, ...)``."""
        return _RunEntry(lambda: self)

    def _start(self, task: TaskTemplate[Any, Any, Any] | RemoteTask, *args: Any, **kwargs: Any) -> Run:
        from flyte.remote._task import RemoteTask

        if isinstance(task, RemoteTask):
            return self._run_deployed(task, args, kwargs)
        if not isinstance(task, TaskTemplate):
            raise TypeError(
                f"flyte.run expects a task (a function decorated with @env.task, or a deployed task from "
                f"flyte.remote.Task.get), got {type(task).__name__}"
            )
        import sys

        runtime = sys.modules.get("flyte._runtime._execute")
        if runtime is not None and getattr(runtime, "loading_user_code", False):
            raise InitializationError.because(
                "flyte.run was called while an action process imported the module defining the task; "
                "put the call under `if __name__ == '__main__':`"
            )
        mode = self.mode
        if mode is None:
            mode = "remote" if current_config().endpoint else "local"
        if mode == "local":
            backend_only = [n for n in ("version", "run_start_time", "queue") if getattr(self, n) is not None]
            if backend_only:
                raise ValueError(
                    f"with_runcontext({', '.join(backend_only)}=...) applies to runs on a backend; "
                    "a local run has no registered tasks, start-time override or queues"
                )
            return _run_local(task, args, kwargs, self)
        cfg = current_config()
        if not cfg.endpoint:
            raise InitializationError.because(
                "mode='remote' needs an endpoint: flyte.init(endpoint=...) or a config file with "
                "admin.endpoint (start one on this machine with `flyte start local`)"
            )
        from flyte._remote._submit import submit

        return submit(task, args, kwargs, self, cfg)

    def _run_deployed(self, task: RemoteTask, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
        from flyte._remote._submit import submit_deployed

        cfg = current_config()
        if self.mode == "local" or not cfg.endpoint:
            raise InitializationError.because(
                f"{task.name} is a deployed task: it runs on the backend it was deployed to; "
                "flyte.init(endpoint=...) (or a config file) names that backend, and mode must not be 'local'"
            )
        return submit_deployed(task, args, kwargs, self, cfg)


#: Parameters of the reference SDK's ``with_runcontext`` this SDK cannot honour, each with why;
#: accepted at their default values only.
_UNSUPPORTED_RUN_SETTINGS: dict[str, tuple[Any, str]] = {
    "dry_run": (False, "runs are always submitted; `flyte deploy --dry-run` checks a deployment"),
    "copy_bundle_to": (None, "code bundles are uploaded, not written to a local path"),
    "interactive_mode": (
        None,
        "detected, not chosen: tasks defined in a notebook or REPL travel pickled, a script's from its files",
    ),
    "run_base_dir": (None, "a run's data goes under raw_data_path"),
    "max_action_concurrency": (None, "the backend does not limit the actions of one run"),
    "cache_lookup_scope": ("global", "the cache is looked up across all projects and domains of the backend"),
    "preserve_original_types": (False, "outputs are converted back to the task's declared types"),
    "debug": (False, "debugging a task in its pod (VS Code) is a cluster service this SDK does not start"),
    "tracked": (False, "local runs are always recorded in the data dir"),
    "tracked_strict": (False, "local runs are always recorded in the data dir"),
}


def with_runcontext(
    mode: Mode | None = None,
    *,
    name: str | None = None,
    service_account: str | None = None,
    version: str | None = None,
    copy_style: str = "loaded_modules",
    dry_run: bool = False,
    copy_bundle_to: Any = None,
    interactive_mode: bool | None = None,
    raw_data_path: str | None = None,
    run_base_dir: str | None = None,
    run_start_time: datetime | None = None,
    overwrite_cache: bool = False,
    project: str | None = None,
    domain: str | None = None,
    env_vars: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    interruptible: bool | None = None,
    log_level: Any = None,
    log_format: str = "console",
    user_log_level: Any = None,
    reset_root_logger: bool = False,
    disable_run_cache: bool = False,
    queue: str | None = None,
    max_action_concurrency: int | None = None,
    notifications: Any = None,
    custom_context: dict[str, str] | None = None,
    cache_lookup_scope: str = "global",
    preserve_original_types: bool = False,
    debug: bool = False,
    tracked: bool = False,
    tracked_strict: bool = False,
) -> _RunContext:
    """Settings for the next run: ``flyte.with_runcontext(mode="local").run(main, x=1)``.

    ``version`` names the code of a backend run (its tasks' version); ``run_start_time`` is the
    time the run says it started (e.g. for a backfill); ``queue`` routes a backend run's
    actions (these three apply to backend runs; a local run refuses them); the logging options
    configure this process's ``flyte`` loggers for the run."""
    for setting, value in (("dry_run", dry_run), ("copy_bundle_to", copy_bundle_to),
                           ("interactive_mode", interactive_mode), ("run_base_dir", run_base_dir),
                           ("max_action_concurrency", max_action_concurrency),
                           ("cache_lookup_scope", cache_lookup_scope),
                           ("preserve_original_types", preserve_original_types), ("debug", debug),
                           ("tracked", tracked), ("tracked_strict", tracked_strict)):  # fmt: skip
        default, why = _UNSUPPORTED_RUN_SETTINGS[setting]
        if value != default and not (setting == "interactive_mode" and value is False):
            raise ValueError(f"with_runcontext({setting}={value!r}) is not supported here: {why}")
    if mode not in (None, "local", "remote"):
        raise ValueError(f"mode must be 'local' or 'remote', got {mode!r}")
    if name is not None:
        from flyte._bridge import contract

        contract.check_run_name(name)  # the cluster's rule, shared with the backend
    if raw_data_path is not None:
        from flyte._internal._raw_data import normalize_raw_data_path

        raw_data_path = normalize_raw_data_path(raw_data_path)
    if copy_style not in ("loaded_modules", "all", "none"):
        raise ValueError(f"copy_style must be 'loaded_modules', 'all' or 'none', got {copy_style!r}")
    if service_account is not None and (not isinstance(service_account, str) or not service_account.strip()):
        raise ValueError(f"service_account must be a non-empty name, got {service_account!r}")
    if version is not None:
        from flyte._internal._serialize import check_version

        check_version(version)
    if run_start_time is not None and not isinstance(run_start_time, datetime):
        raise TypeError(f"run_start_time must be a datetime, got {run_start_time!r}")
    if queue is not None and (not isinstance(queue, str) or not queue.strip()):
        raise ValueError(f"queue must be a non-empty name, got {queue!r}")
    rules = None
    if notifications is not None:
        from flyte.notify._serde import checked_rules

        rules = checked_rules(notifications)
    if log_format != "console" or user_log_level is not None or reset_root_logger:
        _logging.configure(None, log_format, reset_root_logger, user_log_level)
    return _RunContext(
        mode=mode,
        name=name,
        project=project,
        domain=domain,
        overwrite_cache=overwrite_cache,
        disable_run_cache=bool(disable_run_cache),
        custom_context={k: str(v) for k, v in (custom_context or {}).items()},
        env_vars=dict(env_vars or {}),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        interruptible=interruptible,
        copy_style=copy_style,
        raw_data_path=raw_data_path,
        service_account=service_account,
        log_level=log_level,
        version=version,
        run_start_time=run_start_time,
        queue=queue,
        notifications=rules,
    )


class _RunEntry:
    """``flyte.run(task, ...)``, and ``await flyte.run.aio(task, ...)`` for async code (the
    run is started, and a local one executed, off the event loop)."""

    def __init__(self, settings: Callable[[], _RunContext]) -> None:
        self._settings = settings

    def __call__(self, task: TaskTemplate[Any, Any, Any] | RemoteTask, *args: Any, **kwargs: Any) -> Run:
        """Runs a task: locally when no endpoint is configured, else on the configured backend."""
        return self._settings()._start(task, *args, **kwargs)

    async def aio(self, task: TaskTemplate[Any, Any, Any] | RemoteTask, *args: Any, **kwargs: Any) -> Run:
        import asyncio
        import contextvars

        call = contextvars.copy_context().run
        return await asyncio.to_thread(call, self._settings()._start, task, *args, **kwargs)


run = _RunEntry(_RunContext)


def _run_local(
    task: TaskTemplate[Any, Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], rc: _RunContext
) -> Run:
    from flyte._bridge.journal import RunConflictError as NameTaken
    from flyte._bridge.journal import RunJournal
    from flyte._local._controller import LocalRun as LocalController

    if rc.notifications is not None:
        from flyte.notify._serde import check_local

        check_local(rc.notifications)
    cfg = current_config()
    base = data_dir()
    name = rc.name or new_run_name()
    run_dir = base / "runs" / name
    where = scope(rc.project, rc.domain)
    lr = LocalController(
        name,
        run_dir=run_dir,
        project=where.project,
        domain=where.domain,
        org=cfg.org,
        custom_context=rc.custom_context,
        overwrite_cache=rc.overwrite_cache,
        disable_run_cache=rc.disable_run_cache,
        raw_data_path=rc.raw_data_path,
        env_vars=rc.env_vars,
    )
    from flyte._internal import _raw_data

    with _raw_data.scope(_raw_data.join(lr.raw_data_base, "inputs")):
        call = lr.prepare_root(task, args, kwargs)
    # The run is recorded in the data dir like a backend run (the backend keeps no org); a
    # run of the same name whose process is gone is resumed.
    try:
        journal, resumed = RunJournal.open(
            str(base), "", where.project, where.domain, name, task.name, call.inputs_pb.SerializeToString()
        )
    except NameTaken as e:
        lr.close()
        raise RunConflictError(message=str(e)) from None
    lr.record_in(journal, dict(resumed or ()))
    started = time.time()

    def drive() -> Any:
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(lr.execute_root(call))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    error: BaseException | None = None
    value: Any = None
    try:
        if _loop_running_here():
            # Called from a running event loop (a notebook): run on a thread of our own.
            holder: dict[str, Any] = {}

            def in_thread() -> None:
                try:
                    holder["value"] = drive()
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                    holder["error"] = e

            t = threading.Thread(target=in_thread, name=f"flyte-run-{name}")
            t.start()
            t.join()
            if "error" in holder:
                raise holder["error"]
            value = holder.get("value")
        else:
            value = drive()
    except BaseException as e:
        error = e
    phase = (
        "SUCCEEDED" if error is None else ("ABORTED" if isinstance(error, KeyboardInterrupt) else "FAILED")
    )
    if isinstance(error, TaskTimeoutError):
        phase = "TIMED_OUT"
    try:
        root = lr.ledger.get(call.name)
        if error is not None and root is not None and root.phase in ("QUEUED", "RUNNING"):
            # Ended before its root action could say so (interrupted, or failed outside it).
            lr.ledger.finish(call.name, phase, str(error), error_code=type(error).__name__)
    finally:
        lr.close()
    if rc.notifications is not None:
        from flyte.notify._serde import deliver_local

        deliver_local(rc.notifications, where, name, phase, "" if error is None else str(error))
    if error is not None:
        raise error

    from flyte._local_run import LocalRun
    from flyte._types._interface import output_values

    names = list(task.interface.outputs)
    values = output_values(names, value)
    _write_summary(run_dir, name, task.name, phase, started, values)
    from flyte._remote._local_backend import run_page

    # The data dir's backend, when it runs, shows local runs beside its own.
    url = run_page(base, where.project, where.domain, name) or run_dir.as_uri()
    return LocalRun(
        name,
        task.name,
        where,
        url,
        values,
        names,
        task.interface.bind(args, kwargs, task.name),
        call.inputs_pb,
        started,
        lr.ledger,
    )


def _write_summary(
    run_dir: Path, name: str, task_name: str, phase: str, started: float, values: tuple[Any, ...]
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "run": name,
        "task": task_name,
        "phase": phase,
        "started_at": started,
        "ended_at": time.time(),
        "outputs": [repr(v)[:1000] for v in values],
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
