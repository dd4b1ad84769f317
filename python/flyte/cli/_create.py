"""``flyte create ...``: make new things, starting with a config file."""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from flyte._config import DEFAULT_CREATE_PATH, IMAGE_BUILDERS, write_config


@click.group()
def create() -> None:
    """Create a resource or a local file."""


@create.command("config")
@click.option("--endpoint", help="Endpoint of the Flyte backend, e.g. dns:///flyte.example.com.")
@click.option("--insecure/--no-insecure", default=None, help="Use a plaintext connection to the endpoint.")
@click.option("--project", help="Default project.")
@click.option("--domain", help="Default domain.")
@click.option("--org", help="Default organization.")
@click.option(
    "--builder",
    type=click.Choice(IMAGE_BUILDERS),
    default=None,
    help="Where images are built: 'local' (Docker) or 'remote'. [default: local]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CREATE_PATH,
    show_default=True,
    help="Where to write the file.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it already exists.")
@click.pass_context
def config(
    ctx: click.Context,
    endpoint: str | None,
    insecure: bool | None,
    project: str | None,
    domain: str | None,
    org: str | None,
    builder: str | None,
    output: Path,
    force: bool,
) -> None:
    """Write a config file that later commands and flyte.init_from_config() pick up."""
    # `flyte --endpoint X create config` should behave like `flyte create config --endpoint X`.
    opts = ctx.obj
    if endpoint is None:
        endpoint = getattr(opts, "endpoint", None)
    if insecure is None:
        insecure = getattr(opts, "insecure", None)
    if org is None:
        org = getattr(opts, "org", None)

    target = output.expanduser()
    if target.exists() and not force:
        raise click.ClickException(f"{target} already exists; pass --force to overwrite it.")
    written = write_config(
        target,
        endpoint=endpoint,
        insecure=insecure,
        project=project,
        domain=domain,
        org=org,
        builder=builder,
    )
    click.echo(f"Wrote config to {written.absolute()}")
