"""Container images described as a base plus an ordered list of layers.

An :class:`Image` is a description: defining one never touches a registry. A layer that reads a local
file (``with_requirements``, ``with_source_folder``, ...) checks that the file exists when it is added,
so a typo fails where it was written, except inside a running task: there the module is imported again
in the built image, where those build inputs usually do not exist. File contents are read only when
:attr:`Image.uri` is computed or the image is built.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Tuple, Union, get_args

from flyte._initialize import current_config
from flyte._internal import _task_process
from flyte._secret import Secret, SecretRequest, normalize_secrets
from flyte._version import __version__
from flyte.errors import InvalidImageNameError

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

Architecture = Literal["linux/amd64", "linux/arm64"]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
ProjectInstallMode = Literal["dependencies_only", "install_project"]
PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_REGISTRY = "ghcr.io/flyteorg"
DEFAULT_IMAGE_NAME = "flyte"
MIN_PYTHON = (3, 10)

# Bump when the fingerprint layout changes, so old and new SDKs never share a tag for different content.
_FINGERPRINT_VERSION = 1
_SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME_RE = rf"(?a)^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# As in Docker, a first component is a registry host only if it has a dot or a port or is localhost;
# otherwise it is part of the (lowercase) repository path.
_DOMAIN = rf"(?:localhost(?::\d+)?|{_LABEL}(?:\.{_LABEL})+(?::\d+)?|{_LABEL}:\d+)"
_REGISTRY_RE = rf"(?a)^(?:{_DOMAIN}|{_PATH_COMPONENT})(?:/{_PATH_COMPONENT})*$"
_REFERENCE_RE = (
    rf"(?a)^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_ENV_VAR_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _current_python() -> tuple[int, int]:
    return sys.version_info[0], sys.version_info[1]


def _as_path(where: str, value: object) -> Path:
    if isinstance(value, (str, os.PathLike)):
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"{where}: {value!r} is not a path")
        return Path(value)
    raise TypeError(f"{where}: expected a path (str or pathlib.Path), got {type(value).__name__} {value!r}")


def _flatten(where: str, values: Sequence[object]) -> tuple[str, ...]:
    """Accept both ``f("a", "b")`` and ``f(["a", "b"])``."""
    items: list[object] = []
    for value in values:
        if isinstance(value, (list, tuple)):
            items.extend(value)
        else:
            items.append(value)
    if not items:
        raise ValueError(f"{where} needs at least one package")
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{where}: {item!r} is not a package name string")
        names.append(item)
        if not item.strip() or "\n" in item:
            raise ValueError(f"{where}: {item!r} is not a package name")
        if item.startswith("-"):
            raise ValueError(
                f"{where}: {item!r} looks like a flag, not a package; pass flags via extra_args="
            )
    return tuple(names)


def _str_tuple(where: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{where}: {item!r} must be a non-empty string")
    return items


def _suggest_name(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._/-]+", "-", name.lower()).strip("-._/")
    return cleaned or "my-image"


def _check_name(where: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{where}: name={name!r} must be a string such as 'my-image'")
    if ":" in name or "@" in name:
        raise InvalidImageNameError(
            message=f"{where}: name={name!r} must not contain a tag or digest; the tag is computed from the "
            f"image's content, use name={name.split(':')[0].split('@')[0]!r}"
        )
    if not re.fullmatch(_NAME_RE, name):
        raise InvalidImageNameError(
            message=f"{where}: name={name!r} is not a valid image name; use lowercase letters, digits and "
            f"'.', '_', '-' separators, e.g. name={_suggest_name(name)!r}"
        )
    return name


def _check_registry(where: str, registry: object) -> str:
    if not isinstance(registry, str):
        raise TypeError(f"{where}: registry={registry!r} must be a string such as 'ghcr.io/myorg'")
    scheme = re.match(r"^[a-z]+://", registry)
    if scheme or registry.endswith("/"):
        fixed = registry[scheme.end() if scheme else 0 :].rstrip("/")
        raise InvalidImageNameError(
            message=f"{where}: registry={registry!r} must be a bare host and path, e.g. registry={fixed!r}"
        )
    if not re.fullmatch(_REGISTRY_RE, registry):
        raise InvalidImageNameError(
            message=f"{where}: registry={registry!r} is not a valid registry; use e.g. 'ghcr.io/myorg' or "
            "'localhost:5000'"
        )
    return registry


def _check_image_uri(where: str, uri: object) -> str:
    if not isinstance(uri, str):
        raise TypeError(f"{where}: image_uri={uri!r} must be a string such as 'python:3.11-slim'")
    if not re.fullmatch(_REFERENCE_RE, uri):
        raise InvalidImageNameError(
            message=f"{where}: {uri!r} is not a valid image reference; use e.g. 'python:3.11-slim' or "
            "'ghcr.io/myorg/base:1.0'"
        )
    return uri


def _check_python_version(where: str, value: object) -> tuple[int, int]:
    if isinstance(value, (str, float)):
        parts = str(value).split(".")
        example = (
            f"({parts[0]}, {parts[1]})"
            if len(parts) >= 2 and all(p.isdecimal() for p in parts[:2])
            else "(3, 11)"
        )
        raise TypeError(f"{where}: python_version={value!r} must be a tuple, e.g. python_version={example}")
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{where}: python_version={value!r} must be a (major, minor) tuple, e.g. (3, 11)")
    version = (value[0], value[1])
    if version[0] != 3 or version < MIN_PYTHON:
        raise ValueError(
            f"{where}: python_version={version!r} is not supported; use Python 3.10 or newer, e.g. (3, 11)"
        )
    return version


def _check_platform(where: str, value: object) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (tuple, list)) or not items:
        raise TypeError(f"{where}: platform={value!r} must be a tuple such as ('linux/amd64', 'linux/arm64')")
    result: list[str] = []
    for item in items:
        if item not in ARCHITECTURES:
            raise ValueError(
                f"{where}: platform {item!r} is not supported; use {' or '.join(repr(a) for a in ARCHITECTURES)}"
            )
        if item not in result:
            result.append(item)
    return tuple(result)


def _hash_file(hasher: Any, path: Path) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            hasher.update(chunk)


def content_digest(path: Path) -> dict[str, str]:
    """A fingerprint of a file's or folder's content, independent of where it lives.

    A missing path fingerprints by its name, so images whose sources are absent (e.g. inside the built
    container) still have a stable identity.
    """
    import hashlib

    hasher = hashlib.sha256()
    if path.is_file():
        _hash_file(hasher, path)
        return {"file": hasher.hexdigest()}
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                full = Path(root, name)
                hasher.update(full.relative_to(path).as_posix().encode() + b"\0")
                _hash_file(hasher, full)
                hasher.update(b"\0")
        return {"dir": hasher.hexdigest()}
    return {"missing": path.as_posix()}


def _in_task_container() -> bool:
    """True inside a task's execution, where build inputs are not expected to exist. Both a
    cluster and the embedded backend set this variable on every task."""
    # Here, not at the top: `import flyte` does not load the Rust extension.
    from flyte._bridge import contract

    # A reusable worker runs many executions, so it has no execution id of its own.
    return contract.EXECUTION_ID in os.environ or _task_process.serves_attempts


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a file")


#: The reference name ``Image.from_ref_name()`` looks up when given none.
DEFAULT_IMAGE_REF_NAME = "default"


@dataclass(frozen=True)
class PipOptions:
    """How ``pip``/``uv pip`` is invoked for a layer."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    pre: bool = False
    extra_args: str | None = None

    def __post_init__(self) -> None:
        if self.index_url is not None and (not isinstance(self.index_url, str) or not self.index_url.strip()):
            raise ValueError(f"index_url={self.index_url!r} must be a URL string")
        object.__setattr__(self, "extra_index_urls", _str_tuple("extra_index_urls", self.extra_index_urls))
        if not isinstance(self.pre, bool):
            raise TypeError(f"pre={self.pre!r} must be True or False")
        if self.extra_args is not None and not isinstance(self.extra_args, str):
            raise TypeError(f"extra_args={self.extra_args!r} must be a string such as '--no-deps'")

    def fingerprint(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Layer:
    """One step of an image build."""

    def fingerprint(self) -> dict[str, Any] | None:
        """A JSON-able description of everything that affects the built result (None: the
        step adds nothing)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Check what a build would need from the local machine (files exist, ...)."""


def _with_secrets(fingerprint: dict[str, Any], secrets: tuple[Secret, ...]) -> dict[str, Any]:
    """A step's fingerprint, with the build secrets it reads named (never their values): a
    step that reads another secret builds differently. Steps without secrets keep the
    fingerprint (and so the image tags) they had before secrets existed."""
    if secrets:
        fingerprint["secrets"] = [s.stable_hash() for s in secrets]
    return fingerprint


@dataclass(frozen=True)
class FlyteSdk(Layer):
    """Install this SDK; the builder decides between a released package and a local wheel."""

    version: str

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "flyte", "version": self.version}


