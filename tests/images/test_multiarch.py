"""One image for linux/amd64 and linux/arm64: built here (arm64's RUN steps under qemu-user-static),
pushed as one manifest list, and each platform's image pulled back and run.

The image is a user's own Dockerfile (`Image.from_dockerfile`), which needs no SDK wheel: the
default image's arm64 variant takes this SDK cross-built for arm64 (`make wheelhouse`), which is
too slow to build on every test run.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.request
from pathlib import Path

import pytest

import flyte
from flyte._imagebuild import _registry
from flyte._imagebuild._builder import ImageBuildError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from containers import Registry, buildah  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/arm64")


def _index(uri: str) -> dict:
    ref = _registry.parse(uri)
    request = urllib.request.Request(
        f"{ref.base_url}/v2/{ref.repository}/manifests/{ref.tag}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, "
            "application/vnd.docker.distribution.manifest.list.v2+json"
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _run_in(uri: str, platform: str, *argv: str) -> str:
    ctr = buildah("from", "--tls-verify=false", "--platform", platform, f"docker://{uri}").stdout.strip()
    try:
        return buildah("run", ctr, "--", *argv).stdout.strip()
    finally:
        buildah("rm", ctr, check=False)


def test_dockerfile_image_for_two_platforms(
    registry: Registry, debian_python_multiarch: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {debian_python_multiarch}\n"
        "COPY greeting.txt /etc/greeting.txt\n"
        "RUN python -c \"import platform; open('/etc/built-on', 'w').write(platform.machine())\"\n"
    )
    (tmp_path / "greeting.txt").write_text("hello from a Dockerfile\n")
    image = flyte.Image.from_dockerfile(
        tmp_path / "Dockerfile", registry=registry.host, name="two-platforms", platform=PLATFORMS
    )

    built = flyte.build(image)
    assert built.uri == image.uri

    index = _index(image.uri)
    listed = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index.get("manifests", [])
    )
    assert listed == sorted(PLATFORMS), index

    machines = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
    for platform, machine in machines.items():
        # The RUN step ran as that platform (under emulation for arm64), and so does the image.
        assert _run_in(image.uri, platform, "cat", "/etc/built-on") == machine
        shown = _run_in(image.uri, platform, "python", "-c", "import platform; print(platform.machine())")
        assert shown == machine
        assert _run_in(image.uri, platform, "cat", "/etc/greeting.txt") == "hello from a Dockerfile"

    # The manifest list's tag is in the registry: building again builds nothing.
    assert _registry.manifest_exists(image.uri)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flyte.build"):
        again = flyte.build(image)
    assert again.uri == image.uri
    assert f"{image.uri} is in its registry already" in caplog.messages
    assert not any(m.startswith("building ") for m in caplog.messages)


def test_a_platform_the_base_image_lacks_is_refused_not_pushed(
    registry: Registry, debian_python: str, tmp_path: Path
) -> None:
    # debian_python is linux/amd64 only.
    (tmp_path / "Dockerfile").write_text(f"FROM {debian_python}\nENV WHERE=nowhere\n")
    image = flyte.Image.from_dockerfile(
        tmp_path / "Dockerfile", registry=registry.host, name="half-platforms", platform=PLATFORMS
    )
    # buildah folds both builds into one index entry; which platform it labels that entry with
    # varies from build to build, so either may be the one reported missing.
    with pytest.raises(ImageBuildError, match=r"has no linux/(arm64|amd64) image") as raised:
        flyte.build(image)
    assert "Dockerfile" in str(raised.value) and "probably has no such variant" in str(raised.value)
    assert not _registry.manifest_exists(image.uri)
