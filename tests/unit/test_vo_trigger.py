"""Trigger, Cron and FixedRate: the seed's forms, validation, and next-firing computation."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from flyte._trigger import Cron, FixedRate, Trigger, TriggerTime

NY = ZoneInfo("America/New_York")

# ---- seed snippets --------------------------------------------------------------------------------


def test_seed_triggers() -> None:
    hourly = Trigger.hourly()
    assert hourly.name == "hourly" and hourly.automation == Cron("0 * * * *")
    assert dict(hourly.inputs or {}) == {"trigger_time": TriggerTime}
    assert hourly.trigger_time_input == "trigger_time" and hourly.auto_activate

    custom_time = Trigger.hourly("my_time")
    assert dict(custom_time.inputs or {}) == {"my_time": TriggerTime}

    assert Trigger.minutely().automation == Cron("* * * * *")

    cron_trigger = Trigger(
        name="custom_cron",
        automation=Cron("0 * * * *"),  # Every hour
        inputs={"x": 10},
        auto_activate=True,
    )
    assert cron_trigger.inputs == {"x": 10} and cron_trigger.trigger_time_input is None

    rate_trigger = Trigger(
        name="frequent",
        automation=FixedRate(timedelta(minutes=30)),
        inputs={"x": 5},
        auto_activate=True,
    )
    assert rate_trigger.automation == FixedRate(timedelta(minutes=30))

    my_trigger = Trigger(
        name="my_trigger",  # Required: trigger name
        automation=Cron("0 * * * *"),  # Cron or FixedRate
        inputs={"x": 10},  # Default inputs
        auto_activate=True,  # Activate on deploy
    )
    assert my_trigger.description == "" and my_trigger.env_vars is None

    weekdays = Cron(
        schedule="0 9 * * 1-5",  # 9 AM weekdays
        timezone="America/New_York",  # Optional timezone
    )
    assert weekdays.timezone == "America/New_York"
    assert FixedRate(timedelta(hours=1)).interval == timedelta(hours=1)


def test_convenience_constructors() -> None:
    daily = Trigger.daily(name="nightly", inputs={"x": 1}, env_vars={"MODE": "batch"}, auto_activate=False)
    assert daily.name == "nightly" and daily.automation == Cron("0 0 * * *")
    assert daily.inputs == {"trigger_time": TriggerTime, "x": 1}
    assert daily.env_vars == {"MODE": "batch"} and not daily.auto_activate
    assert Trigger.weekly().automation == Cron("0 0 * * 0")
    assert Trigger.monthly().automation == Cron("0 0 1 * *")
    with pytest.raises(ValueError, match="trigger_time_input_key='my time' must be the name of a task input"):
        Trigger.hourly("my time")


# ---- Trigger validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "has space", "-leading", "dots.not.ok", "émoji", "a/b"])
def test_bad_trigger_names(bad: str) -> None:
    with pytest.raises(ValueError, match=r"is not a valid trigger name; use letters, digits, '-' and '_'"):
        Trigger(name=bad, automation=Cron("* * * * *"))


@pytest.mark.parametrize("good", ["a", "nightly_report", "run-2", "0hour"])
def test_good_trigger_names(good: str) -> None:
    assert Trigger(name=good, automation=Cron("* * * * *")).name == good


def test_trigger_validation() -> None:
    with pytest.raises(
        TypeError, match=r"must be a Cron or FixedRate; use automation=flyte.Cron\('0 \* \* \* \*'\)"
    ):
        Trigger(name="t", automation="0 * * * *")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"automation=flyte.FixedRate\(timedelta\(minutes=30\)\)"):
        Trigger(name="t", automation=timedelta(minutes=30))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="auto_activate='yes'"):
        Trigger(name="t", automation=Cron("* * * * *"), auto_activate="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="description=None"):
        Trigger(name="t", automation=Cron("* * * * *"), description=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'not valid' is not a task input name"):
        Trigger(name="t", automation=Cron("* * * * *"), inputs={"not valid": 1})
    with pytest.raises(TypeError, match="must be a dict of task input name"):
        Trigger(name="t", automation=Cron("* * * * *"), inputs=[("x", 1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'1X' is not a valid environment variable name"):
        Trigger(name="t", automation=Cron("* * * * *"), env_vars={"1X": "a"})
    with pytest.raises(TypeError, match="the value of 'N' must be a string, got 3; use '3'"):
        Trigger(name="t", automation=Cron("* * * * *"), env_vars={"N": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must be a dict of str -> str"):
        Trigger(name="t", automation=Cron("* * * * *"), env_vars="A=1")  # type: ignore[arg-type]


def test_trigger_is_immutable_and_hashable() -> None:
    source = {"x": [1, 2]}
    t = Trigger(name="t", automation=Cron("* * * * *"), inputs=source)
    source["y"] = [3]
    assert dict(t.inputs or {}) == {"x": [1, 2]}  # a copy was taken
    with pytest.raises(TypeError):
        t.inputs["z"] = 1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "u"  # type: ignore[misc]
    same = Trigger(name="t", automation=Cron("* * * * *"), inputs={"x": [1, 2]})
    assert t == same and hash(t) == hash(same)  # hashable even with list-valued inputs
    assert t != Trigger(name="t", automation=Cron("* * * * *"), inputs={"x": [1]})


def test_trigger_time_is_a_singleton() -> None:
    assert pickle.loads(pickle.dumps(TriggerTime)) is TriggerTime
    assert type(TriggerTime)() is TriggerTime
    assert repr(TriggerTime) == "flyte.TriggerTime"


# ---- Cron validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "0 9 * * MON-FRI",
        "0 9 * * mon-fri",
        "*/15 0-6,18-23 1,15 JAN-MAR,DEC SUN",
        "5/10 * * * *",
        "0 0 29 2 *",
        "0 0 * * 7",
        "59 23 31 12 6",
        "0-59/5 * * * 1-5/2",
        "  0  *  *  *  *  ",
    ],
)
def test_valid_cron(expr: str) -> None:
    assert Cron(expr).schedule == expr


@pytest.mark.parametrize(
    ("expr", "detail"),
    [
        ("* * * *", "has 4 fields; expected 5 \\(minute hour day-of-month month day-of-week\\)"),
        ("0 * * * * *", "has 6 fields; expected 5"),
        ("60 * * * *", "out of bounds"),
        ("0 24 * * *", "out of bounds"),
        ("0 0 0 * *", "out of bounds"),
        ("0 0 * 13 *", "out of bounds"),
        ("0 0 * * 8", "out of bounds"),
        ("0 0 * * FRI-MON", "out of bounds"),
        ("*/0 * * * *", "Step cannot be zero"),
        ("*/x * * * *", "not valid"),
        ("a * * * *", "not valid"),
        ("0 0 * FOO *", "not valid"),
        ("0 0 * * MONDAY", "not valid"),
        ("0 0 1,,2 * *", "empty list item"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 30,31 2 *", "never fires"),
        ("0 0 31 4,6 *", "never fires"),
    ],
)
def test_invalid_cron(expr: str, detail: str) -> None:
    # The backend's scheduler parses schedules; the SDK asks it, so both agree on what is valid.
    with pytest.raises(ValueError, match=rf"is not a valid cron schedule: .*{detail}"):
        Cron(expr)


def test_cron_takes_the_reference_keyword_too() -> None:
    assert Cron(expression="0 9 * * 1-5") == Cron("0 9 * * 1-5")
    assert Cron(schedule="0 9 * * 1-5").expression == "0 9 * * 1-5"
    assert Cron("0 9 * * 1-5").timezone == "UTC"  # the reference's default zone
    assert Cron("0 9 * * 1-5", "Europe/Paris").timezone_expression == "CRON_TZ=Europe/Paris 0 9 * * 1-5"
    with pytest.raises(TypeError, match="give one"):
        Cron("0 * * * *", schedule="1 * * * *")


def test_cron_shortcuts_suggest_the_expression() -> None:
    with pytest.raises(ValueError, match=r"shortcuts are not supported; use Cron\('0 \* \* \* \*'\)"):
        Cron("@hourly")
    with pytest.raises(ValueError, match=r"use Cron\('0 0 \* \* \*'\)"):
        Cron("@daily")


def test_cron_timezone_validation() -> None:
    assert Cron("0 * * * *", timezone="UTC").timezone == "UTC"
    with pytest.raises(
        ValueError, match=r"Cron\(timezone='Mars/Olympus'\) is not a known IANA timezone; use e.g. 'UTC'"
    ):
        Cron("0 * * * *", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="not a known IANA timezone"):
        Cron("0 * * * *", timezone="../etc/passwd")
    with pytest.raises(TypeError, match="timezone=5"):
        Cron("0 * * * *", timezone=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Cron\(None\) must be a string"):
        Cron(None)  # type: ignore[arg-type]


def test_cron_is_frozen_and_hashable() -> None:
    c = Cron("0 9 * * MON-FRI", timezone="UTC")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.schedule = "* * * * *"  # type: ignore[misc]
    assert {c, Cron("0 9 * * MON-FRI", timezone="UTC")} == {c}
    assert c == Cron("0 9 * * MON-FRI") != Cron("0 9 * * MON-FRI", timezone="Europe/Paris")
    assert "_fields" not in repr(c)


# ---- Cron.next_after ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("* * * * *", datetime(2024, 1, 1, 0, 0, 0), datetime(2024, 1, 1, 0, 1)),
        ("* * * * *", datetime(2024, 1, 1, 0, 0, 30), datetime(2024, 1, 1, 0, 1)),
        ("0 * * * *", datetime(2024, 1, 1, 0, 0), datetime(2024, 1, 1, 1, 0)),
        ("0 * * * *", datetime(2024, 1, 1, 23, 59, 59), datetime(2024, 1, 2, 0, 0)),
        ("*/15 * * * *", datetime(2024, 1, 1, 0, 14, 59), datetime(2024, 1, 1, 0, 15)),
        ("5/20 * * * *", datetime(2024, 1, 1, 0, 26), datetime(2024, 1, 1, 0, 45)),
        ("0 9 * * MON-FRI", datetime(2024, 1, 5, 10, 0), datetime(2024, 1, 8, 9, 0)),  # Fri -> Mon
        ("0 9 * * 1-5", datetime(2024, 1, 8, 8, 59), datetime(2024, 1, 8, 9, 0)),
        ("0 0 * * 7", datetime(2024, 1, 1), datetime(2024, 1, 7)),  # 7 is Sunday
        ("0 0 1 * *", datetime(2024, 1, 31, 12), datetime(2024, 2, 1)),
        ("0 0 31 * *", datetime(2024, 4, 1), datetime(2024, 5, 31)),  # April has no 31st
        ("0 0 29 2 *", datetime(2024, 3, 1), datetime(2028, 2, 29)),
        ("30 12 * DEC *", datetime(2024, 1, 1), datetime(2024, 12, 1, 12, 30)),
        ("59 23 31 12 *", datetime(2024, 12, 31, 23, 59), datetime(2025, 12, 31, 23, 59)),
        # Both day fields restricted: either one matching fires (1st of the month or any Monday).
        ("0 0 1,15 * MON", datetime(2024, 1, 1), datetime(2024, 1, 8)),
        ("0 0 1,15 * MON", datetime(2024, 1, 8), datetime(2024, 1, 15)),
        # A '*'-prefixed day-of-week keeps AND semantics: the 1st, but only on even weekdays (Sun/Tue/Thu/Sat).
        ("0 0 1 * */2", datetime(2024, 1, 1), datetime(2024, 2, 1)),
    ],
)
def test_cron_next_after(expr: str, after: datetime, expected: datetime) -> None:
    assert Cron(expr).next_after(after) == expected


def test_cron_next_after_is_strictly_later_and_chains() -> None:
    c = Cron("*/20 8-9 * * *")
    t = datetime(2024, 6, 1, 7, 0)
    fired = []
    for _ in range(7):
        t = c.next_after(t)
        fired.append(t.strftime("%d %H:%M"))
    assert fired == ["01 08:00", "01 08:20", "01 08:40", "01 09:00", "01 09:20", "01 09:40", "02 08:00"]


def test_cron_next_after_with_timezone() -> None:
    weekdays_ny = Cron("0 9 * * MON-FRI", timezone="America/New_York")
    # Naive input is wall time in the cron's zone.
    assert weekdays_ny.next_after(datetime(2024, 1, 5, 10, 0)) == datetime(2024, 1, 8, 9, 0, tzinfo=NY)
    # Aware input is converted: 13:00 UTC is 08:00 in New York (EST).
    result = weekdays_ny.next_after(datetime(2024, 1, 5, 13, 0, tzinfo=timezone.utc))
    assert result == datetime(2024, 1, 5, 14, 0, tzinfo=timezone.utc)
    assert result.tzinfo is not None and result.utcoffset() == timedelta(hours=-5)
    # Without a timezone, the schedule follows the input's own clock.
    assert Cron("0 9 * * *").next_after(datetime(2024, 1, 5, 10, 0, tzinfo=NY)) == datetime(
        2024, 1, 6, 9, 0, tzinfo=NY
    )


def test_cron_fires_wall_times_removed_by_dst_right_after_the_change() -> None:
    # 2024-03-10 02:30 does not exist in New York: as in Vixie cron it fires at 03:00 EDT.
    c = Cron("30 2 * * *", timezone="America/New_York")
    assert c.next_after(datetime(2024, 3, 10, 0, 0)) == datetime(2024, 3, 10, 3, 0, tzinfo=NY)
    assert c.next_after(datetime(2024, 3, 10, 3, 0, tzinfo=NY)) == datetime(2024, 3, 11, 2, 30, tzinfo=NY)


def test_cron_fires_once_for_wall_times_repeated_by_dst() -> None:
    c = Cron("45 1 * * *", timezone="America/New_York")
    first = c.next_after(datetime(2024, 11, 3, 0, 0, tzinfo=NY))
    # 01:45 EDT, the first occurrence. Compared in UTC: == across zones is always False for ambiguous times.
    assert first.astimezone(timezone.utc) == datetime(2024, 11, 3, 5, 45, tzinfo=timezone.utc)
    # From inside the repeated hour (01:30 EST), 01:45 has already happened.
    after_repeat = c.next_after(datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY))
    assert after_repeat == datetime(2024, 11, 4, 1, 45, tzinfo=NY)


def test_cron_finds_rare_dates() -> None:
    # No Feb 29 in 2100, so the next one after 2096 is eight years away.
    assert Cron("0 0 29 2 *").next_after(datetime(2096, 3, 1)) == datetime(2104, 2, 29)
    # A '*'-prefixed day-of-week ANDs with the day of month: Feb 29 that is also a Sunday.
    assert Cron("0 0 29 2 */7").next_after(datetime(2024, 3, 1)) == datetime(2032, 2, 29)
    assert Cron("0 0 29 2 */7").next_after(datetime(2032, 3, 1)) == datetime(2060, 2, 29)


# ---- FixedRate ------------------------------------------------------------------------------------


def test_fixed_rate_validation() -> None:
    # A whole number of minutes, as the reference SDK takes it.
    assert FixedRate(30).interval == timedelta(minutes=30)
    assert FixedRate(timedelta(hours=2)).interval_minutes == 120
    with pytest.raises(TypeError, match=r"FixedRate\(1.5\) must be a whole number of minutes"):
        FixedRate(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be positive"):
        FixedRate(timedelta(0))
    with pytest.raises(ValueError, match="must be positive"):
        FixedRate(timedelta(minutes=-5))
    with pytest.raises(
        ValueError, match=r"whole number of minutes, e.g. FixedRate\(timedelta\(minutes=2\)\)"
    ):
        FixedRate(timedelta(seconds=90))
    with pytest.raises(ValueError, match=r"minutes=1\)"):
        FixedRate(timedelta(seconds=10))
    with pytest.raises(TypeError, match="start_time='now'"):
        FixedRate(timedelta(minutes=1), start_time="now")  # type: ignore[arg-type]
    f = FixedRate(timedelta(hours=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.interval_minutes = 120  # type: ignore[misc]
    assert hash(f) == hash(FixedRate(timedelta(minutes=60)))


def test_fixed_rate_next_after() -> None:
    every_30 = FixedRate(timedelta(minutes=30))
    assert every_30.next_after(datetime(2024, 1, 1, 10, 7)) == datetime(2024, 1, 1, 10, 37)

    anchored = FixedRate(timedelta(minutes=30), start_time=datetime(2024, 1, 1, 9, 0))
    assert anchored.next_after(datetime(2023, 12, 31)) == datetime(2024, 1, 1, 9, 0)
    assert anchored.next_after(datetime(2024, 1, 1, 9, 0)) == datetime(2024, 1, 1, 9, 30)
    assert anchored.next_after(datetime(2024, 1, 1, 10, 7)) == datetime(2024, 1, 1, 10, 30)
    assert anchored.next_after(datetime(2024, 1, 1, 10, 30)) == datetime(2024, 1, 1, 11, 0)

    aware = FixedRate(timedelta(hours=1), start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert aware.next_after(datetime(2024, 1, 1, 5, 30, tzinfo=NY)) == datetime(
        2024, 1, 1, 11, tzinfo=timezone.utc
    )
    with pytest.raises(TypeError, match="both must be naive or both timezone-aware"):
        aware.next_after(datetime(2024, 1, 1))
