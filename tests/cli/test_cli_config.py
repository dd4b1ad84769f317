from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from flyte.cli._main import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in list(os.environ):
        if var.startswith("FLYTE_"):
            monkeypatch.delenv(var)
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # Wide enough that rich never wraps a temporary path across lines.
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def invoke(*args: str) -> Result:
    """Runs the real `flyte` command (its root group, with every global option) in-process."""
    return CliRunner().invoke(main, list(args))


def get_json(*global_args: str) -> dict[str, Any]:
    result = invoke(*global_args, "--output-format", "json", "get", "config")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- create config -----------------------------------------------------------------------------


def test_create_writes_default_location(isolated: Path) -> None:
    result = invoke(
        "create",
        "config",
        "--endpoint",
        "dns:///c.example.com",
        "--project",
        "p",
        "--domain",
        "development",
        "--org",
        "o",
        "--builder",
        "remote",
    )
    assert result.exit_code == 0, result.output
    target = isolated / "work" / ".flyte" / "config.yaml"
    assert str(target) in result.output
    assert yaml.safe_load(target.read_text()) == {
        "admin": {"endpoint": "dns:///c.example.com", "insecure": False},
        "image": {"builder": "remote"},
        "task": {"domain": "development", "org": "o", "project": "p"},
    }


def test_create_refuses_an_endpoint_that_is_not_an_address(isolated: Path) -> None:
    result = invoke("create", "config", "--endpoint", "not a url")
    assert result.exit_code != 0
    assert "is not an address" in result.output
    assert not (isolated / "work" / ".flyte" / "config.yaml").exists()


def test_create_refuses_to_overwrite_without_force(isolated: Path) -> None:
    target = isolated / "work" / ".flyte" / "config.yaml"
    assert invoke("create", "config", "--project", "first").exit_code == 0

    result = invoke("create", "config", "--project", "second")
    assert result.exit_code != 0
    assert "--force" in result.output
    assert "already exists" in result.output
    assert yaml.safe_load(target.read_text())["task"]["project"] == "first"

    result = invoke("create", "config", "--project", "second", "--force")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(target.read_text())["task"]["project"] == "second"


def test_create_custom_output_creates_directories(isolated: Path) -> None:
    target = isolated / "a" / "b" / "flyte.yaml"
    result = invoke("create", "config", "-o", str(target), "--endpoint", "http://localhost:8090")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(target.read_text())["admin"] == {
        "endpoint": "dns:///localhost:8090",
        "insecure": True,
    }
    assert not (isolated / "work" / ".flyte").exists()


def test_create_explicit_insecure_flags(isolated: Path) -> None:
    assert invoke("create", "config", "-o", "x.yaml", "--endpoint", "h:1", "--insecure").exit_code == 0
    assert yaml.safe_load(Path("x.yaml").read_text())["admin"]["insecure"] is True
    result = invoke(
        "create", "config", "-o", "x.yaml", "--endpoint", "http://h:1", "--no-insecure", "--force"
    )
    assert result.exit_code == 0
    assert yaml.safe_load(Path("x.yaml").read_text())["admin"]["insecure"] is False


def test_create_rejects_unknown_builder(isolated: Path) -> None:
    result = invoke("create", "config", "--builder", "docker")
    assert result.exit_code == 2
    assert not (isolated / "work" / ".flyte" / "config.yaml").exists()


def test_create_uses_global_options_as_fallback(isolated: Path) -> None:
    result = invoke("--endpoint", "global:1", "--org", "g-org", "create", "config", "-o", "g.yaml")
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(Path("g.yaml").read_text())
    assert written["admin"]["endpoint"] == "global:1"
    assert written["task"]["org"] == "g-org"
    # The command's own option wins over the global one.
    result = invoke("--org", "g-org", "create", "config", "-o", "g.yaml", "--org", "own", "--force")
    assert yaml.safe_load(Path("g.yaml").read_text())["task"]["org"] == "own"


# --- get config --------------------------------------------------------------------------------


def test_create_then_get_round_trip(isolated: Path) -> None:
    created = invoke(
        "create", "config", "--endpoint", "https://c.example.com", "--project", "p", "--domain", "d"
    )
    assert created.exit_code == 0, created.output
    target = str(isolated / "work" / ".flyte" / "config.yaml")

    data = get_json()
    assert data["path"] == target
    assert data["values"] == {
        "endpoint": "dns:///c.example.com",
        "insecure": False,
        "project": "p",
        "domain": "d",
        "org": None,
        "image_builder": "local",
        "image_registry": None,
        "image_platforms": [],
        "image_refs": [],
        "auth_type": None,
        "client_id": None,
        "client_secret_location": None,
        "client_secret_env_var": None,
        "scopes": [],
        "auth_command": [],
        "ca_cert_file_path": None,
        "disable_token_cache": False,
        "local_images": [],
    }
    assert data["sources"]["endpoint"] == f"file {target}"
    assert data["sources"]["project"] == f"file {target}"
    assert data["sources"]["org"] == "default"
    assert data["sources"]["path"] == "discovered"


def test_get_without_any_config(isolated: Path) -> None:
    data = get_json()
    assert data["path"] is None
    assert set(data["sources"].values()) == {"default"}