@dataclass(frozen=True)
class PipPackages(Layer):
    packages: tuple[str, ...]
    options: PipOptions = PipOptions()
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        fp = {"kind": "pip", "packages": list(self.packages), "options": self.options.fingerprint()}
        return _with_secrets(fp, self.secret_mounts)


@dataclass(frozen=True)
class Requirements(Layer):
    file: Path
    options: PipOptions = PipOptions()
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        fp = {
            "kind": "requirements",
            "file": content_digest(self.file),
            "options": self.options.fingerprint(),
        }
        return _with_secrets(fp, self.secret_mounts)

    def validate(self) -> None:
        _require_file(self.file, "requirements file")


@dataclass(frozen=True)
class UVProject(Layer):
    pyproject: Path
    uvlock: Path
    options: PipOptions = PipOptions()
    project_install_mode: ProjectInstallMode = "dependencies_only"
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        if self.project_install_mode == "install_project":
            sources = {"project": content_digest(self.pyproject.parent)}
        else:
            sources = {"pyproject": content_digest(self.pyproject), "lock": content_digest(self.uvlock)}
        fp = {
            "kind": "uv_project",
            "mode": self.project_install_mode,
            **sources,
            "options": self.options.fingerprint(),
        }
        return _with_secrets(fp, self.secret_mounts)

    def validate(self) -> None:
        _require_file(self.pyproject, "pyproject file")
        _require_file(self.uvlock, "uv.lock file")


