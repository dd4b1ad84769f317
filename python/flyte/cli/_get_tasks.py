"""``flyte get task``: what is deployed."""

from __future__ import annotations

import rich_click as click

from flyte.cli._get import get
from flyte.cli._get_runs import _emit, _fmt_time

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@get.command("task")
@click.argument("name", required=False)
@click.argument("version", required=False)
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.pass_context
def get_task(
    ctx: click.Context,
    name: str | None,
    version: str | None,
    project: str | None,
    domain: str | None,
    limit: int,
) -> None:
    """List deployed tasks (latest versions), the versions of one, or one version's details."""
    from flyteidl2.common import identifier_pb2
    from flyteidl2.task import task_definition_pb2

    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain)
    if name is None:
        pid = identifier_pb2.ProjectIdentifier(
            organization=target.org, domain=target.domain, name=target.project
        )
        tasks = run_sync(target.client.list_tasks(pid, limit=limit))
        rows = [
            [
                t.task_id.name,
                t.task_id.version,
                t.metadata.environment_name,
                _fmt_time(t.metadata.deployed_at),
            ]
            for t in tasks
        ]
        _emit(ctx, "Deployed tasks (latest versions)", ["name", "version", "environment", "deployed"], rows)
        return
    if version is None:
        task_name = task_definition_pb2.TaskName(
            org=target.org, project=target.project, domain=target.domain, name=name
        )
        versions = run_sync(target.client.list_versions(task_name, limit=limit))
        if not versions:
            raise click.ClickException(
                f"no version of {name} is deployed in {target.project}/{target.domain}"
            )
        rows = [[name, v.version, _fmt_time(v.deployed_at)] for v in versions]
        _emit(ctx, f"Versions of {name}", ["name", "version", "deployed"], rows)
        return
    task_id = task_definition_pb2.TaskIdentifier(
        org=target.org, project=target.project, domain=target.domain, name=name, version=version
    )
    details = run_sync(target.client.get_task_details(task_id))
    from flyte._internal._serialize import template_container

    template = details.spec.task_template
    container = template_container(template)
    rows = [
        ["name", details.task_id.name],
        ["version", details.task_id.version],
        ["environment", details.metadata.environment_name],
        ["deployed", _fmt_time(details.metadata.deployed_at)],
        ["image", container.image],
        ["code", _code_location(list(container.args))],
        ["inputs", ", ".join(v.key for v in template.interface.inputs.variables)],
        ["outputs", ", ".join(v.key for v in template.interface.outputs.variables)],
    ]
    _emit(ctx, f"Task {name}", ["field", "value"], rows)


def _code_location(args: list[str]) -> str:
    """Where a deployed task's code comes from, read off its container arguments."""
    for flag, describe in (("--bundle", "bundle {}"), ("--root", "read in place from {}")):
        if flag in args[:-1]:
            return describe.format(args[args.index(flag) + 1])
    return "in the image"
