"""Deploying environments and using deployed tasks, on the embedded backend: the Python API
(`flyte.deploy`, `flyte.remote.Task.get`, `flyte.run` of a deployed task, a task calling a
deployed task) and the CLI (`flyte deploy`, `flyte get task`, `flyte run deployed-task`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import flyte
from flyte import remote
from flyte.errors import RemoteTaskError

WORKFLOW = """
import flyte
from flyte import remote

env_2 = flyte.TaskEnvironment(name="{prefix}_two")
env_1 = flyte.TaskEnvironment(name="{prefix}_one")
env_1.add_dependency(env_2)


@env_2.task
async def remote_task(x: str) -> str:
    return f"remote {{x}}"


@env_2.task
async def add(a: int, b: int = 5) -> int:
    return a + b


@env_1.task
async def main(x: str) -> str:
    ref = remote.Task.get("{prefix}_two.remote_task", auto_version="latest")
    return await ref(x=x)


@env_1.task
async def positional(n: int) -> int:
    ref = remote.Task.get("{prefix}_two.add", auto_version="latest")
    return await ref(n)


@env_2.task
async def greeting() -> str:
    import os

    return os.environ.get("GREETING", "none")


@env_1.task
async def overridden() -> str:
    ref = remote.Task.get("{prefix}_two.greeting", auto_version="latest").fetch()
    return await ref.override(env_vars={{"GREETING": "hello"}}, retries=2, queue="q1")()
