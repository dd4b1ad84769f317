//! When triggers fire: a cron expression in a time zone, or a fixed rate, and the scheduler's
//! rule for which tick is due.
//!
//! Cron follows standard 5-field syntax; as in Vixie cron, a day matches when either a
//! restricted day-of-month or a restricted day-of-week matches. Wall times skipped by a DST
//! change fire at the first valid time after it; wall times repeated by one fire once.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

use flyteidl2::flyteidl::task::{
    schedule, trigger_automation_spec, FixedRateUnit, TriggerAutomationSpec,
};

/// A parsed schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    Cron {
        cron: Box<Cron>,
        tz: Tz,
    },
    Rate {
        interval_ms: i64,
        start_ms: Option<i64>,
    },
}

/// A cron expression with an IANA time zone ("" is UTC).
pub fn parse_cron(expression: &str, timezone: &str) -> Result<Schedule, String> {
    let fields = expression.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron expression {expression:?} has {fields} fields; expected 5 (minute hour \
             day-of-month month day-of-week)"
        ));
    }
    let parts: Vec<&str> = expression.split_whitespace().collect();
    if let Some(field) = parts
        .iter()
        .find(|f| f.starts_with(',') || f.ends_with(',') || f.contains(",,"))
    {
        return Err(format!(
            "cron expression {expression:?} has an empty list item in {field:?}"
        ));
    }
    let mut cron = Cron::new(expression);
    // Vixie cron: a day matches either restricted day field, unless one of them starts with
    // '*' (then both must match).
    if parts[2].starts_with('*') || parts[4].starts_with('*') {
        cron.with_dom_and_dow();
    }
    let cron = cron
        .parse()
        .map_err(|e| format!("cron expression {expression:?} is not valid: {e}"))?;
    let tz = if timezone.is_empty() {
        Tz::UTC
    } else {
        timezone
            .parse::<Tz>()
            .map_err(|_| format!("{timezone:?} is not an IANA time zone (e.g. America/New_York)"))?
    };
    let schedule = Schedule::Cron {
        cron: Box::new(cron),
        tz,
    };
    // An expression that never matches (e.g. 30 February) is refused now, not at fire time.
    if schedule.next_after(0).is_none() {
        return Err(format!("cron expression {expression:?} never fires"));
    }
    Ok(schedule)
}

/// The schedule of a trigger's automation spec.
pub fn from_spec(spec: &TriggerAutomationSpec) -> Result<Schedule, String> {
    let schedule = match &spec.automation {
        Some(trigger_automation_spec::Automation::Schedule(schedule)) => schedule,
        _ => return Err("automation_spec.schedule is required for a scheduled trigger".into()),
    };
    match &schedule.expression {
        Some(schedule::Expression::Cron(cron)) => parse_cron(&cron.expression, &cron.timezone),
        Some(schedule::Expression::CronExpression(expression)) => {
            parse_cron(expression.as_str(), "")
        }
        Some(schedule::Expression::Rate(rate)) => {
            let unit_ms: i64 = match FixedRateUnit::try_from(rate.unit) {
                Ok(FixedRateUnit::Minute) => 60_000,
                Ok(FixedRateUnit::Hour) => 3_600_000,
                Ok(FixedRateUnit::Day) => 86_400_000,
                _ => return Err("a fixed rate needs a unit: minute, hour or day".into()),
            };
            if rate.value == 0 {
                return Err("a fixed rate must be at least 1".into());
            }
            let start_ms = match &rate.start_time {
                Some(ts) => Some(
                    crate::clock::timestamp_ms(ts)
                        .ok_or("the fixed rate's start_time is invalid")?,
                ),
                None => None,
            };
            Ok(Schedule::Rate {
                interval_ms: i64::from(rate.value) * unit_ms,
                start_ms,
            })
        }
        None => Err("a schedule needs a cron expression or a fixed rate".into()),
    }
}

