"""``flyte start local``: the embedded backend, in the foreground."""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from flyte._initialize import data_dir as default_data_dir

# Deferred imports: a command loads what it uses when it runs, so `flyte --help` and every
# other command start without the rest.


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
@click.option(
    "--system-retries",
    type=click.IntRange(0, 1000),
    default=None,
    help="Relaunches of an action after crashes (lost processes), apart from its own retries, "
    "with waits of 0, 1, 2, 4 ... 30 s between them. [default: 10]",
)
@click.option(
    "--max-streams-per-connection",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="RPCs one client connection may have open at once; more wait their turn. [default: 1024]",
)
@click.option(
    "--max-requests-per-second",
    type=click.IntRange(1, 100_000_000),
    default=None,
    help="Requests one client connection may make a second; more are answered RESOURCE_EXHAUSTED "
    "(HTTP 429), which clients back off from. [default: 10000]",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(1024, 2**31 - 1),
    default=None,
    help="Largest request or reply message in bytes; a larger request is refused. [default: 67108864 (64 MiB)]",
)
@click.option(
    "--sandbox/--no-sandbox",
    default=True,
    show_default=True,
    help="Start each task process in namespaces of its own that show it only its run's part of the data "
    "dir (no database, keys, logs or other runs); --no-sandbox shows tasks the whole data dir.",
)
@click.option(
    "--launcher",
    type=click.Choice(["fork", "spawn"]),
    default="fork",
    show_default=True,
    help="fork: each action's process is forked from a warm process (fast); spawn: a fresh interpreter each.",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="NAME=DIR",
    help="Run tasks whose image is NAME (or starts with NAME) with the programs of the environment "
    "DIR (a virtualenv or its bin directory). Repeatable; adds to (and overrides) the config file's "
    "local.images. Default: this environment.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve TLS with this PEM certificate (chain); needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The PEM private key of --tls-cert.",
)
@click.option(
    "--auth-issuer",
    metavar="URL",
    help="Require callers to sign in with access tokens from this OAuth2 authorization server "
    "(its metadata at URL/.well-known/...). Needed to listen on anything but loopback.",
)
@click.option("--auth-audience", help="The audience access tokens must be issued for (with --auth-issuer).")
@click.option(
    "--auth-client-id",
    default="flyte-cli",
    show_default=True,
    help="The public client the CLI signs in as (browser or device sign-in).",
)
@click.option("--auth-scope", "auth_scopes", multiple=True, help="A scope clients ask for (repeatable).")
@click.pass_context
def start_local(
    ctx: click.Context,
    port: int,
    host: str,
    data_dir: Path | None,
    max_parallel: int,
    system_retries: int | None,
    max_streams_per_connection: int | None,
    max_requests_per_second: int | None,
    max_message_bytes: int | None,
    sandbox: bool,
    launcher: str,
    images: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    auth_issuer: str | None,
    auth_audience: str | None,
    auth_client_id: str,
    auth_scopes: tuple[str, ...],
) -> None:
    """Run the embedded backend until interrupted, printing its endpoint.

    Point clients at it with `flyte --endpoint HOST:PORT --insecure ...` or
    `flyte.init(endpoint="HOST:PORT", insecure=True)`; `flyte run` without an endpoint
    starts one in the background on its own.
    """
    from flyte._remote._local_backend import image_mapping, serve
    from flyte.cli._get import config_from_context

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if (auth_issuer is None) != (auth_audience is None):
        raise click.UsageError("--auth-issuer and --auth-audience go together")
    auth = (
        {"issuer": auth_issuer, "audience": auth_audience, "client_id": auth_client_id, "scopes": auth_scopes}
        if auth_issuer
        else None
    )
    mapping: dict[str, Path] = {}
    try:
        for name, env_dir in config_from_context(ctx).local_images:
            image, path = image_mapping(f"{name}={env_dir}")
            mapping[image] = path
    except ValueError as e:
        raise click.ClickException(f"config file, local.images: {e}") from None
    try:
        for spec in images:
            image, path = image_mapping(spec)
            mapping[image] = path
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--image") from None
    mapped = list(mapping.items())
    directory = (data_dir or default_data_dir()).expanduser().resolve()

    def announce(endpoint: str) -> None:
        click.echo(f"Flyte backend listening on {endpoint} (data in {directory})", err=True)
        scheme = "https" if tls is not None else "http"
        click.echo(f"Runs in a browser: {scheme}://{endpoint}/v2/runs", err=True)
        click.echo(endpoint)

    tls = (tls_cert.resolve(), tls_key.resolve()) if tls_cert is not None and tls_key is not None else None
    serve(
        directory,
        host,
        port,
        max_parallel,
        announce=announce,
        launcher=launcher,
        images=mapped,
        tls=tls,
        auth=auth,
        system_retries=system_retries,
        max_streams_per_connection=max_streams_per_connection,
        max_requests_per_second=max_requests_per_second,
        max_message_bytes=max_message_bytes,
        sandbox=sandbox,
    )


@click.group()
def stop() -> None:
    """Stop services."""


@stop.command("local")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="The backend's data dir.")
@click.option(
    "--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for it to exit."
)
def stop_local(data_dir: Path | None, timeout: float) -> None:
    """Stop the embedded backend of a data dir (started by `flyte start local` or `flyte run`)."""
    import os
    import signal
    import time

    from flyte._remote._local_backend import read_info

    directory = (data_dir or default_data_dir()).expanduser().resolve()
    info = read_info(directory)
    if info is None:
        click.echo(f"No backend is running for {directory}.", err=True)
        return
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        click.echo(f"No backend is running for {directory} (stale record removed).", err=True)
        (directory / "backend.json").unlink(missing_ok=True)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            click.echo(f"Stopped the backend at {info['endpoint']}.", err=True)
            return
        time.sleep(0.1)
    raise click.ClickException(f"the backend (pid {pid}) did not stop within {timeout:.0f}s")
