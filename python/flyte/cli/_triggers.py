"""``flyte get trigger``, ``flyte update trigger``, ``flyte delete trigger``."""

from __future__ import annotations

from typing import Any

import rich_click as click

from flyte.cli._get import get
from flyte.cli._get_runs import _emit, _fmt_time

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


def automation_text(spec: Any) -> str:
    """One line describing when a trigger fires."""
    if not spec.HasField("schedule"):
        return "none (run by hand)"
    schedule = spec.schedule
    if schedule.HasField("cron"):
        return f"cron {schedule.cron.expression} ({schedule.cron.timezone or 'UTC'})"
    if schedule.HasField("rate"):
        from flyteidl2.task import common_pb2

        unit = common_pb2.FixedRateUnit.Name(schedule.rate.unit).removeprefix("FIXED_RATE_UNIT_").lower()
        start = f" from {_fmt_time(schedule.rate.start_time)}" if schedule.rate.HasField("start_time") else ""
        return f"every {schedule.rate.value} {unit}(s){start}"
    return f"cron {schedule.cron_expression}"


def _trigger_name(target: Any, task_name: str, name: str) -> Any:
    from flyteidl2.common import identifier_pb2

    return identifier_pb2.TriggerName(
        org=target.org, project=target.project, domain=target.domain, task_name=task_name, name=name
    )


@get.command("trigger")
@click.argument("task_name", required=False)
@click.argument("name", required=False)
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.pass_context
def get_trigger(
    ctx: click.Context,
    task_name: str | None,
    name: str | None,
    project: str | None,
    domain: str | None,
    limit: int,
) -> None:
    """List triggers (of a project, or of one task), or show one."""
    from flyteidl2.common import identifier_pb2
    from flyteidl2.task import task_definition_pb2

    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain)
    if name is not None and task_name is not None:
        t = run_sync(target.client.get_trigger(_trigger_name(target, task_name, name)))
        rows = [
            ["name", t.id.name.name],
            ["task", t.id.name.task_name],
            ["task version", t.spec.task_version],
            ["active", str(t.spec.active).lower()],
            ["automation", automation_text(t.automation_spec)],
            ["deployed", _fmt_time(t.status.deployed_at)],
            ["last fired", _fmt_time(t.status.triggered_at)],
            ["description", t.spec.description],
        ]
        _emit(ctx, f"Trigger {name}", ["field", "value"], rows)
        return
    if task_name is not None:
        scope: Any = task_definition_pb2.TaskName(
            org=target.org, project=target.project, domain=target.domain, name=task_name
        )
    else:
        scope = identifier_pb2.ProjectIdentifier(
            organization=target.org, domain=target.domain, name=target.project
        )
    triggers = run_sync(target.client.list_triggers(scope, limit))
    rows = [
        [
            t.id.name.task_name,
            t.id.name.name,
            automation_text(t.automation_spec),
            str(t.active).lower(),
            _fmt_time(t.status.triggered_at),
        ]
        for t in triggers
    ]
    _emit(ctx, "Triggers", ["task", "name", "automation", "active", "last fired"], rows)


@click.group()
def update() -> None:
    """Change what is deployed."""


@update.command("trigger")
@click.argument("name")
@click.argument("task_name")
@click.option("--activate/--deactivate", required=True, help="Whether the trigger fires.")
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def update_trigger(
    ctx: click.Context, name: str, task_name: str, activate: bool, project: str | None, domain: str | None
) -> None:
    """Activate or deactivate the trigger NAME of the task TASK_NAME."""
    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain)
    run_sync(target.client.set_triggers_active([_trigger_name(target, task_name, name)], activate))
    click.echo(f"Trigger {name} of {task_name} is {'active' if activate else 'inactive'}.", err=True)


@click.group()
def delete() -> None:
    """Delete what is deployed."""


@delete.command("trigger")
@click.argument("name")
@click.argument("task_name")
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def delete_trigger(
    ctx: click.Context, name: str, task_name: str, project: str | None, domain: str | None
) -> None:
    """Delete the trigger NAME of the task TASK_NAME (it stops firing)."""
    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain)
    run_sync(target.client.delete_triggers([_trigger_name(target, task_name, name)]))
    click.echo(f"Deleted trigger {name} of {task_name}.", err=True)
