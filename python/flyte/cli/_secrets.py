"""``flyte create|get|delete secret``: secrets for tasks, kept by the backend (names only ever
come back, never values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rich_click as click

from flyte.cli._create import create
from flyte.cli._get import get
from flyte.cli._get_runs import _emit, _fmt_time
from flyte.cli._triggers import delete

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


def _target(
    ctx: click.Context, project: str | None, domain: str | None, start: bool = False
) -> tuple[Any, Any]:
    """The backend client and the secret scope: project and domain, a domain, or (neither
    given) every project."""
    from flyteidl2.secret import definition_pb2

    from flyte.cli._backend import resolve

    if project and not domain:
        raise click.UsageError("--project needs --domain (a secret belongs to a project in one domain)")
    target = resolve(ctx, start=start)

    def secret_id(name: str) -> Any:
        return definition_pb2.SecretIdentifier(
            name=name, organization=target.org, project=project or "", domain=domain or ""
        )

    return target, secret_id


@create.command("secret")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--value", "value_option", help="The value (instead of the VALUE argument).")
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the value from a file (binary is fine).",
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["regular", "image_pull"]),
    default="regular",
    show_default=True,
    help="image_pull: registry credentials (a Docker config.json) for pulling images.",
)
@click.option("--project", "-p", help="Only for this project (with --domain).")
@click.option("--domain", "-d", help="Only for this domain.")
@click.pass_context
def create_secret(
    ctx: click.Context,
    name: str,
    value: str | None,
    value_option: str | None,
    from_file: Path | None,
    kind: str,
    project: str | None,
    domain: str | None,
) -> None:
    """Create the secret NAME: flyte create secret NAME VALUE (or --value, or --from-file)."""
    from flyte._remote._client import run_sync

    given = [v for v in (value, value_option, from_file) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give the value once: VALUE, --value or --from-file")
    data = from_file.read_bytes() if from_file is not None else str(given[0]).encode()
    target, secret_id = _target(ctx, project, domain, start=True)
    run_sync(target.client.create_secret(secret_id(name), data, image_pull=kind == "image_pull"))
    click.echo(f"Created secret {name}.", err=True)


@get.command("secret")
@click.argument("name", required=False)
@click.option("--project", "-p", help="Secrets of this project (with --domain).")
@click.option("--domain", "-d", help="Secrets of this domain.")
@click.pass_context
def get_secret(ctx: click.Context, name: str | None, project: str | None, domain: str | None) -> None:
    """List secrets, or show one: names and scopes only, never values."""
    from flyteidl2.secret import definition_pb2

    from flyte._remote._client import run_sync

    target, secret_id = _target(ctx, project, domain)
    if name is not None:
        secrets = [run_sync(target.client.get_secret(secret_id(name)))]
    else:
        secrets = run_sync(target.client.list_secrets(target.org, project or "", domain or ""))
    kinds = {
        definition_pb2.SECRET_TYPE_GENERIC: "regular",
        definition_pb2.SECRET_TYPE_IMAGE_PULL_SECRET: "image_pull",
    }
    rows = [
        [
            s.id.name,
            s.id.project or "-",
            s.id.domain or "-",
            kinds.get(s.secret_metadata.type, "regular"),
            _fmt_time(s.secret_metadata.created_time),
        ]
        for s in secrets
    ]
    _emit(ctx, "Secrets", ["name", "project", "domain", "type", "created"], rows)


@delete.command("secret")
@click.argument("name")
@click.option("--project", "-p")
@click.option("--domain", "-d")
@click.pass_context
def delete_secret(ctx: click.Context, name: str, project: str | None, domain: str | None) -> None:
    """Delete the secret NAME (of the scope given, or the one for every project)."""
    from flyte._remote._client import run_sync

    target, secret_id = _target(ctx, project, domain)
    run_sync(target.client.delete_secret(secret_id(name)))
    click.echo(f"Deleted secret {name}.", err=True)
