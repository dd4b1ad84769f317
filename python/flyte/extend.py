"""What task plugins build on.

A plugin is a ``TaskTemplate`` subclass (usually of ``AsyncFunctionTaskTemplate``, so the
task's body is still the user's function) registered for the type of its configuration
object; ``@env.task`` of an environment with ``plugin_config=`` of that type then makes
tasks of the plugin's class::

    @dataclass
    class Spark:
        executors: int = 2

    @dataclass(kw_only=True)
    class SparkTask(flyte.extend.AsyncFunctionTaskTemplate):
        task_type: str = "spark"
        plugin_config: Spark

        def custom_config(self, sctx):
            return {"executors": self.plugin_config.executors}

    flyte.extend.TaskPluginRegistry.register(Spark, SparkTask)
    env = flyte.TaskEnvironment("spark", plugin_config=Spark(executors=4))
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from flyte._image import Architecture
from flyte._imagebuild._engine import ImageBuildEngine, ImageBuilder, ImageChecker
from flyte._initialize import is_initialized
from flyte._internal._serialize import extended_resources_proto, resources_proto
from flyte._pod import PRIMARY_CONTAINER_DEFAULT_NAME, pod_spec_from_resources
from flyte._task import AsyncFunctionTaskTemplate, RuntimeTaskTemplate, TaskTemplate
from flyte._task_plugins import TaskPluginRegistry

if TYPE_CHECKING:
    from flyte._resources import Resources


def get_proto_resources(resources: Resources | None) -> Any:
    """The ``core.Resources`` (requests and limits) of ``resources``; None when it is None."""
    if resources is None:
        return None
    return resources_proto(resources)


def get_proto_extended_resources(resources: Resources | None) -> Any:
    """The ``core.ExtendedResources`` (accelerator, shared memory) of ``resources``, or None."""
    return extended_resources_proto(resources)


def lazy_module(fullname: str) -> ModuleType:
    """The module ``fullname``, imported when one of its attributes is first used (a plugin
    can name a heavy optional dependency at import time without paying for it)."""
    if fullname in sys.modules:
        return sys.modules[fullname]
    spec = importlib.util.find_spec(fullname)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[fullname] = module
    loader.exec_module(module)
    return module


__all__ = [
    "PRIMARY_CONTAINER_DEFAULT_NAME",
    "Architecture",
    "AsyncFunctionTaskTemplate",
    "ImageBuildEngine",
    "ImageBuilder",
    "ImageChecker",
    "RuntimeTaskTemplate",
    "TaskPluginRegistry",
    "TaskTemplate",
    "get_proto_extended_resources",
    "get_proto_resources",
    "is_initialized",
    "lazy_module",
    "pod_spec_from_resources",
]
