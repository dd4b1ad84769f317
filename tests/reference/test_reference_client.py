"""The unmodified reference SDK against our embedded backend: over its default Connect
transport, through its Python API and its CLI; its task containers run under its own
virtualenv (the image mapping of `flyte start local --image`). Each test asserts on what
came back, not on exit codes alone."""

from __future__ import annotations

import json
import time

import pytest

PROJECT = ["--project", "flytesnacks", "--domain", "development"]

pytestmark = pytest.mark.timeout(900)


def _result(proc) -> dict:  # type: ignore[no-untyped-def]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, (
        f"no result (exit {proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return json.loads(lines[-1])


def test_hello_through_the_cli_then_the_remote_api(reference) -> None:  # type: ignore[no-untyped-def]
    started = reference.cli(
        "run", *PROJECT, "--name", "hello-ref-cli", "workflows.py", "hello", "--who", "world"
    )
    assert started.returncode == 0, started.stdout + started.stderr
    out = _result(reference.python("workflows.py", reference.endpoint, "fetch", "hello-ref-cli"))
    assert out["out"] == "hello world"
    assert out["phase"].endswith("SUCCEEDED") and out["action"].endswith("SUCCEEDED"), out


def test_deploy_list_and_run_a_deployed_task(reference) -> None:  # type: ignore[no-untyped-def]
    deployed = reference.cli("deploy", *PROJECT, "--version", "ref-1", "workflows.py", "env")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    listed = reference.cli("get", "task", *PROJECT)
    assert "cases.hello" in listed.stdout and "ref-1" in listed.stdout, listed.stdout + listed.stderr
    started = reference.cli(
        "run",
        *PROJECT,
        "--name",
        "hello-deployed",
        "--run-project",
        "flytesnacks",
        "--run-domain",
        "development",
        "deployed-task",
        "cases.hello:ref-1",
        "--who",
        "deployed",
    )
    assert started.returncode == 0, started.stdout + started.stderr
    out = _result(reference.python("workflows.py", reference.endpoint, "fetch", "hello-deployed"))
    assert out["out"] == "hello deployed"

    # The trigger deployed with cases.greet_later, seen and switched off through the reference CLI.
    triggers = reference.cli("get", "trigger", *PROJECT)
    assert "nightly" in triggers.stdout and "0 3 * * *" in triggers.stdout, triggers.stdout + triggers.stderr
    off = reference.cli("update", "trigger", "nightly", "cases.greet_later", "--deactivate", *PROJECT)
    assert off.returncode == 0, off.stdout + off.stderr
    shown = reference.cli("get", "trigger", "cases.greet_later", "nightly", *PROJECT)
    assert 'task_version: "ref-1"' in shown.stdout, shown.stdout + shown.stderr
    assert "active: true" not in shown.stdout, shown.stdout


def test_secrets_through_the_reference_cli(reference) -> None:  # type: ignore[no-untyped-def]
    made = reference.cli("create", "secret", "ref-token", "--value", "very-secret")
    assert made.returncode == 0, made.stdout + made.stderr
    listed = reference.cli("get", "secret")
    assert "ref-token" in listed.stdout and "very-secret" not in listed.stdout, listed.stdout + listed.stderr
    deleted = reference.cli("delete", "secret", "ref-token")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "ref-token" not in reference.cli("get", "secret").stdout


def test_async_fan_out_of_fifty_children(reference) -> None:  # type: ignore[no-untyped-def]
    out = _result(reference.python("workflows.py", reference.endpoint, "fan"))
    assert out == {"out": sum(2 * i for i in range(50))}


def test_sync_chain(reference) -> None:  # type: ignore[no-untyped-def]
    assert _result(reference.python("workflows.py", reference.endpoint, "chain")) == {"out": 24}


def test_a_child_error_reaches_its_caller_with_type_and_message(reference) -> None:  # type: ignore[no-untyped-def]
    out = _result(reference.python("workflows.py", reference.endpoint, "catches"))
    kind, code, message = out["out"].split("|")
    assert kind == "RuntimeUserError"
    assert code == "ValueError"
    assert message == "bad input 7"


def test_failed_run_and_cli_views(reference) -> None:  # type: ignore[no-untyped-def]
    out = _result(reference.python("workflows.py", reference.endpoint, "boom"))
    assert out["phase"].endswith("FAILED")
    name = out["name"]

    run = reference.cli("get", "run", name, *PROJECT)
    assert name in run.stdout and "FAILED" in run.stdout, run.stdout + run.stderr

    listed = reference.cli("get", "run", *PROJECT)
    assert name in listed.stdout, listed.stdout + listed.stderr

    actions = reference.cli("get", "action", name, *PROJECT)
    assert "a0" in actions.stdout and "cases.boom" in actions.stdout, actions.stdout + actions.stderr

    action = reference.cli("get", "action", name, "a0", *PROJECT)
    assert "a0" in action.stdout and "FAILED" in action.stdout, action.stdout + action.stderr

    logs = reference.cli("get", "logs", name, *PROJECT)
    assert "ValueError" in logs.stdout and "bad input 7" in logs.stdout, logs.stdout + logs.stderr


def test_conditions_pause_the_run_until_signalled(reference) -> None:  # type: ignore[no-untyped-def]
    out = _result(reference.python("workflows.py", reference.endpoint, "condition"))
    assert out["out"] == "True 42", out
    assert "PAUSED" in out["waiting"] and out["type"] == "<class 'bool'>", out
    listed = reference.cli("get", "condition", out["name"], *PROJECT)
    assert "ok" in listed.stdout and "SUCCEEDED" in listed.stdout, listed.stdout + listed.stderr


def test_abort_run(reference) -> None:  # type: ignore[no-untyped-def]
    name = _result(reference.python("workflows.py", reference.endpoint, "sleeper"))["name"]
    aborted = reference.cli("abort", "run", name, *PROJECT)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    deadline = time.monotonic() + 60
    while True:
        run = reference.cli("get", "run", name, *PROJECT)
        if "ABORTED" in run.stdout:
            break
        assert time.monotonic() < deadline, run.stdout + run.stderr
        time.sleep(1)
