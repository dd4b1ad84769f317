"""Cron schedules, by the rule the backend's trigger scheduler fires them."""

from flyte._core import check_cron, cron_next_after

__all__ = ["check_cron", "cron_next_after"]
