"""The ``flyte`` command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click as _click
import rich_click as click

from flyte._version import __version__

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


@dataclass
class CLIOptions:
    """Global options, shared with every sub-command through ``click.Context.obj``."""

    config_path: str | None = None
    endpoint: str | None = None
    insecure: bool | None = None
    org: str | None = None
    verbose: int = 0
    output_format: str = "table"


class _FlyteGroup(click.RichGroup):
    """Turns any exception escaping a sub-command into one readable line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (_click.exceptions.Exit, _click.exceptions.Abort, _click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
            opts = ctx.find_object(CLIOptions)
            if opts is not None and opts.verbose > 0:
                raise
            from flyte.cli._output import print_error

            print_error(e)
            sys.exit(1)


@click.group(cls=_FlyteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="flyte")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Path to a config file.")
@click.option(
    "--endpoint", help="Endpoint of the Flyte backend, e.g. dns:///flyte.example.com or localhost:8090."
)
@click.option("--insecure/--secure", default=None, help="Use a plaintext connection to the endpoint.")
@click.option("--org", help="Organization.")
@click.option("-v", "--verbose", count=True, help="Show more detail, including tracebacks (repeat for more).")
@click.option(
    "--output-format",
    "-of",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How `get` commands print what they find.",
)
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    endpoint: str | None,
    insecure: bool | None,
    org: str | None,
    verbose: int,
    output_format: str,
) -> None:
    """Write workflows as plain Python and run them locally, on the embedded backend, or on a cluster."""
    ctx.obj = CLIOptions(
        config_path=config_path,
        endpoint=endpoint,
        insecure=insecure,
        org=org,
        verbose=verbose,
        output_format=output_format,
    )
    import logging

    if verbose:
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO)
    # Image builds that run or deploy start report their progress here, live.
    build_log = logging.getLogger("flyte.build")
    if not build_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        build_log.addHandler(handler)
        build_log.setLevel(logging.INFO)
        build_log.propagate = False


def _register() -> None:
    from flyte.cli import (
        _conditions,  # noqa: F401 - adds `get condition` to `get`
        _get_runs,  # noqa: F401 - adds `get run|action|logs` to `get`
        _get_tasks,  # noqa: F401 - adds `get task` to `get`
        _projects,  # noqa: F401 - adds `create|get project`
        _secrets,  # noqa: F401 - adds `create|get|delete secret`
    )
    from flyte.cli._abort import abort
    from flyte.cli._build import build
    from flyte.cli._conditions import signal
    from flyte.cli._create import create
    from flyte.cli._deploy import deploy
    from flyte.cli._get import get
    from flyte.cli._get_runs import get_logs
    from flyte.cli._run import run
    from flyte.cli._start import start, stop
    from flyte.cli._triggers import delete, update

    main.add_command(run)
    main.add_command(build)
    main.add_command(create)
    main.add_command(deploy)
    main.add_command(update)
    main.add_command(delete)
    main.add_command(get)
    main.add_command(start)
    main.add_command(abort)
    main.add_command(stop)
    main.add_command(signal)
    # Seed 004 writes `flyte logs <execution-id>`: the same command as `flyte get logs`.
    main.add_command(get_logs, name="logs")


_register()

if __name__ == "__main__":
    main()
