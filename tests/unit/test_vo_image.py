"""Image: constructors, fluent builders, validation and the content-addressed URI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from flyte._image import (
    DEFAULT_IMAGE_NAME,
    DEFAULT_REGISTRY,
    AptPackages,
    Commands,
    CopyConfig,
    DockerIgnore,
    Env,
    FlyteSdk,
    Image,
    PipOptions,
    PipPackages,
    PoetryProject,
    Requirements,
    UVProject,
    UVScript,
    WorkDir,
    content_digest,
)
from flyte._secret import Secret
from flyte.errors import InvalidImageNameError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _make(root: Path, *paths: str) -> None:
    """Creates the files (and, with a trailing '/', folders) a definition refers to."""
    for name in paths:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder, the working directory, with the files the seeds name."""
    monkeypatch.chdir(tmp_path)
    _make(tmp_path, "requirements.txt", "pyproject.toml", "uv.lock", "poetry.lock", "config.yaml")
    _make(tmp_path, "src/", ".dockerignore")
    return tmp_path


def _user_layers(image: Image) -> tuple[object, ...]:
    """The layers added after the debian base's own ones."""
    base = Image.from_debian_base(python_version=image.python_version)
    return image.layers[len(base.layers) :]


# ---- seed snippets --------------------------------------------------------------------------------


def test_seed_basic_migration_image() -> None:
    image = (
        Image.from_debian_base(
            name="my-image",
            registry="ghcr.io/myorg",
            python_version=(3, 11),
        )
        .with_pip_packages("pandas", "numpy")
        .with_apt_packages("curl", "git")
        .with_env_vars({"MY_VAR": "value"})
    )
    assert image.uri.startswith("ghcr.io/myorg/my-image:")
    assert image.python_version == (3, 11)
    assert image.base_image == "python:3.11-slim-bookworm"
    assert _user_layers(image) == (
        PipPackages(("pandas", "numpy")),
        AptPackages(("curl", "git")),
        Env((("MY_VAR", "value"),)),
    )


def test_seed_full_builder_chain(project: Path) -> None:
    # The chain from seed 000 section 3, in a project that has the files it names.
    image = (
        Image.from_debian_base(
            python_version=(3, 12),
            registry="ghcr.io/myorg",
            name="my-image",
            # registry_secret="my-secret",  # For private registries
        )
        # Python packages
        .with_pip_packages("pandas", "numpy>=1.24.0", pre=True)
        .with_requirements(Path("requirements.txt"))
        .with_uv_project(Path("pyproject.toml"))
        .with_poetry_project(Path("pyproject.toml"))
        # System packages
        .with_apt_packages("curl", "git", "build-essential")
        # Custom commands
        .with_commands(
            [
                "mkdir -p /app/data",
                "chmod +x /app/scripts/*.sh",
            ]
        )
        # Files
        .with_source_file(Path("config.yaml"), dst="/app/config.yaml")
        .with_source_folder(Path("./src"), dst="/app/src")
        .with_dockerignore(Path(".dockerignore"))
        # Environment
        .with_env_vars({"LOG_LEVEL": "INFO", "WORKERS": "4"})
        .with_workdir("/app")
    )
    assert _user_layers(image) == (
        PipPackages(("pandas", "numpy>=1.24.0"), PipOptions(pre=True)),
        Requirements(Path("requirements.txt")),
        UVProject(Path("pyproject.toml"), Path("uv.lock")),
        PoetryProject(Path("pyproject.toml"), Path("poetry.lock")),
        AptPackages(("curl", "git", "build-essential")),
        Commands(("mkdir -p /app/data", "chmod +x /app/scripts/*.sh")),
        CopyConfig(Path("config.yaml"), "/app/config.yaml", is_dir=False),
        CopyConfig(Path("src"), "/app/src", is_dir=True),
        DockerIgnore(Path(".dockerignore")),
        Env((("LOG_LEVEL", "INFO"), ("WORKERS", "4"))),
        WorkDir("/app"),
    )
    assert image.uri.startswith("ghcr.io/myorg/my-image:")
    (project / "requirements.txt").unlink()
    with pytest.raises(FileNotFoundError, match="requirements file requirements.txt does not exist"):
        image.validate()


