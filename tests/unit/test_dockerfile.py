"""Images rendered as Dockerfiles: one step per layer, in order, with the files each reads staged
in the build context; this SDK's wheel packed from the running installation."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from flyte import Image
from flyte._imagebuild._dockerfile import render, script_dependencies
from flyte._imagebuild._registry import is_loopback, parse, qualified
from flyte._imagebuild._wheel import WheelError, fits, repack_installed, sdk_wheels


def _no_wheels(_version: str) -> list[Path]:
    return []


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n")
    (tmp_path / "uv.lock").write_text("version = 1\n")
    (tmp_path / "poetry.lock").write_text("")
    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text("X = 1\n")
    (tmp_path / "src" / "junk.tmp").write_text("")
    (tmp_path / ".dockerignore").write_text("# comment\n*.tmp\n!keep.tmp\n/build\n")
    return tmp_path


def test_every_seed_builder_method_is_one_step_in_order(project: Path) -> None:
    # seed 000 section 3's chain
    image = (
        Image.from_debian_base(python_version=(3, 12), registry="ghcr.io/myorg", name="my-image")
        .with_pip_packages("pandas", "numpy>=1.24.0", pre=True)
        .with_requirements(Path("requirements.txt"))
        .with_uv_project(Path("pyproject.toml"))
        .with_poetry_project(Path("pyproject.toml"))
        .with_apt_packages("curl", "git", "build-essential")
        .with_commands(["mkdir -p /app/data", "chmod +x /app/scripts/*.sh"])
        .with_source_file(Path("config.yaml"), dst="/app/config.yaml")
        .with_source_folder(Path("./src"), dst="/app/src")
        .with_dockerignore(Path(".dockerignore"))
        .with_env_vars({"LOG_LEVEL": "INFO", "WORKERS": "4"})
        .with_workdir("/app")
    )
    built = render(image, _no_wheels)
    steps = [line.split(" ", 1)[0] for line in built.dockerfile.splitlines()]
    assert steps[0] == "FROM"
    text = built.dockerfile
    assert text.startswith("FROM docker.io/library/python:3.12-slim-bookworm\n")
    order = [
        "apt-get install -y --no-install-recommends build-essential ca-certificates",
        "RUN python -m venv /opt/venv",
        'ENV VIRTUAL_ENV="/opt/venv"',
        "WORKDIR /root",
        "--no-index --no-deps flyte==",
        "--pre pandas 'numpy>=1.24.0'",
        "-r /tmp/flyte-build/",
        "uv export --frozen --no-hashes --no-emit-project",
        "POETRY_VIRTUALENVS_CREATE=false poetry install --no-interaction --no-root",
        "--no-install-recommends curl git build-essential",
        "RUN mkdir -p /app/data",
        "RUN chmod +x /app/scripts/*.sh",
        "config.yaml /app/config.yaml",
        "/src/ /app/src/",
        'ENV LOG_LEVEL="INFO" WORKERS="4"',
        "WORKDIR /app",
    ]
    positions = [text.index(fragment) for fragment in order]
    assert positions == sorted(positions), "steps are out of order"
    # pip steps share a cache mount, so a rebuilt step does not download everything again.
    assert "--mount=type=cache,target=/root/.cache/pip" in text
    # Staged inputs, and the .dockerignore applied to the copied folder only.
    staged = {Path(k).name for k in built.files}
    assert {"requirements.txt", "pyproject.toml", "uv.lock", "poetry.lock", "config.yaml"} <= staged
    folder = next(k for k, v in built.files.items() if v == Path("src"))
    assert built.ignore == [f"{folder}/*.tmp", f"!{folder}/keep.tmp", f"{folder}/build"]


def test_the_context_is_laid_out_with_the_ignore_file(project: Path, tmp_path: Path) -> None:
    image = (
        Image.from_base("python:3.11-slim")
        .clone(name="ctx", registry="r.io")
        .with_source_folder("src", dst="/app")
        .with_dockerignore(".dockerignore")
    )
    out = render(image, _no_wheels).write(tmp_path / "context")
    assert (out / "Dockerfile").read_text().startswith("FROM docker.io/library/python:3.11-slim\n")
    copied = list(out.glob("_flyte/*/src/mod.py"))
    assert len(copied) == 1
    assert "*.tmp" in (out / ".dockerignore").read_text()


def test_uv_scripts_install_their_declared_dependencies(project: Path) -> None:
    script = project / "job.py"
    script.write_text(
        '# /// script\n# requires-python = ">=3.10"\n# dependencies = ["requests>=2", "rich"]\n# ///\nprint(1)\n'
    )
    assert script_dependencies(script) == ["requests>=2", "rich"]
    text = render(Image.from_uv_script(script, name="job", registry="r.io"), _no_wheels).dockerfile
    assert "'requests>=2' rich" in text
    (project / "bad.py").write_text("# /// script\n# dependencies = [\n")
    with pytest.raises(ValueError, match="not closed"):
        script_dependencies(project / "bad.py")
    (project / "none.py").write_text("print(1)\n")
    with pytest.raises(ValueError, match="no '# /// script' metadata block"):
        script_dependencies(project / "none.py")


def test_pip_options_and_project_installs(project: Path) -> None:
    base = Image.from_base("python:3.11-slim").clone(name="o", registry="r.io")
    text = render(
        base.with_pip_packages(
            "torch", index_url="https://i.example/simple", extra_index_urls=["https://e1", "https://e2"]
        )
        .with_uv_project("pyproject.toml", project_install_mode="install_project")
        .with_poetry_project(
            "pyproject.toml", extra_args="--only main", project_install_mode="install_project"
        ),
        _no_wheels,
    ).dockerfile
    assert (
        "--index-url https://i.example/simple --extra-index-url https://e1 --extra-index-url https://e2 torch"
        in text
    )
    assert "python -m pip install --no-deps /tmp/flyte-build/" in text
    assert "poetry install --no-interaction --only main" in text and "--no-root" not in text


def test_a_dockerfile_image_is_built_from_its_own_file(project: Path) -> None:
    (project / "Dockerfile.gpu").write_text("FROM scratch\n")
    image = Image.from_dockerfile("Dockerfile.gpu", registry="r.io", name="gpu")
    assert render(image, _no_wheels).dockerfile == "FROM scratch\n"


def test_a_file_removed_after_definition_stops_the_render(project: Path) -> None:
    image = (
        Image.from_base("python:3.11").clone(name="x", registry="r.io").with_requirements("requirements.txt")
    )
    (project / "requirements.txt").unlink()
    with pytest.raises(FileNotFoundError, match="requirements file requirements.txt"):
        render(image, _no_wheels)


def test_references_are_read_as_docker_reads_them() -> None:
    assert qualified("python:3.11") == "docker.io/library/python:3.11"
    assert qualified("ghcr.io/org/img:1") == "ghcr.io/org/img:1"
    assert qualified("localhost:5000/a/b") == "localhost:5000/a/b:latest"
    assert qualified("org/img@sha256:" + "a" * 64) == "docker.io/org/img@sha256:" + "a" * 64
    assert parse("127.0.0.1:5000/x:t").insecure and parse("[::1]:5000/x:t").insecure
    assert not parse("registry.example.com/x:t").insecure
    assert is_loopback("localhost") and not is_loopback("10.0.0.1:5000")


def test_the_installed_sdk_packs_into_an_installable_wheel(tmp_path: Path) -> None:
    wheel = repack_installed(tmp_path / "wheels")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        record = z.read(next(n for n in names if n.endswith(".dist-info/RECORD"))).decode()
    assert "flyte/__init__.py" in names and any(n.startswith("flyte/_core") for n in names)
    assert not any("__pycache__" in n for n in names)
    assert all(n in record for n in names)
    # pip accepts it (hashes and metadata are consistent) into a fresh target folder.
    target = tmp_path / "target"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (target / "flyte" / "_image.py").exists()


def test_wheels_for_other_platforms_come_from_the_wheelhouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    version = metadata.version("flyte")
    assert fits(Path(f"flyte-{version}-cp310-abi3-manylinux_2_34_aarch64.whl"), "linux/arm64")
    assert not fits(Path(f"flyte-{version}-cp310-abi3-manylinux_2_34_x86_64.whl"), "linux/arm64")
    monkeypatch.delenv("FLYTE_WHEELHOUSE", raising=False)
    with pytest.raises(WheelError, match="FLYTE_WHEELHOUSE"):
        sdk_wheels(version, ("linux/amd64", "linux/arm64"), tmp_path / "out")
    house = tmp_path / "house"
    house.mkdir()
    for machine in ("x86_64", "aarch64"):
        (house / f"flyte-{version}-cp310-abi3-manylinux_2_28_{machine}.whl").write_bytes(b"wheel")
    monkeypatch.setenv("FLYTE_WHEELHOUSE", str(house))
    chosen = sdk_wheels(version, ("linux/amd64", "linux/arm64"), tmp_path / "out")
    # This machine's platform gets the running installation (a wheelhouse wheel of the same
    # version may be an older build); the other platform comes from the wheelhouse.
    assert len(chosen) == 2
    (host,) = [w for w in chosen if fits(w, "linux/amd64")]
    (arm,) = [w for w in chosen if fits(w, "linux/arm64")]
    assert zipfile.is_zipfile(host) and "manylinux_2_28" not in host.name
    assert arm.name == f"flyte-{version}-cp310-abi3-manylinux_2_28_aarch64.whl"
    assert arm.read_bytes() == b"wheel"
    assert sdk_wheels(version, ("linux/arm64",), tmp_path / "arm-only")[0].read_bytes() == b"wheel"
    with pytest.raises(WheelError, match="no flyte 9.9.9 wheel"):
        sdk_wheels("9.9.9", ("linux/amd64",), tmp_path / "out")


def test_build_secrets_are_mounted_for_their_step_only(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flyte
    from flyte._imagebuild._credentials import CredentialsError, secret_mount_args
    from flyte._imagebuild._dockerfile import secret_id

    token = flyte.Secret(key="pypi_token")
    ssh = flyte.Secret(key="deploy_key", group="git", mount="/etc/flyte/secrets")
    base = Image.from_debian_base(registry="localhost:5000", name="s", install_flyte=False)
    image = (
        base.with_pip_packages(
            "private-pkg", index_url="https://pypi.example/simple", secret_mounts="pypi_token"
        )
        .with_commands(["git clone repo"], [ssh, token])
        .with_apt_packages("git")
    )
    lines = render(image, _no_wheels).dockerfile.splitlines()
    pip, clone, apt = lines[-3:]
    tid, sid = secret_id(token), secret_id(ssh)
    assert pip.startswith(
        f"RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id={tid},target=/run/secrets/{tid} "
        f'export PYPI_TOKEN="$(cat /run/secrets/{tid})" && python -m pip install'
    )
    assert clone == (
        f"RUN --mount=type=secret,id={sid},target=/etc/flyte/secrets/deploy_key "
        f"--mount=type=secret,id={tid},target=/run/secrets/{tid} "
        f'export PYPI_TOKEN="$(cat /run/secrets/{tid})" && git clone repo'
    )
    assert "secret" not in apt
    # Secrets change the step's fingerprint (so the tag); steps without keep theirs.
    assert (
        image.uri
        != base.with_pip_packages("private-pkg", index_url="https://pypi.example/simple")
        .with_commands(["git clone repo"])
        .with_apt_packages("git")
        .uri
    )

    # The builder gets each secret once, from the environment or the data dir's store.
    monkeypatch.setenv("FLYTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYPI_TOKEN", "t0k")
    monkeypatch.delenv("GIT_DEPLOY_KEY", raising=False)
    with pytest.raises(
        CredentialsError, match=r"secret 'deploy_key'.*\$GIT_DEPLOY_KEY.*flyte create secret deploy_key"
    ):
        with secret_mount_args(image):
            pass
    monkeypatch.setenv("GIT_DEPLOY_KEY", "k3y")
    with secret_mount_args(image) as args:
        files = {a.split(",")[0]: Path(a.split("src=")[1]) for a in args if a.startswith("id=")}
        assert args.count("--secret") == 2
        assert files[f"id={tid}"].read_text() == "t0k" and files[f"id={sid}"].read_text() == "k3y"
        assert oct(files[f"id={tid}"].stat().st_mode & 0o777) == "0o600"
    assert not files[f"id={tid}"].exists()  # removed after the build
    with pytest.raises(ValueError, match="with_commands.*secret_mounts"):
        base.with_commands(
            "x", secret_mounts=[flyte.Secret(key="a", as_env_var="X"), flyte.Secret(key="b", as_env_var="X")]
        )


def test_a_code_bundle_step_bakes_the_code_in_only_when_it_travels_without_a_bundle(tmp_path: Path) -> None:
    import importlib

    from flyte._image import code_dir, code_placement, placed

    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "tasks_mod.py").write_text("VALUE = 1\n")
    (root / "notes.txt").write_text("not a module\n")
    base = Image.from_base("python:3.11-slim").clone(name="coded", registry="r.io").with_workdir("/app")
    image = base.with_code_bundle()
    everything = base.with_code_bundle(copy_style="all", dst="src")
    # Placed by no run, or by one that sends a bundle, the step adds nothing.
    assert image.uri == base.uri
    with code_placement("loaded_modules", root):
        assert placed(image) is image
    sys.path.insert(0, str(root))
    try:
        importlib.import_module("pkg.tasks_mod")
        with code_placement("none", root):
            loaded = placed(image)
            every = placed(everything)
    finally:
        sys.path.remove(str(root))
        for name in ("pkg.tasks_mod", "pkg"):
            sys.modules.pop(name, None)
    assert loaded.uri != base.uri and every.uri != loaded.uri
    assert loaded.layers[-1].files == ("pkg/__init__.py", "pkg/tasks_mod.py")  # type: ignore[attr-defined]
    assert every.layers[-1].files == ("notes.txt", "pkg/__init__.py", "pkg/tasks_mod.py")  # type: ignore[attr-defined]
    assert code_dir(loaded) == "/app" and code_dir(every) == "/app/src" and code_dir(base) is None
    built = render(loaded, _no_wheels).write(tmp_path / "context")
    assert "COPY _flyte/1/code/ ./\n" in (built / "Dockerfile").read_text()
    assert (built / "_flyte/1/code/pkg/tasks_mod.py").read_text() == "VALUE = 1\n"
    assert not (built / "_flyte/1/code/notes.txt").exists()
    # The code is part of the image's identity: changing a file changes the tag.
    (root / "pkg" / "tasks_mod.py").write_text("VALUE = 2\n")
    assert dataclasses_replace_uri(loaded) != loaded.uri
    with pytest.raises(ValueError, match="copy_style must be 'loaded_modules' or 'all'"):
        base.with_code_bundle(copy_style="none")  # type: ignore[arg-type]


def dataclasses_replace_uri(image: Image) -> str:
    """The URI of a fresh copy of ``image`` (tags are cached per object)."""
    import dataclasses

    return dataclasses.replace(image).uri
