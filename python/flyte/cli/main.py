"""The ``flyte`` command line: ``flyte.cli.main`` is its click group (what the ``flyte``
script runs)."""

from flyte.cli._main import main

__all__ = ["main"]