@dataclass(frozen=True)
class PoetryProject(Layer):
    pyproject: Path
    poetry_lock: Path
    extra_args: str | None = None
    project_install_mode: ProjectInstallMode = "dependencies_only"
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        if self.project_install_mode == "install_project":
            sources = {"project": content_digest(self.pyproject.parent)}
        else:
            sources = {"pyproject": content_digest(self.pyproject), "lock": content_digest(self.poetry_lock)}
        fp = {
            "kind": "poetry_project",
            "mode": self.project_install_mode,
            **sources,
            "extra_args": self.extra_args,
        }
        return _with_secrets(fp, self.secret_mounts)

    def validate(self) -> None:
        _require_file(self.pyproject, "pyproject file")
        _require_file(self.poetry_lock, "poetry.lock file")


@dataclass(frozen=True)
class UVScript(Layer):
    """Dependencies declared in a script's inline ``# /// script`` metadata."""

    script: Path
    options: PipOptions = PipOptions()
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        fp = {
            "kind": "uv_script",
            "script": content_digest(self.script),
            "options": self.options.fingerprint(),
        }
        return _with_secrets(fp, self.secret_mounts)

    def validate(self) -> None:
        _require_file(self.script, "uv script")


@dataclass(frozen=True)
class AptPackages(Layer):
    packages: tuple[str, ...]
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        return _with_secrets({"kind": "apt", "packages": list(self.packages)}, self.secret_mounts)


@dataclass(frozen=True)
class Commands(Layer):
    """Shell commands, each run as its own ``RUN`` step."""

    commands: tuple[str, ...]
    secret_mounts: tuple[Secret, ...] = ()

    def fingerprint(self) -> dict[str, Any]:
        return _with_secrets({"kind": "commands", "commands": list(self.commands)}, self.secret_mounts)


@dataclass(frozen=True)
class CopyConfig(Layer):
    """Copy a local file or folder into the image at ``dst``."""

    src: Path
    dst: str
    is_dir: bool

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "copy", "src": content_digest(self.src), "dst": self.dst, "is_dir": self.is_dir}

    def validate(self) -> None:
        if self.is_dir and not self.src.is_dir():
            raise FileNotFoundError(f"source folder {self.src} does not exist or is not a folder")
        if not self.is_dir:
            _require_file(self.src, "source file")


@dataclass(frozen=True)
class DockerIgnore(Layer):
    path: Path

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "dockerignore", "file": content_digest(self.path)}

    def validate(self) -> None:
        _require_file(self.path, ".dockerignore file")


@dataclass(frozen=True)
class Env(Layer):
    env_vars: tuple[tuple[str, str], ...]

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "env", "env_vars": [list(kv) for kv in self.env_vars]}

    def as_dict(self) -> dict[str, str]:
        return dict(self.env_vars)


@dataclass(frozen=True)
class WorkDir(Layer):
    workdir: str

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "workdir", "workdir": self.workdir}


@dataclass(frozen=True)
class CodeBundleLayer(Layer):
    """The code of the run or deployment that uses the image, baked in when it travels without
    a code bundle (``copy_style="none"``): which files (``copy_style``: the loaded modules or
    all) and where (``dst``). Until a run or deployment places it (:func:`placed`), and when it
    sends a bundle, it adds nothing to the image."""

    copy_style: str
    dst: str = "."

    def fingerprint(self) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True)
class CodeFiles(Layer):
    """Source files under ``root`` (``files``, relative to it) copied to ``dst`` in the image."""

    root: Path
    files: Tuple[str, ...]
    dst: str

    def fingerprint(self) -> dict[str, Any]:
        return {
            "kind": "code",
            "dst": self.dst,
            "files": [[name, content_digest(self.root / name)] for name in self.files],
        }

    def validate(self) -> None:
        for name in self.files:
            _require_file(self.root / name, "source file")


@dataclass(frozen=True)
class _Placement:
    copy_style: str
    root: Path


_placement: ContextVar[_Placement | None] = ContextVar("flyte_code_placement", default=None)


@contextmanager
def code_placement(copy_style: str, root: Path) -> Iterator[None]:
    """While a run or deployment is prepared: how its code travels (``copy_style``) and from
    where (``root``), which decides what the images' :class:`CodeBundleLayer` steps copy."""
    token = _placement.set(_Placement(copy_style, root.resolve()))
    try:
        yield
    finally:
        _placement.reset(token)


def placed(image: Image) -> Image:
    """``image`` as the run or deployment being prepared builds it: with its code files when the
    code travels in the image (``copy_style="none"``), else as it is."""
    where = _placement.get()
    bundles = [layer for layer in image.layers if isinstance(layer, CodeBundleLayer)]
    if where is None or where.copy_style != "none" or not bundles:
        return image
    from flyte._internal import _bundle

    layers: list[Layer] = []
    for layer in image.layers:
        if not isinstance(layer, CodeBundleLayer):
            layers.append(layer)
            continue
        paths = (
            _bundle.loaded_module_files(where.root)
            if layer.copy_style == "loaded_modules"
            else _bundle.all_files(where.root)
        )
        names = tuple(sorted(p.resolve().relative_to(where.root).as_posix() for p in paths))
        layers.append(CodeFiles(where.root, names, layer.dst))
    return dataclasses.replace(image, layers=tuple(layers))


