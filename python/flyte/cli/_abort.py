"""``flyte abort run RUN``."""

from __future__ import annotations

import rich_click as click

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@click.group()
def abort() -> None:
    """Stop runs."""


@abort.command("run")
@click.argument("name")
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.option("--reason", default="aborted from the command line", show_default=True)
@click.pass_context
def abort_run(ctx: click.Context, name: str, project: str | None, domain: str | None, reason: str) -> None:
    """Abort a run and every action in it."""
    from flyte._remote._client import run_sync
    from flyte.cli._backend import resolve

    target = resolve(ctx, project, domain)
    run_sync(target.client.abort_run(target.run_id(name), reason))
    click.echo(f"Aborted run {name}")
