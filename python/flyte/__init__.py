"""flyte: workflows as plain Python.

Tasks are plain functions registered with a :class:`TaskEnvironment`; tasks call tasks,
``await`` and ``asyncio.gather`` express parallelism, and the same code runs locally, on
the embedded backend, or on a Flyte 2 cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flyte import errors, report
from flyte._cache import Cache, CachePolicy, CacheRequest
from flyte._condition import ConditionWebhook, new_condition
from flyte._context import TaskContext, ctx, custom_context, get_custom_context, group
from flyte._deploy import Deployment, deploy
from flyte._doc import Documentation, Link
from flyte._environment import Environment, TaskEnvironment
from flyte._initialize import (
    current_domain,
    current_project,
    init,
    init_from_api_key,
    init_from_config,
    init_in_cluster,
    init_passthrough,
    is_control_plane_available,
)
from flyte._logging import logger, system_logger
from flyte._map import map
from flyte._pod import PodTemplate
from flyte._rerun import rerun
from flyte._resources import AMD_GPU, GPU, HABANA_GAUDI, TPU, Device, DeviceClass, Neuron, Resources
from flyte._retry import Backoff, RetryStrategy
from flyte._reusable import ReusePolicy
from flyte._run import run, with_runcontext
from flyte._secret import Secret, SecretRequest
from flyte._task import AsyncFunctionTaskTemplate, TaskTemplate
from flyte._timeout import Timeout, TimeoutType
from flyte._trace import trace
from flyte._trigger import Cron, FixedRate, Trigger, TriggerTime
from flyte._version import __version__

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

if TYPE_CHECKING:
    from flyte._build import ImageBuild, build, build_images
    from flyte._checkpoint import BaseCheckpoint, Checkpoint, latest_checkpoint
    from flyte._image import Image
    from flyte._plugin_config import load_plugin_config
    from flyte.io import File
    from flyte.remote._run import Run

__all__ = [
    "AsyncFunctionTaskTemplate",
    "PodTemplate",
    "BaseCheckpoint",
    "Checkpoint",
    "latest_checkpoint",
    "AMD_GPU",
    "GPU",
    "HABANA_GAUDI",
    "TPU",
    "Device",
    "DeviceClass",
    "Documentation",
    "Environment",
    "Neuron",
    "Backoff",
    "Cache",
    "CachePolicy",
    "CacheRequest",
    "ConditionWebhook",
    "Cron",
    "Deployment",
    "File",
    "FixedRate",
    "Image",
    "ImageBuild",
    "Link",
    "Resources",
    "RetryStrategy",
    "ReusePolicy",
    "Run",
    "Secret",
    "SecretRequest",
    "TaskContext",
    "TaskEnvironment",
    "TaskTemplate",
    "Timeout",
    "TimeoutType",
    "Trigger",
    "TriggerTime",
    "__version__",
    "build",
    "build_images",
    "ctx",
    "current_domain",
    "current_project",
    "custom_context",
    "deploy",
    "errors",
    "get_custom_context",
    "group",
    "init",
    "init_from_api_key",
    "init_from_config",
    "init_in_cluster",
    "init_passthrough",
    "load_plugin_config",
    "is_control_plane_available",
    "logger",
    "map",
    "new_condition",
    "report",
    "rerun",
    "run",
    "system_logger",
    "trace",
    "version",
    "with_runcontext",
]


def version() -> str:
    """This SDK's version."""
    return __version__


def __getattr__(name: str) -> Any:
    # Heavier sub-packages load on first use, so `import flyte` stays fast.
    if name == "Image":
        from flyte._image import Image

        return Image
    if name in ("build", "build_images", "ImageBuild"):
        from flyte import _build

        return getattr(_build, name)
    if name == "load_plugin_config":
        from flyte._plugin_config import load_plugin_config

        return load_plugin_config
    if name == "Run":
        from flyte.remote._run import Run

        return Run
    if name in ("BaseCheckpoint", "Checkpoint", "latest_checkpoint"):
        from flyte import _checkpoint

        return getattr(_checkpoint, name)
    if name == "File":
        # Seed 004 writes `flyte.File`; it is flyte.io.File.
        from flyte.io import File

        return File
    if name in ("io", "remote", "types"):
        import importlib

        return importlib.import_module(f"flyte.{name}")
    raise AttributeError(f"module 'flyte' has no attribute {name!r}")