def code_dir(image: Image) -> str | None:
    """Where in ``image`` the code of the run lies, when a placed code layer put it there."""
    import posixpath

    workdir = "/"
    found = None
    for layer in image.layers:
        if isinstance(layer, WorkDir):
            workdir = layer.workdir
        elif isinstance(layer, CodeFiles):
            found = posixpath.normpath(posixpath.join(workdir, layer.dst))
    return found


def _build_secrets(where: str, secret_mounts: SecretRequest | None) -> tuple[Secret, ...]:
    try:
        return normalize_secrets(secret_mounts)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: secret_mounts: {e}") from None


def _env_layer(where: str, env_vars: object) -> Env:
    if not isinstance(env_vars, Mapping):
        raise TypeError(f"{where}: env_vars={env_vars!r} must be a dict such as {{'LOG_LEVEL': 'INFO'}}")
    if not env_vars:
        raise ValueError(f"{where} needs at least one variable")
    pairs: list[tuple[str, str]] = []
    for key, value in env_vars.items():
        if not isinstance(key, str) or not re.fullmatch(_ENV_VAR_RE, key):
            raise ValueError(f"{where}: {key!r} is not a valid environment variable name, e.g. 'LOG_LEVEL'")
        if not isinstance(value, str):
            raise TypeError(
                f"{where}: the value of {key!r} must be a string, got {value!r}; use {str(value)!r}"
            )
        pairs.append((key, value))
    return Env(tuple(pairs))