impl Schedule {
    /// The first tick strictly after `after_ms` (for a rate without a start time, ticks are
    /// counted from `after_ms` itself).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Cron { cron, tz } => {
                let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
                let mut next = cron
                    .find_next_occurrence(&after.with_timezone(tz), false)
                    .ok()?;
                // The search runs on wall time: from inside an hour that DST repeats it can
                // land on that wall time's first occurrence, before `after`. Such a tick has
                // fired already (once per wall time), so look past it.
                for _ in 0..4 {
                    if next.with_timezone(&Utc) > after {
                        return Some(next.with_timezone(&Utc).timestamp_millis());
                    }
                    next = cron.find_next_occurrence(&next, false).ok()?;
                }
                None
            }
            Schedule::Rate {
                interval_ms,
                start_ms,
            } => {
                let anchor = start_ms.unwrap_or(after_ms);
                if after_ms < anchor {
                    return Some(anchor);
                }
                let k = (after_ms - anchor) / interval_ms + 1;
                Some(anchor + k * interval_ms)
            }
        }
    }

    /// The tick to fire at `now_ms`, if any: the latest tick after `since_ms` (the later of
    /// the trigger's activation and its last fired tick) that is not in the future. Older
    /// missed ticks are skipped, so a backend that was down fires one catch-up run per
    /// trigger, not a storm.
    pub fn due_tick(&self, since_ms: i64, now_ms: i64) -> Option<i64> {
        if let Schedule::Rate {
            interval_ms,
            start_ms: Some(start),
        } = self
        {
            // Closed form, so a long outage costs nothing to catch up on.
            if now_ms < *start {
                return None;
            }
            let latest = start + (now_ms - start) / interval_ms * interval_ms;
            return (latest > since_ms).then_some(latest);
        }
        let mut due = None;
        let mut cursor = since_ms;
        // A bounded walk. Running out of steps means ticks are dense (a day holds at most
        // 1440 minutes, well under the bound), so the latest one is within the last day.
        for _ in 0..10_000 {
            match self.next_after(cursor) {
                Some(tick) if tick <= now_ms => {
                    due = Some(tick);
                    cursor = tick;
                }
                _ => return due,
            }
        }
        let last_day = now_ms - 86_400_000;
        if last_day > cursor {
            return self.due_tick(last_day, now_ms).or(due);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .timestamp_millis()
    }

    #[test]
    fn cron_in_a_time_zone_across_dst() {
        let s = parse_cron("30 2 * * *", "America/New_York").unwrap();
        // 2:30 does not exist on 2026-03-08 in New York: it fires at 3:00 EDT instead.
        assert_eq!(
            s.next_after(ms("2026-03-08T05:00:00Z")),
            Some(ms("2026-03-08T07:00:00Z"))
        );
        // The next day it is 2:30 EDT again.
        assert_eq!(
            s.next_after(ms("2026-03-08T08:00:00Z")),
            Some(ms("2026-03-09T06:30:00Z"))
        );
        // 1:30 happens twice on 2026-11-01: it fires once, at the first.
        let h = parse_cron("30 1 * * *", "America/New_York").unwrap();
        assert_eq!(
            h.next_after(ms("2026-11-01T04:00:00Z")),
            Some(ms("2026-11-01T05:30:00Z"))
        );
        assert_eq!(
            h.next_after(ms("2026-11-01T05:30:00Z")),
            Some(ms("2026-11-02T06:30:00Z"))
        );
    }

    #[test]
    fn a_repeated_wall_time_is_not_fired_again_from_inside_the_repeat() {
        let s = parse_cron("45 1 * * *", "America/New_York").unwrap();
        // 01:30 EST (the second 01:30 of 2024-11-03): 01:45 has happened already.
        assert_eq!(
            s.next_after(ms("2024-11-03T06:30:00Z")),
            Some(ms("2024-11-04T06:45:00Z"))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // A '*'-prefixed day field makes both fields required (Vixie cron).
        let s = parse_cron("0 0 1 * */2", "").unwrap();
        assert_eq!(
            s.next_after(ms("2024-01-01T00:00:00Z")),
            Some(ms("2024-02-01T00:00:00Z"))
        );
        // The 1st of the month, or any Monday (Vixie cron).
        let s = parse_cron("0 0 1 * 1", "").unwrap();
        assert_eq!(
            s.next_after(ms("2026-12-02T00:00:00Z")),
            Some(ms("2026-12-07T00:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        for (expr, tz, needle) in [
            ("* * * *", "", "5"),
            ("61 * * * *", "", "not valid"),
            ("0 0 30 2 *", "", "never fires"),
            ("0 0 1,,2 * *", "", "empty list item"),
            ("0 * * * *", "Mars/Olympus", "IANA"),
        ] {
            let err = parse_cron(expr, tz).unwrap_err();
            assert!(err.contains(needle), "{expr}: {err}");
        }
    }

    #[test]
    fn only_the_latest_missed_tick_is_due() {
        let hourly = parse_cron("0 * * * *", "").unwrap();
        let since = ms("2026-12-02T10:00:00Z");
        assert_eq!(hourly.due_tick(since, ms("2026-12-02T10:59:59Z")), None);
        assert_eq!(
            hourly.due_tick(since, ms("2026-12-02T11:00:00Z")),
            Some(ms("2026-12-02T11:00:00Z"))
        );
        // Down for three hours: one catch-up tick, the latest.
        assert_eq!(
            hourly.due_tick(since, ms("2026-12-02T13:20:00Z")),
            Some(ms("2026-12-02T13:00:00Z"))
        );
        // Once fired, the same tick is not due again.
        let fired = ms("2026-12-02T13:00:00Z");
        assert_eq!(hourly.due_tick(fired, ms("2026-12-02T13:30:00Z")), None);
        // A minutely schedule missed for a month still answers quickly, with the latest tick.
        let minutely = parse_cron("* * * * *", "").unwrap();
        assert_eq!(
            minutely.due_tick(ms("2026-11-01T00:00:00Z"), ms("2026-12-02T10:00:30Z")),
            Some(ms("2026-12-02T10:00:00Z"))
        );
    }

    #[test]
    fn fixed_rates_with_and_without_a_start() {
        let every_30m = Schedule::Rate {
            interval_ms: 1_800_000,
            start_ms: None,
        };
        let since = ms("2026-12-02T10:07:00Z");
        assert_eq!(every_30m.due_tick(since, ms("2026-12-02T10:30:00Z")), None);
        assert_eq!(
            every_30m.due_tick(since, ms("2026-12-02T11:40:00Z")),
            Some(ms("2026-12-02T11:37:00Z"))
        );
        let anchored = Schedule::Rate {
            interval_ms: 3_600_000,
            start_ms: Some(ms("2026-12-01T00:15:00Z")),
        };
        assert_eq!(
            anchored.due_tick(since, ms("2026-12-02T12:20:00Z")),
            Some(ms("2026-12-02T12:15:00Z"))
        );
        assert_eq!(
            anchored.due_tick(ms("2026-12-02T12:15:00Z"), ms("2026-12-02T12:20:00Z")),
            None
        );
    }
}
