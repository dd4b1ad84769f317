"""Notifications, delivered by the code the embedded backend uses: those of finished runs, and
the webhooks of conditions."""

from flyte._core import check_notification_rules, deliver_notifications, fire_condition_webhook

__all__ = ["check_notification_rules", "deliver_notifications", "fire_condition_webhook"]
