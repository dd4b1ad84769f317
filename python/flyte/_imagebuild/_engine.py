"""Which builder builds an image: this machine's (docker buildx or buildah), or one a plugin
brings (``flyte.extend.ImageBuilder``, given to ``flyte.init(image_builder=...)`` or to
``ImageBuildEngine.build``). Every build goes through here: ``flyte.build``,
``flyte.build_images``, ``flyte build`` and the images a run or deploy needs first.

A plugin builder says whether an image exists through its checkers
(``flyte.extend.ImageChecker``): the first that answers (a URI, or None for "not there")
decides; one that raises passes to the next.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from flyte._image import Architecture, Image
from flyte._imagebuild import _registry
from flyte._imagebuild._builder import BuildOutcome, ImageBuildError, Progress, build_image
from flyte._imagebuild._dockerfile import render
from flyte._initialize import current_config


@dataclass
class ImageBuild:
    """What a build produced.

    ``uri`` is where the image is. ``remote_run`` is the run of a remote (cluster-side) image
    builder; this SDK builds on this machine (or with a plugin builder), so it is ``None``
    unless a plugin builder sets it.
    """

    uri: str | None
    remote_run: Any = None
    #: The run of the remote builder that built it; None: built on this machine.
    build_run: Any = None


@runtime_checkable
class ImageChecker(Protocol):
    """Tells whether a registry (or a cache) has an image."""

    @classmethod
    async def image_exists(
        cls, repository: str, tag: str, arch: tuple[Architecture, ...] = ("linux/amd64",)
    ) -> str | None:
        """The image's URI when it exists, None when it does not; raises when it cannot tell."""
        ...


@runtime_checkable
class ImageBuilder(Protocol):
    """Builds images (and pushes them where tasks pull them from)."""

    async def build_image(
        self, image: Image, dry_run: bool, wait: bool = True, force: bool = False
    ) -> ImageBuild:
        """Builds ``image``; ``dry_run`` builds nothing and returns where it would be."""
        ...

    def get_checkers(self) -> list[type[ImageChecker]] | None:
        """The checkers that tell whether an image exists (None: none can tell)."""
        ...


class RegistryChecker:
    """Asks the image's registry for the tag's manifest (the OCI distribution API)."""

    @classmethod
    async def image_exists(
        cls, repository: str, tag: str, arch: tuple[Architecture, ...] = ("linux/amd64",)
    ) -> str | None:
        uri = f"{repository}:{tag}"
        return uri if await asyncio.to_thread(_registry.manifest_exists, uri) else None


def _resolve(builder: Any) -> ImageBuilder | None:
    """The plugin builder to use, or None for this machine's."""
    chosen = builder if builder is not None else current_config().image_builder
    if chosen in (None, "local"):
        return None
    if chosen == "remote":
        raise ValueError(
            "image_builder='remote': a remote builder is a service of hosted Flyte, which this SDK does "
            "not call; build here (image_builder='local') or give an ImageBuilder"
        )
    if chosen == "local-podman":
        raise ValueError(
            "image_builder='local-podman': local builds use docker buildx or buildah, not podman"
        )
    if isinstance(chosen, str):
        raise ValueError(f"image_builder must be 'local' or an ImageBuilder, got {chosen!r}")
    if not isinstance(chosen, ImageBuilder):
        raise TypeError(
            f"image_builder {chosen!r} is not an ImageBuilder: it needs build_image(image, dry_run, wait, force) "
            "and get_checkers()"
        )
    return chosen


def check_builder(builder: Any = None) -> None:
    """Refuses a builder that cannot build here, before anything is tried."""
    _resolve(builder)


async def _exists(image: Image, builder: ImageBuilder) -> str | None:
    if image.is_reference:
        return image.uri  # a published image (or a configured reference), used as it is
    checkers = builder.get_checkers()
    if not checkers:
        return None  # nothing can tell: build
    repository = _repository(image)
    for checker in checkers:
        try:
            return await checker.image_exists(repository, image.tag, tuple(image.platform))
        except Exception:  # noqa: BLE001 - a checker that cannot tell passes to the next
            continue
    return None


async def outcome(
    image: Image, *, builder: Any = None, force: bool = False, progress: Progress | None = None
) -> BuildOutcome:
    """Builds ``image`` unless it exists (or ``force``), with the configured builder."""
    plugin = _resolve(builder)
    if plugin is None:
        return await asyncio.to_thread(build_image, image, force=force, progress=progress)
    start = time.monotonic()
    if not force:
        found = await _exists(image, plugin)
        if found:
            return BuildOutcome(found, built=False, seconds=time.monotonic() - start, tool=None)
    image.validate()
    try:
        result = await plugin.build_image(image, dry_run=False, wait=True, force=force)
    except ImageBuildError:
        raise
    except Exception as e:
        raise ImageBuildError(
            f"image builder {type(plugin).__name__} failed to build {image.uri}: {e}"
        ) from e
    if not isinstance(result, ImageBuild) or not result.uri:
        raise ImageBuildError(
            f"image builder {type(plugin).__name__} returned {result!r}, not an ImageBuild with a URI"
        )
    return BuildOutcome(result.uri, built=True, seconds=time.monotonic() - start, tool=type(plugin).__name__)


class ImageBuildEngine:
    """Builds images with the configured builder, or the one given."""

    ImageBuilderType = Literal["local", "local-podman", "remote"]

    @staticmethod
    async def image_exists(image: Image) -> str | None:
        """Its URI when the configured builder's checkers find ``image`` (this machine's builder
        asks the registry), else None."""
        return await _image_exists(image)

    @classmethod
    async def build(
        cls,
        image: Image,
        builder: ImageBuildEngine.ImageBuilderType | ImageBuilder | None = None,
        dry_run: bool = False,
        force: bool = False,
        wait: bool = True,
    ) -> ImageBuild:
        """Builds ``image`` (``await ImageBuildEngine.build(image)``) unless it exists;
        ``dry_run`` builds nothing."""
        return await _build(image, builder, dry_run, force, wait)


async def _image_exists(image: Image) -> str | None:
    if not isinstance(image, Image):
        raise TypeError(f"image_exists takes a flyte.Image, got {type(image).__name__}")
    plugin = _resolve(None)
    if plugin is not None:
        return await _exists(image, plugin)
    if image.is_reference:
        return image.uri
    return await RegistryChecker.image_exists(_repository(image), image.tag, tuple(image.platform))


def _repository(image: Image) -> str:
    assert image.name is not None  # an image with nothing to build is handled before
    return f"{image.registry}/{image.name}" if image.registry else image.name


async def _build(image: Image, builder: Any, dry_run: bool, force: bool, wait: bool) -> ImageBuild:
    import logging

    if not isinstance(image, Image):
        raise TypeError(f"build takes a flyte.Image, got {type(image).__name__}")
    plugin = _resolve(builder)
    if plugin is not None and (dry_run or not wait):
        return await plugin.build_image(image, dry_run=dry_run, wait=wait, force=force)
    if not wait:
        raise ValueError(
            "wait=False needs a builder that builds elsewhere; this machine's builds in this process"
        )
    if dry_run:
        render(image, lambda _version: [])
        return ImageBuild(uri=image.uri)
    log = logging.getLogger("flyte.build")
    done = await outcome(image, builder=builder, force=force, progress=log.info)
    return ImageBuild(uri=done.uri)
