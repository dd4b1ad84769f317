"""flyte.remote against the embedded backend, as the reference SDK's users call it: projects,
secrets, triggers and uploads, in their sync and ``.aio`` forms."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime
from pathlib import Path

import pytest

import flyte
import flyte.remote as remote
from flyte.io import Dir, File

env = flyte.TaskEnvironment(name="remote_api")


@env.task(triggers=[flyte.Trigger("every_hour", flyte.Cron("0 * * * *"), inputs={"when": flyte.TriggerTime})])
def scheduled(when: datetime) -> str:
    return when.isoformat()


@pytest.fixture
def backend(backend_endpoint: str) -> str:
    flyte.init(endpoint=backend_endpoint, insecure=True)
    return backend_endpoint


def test_projects(backend: str) -> None:
    pid = f"p{uuid.uuid4().hex[:8]}"
    created = remote.Project.create(
        pid, "Parity project", description="made by a test", labels={"team": "sdk"}
    )
    assert created.name == "Parity project" and not created.archived
    assert remote.Project.get(pid).pb2.description == "made by a test"
    assert pid in [p.pb2.id for p in remote.Project.listall()]
    created.archive()
    assert created.archived
    assert pid in [p.pb2.id for p in remote.Project.listall(archived=True)]
    assert pid not in [p.pb2.id for p in remote.Project.listall()]
    created.unarchive()
    assert remote.Project.update(pid, description="changed").pb2.description == "changed"
    assert created.to_dict()["id"] == pid and '"id"' in created.to_json()
    with pytest.raises(ValueError, match="state must be"):
        remote.Project.update(pid, state="deleted")


def test_secrets(backend: str) -> None:
    name = f"s{uuid.uuid4().hex[:8]}"
    remote.Secret.create(name, "value-1")
    asyncio.run(remote.Secret.create.aio(name + "-pull", b'{"auths": {}}', type="image_pull"))
    got = remote.Secret.get(name)
    assert got.name == name and got.type == "regular"
    assert remote.Secret.get(name + "-pull").type == "image_pull"
    names = {s.name for s in remote.Secret.listall(limit=1)}  # a page of one at a time
    assert {name, name + "-pull"} <= names
    remote.Secret.delete(name)
    assert name not in {s.name for s in remote.Secret.listall()}
    with pytest.raises(ValueError, match="cluster pool"):
        remote.Secret.get(name, cluster_pool="gpu-pool")
    with pytest.raises(ValueError, match="'regular' or 'image_pull'"):
        remote.Secret.create(name, "x", type="other")  # type: ignore[arg-type]


def test_triggers(backend: str) -> None:
    flyte.deploy(env, version="v1")
    found = [t for t in remote.Trigger.listall(task_name="remote_api.scheduled") if t.name == "every_hour"]
    assert len(found) == 1 and found[0].is_active
    assert [
        t.name for t in remote.Trigger.listall(task_name="remote_api.scheduled", task_version="nope")
    ] == []
    details = remote.TriggerDetails.get(name="every_hour", task_name="remote_api.scheduled")
    assert details.is_active and details.trigger.name == "every_hour"
    assert details.automation_spec.schedule.cron.expression == "0 * * * *"
    remote.Trigger.update("every_hour", "remote_api.scheduled", active=False)
    assert not remote.Trigger.get(name="every_hour", task_name="remote_api.scheduled").is_active
    remote.Trigger.delete("every_hour", "remote_api.scheduled")
    assert "every_hour" not in [t.name for t in remote.Trigger.listall(task_name="remote_api.scheduled")]


def test_uploads(backend: str, tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x00payload")
    md5, url = remote.upload_file(data)
    assert md5 == hashlib.md5(b"\x00payload").hexdigest()  # noqa: S324
    assert File.from_existing_remote(url).read_bytes() == b"\x00payload"

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("A")
    (tree / "sub" / "b.txt").write_text("B")
    folder = asyncio.run(remote.upload_dir.aio(tree, prefix="my-tree"))
    assert folder.endswith("my-tree")
    assert [f.name for f in Dir.from_existing_remote(folder).list_files_sync()] == ["a.txt", "b.txt"]
    (tree / "sub" / "a.txt").write_text("clash")
    with pytest.raises(ValueError, match="same name"):
        remote.upload_dir(tree)


def test_who_am_i(backend: str) -> None:
    import getpass

    me = remote.User.get()
    assert me.name() == getpass.getuser() and me.subject()


def test_deployed_tasks_are_listed(backend: str) -> None:
    flyte.deploy(env, version="v2")
    listed = list(remote.Task.listall(by_task_env="remote_api"))
    assert [t.name for t in listed] == ["remote_api.scheduled"] and listed[0].version == "v2"
    assert (
        listed[0].url.endswith("/remote_api.scheduled/v2")
        and listed[0].to_dict()["taskId"]["version"] == "v2"
    )
    assert [t.name for t in remote.Task.listall(by_task_name="remote_api.scheduled")] == [
        "remote_api.scheduled"
    ]
    assert remote.Task.get("remote_api.scheduled", auto_version="latest").version == "v2"
    with pytest.raises(ValueError, match="not supported"):
        list(remote.Task.listall(entrypoint=True))
