"""Schedules that start a task automatically once it is deployed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any, Union

# Deferred imports: what functions here import loads on first use, not with `import flyte` or
# when tasks are defined (the Rust extension, protobufs, storage and backend clients).

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_TRIGGER_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_ENV_VAR_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _TriggerTimeType:
    """Placeholder input value that the platform replaces with the time the trigger fired."""

    _instance: _TriggerTimeType | None = None

    def __new__(cls) -> _TriggerTimeType:
        # One shared sentinel, so identity checks survive copying and pickling.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self) -> tuple[type[_TriggerTimeType], tuple[()]]:
        return (_TriggerTimeType, ())

    def __repr__(self) -> str:
        return "flyte.TriggerTime"


TriggerTime = _TriggerTimeType()


def _cron_error(schedule: str, detail: str) -> ValueError:
    return ValueError(
        f"Cron({schedule!r}) is not a valid cron schedule: {detail}; e.g. Cron('0 9 * * MON-FRI')"
    )


def _resolve_timezone(name: str) -> tzinfo:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Cron(timezone={name!r}) is not a known IANA timezone; use e.g. 'UTC' or 'America/New_York'"
        ) from None


@dataclass(frozen=True, init=False)
class Cron:
    """A cron schedule, ``Cron("0 9 * * MON-FRI", timezone="America/New_York")``.

    Standard 5-field syntax with ``*``, lists, ranges, steps and month/day names. As in Vixie cron,
    when both day-of-month and day-of-week are restricted a day matching either one fires. The
    schedule is evaluated by the same code as the backend's trigger scheduler.
    """

    expression: str
    timezone: str | None = "UTC"

    def __init__(
        self, expression: str | None = None, timezone: str | None = "UTC", *, schedule: str | None = None
    ):
        # ``schedule=`` is this SDK's earlier name for the expression.
        if expression is None:
            expression = schedule
        elif schedule is not None and expression != schedule:
            raise TypeError(f"Cron got expression={expression!r} and schedule={schedule!r}; give one")
        if not isinstance(expression, str):
            raise TypeError(f"Cron({expression!r}) must be a string such as '0 * * * *'")
        text = expression.strip()
        if text.lower() in _MACROS:
            raise ValueError(
                f"Cron({expression!r}): shortcuts are not supported; use Cron({_MACROS[text.lower()]!r})"
            )
        if timezone is not None:
            if not isinstance(timezone, str):
                raise TypeError(f"Cron(timezone={timezone!r}) must be an IANA name such as 'UTC'")
            _resolve_timezone(timezone)
        from flyte._bridge.schedule import check_cron

        try:
            check_cron(text, timezone or "")
        except ValueError as e:
            raise _cron_error(expression, str(e)) from None
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "timezone", timezone)

    @property
    def schedule(self) -> str:
        """The cron expression (this SDK's earlier name for it)."""
        return self.expression

    @property
    def timezone_expression(self) -> str:
        """The expression with its zone, as cron implementations write it: ``CRON_TZ=<zone> <expr>``."""
        return f"CRON_TZ={self.timezone or 'UTC'} {self.expression}"

    def next_after(self, dt: datetime) -> datetime:
        """The first time strictly after ``dt`` at which the schedule fires.

        With a ``timezone`` other than UTC the schedule is read in that zone: an aware ``dt`` is converted
        to it, a naive ``dt`` is taken as wall time there, and the result is aware. In UTC (the default),
        a naive ``dt`` is read as UTC wall time (and the result is naive) and an aware ``dt`` on its own
        zone's clock. A wall
        time skipped by DST fires at the first valid time after the change; one repeated by DST fires
        once, at its first occurrence.
        """
        from flyte._bridge.schedule import cron_next_after

        if self.timezone and self.timezone != "UTC":
            zone_name, tz = self.timezone, _resolve_timezone(self.timezone)
            aware = dt.astimezone(tz) if dt.tzinfo is not None else dt.replace(tzinfo=tz)
        elif dt.tzinfo is None:
            zone_name, tz, aware = "UTC", None, dt.replace(tzinfo=timezone.utc)
        else:
            zone_name = getattr(dt.tzinfo, "key", None) or ("UTC" if dt.utcoffset() == timedelta(0) else "")
            if not zone_name:
                raise ValueError(
                    f"Cron({self.schedule!r}).next_after: {dt!r} has a fixed-offset timezone; give the Cron a "
                    "timezone, or pass a ZoneInfo or UTC datetime"
                )
            tz, aware = dt.tzinfo, dt
        ms = cron_next_after(self.schedule.strip(), zone_name, int(aware.timestamp() * 1000) // 1000 * 1000)
        fired = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        if tz is None:
            return fired.replace(tzinfo=None)
        return fired.astimezone(tz)

    def __str__(self) -> str:
        return f"{self.schedule} ({self.timezone})" if self.timezone else self.schedule


@dataclass(frozen=True)
class FixedRate:
    """Fire every ``interval_minutes`` minutes (an int, as in the reference SDK, or a timedelta
    of whole minutes, as in ``FixedRate(timedelta(minutes=30))``).

    ``start_time`` anchors the series: firings happen at ``start_time + k * interval``.
    """

    interval_minutes: int
    start_time: datetime | None = None

    def __post_init__(self) -> None:
        given = self.interval_minutes
        if isinstance(given, timedelta):
            if given <= timedelta(0):
                raise ValueError(f"FixedRate({given!r}) must be positive")
            if given % timedelta(minutes=1):
                minutes = max(1, round(given / timedelta(minutes=1)))
                raise ValueError(
                    f"FixedRate({given!r}) must be a whole number of minutes, "
                    f"e.g. FixedRate(timedelta(minutes={minutes}))"
                )
            object.__setattr__(self, "interval_minutes", given // timedelta(minutes=1))
        elif isinstance(given, bool) or not isinstance(given, int):
            raise TypeError(
                f"FixedRate({given!r}) must be a whole number of minutes (FixedRate(30)) or a timedelta "
                "(FixedRate(timedelta(minutes=30)))"
            )
        elif given <= 0:
            raise ValueError(f"FixedRate({given!r}) must be positive")
        if self.start_time is not None and not isinstance(self.start_time, datetime):
            raise TypeError(f"FixedRate(start_time={self.start_time!r}) must be a datetime")

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    def next_after(self, dt: datetime) -> datetime:
        """The first firing strictly after ``dt``.

        Without ``start_time`` the series is anchored at the previous firing, so this is ``dt + interval``.
        """
        if self.start_time is None:
            return dt + self.interval
        if (self.start_time.tzinfo is None) != (dt.tzinfo is None):
            raise TypeError(
                f"FixedRate.next_after({dt!r}): cannot compare with start_time={self.start_time!r}; "
                "both must be naive or both timezone-aware"
            )
        if dt < self.start_time:
            return self.start_time
        elapsed = (dt - self.start_time) // self.interval + 1
        return self.start_time + elapsed * self.interval

    def __str__(self) -> str:
        return f"every {self.interval}"


Automation = Union[Cron, FixedRate]


def _freeze_inputs(name: str, inputs: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if inputs is None:
        return None
    if not isinstance(inputs, Mapping):
        raise TypeError(f"Trigger({name!r}, inputs={inputs!r}) must be a dict of task input name -> value")
    for key in inputs:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"Trigger({name!r}, inputs=...): {key!r} is not a task input name")
    return MappingProxyType(dict(inputs))


def _freeze_env_vars(name: str, env_vars: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if env_vars is None:
        return None
    if not isinstance(env_vars, Mapping):
        raise TypeError(f"Trigger({name!r}, env_vars={env_vars!r}) must be a dict of str -> str")
    for key, value in env_vars.items():
        if not isinstance(key, str) or not re.fullmatch(_ENV_VAR_RE, key):
            raise ValueError(
                f"Trigger({name!r}, env_vars=...): {key!r} is not a valid environment variable name"
            )
        if not isinstance(value, str):
            raise TypeError(
                f"Trigger({name!r}, env_vars=...): the value of {key!r} must be a string, got {value!r}; "
                f"use {str(value)!r}"
            )
    return MappingProxyType(dict(env_vars))


def _freeze_strings(name: str, field_name: str, value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(f"Trigger({name!r}, {field_name}=...) must be a dict of str -> str")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Trigger:
    """Runs the task it is attached to on a schedule once deployed.

    ``inputs`` are the values the task is started with; an input set to :data:`TriggerTime` receives
    the time the trigger fired.
    """

    name: str
    automation: Automation | None = None
    description: str = ""
    auto_activate: bool = True
    inputs: Mapping[str, Any] | None = None
    env_vars: Mapping[str, str] | None = None
    #: Run settings of the runs it starts (None / False: the task's own).
    interruptible: bool | None = None
    overwrite_cache: bool = False
    queue: str | None = None
    max_action_concurrency: int | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    notifications: Any = None
    custom_context: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(_TRIGGER_NAME_RE, self.name):
            raise ValueError(
                f"Trigger(name={self.name!r}) is not a valid trigger name; use letters, digits, '-' and '_', "
                "starting with a letter or digit, e.g. 'nightly_report'"
            )
        if self.automation is None:
            raise ValueError(
                f"Trigger({self.name!r}) has no automation: a trigger without one is fired on demand, which "
                "this SDK's backend does not offer; give automation=flyte.Cron(...) or flyte.FixedRate(...)"
            )
        if not isinstance(self.automation, (Cron, FixedRate)):
            hint = (
                f"automation=flyte.Cron({self.automation!r})"
                if isinstance(self.automation, str)
                else ("automation=flyte.FixedRate(timedelta(minutes=30))")
            )
            raise TypeError(
                f"Trigger({self.name!r}, automation={self.automation!r}) must be a Cron or FixedRate; use {hint}"
            )
        if not isinstance(self.auto_activate, bool):
            raise TypeError(
                f"Trigger({self.name!r}, auto_activate={self.auto_activate!r}) must be True or False"
            )
        if not isinstance(self.description, str):
            raise TypeError(f"Trigger({self.name!r}, description={self.description!r}) must be a string")
        object.__setattr__(self, "inputs", _freeze_inputs(self.name, self.inputs))
        object.__setattr__(self, "env_vars", _freeze_env_vars(self.name, self.env_vars))
        if self.max_action_concurrency is not None:
            raise ValueError(
                f"Trigger({self.name!r}, max_action_concurrency=...) is not supported here: "
                "the backend does not limit the actions of one run"
            )
        if self.notifications is not None:
            from flyte.notify._serde import checked_rules

            try:
                checked_rules(self.notifications)
            except (TypeError, ValueError) as e:
                raise type(e)(f"Trigger({self.name!r}): {e}") from None
        if self.interruptible is not None and not isinstance(self.interruptible, bool):
            raise TypeError(
                f"Trigger({self.name!r}, interruptible={self.interruptible!r}) must be True, False or None"
            )
        if self.queue is not None and (not isinstance(self.queue, str) or not self.queue.strip()):
            raise ValueError(f"Trigger({self.name!r}, queue={self.queue!r}) must be a non-empty name")
        for field_name in ("labels", "annotations", "custom_context"):
            object.__setattr__(
                self, field_name, _freeze_strings(self.name, field_name, getattr(self, field_name))
            )

    # Inputs and env vars may hold unhashable values; name and schedule identify a trigger well enough
    # and stay consistent with equality.
    def __hash__(self) -> int:
        return hash((self.name, self.automation))

    @property
    def trigger_time_input(self) -> str | None:
        """The input that receives the firing time, if any."""
        if self.inputs is None:
            return None
        return next((k for k, v in self.inputs.items() if v is TriggerTime), None)

    @classmethod
    def _every(cls, schedule: str, trigger_time_input_key: str | None, given: dict[str, Any]) -> Trigger:
        """A cron trigger; the firing time goes to ``trigger_time_input_key`` when the task takes it."""
        merged: dict[str, Any] = {}
        if trigger_time_input_key is not None:
            if not isinstance(trigger_time_input_key, str) or not trigger_time_input_key.isidentifier():
                raise ValueError(
                    f"trigger_time_input_key={trigger_time_input_key!r} must be the name of a task input, "
                    "e.g. 'trigger_time'"
                )
            merged[trigger_time_input_key] = TriggerTime
        merged.update(given.get("inputs") or {})
        settings = {k: v for k, v in given.items() if k not in ("cls", "trigger_time_input_key", "inputs")}
        return cls(automation=Cron(schedule), inputs=merged, **settings)

    @classmethod
    def minutely(
        cls,
        trigger_time_input_key: str | None = "trigger_time",
        *,
        name: str = "minutely",
        description: str = "A trigger that runs every minute",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
        interruptible: bool | None = None,
        overwrite_cache: bool = False,
        queue: str | None = None,
        max_action_concurrency: int | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        custom_context: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every("* * * * *", trigger_time_input_key, locals())

    @classmethod
    def hourly(
        cls,
        trigger_time_input_key: str | None = "trigger_time",
        *,
        name: str = "hourly",
        description: str = "A trigger that runs every hour",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
        interruptible: bool | None = None,
        overwrite_cache: bool = False,
        queue: str | None = None,
        max_action_concurrency: int | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        custom_context: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every("0 * * * *", trigger_time_input_key, locals())

    @classmethod
    def daily(
        cls,
        trigger_time_input_key: str | None = "trigger_time",
        *,
        name: str = "daily",
        description: str = "A trigger that runs daily at midnight",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
        interruptible: bool | None = None,
        overwrite_cache: bool = False,
        queue: str | None = None,
        max_action_concurrency: int | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        custom_context: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every("0 0 * * *", trigger_time_input_key, locals())

    @classmethod
    def weekly(
        cls,
        trigger_time_input_key: str | None = "trigger_time",
        *,
        name: str = "weekly",
        description: str = "A trigger that runs weekly on Sundays at midnight",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
        interruptible: bool | None = None,
        overwrite_cache: bool = False,
        queue: str | None = None,
        max_action_concurrency: int | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        custom_context: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every("0 0 * * 0", trigger_time_input_key, locals())

    @classmethod
    def monthly(
        cls,
        trigger_time_input_key: str | None = "trigger_time",
        *,
        name: str = "monthly",
        description: str = "A trigger that runs monthly on the 1st at midnight",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
        interruptible: bool | None = None,
        overwrite_cache: bool = False,
        queue: str | None = None,
        max_action_concurrency: int | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        custom_context: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every("0 0 1 * *", trigger_time_input_key, locals())


__all__ = ["Automation", "Cron", "FixedRate", "Trigger", "TriggerTime"]
