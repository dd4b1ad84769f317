"""``flyte run [OPTIONS] FILE TASK [--input value ...]``.

``run`` is a group whose sub-commands are files, whose sub-commands are the tasks in
that file; each task command gets one option per task input, typed by the task's
signature, so ``flyte run hello.py main --help`` documents the task.
"""

from __future__ import annotations

import enum
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rich_click as click

import flyte
from flyte._environment import _ENVIRONMENTS
from flyte._initialize import data_dir
from flyte._internal._modules import load_module, tasks_in
from flyte.remote import Task
from flyte.remote._common import connection

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@dataclass
class RunOptions:
    local: bool
    name: str | None
    project: str | None
    domain: str | None
    copy_style: str
    root_dir: Path | None
    follow: bool | None
    overwrite_cache: bool
    raw_data_path: str | None
    images: tuple[str, ...]
    service_account: str | None


class JsonValue(click.ParamType):
    """Parses a value for a typed input: JSON first (lists, dicts, dataclasses, models),
    then the plain string (so ``--when 2024-01-01`` works for a datetime)."""

    name = "json"

    def __init__(self, tp: Any) -> None:
        self.tp = tp
        self.name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if self.tp is inspect.Parameter.empty or self.tp is Any:
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        from pydantic import TypeAdapter, ValidationError

        adapter = TypeAdapter(self.tp)
        try:
            return adapter.validate_json(value)
        except ValidationError as first:
            try:
                return adapter.validate_python(value)
            except ValidationError:
                errors = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                    for err in first.errors()[:3]
                )
                self.fail(f"{value!r} is not a valid {self.name} ({errors})", param, ctx)


class DataRef(click.ParamType):
    """A ``flyte.io`` File, Dir or DataFrame input given as a local path or a storage URI.

    A local path is checked here and uploaded with the run's inputs; a URI is passed as a
    reference (nothing is read).
    """

    def __init__(self, tp: type) -> None:
        self.tp = tp
        self.name = {"File": "file", "Dir": "directory", "DataFrame": "parquet dataset"}[tp.__name__]

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "PATH|URI"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.tp):
            return value
        text = str(value)
        kind = self.tp.__name__
        if "://" in text:
            return self.tp.from_existing_remote(text)  # type: ignore[attr-defined]
        path = Path(text).expanduser()
        if kind == "File" and not path.is_file():
            self.fail(f"{text!r} is not a file", param, ctx)
        if kind == "Dir" and not path.is_dir():
            self.fail(f"{text!r} is not a directory", param, ctx)
        if kind == "DataFrame":
            if not path.exists():
                self.fail(f"{text!r} does not exist (expected a parquet file or directory)", param, ctx)
            return self.tp(uri=path.resolve().as_uri())
        return self.tp(path=str(path.resolve()))


def _data_ref_type(tp: Any) -> type | None:
    """The flyte.io class of ``tp`` when it is one (without importing flyte.io otherwise)."""
    if (
        isinstance(tp, type)
        and tp.__module__.startswith("flyte.io")
        and tp.__name__ in ("File", "Dir", "DataFrame")
    ):
        return tp
    return None


def _param_for(name: str, tp: Any, default: Any) -> click.Option:
    required = default is inspect.Parameter.empty
    decls = [f"--{name}"]
    if "_" in name:
        decls.append(f"--{name.replace('_', '-')}")
    kwargs: dict[str, Any] = {"required": required, "show_default": not required}
    if not required:
        kwargs["default"] = default
    if tp is bool:
        flag = "/".join([f"--{name}", f"--no-{name}"])
        extra = [f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}"] if "_" in name else []
        return click.Option([flag, *extra, name], **kwargs)
    if tp is int:
        kwargs["type"] = click.INT
    elif tp is float:
        kwargs["type"] = click.FLOAT
    elif tp is str:
        kwargs["type"] = click.STRING
    elif _data_ref_type(tp) is not None:
        kwargs["type"] = DataRef(tp)
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        kwargs["type"] = click.Choice([str(m.value) for m in tp])
        if not required and isinstance(default, enum.Enum):
            kwargs["default"] = str(default.value)
    else:
        kwargs["type"] = JsonValue(tp)
        if not required and default is not None and not isinstance(default, str | int | float | bool):
            kwargs["show_default"] = False
    return click.Option([*decls, name], **kwargs)