@dataclass(frozen=True)
class Image:
    """A container image: a base (an existing image or a Dockerfile) plus layers added on top.

    Start from :meth:`from_debian_base`, :meth:`from_base`, :meth:`from_dockerfile` or
    :meth:`from_uv_script`, then chain ``with_*`` calls. Every call returns a new Image and leaves the
    original untouched. :attr:`uri` is ``registry/name:tag`` with a tag derived from the content, so the
    same definition always yields the same URI.
    """

    base_image: str | None = None
    dockerfile: Path | None = None
    registry: str | None = None
    name: str | None = None
    platform: Tuple[Architecture, ...] = ("linux/amd64",)
    python_version: Tuple[int, int] = field(default_factory=_current_python)
    #: Whether ``clone(addl_layer=...)`` may add layers to this image (set for images this SDK
    #: knows the making of, such as ``from_debian_base``; ``with_*`` methods add layers anyway).
    extendable: bool = False
    registry_secret: Secret | None = None
    layers: Tuple[Layer, ...] = ()
    #: Set by :meth:`from_ref_name`: the base image is the one configured under this name
    #: (``flyte.init(images={name: uri})`` or ``image.image_refs`` in the config file).
    ref_name: str | None = None

    def __post_init__(self) -> None:
        where = "Image"
        if self.ref_name is not None:
            if not isinstance(self.ref_name, str) or not self.ref_name.strip():
                raise ValueError(f"Image(ref_name={self.ref_name!r}) must be an image reference's name")
            if self.base_image is not None or self.dockerfile is not None:
                raise ValueError("an Image from a reference name has no base_image or dockerfile of its own")
        elif (self.base_image is None) == (self.dockerfile is None):
            raise ValueError(
                "an Image needs exactly one of base_image or dockerfile; start from Image.from_debian_base(), "
                "Image.from_base('python:3.11-slim') or Image.from_dockerfile(...)"
            )
        if self.base_image is not None:
            _check_image_uri(where, self.base_image)
        if self.dockerfile is not None:
            object.__setattr__(self, "dockerfile", _as_path("Image(dockerfile=...)", self.dockerfile))
        if self.registry is not None:
            _check_registry(where, self.registry)
        if self.name is not None:
            _check_name(where, self.name)
        object.__setattr__(self, "platform", _check_platform(where, self.platform))
        object.__setattr__(self, "python_version", _check_python_version(where, self.python_version))
        if not isinstance(self.extendable, bool):
            raise TypeError(f"Image(extendable={self.extendable!r}) must be True or False")
        secret = self.registry_secret
        if isinstance(secret, str):
            object.__setattr__(self, "registry_secret", Secret(key=secret))
        elif secret is not None and not isinstance(secret, Secret):
            raise TypeError(f"registry_secret={secret!r} must be a secret name or a flyte.Secret")
        layers = tuple(self.layers)
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"Image layers must be Layer objects, got {layer!r}")
        object.__setattr__(self, "layers", layers)
        if layers and self.dockerfile is not None:
            raise ValueError(
                f"layers cannot be added to an image built from {self.dockerfile}; Flyte does not parse "
                "Dockerfiles, so put these steps in the Dockerfile itself"
            )
        if layers and self.name is None:
            raise ValueError(
                f"an image with layers needs a name to be pushed under; call "
                f"Image.from_base({self.base_image!r}).clone(name='my-image', registry='ghcr.io/myorg') first"
            )

    # ---- constructors -------------------------------------------------------------------------------

    @classmethod
    def from_ref_name(cls, name: str = DEFAULT_IMAGE_REF_NAME) -> Image:
        """The image configured under ``name`` (``flyte.init(images={name: uri})`` or
        ``image.image_refs`` in the config file), looked up when the image is used; layers added
        to it build on top of that image."""
        where = "Image.from_ref_name()"
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: name={name!r} must be the name of an image reference")
        return cls(ref_name=name, name=_check_name(where, name), extendable=True)

    def resolved_base(self) -> str | None:
        """The base image's URI (for an image from :meth:`from_ref_name`, the configured one);
        None for an image built from a Dockerfile."""
        if self.ref_name is None:
            return self.base_image
        refs = image_refs()
        if self.ref_name not in refs:
            raise InvalidImageNameError(
                message=f"no image is configured under the name {self.ref_name!r} (configured: "
                f"{sorted(refs) or 'none'}); give it with flyte.init(images={{{self.ref_name!r}: 'URI'}}) or "
                f"image.image_refs in the config file"
            )
        return refs[self.ref_name]

    @property
    def is_reference(self) -> bool:
        """An image used as it is (a published URI, or a configured reference with no layers):
        nothing to build."""
        return self.name is None or (self.ref_name is not None and not self.layers)

    @classmethod
    def from_debian_base(
        cls,
        python_version: tuple[int, int] | None = None,
        flyte_version: str | None = None,
        install_flyte: bool = True,
        registry: str | None = None,
        registry_secret: str | Secret | None = None,
        name: str | None = None,
        platform: Architecture | tuple[Architecture, ...] | None = None,
    ) -> Image:
        """Flyte's default image: Debian slim with Python, a virtualenv and (by default) this SDK.

        ``python_version`` defaults to the running interpreter's. Without ``name`` and ``registry`` the
        image is published as ``ghcr.io/flyteorg/flyte``; a ``name`` alone gives a registry-less image
        that a remote builder can place in its own registry.
        """
        where = "Image.from_debian_base()"
        version = (
            _current_python() if python_version is None else _check_python_version(where, python_version)
        )
        if name is not None:
            _check_name(where, name)
        if registry is not None:
            _check_registry(where, registry)
        if name is None and registry is None:
            name, registry = DEFAULT_IMAGE_NAME, DEFAULT_REGISTRY
        elif name is None:
            name = DEFAULT_IMAGE_NAME
        layers: list[Layer] = [
            AptPackages(("build-essential", "ca-certificates")),
            Commands(("python -m venv /opt/venv",)),
            Env(
                (
                    ("VIRTUAL_ENV", "/opt/venv"),
                    ("PATH", "/opt/venv/bin:$PATH"),
                    ("PYTHONPATH", "/root"),
                    ("UV_LINK_MODE", "copy"),
                )
            ),
            WorkDir("/root"),
        ]
        if not isinstance(install_flyte, bool):
            raise TypeError(f"{where}: install_flyte={install_flyte!r} must be True or False")
        if install_flyte:
            layers.append(FlyteSdk(_check_flyte_version(where, flyte_version)))
        elif flyte_version is not None:
            raise ValueError(
                f"{where}: flyte_version={flyte_version!r} has no effect with install_flyte=False"
            )
        return cls(
            base_image=f"python:{version[0]}.{version[1]}-slim-bookworm",
            registry=registry,
            name=name,
            platform=_check_platform(where, platform)
            if platform is not None
            else ("linux/amd64", "linux/arm64"),  # type: ignore[arg-type]
            python_version=version,
            extendable=True,
            registry_secret=registry_secret,  # type: ignore[arg-type]
            layers=tuple(layers),
        )

    @classmethod
    def from_base(cls, image_uri: str) -> Image:
        """An existing, already published image, used as is or as the base for more layers."""
        return cls(base_image=_check_image_uri("Image.from_base()", image_uri))

    @classmethod
    def from_dockerfile(
        cls,
        file: PathLike,
        registry: str,
        name: str,
        platform: Architecture | tuple[Architecture, ...] | None = None,
    ) -> Image:
        """An image built from a Dockerfile, with the Dockerfile's folder as the build context.

        No layers can be added: Flyte does not interpret the Dockerfile.
        """
        where = "Image.from_dockerfile()"
        path = _as_path(where, file)
        if not _in_task_container():
            _require_file(path, "Dockerfile")
        return cls(
            dockerfile=path,
            registry=_check_registry(where, registry),
            name=_check_name(where, name),
            platform=_check_platform(where, platform) if platform is not None else ("linux/amd64",),  # type: ignore[arg-type]
        )

    @classmethod
    def from_uv_script(
        cls,
        script: PathLike,
        *,
        name: str,
        registry: str | None = None,
        registry_secret: str | Secret | None = None,
        python_version: tuple[int, int] | None = None,
        index_url: str | None = None,
        extra_index_urls: str | Sequence[str] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        platform: Architecture | tuple[Architecture, ...] | None = None,
        secret_mounts: SecretRequest | None = None,
    ) -> Image:
        """The default image plus the dependencies declared in a uv script's ``# /// script`` header."""
        where = "Image.from_uv_script()"
        path = _as_path(where, script)
        if path.suffix != ".py":
            raise ValueError(f"{where}: script={str(script)!r} must be a Python file ending in .py")
        base = cls.from_debian_base(
            python_version=python_version,
            name=_check_name(where, name),
            registry=registry,
            registry_secret=registry_secret,
            platform=platform,
        )
        options = PipOptions(index_url, _str_tuple("extra_index_urls", extra_index_urls), pre, extra_args)
        return base._with_layer(where, UVScript(path, options, _build_secrets(where, secret_mounts)))

    # ---- builders -----------------------------------------------------------------------------------

    def _with_layer(self, where: str, layer: Layer) -> Image:
        if self.dockerfile is not None:
            raise ValueError(
                f"{where}: cannot add layers to an image built from {self.dockerfile}; Flyte does not parse "
                "Dockerfiles, so put this step in the Dockerfile itself"
            )
        if self.name is None:
            raise ValueError(
                f"{where}: an image with layers needs a name; call "
                f"Image.from_base({self.base_image!r}).clone(name='my-image', registry='ghcr.io/myorg') first"
            )
        if not _in_task_container():
            layer.validate()
        return dataclasses.replace(self, layers=(*self.layers, layer))

    def clone(
        self,
        registry: str | None = None,
        registry_secret: str | Secret | None = None,
        name: str | None = None,
        base_image: str | None = None,
        python_version: tuple[int, int] | None = None,
        addl_layer: Layer | None = None,
        extendable: bool | None = None,
        platform: Architecture | tuple[Architecture, ...] | None = None,
    ) -> Image:
        """A copy of the image with some of it changed: published under another name or
        registry, on another base or Python, for other platforms, or with ``addl_layer`` on top
        (only for an ``extendable`` image, and one with a name)."""
        where = "Image.clone()"
        if addl_layer is not None:
            if not isinstance(addl_layer, Layer):
                raise TypeError(f"{where}: addl_layer must be an image Layer, got {addl_layer!r}")
            if not self.extendable:
                raise ValueError(
                    f"{where}: this image is not extendable, so addl_layer cannot be added; "
                    "clone it with extendable=True first, or add steps with the with_* methods"
                )
        new = dataclasses.replace(
            self,
            name=_check_name(where, name) if name is not None else self.name,
            registry=_check_registry(where, registry) if registry is not None else self.registry,
            registry_secret=registry_secret if registry_secret is not None else self.registry_secret,  # type: ignore[arg-type]
            base_image=_check_image_uri(where, base_image) if base_image is not None else self.base_image,
            python_version=python_version if python_version is not None else self.python_version,
            extendable=extendable if extendable is not None else self.extendable,
            platform=_check_platform(where, platform) if platform is not None else self.platform,  # type: ignore[arg-type]
        )
        return new._with_layer(where, addl_layer) if addl_layer is not None else new

    def with_pip_packages(
        self,
        *packages: str | Sequence[str],
        pre: bool = False,
        index_url: str | None = None,
        extra_index_urls: str | Sequence[str] | None = None,
        extra_args: str | None = None,
        secret_mounts: SecretRequest | None = None,
    ) -> Image:
        """Install packages with pip; ``secret_mounts`` are available to pip while it runs (a
        private index's token), never stored in the image."""
        where = "Image.with_pip_packages()"
        options = PipOptions(index_url, _str_tuple("extra_index_urls", extra_index_urls), pre, extra_args)
        secrets = _build_secrets(where, secret_mounts)
        return self._with_layer(where, PipPackages(_flatten(where, packages), options, secrets))

    def with_requirements(
        self,
        file: PathLike,
        index_url: str | None = None,
        extra_index_urls: str | Sequence[str] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: SecretRequest | None = None,
    ) -> Image:
        """Install from a ``requirements.txt``; a ``uv.lock`` or ``poetry.lock`` installs that project instead."""
        where = "Image.with_requirements()"
        path = _as_path(where, file)
        if path.name == "uv.lock":
            return self.with_uv_project(
                path.parent / "pyproject.toml",
                uvlock=path,
                index_url=index_url,
                extra_index_urls=extra_index_urls,
                pre=pre,
                extra_args=extra_args,
                secret_mounts=secret_mounts,
            )
        if path.name == "poetry.lock":
            return self.with_poetry_project(
                path.parent / "pyproject.toml",
                poetry_lock=path,
                extra_args=extra_args,
                secret_mounts=secret_mounts,
            )
        if path.suffix not in (".txt", ".in"):
            raise ValueError(
                f"{where}: {str(file)!r} is not a requirements file; use a .txt file, a uv.lock or a poetry.lock "
                "(or with_uv_project('pyproject.toml'))"
            )
        options = PipOptions(index_url, _str_tuple("extra_index_urls", extra_index_urls), pre, extra_args)
        return self._with_layer(where, Requirements(path, options, _build_secrets(where, secret_mounts)))

    def with_uv_project(
        self,
        pyproject_file: PathLike,
        uvlock: PathLike | None = None,
        index_url: str | None = None,
        extra_index_urls: str | Sequence[str] | None = None,
        pre: bool = False,
        extra_args: str | None = None,
        secret_mounts: SecretRequest | None = None,
        project_install_mode: ProjectInstallMode = "dependencies_only",
    ) -> Image:
        """Install a uv project's locked dependencies (and the project itself with ``install_project``)."""
        where = "Image.with_uv_project()"
        pyproject = _check_pyproject(where, pyproject_file)
        lock = _as_path(where, uvlock) if uvlock is not None else pyproject.parent / "uv.lock"
        options = PipOptions(index_url, _str_tuple("extra_index_urls", extra_index_urls), pre, extra_args)
        mode = _check_install_mode(where, project_install_mode)
        secrets = _build_secrets(where, secret_mounts)
        return self._with_layer(where, UVProject(pyproject, lock, options, mode, secrets))

    def with_poetry_project(
        self,
        pyproject_file: PathLike,
        poetry_lock: PathLike | None = None,
        extra_args: str | None = None,
        secret_mounts: SecretRequest | None = None,
        project_install_mode: ProjectInstallMode = "dependencies_only",
    ) -> Image:
        """Install a Poetry project's locked dependencies (and the project itself with ``install_project``)."""
        where = "Image.with_poetry_project()"
        pyproject = _check_pyproject(where, pyproject_file)
        lock = _as_path(where, poetry_lock) if poetry_lock is not None else pyproject.parent / "poetry.lock"
        if extra_args is not None and not isinstance(extra_args, str):
            raise TypeError(f"{where}: extra_args={extra_args!r} must be a string")
        mode = _check_install_mode(where, project_install_mode)
        secrets = _build_secrets(where, secret_mounts)
        return self._with_layer(where, PoetryProject(pyproject, lock, extra_args, mode, secrets))

    def with_apt_packages(
        self, *packages: str | Sequence[str], secret_mounts: SecretRequest | None = None
    ) -> Image:
        """Install Debian packages; ``secret_mounts`` are available to apt while it runs."""
        where = "Image.with_apt_packages()"
        names = _flatten(where, packages)
        for pkg in names:
            if any(c.isspace() for c in pkg):
                raise ValueError(f"{where}: {pkg!r} is not a package name; pass each package separately")
        return self._with_layer(where, AptPackages(names, _build_secrets(where, secret_mounts)))

    def with_commands(
        self, commands: str | Sequence[str], secret_mounts: SecretRequest | None = None
    ) -> Image:
        """Run shell commands at build time, each as a separate step. A secret of ``secret_mounts``
        is in its environment variable (or, for ``Secret(mount=...)``, its file under
        ``/etc/flyte/secrets``) while the commands run, and is not stored in the image."""
        where = "Image.with_commands()"
        items = (commands,) if isinstance(commands, str) else tuple(commands)
        if not items:
            raise ValueError(f"{where} needs at least one command")
        for cmd in items:
            if not isinstance(cmd, str) or not cmd.strip():
                raise ValueError(f"{where}: {cmd!r} is not a shell command")
            if cmd.lstrip().upper().startswith("RUN "):
                raise ValueError(
                    f"{where}: {cmd!r} starts with RUN; give the shell command only: {cmd.lstrip()[4:]!r}"
                )
        return self._with_layer(where, Commands(items, _build_secrets(where, secret_mounts)))

    def with_source_file(self, src: PathLike, dst: str = ".") -> Image:
        """Copy a local file into the image; ``dst`` is relative to the working directory unless absolute."""
        where = "Image.with_source_file()"
        return self._with_layer(where, CopyConfig(_as_path(where, src), _check_dst(where, dst), is_dir=False))

    def with_source_folder(self, src: PathLike, dst: str = ".", copy_contents_only: bool = False) -> Image:
        """Copy a local folder into the image.

        With the default ``dst="."`` the folder keeps its name (``./src`` lands in ``./src``); with
        ``copy_contents_only=True`` its contents land directly in ``dst``.
        """
        where = "Image.with_source_folder()"
        path = _as_path(where, src)
        target = _check_dst(where, dst)
        # A folder named by "." or ".." has no name of its own to keep, so its contents are copied.
        if target == "." and not copy_contents_only and path.name not in ("", ".."):
            target = f"./{path.name}"
        return self._with_layer(where, CopyConfig(path, target, is_dir=True))

    def with_code_bundle(
        self, copy_style: Literal["loaded_modules", "all"] = "loaded_modules", dst: str = "."
    ) -> Image:
        """Bake the code of the runs and deployments that send no code bundle
        (``copy_style="none"``) into the image: the loaded modules or all files under the root
        directory, at ``dst``. For those that send a bundle this step adds nothing."""
        where = "Image.with_code_bundle()"
        if copy_style not in ("loaded_modules", "all"):
            raise ValueError(f"{where}: copy_style must be 'loaded_modules' or 'all', got {copy_style!r}")
        return self._with_layer(where, CodeBundleLayer(copy_style, _check_dst(where, dst)))

    def with_dockerignore(self, path: PathLike) -> Image:
        where = "Image.with_dockerignore()"
        return self._with_layer(where, DockerIgnore(_as_path(where, path)))

    def with_env_vars(self, env_vars: Mapping[str, str]) -> Image:
        where = "Image.with_env_vars()"
        return self._with_layer(where, _env_layer(where, env_vars))

    def with_workdir(self, workdir: str) -> Image:
        where = "Image.with_workdir()"
        if not isinstance(workdir, str) or not workdir.strip():
            raise ValueError(f"{where}: workdir={workdir!r} must be a directory path such as '/app'")
        return self._with_layer(where, WorkDir(workdir))

    # ---- identity -----------------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the built image's content; registry and name are not part of it."""
        return {
            "v": _FINGERPRINT_VERSION,
            "base_image": self.resolved_base(),
            "dockerfile": content_digest(self.dockerfile) if self.dockerfile is not None else None,
            "platform": list(self.platform),
            "python_version": list(self.python_version),
            # A code layer no run has placed adds nothing (see CodeBundleLayer).
            "layers": [fp for fp in (layer.fingerprint() for layer in self.layers) if fp is not None],
        }

    @property
    def tag(self) -> str:
        """The content hash the image is tagged with (cached, except for an image from a
        reference name, whose base may be configured anew)."""
        cached = self.__dict__.get("_tag")
        if cached is not None:
            return str(cached)
        import hashlib
        import json

        payload = json.dumps(self.fingerprint(), sort_keys=True, separators=(",", ":")).encode()
        tag = hashlib.blake2b(payload, digest_size=16).hexdigest()
        if self.ref_name is None:
            object.__setattr__(self, "_tag", tag)
        return tag

    @property
    def uri(self) -> str:
        """``registry/name:tag``; a plain :meth:`from_base` image is referred to by its own URI."""
        if self.is_reference:
            base = self.resolved_base()
            assert base is not None  # guaranteed by __post_init__
            return base
        repo = f"{self.registry}/{self.name}" if self.registry else self.name
        return f"{repo}:{self.tag}"

    def validate(self) -> None:
        """Check that every local file the build needs exists; call before building."""
        if self.dockerfile is not None:
            _require_file(self.dockerfile, "Dockerfile")
        for layer in self.layers:
            layer.validate()


