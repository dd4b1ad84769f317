"""Notifications when a run ends: ``with_runcontext(notifications=...)`` or
``Trigger(notifications=...)`` with ``Email``, ``Slack``, ``Teams`` or ``Webhook`` objects
(each for the phases in its ``on_phase``). The embedded backend (and this process, for a
local run) delivers webhooks itself and e-mail through the SMTP server in
``$FLYTE_SMTP_SERVER``; ``NamedRule``/``NamedDelivery`` name what a cluster's administrators
configured."""

from flyte.notify._notifiers import Email, NamedDelivery, NamedRule, Notification, Slack, Teams, Webhook

__all__ = ["Email", "NamedDelivery", "NamedRule", "Notification", "Slack", "Teams", "Webhook"]
