"""``flyte start local``: the embedded backend, in the foreground."""

from __future__ import annotations

from pathlib import Path

import rich_click as click


@click.group()
def start() -> None:
    """Start services."""


@start.command("local")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="0 picks a free port."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where runs, blobs and logs are kept (default: $FLYTE_DATA_DIR or ~/.flyte/local).",
)
@click.option(
    "--max-parallel", type=click.IntRange(1, 4096), default=8, show_default=True, help="Concurrent actions."
)
def start_local(port: int, host: str, data_dir: Path | None, max_parallel: int) -> None:
    """Run the embedded backend until interrupted, printing its endpoint.

    Point clients at it with `flyte --endpoint HOST:PORT --insecure ...` or
    `flyte.init(endpoint="HOST:PORT", insecure=True)`; `flyte run` without an endpoint
    starts one in the background on its own.
    """
    from flyte._initialize import data_dir as default_data_dir
    from flyte._remote._local_backend import serve

    directory = (data_dir or default_data_dir()).expanduser().resolve()

    def announce(endpoint: str) -> None:
        click.echo(f"Flyte backend listening on {endpoint} (data in {directory})", err=True)
        click.echo(endpoint)

    serve(directory, host, port, max_parallel, announce=announce)
