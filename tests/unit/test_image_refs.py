"""``Image.from_ref_name``: an image configured by name (``flyte.init(images=...)`` or
``image.image_refs`` in the config file), looked up when it is used; layers build on it."""

from __future__ import annotations

from pathlib import Path

import pytest

import flyte
from flyte._imagebuild._dockerfile import render
from flyte._imagebuild._ensure import images_of
from flyte._internal._serialize import CodeRef, task_spec
from flyte.errors import InitializationError, InvalidImageNameError


def test_a_reference_is_the_configured_image() -> None:
    flyte.init(images={"gpu": "registry.example/gpu:1"})
    image = flyte.Image.from_ref_name("gpu")
    assert image.uri == "registry.example/gpu:1" and image.is_reference
    env = flyte.TaskEnvironment(name="ref_env", image=image)

    @env.task
    async def t() -> None: ...

    spec = task_spec(t, CodeRef("", "/code", "v1"), project="p", domain="d", org="o")
    assert spec.task_template.container.image == "registry.example/gpu:1"
    assert images_of([env]) == []  # nothing to build

    layered = image.with_pip_packages("six").clone(registry="localhost:5000")
    assert layered.uri.startswith("localhost:5000/gpu:") and not layered.is_reference
    assert render(layered, lambda _v: []).dockerfile.splitlines()[0] == "FROM registry.example/gpu:1"
    # The tag follows the configured image: another URI under the name builds another image.
    before = layered.uri
    flyte.init(images={"gpu": "registry.example/gpu:2"})
    assert image.with_pip_packages("six").clone(registry="localhost:5000").uri != before
    assert render(layered, lambda _v: []).dockerfile.splitlines()[0] == "FROM registry.example/gpu:2"


def test_references_come_from_the_config_file_and_init_wins(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "admin:\n  endpoint: dns:///localhost:1\nimage:\n  image_refs:\n    default: ghcr.io/org/base:7\n    gpu: ghcr.io/org/gpu:7\n"
    )
    flyte.init_from_config(str(config), images={"gpu": "elsewhere/gpu:8"})
    assert flyte.Image.from_ref_name().uri == "ghcr.io/org/base:7"
    assert flyte.Image.from_ref_name("gpu").uri == "elsewhere/gpu:8"


def test_unknown_references_and_bad_mappings_are_clear_errors() -> None:
    flyte.init(images={"gpu": "registry.example/gpu:1"})
    with pytest.raises(InvalidImageNameError, match="no image is configured under the name 'tpu'.*'gpu'"):
        _ = flyte.Image.from_ref_name("tpu").uri
    with pytest.raises(InitializationError, match="images must map image reference names"):
        flyte.init(images=["gpu"])
    with pytest.raises(ValueError, match="must be the name of an image reference"):
        flyte.Image.from_ref_name("")


def test_tasks_hand_their_references_to_the_tasks_they_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from flyte._image import IMAGE_REFS_ENV, image_refs

    flyte.init(images={"gpu": "registry.example/gpu:1"})
    env = flyte.TaskEnvironment(name="ref_env2", image=flyte.Image.from_ref_name("gpu"))

    @env.task
    async def t() -> None: ...

    spec = task_spec(t, CodeRef("", "/code", "v1"), project="p", domain="d", org="o")
    handed = {kv.key: kv.value for kv in spec.task_template.container.env}[IMAGE_REFS_ENV]
    # In the task's process (no init of its own), the references come from there.
    flyte.init()
    monkeypatch.setenv(IMAGE_REFS_ENV, handed)
    assert image_refs() == {"gpu": "registry.example/gpu:1"} == json.loads(handed)
    assert flyte.Image.from_ref_name("gpu").uri == "registry.example/gpu:1"


def test_an_image_cache_sent_on_carries_what_was_added() -> None:
    from flyte._build import ImageCache

    cache = ImageCache.from_transport(ImageCache(image_lookup={"a": "x:1"}).to_transport)
    cache.image_lookup["b"] = "y:2"
    assert ImageCache.from_transport(cache.to_transport).image_lookup == {"a": "x:1", "b": "y:2"}
