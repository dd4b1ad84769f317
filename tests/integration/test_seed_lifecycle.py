"""The seeds' lifecycle snippets (deploy, deployed tasks, triggers, secrets) run as written
against an embedded backend of their own.

The shell snippets run as the seed writes them, from a directory whose `.flyte/config.yaml`
names the backend (the way a user points the CLI at a cluster); the Python snippets are copied
verbatim. Each test starts its backend on a fresh data dir, so projects and secrets the seeds
create do not meet those of other tests; every request it received is checked against
flyteidl2's rules at the end, as the session backend's are.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FLYTE = str(Path(sys.executable).parent / "flyte")


class Workspace:
    """A user's project directory pointed at one backend."""

    def __init__(self, root: Path, backend: Any) -> None:
        self.root = root
        self.backend = backend
        self.home = root / "home"
        self.home.mkdir()
        (root / ".flyte").mkdir()
        (root / ".flyte" / "config.yaml").write_text(
            f"admin:\n  endpoint: {backend.endpoint}\n  insecure: true\n"
        )

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def sh(self, line: str, *, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs a seed's shell line (`flyte ...`), `~` being this workspace's home."""
        argv = [str(self.home) + a[1:] if a.startswith("~/") else a for a in shlex.split(line)]
        assert argv[0] == "flyte", line
        env = {**os.environ, "HOME": str(self.home), "NO_COLOR": "1", "COLUMNS": "250"}
        env = {k: v for k, v in env.items() if not k.startswith("FLYTE_")}
        proc = subprocess.run(
            [FLYTE, *argv[1:]], cwd=self.root, capture_output=True, text=True, env=env, timeout=300
        )
        if ok:
            assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, line: str) -> Any:
        """A `flyte` line's JSON output (`-of json` added)."""
        return json.loads(self.sh(line.replace("flyte ", "flyte -of json ", 1)).stdout)

    def wait_run(self, name: str, *, project: str = "", domain: str = "") -> dict[str, Any]:
        scope = f" -p {project} -d {domain}" if project else ""
        deadline = time.monotonic() + 240
        while True:
            fields = self.json(f"flyte get run {name}{scope}")
            if fields["phase"] in {"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"}:
                return fields
            assert time.monotonic() < deadline, fields
            time.sleep(0.5)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    from protovalidation import checked_backend

    data = tmp_path / "backend"
    data.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    with checked_backend(data, max_parallel=4) as backend:
        yield Workspace(work, backend)


def started_run(proc: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"Started run (\S+)", proc.stderr)
    assert match, proc.stderr
    return match.group(1)


# -- seed 000, "Deploying/Registering" and "Running Deployed Tasks" -----------------------------

MY_MODULE = """
import flyte

my_env = flyte.TaskEnvironment(name="my_env")
helper_env = flyte.TaskEnvironment(name="helper_env")


@my_env.task
async def my_task(arg1: str) -> str:
    return f"my_task got {arg1}"


@helper_env.task
async def helper(n: int) -> int:
    return n + 1
"""

SRC_A = """
import flyte

src_env = flyte.TaskEnvironment(name="src_env")


@src_env.task
async def from_src(x: int) -> int:
    return x * 3
"""

SRC_B = """
import flyte

nested_env = flyte.TaskEnvironment(name="nested_env")


@nested_env.task
async def from_nested(x: int) -> int:
    return x - 1
"""


def task_versions(w: Workspace, name: str, scope: str = "") -> list[str]:
    return [t["version"] for t in w.json(f"flyte get task {name}{scope}")]


def test_000_deploy_commands_as_written(workspace: Workspace) -> None:
    w = workspace
    w.write("my_module.py", MY_MODULE)
    w.write("src/pipeline_a.py", SRC_A)
    w.write("src/nested/pipeline_b.py", SRC_B)
    w.sh("flyte create project --id my-project --name my-project")

    # v2: Deploy task environments
    w.sh("flyte deploy my_module.py my_env --project my-project --domain development")
    scoped = task_versions(w, "my_env.my_task", " -p my-project -d development")
    assert len(scoped) == 1 and len(scoped[0]) == 32, scoped
    # Only the named environment: the other one was not deployed there.
    listed = {t["name"] for t in w.json("flyte get task -p my-project -d development")}
    assert listed == {"my_env.my_task"}, listed
    # Deploying unchanged code again changes nothing.
    w.sh("flyte deploy my_module.py my_env --project my-project --domain development")
    assert task_versions(w, "my_env.my_task", " -p my-project -d development") == scoped

    # v2: Deploy all environments in file (to the default project)
    w.sh("flyte deploy --all my_module.py")
    assert {t["name"] for t in w.json("flyte get task")} >= {"my_env.my_task", "helper_env.helper"}

    # v2: Deploy with version
    w.sh("flyte deploy --version v1.0.0 my_module.py my_env")
    assert "v1.0.0" in task_versions(w, "my_env.my_task")

    # v2: Recursive deployment
    w.sh("flyte deploy --recursive --all ./src")
    names = {t["name"] for t in w.json("flyte get task")}
    assert {"src_env.from_src", "nested_env.from_nested"} <= names, names

    # v2: Dry run (preview): says what, deploys nothing
    before = task_versions(w, "my_env.my_task")
    dry = w.sh("flyte deploy --dry-run my_module.py my_env")
    assert "my_env.my_task" in dry.stdout
    w.write("my_module.py", MY_MODULE + "\n# changed\n")
    w.sh("flyte deploy --dry-run my_module.py my_env")
    assert task_versions(w, "my_env.my_task") == before

    # The other flags of the seed's option list: an image per environment, and code that
    # is not bundled (read where it is, so the version must be given).
    w.sh("flyte deploy --image my_env=registry.local/team/my-image:1 --version img-1 my_module.py my_env")
    shown = {r["field"]: r["value"] for r in w.json("flyte get task my_env.my_task img-1")}
    assert shown["image"] == "registry.local/team/my-image:1" and shown["code"].startswith("bundle "), shown
    unversioned = w.sh("flyte deploy --copy-style none my_module.py my_env", ok=False)
    assert unversioned.returncode != 0 and "--version" in unversioned.stderr, unversioned.stderr
    w.sh("flyte deploy --copy-style none --version in-place my_module.py my_env")
    shown = {r["field"]: r["value"] for r in w.json("flyte get task my_env.my_task in-place")}
    assert shown["code"] == f"read in place from {w.root}", shown
    in_place = started_run(w.sh("flyte run deployed-task my_env.my_task:in-place --arg1 here"))
    assert "my_task got here" in w.wait_run(in_place)["outputs"]["o0"]

    # v2: Run a deployed task (the latest version), and a specific version
    latest = started_run(w.sh("flyte run deployed-task my_env.my_task --arg1 value1"))
    fields = w.wait_run(latest)
    assert fields["phase"] == "SUCCEEDED" and "my_task got value1" in fields["outputs"]["o0"], fields
    pinned = started_run(w.sh("flyte run deployed-task my_env.my_task:v1.0.0 --arg1 value1"))
    assert "my_task got value1" in w.wait_run(pinned)["outputs"]["o0"]
    # seed 004: "Monitor execution" (`flyte logs <execution-id>`)
    w.sh(f"flyte logs {pinned}")
    not_a_file = w.sh("flyte run my_workflow --arg1 x", ok=False)
    assert not_a_file.returncode == 2 and "deployed-task" in not_a_file.stderr

    # What a user gets wrong is named clearly.
    missing = w.sh("flyte run deployed-task my_env.my_task:v9 --arg1 value1", ok=False)
    assert missing.returncode != 0 and "v1.0.0" in missing.stderr, missing.stderr
    no_env = w.sh("flyte deploy my_module.py no_env", ok=False)
    assert no_env.returncode != 0 and "my_env" in no_env.stderr, no_env.stderr


# -- seed 004, "Remote Task Execution" and "Deploy and Run" -----------------------------------

SEED_004_DEPLOYED = """
import flyte

torch_env = flyte.TaskEnvironment(name="torch_env")
spark_env = flyte.TaskEnvironment(name="spark_env")


@spark_env.task
async def process_data(raw: flyte.File) -> flyte.File:
    return flyte.File.from_string(raw.read().upper(), "processed.txt")


@torch_env.task
async def train_model(data: flyte.File) -> flyte.File:
    text = data.read()
    return flyte.File.from_string(f"model trained on {text}", "model.txt")
"""

# The seed's orchestrator, verbatim after the line that gives it an environment.
SEED_004_WORKFLOW = """
import flyte

env = flyte.TaskEnvironment(name="orchestration")

import flyte.remote

# Reference tasks deployed elsewhere
torch_task = flyte.remote.Task.get("torch_env.train_model", auto_version="latest")
spark_task = flyte.remote.Task.get("spark_env.process_data", auto_version="latest")

@env.task
async def orchestrator(raw_data: flyte.File) -> flyte.File:
    # Execute Spark job on big data cluster
    processed = await spark_task(raw_data)

    # Execute PyTorch training on GPU cluster
    model = await torch_task(processed)

    return model
"""


def test_004_reference_tasks_called_positionally(workspace: Workspace) -> None:
    w = workspace
    w.write("teams.py", SEED_004_DEPLOYED)
    w.write("my_workflow.py", SEED_004_WORKFLOW)
    w.write("raw.txt", "some raw data")
    w.sh("flyte deploy --all teams.py")
    # Deploy tasks to remote cluster (every environment of the file)
    w.sh("flyte deploy my_workflow.py")
    assert "orchestration.orchestrator" in {t["name"] for t in w.json("flyte get task")}

    ran = w.sh("flyte -of json run --follow deployed-task orchestration.orchestrator --raw_data raw.txt")
    (model,) = json.loads(ran.stdout.strip().splitlines()[-1])["outputs"].values()
    assert Path(model["path"].removeprefix("file://")).read_text() == "model trained on SOME RAW DATA"


# -- seed 000, "Triggers" ---------------------------------------------------------------------

TRIGGERS_MODULE = """
from datetime import timedelta
import flyte


def process(x: int) -> int:
    return x * 2

"""

# seed 000: "Flyte v2" triggers, then the Cron options example on a task of its own, then
# "TriggerTime Parameter", all as written.
TRIGGERS_MODULE += """
env = flyte.TaskEnvironment(name="my_env")

# Hourly trigger (convenience method)
@env.task(triggers=flyte.Trigger.hourly())
def hourly_task(x: int = 10) -> int:
    return process(x)

# Custom cron trigger
cron_trigger = flyte.Trigger(
    name="custom_cron",
    automation=flyte.Cron("0 * * * *"),  # Every hour
    inputs={"x": 10},
    auto_activate=True,
)

@env.task(triggers=cron_trigger)
def scheduled_task(x: int) -> int:
    return process(x)

# Fixed rate trigger
rate_trigger = flyte.Trigger(
    name="frequent",
    automation=flyte.FixedRate(timedelta(minutes=30)),
    inputs={"x": 5},
    auto_activate=True,
)

@env.task(triggers=rate_trigger)
def frequent_task(x: int) -> int:
    return process(x)

weekday_trigger = flyte.Trigger(
    name="weekday_mornings",
    automation=flyte.Cron(
        schedule="0 9 * * 1-5",      # 9 AM weekdays
        timezone="America/New_York", # Optional timezone
    ),
    inputs={"x": 1},
    auto_activate=False,
)

@env.task(triggers=weekday_trigger)
def weekday_task(x: int) -> int:
    return process(x)

# v2: Automatic trigger time injection
from datetime import datetime

@env.task(triggers=flyte.Trigger.hourly())
def my_task() -> str:
    return f"Triggered"

# Custom parameter name
custom_trigger = flyte.Trigger(
    name="my_trigger",
    automation=flyte.Cron("0 * * * *"),
    inputs={"x": 10},
)

@env.task(triggers=custom_trigger)
def my_task(x: int) -> str:
    return f"Started with x={x}"

@env.task(triggers=flyte.Trigger.hourly("my_time"))
def timed_task(my_time: datetime) -> str:
    return f"kicked off at {my_time.isoformat()}"
"""

DAY_MS = 24 * 3600 * 1000


def trigger_runs(w: Workspace) -> dict[str, list[dict[str, str]]]:
    by_trigger: dict[str, list[dict[str, str]]] = {}
    for run in w.json("flyte get run --limit 100"):
        if run["trigger"]:
            by_trigger.setdefault(f"{run['task']}/{run['trigger']}", []).append(run)
    return by_trigger


def test_000_triggers_deploy_list_activate_and_fire(workspace: Workspace) -> None:
    w = workspace
    w.write("my_module.py", TRIGGERS_MODULE)
    # Deploy environment (triggers deploy with it)
    w.sh("flyte deploy my_module.py my_env")
    listed = {(t["task"], t["name"]): t for t in w.json("flyte get trigger")}
    assert set(listed) == {
        ("my_env.hourly_task", "hourly"),
        ("my_env.scheduled_task", "custom_cron"),
        ("my_env.frequent_task", "frequent"),
        ("my_env.weekday_task", "weekday_mornings"),
        ("my_env.my_task", "my_trigger"),
        ("my_env.timed_task", "hourly"),
    }, listed
    # Triggers with auto_activate=True activate automatically; the others wait.
    assert listed[("my_env.weekday_task", "weekday_mornings")]["active"] == "false"
    assert listed[("my_env.frequent_task", "frequent")]["active"] == "true"
    assert "America/New_York" in listed[("my_env.weekday_task", "weekday_mornings")]["automation"]
    w.sh("flyte update trigger weekday_mornings my_env.weekday_task --activate")
    assert w.json("flyte get trigger my_env.weekday_task")[0]["active"] == "true"

    # Eight days on, every schedule has a due tick: each fires once (the latest missed tick
    # only), with its inputs; the scheduler's own once-a-second pass may have fired the hourly
    # ones already at a real hour boundary, which the count allows for.
    started = w.backend._fire_due_triggers(int(time.time() * 1000) + 8 * DAY_MS)
    assert 1 <= started <= 6, started
    assert w.backend._fire_due_triggers(int(time.time() * 1000) + 8 * DAY_MS) == 0

    expected = {
        "my_env.hourly_task/hourly": "20",
        "my_env.scheduled_task/custom_cron": "20",
        "my_env.frequent_task/frequent": "10",
        "my_env.weekday_task/weekday_mornings": "2",
        "my_env.my_task/my_trigger": "Started with x=10",
        "my_env.timed_task/hourly": "kicked off at",
    }
    runs = trigger_runs(w)
    assert set(runs) == set(expected), runs
    for key, want in expected.items():
        for run in runs[key]:
            fields = w.wait_run(run["run"])
            assert fields["phase"] == "SUCCEEDED" and fields["trigger"] == key.split("/")[1], fields
            assert want in str(fields["outputs"]["o0"]), (key, fields)


# -- seed 000, "Secrets Migration" ------------------------------------------------------------

# seed 000's v2 secrets example, as written
SECRETS_MODULE = """
import flyte
import os

env = flyte.TaskEnvironment(
    name="my_env",
    secrets=[
        flyte.Secret(key="mykey", as_env_var="MY_SECRET"),
        flyte.Secret(key="db-password", as_env_var="DB_PASSWORD"),
    ],
)

@env.task
def my_task() -> str:
    secret_value = os.environ["MY_SECRET"]
    db_password = os.environ["DB_PASSWORD"]
    return f"Got secrets"
"""

# ... and its "Examples" list, on an environment whose task reports what it received.
SECRETS_MODULE += """
options_env = flyte.TaskEnvironment(
    name="options_env",
    secrets=[
        # Simple: key becomes uppercase env var (MY_API_KEY)
        flyte.Secret(key="my-api-key"),

        # Custom env var name
        flyte.Secret(key="openai-key", as_env_var="OPENAI_API_KEY"),

        # With group (env var: AWS_ACCESS_KEY)
        flyte.Secret(key="access-key", group="aws"),

        # As file
        flyte.Secret(key="ssl-cert", mount="/etc/flyte/secrets"),
    ],
)

@options_env.task
def report() -> str:
    mounted = os.path.join(os.environ["FLYTE_SECRETS_DEFAULT_DIR"], "ssl-cert")
    with open(mounted) as f:
        cert = f.read()
    return "|".join([os.environ["MY_API_KEY"], os.environ["OPENAI_API_KEY"], os.environ["AWS_ACCESS_KEY"], cert])
"""


def test_000_secret_commands_and_declared_secrets(workspace: Workspace) -> None:
    w = workspace
    w.write("secret.txt", "from a file\n")
    w.write("home/.docker/config.json", '{"auths": {"registry.local": {"auth": "dXNlcjpwYXNz"}}}')
    w.sh("flyte create project --id my-project --name my-project")

    # v2: Create secret
    w.sh("flyte create secret MY_SECRET_KEY my_secret_value")
    # List secrets (names, never values)
    listed = w.sh("flyte get secret").stdout
    assert "MY_SECRET_KEY" in listed and "my_secret_value" not in listed
    # Delete secret
    w.sh("flyte delete secret MY_SECRET_KEY")
    assert "MY_SECRET_KEY" not in w.sh("flyte get secret").stdout
    # From file (again, now that the first one is gone)
    w.sh(f"flyte create secret MY_SECRET_KEY --from-file {w.root / 'secret.txt'}")
    # Scoped to a project and domain
    w.sh("flyte create secret --project my-project --domain development MY_SECRET_KEY value")
    scoped = w.sh("flyte get secret --project my-project --domain development").stdout
    assert "MY_SECRET_KEY" in scoped
    # The private registry secret (seed 000, "Private Registry with Secrets")
    w.sh("flyte create secret --type image_pull my-registry-secret --from-file ~/.docker/config.json")
    assert "my-registry-secret" in w.sh("flyte get secret").stdout
    again = w.sh("flyte create secret MY_SECRET_KEY other", ok=False)
    assert again.returncode != 0 and "MY_SECRET_KEY" in again.stderr

    # A task gets exactly what its environment declares.
    w.write("secrets_wf.py", SECRETS_MODULE)
    missing = started_run(w.sh("flyte run secrets_wf.py my_task"))
    fields = w.wait_run(missing)
    assert fields["phase"] == "FAILED" and "mykey" in fields["error"]["message"], fields
    w.sh("flyte create secret mykey k-value")
    w.sh("flyte create secret db-password p-value")
    fields = w.wait_run(started_run(w.sh("flyte run secrets_wf.py my_task")))
    assert fields["phase"] == "SUCCEEDED" and "Got secrets" in fields["outputs"]["o0"], fields

    for key, value in [
        ("my-api-key", "api"),
        ("openai-key", "oai"),
        ("access-key", "aws"),
        ("ssl-cert", "CERT"),
    ]:
        w.sh(f"flyte create secret {key} {value}")
    fields = w.wait_run(started_run(w.sh("flyte run secrets_wf.py report")))
    assert fields["phase"] == "SUCCEEDED" and "api|oai|aws|CERT" in fields["outputs"]["o0"], fields
    # Values never show in what the backend reports about a run.
    assert "p-value" not in json.dumps(fields)
