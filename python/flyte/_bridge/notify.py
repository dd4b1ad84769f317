"""Notifications of finished runs, delivered by the code the embedded backend uses."""

from flyte._core import check_notification_rules, deliver_notifications

__all__ = ["check_notification_rules", "deliver_notifications"]
