"""An :class:`~flyte.Image` rendered as a Dockerfile and the build context it reads.

Each layer of the image becomes its own build step, in the image's order, so a builder's layer
cache rebuilds only from the first step that changed. Files a step needs (requirements, lock
files, source folders, this SDK's wheel) are staged under ``_flyte/<step>/`` in the context;
a ``.dockerignore`` given with ``with_dockerignore`` applies to the staged source folders.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flyte._image import (
    _SKIPPED_DIRS,
    AptPackages,
    CodeBundleLayer,
    CodeFiles,
    Commands,
    CopyConfig,
    DockerIgnore,
    Env,
    FlyteSdk,
    Image,
    Layer,
    PipOptions,
    PipPackages,
    PoetryProject,
    Requirements,
    UVProject,
    UVScript,
    WorkDir,
)
from flyte._imagebuild._registry import qualified
from flyte._secret import SECRETS_MOUNT_PATH, Secret

# Build-time scratch inside the image; removed by the step that used it where it is large.
_STAGE = "/tmp/flyte-build"
_PIP_CACHE = "--mount=type=cache,target=/root/.cache/pip"
_PIP = f"RUN {_PIP_CACHE} python -m pip install --disable-pip-version-check --no-warn-script-location"


@dataclass
class BuildContext:
    """A Dockerfile plus the local files its steps copy, by their path in the context."""

    dockerfile: str
    files: dict[str, Path] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)

    def write(self, directory: Path) -> Path:
        """Lays the context out in ``directory`` (which must be empty or missing); returns it."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(self.dockerfile)
        for relative, source in self.files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(*_SKIPPED_DIRS))
            else:
                shutil.copy2(source, target)
        if self.ignore:
            (directory / ".dockerignore").write_text("\n".join(self.ignore) + "\n")
        return directory


def _pip_flags(options: PipOptions) -> list[str]:
    flags: list[str] = []
    if options.index_url:
        flags += ["--index-url", options.index_url]
    for url in options.extra_index_urls:
        flags += ["--extra-index-url", url]
    if options.pre:
        flags.append("--pre")
    if options.extra_args:
        flags += shlex.split(options.extra_args)
    return flags


