from __future__ import annotations

import logging
import os
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from flyte._config import (
    Config,
    discover_config_path,
    load_config,
    normalize_endpoint,
    write_config,
)
from flyte.errors import ConfigError

NESTED = """\
admin:
  endpoint: dns:///your-cluster.example.com
  insecure: false
image:
  builder: remote
task:
  domain: development
  org: your-org
  project: your-project
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A clean working directory, a fake home and no FLYTE_* variables."""
    for var in list(os.environ):
        if var.startswith("FLYTE_"):
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return SimpleNamespace(home=home, work=work, tmp=tmp_path)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _project_file(path: Path, project: str) -> Path:
    return _write(path, f"task:\n  project: {project}\n")


# --- discovery -------------------------------------------------------------------------------


def test_no_config_anywhere_gives_defaults(env: SimpleNamespace) -> None:
    assert discover_config_path() is None
    cfg = load_config()
    assert cfg == Config(sources=cfg.sources)
    assert cfg.path is None
    assert cfg.insecure is False
    assert cfg.image_builder == "local"
    assert all(
        cfg.sources[name] == "default" for name in ("endpoint", "insecure", "project", "image_builder")
    )
    assert cfg.sources["path"] == "default"


def test_discovery_order(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _project_file(env.tmp / "explicit.yaml", "explicit")
    from_env = _project_file(env.tmp / "env.yaml", "env")
    cwd_plain = _project_file(env.work / "config.yaml", "cwd-plain")
    cwd_dot = _project_file(env.work / ".flyte" / "config.yaml", "cwd-dot")
    union = _project_file(env.home / ".union" / "config.yaml", "union")
    home_flyte = _project_file(env.home / ".flyte" / "config.yaml", "home-flyte")
    monkeypatch.setenv("FLYTE_CONFIG", str(from_env))

    assert discover_config_path(explicit) == explicit
    assert load_config(explicit).project == "explicit"
    assert load_config(explicit).sources["path"] == "argument"

    expected = [
        (from_env, "env", "env FLYTE_CONFIG"),
        (cwd_plain, "cwd-plain", "discovered"),
        (cwd_dot, "cwd-dot", "discovered"),
        (union, "union", "discovered"),
        (home_flyte, "home-flyte", "discovered"),
    ]
    for path, project, how in expected:
        assert discover_config_path() == path
        cfg = load_config()
        assert (cfg.path, cfg.project, cfg.sources["path"]) == (path, project, how)
        assert cfg.sources["project"] == f"file {path}"
        # Removing the winner exposes the next location in line.
        if path == from_env:
            monkeypatch.delenv("FLYTE_CONFIG")
        else:
            path.unlink()
    assert discover_config_path() is None


def test_relative_explicit_path_is_made_absolute(env: SimpleNamespace) -> None:
    _project_file(env.work / "sub" / "my.yaml", "rel")
    found = discover_config_path("sub/my.yaml")
    assert found == env.work / "sub" / "my.yaml"
    assert found is not None and found.is_absolute()


def test_explicit_path_with_tilde(env: SimpleNamespace) -> None:
    target = _project_file(env.home / "cfgs" / "a.yaml", "tilde")
    assert discover_config_path("~/cfgs/a.yaml") == target


def test_unrelated_cwd_config_yaml_is_skipped(env: SimpleNamespace) -> None:
    _write(env.work / "config.yaml", "database:\n  url: postgres://x\n")
    fallback = _project_file(env.home / ".flyte" / "config.yaml", "home")
    assert discover_config_path() == fallback


def test_broken_cwd_config_yaml_is_skipped(env: SimpleNamespace) -> None:
    _write(env.work / "config.yaml", "{{ templated: [\n")
    assert discover_config_path() is None
    fallback = _project_file(env.work / ".flyte" / "config.yaml", "dot")
    assert discover_config_path() == fallback


@pytest.mark.parametrize(
    "text", ["admin: {}\n", "task:\n  project: p\n", "image:\n  builder: local\n", "endpoint: h:1\n"]
)
def test_cwd_config_yaml_with_a_marker_key_is_used(env: SimpleNamespace, text: str) -> None:
    path = _write(env.work / "config.yaml", text)
    assert discover_config_path() == path


def test_missing_explicit_path_is_an_error(env: SimpleNamespace) -> None:
    _project_file(env.home / ".flyte" / "config.yaml", "home")
    with pytest.raises(ConfigError, match="nope.yaml.*does not exist"):
        discover_config_path("nope.yaml")
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config("nope.yaml")


def test_explicit_directory_is_an_error(env: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        discover_config_path(env.work)


def test_missing_flyte_config_env_is_an_error(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    _project_file(env.home / ".flyte" / "config.yaml", "home")
    monkeypatch.setenv("FLYTE_CONFIG", str(env.tmp / "gone.yaml"))
    with pytest.raises(ConfigError, match="FLYTE_CONFIG"):
        discover_config_path()
    # An explicit path still wins over a broken FLYTE_CONFIG.
    explicit = _project_file(env.tmp / "ok.yaml", "ok")
    assert discover_config_path(explicit) == explicit


# --- parsing -----------------------------------------------------------------------------------


def test_nested_layout(env: SimpleNamespace) -> None:
    path = _write(env.tmp / "c.yaml", NESTED)
    cfg = load_config(path)
    assert cfg.endpoint == "dns:///your-cluster.example.com"
    assert cfg.insecure is False
    assert cfg.image_builder == "remote"
    assert (cfg.project, cfg.domain, cfg.org) == ("your-project", "development", "your-org")
    assert cfg.image_registry is None
    assert cfg.path == path
    for name in ("endpoint", "insecure", "project", "domain", "org", "image_builder"):
        assert cfg.sources[name] == f"file {path}"
    assert cfg.sources["image_registry"] == "default"


def test_flat_layout_from_readme(env: SimpleNamespace) -> None:
    path = _write(
        env.tmp / "c.yaml",
        "endpoint: https://my-flyte-instance.com\n"
        "project: ml-team\n"
        "domain: production\n"
        "image:\n  builder: local\n  registry: ghcr.io/my-org\n"
        "auth:\n  type: oauth2\n",
    )
    cfg = load_config(path)
    assert cfg.endpoint == "dns:///my-flyte-instance.com"
    assert cfg.insecure is False
    assert (cfg.project, cfg.domain) == ("ml-team", "production")
    assert cfg.image_registry == "ghcr.io/my-org"
    assert cfg.sources["image_registry"] == f"file {path}"


def test_flat_and_nested_must_agree(env: SimpleNamespace) -> None:
    same = _write(env.tmp / "same.yaml", "project: a\ntask:\n  project: a\n")
    assert load_config(same).project == "a"
    differ = _write(env.tmp / "differ.yaml", "project: a\ntask:\n  project: b\n")
    with pytest.raises(ConfigError, match=r"'project'.*'task\.project'"):
        load_config(differ)


def test_unknown_keys_are_ignored_with_a_debug_log(
    env: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(env.tmp / "c.yaml", NESTED + "union:\n  connection: {}\nadmin_extra: 1\n")
    path.write_text(path.read_text().replace("  insecure: false\n", "  insecure: false\n  httpProxyURL: x\n"))
    with caplog.at_level(logging.DEBUG, logger="flyte._config"):
        cfg = load_config(path)
    assert cfg.project == "your-project"
    messages = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    for key in ("'union'", "'admin_extra'", "'admin.httpProxyURL'"):
        assert key in messages


def test_empty_file_and_null_values_mean_unset(env: SimpleNamespace) -> None:
    empty = _write(env.tmp / "empty.yaml", "")
    assert load_config(empty).project is None
    nulls = _write(env.tmp / "nulls.yaml", "admin:\ntask:\n  project:\n  domain: ''\n")
    cfg = load_config(nulls)
    assert (cfg.project, cfg.domain, cfg.endpoint) == (None, None, None)
    assert cfg.sources["project"] == "default"


def test_invalid_yaml_names_file_and_line(env: SimpleNamespace) -> None:
    path = _write(env.tmp / "bad.yaml", "admin:\n  endpoint: x\ntask:\n  project: [unclosed\n  domain: d\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 5" in message


def test_tab_indentation_reports_line(env: SimpleNamespace) -> None:
    path = _write(env.tmp / "tabs.yaml", "admin:\n\tendpoint: x\n")
    with pytest.raises(ConfigError, match=r"tabs\.yaml at line 2"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("- a\n- b\n", "top level"),
        ("just a string\n", "top level"),
        ("admin: 5\n", "'admin'"),
        ("task: [a, b]\n", "'task'"),
        ("admin:\n  insecure: maybe\n", "'admin.insecure'"),
        ("admin:\n  endpoint: 8090\n", "'admin.endpoint'"),
        ("task:\n  project: 123\n", "'task.project'"),
        ("image:\n  builder: docker\n", "'image.builder'"),
        ("insecure: sometimes\n", "'insecure'"),
    ],
)
def test_wrong_types_name_file_and_key(env: SimpleNamespace, text: str, key: str) -> None:
    path = _write(env.tmp / "typed.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("'yes'", True), ("'False'", False), ("off", False)]
)
def test_insecure_accepts_boolean_words(env: SimpleNamespace, raw: str, expected: bool) -> None:
    path = _write(env.tmp / "b.yaml", f"admin:\n  insecure: {raw}\n")
    assert load_config(path).insecure is expected


def test_config_error_message_is_readable(env: SimpleNamespace) -> None:
    path = _write(env.tmp / "x.yaml", "admin: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    # Guards against the message landing in ConfigError's `code` slot.
    assert info.value.code == "ConfigError"
    assert info.value.message == str(info.value) != ""


# --- endpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "endpoint", "insecure"),
    [
        ("localhost:8090", "localhost:8090", None),
        ("flyte.example.com", "flyte.example.com", None),
        ("dns:///flyte.example.com", "dns:///flyte.example.com", None),
        ("dns:///localhost:8090", "dns:///localhost:8090", None),
        ("https://flyte.example.com", "dns:///flyte.example.com", None),
        ("https://flyte.example.com/", "dns:///flyte.example.com", None),
        ("HTTPS://flyte.example.com:443/console", "dns:///flyte.example.com:443", None),
        ("http://localhost:8090", "dns:///localhost:8090", True),
        ("  http://h  ", "dns:///h", True),
    ],
)
def test_normalize_endpoint(raw: str, endpoint: str, insecure: bool | None) -> None:
    assert normalize_endpoint(raw) == (endpoint, insecure)


def test_endpoint_without_host_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no host"):
        normalize_endpoint("https://")


@pytest.mark.parametrize(
    "raw",
    [
        "not a url",
        "host:",
        "dns:///h:99999",
        "dns:///",
        "localhost:0",
        "http://not a host",
        "-bad-:80",
        "a b:1",
    ],
)
def test_endpoints_no_client_can_reach_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="is not an address"):
        normalize_endpoint(raw)


@pytest.mark.parametrize(
    "raw", ["[::1]:8090", "unix:/tmp/flyte.sock", "dns://8.8.8.8/flyte.example.com:443", "127.0.0.1:8090"]
)
def test_other_grpc_target_forms_are_accepted(raw: str) -> None:
    assert normalize_endpoint(raw) == (raw, None)


def test_http_endpoint_in_file_implies_insecure(env: SimpleNamespace) -> None:
    path = _write(env.tmp / "c.yaml", "admin:\n  endpoint: http://localhost:8090\n")
    cfg = load_config(path)
    assert (cfg.endpoint, cfg.insecure) == ("dns:///localhost:8090", True)
    assert cfg.sources["insecure"] == f"file {path}"


def test_explicit_insecure_in_same_layer_beats_http_scheme(env: SimpleNamespace) -> None:
    path = _write(env.tmp / "c.yaml", "admin:\n  endpoint: http://localhost:8090\n  insecure: false\n")
    assert load_config(path).insecure is False


def test_http_endpoint_from_env_beats_file_insecure(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(env.tmp / "c.yaml", NESTED)
    monkeypatch.setenv("FLYTE_ENDPOINT", "http://localhost:8090")
    cfg = load_config(path)
    assert (cfg.endpoint, cfg.insecure) == ("dns:///localhost:8090", True)
    assert cfg.sources["insecure"] == "env FLYTE_ENDPOINT"
    # ...but an explicit argument beats both.
    assert load_config(path, insecure=False).insecure is False


# --- layering ----------------------------------------------------------------------------------


def test_env_overrides_file(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(env.tmp / "c.yaml", NESTED)
    monkeypatch.setenv("FLYTE_ENDPOINT", "localhost:9999")
    monkeypatch.setenv("FLYTE_PROJECT", "env-project")
    monkeypatch.setenv("FLYTE_DOMAIN", "staging")
    monkeypatch.setenv("FLYTE_ORG", "env-org")
    monkeypatch.setenv("FLYTE_INSECURE", "true")
    cfg = load_config(path)
    assert cfg.endpoint == "localhost:9999"
    assert cfg.insecure is True
    assert (cfg.project, cfg.domain, cfg.org) == ("env-project", "staging", "env-org")
    assert cfg.image_builder == "remote"
    assert cfg.sources["project"] == "env FLYTE_PROJECT"
    assert cfg.sources["insecure"] == "env FLYTE_INSECURE"
    assert cfg.sources["image_builder"] == f"file {path}"


def test_env_applies_without_a_file(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTE_PROJECT", "p")
    cfg = load_config()
    assert cfg.path is None
    assert (cfg.project, cfg.sources["project"]) == ("p", "env FLYTE_PROJECT")


def test_blank_env_values_are_ignored(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(env.tmp / "c.yaml", NESTED)
    monkeypatch.setenv("FLYTE_PROJECT", "")
    monkeypatch.setenv("FLYTE_INSECURE", " ")
    cfg = load_config(path)
    assert cfg.project == "your-project"
    assert cfg.sources["insecure"] == f"file {path}"


def test_bad_env_boolean_names_the_variable(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTE_INSECURE", "maybe")
    with pytest.raises(ConfigError, match="FLYTE_INSECURE"):
        load_config()


def test_arguments_override_env_and_file(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(env.tmp / "c.yaml", NESTED)
    monkeypatch.setenv("FLYTE_PROJECT", "env-project")
    monkeypatch.setenv("FLYTE_ORG", "env-org")
    cfg = load_config(
        path, project="arg-project", image_builder="local", org=None, endpoint="https://arg.example"
    )
    assert cfg.project == "arg-project"
    assert cfg.sources["project"] == "argument"
    assert cfg.image_builder == "local"
    assert cfg.sources["image_builder"] == "argument"
    assert cfg.endpoint == "dns:///arg.example"
    # None means "not given", so the environment still decides.
    assert (cfg.org, cfg.sources["org"]) == ("env-org", "env FLYTE_ORG")


def test_unknown_override_is_a_type_error(env: SimpleNamespace) -> None:
    with pytest.raises(TypeError, match="bogus"):
        load_config(bogus=1)


def test_bad_override_value_is_a_config_error(env: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="image_builder"):
        load_config(image_builder="docker")


def test_config_is_frozen_and_hashable(env: SimpleNamespace) -> None:
    cfg = load_config(project="p")
    with pytest.raises(FrozenInstanceError):
        cfg.project = "q"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.sources["project"] = "x"  # type: ignore[index]
    assert hash(cfg) == hash(load_config(project="p"))
    assert cfg.to_dict()["project"] == "p"
    assert cfg.to_dict()["path"] is None


# --- writing -----------------------------------------------------------------------------------


def test_write_then_load_round_trip(env: SimpleNamespace) -> None:
    target = env.tmp / "deep" / "er" / "config.yaml"
    written = write_config(
        target,
        endpoint="dns:///c.example.com",
        insecure=False,
        project="p",
        domain="development",
        org="o",
        builder="remote",
    )
    assert written == target
    assert yaml.safe_load(target.read_text()) == {
        "admin": {"endpoint": "dns:///c.example.com", "insecure": False},
        "image": {"builder": "remote"},
        "task": {"domain": "development", "org": "o", "project": "p"},
    }
    cfg = load_config(target)
    assert (cfg.endpoint, cfg.insecure, cfg.project, cfg.domain, cfg.org, cfg.image_builder) == (
        "dns:///c.example.com",
        False,
        "p",
        "development",
        "o",
        "remote",
    )


def test_write_omits_unset_values_and_defaults_builder(env: SimpleNamespace) -> None:
    target = write_config(env.tmp / "c.yaml", project="p")
    assert yaml.safe_load(target.read_text()) == {"image": {"builder": "local"}, "task": {"project": "p"}}


def test_write_normalizes_http_endpoint(env: SimpleNamespace) -> None:
    target = write_config(env.tmp / "c.yaml", endpoint="http://localhost:8090")
    assert yaml.safe_load(target.read_text())["admin"] == {
        "endpoint": "dns:///localhost:8090",
        "insecure": True,
    }
    target = write_config(env.tmp / "c.yaml", endpoint="https://x.example")
    assert yaml.safe_load(target.read_text())["admin"] == {"endpoint": "dns:///x.example", "insecure": False}


def test_write_rejects_unknown_builder(env: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="builder"):
        write_config(env.tmp / "c.yaml", builder="docker")
    assert not (env.tmp / "c.yaml").exists()


def test_write_overwrites(env: SimpleNamespace) -> None:
    target = write_config(env.tmp / "c.yaml", project="one")
    write_config(target, project="two")
    assert load_config(target).project == "two"


def test_a_runs_service_account_travels_in_its_run_spec() -> None:
    import flyte
    from flyte._remote._submit import _run_spec

    rc = flyte.with_runcontext(mode="remote", service_account="pipelines")
    assert _run_spec(rc).security_context.run_as.k8s_service_account == "pipelines"
    assert not _run_spec(flyte.with_runcontext(mode="remote")).HasField("security_context")
    import pytest

    with pytest.raises(ValueError, match="service_account"):
        flyte.with_runcontext(service_account=" ")


# --- signing in ------------------------------------------------------------------------------


def test_sign_in_settings_from_the_file_and_the_environment(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flyte._remote._auth import settings_for

    secret = _write(env.tmp / "secret", "s3cret\n")
    _write(
        env.work / "config.yaml",
        "admin:\n  endpoint: dns:///c.example.com\n  authType: deviceflow\n  clientId: cli\n"
        "  scopes: [all, offline]\n  command: ['get-token', '--for', 'flyte']\n",
    )
    cfg = load_config()
    assert (cfg.auth_type, cfg.client_id, cfg.scopes) == ("DeviceFlow", "cli", ("all", "offline"))
    assert cfg.auth_command == ("get-token", "--for", "flyte")
    device = settings_for(cfg, insecure=False)
    assert device is not None and device["flow"] == "DeviceFlow" and device["scopes"] == ["all", "offline"]
    assert device["cache_dir"] == str(env.home / ".flyte" / "tokens")
    # Strings from the environment: JSON lists, or words.
    monkeypatch.setenv("FLYTE_ADMIN_SCOPES", "a, b c")
    monkeypatch.setenv("FLYTE_AUTH_COMMAND", "get-token --quiet")
    monkeypatch.setenv("FLYTE_AUTH_TYPE", "ExternalCommand")
    cfg = load_config()
    assert cfg.scopes == ("a", "b", "c") and cfg.auth_command == ("get-token", "--quiet")
    assert settings_for(cfg, insecure=False) == {
        "flow": "ExternalCommand",
        "command": ["get-token", "--quiet"],
        "scopes": ["a", "b", "c"],
        "client_id": "cli",
        "cache_dir": None,
    }
    # A client secret means the client-credentials flow, whatever authType says.
    monkeypatch.setenv("FLYTE_ADMIN_CLIENTSECRETLOCATION", str(secret))
    with_secret = settings_for(load_config(), insecure=False)
    assert with_secret is not None
    assert (with_secret["flow"], with_secret["client_secret"]) == ("ClientSecret", "s3cret")
    # Nothing is sent over plaintext unless a sign-in is configured; Passthrough sends nothing.
    monkeypatch.delenv("FLYTE_ADMIN_CLIENTSECRETLOCATION")
    monkeypatch.delenv("FLYTE_AUTH_TYPE")
    bare = load_config(auth_type=None)
    assert settings_for(Config(), insecure=True) is None
    assert settings_for(Config(), insecure=False) == {
        "flow": "Pkce",
        "scopes": [],
        "client_id": None,
        "cache_dir": str(env.home / ".flyte" / "tokens"),
    }
    assert settings_for(Config(auth_type="Passthrough"), insecure=False) is None
    assert bare.auth_type == "DeviceFlow"
    monkeypatch.setenv("FLYTE_AUTH_TYPE", "magic")
    with pytest.raises(ConfigError, match="must be one of Pkce, DeviceFlow"):
        load_config()


def test_api_keys_and_bad_secrets_are_clear_errors(env: SimpleNamespace) -> None:
    import base64

    from flyte._remote._auth import from_api_key, settings_for
    from flyte.errors import InitializationError

    key = base64.b64encode(b"flyte.example.com:bot:pa ss:org").decode()
    assert from_api_key(key) == {
        "flow": "ClientSecret",
        "client_id": "bot",
        "client_secret": "pa ss",
        "cache_dir": None,
    }
    with pytest.raises(InitializationError, match="FLYTE_API_KEY"):
        from_api_key("nope")
    with pytest.raises(InitializationError, match="cannot read"):
        settings_for(Config(client_id="x", client_secret_location=str(env.tmp / "missing")), insecure=False)
    with pytest.raises(InitializationError, match="NOT_SET_ANYWHERE"):
        settings_for(Config(client_id="x", client_secret_env_var="NOT_SET_ANYWHERE"), insecure=False)
    with pytest.raises(InitializationError, match="admin.clientId"):
        settings_for(Config(client_secret_env_var="HOME"), insecure=False)