"""


@pytest.fixture
def deployed_module(tmp_path: Path, backend_endpoint: str) -> Any:
    """A fresh module (unique environment names) and this process pointed at the backend."""
    from flyte._internal._modules import load_module

    prefix = "d" + uuid.uuid4().hex[:8]
    path = tmp_path / f"{prefix}_wf.py"
    path.write_text(textwrap.dedent(WORKFLOW.format(prefix=prefix)))
    module = load_module(path, tmp_path)
    flyte.init(endpoint=backend_endpoint, insecure=True, root_dir=tmp_path)
    module.prefix = prefix
    return module


def test_deploy_then_call_and_run_deployed_tasks(deployed_module: Any) -> None:
    m = deployed_module
    deployments = flyte.deploy(m.env_1)
    assert len(deployments) == 1
    d = deployments[0]
    summary = d.summary_repr()
    assert f"Deployment(env=[{m.prefix}_one]" in summary and f"Deployment(env=[{m.prefix}_two]" in summary
    assert f"DeployedTask(name={m.prefix}_two.remote_task, version={d.version})" in summary
    assert len(d.version) == 32
    # The same code again is the same version: a no-op.
    assert flyte.deploy(m.env_1)[0].version == d.version

    # A task calling a deployed task (keyword and positional inputs; a default filled in).
    assert flyte.run(m.main, x="Hello").wait().result == "remote Hello"
    assert flyte.run(m.positional, n=1).wait().result == 6

    # A deployed task run by name from outside, latest or pinned.
    latest = remote.Task.get(f"{m.prefix}_two.add", auto_version="latest")
    assert flyte.run(latest, a=2).wait().result == 7
    pinned = remote.Task.get(f"{m.prefix}_two.add", version=d.version)
    assert flyte.run(pinned, a=2, b=3).wait().result == 5


def test_deployed_task_details_and_overrides(deployed_module: Any) -> None:
    m = deployed_module
    d = flyte.deploy(m.env_1)[0]
    details = asyncio.run(remote.TaskDetails.fetch(f"{m.prefix}_two.add", version=d.version))
    assert isinstance(details, remote.TaskDetails) and details.version == d.version
    assert details.required_args == ("a",) and details.default_input_args == ("b",)
    assert details.task_type == "python" and details.secrets == [] and details.queue is None
    assert details.pb2.task_id.name == f"{m.prefix}_two.add" and not details.overridden
    assert remote.Task.get(f"{m.prefix}_two.add", version=d.version).fetch().required_args == ("a",)

    changed = details.override(
        resources=flyte.Resources(cpu="2", memory="1Gi"), retries=3, timeout=60, cache=flyte.Cache("disable")
    )
    assert changed.overridden and changed.pb2.spec.task_template.metadata.retries.retries == 3
    requests, _ = changed.resources
    assert {r.value for r in requests} == {"2", "1Gi"}
    assert details.pb2.spec.task_template.metadata.retries.retries == 0  # the original is unchanged
    assert flyte.run(changed, a=1).wait().result == 6

    # Called inside a task: the override's environment reaches the deployed code.
    assert flyte.run(m.overridden).wait().result == "hello"
    with pytest.raises(TypeError, match="unexpected settings"):
        details.override(colour="red")
    with pytest.raises(ValueError, match="Cache"):
        details.override(cache=flyte.Cache("auto"))


def test_missing_deployed_tasks_are_clear_errors(deployed_module: Any) -> None:
    m = deployed_module
    d = flyte.deploy(m.env_2)[0]
    with pytest.raises(RemoteTaskError) as missing:
        remote.Task.get(f"{m.prefix}_two.nope", auto_version="latest").fetch()
    assert f"{m.prefix}_two.add" in str(missing.value) and f"{m.prefix}_two.remote_task" in str(missing.value)
    with pytest.raises(RemoteTaskError) as bad_version:
        remote.Task.get(f"{m.prefix}_two.add", version="v0").fetch()
    assert "v0" in str(bad_version.value) and d.version in str(bad_version.value)
    with pytest.raises(RemoteTaskError, match="only be called inside a task"):
        remote.Task.get(f"{m.prefix}_two.add", version=d.version)(a=1)
    with pytest.raises(ValueError, match="auto_version"):
        remote.Task.get(f"{m.prefix}_two.add")


def test_an_explicit_version_and_a_dry_run(deployed_module: Any) -> None:
    m = deployed_module
    dry = flyte.deploy(m.env_2, dry_run=True, version="v1.0.0")[0]
    assert dry.dry_run and {t.name for t in dry.tasks} == {
        f"{m.prefix}_two.add",
        f"{m.prefix}_two.greeting",
        f"{m.prefix}_two.remote_task",
    }
    with pytest.raises(RemoteTaskError):
        remote.Task.get(f"{m.prefix}_two.add", version="v1.0.0").fetch()
    flyte.deploy(m.env_2, version="v1.0.0")
    assert flyte.run(remote.Task.get(f"{m.prefix}_two.add", version="v1.0.0"), a=1).wait().result == 6
    with pytest.raises(ValueError, match="version"):
        flyte.deploy(m.env_2, version="has space")


def _cli(endpoint: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "flyte"), "--endpoint", endpoint, "--insecure", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "250"},
    )


def test_the_cli_deploys_lists_and_runs_deployed_tasks(deployed_module: Any, backend_endpoint: str) -> None:
    m = deployed_module
    cwd = Path(m.__file__).parent
    file = Path(m.__file__).name
    dry = _cli(backend_endpoint, cwd, "deploy", "--dry-run", file, "env_1")
    assert dry.returncode == 0, dry.stderr
    assert "Would deploy" in dry.stdout and f"{m.prefix}_two.add" in dry.stdout

    out = _cli(backend_endpoint, cwd, "-of", "json", "deploy", "--version", "cli-1", file)
    assert out.returncode == 0, out.stderr
    deployed = json.loads(out.stdout)
    assert {t["task"] for t in deployed["tasks"]} == {
        f"{m.prefix}_two.remote_task",
        f"{m.prefix}_two.add",
        f"{m.prefix}_two.greeting",
        f"{m.prefix}_one.main",
        f"{m.prefix}_one.positional",
        f"{m.prefix}_one.overridden",
    }
    assert {t["version"] for t in deployed["tasks"]} == {"cli-1"}

    listed = _cli(backend_endpoint, cwd, "-of", "json", "get", "task")
    assert listed.returncode == 0, listed.stderr
    assert {"name": f"{m.prefix}_two.add", "version": "cli-1"}.items() <= next(
        t for t in json.loads(listed.stdout) if t["name"] == f"{m.prefix}_two.add"
    ).items()
    versions = _cli(backend_endpoint, cwd, "-of", "json", "get", "task", f"{m.prefix}_two.add")
    assert [v["version"] for v in json.loads(versions.stdout)] == ["cli-1"]

    ran = _cli(backend_endpoint, cwd, "run", "--follow", "deployed-task", f"{m.prefix}_two.add", "--a", "3")
    assert ran.returncode == 0, ran.stderr
    assert "8" in ran.stdout
    pinned = _cli(
        backend_endpoint,
        cwd,
        "run",
        "--follow",
        "deployed-task",
        f"{m.prefix}_two.add:cli-1",
        "--a",
        "1",
        "--b",
        "1",
    )
    assert pinned.returncode == 0, pinned.stderr
    assert "2" in pinned.stdout
    missing = _cli(backend_endpoint, cwd, "run", "deployed-task", f"{m.prefix}_two.add:nope", "--a", "1")
    assert missing.returncode != 0 and "cli-1" in missing.stderr
    bad_env = _cli(backend_endpoint, cwd, "deploy", file, "no_such_env")
    assert bad_env.returncode != 0 and "env_1" in bad_env.stderr


SCHEDULED = """
import dataclasses
import datetime
import flyte
import flyte.models
import flyte.notify

env = flyte.TaskEnvironment(name="{prefix}_sched")


@env.task(
    triggers=dataclasses.replace(
        flyte.Trigger.minutely("when", inputs={{"label": "scheduled"}}),
        notifications=flyte.notify.Webhook(
            on_phase=flyte.models.ActionPhase.SUCCEEDED, url="{hook}/fired/{{{{.Run.Name}}}}"
        ),
    )
)
async def tick(when: datetime.datetime, label: str = "default") -> str:
    return f"{{label}} at {{when.isoformat()}}"


@env.task(triggers=flyte.Trigger.hourly())
async def no_inputs() -> int:
    return 1
