"""Sleep tasks: a wait the backend itself keeps, with no process (task type ``core-sleep``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from flyte._bridge import contract
from flyte._task import AsyncFunctionTaskTemplate
from flyte._task_plugins import TaskPluginRegistry


@dataclass
class Sleep:
    """The plugin config of a ``TaskEnvironment`` whose tasks are waits: each task takes one
    input, a ``timedelta``, returns nothing, and waits that long (counted from its first start,
    even across a backend restart) without running a process. Its function body never runs; in
    local mode the task waits in this process."""


@dataclass(kw_only=True)
class SleepTask(AsyncFunctionTaskTemplate):  # type: ignore[type-arg]
    """What ``@env.task`` makes in an environment with ``plugin_config=Sleep()``."""

    plugin_config: Sleep
    task_type: str = contract.SLEEP_TASK_TYPE

    async def execute(self, *args: Any, **kwargs: Any) -> None:
        iface = self.interface
        inputs = iface.inputs_to_literals(iface.bind(args, kwargs, self.name), self.name)
        # The backend's own rule: one duration input, no outputs, not negative.
        seconds = contract.sleep_seconds(
            iface.to_typed_interface().SerializeToString(), inputs.SerializeToString()
        )
        await asyncio.sleep(seconds)


TaskPluginRegistry.register(Sleep, SleepTask)
