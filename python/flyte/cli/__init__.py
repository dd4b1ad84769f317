"""The ``flyte`` command line."""


# Deferred imports: the click group and its commands load when asked for (`flyte.cli.main`),
# not with `import flyte.cli`.


def __getattr__(name: str) -> object:
    if name == "main":
        from flyte.cli._main import main

        return main
    raise AttributeError(f"module 'flyte.cli' has no attribute {name!r}")


__all__ = ["main"]
