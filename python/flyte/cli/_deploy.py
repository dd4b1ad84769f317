"""``flyte deploy``: register environments' tasks (and triggers) with a backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rich_click as click

import flyte
from flyte._deploy import deploy as deploy_envs
from flyte._environment import TaskEnvironment

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


def _environments_in(path: Path, root_dir: Path | None, recursive: bool) -> dict[str, TaskEnvironment]:
    """Every TaskEnvironment defined by the file, or by the .py files of the directory."""
    from flyte._internal._modules import load_module

    root: Path | None = root_dir
    if path.is_dir():
        pattern = "**/*.py" if recursive else "*.py"
        files = sorted(p for p in path.glob(pattern) if not any(part.startswith(".") for part in p.parts))
        root = root_dir or path
    else:
        files = [path]
    found: dict[str, TaskEnvironment] = {}
    for file in files:
        module = load_module(file, root)
        for attr, value in vars(module).items():
            if isinstance(value, TaskEnvironment):
                found.setdefault(attr, value)
    return found


def _pick(envs: dict[str, TaskEnvironment], name: str) -> TaskEnvironment:
    """An environment by its variable name or its own name."""
    env = envs.get(name) or next((e for e in envs.values() if e.name == name), None)
    if env is None:
        known = ", ".join(sorted({*envs, *(e.name for e in envs.values())})) or "none"
        raise click.UsageError(f"no TaskEnvironment named {name!r} (found: {known})")
    return env


def apply_images(envs: list[TaskEnvironment], images: tuple[str, ...]) -> None:
    """``--image URI`` for every environment without an image of its own, ``--image ENV=URI``
    for one environment."""
    by_name = {e.name: e for e in envs}
    for spec in images:
        name, sep, uri = spec.rpartition("=")
        if sep and not name:
            raise click.BadParameter(f"{spec!r}: expected URI or ENV=URI", param_hint="--image")
        targets = [by_name[name]] if name in by_name else []
        if name and not targets:
            raise click.BadParameter(
                f"{spec!r}: no environment named {name!r} here (environments: {', '.join(by_name)})",
                param_hint="--image",
            )
        if not name:
            targets = [e for e in envs if e.image in ("auto", None)]
        for env in targets:
            env.image = uri
            for task in env.tasks.values():
                task.image = uri


@click.command("deploy")
@click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="FILE_OR_DIR")
@click.argument("env_name", required=False, metavar="[ENV]")
@click.option(
    "--all", "deploy_all", is_flag=True, help="Deploy every environment found (the default without ENV)."
)
@click.option("--recursive", "-r", is_flag=True, help="Look for environments in subdirectories too.")
@click.option("--dry-run", is_flag=True, help="Show what would be deployed, without deploying.")
@click.option("--version", help="Version of the deployed tasks (default: a hash of the code and images).")
@click.option(
    "--copy-style",
    type=click.Choice(["loaded_modules", "all", "none"]),
    default="loaded_modules",
    show_default=True,
    help="Which source files travel with the tasks ('none': the image has them; needs --version).",
)
@click.option(
    "--root-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), help="Source root."
)
@click.option("--project", "-p", help="Project to deploy to.")
@click.option("--domain", "-d", help="Domain to deploy to.")
@click.option(
    "--image", "images", multiple=True, metavar="[ENV=]URI", help="Image of an environment (repeatable)."
)
@click.pass_context
def deploy(
    ctx: click.Context,
    path: Path,
    env_name: str | None,
    deploy_all: bool,
    recursive: bool,
    dry_run: bool,
    version: str | None,
    copy_style: str,
    root_dir: Path | None,
    project: str | None,
    domain: str | None,
    images: tuple[str, ...],
) -> None:
    """Deploy the tasks of environments in a file (ENV, or all of them) or a directory."""
    from flyte.cli._get import config_from_context

    if env_name and (deploy_all or path.is_dir()):
        raise click.UsageError("name an environment (ENV) of one file, or deploy all of them with --all")
    if recursive and not path.is_dir():
        raise click.UsageError("--recursive needs a directory")
    cfg = config_from_context(ctx)
    flyte.init(
        endpoint=cfg.endpoint,
        insecure=cfg.insecure,
        project=project or cfg.project,
        domain=domain or cfg.domain,
        org=cfg.org,
        root_dir=root_dir,
        _from_config=cfg,
    )
    found = _environments_in(path, root_dir, recursive)
    envs = [_pick(found, env_name)] if env_name else list({id(e): e for e in found.values()}.values())
    if not envs:
        raise click.UsageError(f"no TaskEnvironment found in {path}")
    apply_images(envs, images)
    try:
        deployments = deploy_envs(*envs, dry_run=dry_run, version=version, copy_style=copy_style)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    rows: list[dict[str, Any]] = [
        {
            "environment": env_name_,
            "task": task.name,
            "version": task.version,
            "triggers": ", ".join(task.triggers),
        }
        for d in deployments
        for env_name_, env in d.envs.items()
        for task in env.deployed_entities
    ]
    fmt = getattr(ctx.find_root().obj, "output_format", "table")
    if fmt == "json":
        click.echo(json.dumps({"dry_run": dry_run, "tasks": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Would deploy (dry run)" if dry_run else "Deployed")
    for column in ("environment", "task", "version", "triggers"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
