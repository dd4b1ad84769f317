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


@env.task(
    triggers=[flyte.Trigger("every_hour", flyte.Cron("0 * * * *"), inputs={"when": flyte.TriggerTime})],
    entrypoint=True,
)
def scheduled(when: datetime) -> str:
    return when.isoformat()


# Tasks the run tests start (not deployed with `env`).
runs_env = flyte.TaskEnvironment(name="remote_runs")


@runs_env.task
def square(x: int) -> int:
    print(f"squaring {x}")
    return x * x


@runs_env.task
def refuse(x: int) -> int:
    raise ValueError(f"refusing {x}")


@runs_env.task(report=True)
async def fan_out(n: int, fail: bool = False) -> tuple[int, str]:
    await flyte.report.log.aio(f"<p>fanned out to {n}</p>", do_flush=True)
    total = sum(await asyncio.gather(*(square.aio(i) for i in range(n))))
    if fail:
        await refuse.aio(n)
    return total, "done"


@runs_env.task(max_inline_io_bytes=1024)
def long_text(n: int) -> str:
    return "x" * n


@runs_env.task
async def dawdle(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


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

    # A trigger added to the deployed task after the fact, checked against its inputs.
    nightly = flyte.Trigger("nightly", flyte.Cron("0 3 * * *"), inputs={"when": flyte.TriggerTime})
    created = remote.Trigger.create(nightly, task_name="remote_api.scheduled")
    assert created.name == "nightly" and created.is_active
    got = remote.Trigger.get(name="nightly", task_name="remote_api.scheduled")
    assert got.pb2.spec.task_version == "v1" and got.automation_spec.schedule.cron.expression == "0 3 * * *"
    with pytest.raises(Exception, match="no_such_input|not an input|unknown"):
        remote.Trigger.create(
            flyte.Trigger("bad", flyte.Cron("0 3 * * *"), inputs={"no_such_input": 1}),
            task_name="remote_api.scheduled",
        )
    with pytest.raises(flyte.errors.RemoteTaskError, match="no deployed task"):
        remote.Trigger.create(nightly, task_name="remote_api.nothing_here")
    remote.Trigger.delete("nightly", "remote_api.scheduled")


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
    assert listed[0].entrypoint is True
    assert [t.name for t in remote.Task.listall(by_task_env="remote_api", entrypoint=True)] == [
        "remote_api.scheduled"
    ]
    assert list(remote.Task.listall(by_task_env="remote_api", entrypoint=False)) == []


def _run(tag: str, task, **inputs):
    return flyte.with_runcontext(labels={"suite": tag}).run(task, **inputs)


def test_runs_follow_and_read(backend: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    started = datetime.now().astimezone()
    run = _run(tag, fan_out, n=3)
    assert isinstance(run, remote.Run) and run.name and run.url
    assert run.wait(quiet=True) is run and run.done()
    assert run.phase == flyte.models.ActionPhase.SUCCEEDED and run.phase == "succeeded"
    run.raise_for_status()  # nothing to raise
    outputs = run.outputs()
    assert isinstance(outputs, remote.ActionOutputs) and tuple(outputs) == (5, "done")
    assert outputs.named_outputs == {"o0": 5, "o1": "done"} and outputs.o1 == "done"
    assert run.inputs() == {"n": 3, "fail": False}
    assert run.typed_outputs({"o0": int}) == {"o0": 5}
    assert run.typed_inputs({"n": str}, deserializers={str: lambda raw: f"n={raw}"}) == {"n": "n=3"}
    assert set(run.output_literals()) == {"o0", "o1"}

    # Found again by name, in a fresh object: values decoded from the backend's types alone.
    found = remote.Run.get(run.name)
    assert found.task_name == "remote_runs.fan_out" and tuple(found.outputs()) == (5, "done")
    details = found.details()
    assert (
        isinstance(details, remote.RunDetails)
        and details.done()
        and details.pb2.run_spec.labels.values["suite"] == tag
    )
    assert details.action_details.attempts == 1 and details.action_details.runtime.total_seconds() >= 0
    assert details.action_details.error_message == "" and details.action_details.abort_info is None
    phases = [t.phase for t in details.action_details.get_phase_transitions()]
    assert phases == ["queued", "running"] and details.action_details.running_time is not None
    assert details.action_details.queued_time is not None and details.action_details.logs_available()

    # Its actions: the root and one child per square.
    names = [a.name for a in remote.Action.listall(for_run_name=run.name)]
    assert names[0] == "a0" and len(names) == 4
    children = list(remote.Action.listall(for_run_name=run.name, parent_name="a0"))
    assert len(children) == 3 and {c.task_name for c in children} == {"remote_runs.square"}
    assert all(c.parent_name == "a0" and c.done() for c in children)
    newest_first = [
        a.name for a in remote.Action.listall(for_run_name=run.name, sort_by=("created_at", "desc"))
    ]
    assert newest_first == names[::-1]
    child = remote.Action.get(run_name=run.name, name=children[0].name)
    assert (
        child.phase == "succeeded"
        and remote.ActionDetails.get(f"{run.name}/{child.name}").task_name == child.task_name
    )
    assert any(line.startswith("squaring ") for line in child.get_logs())
    assert "fanned out to 3" in run.get_report()

    # Listing: by label, phase, time and task; newest first or oldest first; at most `limit`.
    mine = list(remote.Run.listall(with_labels={"suite": tag}))
    assert [r.name for r in mine] == [run.name] and mine[0].pb2.labels["suite"] == tag
    assert run.name in [r.name for r in remote.Run.listall(with_label_keys=["suite"], limit=1000)]
    assert run.name in [r.name for r in remote.Run.listall(in_phase=("succeeded",), limit=1000)]
    assert run.name not in [r.name for r in remote.Run.listall(in_phase=("failed", "aborted"), limit=1000)]
    assert [
        r.name
        for r in remote.Run.listall(with_labels={"suite": tag}, created_at=remote.TimeFilter(after=started))
    ] == [run.name]
    assert not list(
        remote.Run.listall(with_labels={"suite": tag}, created_at=remote.TimeFilter(before=started))
    )
    assert [
        r.name for r in remote.Run.listall(task_name="remote_runs.fan_out", with_labels={"suite": tag})
    ] == [run.name]
    assert len(list(remote.Run.listall(limit=1))) == 1

    # The code it ran, as uploaded.
    code = run.download_code(tmp_path / "code")
    assert (code / Path(__file__).name).is_file() or any(code.rglob(Path(__file__).name))


def test_failed_and_aborted_runs(backend: str) -> None:
    tag = uuid.uuid4().hex[:8]
    failed = _run(tag, fan_out, n=2, fail=True)
    failed.wait(quiet=True)  # waiting does not raise: raise_for_status and outputs do
    assert failed.phase == "failed"
    with pytest.raises(ValueError, match="refusing 2"):
        failed.raise_for_status()
    with pytest.raises(ValueError, match="refusing 2"):
        failed.outputs()
    first = failed.first_failure()
    assert (
        first is not None and first.task_name == "remote_runs.refuse" and "refusing 2" in first.error_message
    )
    failures = [a.name for a in remote.Action.listall(for_run_name=failed.name, in_phase=("failed",))]
    assert failures == ["a0", first.name]

    slow = _run(tag, dawdle, seconds=120)
    slow.wait(quiet=True, wait_for="running")
    assert slow.phase == "running" and not slow.done()
    with pytest.raises(flyte.errors.RuntimeUserError, match="RunNotDone|wait"):
        slow.raise_for_status()
    with pytest.raises(RuntimeError, match="no outputs until it ends"):
        slow.outputs()
    slow.abort("enough")
    slow.wait(quiet=True)
    assert slow.phase == "aborted"
    with pytest.raises(flyte.errors.ActionAbortedError):
        slow.raise_for_status()
    assert {
        r.name for r in remote.Run.listall(with_labels={"suite": tag}, in_phase=("aborted", "failed"))
    } == {
        failed.name,
        slow.name,
    }


def test_runs_in_async_code(backend: str) -> None:
    async def main() -> None:
        run = await flyte.run.aio(square, x=7)
        assert await run.wait.aio(quiet=True) is run
        assert (await run.outputs.aio())[0] == 49
        again = await remote.Run.get.aio(run.name)
        assert (await again.details.aio()).name == run.name
        seen = [r.name async for r in remote.Run.listall.aio(task_name="remote_runs.square", limit=1000)]
        assert run.name in seen
        phases = [d.phase async for d in again.watch()]
        assert phases[-1] == "succeeded"
        lines = [line async for line in run.get_logs.aio()]
        assert "squaring 7" in lines

    asyncio.run(main())


def test_bad_listing_arguments(backend: str) -> None:
    with pytest.raises(ValueError, match="not a phase"):
        list(remote.Run.listall(in_phase=("finished",)))
    with pytest.raises(ValueError, match="'asc' or 'desc'"):
        list(remote.Run.listall(sort_by=("created_at", "up")))
    with pytest.raises(TypeError, match="TimeFilter"):
        list(remote.Run.listall(created_at=datetime.now()))  # type: ignore[arg-type]
    with pytest.raises(flyte.errors.RuntimeSystemError, match="sort"):
        list(remote.Run.listall(sort_by=("colour", "asc")))
    with pytest.raises(ValueError, match="run_name"):
        remote.Action.get(run_name="", name="a0")
    with pytest.raises(flyte.errors.ActionNotFoundError):
        remote.Run.get("no-such-run-here")


def test_a_tasks_inline_limit_offloads_its_larger_values(backend: str) -> None:
    large = flyte.run(long_text, n=5000).wait(quiet=True)
    assert large.output_literals()["o0"].HasField("offloaded_metadata")
    assert large.outputs()[0] == "x" * 5000
    small = flyte.run(long_text, n=100).wait(quiet=True)
    assert not small.output_literals()["o0"].HasField("offloaded_metadata")


def test_rerun_starts_the_same_task_again(backend: str) -> None:
    first = flyte.run(square, x=7).wait(quiet=True)
    again = flyte.rerun(first.name)
    assert isinstance(again, remote.Run) and again.name != first.name
    assert again.wait(quiet=True).result == 49 and again.task_name == "remote_runs.square"
    assert flyte.rerun(first.name, x=3).result == 9
    tag = uuid.uuid4().hex[:8]
    parent = _run(tag, fan_out, n=2).wait(quiet=True)
    child = next(iter(remote.Action.listall(for_run_name=parent.name, parent_name="a0")))
    # A sub-action runs again on its own, as a run of its task.
    assert flyte.rerun(parent.name, action_name=child.name).result in (0, 1)
    # The root's run settings come along.
    assert next(iter(flyte.rerun(parent.name).details().pb2.run_spec.labels.values.items())) == ("suite", tag)
    with pytest.raises(TypeError, match="not inputs"):
        flyte.rerun(first.name, y=1)
    with pytest.raises(ValueError, match="recover"):
        flyte.rerun(first.name, recover=True)
    with pytest.raises(flyte.errors.ActionNotFoundError):
        flyte.rerun("no-such-run-here")


def test_run_logs_and_the_notebook_entry_points(backend: str, tmp_path: Path, capsys) -> None:
    tag = uuid.uuid4().hex[:8]
    run = _run(tag, fan_out, n=2)
    # run.logs.stream() prints the root's lines (here: none) as they come, until it ends.
    run.logs.stream()
    assert run.wait(quiet=True).phase == "succeeded"
    children = [a.name for a in remote.Action.listall(for_run_name=run.name, parent_name="a0")]
    assert len(children) == 2
    run.logs.stream(action=children[0])
    streamed = capsys.readouterr().out
    assert streamed in ("squaring 0\n", "squaring 1\n")
    assert list(run.logs.lines(children[0])) == [streamed.strip()]

    async def lines_aio(action: str) -> list[str]:
        return [line async for line in run.logs.lines.aio(action)]

    assert sorted(asyncio.run(lines_aio(c))[0] for c in children) == ["squaring 0", "squaring 1"]
    asyncio.run(run.logs.stream.aio(action=children[1]))
    assert capsys.readouterr().out.startswith("squaring ")
    # Every attempt of every action that wrote anything, one file each.
    saved = run.download_logs(tmp_path / "logs")
    assert sorted(p.name for p in saved.iterdir()) == sorted(
        f"{c}-remote_runs.square-attempt1.log" for c in children
    )
    assert (saved / f"{children[0]}-remote_runs.square-attempt1.log").read_text() == streamed

    # The seeds' notebook style: flyte.remote() lists the newest runs first and finds one.
    session = flyte.remote()
    assert isinstance(session, remote.Remote)
    newest = session.list_runs(limit=5)
    assert newest[0].name == run.name
    assert session.get_run(run.name).outputs()[0] == 1
    assert [r.name for r in session.list_runs(task_name="remote_runs.fan_out", limit=100)][0] == run.name
    with pytest.raises(flyte.errors.ActionNotFoundError):
        session.get_run("rnosuchrun000000000")


def test_watch_actions_sends_every_action_then_changes_with_counts(backend: str) -> None:
    from flyteidl2.common import list_pb2, phase_pb2
    from flyteidl2.workflow import run_service_pb2

    from flyte.remote._common import connection

    tag = uuid.uuid4().hex[:8]
    run = _run(tag, fan_out, n=3)
    client, _ = connection()
    run_id = run.pb2.action.id.run

    async def watch() -> list:
        seen = []
        async for batch in client.watch_actions(run_id):
            seen.extend(batch)
        return seen

    seen = asyncio.run(watch())
    # The stream ends with the run; the last word on each action is its final state.
    last = {e.action.id.name: e for e in seen}
    children = sorted(name for name in last if name != "a0")
    assert "a0" in last and len(children) == 3
    assert all(e.action.status.phase == phase_pb2.ACTION_PHASE_SUCCEEDED for e in last.values())
    assert dict(last["a0"].children_phase_counts) == {phase_pb2.ACTION_PHASE_SUCCEEDED: 3}
    assert all(e.meets_filter for e in seen)

    # Filters: what the protocol defines (NAME contains, PHASE in); others are refused.
    async def filtered(*filters) -> list[str]:
        req = run_service_pb2.WatchActionsRequest(run_id=run_id, filter=list(filters))
        names = []
        async for resp in client._stream(
            "/flyteidl2.workflow.RunService/WatchActions", req, run_service_pb2.WatchActionsResponse, "watch"
        ):
            names += [e.action.id.name for e in resp.enriched_actions]
        return names

    by_name = list_pb2.Filter(
        function=list_pb2.Filter.CONTAINS_CASE_INSENSITIVE, field="NAME", values=[children[1].upper()]
    )
    assert asyncio.run(filtered(by_name)) == [children[1]]
    by_phase = list_pb2.Filter(
        function=list_pb2.Filter.VALUE_IN, field="PHASE", values=[str(phase_pb2.ACTION_PHASE_FAILED)]
    )
    assert asyncio.run(filtered(by_phase)) == []
    wrong = list_pb2.Filter(function=list_pb2.Filter.EQUAL, field="task_name", values=["x"])
    with pytest.raises(flyte.errors.RuntimeSystemError, match="NAME .*PHASE"):
        asyncio.run(filtered(wrong))
