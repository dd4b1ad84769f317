"""``flyte get ...``: look things up, starting with the effective configuration."""

from __future__ import annotations

import json
from typing import Any

import rich_click as click

from flyte._config import SETTINGS, Config, load_config

# How each setting is spelled in the config file, which is what users recognise.
_DISPLAY_NAMES = {
    "endpoint": "endpoint",
    "insecure": "insecure",
    "project": "project",
    "domain": "domain",
    "org": "org",
    "image_builder": "image.builder",
    "image_registry": "image.registry",
}

_PATH_ORIGINS = {
    "argument": "from --config",
    "env FLYTE_CONFIG": "from FLYTE_CONFIG",
    "discovered": "discovered",
}


def config_from_context(ctx: click.Context) -> Config:
    """The effective config, with the root command's global options as the top layer."""
    # Read by attribute so any object carrying the global options works here.
    opts: Any = ctx.find_root().obj
    return load_config(
        getattr(opts, "config_path", None),
        endpoint=getattr(opts, "endpoint", None),
        insecure=getattr(opts, "insecure", None),
        org=getattr(opts, "org", None),
    )


def _output_format(ctx: click.Context) -> str:
    return str(getattr(ctx.find_root().obj, "output_format", "table") or "table")


@click.group()
def get() -> None:
    """Look up resources or the current configuration."""


@get.command("config")
@click.pass_context
def config(ctx: click.Context) -> None:
    """Show the effective configuration and where each value came from."""
    cfg = config_from_context(ctx)
    if _output_format(ctx) == "json":
        values = cfg.to_dict()
        payload = {
            "path": values.pop("path"),
            "values": values,
            "sources": dict(cfg.sources),
        }
        click.echo(json.dumps(payload, indent=2))
        return

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if cfg.path is None:
        title = "No config file found; showing defaults and overrides"
    else:
        how = _PATH_ORIGINS.get(cfg.sources.get("path", ""), "discovered")
        title = f"Config file: {cfg.path} ({how})"
    table = Table()
    table.add_column("Setting", style="bold")
    table.add_column("Value")
    table.add_column("Source", style="dim")
    file_source = f"file {cfg.path}"
    for name in SETTINGS:
        value = getattr(cfg, name)
        source = cfg.sources.get(name, "default")
        # The title already names the file; repeating the path on every row only wraps the table.
        source = "config file" if source == file_source else source
        if value is None:
            shown = Text("-", style="dim")
        else:
            shown = Text(str(value).lower() if isinstance(value, bool) else str(value))
        table.add_row(_DISPLAY_NAMES.get(name, name), shown, Text(source))
    # Created here, not at import, so it writes to whatever stdout is current (tests swap it).
    console = Console()
    # Not a table title, which rich would wrap to the table's width and break the path apart.
    # Text(), not markup: paths and values may contain square brackets.
    console.print(Text(title), soft_wrap=True)
    console.print(table)