"""


def test_a_deployed_minutely_trigger_fires(tmp_path: Path, backend_endpoint: str) -> None:
    """A real trigger on the real clock: deployed with its task, it starts a run within a
    minute, with its inputs and the kick-off time, and the run notifies as the trigger says;
    deactivated, it shows as inactive."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from flyteidl2.common import identifier_pb2

    from flyte._internal._modules import load_module
    from flyte._remote._client import BackendClient, run_sync

    notified: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            notified.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    prefix = "t" + uuid.uuid4().hex[:8]
    path = tmp_path / f"{prefix}_wf.py"
    path.write_text(
        textwrap.dedent(SCHEDULED.format(prefix=prefix, hook=f"http://127.0.0.1:{hook.server_address[1]}"))
    )
    module = load_module(path, tmp_path)
    flyte.init(endpoint=backend_endpoint, insecure=True, root_dir=tmp_path)
    deployed = flyte.deploy(module.env)[0]
    assert {t.name: t.triggers for t in deployed.tasks} == {
        f"{prefix}_sched.tick": ("minutely",),
        f"{prefix}_sched.no_inputs": ("hourly",),
    }

    listed = _cli(backend_endpoint, tmp_path, "-of", "json", "get", "trigger")
    assert listed.returncode == 0, listed.stderr
    mine = {t["name"]: t for t in json.loads(listed.stdout) if t["task"].startswith(prefix)}
    assert mine["minutely"]["automation"] == "cron * * * * * (UTC)" and mine["minutely"]["active"] == "true"

    client = BackendClient(backend_endpoint, insecure=True)
    pid = identifier_pb2.ProjectIdentifier(organization="local", domain="development", name="flytesnacks")
    deadline = time.monotonic() + 150
    fired = None
    while fired is None and time.monotonic() < deadline:
        for r in run_sync(client.list_runs(pid, 200)):
            if r.action.metadata.task.id.name == f"{prefix}_sched.tick":
                fired = r.action.id.run.name
        time.sleep(1)
    assert fired is not None, "the minutely trigger did not fire within 150 s"
    result = flyte.remote.Task.get(f"{prefix}_sched.tick", auto_version="latest")  # the run is of this task
    assert result.version == deployed.version
    out = flyte.remote.Run.get(fired).wait().result
    label, _, when = out.partition(" at ")
    assert label == "scheduled" and when.endswith(":00+00:00"), out
    waited = time.monotonic() + 20
    while f"/fired/{fired}" not in notified and time.monotonic() < waited:
        time.sleep(0.1)
    hook.shutdown()
    assert f"/fired/{fired}" in notified, notified

    off = _cli(
        backend_endpoint, tmp_path, "update", "trigger", "minutely", f"{prefix}_sched.tick", "--deactivate"
    )
    assert off.returncode == 0, off.stderr
    shown = _cli(
        backend_endpoint, tmp_path, "-of", "json", "get", "trigger", f"{prefix}_sched.tick", "minutely"
    )
    assert {"field": "active", "value": "false"} in json.loads(shown.stdout)
    missing = _cli(
        backend_endpoint, tmp_path, "update", "trigger", "nope", f"{prefix}_sched.tick", "--activate"
    )
    assert missing.returncode != 0 and "nope" in missing.stderr


def test_projects_scope_deployed_tasks(deployed_module: Any, backend_endpoint: str) -> None:
    m = deployed_module
    cwd = Path(m.__file__).parent
    file = Path(m.__file__).name
    project = f"team-{m.prefix}"
    made = _cli(backend_endpoint, cwd, "create", "project", "--id", project, "--description", "a team")
    assert made.returncode == 0, made.stderr
    again = _cli(backend_endpoint, cwd, "create", "project", "--id", project)
    assert again.returncode != 0 and "exists" in again.stderr
    shown = _cli(backend_endpoint, cwd, "-of", "json", "get", "project", project)
    assert json.loads(shown.stdout)[0]["domains"] == "development, staging, production"
    listed = _cli(backend_endpoint, cwd, "-of", "json", "get", "project")
    assert {project, "flytesnacks"} <= {p["id"] for p in json.loads(listed.stdout)}

    out = _cli(backend_endpoint, cwd, "deploy", "-p", project, "-d", "staging", file, "env_2")
    assert out.returncode == 0, out.stderr
    in_project = _cli(backend_endpoint, cwd, "-of", "json", "get", "task", "-p", project, "-d", "staging")
    assert {t["name"] for t in json.loads(in_project.stdout)} == {
        f"{m.prefix}_two.add",
        f"{m.prefix}_two.greeting",
        f"{m.prefix}_two.remote_task",
    }
    elsewhere = _cli(backend_endpoint, cwd, "-of", "json", "get", "task", "-d", "staging")
    assert not any(t["name"].startswith(m.prefix) for t in json.loads(elsewhere.stdout))
    ran = _cli(
        backend_endpoint,
        cwd,
        "run",
        "-p",
        project,
        "-d",
        "staging",
        "--follow",
        "deployed-task",
        f"{m.prefix}_two.add",
        "--a",
        "4",
    )
    assert ran.returncode == 0, ran.stderr
    assert "9" in ran.stdout

    unknown = _cli(backend_endpoint, cwd, "deploy", "-p", "no-such-project", file, "env_2")
    assert unknown.returncode != 0 and "no-such-project" in unknown.stderr
