"""`flyte deploy` and `flyte run` on a backend build what is missing before sending tasks that
name it; the embedded backend, which runs tasks in environments on its own machine, needs no
image and gets none built."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flyte
from flyte._imagebuild import _registry
from flyte._imagebuild._ensure import ensure_built, images_of, with_dependencies
from flyte._imagebuild._wheel import host_platform
from flyte._remote._client import BackendClient, run_sync

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import PYTHON, Registry  # noqa: E402

MODULE = """
import flyte

base = flyte.Image.from_debian_base(
    python_version={python}, registry="{registry}", name="{name}", platform="{platform}"
)
shared = flyte.TaskEnvironment(name="shared_{name}", image=base.with_env_vars({{"ROLE": "shared"}}))
main_env = flyte.TaskEnvironment(name="main_{name}", image=base.with_env_vars({{"ROLE": "main"}}))
main_env.add_dependency(shared)
published = flyte.TaskEnvironment(name="published_{name}", image="registry.example.com/team/ready:1")


@shared.task
async def helper(x: int) -> int:
    return x + 1


@main_env.task
async def entry(x: int) -> int:
    return await helper(x)


@published.task
async def other() -> int:
    return 0
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[str]:
    from flyte import _core

    b = _core.Backend(str(tmp_path / "backend"), str(Path(sys.executable).parent), port=0)
    try:
        yield b.endpoint
    finally:
        b.shutdown()


def _module(tmp_path: Path, registry_host: str, name: str) -> Any:
    from flyte._internal._modules import load_module

    platform = host_platform()
    path = tmp_path / f"{name}_wf.py"
    path.write_text(
        textwrap.dedent(MODULE.format(python=PYTHON, registry=registry_host, name=name, platform=platform))
    )
    return load_module(path, tmp_path)


def test_the_images_an_environment_needs(tmp_path: Path) -> None:
    m = _module(tmp_path, "127.0.0.1:1", "needs")
    envs = with_dependencies([m.main_env])
    assert {e.name for e in envs} == {"main_needs", "shared_needs"}
    uris = {i.uri for i in images_of(envs)}
    assert uris == {m.main_env.image.uri, m.shared.image.uri}
    # A published image (a URI string) is never built.
    assert images_of([m.published]) == []


def test_the_embedded_backend_needs_no_images(tmp_path: Path, backend: str) -> None:
    # The registry named here does not exist: deploying and running never go near it.
    m = _module(tmp_path, "127.0.0.1:1", "embedded")
    client = BackendClient(backend, insecure=True)
    assert run_sync(client.runs_images()) is False
    assert run_sync(ensure_built([m.main_env], client)) == []
    flyte.init(endpoint=backend, insecure=True, root_dir=tmp_path)
    assert flyte.deploy(m.main_env)[0].version
    assert flyte.run(m.entry, x=1).wait().result == 2


class PullingBackend(BackendClient):
    """The embedded backend answering as a cluster would: it pulls the images tasks name."""

    async def runs_images(self) -> bool:
        return True


def test_a_backend_that_pulls_images_gets_them_built_first(
    tmp_path: Path, backend: str, registry: Registry, debian_python: str
) -> None:
    m = _module(tmp_path, registry.host, "pulled")
    client = PullingBackend(backend, insecure=True)
    built = run_sync(ensure_built([m.main_env], client))
    assert set(built) == {m.main_env.image.uri, m.shared.image.uri}
    assert all(_registry.manifest_exists(uri) for uri in built)
    # Everything is in the registry now: the next submission builds nothing.
    assert run_sync(ensure_built([m.main_env], client)) == []

    # flyte.build_images: the images of environments (and their dependencies) by environment
    # name; what is in the registry is not built again, what is not is built and pushed.
    cache = flyte.build_images(m.main_env)
    assert cache.image_lookup == {"main_pulled": m.main_env.image.uri, "shared_pulled": m.shared.image.uri}
    extra = flyte.TaskEnvironment(
        name="extra_pulled", image=m.main_env.image.with_env_vars({"ROLE": "extra"}), depends_on=[m.main_env]
    )
    assert not _registry.manifest_exists(extra.image.uri)
    more = flyte.build_images(extra, seed_cache=cache)
    assert more.image_lookup == {**cache.image_lookup, "extra_pulled": extra.image.uri}
    assert _registry.manifest_exists(extra.image.uri)
    assert type(more).from_transport(more.to_transport).image_lookup == more.image_lookup
    with pytest.raises(ValueError, match="copy_style must be one of"):
        flyte.build_images(extra, copy_style="some")


