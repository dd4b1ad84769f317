"""An image built from its definition, pushed, pulled back and running one of our tasks.

`flyte build` renders the environment's image (Flyte's Debian base, apt and pip packages, an
environment variable, this SDK's wheel) into a Dockerfile, builds it with buildah and pushes it
to the test registry; a second build finds the tag there and builds nothing. Then the image is
deleted locally, pulled back, and a task runs inside it the way a cluster runs a pod: its
container args, with code and data under a folder the container sees.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from flyte import _storage as st
from flyte._imagebuild import _registry
from flyte._imagebuild._wheel import host_platform

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from containers import PYTHON, Registry, buildah, flyte_cli, lock  # noqa: E402
from podspec import pod_for  # noqa: E402

MODULE = """
import os
import subprocess
from pathlib import Path

import flyte

image = (
    flyte.Image.from_debian_base(
        python_version={python},
        registry="{registry}",
        name="flyte-task",
        platform="{platform}",
    )
    .with_apt_packages("jq")
    .with_pip_packages("six==1.16.0")
    .with_requirements("requirements.txt")
    .with_uv_project("uvproj/pyproject.toml")
    .with_commands(["mkdir -p /app/data", "echo made-at-build > /app/data/marker"])
    .with_source_file("settings.toml", dst="/app/settings.toml")
    .with_source_folder("assets", dst="/app/assets")
    .with_dockerignore(".dockerignore")
    .with_workdir("/app")
    .with_env_vars({{"GREETING": "hello"}})
)

env = flyte.TaskEnvironment(name="imaged", image=image)

script_env = flyte.TaskEnvironment(
    name="scripted",
    image=flyte.Image.from_uv_script(
        "job.py", name="uv-job", registry="{registry}", python_version={python}, platform="{platform}"
    ),
)


@env.task
async def inside(who: str) -> str:
    import attrs
    import idna
    import six

    jq = subprocess.run(
        ["jq", "-r", ".v"], input='{{"v": "jq works"}}', capture_output=True, text=True, check=True
    ).stdout.strip()
    assets = sorted(p.name for p in Path("/app/assets").iterdir())
    return (
        f"{{os.environ['GREETING']}} {{who}}, six {{six.__version__}}, attrs {{attrs.__version__}}, "
        f"idna {{idna.__version__}}, {{jq}}, {{Path('/app/data/marker').read_text().strip()}}, "
        f"{{Path('/app/settings.toml').read_text().strip()}}, assets {{assets}}, cwd {{os.getcwd()}}"
    )
"""

JOB = """\
# /// script
# requires-python = ">=3.10"
# dependencies = ["six==1.16.0"]
# ///
print("job")
"""

UV_PROJECT = """\
[project]
name = "uvproj"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["idna==3.7"]
"""


def _project(work: Path, registry: Registry, platform: str) -> Path:
    """A user's project: the workflow module and every file its images read."""
    work.mkdir()
    (work / "requirements.txt").write_text("attrs==23.2.0\n")
    (work / "settings.toml").write_text("mode = 'image'\n")
    (work / "assets").mkdir()
    (work / "assets" / "model.bin").write_text("weights")
    (work / "assets" / "scratch.tmp").write_text("left out by .dockerignore")
    (work / ".dockerignore").write_text("*.tmp\n")
    (work / "job.py").write_text(JOB)
    (work / "uvproj").mkdir()
    (work / "uvproj" / "pyproject.toml").write_text(UV_PROJECT)
    lock(work / "uvproj", "uv", "--native-tls")
    wf = work / "imaged_wf.py"
    wf.write_text(textwrap.dedent(MODULE.format(python=PYTHON, registry=registry.host, platform=platform)))
    return wf


def _load(path: Path) -> Any:
    from flyte._internal._modules import load_module

    return load_module(path, path.parent)


