"""Building an :class:`~flyte.Image` on this machine and pushing it to its registry.

``docker buildx`` is used when a Docker daemon answers; otherwise ``buildah``, which needs no
daemon (by default with chroot isolation, which works as root in containers and VMs alike;
``BUILDAH_ISOLATION`` and buildah's storage settings, e.g. ``STORAGE_DRIVER=vfs``, are honoured
as buildah documents them). An image whose content-hashed tag is already in its registry is not
built again.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flyte._image import Image
from flyte._imagebuild import _registry
from flyte._imagebuild._credentials import CredentialsError, registry_auth, secret_mount_args
from flyte._imagebuild._dockerfile import render
from flyte._imagebuild._wheel import WheelError, sdk_wheels
from flyte.errors import ImageBuildError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOutcome:
    uri: str
    built: bool  # False when the registry had it already (or it is a published base image)
    seconds: float
    tool: str | None


def _docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def choose_tool() -> str:
    if _docker_daemon():
        return "docker"
    if shutil.which("buildah"):
        return "buildah"
    raise ImageBuildError(
        "no image builder here: install buildah (Debian/Ubuntu: apt-get install buildah) or start a "
        "Docker daemon"
    )


def _stream(argv: list[str], progress: Progress, env: dict[str, str]) -> None:
    """Runs a build tool, passing each output line on; a failure names the command and ends
    with the tool's last lines."""
    tail: collections.deque[str] = collections.deque(maxlen=30)
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        )
    except OSError as e:
        raise ImageBuildError(f"cannot start {argv[0]}: {e}") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        tail.append(line)
        progress(line)
    if proc.wait() != 0:
        shown = " ".join(argv[:3])
        raise ImageBuildError(f"`{shown} ...` failed (exit {proc.returncode}):\n" + "\n".join(tail))


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BUILDAH_ISOLATION", "chroot")
    return env


def _buildah(
    image: Image,
    uri: str,
    context: Path,
    dockerfile: Path,
    auth: Path | None,
    progress: Progress,
    secrets: list[str],
) -> None:
    env = _tool_env()
    platforms = ",".join(image.platform)
    credentials = [] if auth is None else ["--authfile", str(auth)]
    push = [*([] if not _registry.parse(uri).insecure else ["--tls-verify=false"]), *credentials]
    build = [
        "buildah",
        "build",
        "--layers",
        "--platform",
        platforms,
        "-f",
        str(dockerfile),
        *credentials,
        *secrets,
    ]
    base_image = image.resolved_base()
    if base_image is not None and _registry.parse(base_image).insecure:
        build.append("--tls-verify=false")
    if len(image.platform) > 1:
        # A fresh manifest list, or buildah would add to the one a previous build left.
        subprocess.run(["buildah", "manifest", "rm", uri], capture_output=True, env=env, check=False)
        _stream([*build, "--manifest", uri, str(context)], progress, env)
        _check_platforms(image, uri, env)
        _stream(["buildah", "manifest", "push", "--all", *push, uri, f"docker://{uri}"], progress, env)
    else:
        _stream([*build, "-t", uri, str(context)], progress, env)
        _stream(["buildah", "push", *push, uri, f"docker://{uri}"], progress, env)


def _check_platforms(image: Image, uri: str, env: dict[str, str]) -> None:
    """Refuses to push an image index that lacks a platform asked for. buildah builds a
    platform the base image does not have from the base it has, and its layer cache can then
    fold two platforms' builds into one entry."""
    inspected = subprocess.run(
        ["buildah", "manifest", "inspect", uri], capture_output=True, text=True, env=env, check=False
    )
    if inspected.returncode != 0:
        raise ImageBuildError(f"cannot read the image index built for {uri}: {inspected.stderr.strip()}")
    found = set()
    for entry in json.loads(inspected.stdout).get("manifests", []):
        platform = entry.get("platform", {})
        found.add(f"{platform.get('os')}/{platform.get('architecture')}")
    missing = [p for p in image.platform if p not in found]
    if missing:
        base = image.resolved_base() or f"(the FROM of {image.dockerfile})"
        raise ImageBuildError(
            f"the image index built for {uri} has no {', '.join(missing)} image (it has "
            f"{', '.join(sorted(found)) or 'none'}): its base image {base} probably has no "
            "such variant; build from a multi-platform base or set platform= to what the base has"
        )


def _docker(
    image: Image,
    uri: str,
    context: Path,
    dockerfile: Path,
    auth: Path | None,
    progress: Progress,
    secrets: list[str],
) -> None:
    argv = [
        "docker",
        "buildx",
        "build",
        "--progress",
        "plain",
        "--platform",
        ",".join(image.platform),
        *secrets,
    ]
    argv += ["-f", str(dockerfile), "-t", uri, "--push", str(context)]
    env = dict(os.environ)
    if auth is not None:
        env["DOCKER_CONFIG"] = str(auth.parent)  # Docker reads config.json from there
    _stream(argv, progress, env)


def build_image(
    image: Image,
    *,
    force: bool = False,
    progress: Progress | None = None,
    tool: str | None = None,
) -> BuildOutcome:
    """Builds and pushes ``image`` unless its registry has it; returns where it is."""
    say: Progress = progress or (lambda _line: None)
    start = time.monotonic()
    uri = image.uri
    if image.is_reference:
        # A published image (or a configured reference) used as it is: nothing to build.
        return BuildOutcome(uri, built=False, seconds=0.0, tool=None)
    if image.registry is None:
        raise ImageBuildError(
            f"image {uri} has no registry to push to; give one: Image.from_debian_base(registry=...), "
            ".clone(registry=...), or `image.registry` in the config"
        )
    try:
        with registry_auth(image) as auth:
            return _build(image, uri, force, say, tool, auth, start)
    except CredentialsError as e:
        raise ImageBuildError(str(e)) from None


def _build(
    image: Image,
    uri: str,
    force: bool,
    say: Progress,
    tool: str | None,
    auth: Path | None,
    start: float,
) -> BuildOutcome:
    if not force:
        try:
            if _registry.manifest_exists(uri, auth):
                say(f"{uri} is in its registry already")
                return BuildOutcome(uri, built=False, seconds=time.monotonic() - start, tool=None)
        except _registry.RegistryError as e:
            raise ImageBuildError(str(e)) from None
    chosen = tool or choose_tool()
    with tempfile.TemporaryDirectory(prefix="flyte-image-") as scratch:
        root = Path(scratch)
        context_dir = root / "context"
        try:
            built = render(image, lambda version: sdk_wheels(version, image.platform, root / "wheels"))
        except (OSError, ValueError, WheelError) as e:
            raise ImageBuildError(f"cannot prepare {uri}: {e}") from None
        if image.dockerfile is not None:
            context_dir, dockerfile = image.dockerfile.parent, image.dockerfile
        else:
            built.write(context_dir)
            dockerfile = context_dir / "Dockerfile"
        say(f"building {uri} for {', '.join(image.platform)} with {chosen}")
        with secret_mount_args(image) as secrets:
            if chosen == "docker":
                _docker(image, uri, context_dir, dockerfile, auth, say, secrets)
            else:
                _buildah(image, uri, context_dir, dockerfile, auth, say, secrets)
    return BuildOutcome(uri, built=True, seconds=time.monotonic() - start, tool=chosen)