def test_get_honors_global_options_as_arguments(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated / "elsewhere.yaml"
    cfg.write_text("admin:\n  endpoint: file:1\ntask:\n  project: from-file\n  org: file-org\n")
    # Discoverable but must lose to -c.
    (isolated / "home" / ".flyte").mkdir()
    (isolated / "home" / ".flyte" / "config.yaml").write_text("task:\n  project: from-home\n")
    monkeypatch.setenv("FLYTE_ORG", "env-org")
    monkeypatch.setenv("FLYTE_ENDPOINT", "env:1")

    data = get_json("-c", str(cfg), "--endpoint", "arg:1", "--insecure")
    assert data["path"] == str(cfg)
    assert data["sources"]["path"] == "argument"
    assert (data["values"]["endpoint"], data["sources"]["endpoint"]) == ("arg:1", "argument")
    assert (data["values"]["insecure"], data["sources"]["insecure"]) == (True, "argument")
    assert (data["values"]["org"], data["sources"]["org"]) == ("env-org", "env FLYTE_ORG")
    assert (data["values"]["project"], data["sources"]["project"]) == ("from-file", f"file {cfg}")

    data = get_json("-c", str(cfg), "--org", "arg-org", "--secure")
    assert (data["values"]["org"], data["sources"]["org"]) == ("arg-org", "argument")
    assert (data["values"]["insecure"], data["sources"]["insecure"]) == (False, "argument")
    assert data["values"]["endpoint"] == "env:1"


def test_get_honors_flyte_config_env(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated / "env.yaml"
    cfg.write_text("task:\n  domain: from-env-file\n")
    monkeypatch.setenv("FLYTE_CONFIG", str(cfg))
    data = get_json()
    assert data["values"]["domain"] == "from-env-file"
    assert data["sources"]["path"] == "env FLYTE_CONFIG"


def test_get_table_output(isolated: Path) -> None:
    assert invoke("create", "config", "--endpoint", "dns:///t.example.com", "--project", "tp").exit_code == 0
    result = invoke("--org", "cli-org", "get", "config")
    assert result.exit_code == 0, result.output
    out = result.stdout
    target = isolated / "work" / ".flyte" / "config.yaml"
    assert f"Config file: {target} (discovered)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 3}
    assert "dns:///t.example.com" in rows["endpoint"] and "config file" in rows["endpoint"]
    assert "tp" in rows["project"]
    assert "cli-org" in rows["org"] and "argument" in rows["org"]
    assert "local" in rows["image.builder"]
    assert "default" in rows["image.registry"]


def test_get_table_without_config(isolated: Path) -> None:
    result = invoke("get", "config")
    assert result.exit_code == 0, result.output
    assert "No config file found" in result.stdout


def test_get_malformed_yaml_raises_config_error(isolated: Path) -> None:
    bad = isolated / "bad.yaml"
    bad.write_text("admin:\n  endpoint: [oops\n")
    result = invoke("-c", str(bad), "get", "config")
    assert result.exit_code == 1
    assert str(bad) in result.output
    assert "line" in result.output


def test_get_wrong_type_raises_config_error(isolated: Path) -> None:
    bad = isolated / "bad.yaml"
    bad.write_text("admin:\n  insecure: maybe\n")
    result = invoke("-c", str(bad), "get", "config")
    assert result.exit_code == 1
    assert "admin.insecure" in result.output


def test_get_missing_explicit_config(isolated: Path) -> None:
    result = invoke("-c", "missing.yaml", "get", "config")
    assert result.exit_code == 1
    assert "missing.yaml" in result.output


# --- the installed `flyte` program, as a user runs it ---------------------------------------------


def test_the_installed_program_reads_and_rejects_config_files(isolated: Path) -> None:
    flyte_exe = Path(sys.executable).parent / "flyte"
    env = {**os.environ, "HOME": str(isolated / "home")}

    def flyte(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(flyte_exe), *args],
            cwd=isolated / "work",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = flyte(
        "create", "config", "--endpoint", "dns:///x.example.com", "--project", "p1", "-o", "c.yaml"
    )
    assert created.returncode == 0, created.stderr
    shown = flyte("-c", "c.yaml", "--output-format", "json", "get", "config")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["values"]["project"] == "p1"
    (isolated / "work" / "bad.yaml").write_text("admin:\n\tendpoint: x\n")
    broken = flyte("-c", "bad.yaml", "get", "config")
    assert broken.returncode != 0
    assert "bad.yaml" in broken.stderr and "Traceback" not in broken.stderr


def test_real_main_round_trip(isolated: Path) -> None:
    assert invoke("create", "config", "--project", "real", "-o", "r.yaml").exit_code == 0
    result = invoke("-c", "r.yaml", "--output-format", "json", "get", "config")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["values"]["project"] == "real"


def test_real_main_reports_malformed_config_in_one_line(isolated: Path) -> None:
    bad = isolated / "bad.yaml"
    bad.write_text("admin: 5\n")
    result = invoke("-c", str(bad), "get", "config")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "Error" in lines[0] and "'admin'" in lines[0]
