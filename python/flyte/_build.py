"""``flyte.build``: build an image and push it to its registry, unless it is there already."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flyte._environment import Environment
from flyte._image import Image, code_placement, default_image, placed
from flyte._imagebuild._engine import ImageBuild, ImageBuildEngine, check_builder, outcome
from flyte._initialize import current_config
from flyte.syncify import syncify

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).


@syncify
async def build(image: Image, dry_run: bool = False, force: bool = False, wait: bool = True) -> ImageBuild:
    """Builds ``image`` and pushes it to its registry; an image whose tag (a hash of its
    content) is in the registry already is not built again, unless ``force``. With ``dry_run``
    nothing is built: the Dockerfile that would be is checked (every file it needs exists) and
    the URI returned. Progress goes to the ``flyte.build`` logger. ``await build.aio(...)`` in
    async code."""
    return await ImageBuildEngine.build(image, dry_run=dry_run, force=force, wait=wait)


@dataclass
class ImageCache:
    """The images of environments, by environment name (what ``build_images`` built)."""

    image_lookup: dict[str, str]
    #: Runs of a remote builder, by environment name; builds here run on this machine.
    build_run_ids: dict[str, Any] = field(default_factory=dict)
    serialized_form: str | None = None

    @property
    def to_transport(self) -> str:
        """The lookup as compact text (base64 of gzipped JSON), to hand to another process."""
        import base64
        import gzip
        import json

        data = json.dumps({"image_lookup": self.image_lookup}, sort_keys=True).encode()
        return base64.b64encode(gzip.compress(data, mtime=0)).decode()

    @classmethod
    def from_transport(cls, s: str) -> ImageCache:
        import base64
        import gzip
        import json

        try:
            data = json.loads(gzip.decompress(base64.b64decode(s)))
            lookup = data["image_lookup"]
        except (ValueError, KeyError, OSError, TypeError) as e:
            raise ValueError(f"not an image cache handed over by build_images: {e}") from None
        return cls(image_lookup=dict(lookup), serialized_form=s)


_COPY_STYLES = ("loaded_modules", "all", "none")


@syncify
async def build_images(
    *envs: Environment, copy_style: str = "loaded_modules", seed_cache: ImageCache | None = None
) -> ImageCache:
    """Builds and pushes the images the environments (and the ones they depend on) run in,
    unless their registry has them, and returns their URIs by environment name. Environments
    in ``seed_cache`` are not built again. ``copy_style`` is the deploy's: with ``"none"`` the
    images' ``with_code_bundle`` steps copy the code (from the configured root directory, else
    the first environment's tasks' root); otherwise those steps add nothing."""
    import logging

    from flyte._imagebuild._ensure import with_dependencies

    if not envs:
        raise ValueError("build_images needs at least one environment")
    for env in envs:
        if not isinstance(env, Environment):
            raise TypeError(f"build_images takes environments, got {type(env).__name__}")
    if copy_style not in _COPY_STYLES:
        raise ValueError(f"copy_style must be one of {', '.join(_COPY_STYLES)}, got {copy_style!r}")
    if seed_cache is not None and not isinstance(seed_cache, ImageCache):
        raise TypeError(
            f"seed_cache must be an ImageCache from build_images, got {type(seed_cache).__name__}"
        )
    check_builder()
    log = logging.getLogger("flyte.build")
    lookup = dict(seed_cache.image_lookup) if seed_cache is not None else {}
    everything = with_dependencies(envs)
    with code_placement(copy_style, _code_root(everything)):
        for env in everything:
            if env.name in lookup:
                continue
            image = env.image
            if image in (None, "auto"):
                image = default_image()
            if isinstance(image, str):
                lookup[env.name] = image  # a published image, used as it is
                continue
            lookup[env.name] = (await outcome(placed(image), progress=log.info)).uri
    return ImageCache(image_lookup=lookup)


def _code_root(envs: list[Environment]) -> Path:
    """Where the code of these environments is taken from: the configured root directory, else
    the root of the first task's module."""
    from flyte._remote._submit import code_root

    configured = current_config().root_dir
    tasks = [t for env in envs for t in getattr(env, "tasks", {}).values()]
    if configured is not None or not tasks:
        return configured or Path.cwd()
    return code_root(tasks[0], None)