#: Set in task containers: the image references (``Image.from_ref_name``) of the process that
#: sent the task, as JSON, so tasks it calls resolve them alike.
IMAGE_REFS_ENV = "_F_IMAGE_REFS"


def image_refs() -> dict[str, str]:
    """Image URIs by reference name: ``flyte.init``'s (and the config file's), else those the
    process that started this task handed over."""
    refs = dict(current_config().images)
    if not refs and os.environ.get(IMAGE_REFS_ENV):
        import json

        refs = dict(json.loads(os.environ[IMAGE_REFS_ENV]))
    return refs


#: Set in every task container this SDK serializes: the URI tasks without an image of their own
#: ("auto") resolved to where the run was submitted, so child tasks name the same image.
DEFAULT_IMAGE_ENV = "_F_DEFAULT_IMAGE"


def default_image() -> Image:
    """The image of tasks that name none: Flyte's Debian base with this SDK, in the configured
    registry (``image.registry``) when there is one, for the configured platforms
    (``image.platforms``; both linux/amd64 and linux/arm64 by default)."""
    cfg = current_config()
    platforms = tuple(cfg.image_platforms) or None
    if cfg.image_registry:
        return Image.from_debian_base(registry=cfg.image_registry, platform=platforms)  # type: ignore[arg-type]
    return Image.from_debian_base(platform=platforms)  # type: ignore[arg-type]


