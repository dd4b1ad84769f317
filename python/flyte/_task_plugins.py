"""Which task class ``@env.task`` makes for a ``plugin_config`` of a given type."""

from __future__ import annotations

from typing import Any

from flyte._task import AsyncFunctionTaskTemplate


class _Registry:
    """Task plugins by the type of their configuration object."""

    def __init__(self) -> None:
        self._plugins: dict[type, type[AsyncFunctionTaskTemplate[Any, Any, Any]]] = {}

    def register(self, config_type: type, plugin: type[AsyncFunctionTaskTemplate[Any, Any, Any]]) -> None:
        """Makes ``@env.task`` of an environment whose ``plugin_config`` is a ``config_type``
        build ``plugin`` tasks (a later registration for the same type replaces an earlier one)."""
        if not isinstance(config_type, type):
            raise TypeError(f"config_type must be a class, got {config_type!r}")
        if not (isinstance(plugin, type) and issubclass(plugin, AsyncFunctionTaskTemplate)):
            raise TypeError(
                f"plugin must be a subclass of flyte.extend.AsyncFunctionTaskTemplate, got {plugin!r}"
            )
        self._plugins[config_type] = plugin

    def find(self, config_type: type) -> type[AsyncFunctionTaskTemplate[Any, Any, Any]] | None:
        """The plugin registered for ``config_type`` (None when there is none)."""
        return self._plugins.get(config_type)

    def list_plugins(self) -> list[type]:
        """The configuration types that have a plugin."""
        return list(self._plugins)

    def __repr__(self) -> str:
        return f"TaskPluginRegistry(plugins={[t.__name__ for t in self._plugins]})"


TaskPluginRegistry = _Registry()
