"""``flyte get condition RUN [ACTION]`` and ``flyte signal condition RUN ACTION [VALUE]``:
the conditions a run waits for (``flyte.new_condition``), and giving them their value."""

from __future__ import annotations

from typing import Any

import rich_click as click

from flyte._condition import parse_value, type_from_literal_type
from flyte.cli._get import get
from flyte.cli._get_runs import _duration, _emit

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@get.command("condition")
@click.argument("run")
@click.argument("action", required=False)
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def get_condition(
    ctx: click.Context, run: str, action: str | None, project: str | None, domain: str | None
) -> None:
    """List the conditions of a run (only those ACTION declared, when given)."""
    from flyteidl2.common import list_pb2
    from flyteidl2.workflow import run_definition_pb2

    from flyte._remote._client import run_sync
    from flyte._remote._submit import phase_name
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain, start_for_records=True)
    request = list_pb2.ListRequest(limit=100)
    request.filters.add(
        function=list_pb2.Filter.EQUAL,
        field="action_type",
        values=[str(int(run_definition_pb2.ACTION_TYPE_CONDITION))],
    )
    if action is not None:
        request.filters.add(function=list_pb2.Filter.EQUAL, field="parent_name", values=[action])
    rows: list[list[str]] = []
    while True:
        actions, token = run_sync(target.client.list_actions_page(target.run_id(run), request))
        for a in actions:
            expected = type_from_literal_type(a.metadata.condition.type)
            rows.append(
                [
                    a.metadata.condition.name,
                    a.id.name,
                    a.metadata.parent,
                    expected.__name__ if expected else "",
                    phase_name(a.status.phase),
                    _duration(a.status),
                ]
            )
        if not token:
            break
        request.token = token
    _emit(ctx, f"Conditions of {run}", ["condition", "action", "parent", "type", "phase", "waited"], rows)


@click.group()
def signal() -> None:
    """Give a waiting condition its value."""


@signal.command("condition")
@click.argument("run")
@click.argument("action")
@click.argument("value", required=False)
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def signal_condition(
    ctx: click.Context, run: str, action: str, value: str | None, project: str | None, domain: str | None
) -> None:
    """Resolve condition ACTION of RUN with VALUE (yes/no, a number or text, as the condition
    expects); without VALUE its prompt is shown and the value asked for."""
    from flyteidl2.workflow import run_service_pb2

    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain)
    action_id = target.action_id(run, action)
    details = run_sync(target.client.get_action_details(action_id))
    if not details.HasField("condition"):
        raise click.ClickException(f"action {action} of run {run} is not a condition")
    condition = details.condition
    expected = type_from_literal_type(condition.type)
    if expected is None:
        raise click.ClickException(f"condition {condition.name!r} declares no type to signal it with")
    if value is None:
        if condition.description:
            click.echo(condition.description, err=True)
        value = click.prompt(condition.prompt or "Value", err=True)
    try:
        parsed: Any = parse_value(value, expected)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="VALUE") from None
    field = {bool: "bool_value", int: "int_value", float: "float_value", str: "string_value"}[expected]
    payload = run_service_pb2.EventPayload(**{field: parsed})
    run_sync(target.client.signal_event(action_id, details.metadata.parent, payload))
    click.echo(f"Signalled condition {condition.name!r} ({action}) of run {run} with {parsed!r}")
