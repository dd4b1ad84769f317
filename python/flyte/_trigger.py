"""Schedules that start a task automatically once it is deployed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any, Union

_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTH_NAMES = {n: i + 1 for i, n in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAY_NAMES = {n: i for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, _MONTH_NAMES, _DAY_NAMES)
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# The Gregorian calendar repeats every 400 years (146097 days), so a schedule that has not fired
# within one cycle never will.
_SEARCH_DAYS = 146097
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


def _parse_value(schedule: str, index: int, text: str) -> int:
    names = _NAMES[index]
    low, high = _FIELD_BOUNDS[index]
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdecimal():
        known = f" (names: {', '.join(names)})" if names else ""
        raise _cron_error(schedule, f"{_FIELD_NAMES[index]} value {text!r} is not a number{known}")
    value = int(text)
    if not low <= value <= high:
        raise _cron_error(schedule, f"{_FIELD_NAMES[index]} value {value} is out of range {low}-{high}")
    return value


def _parse_field(schedule: str, index: int, text: str) -> frozenset[int]:
    low, high = _FIELD_BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise _cron_error(schedule, f"empty list item in {_FIELD_NAMES[index]} field {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdecimal() or int(step_text) == 0:
                raise _cron_error(schedule, f"step {step_text!r} in {part!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _parse_value(schedule, index, first)
            end = _parse_value(schedule, index, last)
            if start > end:
                raise _cron_error(schedule, f"range {base!r} in {_FIELD_NAMES[index]} runs backwards")
        else:
            start = _parse_value(schedule, index, base)
            # "5/15" means every 15 starting at 5, as in Vixie cron.
            end = high if slash else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _resolve_timezone(name: str) -> tzinfo:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Cron(timezone={name!r}) is not a known IANA timezone; use e.g. 'UTC' or 'America/New_York'"
        ) from None


def _exists(wall: datetime, tz: tzinfo) -> bool:
    """False for wall times skipped by a DST jump, which round-trip through UTC to a different time."""
    aware = wall.replace(tzinfo=tz)
    return aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) == wall


@dataclass(frozen=True)
class Cron:
    """A cron schedule, ``Cron("0 9 * * MON-FRI", timezone="America/New_York")``.

    Standard 5-field syntax with ``*``, lists, ranges, steps and month/day names. As in Vixie cron,
    when both day-of-month and day-of-week are restricted a day matching either one fires.
    """

    schedule: str
    timezone: str | None = None
    _fields: tuple[frozenset[int], ...] = field(init=False, repr=False, compare=False)
    _dom_or_dow: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, str):
            raise TypeError(f"Cron(schedule={self.schedule!r}) must be a string such as '0 * * * *'")
        text = self.schedule.strip()
        if text.lower() in _MACROS:
            raise ValueError(
                f"Cron({self.schedule!r}): shortcuts are not supported; use Cron({_MACROS[text.lower()]!r})"
            )
        parts = text.split()
        if len(parts) != 5:
            extra = " (a seconds or year field is not supported)" if len(parts) == 6 else ""
            raise _cron_error(
                self.schedule,
                f"expected 5 fields 'minute hour day-of-month month day-of-week', found {len(parts)}{extra}",
            )
        parsed = tuple(_parse_field(self.schedule, i, p) for i, p in enumerate(parts))
        object.__setattr__(self, "_fields", parsed)
        dom_star, dow_star = parts[2].startswith("*"), parts[4].startswith("*")
        object.__setattr__(self, "_dom_or_dow", not dom_star and not dow_star)
        if not self._dom_or_dow and not any(d <= _DAYS_IN_MONTH[m - 1] for m in parsed[3] for d in parsed[2]):
            raise _cron_error(
                self.schedule, "no month in the schedule has that day of the month, so it never fires"
            )
        if self.timezone is not None:
            if not isinstance(self.timezone, str):
                raise TypeError(f"Cron(timezone={self.timezone!r}) must be an IANA name such as 'UTC'")
            _resolve_timezone(self.timezone)

    def _day_matches(self, day: date) -> bool:
        _, _, doms, months, dows = self._fields
        if day.month not in months:
            return False
        dom_hit = day.day in doms
        dow_hit = (day.isoweekday() % 7) in dows
        return (dom_hit or dow_hit) if self._dom_or_dow else (dom_hit and dow_hit)

    def next_after(self, dt: datetime) -> datetime:
        """The first time strictly after ``dt`` at which the schedule fires.

        With a ``timezone`` the schedule is read in that zone: an aware ``dt`` is converted to it, a naive
        ``dt`` is taken as wall time there, and the result is aware. Without one the schedule is read on
        ``dt``'s own clock and the result has ``dt``'s tzinfo. Wall times skipped by DST never fire; wall
        times repeated by DST fire once, at their first occurrence.
        """
        tz = _resolve_timezone(self.timezone) if self.timezone else dt.tzinfo
        if self.timezone and dt.tzinfo is not None:
            dt = dt.astimezone(tz)
        elif self.timezone:
            dt = dt.replace(tzinfo=tz)
        minutes, hours = sorted(self._fields[0]), sorted(self._fields[1])
        start = dt.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        after = dt.astimezone(timezone.utc) if tz is not None else None
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for h in hours:
                    if day == start.date() and h < start.hour:
                        continue
                    for m in minutes:
                        wall = datetime.combine(day, time(h, m))
                        if wall < start:
                            continue
                        if tz is None or after is None:
                            return wall
                        if not _exists(wall, tz):
                            continue
                        candidate = wall.replace(tzinfo=tz)
                        # Same-tzinfo comparisons ignore fold, so compare in UTC to get DST repeats right.
                        if candidate.astimezone(timezone.utc) > after:
                            return candidate
            day += timedelta(days=1)
        raise ValueError(f"Cron({self.schedule!r}) does not fire within {_SEARCH_DAYS} days after {dt}")

    def __str__(self) -> str:
        return f"{self.schedule} ({self.timezone})" if self.timezone else self.schedule


@dataclass(frozen=True)
class FixedRate:
    """Fire every ``interval``, e.g. ``FixedRate(timedelta(minutes=30))``.

    ``start_time`` anchors the series: firings happen at ``start_time + k * interval``.
    """

    interval: timedelta
    start_time: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.interval, timedelta):
            raise TypeError(
                f"FixedRate(interval={self.interval!r}) must be a timedelta, e.g. FixedRate(timedelta(minutes=30))"
            )
        if self.interval <= timedelta(0):
            raise ValueError(f"FixedRate(interval={self.interval!r}) must be positive")
        if self.interval % timedelta(minutes=1):
            minutes = max(1, round(self.interval / timedelta(minutes=1)))
            raise ValueError(
                f"FixedRate(interval={self.interval!r}) must be a whole number of minutes, "
                f"e.g. FixedRate(timedelta(minutes={minutes}))"
            )
        if self.start_time is not None and not isinstance(self.start_time, datetime):
            raise TypeError(f"FixedRate(start_time={self.start_time!r}) must be a datetime")

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


@dataclass(frozen=True)
class Trigger:
    """Runs the task it is attached to on a schedule once deployed.

    ``inputs`` are the values the task is started with; an input set to :data:`TriggerTime` receives
    the time the trigger fired.
    """

    name: str
    automation: Automation
    inputs: Mapping[str, Any] | None = None
    auto_activate: bool = True
    description: str = ""
    env_vars: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(_TRIGGER_NAME_RE, self.name):
            raise ValueError(
                f"Trigger(name={self.name!r}) is not a valid trigger name; use letters, digits, '-' and '_', "
                "starting with a letter or digit, e.g. 'nightly_report'"
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
    def _every(
        cls,
        schedule: str,
        trigger_time_input_key: str,
        name: str,
        description: str,
        auto_activate: bool,
        inputs: Mapping[str, Any] | None,
        env_vars: Mapping[str, str] | None,
    ) -> Trigger:
        if not isinstance(trigger_time_input_key, str) or not trigger_time_input_key.isidentifier():
            raise ValueError(
                f"trigger_time_input_key={trigger_time_input_key!r} must be the name of a task input, "
                "e.g. 'trigger_time'"
            )
        merged: dict[str, Any] = {trigger_time_input_key: TriggerTime}
        if inputs:
            merged.update(inputs)
        return cls(
            name=name,
            automation=Cron(schedule),
            inputs=merged,
            auto_activate=auto_activate,
            description=description,
            env_vars=env_vars,
        )

    @classmethod
    def minutely(
        cls,
        trigger_time_input_key: str = "trigger_time",
        *,
        name: str = "minutely",
        description: str = "Runs every minute",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every(
            "* * * * *", trigger_time_input_key, name, description, auto_activate, inputs, env_vars
        )

    @classmethod
    def hourly(
        cls,
        trigger_time_input_key: str = "trigger_time",
        *,
        name: str = "hourly",
        description: str = "Runs at the start of every hour",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every(
            "0 * * * *", trigger_time_input_key, name, description, auto_activate, inputs, env_vars
        )

    @classmethod
    def daily(
        cls,
        trigger_time_input_key: str = "trigger_time",
        *,
        name: str = "daily",
        description: str = "Runs every day at midnight",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every(
            "0 0 * * *", trigger_time_input_key, name, description, auto_activate, inputs, env_vars
        )

    @classmethod
    def weekly(
        cls,
        trigger_time_input_key: str = "trigger_time",
        *,
        name: str = "weekly",
        description: str = "Runs every Sunday at midnight",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every(
            "0 0 * * 0", trigger_time_input_key, name, description, auto_activate, inputs, env_vars
        )

    @classmethod
    def monthly(
        cls,
        trigger_time_input_key: str = "trigger_time",
        *,
        name: str = "monthly",
        description: str = "Runs on the first of every month at midnight",
        auto_activate: bool = True,
        inputs: Mapping[str, Any] | None = None,
        env_vars: Mapping[str, str] | None = None,
    ) -> Trigger:
        return cls._every(
            "0 0 1 * *", trigger_time_input_key, name, description, auto_activate, inputs, env_vars
        )


__all__ = ["Automation", "Cron", "FixedRate", "Trigger", "TriggerTime"]