def test_missing_build_inputs_fail_where_they_are_written(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Image.from_debian_base(name="x")
    with pytest.raises(FileNotFoundError, match="requirements file reqs.txt does not exist"):
        base.with_requirements("reqs.txt")
    with pytest.raises(FileNotFoundError, match="source folder lib does not exist"):
        base.with_source_folder("lib")
    with pytest.raises(FileNotFoundError, match="uv.lock file other/uv.lock"):
        base.with_uv_project("pyproject.toml", uvlock="other/uv.lock")
    with pytest.raises(FileNotFoundError, match="Dockerfile Dockerfile.gpu"):
        Image.from_dockerfile("Dockerfile.gpu", registry="r.io", name="gpu")
    # A task's module is imported again inside the built image, where build inputs are gone.
    monkeypatch.setenv("FLYTE_INTERNAL_EXECUTION_ID", "r1")
    assert base.with_requirements("reqs.txt").layers[-1] == Requirements(Path("reqs.txt"))


def test_seed_private_registry() -> None:
    image = Image.from_debian_base(
        registry="private.registry.com",
        name="my-image",
        registry_secret="my-registry-secret",  # Or Secret object
    )
    assert image.registry_secret == Secret(key="my-registry-secret")
    assert image.uri.startswith("private.registry.com/my-image:")
    with_obj = Image.from_debian_base(
        registry="private.registry.com", name="my-image", registry_secret=Secret(key="s")
    )
    assert with_obj.registry_secret == Secret(key="s")


def test_seed_list_arguments_from_003() -> None:
    image = (
        Image.from_debian_base()
        .with_apt_packages(["git"])
        .with_pip_packages(["pandas", "numpy"])
        .with_env_vars({"MY_VAR": "value"})
    )
    assert _user_layers(image) == (
        AptPackages(("git",)),
        PipPackages(("pandas", "numpy")),
        Env((("MY_VAR", "value"),)),
    )


def test_seed_default_images() -> None:
    plain = Image.from_debian_base()
    assert plain.python_version == sys.version_info[:2]
    assert plain.platform == ("linux/amd64", "linux/arm64")
    assert plain.registry == DEFAULT_REGISTRY and plain.name == DEFAULT_IMAGE_NAME
    assert plain.uri.startswith(f"{DEFAULT_REGISTRY}/{DEFAULT_IMAGE_NAME}:")
    reuse = Image.from_debian_base().with_pip_packages("unionai-reuse>=0.1.10")
    assert reuse.layers[-1] == PipPackages(("unionai-reuse>=0.1.10",))
    many = Image.from_debian_base().with_pip_packages("torch", "pandas", "scikit-learn")
    assert many.layers[-1] == PipPackages(("torch", "pandas", "scikit-learn"))
    ml = Image.from_debian_base(name="ml-image", python_version=(3, 11)).with_pip_packages(
        "pandas", "scikit-learn", "joblib", "pyarrow"
    )
    # A name without a registry stays registry-less rather than landing in Flyte's registry.
    assert ml.registry is None and ml.uri.startswith("ml-image:")


def test_debian_base_installs_the_sdk() -> None:
    from flyte._version import __version__

    assert FlyteSdk(__version__) in Image.from_debian_base().layers
    assert FlyteSdk("2.0.1") in Image.from_debian_base(flyte_version="v2.0.1").layers
    bare = Image.from_debian_base(install_flyte=False)
    assert not any(isinstance(layer, FlyteSdk) for layer in bare.layers)
    with pytest.raises(ValueError, match="no effect with install_flyte=False"):
        Image.from_debian_base(install_flyte=False, flyte_version="2.0.0")
    with pytest.raises(ValueError, match="flyte_version='latest' is not a version"):
        Image.from_debian_base(flyte_version="latest")
    with pytest.raises(TypeError, match="install_flyte='yes'"):
        Image.from_debian_base(install_flyte="yes")  # type: ignore[arg-type]


# ---- constructors ---------------------------------------------------------------------------------


def test_from_base() -> None:
    img = Image.from_base("python:3.11-slim")
    assert img.uri == "python:3.11-slim" and img.layers == ()
    for uri in (
        "ghcr.io/unionai-oss/flyte:latest",
        "docker.io/myorg/myimage",
        "localhost:5000/a/b:1.0",
        "ubuntu@sha256:" + "a" * 64,
        "registry.example.com:443/team/img:v1@sha256:" + "0" * 64,
    ):
        assert Image.from_base(uri).uri == uri
    for bad in ("Bad Uri", "", "python:", "UPPER/case:1", "img:tag with space", "https://ghcr.io/x/y:1"):
        with pytest.raises(InvalidImageNameError, match="is not a valid image reference"):
            Image.from_base(bad)
    with pytest.raises(TypeError, match="image_uri=None"):
        Image.from_base(None)  # type: ignore[arg-type]


def test_from_base_needs_a_name_before_layers() -> None:
    base = Image.from_base("python:3.11-slim")
    with pytest.raises(
        ValueError, match=r"needs a name; call Image.from_base\('python:3.11-slim'\).clone\(name="
    ):
        base.with_pip_packages("requests")
    named = base.clone(name="mine", registry="ghcr.io/me").with_pip_packages("requests")
    assert named.uri.startswith("ghcr.io/me/mine:") and named.base_image == "python:3.11-slim"
    # Retagging alone (no layers) still gets a content tag under the new name.
    assert base.clone(name="mine").uri.startswith("mine:")


def test_from_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nRUN echo hi\n")
    img = Image.from_dockerfile(dockerfile, registry="ghcr.io/myorg", name="custom")
    assert img.dockerfile == dockerfile and img.platform == ("linux/amd64",)
    assert img.uri.startswith("ghcr.io/myorg/custom:")
    img.validate()
    multi = Image.from_dockerfile(
        str(dockerfile), "ghcr.io/myorg", "custom", platform=("linux/amd64", "linux/arm64")
    )
    assert multi.platform == ("linux/amd64", "linux/arm64")
    assert Image.from_dockerfile(dockerfile, "r.io/x", "y", platform="linux/arm64").platform == (
        "linux/arm64",
    )
    with pytest.raises(ValueError, match="cannot add layers to an image built from .*Dockerfile"):
        img.with_pip_packages("x")
    with pytest.raises(FileNotFoundError, match="Dockerfile"):
        Image.from_dockerfile(tmp_path / "missing", "r.io/x", "y").validate()
    with pytest.raises(InvalidImageNameError, match=r"Image.from_dockerfile\(\): name='Custom Image'"):
        Image.from_dockerfile(dockerfile, "ghcr.io/myorg", "Custom Image")


def test_dockerfile_content_determines_the_tag(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "Dockerfile").write_text("FROM alpine\n")
    (b / "Dockerfile").write_text("FROM alpine\n")
    tag_a = Image.from_dockerfile(a / "Dockerfile", "r.io/x", "y").tag
    assert tag_a == Image.from_dockerfile(b / "Dockerfile", "r.io/x", "y").tag
    (b / "Dockerfile").write_text("FROM alpine:3\n")
    assert tag_a != Image.from_dockerfile(b / "Dockerfile", "r.io/x", "y").tag


def test_from_uv_script(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text('# /// script\n# dependencies = ["httpx"]\n# ///\n')
    img = Image.from_uv_script(script, name="job", registry="ghcr.io/me", python_version=(3, 12), pre=True)
    assert img.layers[-1] == UVScript(script, PipOptions(pre=True))
    assert img.python_version == (3, 12) and img.uri.startswith("ghcr.io/me/job:")
    img.validate()
    with pytest.raises(ValueError, match=r"script='job.sh' must be a Python file"):
        Image.from_uv_script("job.sh", name="job")
    with pytest.raises(FileNotFoundError, match="uv script"):
        Image.from_uv_script(tmp_path / "nope.py", name="job").validate()


def test_direct_construction_needs_exactly_one_base() -> None:
    with pytest.raises(ValueError, match="exactly one of base_image or dockerfile"):
        Image()
    with pytest.raises(ValueError, match="exactly one of base_image or dockerfile"):
        Image(base_image="python:3.11", dockerfile=Path("Dockerfile"))
    assert Image(base_image="python:3.11").uri == "python:3.11"
    with pytest.raises(TypeError, match="layers must be Layer objects"):
        Image(base_image="python:3.11", name="x", layers=("pip install x",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registry_secret=3"):
        Image(base_image="python:3.11", registry_secret=3)  # type: ignore[arg-type]


# ---- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("3.11", r"python_version=\(3, 11\)"),
        (3.12, r"python_version=\(3, 12\)"),
        ("latest", r"python_version=\(3, 11\)"),
    ],
)
def test_python_version_strings_rejected_with_hint(value: object, hint: str) -> None:
    with pytest.raises(TypeError, match=rf"python_version={value!r} must be a tuple, e.g. {hint}"):
        Image.from_debian_base(python_version=value)  # type: ignore[arg-type]


def test_python_version_validation() -> None:
    with pytest.raises(ValueError, match=r"python_version=\(2, 7\) is not supported"):
        Image.from_debian_base(python_version=(2, 7))
    with pytest.raises(ValueError, match=r"python_version=\(3, 8\) is not supported"):
        Image.from_debian_base(python_version=(3, 8))
    with pytest.raises(TypeError, match=r"\(major, minor\) tuple"):
        Image.from_debian_base(python_version=(3, 11, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\(major, minor\) tuple"):
        Image.from_debian_base(python_version=(3, "11"))  # type: ignore[arg-type]
    assert Image.from_debian_base(python_version=[3, 13]).python_version == (3, 13)  # type: ignore[arg-type]


def test_platform_validation() -> None:
    assert Image.from_debian_base(platform=("linux/amd64",)).platform == ("linux/amd64",)
    assert Image.from_debian_base(platform="linux/arm64").platform == ("linux/arm64",)
    assert Image.from_debian_base(platform=("linux/arm64", "linux/arm64")).platform == ("linux/arm64",)
    with pytest.raises(
        ValueError, match="platform 'linux/386' is not supported; use 'linux/amd64' or 'linux/arm64'"
    ):
        Image.from_debian_base(platform=("linux/386",))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="platform=()"):
        Image.from_debian_base(platform=())


def test_name_and_registry_validation() -> None:
    with pytest.raises(
        InvalidImageNameError, match=r"name='My Image' is not a valid image name.*name='my-image'"
    ):
        Image.from_debian_base(name="My Image")
    with pytest.raises(ValueError, match=r"name='img:1.0' must not contain a tag .* name='img'"):
        Image.from_debian_base(name="img:1.0")
    with pytest.raises(InvalidImageNameError, match=r"registry='https://ghcr.io/x/' .* registry='ghcr.io/x'"):
        Image.from_debian_base(registry="https://ghcr.io/x/")
    with pytest.raises(InvalidImageNameError, match="registry='ghcr.io/My Org' is not a valid registry"):
        Image.from_debian_base(registry="ghcr.io/My Org")
    with pytest.raises(TypeError, match="name=5"):
        Image.from_debian_base(name=5)  # type: ignore[arg-type]
    assert Image.from_debian_base(registry="localhost:5000", name="team/app_v2").uri.startswith(
        "localhost:5000/team/app_v2:"
    )
    # A registry without a name keeps the default image name.
    assert Image.from_debian_base(registry="ghcr.io/me").uri.startswith("ghcr.io/me/flyte:")


def test_pip_validation() -> None:
    base = Image.from_debian_base()
    with pytest.raises(ValueError, match=r"Image.with_pip_packages\(\) needs at least one package"):
        base.with_pip_packages()
    with pytest.raises(ValueError, match=r"needs at least one package"):
        base.with_pip_packages([])
    with pytest.raises(ValueError, match="looks like a flag, not a package; pass flags via extra_args="):
        base.with_pip_packages("--no-deps")
    with pytest.raises(TypeError, match="is not a package name string"):
        base.with_pip_packages(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a package name"):
        base.with_pip_packages("   ")
    with pytest.raises(TypeError, match="pre='yes'"):
        base.with_pip_packages("x", pre="yes")  # type: ignore[arg-type]
    img = base.with_pip_packages(
        "private-pkg",
        index_url="https://pypi.example/simple",
        extra_index_urls="https://extra/simple",
        extra_args="--no-deps",
    )
    assert img.layers[-1] == PipPackages(
        ("private-pkg",),
        PipOptions("https://pypi.example/simple", ("https://extra/simple",), False, "--no-deps"),
    )
    many = base.with_pip_packages("a", extra_index_urls=["https://e1", "https://e2"])
    assert many.layers[-1].options.extra_index_urls == ("https://e1", "https://e2")  # type: ignore[attr-defined]


def test_requirements_dispatch(project: Path) -> None:
    _make(project, "reqs/dev.txt", "proj/pyproject.toml", "proj/uv.lock", "proj/poetry.lock")
    base = Image.from_debian_base()
    assert base.with_requirements("reqs/dev.txt").layers[-1] == Requirements(Path("reqs/dev.txt"))
    assert base.with_requirements("proj/uv.lock").layers[-1] == UVProject(
        Path("proj/pyproject.toml"), Path("proj/uv.lock")
    )
    assert base.with_requirements("proj/poetry.lock").layers[-1] == PoetryProject(
        Path("proj/pyproject.toml"), Path("proj/poetry.lock")
    )
    with pytest.raises(ValueError, match=r"'environment.yml' is not a requirements file; use a .txt file"):
        base.with_requirements("environment.yml")
    with pytest.raises(TypeError, match="expected a path"):
        base.with_requirements(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a path"):
        base.with_requirements("")


def test_project_layers(project: Path) -> None:
    _make(project, "p/pyproject.toml", "locks/uv.lock")
    base = Image.from_debian_base()
    uv = base.with_uv_project(
        "p/pyproject.toml", uvlock=Path("locks/uv.lock"), project_install_mode="install_project"
    )
    assert uv.layers[-1] == UVProject(
        Path("p/pyproject.toml"), Path("locks/uv.lock"), PipOptions(), "install_project"
    )
    poetry = base.with_poetry_project(Path("pyproject.toml"), extra_args="--no-root")
    assert poetry.layers[-1] == PoetryProject(Path("pyproject.toml"), Path("poetry.lock"), "--no-root")
    with pytest.raises(ValueError, match="must point at a pyproject.toml file"):
        base.with_uv_project("setup.py")
    with pytest.raises(ValueError, match="must point at a pyproject.toml file"):
        base.with_poetry_project("poetry.lock")
    with pytest.raises(ValueError, match="project_install_mode='all'"):
        base.with_uv_project("pyproject.toml", project_install_mode="all")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="extra_args=1"):
        base.with_poetry_project("pyproject.toml", extra_args=1)  # type: ignore[arg-type]


def test_apt_commands_env_workdir_validation() -> None:
    base = Image.from_debian_base()
    with pytest.raises(ValueError, match="pass each package separately"):
        base.with_apt_packages("curl git")
    with pytest.raises(ValueError, match=r"Image.with_apt_packages\(\) needs at least one package"):
        base.with_apt_packages()
    assert base.with_commands("echo hi").layers[-1] == Commands(("echo hi",))
    with pytest.raises(ValueError, match="starts with RUN; give the shell command only: 'pip install x'"):
        base.with_commands(["RUN pip install x"])
    with pytest.raises(ValueError, match="needs at least one command"):
        base.with_commands([])
    with pytest.raises(ValueError, match="is not a shell command"):
        base.with_commands([""])
    with pytest.raises(ValueError, match="'BAD-NAME' is not a valid environment variable name"):
        base.with_env_vars({"BAD-NAME": "1"})
    with pytest.raises(TypeError, match="the value of 'WORKERS' must be a string, got 4; use '4'"):
        base.with_env_vars({"WORKERS": 4})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must be a dict"):
        base.with_env_vars([("A", "b")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs at least one variable"):
        base.with_env_vars({})
    with pytest.raises(ValueError, match="workdir='' must be a directory path"):
        base.with_workdir("")
    assert base.with_env_vars({"A": "1"}).layers[-1].as_dict() == {"A": "1"}  # type: ignore[attr-defined]


def test_source_folder_destinations(project: Path) -> None:
    _make(project, "pkg/lib/", "a.cfg")
    base = Image.from_debian_base()
    assert base.with_source_folder(Path("src")).layers[-1] == CopyConfig(Path("src"), "./src", is_dir=True)
    assert base.with_source_folder("pkg/lib", copy_contents_only=True).layers[-1] == CopyConfig(
        Path("pkg/lib"), ".", is_dir=True
    )
    assert base.with_source_folder(".").layers[-1] == CopyConfig(Path("."), ".", is_dir=True)
    assert base.with_source_file("a.cfg").layers[-1] == CopyConfig(Path("a.cfg"), ".", is_dir=False)
    with pytest.raises(ValueError, match="dst='' must be a path inside the image"):
        base.with_source_file("a.cfg", dst="")


def test_validate_checks_local_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "poetry.lock").write_text("")
    (tmp_path / ".dockerignore").write_text("*.pyc\n")
    (tmp_path / "c.yaml").write_text("a: 1\n")
    img = (
        Image.from_debian_base()
        .with_requirements(tmp_path / "requirements.txt")
        .with_uv_project(tmp_path / "pyproject.toml")
        .with_poetry_project(tmp_path / "pyproject.toml")
        .with_source_folder(tmp_path / "src")
        .with_source_file(tmp_path / "c.yaml")
        .with_dockerignore(tmp_path / ".dockerignore")
    )
    img.validate()
    with pytest.raises(FileNotFoundError, match="source folder"):
        img.with_source_folder(tmp_path / "c.yaml").validate()
    with pytest.raises(FileNotFoundError, match="source file"):
        img.with_source_file(tmp_path / "src").validate()
    (tmp_path / "uv.lock").unlink()
    with pytest.raises(FileNotFoundError, match="uv.lock file"):
        img.validate()


# ---- immutability ---------------------------------------------------------------------------------


def test_builders_never_modify_the_original(project: Path) -> None:
    _make(project, "r.txt", "f", "d/")
    base = Image.from_debian_base(name="x", registry="ghcr.io/me")
    snapshot = dataclasses.replace(base)
    uri = base.uri
    derived = [
        base.with_pip_packages("a"),
        base.with_requirements("r.txt"),
        base.with_uv_project("pyproject.toml"),
        base.with_poetry_project("pyproject.toml"),
        base.with_apt_packages("curl"),
        base.with_commands(["true"]),
        base.with_source_file("f"),
        base.with_source_folder("d"),
        base.with_dockerignore(".dockerignore"),
        base.with_env_vars({"A": "b"}),
        base.with_workdir("/w"),
        base.clone(name="y"),
        base.clone(registry="ghcr.io/other"),
        base.clone(registry_secret="s"),
    ]
    assert base == snapshot and base.uri == uri
    for img in derived:
        assert img is not base and img != base
    assert len({img.uri for img in derived[:11]} | {uri}) == 12


def test_image_is_frozen_and_hashable() -> None:
    img = Image.from_debian_base().with_env_vars({"A": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        img.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        img.layers[-1].env_vars = ()  # type: ignore[attr-defined,misc]
    assert hash(img) == hash(Image.from_debian_base().with_env_vars({"A": "1"}))
    assert {img: 1}[Image.from_debian_base().with_env_vars({"A": "1"})] == 1


def test_clone_keeps_layers_and_changes_only_the_location() -> None:
    img = Image.from_debian_base().with_pip_packages("x")
    moved = img.clone(name="mine", registry="ghcr.io/me", registry_secret="pull")
    assert moved.layers == img.layers and moved.tag == img.tag
    assert moved.uri == f"ghcr.io/me/mine:{img.tag}"
    assert moved.registry_secret == Secret(key="pull")
    with pytest.raises(InvalidImageNameError, match=r"Image.clone\(\): name='Bad Name'"):
        img.clone(name="Bad Name")
    with pytest.raises(InvalidImageNameError, match=r"Image.clone\(\): registry="):
        img.clone(registry="http://x")


# ---- deterministic uri ----------------------------------------------------------------------------


def _example() -> Image:
    return (
        Image.from_debian_base(python_version=(3, 11), name="det", registry="ghcr.io/me")
        .with_pip_packages("pandas", "numpy")
        .with_apt_packages("git")
        .with_env_vars({"A": "1", "B": "2"})
        .with_commands(["echo hi"])
    )


def test_same_definition_same_uri() -> None:
    assert _example().uri == _example().uri
    assert _example().tag != ""
    assert len(_example().tag) == 32 and all(c in "0123456789abcdef" for c in _example().tag)


def test_uri_is_stable_across_processes() -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests/unit');"
        "from test_vo_image import _example; print(_example().uri)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {_example().uri}


def test_any_content_change_changes_the_tag() -> None:
    tags = {
        _example().tag,
        _example().with_pip_packages("x").tag,
        Image.from_debian_base(python_version=(3, 12), name="det", registry="ghcr.io/me")
        .with_pip_packages("pandas", "numpy")
        .with_apt_packages("git")
        .with_env_vars({"A": "1", "B": "2"})
        .with_commands(["echo hi"])
        .tag,
        Image.from_debian_base(python_version=(3, 11), name="det", registry="ghcr.io/me")
        .with_pip_packages("numpy", "pandas")
        .with_apt_packages("git")
        .with_env_vars({"A": "1", "B": "2"})
        .with_commands(["echo hi"])
        .tag,
        Image.from_debian_base(
            python_version=(3, 11), name="det", registry="ghcr.io/me", platform="linux/amd64"
        )
        .with_pip_packages("pandas", "numpy")
        .with_apt_packages("git")
        .with_env_vars({"A": "1", "B": "2"})
        .with_commands(["echo hi"])
        .tag,
        Image.from_debian_base(python_version=(3, 11), name="det", registry="ghcr.io/me")
        .with_pip_packages("pandas", "numpy", pre=True)
        .with_apt_packages("git")
        .with_env_vars({"A": "1", "B": "2"})
        .with_commands(["echo hi"])
        .tag,
    }
    assert len(tags) == 6


def test_name_registry_and_secret_do_not_change_the_tag() -> None:
    a = _example()
    assert a.clone(name="other", registry="docker.io/x", registry_secret="s").tag == a.tag


def test_layer_kinds_with_equal_payload_hash_differently() -> None:
    base = Image.from_debian_base()
    assert base.with_apt_packages("git").tag != base.with_pip_packages("git").tag
    assert base.with_commands(["git"]).tag != base.with_apt_packages("git").tag


def test_file_contents_drive_the_tag_not_their_location(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "requirements.txt").write_text("requests==2.32.0\n")
    one = Image.from_debian_base().with_requirements(tmp_path / "one" / "requirements.txt")
    two = Image.from_debian_base().with_requirements(tmp_path / "two" / "requirements.txt")
    assert one.tag == two.tag
    (tmp_path / "two" / "requirements.txt").write_text("requests==2.31.0\n")
    assert Image.from_debian_base().with_requirements(tmp_path / "two" / "requirements.txt").tag != one.tag


def test_folder_digest(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    first = content_digest(src)
    # Bytecode caches and VCS metadata do not change what gets built.
    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref\n")
    assert content_digest(src) == first
    (src / "pkg" / "mod.py").write_text("x = 2\n")
    assert content_digest(src) != first
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    (src / "pkg" / "mod.py").rename(src / "pkg" / "renamed.py")
    assert content_digest(src) != first
    assert content_digest(tmp_path / "missing") == {"missing": (tmp_path / "missing").as_posix()}
    assert set(content_digest(src)) == {"dir"}
    assert set(content_digest(src / "pkg" / "renamed.py")) == {"file"}


def test_uri_forms() -> None:
    assert Image.from_base("alpine:3").uri == "alpine:3"
    assert Image.from_debian_base(name="solo").uri == f"solo:{Image.from_debian_base(name='solo').tag}"
    img = Image.from_debian_base(name="n", registry="r.io/team")
    assert img.uri == f"r.io/team/n:{img.tag}"


def test_clone_takes_the_references_arguments() -> None:
    from flyte._image import PipPackages

    base = Image.from_debian_base(python_version=(3, 11), registry="localhost:5000", name="base")
    assert base.extendable and not Image.from_base("python:3.11-slim").extendable
    moved = base.clone("ghcr.io/acme", name="moved", platform="linux/arm64", python_version=(3, 12))
    assert (moved.registry, moved.name, moved.platform, moved.python_version) == (
        "ghcr.io/acme",
        "moved",
        ("linux/arm64",),
        (3, 12),
    )
    layered = base.clone(addl_layer=PipPackages(("requests",)))
    assert layered.layers[-1] == PipPackages(("requests",)) and layered.uri != base.uri
    rebased = base.clone(base_image="python:3.12-slim")
    assert rebased.base_image == "python:3.12-slim" and rebased.tag != base.tag
    # Extendability is not content: the same layers give the same tag.
    assert base.clone(extendable=False).tag == base.tag
    plain = Image.from_base("python:3.11-slim").clone(name="plain", registry="r.example")
    with pytest.raises(ValueError, match="not extendable"):
        plain.clone(addl_layer=PipPackages(("x",)))
    assert plain.clone(extendable=True).clone(addl_layer=PipPackages(("x",))).layers
    with pytest.raises(TypeError, match="Layer"):
        base.clone(addl_layer="pip install x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="extendable"):
        Image(base_image="python:3.11-slim", extendable="yes")  # type: ignore[arg-type]