def default_image_uri() -> str:
    return os.environ.get(DEFAULT_IMAGE_ENV) or default_image().uri


def is_unpublished_default(image: Image) -> bool:
    """Whether ``image`` is the default image under the name this SDK does not publish."""
    return image.registry == DEFAULT_REGISTRY and image.name == DEFAULT_IMAGE_NAME


def _check_flyte_version(where: str, version: str | None) -> str:
    if version is None:
        return __version__
    if not isinstance(version, str) or not re.fullmatch(
        r"v?\d+(\.\d+)*([.+-]?[A-Za-z0-9.+-]+)?", version, re.ASCII
    ):
        raise ValueError(f"{where}: flyte_version={version!r} is not a version; use e.g. '2.0.0'")
    return version.removeprefix("v")


def _check_pyproject(where: str, value: object) -> Path:
    path = _as_path(where, value)
    if path.name != "pyproject.toml":
        raise ValueError(f"{where}: {str(value)!r} must point at a pyproject.toml file")
    return path


def _check_install_mode(where: str, mode: object) -> ProjectInstallMode:
    if mode not in get_args(ProjectInstallMode):
        raise ValueError(
            f"{where}: project_install_mode={mode!r} must be 'dependencies_only' or 'install_project'"
        )
    return mode  # type: ignore[return-value]


def _check_dst(where: str, dst: object) -> str:
    if not isinstance(dst, str) or not dst.strip():
        raise ValueError(f"{where}: dst={dst!r} must be a path inside the image such as '/app' or '.'")
    return dst


__all__ = [
    "ARCHITECTURES",
    "DEFAULT_IMAGE_NAME",
    "DEFAULT_REGISTRY",
    "AptPackages",
    "Architecture",
    "Commands",
    "CopyConfig",
    "DockerIgnore",
    "Env",
    "FlyteSdk",
    "Image",
    "Layer",
    "PipOptions",
    "PipPackages",
    "PoetryProject",
    "Requirements",
    "UVProject",
    "UVScript",
    "WorkDir",
    "content_digest",
    "default_image",
    "default_image_uri",
]