def test_build_push_pull_and_run_a_task_inside(
    registry: Registry, debian_python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = host_platform()
    assert platform is not None, "these tests build for this machine's platform"
    work = tmp_path / "project"
    wf = _project(work, registry, platform)

    started = time.monotonic()
    built = flyte_cli(work, "-of", "json", "build", wf.name, "--all")
    cold = time.monotonic() - started
    assert built.returncode == 0, built.stderr[-5000:]
    rows = {row["environment"]: row for row in json.loads(built.stdout)}
    assert all(row["status"].startswith("built") for row in rows.values()), rows
    uri = rows["imaged"]["image"]
    assert uri.startswith(f"{registry.host}/flyte-task:")
    assert _registry.manifest_exists(uri) and _registry.manifest_exists(rows["scripted"]["image"])

    # The same definition again: the tag is in the registry, nothing is built.
    again = flyte_cli(work, "-of", "json", "build", wf.name, "imaged")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)[0]["status"] == "in the registry already"

    # A change to the last layer rebuilds from there on; the earlier steps come from the cache.
    wf.write_text(wf.read_text().replace('"GREETING": "hello"', '"GREETING": "hi"'))
    started = time.monotonic()
    changed = flyte_cli(work, "-of", "json", "build", wf.name, "imaged")
    cached = time.monotonic() - started
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "Using cache" in changed.stderr, changed.stderr[-3000:]
    new_uri = json.loads(changed.stdout)[0]["image"]
    assert new_uri != uri
    print(f"\nimage build: cold {cold:.0f}s, last layer changed {cached:.0f}s")

    # Pulled back from the registry, the image runs a task the way a pod does.
    buildah("rmi", "-f", new_uri)
    ctr = buildah("from", "--tls-verify=false", new_uri).stdout.strip()
    try:
        size = buildah("images", "--format", "{{.Size}}", new_uri).stdout.strip()
        print(f"image size: {size}")
        monkeypatch.chdir(work)  # the image's files are named relative to the project
        module = _load(wf)
        data = tmp_path / "data"
        counter = iter(range(1000))

        def uri_for(*parts: str) -> str:
            return "file://" + "/".join([str(data), str(next(counter)), *parts])

        pod = pod_for(module.inside, work, {"who": "pod"}, uri_for)
        (tmp_path / "pod").mkdir()
        env = [f"--env={k}={v}" for k, v in pod.env.items()]
        run = buildah(
            "run",
            f"--volume={tmp_path}:{tmp_path}",
            f"--workingdir={tmp_path / 'pod'}",
            *env,
            ctr,
            "--",
            *pod.args,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        buildah("rm", ctr, check=False)
    from flyteidl2.core import literals_pb2

    outputs = literals_pb2.LiteralMap.FromString(st.get_bytes_sync(pod.output_prefix + "outputs.pb"))
    assert outputs.literals["o0"].scalar.primitive.string_value == (
        "hi pod, six 1.16.0, attrs 23.2.0, idna 3.7, jq works, made-at-build, mode = 'image', "
        f"assets ['model.bin'], cwd {tmp_path / 'pod'}"
    )


def test_a_definition_with_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    wf = tmp_path / "bad_wf.py"
    wf.write_text(
        "import flyte\n"
        "image = flyte.Image.from_debian_base(name='x', registry='127.0.0.1:1')"
        ".with_requirements('requirements.txt')\n"
        "env = flyte.TaskEnvironment(name='bad', image=image)\n"
    )
    out = flyte_cli(tmp_path, "build", wf.name)
    assert out.returncode != 0
    assert "requirements file requirements.txt does not exist" in out.stderr, out.stderr


@pytest.mark.parametrize("builder", ["remote"])
def test_an_unavailable_builder_is_refused(tmp_path: Path, builder: str) -> None:
    wf = tmp_path / "wf.py"
    wf.write_text("import flyte\nenv = flyte.TaskEnvironment(name='e')\n")
    (tmp_path / "config.yaml").write_text(f"image:\n  builder: {builder}\n")
    out = flyte_cli(tmp_path, "--config", "config.yaml", "build", wf.name)
    assert out.returncode != 0 and "remote builder is a service of hosted Flyte" in " ".join(
        out.stderr.split()
    ), out.stderr
