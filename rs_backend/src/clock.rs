//! Wall-clock time as stored (milliseconds since the epoch) and as sent (protobuf types).

use std::time::{SystemTime, UNIX_EPOCH};

use flyteidl2::google::protobuf::{Duration as PbDuration, Timestamp};

pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        // A clock before 1970 is a broken clock; 0 keeps ordering sane without failing requests.
        Err(_) => 0,
    }
}

pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        // rem_euclid keeps nanos within 0..1e9 as the protobuf spec requires.
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn timestamp_ms(ts: &Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1000)?
        .checked_add(i64::from(ts.nanos / 1_000_000))
}

/// A protobuf duration as a std one. Zero means "not set"; negative is an error.
pub fn positive_duration(d: &PbDuration) -> Result<Option<std::time::Duration>, String> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(format!(
            "duration must not be negative (got {}s {}ns)",
            d.seconds, d.nanos
        ));
    }
    if d.nanos >= 1_000_000_000 {
        return Err(format!("duration nanos out of range: {}", d.nanos));
    }
    if d.seconds == 0 && d.nanos == 0 {
        return Ok(None);
    }
    Ok(Some(std::time::Duration::new(
        d.seconds as u64,
        d.nanos as u32,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip() {
        for ms in [0_i64, 1, 999, 1000, 1_700_000_000_123, -1500] {
            let ts = timestamp(ms);
            assert!((0..1_000_000_000).contains(&ts.nanos));
            assert_eq!(timestamp_ms(&ts), Some(ms));
        }
        assert_eq!(
            timestamp_ms(&Timestamp {
                seconds: 1,
                nanos: -1
            }),
            None
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            positive_duration(&PbDuration {
                seconds: 0,
                nanos: 0
            }),
            Ok(None)
        );
        assert_eq!(
            positive_duration(&PbDuration {
                seconds: 2,
                nanos: 5
            }),
            Ok(Some(std::time::Duration::new(2, 5)))
        );
        assert!(positive_duration(&PbDuration {
            seconds: -1,
            nanos: 0
        })
        .is_err());
    }
}
