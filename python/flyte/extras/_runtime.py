"""Running a container image on this machine: with Docker when a daemon answers, else with
buildah (no daemon; what image builds here use too). ``FLYTE_CONTAINER_RUNTIME`` (``docker``
or ``buildah``) chooses explicitly."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from flyte._imagebuild._builder import choose_tool

#: Chooses the program that runs containers here.
RUNTIME_ENV = "FLYTE_CONTAINER_RUNTIME"


@dataclass(frozen=True)
class Finished:
    returncode: int
    #: What the container wrote to stdout and stderr.
    logs: str


def _tool() -> str:
    chosen = os.environ.get(RUNTIME_ENV, "").strip()
    if chosen:
        if chosen not in ("docker", "buildah"):
            raise RuntimeError(f"{RUNTIME_ENV}={chosen!r}: choose docker or buildah")
        if shutil.which(chosen) is None:
            raise RuntimeError(f"{RUNTIME_ENV}={chosen}, but {chosen} is not installed here")
        return chosen
    try:
        return choose_tool()
    except Exception:  # noqa: BLE001 - reworded for running rather than building
        raise RuntimeError(
            "a container task needs a container runtime here: start a Docker daemon or install buildah "
            "(Debian/Ubuntu: apt-get install buildah)"
        ) from None


def run_container(image: str, args: list[str], volumes: dict[str, str], env: dict[str, str]) -> Finished:
    """Runs ``args`` in a container of ``image`` (the image's entrypoint is kept with Docker; buildah
    runs ``args`` as the command), with host paths bound at container paths (``volumes``)."""
    tool = _tool()
    if tool == "docker":
        argv = ["docker", "run", "--rm"]
        for host, inside in volumes.items():
            argv += ["-v", f"{host}:{inside}"]
        for key, value in env.items():
            argv += ["-e", f"{key}={value}"]
        done = subprocess.run([*argv, image, *args], capture_output=True, text=True, check=False)
        return Finished(done.returncode, done.stdout + done.stderr)
    tool_env = {**os.environ, "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot")}
    made = subprocess.run(
        ["buildah", "from", "--pull=missing", "--quiet", image],
        capture_output=True,
        text=True,
        env=tool_env,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"could not get image {image}: {made.stderr.strip() or made.stdout.strip()}")
    container = made.stdout.strip().splitlines()[-1]
    try:
        argv = ["buildah", "run"]
        for host, inside in volumes.items():
            argv += ["--volume", f"{host}:{inside}"]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        done = subprocess.run(
            [*argv, container, "--", *args], capture_output=True, text=True, env=tool_env, check=False
        )
        return Finished(done.returncode, done.stdout + done.stderr)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, env=tool_env, check=False)
