"""``flyte create project``, ``flyte get project``: where runs, tasks, triggers and secrets live."""

from __future__ import annotations

import rich_click as click

from flyte.cli._create import create
from flyte.cli._get import get
from flyte.cli._get_runs import _emit

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@create.command("project")
@click.option("--id", "project_id", required=True, help="The project's id (lowercase letters, digits, '-').")
@click.option("--name", help="A display name (default: the id).")
@click.option("--description", default="", help="What the project is for.")
@click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE", help="A label (repeatable).")
@click.pass_context
def create_project(
    ctx: click.Context, project_id: str, name: str | None, description: str, labels: tuple[str, ...]
) -> None:
    """Create a project (it has the domains development, staging and production)."""
    from flyteidl2.project import project_service_pb2 as ps

    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    project = ps.Project(id=project_id, name=name or project_id, description=description)
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{label!r}: expected KEY=VALUE", param_hint="--label")
        project.labels.values[key] = value
    target = resolve(ctx, start=True)
    project.org = target.org
    run_sync(target.client.create_project(project))
    click.echo(f"Created project {project_id}.", err=True)


@get.command("project")
@click.argument("name", required=False)
@click.pass_context
def get_project(ctx: click.Context, name: str | None) -> None:
    """List projects, or show one with its domains."""
    from flyteidl2.project import project_service_pb2 as ps

    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx)
    projects = (
        [run_sync(target.client.get_project(name, target.org))]
        if name is not None
        else run_sync(target.client.list_projects(target.org))
    )
    rows = [
        [
            p.id,
            p.name,
            ", ".join(d.id for d in p.domains),
            ps.ProjectState.Name(p.state).removeprefix("PROJECT_STATE_").lower(),
            p.description,
        ]
        for p in projects
    ]
    _emit(ctx, "Projects", ["id", "name", "domains", "state", "description"], rows)
