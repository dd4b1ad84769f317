"""Images built before the tasks that name them are sent to a backend that pulls them.

``flyte run`` (on a backend) and ``flyte deploy`` call this with the environments they send. A
cluster pulls each task's image, so every Image that is not in its registry yet is built and
pushed first; the embedded backend runs tasks in environments on its own machine (it says so
in a response header), so nothing is built for it. Progress goes to the ``flyte.build`` logger,
which the CLI shows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flyte._environment import Environment, TaskEnvironment
from flyte._image import Image, default_image, is_unpublished_default, placed
from flyte._imagebuild._builder import ImageBuildError
from flyte._imagebuild._engine import check_builder, outcome

if TYPE_CHECKING:
    from flyte._remote._client import BackendClient

log = logging.getLogger("flyte.build")


def with_dependencies(envs: Iterable[Environment]) -> list[Environment]:
    found: dict[int, Environment] = {}
    stack = list(envs)
    while stack:
        env = stack.pop()
        if id(env) not in found:
            found[id(env)] = env
            stack.extend(env.depends_on)
    return list(found.values())


def images_of(envs: Iterable[Environment]) -> list[Image]:
    """The images these environments' tasks run in that are built from a definition."""
    images: dict[str, Image] = {}
    for env in envs:
        tasks = env.tasks.values() if isinstance(env, TaskEnvironment) else ()
        for image in [env.image, *(getattr(t, "image", None) for t in tasks)]:
            if image in (None, "auto"):
                image = default_image()
            if isinstance(image, Image) and not image.is_reference:
                image = placed(image)
                images.setdefault(image.uri, image)
    return list(images.values())


async def ensure_built(envs: Iterable[TaskEnvironment], client: BackendClient) -> list[str]:
    """Builds and pushes what is missing; returns the URIs built."""
    images = images_of(with_dependencies(envs))
    if not images or not await client.runs_images():
        return []
    check_builder()

    if any(is_unpublished_default(i) for i in images):
        raise ImageBuildError(
            "tasks that name no image run in the default image (Flyte's Debian base with this SDK), "
            "which is not published for this SDK: set image.registry in the config to have it built "
            "and pushed there, or give the tasks an image (flyte run/deploy --image URI)"
        )
    built = []
    for image in images:
        done = await outcome(image, progress=log.info)
        if done.built:
            built.append(done.uri)
    return built
