"""``flyte.build``: build an image and push it to its registry, unless it is there already."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyte._image import Image
from flyte._initialize import current_config
from flyte.syncify import syncify

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).


@dataclass
class ImageBuild:
    """What a build produced.

    ``uri`` is where the image is. ``remote_run`` is the run of a remote (cluster-side) image
    builder; this SDK builds on this machine, so it is always ``None``.
    """

    uri: str | None
    remote_run: Any = None
    #: The run of the remote builder that built it; None: built on this machine.
    build_run: Any = None


def _check_builder() -> None:
    builder = current_config().image_builder
    if builder != "local":
        raise ValueError(
            f"image_builder={builder!r}: only the local builder (docker buildx or buildah on this machine) "
            "is available; a remote builder is a service of hosted Flyte, which this SDK does not call"
        )


@syncify
async def build(image: Image, dry_run: bool = False, force: bool = False, wait: bool = True) -> ImageBuild:
    """Builds ``image`` and pushes it to its registry; an image whose tag (a hash of its
    content) is in the registry already is not built again, unless ``force``. With ``dry_run``
    nothing is built: the Dockerfile that would be is checked (every file it needs exists) and
    the URI returned. Progress goes to the ``flyte.build`` logger. ``await build.aio(...)`` in
    async code."""
    import asyncio

    return await asyncio.to_thread(_build_now, image, dry_run, force, wait)


def _build_now(image: Image, dry_run: bool, force: bool, wait: bool) -> ImageBuild:
    import logging

    from flyte._imagebuild._builder import build_image
    from flyte._imagebuild._dockerfile import render

    if not isinstance(image, Image):
        raise TypeError(f"flyte.build() takes a flyte.Image, got {image!r}")
    if not wait:
        raise ValueError("wait=False needs a remote builder; the local builder builds in this process")
    _check_builder()
    if dry_run:
        render(image, lambda _version: [])
        return ImageBuild(uri=image.uri)
    log = logging.getLogger("flyte.build")
    outcome = build_image(image, force=force, progress=log.info)
    return ImageBuild(uri=outcome.uri)
