"""How the CLI prints errors and tables."""

from __future__ import annotations

from rich.console import Console

_err = Console(stderr=True, highlight=False)


def print_error(e: BaseException) -> None:
    """One line naming what went wrong; the traceback is only shown with ``-v``."""
    name = type(e).__name__
    message = str(e) or name
    _err.print(
        f"[bold red]Error:[/bold red] {message}"
        if name in message
        else f"[bold red]Error ({name}):[/bold red] {message}"
    )
