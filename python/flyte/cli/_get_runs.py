"""``flyte get run|action|logs``: what a backend knows about runs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import rich_click as click

from flyte.cli._get import get

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


def _fmt_time(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _duration(status: Any) -> str:
    if status.duration_ms:
        return f"{status.duration_ms / 1000:.1f}s"
    return ""


def _json_output(ctx: click.Context) -> bool:
    return getattr(ctx.find_root().obj, "output_format", "table") == "json"


def _emit(ctx: click.Context, title: str, columns: list[str], rows: list[list[str]]) -> None:
    if _json_output(ctx):
        click.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    Console().print(table)


def _task_name(action: Any) -> str:
    meta = action.metadata
    if meta.HasField("task"):
        return str(meta.task.id.name)
    if meta.HasField("trace"):
        return f"{meta.trace.name} (trace)"
    return ""


@get.command("run")
@click.argument("name", required=False)
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.pass_context
def get_run(
    ctx: click.Context, name: str | None, project: str | None, domain: str | None, limit: int
) -> None:
    """List recent runs, or show one run with its outputs or error."""
    from flyteidl2.common import identifier_pb2

    from flyte._remote._client import run_sync
    from flyte._remote._submit import phase_name
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain, start_for_records=True)
    if name is None:
        pid = identifier_pb2.ProjectIdentifier(
            organization=target.org or "", domain=target.domain or "", name=target.project or ""
        )
        runs = run_sync(target.client.list_runs(pid, limit))
        if _json_output(ctx):
            _echo_json([_action_json(r.action) for r in runs])
            return
        rows = [
            [
                r.action.id.run.name,
                _task_name(r.action),
                phase_name(r.action.status.phase),
                _fmt_time(r.action.status.start_time),
                _duration(r.action.status),
                r.action.metadata.trigger_name,
            ]
            for r in runs
        ]
        _emit(ctx, "Runs", ["run", "task", "phase", "started", "duration", "trigger"], rows)
        return
    details = run_sync(target.client.get_run_details(target.run_id(name)))
    action = details.action
    outputs: list[dict[str, Any]] = []
    if phase_name(action.status.phase) == "SUCCEEDED":
        data = run_sync(target.client.get_action_data(target.action_id(name, "a0")))
        outputs = _values(data.outputs)
    if _json_output(ctx):
        _echo_json({**_action_json(action), "outputs": {o["name"]: o["value"] for o in outputs}})
        return
    rows = [
        ["run", name],
        ["task", _task_name(action)],
        ["phase", phase_name(action.status.phase)],
        ["started", _fmt_time(action.status.start_time)],
        ["ended", _fmt_time(action.status.end_time)],
        ["attempts", str(action.status.attempts)],
    ]
    if action.metadata.trigger_name:
        rows.append(["trigger", action.metadata.trigger_name])
    if action.HasField("error_info") and action.error_info.message:
        rows.append(["error", f"{action.error_info.code}: {action.error_info.message}".strip(": ")])
    for output in outputs:
        rows.append([f"output {output['name']}", _value_text(output["value"])])
    _emit(ctx, f"Run {name}", ["field", "value"], rows)


def _values(message: Any) -> list[dict[str, Any]]:
    """Named inputs or outputs as values (the web UI's rendering, done by the Rust core)."""
    from flyte._bridge.values import named_values

    if type(message).__name__ == "Inputs":
        return named_values(message.SerializeToString(), "inputs")
    return named_values(message.SerializeToString(), "outputs")


def _value_text(value: Any) -> str:
    if isinstance(value, dict) and value.get("type") in ("file", "dir", "dataframe", "offloaded"):
        return f"{value['type']} {value['uri']}"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) < 200 else text[:197] + "..."


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2))


def _timestamp_json(ts: Any) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc).isoformat()