DEFAULT_MODULE = """
import flyte

env = flyte.TaskEnvironment(name="plain_{name}")


@env.task
async def hello() -> str:
    return "hi"
"""


def _plain(tmp_path: Path, name: str) -> Any:
    from flyte._internal._modules import load_module

    path = tmp_path / f"plain_{name}.py"
    path.write_text(textwrap.dedent(DEFAULT_MODULE.format(name=name)))
    return load_module(path, tmp_path)


def test_tasks_without_an_image_get_the_default_one_from_the_configured_registry(
    tmp_path: Path, backend: str, registry: Registry, debian_python: str
) -> None:
    from flyte._image import DEFAULT_IMAGE_ENV
    from flyte._imagebuild._builder import ImageBuildError
    from flyte._internal._serialize import CodeRef, task_spec

    m = _plain(tmp_path, "default")
    client = PullingBackend(backend, insecure=True)
    # Not configured: the default image is not published for this SDK, which is said up front.
    flyte.init(endpoint=backend, insecure=True)
    with pytest.raises(ImageBuildError, match="image.registry"):
        run_sync(ensure_built([m.env], client))

    # image.registry: the default image is built and pushed there, and tasks name it.
    config = tmp_path / "config.yaml"
    platform = host_platform()
    # This machine's platform only (the test registry's base has no other), as for a cluster
    # of this architecture.
    config.write_text(
        f"admin:\n  endpoint: {backend}\n  insecure: true\n"
        f"image:\n  registry: {registry.host}\n  platforms: [{platform}]\n"
    )
    flyte.init_from_config(str(config))
    from flyte._image import default_image

    expected = default_image().uri
    assert expected.startswith(f"{registry.host}/flyte:")
    assert run_sync(ensure_built([m.env], client)) == [expected]
    code = CodeRef(bundle_uri="", root=str(tmp_path), version="v1")
    spec = task_spec(m.hello, code, project="p", domain="d", org="o")
    container = spec.task_template.container
    assert container.image == expected
    # The container knows what "auto" meant, so child tasks it submits name the same image.
    assert {kv.key: kv.value for kv in container.env}[DEFAULT_IMAGE_ENV] == expected


CODED_MODULE = """
import flyte

image = (
    flyte.Image.from_base("{base}")
    .clone(name="coded", registry="{registry}", platform="{platform}")
    .with_workdir("/srv")
    .with_code_bundle()
)
env = flyte.TaskEnvironment(name="coded_{name}", image=image)


@env.task
async def where() -> str:
    return __file__
"""


def test_code_travels_in_the_image_when_no_bundle_is_sent(
    tmp_path: Path, backend: str, registry: Registry, debian_python: str
) -> None:
    from containers import buildah

    from flyte._internal._modules import load_module

    project = tmp_path / "proj"
    project.mkdir()
    path = project / "coded_wf.py"
    path.write_text(
        textwrap.dedent(
            CODED_MODULE.format(
                base=debian_python, registry=registry.host, platform=host_platform(), name="b"
            )
        )
    )
    m = load_module(path, project)
    flyte.init(root_dir=project)
    # With a code bundle the image is the plain one; without, the code is built into it.
    plain = flyte.build_images(m.env).image_lookup["coded_b"]
    coded = flyte.build_images(m.env, copy_style="none").image_lookup["coded_b"]
    assert plain != coded and _registry.manifest_exists(coded)
    ctr = buildah("from", "--tls-verify=false", coded).stdout.strip()
    try:
        shown = buildah("run", ctr, "--", "cat", "/srv/coded_wf.py").stdout
    finally:
        buildah("rm", ctr, check=False)
    assert "async def where()" in shown

    # A cluster is told to read the code where the image has it.
    from flyte._image import code_placement
    from flyte._remote._submit import code_in_image

    client = PullingBackend(backend, insecure=True)
    with code_placement("none", project):
        assert code_in_image(m.where, client) == "/srv"
    assert code_in_image(m.where, BackendClient(backend, insecure=True)) is None
