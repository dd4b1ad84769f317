"""The reference SDK's names and parameters as this SDK honours them: init and its variants,
with_runcontext, cache policies, environments (include, clone_with, service accounts), task
documentation and links. Behaviour, not just presence (test_surface checks presence)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest

import flyte
import flyte.errors
from flyte._cache import VersionParameters
from flyte._initialize import DEFAULT_PROJECT
from flyte._internal import _bundle
from flyte._internal._serialize import CodeRef, task_spec

CODE = CodeRef(bundle_uri="s3://b/code.tar.gz", root="", version="v1")


def _spec(task: Any) -> Any:
    return task_spec(task, CODE, project="p", domain="d", org="o")


# -- init -----------------------------------------------------------------------------------


def test_init_takes_the_reference_parameters_and_refuses_what_it_cannot_honour() -> None:
    flyte.init(project="proj", domain="dev", user_log_level="WARNING")
    assert flyte.current_project() == "proj" and flyte.current_domain() == "dev"
    assert flyte.logger.level == logging.WARNING and flyte.logger.name == "flyte.user"
    assert not flyte.is_control_plane_available()
    flyte.init(endpoint="127.0.0.1:1", insecure=True)
    assert flyte.is_control_plane_available()
    with pytest.raises(
        flyte.errors.InitializationError, match=r"http_proxy_url='http://proxy:3128'\) is not supported"
    ):
        flyte.init(http_proxy_url="http://proxy:3128")
    with pytest.raises(flyte.errors.InitializationError, match="log_format must be 'console' or 'json'"):
        flyte.init(log_format="xml")
    with pytest.raises(flyte.errors.InitializationError, match="needs client_id"):
        flyte.init(endpoint="example.com:443", client_credentials_secret="s3cret")


def test_without_init_project_and_domain_are_unknown() -> None:
    with pytest.raises(flyte.errors.InitializationError, match="no project") as caught:
        flyte.current_project()
    assert caught.value.code == "ProjectNotInitializedError"


def test_init_has_an_async_form() -> None:
    import asyncio

    asyncio.run(flyte.init.aio(project="from-aio"))
    assert flyte.current_project() == "from-aio"


def test_json_log_format(capsys: pytest.CaptureFixture[str]) -> None:
    system = logging.getLogger("flyte")
    before = (list(system.handlers), system.propagate)
    try:
        flyte.init(log_format="json", log_level="INFO")
        flyte.system_logger.info("hello %s", "there")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["message"] == "hello there"
    finally:
        system.handlers[:] = before[0]
        system.propagate = before[1]


def test_init_in_cluster_reads_what_the_backend_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from flyte._bridge import contract

    with pytest.raises(flyte.errors.InitializationError, match="no endpoint given"):
        flyte.init_in_cluster()
    monkeypatch.setenv(contract.ENDPOINT, "dns:///flyte.example.com:443")
    monkeypatch.setenv(contract.EXECUTION_PROJECT, "team")
    settings = flyte.init_in_cluster(insecure=True)
    assert settings["project"] == "team" and flyte.current_project() == "team"


# -- with_runcontext ------------------------------------------------------------------------


env = flyte.TaskEnvironment("refapi")


@env.task
def echo(x: int) -> int:
    return x


def test_with_runcontext_refuses_what_it_cannot_honour_and_backend_only_settings_locally() -> None:
    with pytest.raises(ValueError, match=r"max_action_concurrency=4\) is not supported"):
        flyte.with_runcontext(max_action_concurrency=4)
    with pytest.raises(ValueError, match="applies to runs on a backend"):
        flyte.with_runcontext(mode="local", queue="gpu").run(echo, x=1)
    assert flyte.with_runcontext(mode="local").run(echo, x=3).result == 3


def test_backend_run_settings_reach_the_run_spec() -> None:
    from datetime import datetime, timezone

    from flyte._remote._submit import _run_spec

    rc = flyte.with_runcontext(
        mode="remote", queue="gpu", run_start_time=datetime(2026, 1, 2, tzinfo=timezone.utc)
    )
    spec = _run_spec(rc)
    assert spec.queue == "gpu" and spec.run_start_time.ToDatetime().year == 2026


# -- cache policies --------------------------------------------------------------------------


class GitLike:
    def __init__(self, rev: str) -> None:
        self.rev = rev

    def get_version(self, salt: str, params: VersionParameters) -> str:
        return f"{salt}:{self.rev}:{params.func.__name__ if params.func else ''}"


def test_cache_policies_decide_the_version() -> None:
    cache = flyte.Cache("auto", salt="s", policies=[GitLike("abc")])
    assert isinstance(GitLike("x"), flyte.CachePolicy)
    assert cache.is_enabled() and cache.get_ignored_inputs() == ()
    version = cache.get_version(VersionParameters(func=echo.func))
    assert version == cache.get_version(VersionParameters(func=echo.func))
    assert version != flyte.Cache("auto", salt="s", policies=[GitLike("def")]).get_version(
        VersionParameters(func=echo.func)
    )
    assert flyte.Cache("disable").get_version() == ""
    assert flyte.Cache("override", version_override="v9").get_version() == "v9"

    pinned = flyte.TaskEnvironment("refapi-policy", cache=cache)

    @pinned.task
    def body_changes_do_not_matter() -> int:
        return 1

    assert body_changes_do_not_matter.cache_version == cache.get_version(
        VersionParameters(func=body_changes_do_not_matter.func, image=body_changes_do_not_matter.image)
    )
    with pytest.raises(TypeError, match="has no get_version"):
        flyte.Cache("auto", policies=[object()])  # type: ignore[list-item]


# -- environments ---------------------------------------------------------------------------


def test_include_puts_extra_files_in_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>hi</p>")
    (tmp_path / "notes.md").write_text("notes")
    source = tmp_path / "wf.py"
    source.write_text(
        "import flyte\nenv = flyte.TaskEnvironment('incl', include=['templates', '*.md'])\n"
        "@env.task\ndef t() -> int:\n    return 1\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)  # noqa: S102 - a module of the test's own
    included = namespace["env"].included_files()
    assert sorted(p.name for p in included) == ["notes.md", "page.html"]
    bundle = _bundle.build(tmp_path, "all", included)
    assert bundle is not None and {"templates/page.html", "notes.md"} <= set(bundle.files)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(bundle.data))) as tar:
        assert tar.extractfile("templates/page.html").read() == b"<p>hi</p>"  # type: ignore[union-attr]
    missing = flyte.TaskEnvironment("incl-missing", include=["nope/"])
    with pytest.raises(FileNotFoundError, match="include 'nope/' matches nothing"):
        missing.included_files()
    with pytest.raises(TypeError, match="include must be a list of paths"):
        flyte.TaskEnvironment("incl-str", include="templates")  # type: ignore[arg-type]


def test_clone_with_and_the_environment_base() -> None:
    base = flyte.TaskEnvironment("refapi-base", env_vars={"A": "1"}, cache="auto", service_account="runner")
    clone = base.clone_with("refapi-clone", env_vars={"B": "2"}, queue="fast")
    assert isinstance(clone, flyte.Environment) and clone.name == "refapi-clone"
    assert clone.env_vars == {"B": "2"} and clone.queue == "fast" and clone.service_account == "runner"
    assert clone.cache == base.cache and clone.tasks == {}
    with pytest.raises(TypeError, match="unexpected argument"):
        base.clone_with("refapi-bad", colour="red")


def test_service_account_entrypoint_docs_and_links_reach_the_task_spec() -> None:
    class Dashboard:
        name = "dashboard"
        icon_uri = "https://example.com/icon.png"

        def get_link(self, run_name: str, project: str, domain: str, context: dict[str, str],
                     parent_action_name: str, action_name: str, pod_name: str, **kwargs: Any) -> str:  # fmt: skip
            return f"https://dash/{project}/{run_name}/{action_name}"

    accounts = flyte.TaskEnvironment("refapi-sa", service_account="env-sa")

    @accounts.task(
        entrypoint=True, docs=flyte.Documentation("Adds one.\n\nLonger text."), links=[Dashboard()]
    )
    def main(x: int) -> int:
        return x + 1

    @accounts.task(service_account="task-sa")
    def other() -> None:
        """Does nothing."""

    spec = _spec(main)
    template = spec.task_template
    assert template.security_context.run_as.k8s_service_account == "env-sa"
    assert _spec(other).task_template.security_context.run_as.k8s_service_account == "task-sa"
    assert template.metadata.is_entrypoint and not _spec(other).task_template.metadata.is_entrypoint
    assert spec.documentation.short_description == "Adds one."
    assert _spec(other).documentation.long_description == "Does nothing."
    assert isinstance(Dashboard(), flyte.Link)
    assert not template.metadata.log_links  # a run's root task: no parent to render links for

    run = flyte.with_runcontext(mode="local").run(renders_links)
    # Without a configured project a local run is in a fresh cluster's default one.
    assert run.result == f"dashboard|https://dash/{DEFAULT_PROJECT}/{run.name}/{{{{.actionName}}}}"


@env.task
def renders_links() -> str:
    # Inside a task: the links of a task it would submit are rendered for this action.
    link = _spec(linked).task_template.metadata.log_links[0]
    return f"{link.name}|{link.uri}"


class _Dashboard:
    name = "dashboard"
    icon_uri = ""

    def get_link(self, run_name: str, project: str, domain: str, context: dict[str, str],
                 parent_action_name: str, action_name: str, pod_name: str, **kwargs: Any) -> str:  # fmt: skip
        return f"https://dash/{project}/{run_name}/{action_name}"


@env.task(links=[_Dashboard()])
def linked() -> None: ...


def test_secret_stable_hash_is_the_same_everywhere() -> None:
    a = flyte.Secret(key="api-key", as_env_var="API_KEY")
    assert a.stable_hash() == flyte.Secret(key="api-key", as_env_var="API_KEY").stable_hash()
    assert a.stable_hash() != flyte.Secret(key="api-key").stable_hash()


def test_run_has_an_async_form() -> None:
    import asyncio

    async def main() -> list[int]:
        first = await flyte.run.aio(echo, x=4)
        second = await flyte.with_runcontext(mode="local").run.aio(echo, 5)
        return [first.result, second.result]

    assert asyncio.run(main()) == [4, 5]
    assert flyte.run(echo, x=6).result == 6


def test_git_status_of_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from flyte.git import GitStatus, config_from_root

    monkeypatch.chdir(tmp_path)
    assert GitStatus.from_current_repo() == GitStatus()  # not a repository
    assert config_from_root() is None

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "wf.py").write_text("x = 1\n")
    (tmp_path / ".flyte").mkdir()
    (tmp_path / ".flyte" / "config.yaml").write_text("task:\n  project: from-root\n")
    git("add", ".")
    git("commit", "-qm", "one")
    git("remote", "add", "origin", "git@github.com:acme/pipelines.git")
    status = GitStatus.from_current_repo()
    assert (
        status.is_valid and status.is_tree_clean and status.remote_url == "https://github.com/acme/pipelines"
    )
    url = status.build_url(tmp_path / "wf.py", 1)
    assert url == f"https://github.com/acme/pipelines/blob/{status.commit_sha}/wf.py#L1"
    (tmp_path / "wf.py").write_text("x = 2\n")
    dirty = GitStatus.from_current_repo()
    assert not dirty.is_tree_clean and dirty.build_url("wf.py", 1).endswith("/wf.py")  # no line when dirty
    assert config_from_root().project == "from-root"


def test_action_phases() -> None:
    from flyteidl2.common import phase_pb2

    from flyte.models import ActionPhase, generate_random_name

    assert ActionPhase.SUCCEEDED == "succeeded" and ActionPhase.SUCCEEDED.is_terminal
    assert not ActionPhase.RUNNING.is_terminal and ActionPhase.RECOVERED.is_terminal
    assert ActionPhase.from_protobuf(phase_pb2.ACTION_PHASE_TIMED_OUT) is ActionPhase.TIMED_OUT
    assert ActionPhase.from_protobuf("ACTION_PHASE_PAUSED") is ActionPhase.PAUSED
    assert ActionPhase.FAILED.to_protobuf_value() == phase_pb2.ACTION_PHASE_FAILED
    with pytest.raises(ValueError, match="not an action phase"):
        ActionPhase.from_protobuf(phase_pb2.ACTION_PHASE_UNSPECIFIED)
    name = generate_random_name()
    assert len(name) == 20 and name.startswith("r") and name != generate_random_name()


# -- triggers -------------------------------------------------------------------------------


def test_trigger_run_settings_reach_the_trigger_spec() -> None:
    from flyte._internal._triggers import task_trigger

    nightly = flyte.Trigger(
        "nightly",
        flyte.Cron("0 2 * * *"),
        "the nightly refresh",
        inputs={"when": flyte.TriggerTime, "x": 3},
        env_vars={"MODE": "batch"},
        interruptible=True,
        overwrite_cache=True,
        queue="batch",
        labels={"team": "data"},
        annotations={"owner": "ops"},
        custom_context={"source": "trigger"},
    )
    scheduled_env = flyte.TaskEnvironment("refapi-triggers")

    @scheduled_env.task(triggers=[nightly])
    def refresh(when: Any, x: int) -> int:
        return x

    spec = task_trigger(refresh, nightly).spec
    run_spec = spec.run_spec
    assert spec.description == "the nightly refresh"
    assert run_spec.interruptible.value and run_spec.overwrite_cache and run_spec.queue == "batch"
    assert dict(run_spec.labels.values) == {"team": "data"}
    assert dict(run_spec.annotations.values) == {"owner": "ops"}
    assert [(e.key, e.value) for e in run_spec.envs.values] == [("MODE", "batch")]
    assert ("source", "trigger") in [(c.key, c.value) for c in spec.inputs.context]


def test_trigger_shortcuts_and_refusals() -> None:
    daily = flyte.Trigger.daily(queue="q", labels={"a": "b"})
    assert daily.automation == flyte.Cron("0 0 * * *") and daily.queue == "q"
    assert daily.description == "A trigger that runs daily at midnight"
    assert daily.inputs == {"trigger_time": flyte.TriggerTime}
    assert flyte.Trigger.hourly(None).inputs == {}
    with pytest.raises(ValueError, match="has no automation"):
        flyte.Trigger("manual")
    with pytest.raises(ValueError, match="max_action_concurrency"):
        flyte.Trigger.weekly(max_action_concurrency=4)
    with pytest.raises(TypeError, match="labels=...\\) must be a dict"):
        flyte.Trigger("bad", flyte.Cron("* * * * *"), labels={"a": 1})  # type: ignore[dict-item]


def test_flyte_config_groups_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flyte.config

    path = tmp_path / "config.yaml"
    path.write_text(
        "admin:\n  endpoint: dns:///flyte.example.com:443\n  authType: DeviceFlow\n"
        "task:\n  project: grouped\n  domain: staging\n"
    )
    cfg = flyte.config.auto(path)
    assert cfg.platform.endpoint == "dns:///flyte.example.com:443" and cfg.platform.auth_mode == "DeviceFlow"
    assert (cfg.task.project, cfg.task.domain) == ("grouped", "staging") and cfg.source == path
    assert flyte.config.get_config_file(path) == path
    assert flyte.config.set_if_exists({}, "k", False) == {"k": False}
    assert flyte.config.set_if_exists({}, "k", "") == {}
    monkeypatch.setenv("FLYTE_PROJECT", "from-env")
    assert flyte.config.Config.auto(path).task.project == "from-env"
    moved = cfg.with_params(task=flyte.config.TaskConfig(project="other", domain="development"))
    flyte.init_from_config(moved)
    assert flyte.current_project() == "other" and flyte.current_domain() == "development"


def test_action_ids_as_the_reference_makes_them() -> None:
    from flyte.models import ActionID

    run = ActionID("rabc")
    assert run.run_name == "rabc"  # a run is named like its root
    fresh = ActionID.create_random()
    assert fresh.name == fresh.run_name and fresh.name.startswith("r") and len(fresh.name) == 20
    child = ActionID("a0", run_name="r1", project="p", domain="d").new_sub_action("a7")
    assert (child.name, child.run_name, child.project) == ("a7", "r1", "p")
    assert child.unique_id_str() == "p-d-r1-a7" and child.unique_id_str("x") == "p-d-r1-a7-x"
    assert ActionID("a0", run_name="r1").new_sub_action().name != "a0"


def test_native_interface_as_the_reference_describes_it() -> None:
    import inspect

    from flyte.models import NativeInterface

    def area(width: float, height: float = 2.0, label: str = "box") -> float:
        """The area."""
        return width * height

    iface = NativeInterface.from_callable(area)
    assert iface.docstring == "The area." and iface.has_outputs()
    assert iface.required_inputs() == ["width"] and iface.num_required_inputs() == 1
    assert iface.get_input_types() == {"width": float, "height": float, "label": str}
    assert iface.convert_to_kwargs(3.0, label="x") == {"width": 3.0, "height": 2.0, "label": "x"}
    with pytest.raises(TypeError):
        iface.convert_to_kwargs()
    schema = iface.json_schema
    assert schema["required"] == ["width"] and schema["properties"]["height"]["default"] == 2.0
    assert schema["properties"]["label"]["type"] == "string"
    built = NativeInterface.from_types(
        {"n": (int, inspect.Parameter.empty), "s": (str, inspect.Parameter.empty)}, {"o0": int}, {"s": "x"}
    )
    assert built.required_inputs() == ["n"] and built.inputs["s"] == (str, "x")
    with pytest.raises(ValueError, match="not an input"):
        NativeInterface.from_types({"n": (int, inspect.Parameter.empty)}, {}, {"m": 1})
