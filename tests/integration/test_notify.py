"""Notifications when a run ends (``flyte.notify``), in both modes: webhooks (Slack, Teams and
plain) to an HTTP server on loopback, e-mail through a real SMTP server (aiosmtpd) on
loopback; templates name the finished run; what cannot be delivered is refused up front."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hooks import Hooks

import flyte
import flyte.errors
from flyte.models import ActionPhase
from flyte.notify import Email, NamedDelivery, NamedRule, Slack, Teams, Webhook

env = flyte.TaskEnvironment(name="notify_wf")


@env.task
async def works(x: int) -> int:
    return x + 1


@env.task
async def breaks(x: int) -> int:
    raise ValueError(f'cannot "handle" {x}\n  <second line>')


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            import email

            messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port: aiosmtpd checks it can connect to the one it gets
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("FLYTE_SMTP_SERVER", f"127.0.0.1:{port}")
    monkeypatch.setenv("FLYTE_SMTP_FROM", "flyte@example.com")
    try:
        yield messages
    finally:
        controller.stop()


def _wait(messages: list[Any], n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(messages) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(messages) >= n, f"{len(messages)} e-mails arrived, expected {n}"


def test_a_run_that_succeeds_notifies_the_rules_for_success(
    mode: str, hooks: Hooks, mailbox: list[Any]
) -> None:
    notifications = (
        Webhook(
            on_phase=ActionPhase.SUCCEEDED,
            url=f"{hooks.url}/done/{{{{.Run.Name}}}}",
            method="PUT",
            headers={"X-Project": "{{.Run.Project}}"},
            body={"run": "{{.Run.Name}}", "phase": "{{.Phase}}", "nested": {"domain": "{{.Run.Domain}}"}},
        ),
        Slack(on_phase=ActionPhase.FAILED, webhook_url=f"{hooks.url}/slack"),
        Email(
            on_phase=(ActionPhase.SUCCEEDED, ActionPhase.FAILED),
            recipients=["ops@example.com"],
            cc=["lead@example.com"],
            subject="{{.Run.Name}} {{.Phase}}",
            html_body="<b>{{.Phase}}</b>",
        ),
    )
    run = flyte.with_runcontext(mode=mode, notifications=notifications).run(works, 1).wait()
    assert run.outputs()[0] == 2
    hook = hooks.wait_for(f"/done/{run.name}")
    assert hook["method"] == "PUT" and hook["headers"]["x-project"] == "flytesnacks"
    assert json.loads(hook["body"]) == {
        "run": run.name,
        "phase": "succeeded",
        "nested": {"domain": "development"},
    }
    _wait(mailbox, 1)
    recipients, message = mailbox[0]
    assert sorted(recipients) == ["lead@example.com", "ops@example.com"]
    assert message["Subject"] == f"{run.name} succeeded" and message["From"] == "flyte@example.com"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in message.walk()
        if not p.is_multipart()
    }
    assert parts["text/html"] == "<b>succeeded</b>" and f"Run: {run.name}" in parts["text/plain"]
    time.sleep(0.3)
    assert not any(r["path"] == "/slack" for r in hooks.requests)  # not a failure


def test_a_failed_run_notifies_with_its_error(mode: str, hooks: Hooks) -> None:
    notifications = [
        Slack(
            on_phase=ActionPhase.FAILED, webhook_url=f"{hooks.url}/slack", message="{{.Run.Name}}: {{.Error}}"
        ),
        Teams(on_phase=ActionPhase.FAILED, webhook_url=f"{hooks.url}/teams"),
        Webhook(on_phase=ActionPhase.FAILED, url=f"{hooks.url}/broken"),  # answers 500: the others still go
        Webhook(on_phase=ActionPhase.SUCCEEDED, url=f"{hooks.url}/success"),
    ]
    rc = flyte.with_runcontext(mode=mode, notifications=notifications)
    if mode == "local":
        with pytest.raises(ValueError, match='cannot "handle" 7'):
            rc.run(breaks, 7)
        name = None
    else:
        run = rc.run(breaks, 7).wait()
        assert run.phase == ActionPhase.FAILED
        name = run.name
    slack = json.loads(hooks.wait_for("/slack")["body"])
    run_name, _, error = slack["text"].partition(": ")
    # The error (quotes, a line break, angle brackets) arrives intact inside valid JSON.
    assert 'cannot "handle" 7\n  <second line>' in error and (name is None or run_name == name)
    teams = json.loads(hooks.wait_for("/teams")["body"])
    assert (
        teams["@type"] == "MessageCard"
        and teams["title"].endswith(" failed")
        and 'cannot "handle" 7' in teams["text"]
    )
    hooks.wait_for("/broken")
    assert not any(r["path"] == "/success" for r in hooks.requests)


def test_what_cannot_be_delivered_is_refused_before_the_run(backend_endpoint: str) -> None:
    with pytest.raises(ValueError, match="not http"):
        flyte.with_runcontext(notifications=Webhook(on_phase=ActionPhase.FAILED, url="ftp://example.com/x"))
    with pytest.raises(ValueError, match="running cannot be sent"):
        Webhook(on_phase=ActionPhase.RUNNING, url="http://x/")
    with pytest.raises(ValueError, match="recipients must be e-mail addresses"):
        Email(on_phase=ActionPhase.FAILED, recipients=["not-an-address"])
    with pytest.raises(TypeError, match="must be flyte.notify objects"):
        flyte.with_runcontext(notifications=["oncall@example.com"])
    # Named rules and delivery configs are a cluster's: a local run and the embedded backend have none.
    local = flyte.with_runcontext(mode="local", notifications=NamedRule("oncall"))
    with pytest.raises(ValueError, match="cannot use NamedRule"):
        local.run(works, 1)
    named = NamedDelivery(on_phase=ActionPhase.FAILED, name="slack-oncall")
    with pytest.raises(ValueError, match="no named delivery configs"):
        flyte.with_runcontext(mode="local", notifications=named).run(works, 1)
    flyte.init(endpoint=backend_endpoint, insecure=True)
    with pytest.raises(flyte.errors.BaseRuntimeError, match="no named notification rules"):
        flyte.with_runcontext(mode="remote", notifications=NamedRule("oncall")).run(works, 1)


def test_a_trigger_s_runs_carry_its_notifications() -> None:
    import dataclasses

    from flyte._internal._triggers import task_trigger

    trigger = dataclasses.replace(
        flyte.Trigger.hourly(), notifications=Webhook(on_phase=ActionPhase.FAILED, url="http://127.0.0.1:9/x")
    )
    spec = task_trigger(works, trigger).spec.run_spec
    rule = spec.notification_rules.rules[0]
    assert list(rule.on_phases) == [ActionPhase.FAILED.to_protobuf_value()]
    assert rule.delivery_template.webhook.url == "http://127.0.0.1:9/x"
    with pytest.raises(ValueError, match="Trigger\\('hourly'\\).*not http"):
        flyte.Trigger(
            "hourly",
            flyte.Cron("0 * * * *"),
            notifications=Webhook(on_phase=ActionPhase.FAILED, url="mailto:x"),
        )
