"""Image builders a plugin brings (``flyte.extend.ImageBuilder`` with its checkers): given to
``flyte.init(image_builder=...)`` or to ``ImageBuildEngine.build``, they build what
``flyte.build`` and ``flyte.build_images`` ask for, and their checkers decide what exists."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import flyte
from flyte.errors import ImageBuildError, InitializationError
from flyte.extend import ImageBuildEngine, ImageBuilder, ImageChecker


class Registry:
    """What the fake registry behind the checker holds."""

    tags: set[str] = set()


class TagChecker:
    @classmethod
    async def image_exists(
        cls, repository: str, tag: str, arch: tuple[str, ...] = ("linux/amd64",)
    ) -> str | None:
        return f"{repository}:{tag}" if tag in Registry.tags else None


class BrokenChecker:
    @classmethod
    async def image_exists(
        cls, repository: str, tag: str, arch: tuple[str, ...] = ("linux/amd64",)
    ) -> str | None:
        raise ConnectionError("registry unreachable")


class RecordingBuilder:
    def __init__(self, fail: bool = False) -> None:
        self.builds: list[tuple[str, bool, bool]] = []
        self.fail = fail

    async def build_image(
        self, image: flyte.Image, dry_run: bool, wait: bool = True, force: bool = False
    ) -> Any:
        from flyte._build import ImageBuild

        if self.fail:
            raise RuntimeError("out of disk")
        self.builds.append((image.uri, dry_run, force))
        if not dry_run:
            Registry.tags.add(image.tag)
        return ImageBuild(uri=f"built/{image.uri}")

    def get_checkers(self) -> list[type[ImageChecker]] | None:
        return [BrokenChecker, TagChecker]


@pytest.fixture
def image() -> flyte.Image:
    Registry.tags = set()
    return flyte.Image.from_debian_base(
        registry="registry.example", name="plug", install_flyte=False
    ).with_pip_packages("six")


def test_a_plugin_builder_builds_what_is_missing(image: flyte.Image) -> None:
    builder = RecordingBuilder()
    assert isinstance(builder, ImageBuilder) and isinstance(TagChecker(), ImageChecker)
    flyte.init(image_builder=builder)
    assert asyncio.run(ImageBuildEngine.image_exists(image)) is None  # the broken checker passes on
    first = flyte.build(image)
    assert first.uri == f"built/{image.uri}" and builder.builds == [(image.uri, False, False)]
    # Its checker now finds it: not built again, unless forced.
    assert flyte.build(image).uri == image.uri and len(builder.builds) == 1
    flyte.build(image, force=True)
    assert builder.builds[-1] == (image.uri, False, True)
    env = flyte.TaskEnvironment(name="plugged", image=image)
    assert flyte.build_images(env).image_lookup == {"plugged": image.uri}


def test_a_builder_given_to_the_engine_and_dry_runs(image: flyte.Image) -> None:
    builder = RecordingBuilder()
    dry = asyncio.run(ImageBuildEngine.build(image, builder=builder, dry_run=True))
    assert dry.uri == f"built/{image.uri}" and builder.builds == [(image.uri, True, False)]
    assert asyncio.run(ImageBuildEngine.build(image, builder=builder)).uri == f"built/{image.uri}"


def test_builders_that_cannot_build_are_refused(image: flyte.Image) -> None:
    with pytest.raises(ImageBuildError, match="RecordingBuilder failed to build .*out of disk"):
        asyncio.run(ImageBuildEngine.build(image, builder=RecordingBuilder(fail=True)))
    with pytest.raises(InitializationError, match="not an ImageBuilder"):
        flyte.init(image_builder=object())
    flyte.init(image_builder="remote")
    with pytest.raises(ValueError, match="remote builder is a service of hosted Flyte"):
        flyte.build(image)
    with pytest.raises(ValueError, match="not podman"):
        asyncio.run(ImageBuildEngine.build(image, builder="local-podman"))
