"""Notifications as a run's spec carries them (``RunSpec.notification_rules``), which the
backend (or, for a local run, the same code in this process) delivers when the run ends."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flyte._bridge.notify import check_notification_rules, deliver_notifications
from flyte.models import ActionPhase
from flyte.notify._notifiers import Email, NamedDelivery, NamedRule, Notification, Slack, Teams, Webhook

NotificationsRequest = NamedRule | Notification | Iterable[Notification]


def _listed(notifications: Any) -> tuple[Notification, ...]:
    items = (notifications,) if isinstance(notifications, Notification) else tuple(notifications)
    for item in items:
        if not isinstance(item, Notification):
            raise TypeError(
                f"notifications must be flyte.notify objects (Email, Slack, Teams, Webhook, NamedDelivery) "
                f"or one NamedRule, got {type(item).__name__}"
            )
    return items


def _webhook(rule: Any, url: str, method: str, headers: dict[str, str], body: Any) -> None:
    from flyteidl2.notification import definition_pb2

    hook = rule.delivery_template.webhook
    hook.url = url
    hook.method = definition_pb2.HttpMethod.Value(f"HTTP_METHOD_{method}")
    for key, value in headers.items():
        hook.headers[key] = value
    hook.body_template = json.dumps(body)


def apply(run_spec: Any, notifications: NotificationsRequest) -> None:
    """Sets ``run_spec``'s notification settings from what ``with_runcontext`` or a Trigger got."""
    if isinstance(notifications, NamedRule):
        run_spec.notification_rule_name = notifications.name
        return
    body: dict[str, Any]
    for n in _listed(notifications):
        rule = run_spec.notification_rules.rules.add()
        phases: tuple[ActionPhase, ...] = n.on_phase  # type: ignore[assignment]  # a tuple once made
        rule.on_phases.extend(p.to_protobuf_value() for p in phases)
        if isinstance(n, NamedDelivery):
            rule.delivery_config_name = n.name
        elif isinstance(n, Email):
            email = rule.delivery_template.email
            for field, addresses in (("to", n.recipients), ("cc", n.cc), ("bcc", n.bcc)):
                for address in addresses:
                    getattr(email, field).add(address=address)
            email.inline.subject = n.subject
            email.inline.text_template = n.body
            email.inline.html_template = n.html_body or ""
        elif isinstance(n, Slack):
            body = {"blocks": list(n.blocks)} if n.blocks is not None else {"text": n.message}
            _webhook(rule, n.webhook_url, "POST", {"Content-Type": "application/json"}, body)
        elif isinstance(n, Teams):
            if n.card is not None:
                body = {
                    "type": "message",
                    "attachments": [
                        {"contentType": "application/vnd.microsoft.card.adaptive", "content": n.card}
                    ],
                }
            else:
                body = {
                    "@type": "MessageCard",
                    "@context": "https://schema.org/extensions",
                    "title": n.title,
                    "text": n.message,
                }
            _webhook(rule, n.webhook_url, "POST", {"Content-Type": "application/json"}, body)
        elif isinstance(n, Webhook):
            headers = {"Content-Type": "application/json", **(n.headers or {})}
            _webhook(rule, n.url, n.method, headers, n.body)
        else:
            raise TypeError(f"{type(n).__name__} is not a notification this SDK can send")


def rules_bytes(run_spec: Any) -> bytes | None:
    """The inline rules of ``run_spec`` as the Rust core reads them (None when there are none)."""
    if run_spec.WhichOneof("notification_settings") != "notification_rules":
        return None
    return bytes(run_spec.notification_rules.SerializeToString())


def checked_rules(notifications: NotificationsRequest) -> Any:
    """A ``task.RunSpec`` holding only these notifications, checked now (not when the run
    ends). Named rules and delivery configs are a cluster's; a local run refuses them."""
    from flyteidl2.task import run_pb2

    spec = run_pb2.RunSpec()
    apply(spec, notifications)
    rules = rules_bytes(spec)
    if rules is not None:
        check_notification_rules(rules, True)
    return spec


def check_local(spec: Any) -> None:
    """Refuses what only a cluster can deliver, before a local run starts."""
    if spec.WhichOneof("notification_settings") == "notification_rule_name":
        raise ValueError(
            f"a local run cannot use NamedRule({spec.notification_rule_name!r}): named rules are defined "
            "on a cluster; give the notifications inline (Email, Slack, Teams, Webhook)"
        )
    rules = rules_bytes(spec)
    if rules is not None:
        try:
            check_notification_rules(rules, False)
        except ValueError as e:
            raise ValueError(f"a local run cannot deliver this notification: {e}") from None


def deliver_local(spec: Any, where: Any, run_name: str, phase: str, error: str) -> None:
    """Delivers a finished local run's notifications (a named rule needs a cluster: it was
    refused when the run was set up, so only inline rules reach here)."""
    import logging

    rules = rules_bytes(spec)
    if rules is None:
        return
    failures = deliver_notifications(
        rules, where.org or "", where.project or "", where.domain or "", run_name, phase.lower(), error
    )
    for failure in failures:
        logging.getLogger("flyte").warning("notification of run %s not delivered: %s", run_name, failure)
