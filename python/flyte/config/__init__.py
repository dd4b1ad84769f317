"""The configuration as the reference SDK shapes it: ``flyte.config.auto()`` reads the config
file (found as ``flyte get config`` shows) and the ``FLYTE_*`` variables into a :class:`Config`
of platform, task, image and local settings, which ``flyte.init_from_config`` also takes."""

from __future__ import annotations

from flyte.config._nested import (
    Config,
    ImageConfig,
    LocalConfig,
    PlatformConfig,
    TaskConfig,
    auto,
    get_config_file,
    set_if_exists,
)

__all__ = [
    "Config",
    "ImageConfig",
    "LocalConfig",
    "PlatformConfig",
    "TaskConfig",
    "auto",
    "get_config_file",
    "set_if_exists",
]
