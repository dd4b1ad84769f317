"""``flyte build``: build and push the images of environments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rich_click as click

import flyte

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.

if TYPE_CHECKING:
    from flyte._environment import TaskEnvironment
    from flyte._image import Image


def env_image(env: TaskEnvironment) -> Image | str:
    """The image an environment's tasks run in: an Image to build, or a published URI."""
    from flyte._image import Image

    image = env.image
    if isinstance(image, Image):
        return image
    if image in (None, "auto"):
        from flyte._image import default_image

        return default_image()
    return str(image)


@click.command("build")
@click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="FILE_OR_DIR")
@click.argument("env_name", required=False, metavar="[ENV]")
@click.option("--all", "build_all", is_flag=True, help="Build every environment's image (the default).")
@click.option("--recursive", "-r", is_flag=True, help="Look for environments in subdirectories too.")
@click.option("--force", is_flag=True, help="Build even when the registry has the image already.")
@click.option("--dry-run", is_flag=True, help="Print the Dockerfiles that would be built.")
@click.option(
    "--root-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), help="Source root."
)
@click.pass_context
def build(
    ctx: click.Context,
    path: Path,
    env_name: str | None,
    build_all: bool,
    recursive: bool,
    force: bool,
    dry_run: bool,
    root_dir: Path | None,
) -> None:
    """Build the images of the environments in a file (ENV, or all of them) or a directory, and
    push them to their registries. An image already in its registry is not built again."""
    import asyncio

    from rich.console import Console

    from flyte._imagebuild._builder import ImageBuildError
    from flyte._imagebuild._dockerfile import render
    from flyte._imagebuild._engine import check_builder, outcome
    from flyte.cli._deploy import _environments_in, _pick
    from flyte.cli._get import config_from_context

    if env_name and (build_all or path.is_dir()):
        raise click.UsageError("name an environment (ENV) of one file, or build all of them with --all")
    if recursive and not path.is_dir():
        raise click.UsageError("--recursive needs a directory")

    cfg = config_from_context(ctx)
    flyte.init(image_builder=cfg.image_builder)
    try:
        check_builder()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    found = _environments_in(path, root_dir, recursive)
    envs = [_pick(found, env_name)] if env_name else list({id(e): e for e in found.values()}.values())
    if not envs:
        raise click.UsageError(f"no TaskEnvironment found in {path}")
    err = Console(stderr=True, highlight=False)
    results: list[dict[str, Any]] = []
    for env in envs:
        image = env_image(env)
        if isinstance(image, str):
            results.append({"environment": env.name, "image": image, "status": "published image"})
            continue
        if dry_run:
            dockerfile = render(image, lambda version: []).dockerfile
            results.append(
                {"environment": env.name, "image": image.uri, "status": "dry run", "dockerfile": dockerfile}
            )
            continue
        try:
            done = asyncio.run(
                outcome(image, force=force, progress=lambda line: err.print(f"[dim]{line}[/dim]"))
            )
        except (ImageBuildError, OSError, ValueError) as e:
            raise click.ClickException(f"{env.name}: {e}") from None
        status = f"built in {done.seconds:.0f}s" if done.built else "in the registry already"
        results.append({"environment": env.name, "image": done.uri, "status": status})
    if getattr(ctx.find_root().obj, "output_format", "table") == "json":
        click.echo(json.dumps(results, indent=2))
        return
    if dry_run:
        # The Dockerfiles are the output (`flyte build --dry-run wf.py ENV > Dockerfile`).
        for row in results:
            if "dockerfile" in row:
                click.echo(f"# {row['environment']}: {row['image']}\n{row['dockerfile']}", nl=False)
        return
    for row in results:
        Console().print(f"{row['environment']}: {row['image']} ({row['status']})")