def _quoted(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def secret_id(secret: Secret) -> str:
    """The id a build secret has in the Dockerfile and on the builder's command line."""
    return f"flyte-{secret.stable_hash()[:16]}"


def _run(command: str, secrets: tuple[Secret, ...] = (), *, pip_cache: bool = False) -> str:
    """A ``RUN`` step; each secret is mounted for it alone (a file under /run/secrets, exported
    as the secret's environment variable, or the file a ``Secret(mount=...)`` asks for), so
    no layer of the image keeps it."""
    mounts = [_PIP_CACHE] if pip_cache else []
    exports = []
    for secret in secrets:
        env = secret.env_var_name()
        if env is None:
            mounts.append(
                f"--mount=type=secret,id={secret_id(secret)},target={SECRETS_MOUNT_PATH}/{secret.key}"
            )
        else:
            target = f"/run/secrets/{secret_id(secret)}"
            mounts.append(f"--mount=type=secret,id={secret_id(secret)},target={target}")
            exports.append(f'{env}="$(cat {target})"')
    prefix = f"export {' '.join(exports)} && " if exports else ""
    return "RUN " + "".join(f"{m} " for m in mounts) + prefix + command


_PIP_COMMAND = "python -m pip install --disable-pip-version-check --no-warn-script-location"


def _pip_install(options: PipOptions, *what: str, secrets: tuple[Secret, ...] = ()) -> str:
    return _run(f"{_PIP_COMMAND} {_quoted([*_pip_flags(options), *what])}", secrets, pip_cache=True)


def script_dependencies(script: Path) -> list[str]:
    """The ``dependencies`` of a script's inline ``# /// script`` metadata block (PEP 723)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib

    lines = script.read_text().splitlines()
    block: list[str] | None = None
    for line in lines:
        if block is None:
            if line.strip() == "# /// script":
                block = []
            continue
        if line.strip() == "# ///":
            break
        if not line.startswith("#"):
            raise ValueError(f"{script}: the '# /// script' block has a line that is not a comment: {line!r}")
        block.append(line[2:] if line.startswith("# ") else line[1:])
    else:
        if block is None:
            raise ValueError(f"{script} has no '# /// script' metadata block")
        raise ValueError(f"{script}: the '# /// script' block is not closed by '# ///'")
    meta = tomllib.loads("\n".join(block))
    deps = meta.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ValueError(f"{script}: 'dependencies' must be a list of requirement strings")
    return deps


class _Renderer:
    def __init__(self, image: Image, sdk_wheels: Callable[[str], list[Path]]) -> None:
        self.image = image
        self.sdk_wheels = sdk_wheels
        self.lines: list[str] = []
        self.files: dict[str, Path] = {}
        self.ignore: list[str] = []
        self.workdir = "/"
        self.dockerignore: Path | None = None

    def stage(self, step: int, source: Path, name: str | None = None) -> str:
        relative = f"_flyte/{step}/{name or source.name}"
        self.files[relative] = source
        return relative

    def render(self) -> BuildContext:
        image = self.image
        if image.dockerfile is not None:
            # The Dockerfile's own folder is the context; it is used as it is.
            return BuildContext(dockerfile=image.dockerfile.read_text())
        for layer in image.layers:
            if isinstance(layer, DockerIgnore):
                self.dockerignore = layer.path
        base = image.resolved_base()
        assert base is not None  # an Image has a base image or a Dockerfile
        self.lines.append(f"FROM {qualified(base)}")
        for step, layer in enumerate(image.layers):
            self.layer(step, layer)
        return BuildContext("\n".join(self.lines) + "\n", self.files, self.ignore)

    def layer(self, step: int, layer: Layer) -> None:
        add = self.lines.append
        if isinstance(layer, AptPackages):
            add(
                _run(
                    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                    f"--no-install-recommends {_quoted(list(layer.packages))} && rm -rf /var/lib/apt/lists/*",
                    layer.secret_mounts,
                )
            )
        elif isinstance(layer, PipPackages):
            add(_pip_install(layer.options, *layer.packages, secrets=layer.secret_mounts))
        elif isinstance(layer, Requirements):
            staged = self.stage(step, layer.file)
            add(f"COPY {staged} {_STAGE}/{step}/{layer.file.name}")
            add(
                _pip_install(
                    layer.options, "-r", f"{_STAGE}/{step}/{layer.file.name}", secrets=layer.secret_mounts
                )
            )
        elif isinstance(layer, UVScript):
            deps = script_dependencies(layer.script)
            if deps:
                add(_pip_install(layer.options, *deps, secrets=layer.secret_mounts))
        elif isinstance(layer, UVProject):
            self.uv_project(step, layer)
        elif isinstance(layer, PoetryProject):
            self.poetry_project(step, layer)
        elif isinstance(layer, Commands):
            for command in layer.commands:
                add(_run(command, layer.secret_mounts))
        elif isinstance(layer, CopyConfig):
            self.copy(step, layer)
        elif isinstance(layer, CodeFiles):
            for name in layer.files:
                self.files[f"_flyte/{step}/code/{name}"] = layer.root / name
            if layer.files:
                add(f"COPY _flyte/{step}/code/ {_as_dir(layer.dst)}")
        elif isinstance(layer, (DockerIgnore, CodeBundleLayer)):
            # DockerIgnore applies to the folders CopyConfig steps copy (see copy); a code
            # layer no run placed adds nothing.
            pass
        elif isinstance(layer, Env):
            add("ENV " + " ".join(f"{k}={json.dumps(v)}" for k, v in layer.env_vars))
        elif isinstance(layer, WorkDir):
            self.workdir = layer.workdir
            add(f"WORKDIR {layer.workdir}")
        elif isinstance(layer, FlyteSdk):
            self.flyte_sdk(step, layer.version)
        else:  # pragma: no cover - every Layer subclass is handled above
            raise TypeError(f"no Dockerfile step for {type(layer).__name__}")

    def uv_project(self, step: int, layer: UVProject) -> None:
        where = f"{_STAGE}/{step}"
        install_project = layer.project_install_mode == "install_project"
        if install_project:
            self.copy_tree(step, layer.pyproject.parent, "project")
            project = f"{where}/project"
            self.lines.append(f"COPY _flyte/{step}/project {project}")
        else:
            self.lines.append(f"COPY {self.stage(step, layer.pyproject)} {where}/pyproject.toml")
            self.lines.append(f"COPY {self.stage(step, layer.uvlock, 'uv.lock')} {where}/uv.lock")
            project = where
        export = (
            f"cd {project} && python -m uv export --frozen --no-hashes --no-emit-project -o {where}/req.txt"
        )
        install = _quoted(
            ["python", "-m", "pip", "install", *_pip_flags(layer.options), "-r", f"{where}/req.txt"]
        )
        steps = ["python -m pip install --disable-pip-version-check uv", export, install]
        if install_project:
            steps.append(f"python -m pip install --no-deps {project}")
        self.lines.append(_run(" && ".join(steps), layer.secret_mounts, pip_cache=True))

    def poetry_project(self, step: int, layer: PoetryProject) -> None:
        where = f"{_STAGE}/{step}"
        install_project = layer.project_install_mode == "install_project"
        if install_project:
            self.copy_tree(step, layer.pyproject.parent, "project")
            self.lines.append(f"COPY _flyte/{step}/project {where}")
        else:
            self.lines.append(f"COPY {self.stage(step, layer.pyproject)} {where}/pyproject.toml")
            self.lines.append(
                f"COPY {self.stage(step, layer.poetry_lock, 'poetry.lock')} {where}/poetry.lock"
            )
        install = ["poetry", "install", "--no-interaction", *([] if install_project else ["--no-root"])]
        install += shlex.split(layer.extra_args or "")
        self.lines.append(
            _run(
                "python -m pip install --disable-pip-version-check poetry && "
                f"cd {where} && POETRY_VIRTUALENVS_CREATE=false {_quoted(install)}",
                layer.secret_mounts,
                pip_cache=True,
            )
        )

    def copy_tree(self, step: int, source: Path, name: str) -> None:
        self.files[f"_flyte/{step}/{name}"] = source
        if self.dockerignore is not None:
            self.ignore += _rebased_ignore(self.dockerignore, f"_flyte/{step}/{name}")

    def copy(self, step: int, layer: CopyConfig) -> None:
        if layer.is_dir:
            self.copy_tree(step, layer.src, "src")
            self.lines.append(f"COPY _flyte/{step}/src/ {_as_dir(layer.dst)}")
        else:
            staged = self.stage(step, layer.src)
            self.lines.append(f"COPY {staged} {layer.dst}")

    def flyte_sdk(self, step: int, version: str) -> None:
        for wheel in self.sdk_wheels(version):
            self.stage(step, wheel)
        # Every platform's wheel is staged and pip picks the one that fits the platform being
        # built. The SDK itself only ever comes from there (a package index's "flyte" is not
        # this SDK); its dependencies come from the index.
        pinned = f"flyte=={version}"
        self.lines.append(f"COPY _flyte/{step}/ {_STAGE}/wheels/")
        self.lines.append(
            f"{_PIP} --find-links {_STAGE}/wheels --no-index --no-deps {pinned} && "
            f"python -m pip install --disable-pip-version-check --find-links {_STAGE}/wheels {pinned} && "
            f"rm -rf {_STAGE}/wheels"
        )


def _as_dir(dst: str) -> str:
    return dst if dst.endswith("/") else dst + "/"


def _rebased_ignore(dockerignore: Path, prefix: str) -> list[str]:
    """The patterns of a .dockerignore written for a folder, as patterns of that folder staged
    at ``prefix`` in a larger context (the builder applies them with Docker's own rules)."""
    patterns: list[str] = []
    for raw in dockerignore.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.lstrip("/")
        patterns.append(("!" if negate else "") + f"{prefix}/{pattern}")
    return patterns


def build_secrets(image: Image) -> tuple[Secret, ...]:
    """The secrets the image's steps read while they run, each once."""
    found: dict[str, Secret] = {}
    for layer in image.layers:
        for secret in getattr(layer, "secret_mounts", ()):
            found.setdefault(secret_id(secret), secret)
    return tuple(found.values())


def render(image: Image, sdk_wheels: Callable[[str], list[Path]]) -> BuildContext:
    """The Dockerfile and context of ``image``; ``sdk_wheels(version)`` supplies the SDK's wheels
    when the image installs it. Checks first that every local file the build reads exists."""
    image.validate()
    return _Renderer(image, sdk_wheels).render()