def _action_json(action: Any) -> dict[str, Any]:
    """An action (a run's root, or any) as typed JSON: numbers as numbers, times as ISO 8601."""
    from flyte._remote._submit import phase_name

    error = None
    # ActionDetails and a run's root carry their error; list entries do not.
    has_error = "error_info" in action.DESCRIPTOR.fields_by_name and action.HasField("error_info")
    if has_error and action.error_info.message:
        error = {"code": action.error_info.code, "message": action.error_info.message}
    return {
        "run": action.id.run.name,
        "action": action.id.name,
        "parent": action.metadata.parent or None,
        "task": _task_name(action),
        "group": action.metadata.group or None,
        "phase": phase_name(action.status.phase),
        "attempts": action.status.attempts,
        "started": _timestamp_json(action.status.start_time),
        "ended": _timestamp_json(action.status.end_time),
        "duration_seconds": action.status.duration_ms / 1000 if action.status.duration_ms else None,
        "trigger": action.metadata.trigger_name or None,
        "error": error,
    }


@get.command("action")
@click.argument("run")
@click.argument("action", required=False)
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def get_action(
    ctx: click.Context, run: str, action: str | None, project: str | None, domain: str | None
) -> None:
    """List the actions of a run, or show one of them."""
    from flyte._remote._client import run_sync
    from flyte._remote._submit import phase_name
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain, start_for_records=True)
    if action is None:
        actions = run_sync(target.client.list_actions(target.run_id(run)))
        if _json_output(ctx):
            _echo_json([_action_json(a) for a in actions])
            return
        rows = [
            [
                a.id.name,
                a.metadata.parent,
                _task_name(a),
                a.metadata.group,
                phase_name(a.status.phase),
                str(a.status.attempts),
                _duration(a.status),
            ]
            for a in actions
        ]
        _emit(
            ctx,
            f"Actions of {run}",
            ["action", "parent", "task", "group", "phase", "attempts", "duration"],
            rows,
        )
        return
    d = run_sync(target.client.get_action_details(target.action_id(run, action)))
    data = run_sync(target.client.get_action_data(target.action_id(run, action)))
    inputs = _values(data.inputs) if data.HasField("inputs") else []
    outputs = _values(data.outputs) if data.HasField("outputs") else []
    if _json_output(ctx):
        _echo_json(
            {
                **_action_json(d),
                "inputs": {i["name"]: i["value"] for i in inputs},
                "outputs": {o["name"]: o["value"] for o in outputs},
            }
        )
        return
    rows = [
        ["action", action],
        ["parent", d.metadata.parent],
        ["task", _task_name(d)],
        ["group", d.metadata.group],
        ["phase", phase_name(d.status.phase)],
        ["attempts", str(d.status.attempts)],
        ["started", _fmt_time(d.status.start_time)],
        ["ended", _fmt_time(d.status.end_time)],
    ]
    if d.HasField("error_info") and d.error_info.message:
        rows.append(["error", d.error_info.message])
    rows += [[f"input {i['name']}", _value_text(i["value"])] for i in inputs]
    rows += [[f"output {o['name']}", _value_text(o["value"])] for o in outputs]
    _emit(ctx, f"Action {action} of {run}", ["field", "value"], rows)


@get.command("logs")
@click.argument("run")
@click.argument("action", default="a0")
@click.option("--attempt", type=click.IntRange(0), default=0, help="Attempt number (0: the latest).")
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def get_logs(
    ctx: click.Context, run: str, action: str, attempt: int, project: str | None, domain: str | None
) -> None:
    """Print the logs of an action (the run's root action by default); follows a running one."""
    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain, start_for_records=True)
    run_sync(print_logs(target.client, target.action_id(run, action), attempt))


async def print_logs(client: Any, action_id: Any, attempt: int = 0) -> None:
    async for resp in client.tail_logs(action_id, attempt):
        for batch in resp.logs:
            for line in batch.lines:
                click.echo(line.message.rstrip("\n"))
