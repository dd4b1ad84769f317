"""Conditions (``flyte.new_condition``): a task pauses until someone outside the run gives a
value. On the embedded backend a condition is an action of its own that runs nothing; it is
found and signalled with ``flyte.remote.Condition``, the CLI, or the signed callback URI its
webhook was given, and it times out or is aborted like any action. In local mode the value is
typed at the terminal (standard input here)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hooks import Hooks

import flyte
import flyte.errors
import flyte.remote as remote

env = flyte.TaskEnvironment(name="conditions_wf")


@env.task
async def approve(x: int) -> str:
    ok = await (await flyte.new_condition.aio("approval", prompt="Ship it?", data_type=bool)).wait.aio()
    count = await flyte.new_condition.aio("count", data_type=int, description="how many more")
    return f"{ok} {await count.wait.aio() + x}"


@env.task
def sync_ratio(x: float) -> float:
    """A sync task waits with the plain call."""
    return flyte.new_condition("ratio", data_type=float, prompt="Ratio?").wait() * x


@env.task
async def impatient(seconds: float) -> str:
    condition = await flyte.new_condition.aio("hurry", data_type=str, timeout=seconds)
    try:
        return await condition.wait.aio()
    except flyte.errors.ConditionTimedoutError as e:
        return f"timed out: {e}"


@env.task
async def gate(url: str) -> str:
    hook = flyte.ConditionWebhook(
        url=url, payload={"signal_at": "{callback_uri}", "also": ["{callback_uri}", 3], "kind": "gate"}
    )
    condition = await flyte.new_condition.aio("gate", data_type=int, webhook=hook)
    return f"opened with {await condition.wait.aio()}"


def _start(task: Any, *args: Any) -> Any:
    return flyte.with_runcontext(mode="remote").run(task, *args)


def _condition(run_name: str, name: str, timeout: float = 30) -> remote.Condition:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = remote.Condition.get(name, run_name=run_name)
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"condition {name!r} of run {run_name} never appeared")


@pytest.fixture
def backend(backend_endpoint: str) -> str:
    flyte.init(endpoint=backend_endpoint, insecure=True)
    return backend_endpoint


# -- on the embedded backend -------------------------------------------------------------------


def test_a_task_waits_for_the_values_its_conditions_are_signalled_with(backend: str) -> None:
    run = _start(approve, 1)
    approval = _condition(run.name, "approval")
    assert approval.phase == "PAUSED" and approval.expected_type is bool
    assert approval.name == "approval" and approval.run_name == run.name
    with pytest.raises(flyte.errors.RuntimeSystemError, match="expects a BOOLEAN value, got the INTEGER 3"):
        approval.signal(3)
    with pytest.raises(TypeError, match="bool, int, float or str"):
        approval.signal([True])  # type: ignore[arg-type]
    approval.signal(True)
    approval.signal(True)  # the same value again changes nothing
    with pytest.raises(flyte.errors.RuntimeSystemError, match="already ended"):
        approval.signal(False)
    count = _condition(run.name, "count")
    assert count.expected_type is int
    count.signal(41)
    assert run.wait().outputs()[0] == "True 42"
    conditions = {c.name: c for c in remote.Condition.listall(run_name=run.name, action_name="a0")}
    assert set(conditions) == {"approval", "count"}
    assert {c.phase for c in conditions.values()} == {"SUCCEEDED"}
    assert list(remote.Condition.listall(run_name=run.name, action_name="someone-else")) == []
    assert remote.Condition.get("nope", run_name=run.name) is None
    # The run's other actions are not conditions, and a condition is no task.
    kinds = {a.name: a.pb2.metadata.action_type for a in remote.Action.listall(for_run_name=run.name)}
    assert len(kinds) == 3


def test_a_sync_task_waits_too(backend: str) -> None:
    run = _start(sync_ratio, 2.0)
    _condition(run.name, "ratio").signal(1.25)
    assert run.wait().outputs()[0] == 2.5


def test_an_unsignalled_condition_times_out_with_its_own_error(backend: str) -> None:
    run = _start(impatient, 0.5)
    assert run.wait().outputs()[0].startswith("timed out: ")
    assert _condition(run.name, "hurry").phase == "TIMED_OUT"


def test_aborting_the_run_aborts_its_waiting_condition(backend: str) -> None:
    run = _start(approve, 1)
    approval = _condition(run.name, "approval")
    run.abort(reason="changed my mind")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _condition(run.name, "approval").phase != "ABORTED":
        time.sleep(0.1)
    assert _condition(run.name, "approval").phase == "ABORTED"
    with pytest.raises(flyte.errors.RuntimeSystemError, match="already ended"):
        approval.signal(True)


def _post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_webhook_receiver_signals_through_the_callback_uri(backend: str, hooks: Hooks) -> None:
    run = _start(gate, f"{hooks.url}/gate")
    received = json.loads(hooks.wait_for("/gate")["body"])
    callback = received["signal_at"]
    assert received["also"] == [callback, 3] and received["kind"] == "gate"
    assert callback.startswith(f"http://{backend}/conditions/") and "signature=" in callback
    assert _post(callback.replace("signature=", "signature=00"), b"1")[0] == 403
    assert _post(callback, b"true") == (400, "the condition expects a INTEGER value, got true")
    assert _post(callback, b"not json")[0] == 400
    assert _post(callback, b'{"value": 7}') == (200, "signalled")
    assert _post(callback, b"7") == (200, "signalled")  # the same value: nothing changes
    assert _post(callback, b"8")[0] == 409
    assert run.wait().outputs()[0] == "opened with 7"


def test_the_cli_lists_and_signals_conditions(backend: str) -> None:
    run = _start(approve, 1)
    approval = _condition(run.name, "approval")
    flyte_cli = [str(Path(sys.executable).parent / "flyte"), "--endpoint", backend, "--insecure"]

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*flyte_cli, *args], input=stdin, capture_output=True, text=True, timeout=60)

    listed = cli("-of", "json", "get", "condition", run.name)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["condition"], r["type"], r["phase"]) for r in rows] == [("approval", "bool", "PAUSED")]
    refused = cli("signal", "condition", run.name, approval.action_name, "maybe")
    assert refused.returncode != 0 and "'maybe' is not yes or no" in refused.stderr
    not_one = cli("signal", "condition", run.name, "a0", "yes")
    assert not_one.returncode != 0 and "is not a condition" in not_one.stderr
    assert cli("signal", "condition", run.name, approval.action_name, "yes").returncode == 0
    count = _condition(run.name, "count")
    asked = cli("signal", "condition", run.name, count.action_name, stdin="9\n")
    assert asked.returncode == 0, asked.stderr
    assert "how many more" in asked.stderr
    assert run.wait().outputs()[0] == "True 10"


# -- in local mode: typed at the terminal -------------------------------------------------------


def _local(task: Any, *args: Any) -> Any:
    return flyte.with_runcontext(mode="local").run(task, *args).wait().outputs()[0]


def test_local_mode_asks_for_the_values_on_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("maybe\nyes\nfive\n5\n"))
    assert _local(approve, 1) == "True 6"
    asked = capsys.readouterr().err
    assert "Ship it? [y/n]" in asked and "'maybe' is not yes or no" in asked
    assert "how many more" in asked and "'five' is not an integer" in asked
    monkeypatch.setattr(sys, "stdin", io.StringIO("0.5\n"))
    assert _local(sync_ratio, 3.0) == 1.5


def test_local_mode_times_out_and_reports_an_ended_input(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end) as never_answered, os.fdopen(write_end, "w"):
        monkeypatch.setattr(sys, "stdin", never_answered)
        assert _local(impatient, 0.3).startswith("timed out: ")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(flyte.errors.ConditionFailedError, match="the terminal's input ended"):
        flyte.with_runcontext(mode="local").run(sync_ratio, 1.0)


def test_local_mode_calls_the_webhook_too(monkeypatch: pytest.MonkeyPatch, hooks: Hooks) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("4\n"))
    assert _local(gate, f"{hooks.url}/local-gate") == "opened with 4"
    received = json.loads(hooks.wait_for("/local-gate")["body"])
    assert received["signal_at"] == "local://conditions/gate/signal"


def test_conditions_are_declared_inside_tasks() -> None:
    outside = flyte.new_condition("free", data_type=str)
    assert outside.name == "free" and outside.data_type is str
    with pytest.raises(RuntimeError, match="inside a running task"):
        outside.wait()
    with pytest.raises(TypeError, match="must be one of bool, int, float or str"):
        flyte.new_condition("bad", data_type=list)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be positive"):
        flyte.new_condition("bad", timeout=0)
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        flyte.ConditionWebhook(url="ftp://example.com")