def _coerce_enums(task: Any, values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name, (tp, _) in task.interface.inputs.items():
        if isinstance(tp, type) and issubclass(tp, enum.Enum) and isinstance(out.get(name), str):
            out[name] = next(m for m in tp if str(m.value) == out[name])
    return out


def _print_outputs(run: Any, output_format: str) -> None:
    from rich.console import Console
    from rich.pretty import Pretty

    named = run.outputs().named_outputs
    if output_format == "json":
        from pydantic import TypeAdapter

        payload = {
            "run": run.name,
            "phase": run.phase.name,
            "outputs": TypeAdapter(Any).dump_python(named, mode="json"),
        }
        click.echo(json.dumps(payload, default=repr))
        return
    console = Console(highlight=False)
    console.print(f"[green]Run {run.name} {run.phase.value}[/green] ({run.url})")
    if len(named) == 1:
        console.print(Pretty(next(iter(named.values()))))
    else:
        for key, value in named.items():
            console.print(f"{key}: ", Pretty(value), end="\n")


def _follow_or_report(run: Any, follow: bool | None, output_format: str) -> None:
    """Prints where the run is and, when following, waits for it and prints its outputs.

    Following is the default on a terminal: a live view of the run's actions with the root's
    log lines above it. Piped output (or ``--output-format json``) follows only when asked, as
    plain lines: the root's logs, then the outputs.
    """
    import sys

    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    interactive = sys.stdout.isatty() and output_format != "json"
    if follow is None:
        follow = interactive
    err.print(f"Started run [bold]{run.name}[/bold] ({run.url})")
    if not follow:
        err.print(f"Follow it with: flyte get run {run.name}   |   flyte logs {run.name}")
        return
    from flyte._remote._client import run_sync

    if interactive:
        from flyte.cli._follow import follow_live

        run_sync(follow_live(connection()[0], run, Console(highlight=False)))
        run.wait(quiet=True)
        _print_outputs(run, output_format)
        return
    import threading

    from flyte.cli._get_runs import print_logs

    def stream_logs() -> None:
        try:
            run_sync(print_logs(connection()[0], run.action.action_id))
        except Exception as e:  # noqa: BLE001 - logs are a convenience; the result still comes
            err.print(f"[dim](logs unavailable: {e})[/dim]")

    logs = threading.Thread(target=stream_logs, name="flyte-logs", daemon=True)
    logs.start()
    run.wait()
    logs.join(timeout=5)
    _print_outputs(run, output_format)


def _check_raw_data_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from flyte._internal._raw_data import normalize_raw_data_path

    try:
        return normalize_raw_data_path(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


def _init_backend(ctx: click.Context, opts: RunOptions) -> None:
    """Points this process at the configured backend, else the local one (started if needed)."""
    from flyte.cli._get import config_from_context

    cfg = config_from_context(ctx)
    endpoint, insecure = cfg.endpoint, cfg.insecure
    if not endpoint:
        from flyte._remote._local_backend import ensure_running

        endpoint, insecure = ensure_running(data_dir()), True
    flyte.init(
        endpoint=endpoint,
        insecure=insecure,
        project=opts.project or cfg.project,
        domain=opts.domain or cfg.domain,
        org=cfg.org,
        root_dir=opts.root_dir,
        _from_config=cfg if cfg.endpoint else None,
    )


def _deployed_command(ctx: click.Context, ref: str) -> click.Command:
    """``flyte run deployed-task ENV.TASK[:VERSION] --input value ...``."""
    name, _, version = ref.partition(":")
    if "." not in name:
        raise click.UsageError(f"{ref!r}: name a deployed task as ENV.TASK or ENV.TASK:VERSION")
    opts: RunOptions = ctx.find_object(RunOptions)  # type: ignore[assignment]
    if opts.local:
        raise click.UsageError("deployed tasks run on a backend; drop --local")
    _init_backend(ctx, opts)
    task = Task.get(name, version=version or None, auto_version=None if version else "latest")._ensure()
    inputs = task.interface.inputs
    params: list[click.Parameter] = [_param_for(n, tp, default) for n, (tp, default) in inputs.items()]

    @click.pass_context
    def callback(ctx: click.Context, **values: Any) -> None:
        output_format = getattr(ctx.find_root().obj, "output_format", "table")
        run = flyte.with_runcontext(
            mode="remote",
            name=opts.name,
            project=opts.project,
            domain=opts.domain,
            overwrite_cache=opts.overwrite_cache,
            raw_data_path=opts.raw_data_path,
            service_account=opts.service_account,
        ).run(task, **values)
        _follow_or_report(run, opts.follow, output_format)

    return click.RichCommand(
        name=ref,
        params=params,
        callback=callback,
        help=f"Run the deployed task {task.name}, version {task.version}.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )


class _DeployedGroup(click.RichGroup):
    """``flyte run deployed-task``: tasks deployed to the backend, by name."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return []

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return _deployed_command(ctx, cmd_name)


def _task_command(file: Path, attr: str, task: Any) -> click.Command:
    try:
        inputs = task.interface.inputs
    except Exception as e:
        raise click.UsageError(f"cannot read the inputs of {task.name}: {e}") from e
    params: list[click.Parameter] = [_param_for(name, tp, default) for name, (tp, default) in inputs.items()]

    @click.pass_context
    def callback(ctx: click.Context, **values: Any) -> None:
        opts: RunOptions = ctx.find_object(RunOptions)  # type: ignore[assignment]
        from flyte.cli._get import config_from_context

        values = _coerce_enums(task, values)
        if opts.images:
            from flyte.cli._deploy import apply_images

            apply_images(list(_ENVIRONMENTS.values()), opts.images)
        if opts.service_account and opts.local:
            raise click.UsageError("--service-account is for runs on a cluster, not --local")
        cfg = config_from_context(ctx)
        root = ctx.find_root()
        output_format = getattr(root.obj, "output_format", "table")
        common: dict[str, Any] = {
            "name": opts.name,
            "project": opts.project,
            "domain": opts.domain,
            "overwrite_cache": opts.overwrite_cache,
            "copy_style": opts.copy_style,
            "raw_data_path": opts.raw_data_path,
        }
        if opts.local:
            flyte.init(project=opts.project or cfg.project, domain=opts.domain or cfg.domain, org=cfg.org)
            run = flyte.with_runcontext(mode="local", **common).run(task, **values)
            _print_outputs(run, output_format)
            return
        _init_backend(ctx, opts)
        run = flyte.with_runcontext(mode="remote", service_account=opts.service_account, **common).run(
            task, **values
        )
        _follow_or_report(run, opts.follow, output_format)

    doc = task.docs.description.strip().splitlines()
    return click.RichCommand(
        name=attr,
        params=params,
        callback=callback,
        help=doc[0] if doc else f"Run {task.name}.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )


class _FileGroup(click.RichGroup):
    """The tasks of one file."""

    def __init__(self, path: Path, root_dir: Path | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.root_dir = root_dir
        self._tasks: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._tasks is None:
            self._tasks = tasks_in(load_module(self.path, self.root_dir))
        return self._tasks

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._load())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        tasks = self._load()
        task = tasks.get(cmd_name)
        if task is None:
            # Also accept the full task name, env.function.
            task = next((t for t in tasks.values() if t.name == cmd_name), None)
        if task is None:
            available = ", ".join(sorted(tasks)) or "none"
            raise click.UsageError(
                f"no task named {cmd_name!r} in {self.path.name} (tasks: {available})", ctx
            )
        return _task_command(self.path, cmd_name, task)


class _RunGroup(click.RichGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return []

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "deployed-task":
            return _DeployedGroup(
                name=cmd_name,
                help="Run a deployed task: flyte run deployed-task ENV.TASK[:VERSION] --input value ...",
                subcommand_metavar="ENV.TASK[:VERSION] [INPUTS]...",
                context_settings={"help_option_names": ["-h", "--help"]},
            )
        path = Path(cmd_name)
        if not path.exists():
            hint = ""
            if "/" not in cmd_name and not cmd_name.endswith(".py"):
                hint = "; to run a deployed task: flyte run deployed-task ENV.TASK (see `flyte get task`)"
            raise click.BadParameter(f"no such file: {cmd_name}{hint}", ctx=ctx, param_hint="FILE")
        if path.is_dir() or path.suffix != ".py":
            raise click.BadParameter(f"{cmd_name} is not a Python file", ctx=ctx, param_hint="FILE")
        opts = ctx.find_object(RunOptions)
        return _FileGroup(
            path,
            opts.root_dir if opts else None,
            name=cmd_name,
            help=f"Tasks in {cmd_name}.",
            context_settings={"help_option_names": ["-h", "--help"]},
        )


def _check_run_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from flyte._bridge import contract

        try:
            contract.check_run_name(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value


@click.group(cls=_RunGroup, subcommand_metavar="FILE TASK [INPUTS]...")
@click.option("--local", is_flag=True, help="Run in this process instead of on a backend.")
@click.option(
    "--name",
    callback=_check_run_name,
    help="Name of the run (default: generated): at most 30 lowercase letters, digits and '-'.",
)
@click.option("--project", "-p", help="Project to run in.")
@click.option("--domain", "-d", help="Domain to run in.")
@click.option(
    "--copy-style",
    type=click.Choice(["loaded_modules", "all", "none"]),
    default="loaded_modules",
    show_default=True,
    help="Which source files travel with the run.",
)
@click.option(
    "--root-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), help="Source root."
)
@click.option(
    "--follow/--no-follow",
    "-f",
    default=None,
    help="Wait for the run to end, showing its progress, logs and outputs (default: on a "
    "terminal, a live view; piped, only when asked, as plain lines).",
)
@click.option(
    "--overwrite-cache", is_flag=True, help="Re-run cached tasks and overwrite their cache entries."
)
@click.option(
    "--raw-data-path",
    callback=_check_raw_data_path,
    help="Where the run's data (files, directories, data frames, offloaded values) is written: "
    "a local path, file://, s3://, gs:// or abfs:// URI.",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="[ENV=]URI",
    help="Image of an environment (ENV=URI), or of every environment without one of its own (URI).",
)
@click.option(
    "--service-account",
    help="Kubernetes service account a cluster runs the run's pods as (the embedded backend runs "
    "everything as its own user).",
)
@click.pass_context
def run(
    ctx: click.Context,
    local: bool,
    name: str | None,
    project: str | None,
    domain: str | None,
    copy_style: str,
    root_dir: Path | None,
    follow: bool | None,
    overwrite_cache: bool,
    raw_data_path: str | None,
    images: tuple[str, ...],
    service_account: str | None,
) -> None:
    """Run a task from a file: flyte run [--local] FILE TASK --input value ..."""
    ctx.obj = RunOptions(
        local=local,
        name=name,
        project=project,
        domain=domain,
        copy_style=copy_style,
        root_dir=root_dir,
        follow=follow,
        overwrite_cache=overwrite_cache,
        raw_data_path=raw_data_path,
        images=images,
        service_account=service_account,
    )
