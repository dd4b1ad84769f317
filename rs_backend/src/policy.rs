//! The rules between attempts, for both modes: whether a failed attempt is tried again and
//! after how long, and how long an attempt may take. The embedded backend applies them to
//! processes; local mode applies them, through the controller's ledger, to coroutines and
//! threads. Both read them from the task's `core.TaskMetadata`, so a task behaves alike in
//! either mode.

use std::time::Duration;

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::core::{RetryStrategy, TaskMetadata};
use flyteidl2::google::protobuf::Duration as PbDuration;

use crate::clock::positive_duration;

/// Most retries a task may ask for: past this a failing task would keep a slot, a log and a
/// work dir per attempt for hours; such a spec is refused when submitted.
pub const MAX_TASK_RETRIES: u32 = 100;

/// The wait before system retry `n` (0-based): the first at once (a crash is usually a one-off),
/// then 1 s, 2 s, 4 s, ... up to 30 s, so a condition that lasts (a full or read-only disk)
/// is waited out instead of spending the budget in milliseconds.
pub fn system_retry_delay(n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 1).min(5)).min(SYSTEM_RETRY_DELAY_CAP),
    }
}

const SYSTEM_RETRY_DELAY_CAP: Duration = Duration::from_secs(30);

/// Pacing between a task's own retries: the n-th retry (0-based) waits
/// `min(base * factor^n, cap)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub factor: f64,
    pub cap: Option<Duration>,
}

impl Backoff {
    pub fn new(base: Duration, factor: f64, cap: Option<Duration>) -> Result<Self, String> {
        if !factor.is_finite() || factor < 1.0 {
            return Err(format!(
                "factor must be a finite number >= 1.0, got {factor}"
            ));
        }
        if factor > 1.0 && cap.is_none() {
            return Err(
                "a cap is required when factor > 1.0, or the delay grows without end".into(),
            );
        }
        Ok(Self { base, factor, cap })
    }

    /// The delay before retry `n` (0-based: the first retry is 0).
    pub fn delay(&self, n: u32) -> Duration {
        let grown = self.base.as_secs_f64() * self.factor.powf(f64::from(n));
        // An exponent that leaves f64's range, or Duration's, is far past any cap.
        let uncapped = Duration::try_from_secs_f64(grown).unwrap_or(Duration::MAX);
        match self.cap {
            Some(cap) => uncapped.min(cap),
            None => uncapped,
        }
    }

    fn from_proto(
        base: Option<&PbDuration>,
        factor: Option<f64>,
        cap: Option<&PbDuration>,
    ) -> Result<Self, String> {
        let base = match base {
            Some(d) => positive_duration(d).map_err(|e| format!("base: {e}"))?,
            None => None,
        };
        let cap = match cap {
            // A cap of zero is a real bound (no wait at all), unlike an unset one.
            Some(d) => Some(
                positive_duration(d)
                    .map_err(|e| format!("cap: {e}"))?
                    .unwrap_or_default(),
            ),
            None => None,
        };
        Self::new(base.unwrap_or_default(), factor.unwrap_or(1.0), cap)
    }
}

/// What a task's metadata says about retrying and timing its attempts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPolicy {
    /// The task's own retries (attempts beyond the first that its failures may use).
    pub retries: u32,
    pub backoff: Option<Backoff>,
    /// How long one attempt may run (`metadata.timeout`).
    pub max_runtime: Option<Duration>,
    /// How long one attempt may wait to start (`metadata.timeouts.queued_timeout`).
    pub max_queued: Option<Duration>,
    /// How long the action may take from being queued to its end, over all its attempts
    /// (`metadata.timeouts.deadline`).
    pub deadline: Option<Duration>,
}

/// How long an attempt may run, and which bound that is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptLimit {
    pub limit: Duration,
    /// The action's deadline rather than the per-attempt timeout: running past it ends the
    /// action, whatever retries are left.
    pub deadline: bool,
}

/// Whose fault a failed attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The task's own failure. `retryable` is false for a non-recoverable error; `phase` is
    /// the action's phase if it ends here (FAILED or TIMED_OUT).
    User { retryable: bool, phase: ActionPhase },
    /// Not the task's fault (a crash, a lost process): relaunched within the system budget.
    System,
    /// The attempt ran into the action's deadline.
    Deadline,
}

/// What was used so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Budget {
    /// Attempts that counted against the task's retries, the failed one included.
    pub user_attempts: u32,
    pub system_retries_used: u32,
    pub system_retries_max: u32,
    /// Time left before the action's deadline, if it has one.
    pub deadline_left: Option<Duration>,
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Retry {
        system: bool,
        delay: Duration,
    },
    Finish(ActionPhase),
    /// The retry would start after the deadline: the action ends TIMED_OUT now.
    DeadlineWouldPass,
    /// Out of system retries: the action ends FAILED.
    SystemBudgetSpent,
}

impl TaskPolicy {
    /// Reads the policy from a task's metadata; errors name the field.
    pub fn from_metadata(metadata: Option<&TaskMetadata>) -> Result<Self, String> {
        let Some(metadata) = metadata else {
            return Ok(Self::default());
        };
        let (retries, backoff) = match &metadata.retries {
            Some(RetryStrategy { retries, backoff }) => {
                let backoff = match backoff {
                    Some(b) => Some(
                        Backoff::from_proto(b.base.as_ref(), b.factor, b.cap.as_ref())
                            .map_err(|e| format!("metadata.retries.backoff: {e}"))?,
                    ),
                    None => None,
                };
                if *retries > MAX_TASK_RETRIES {
                    return Err(format!(
                        "metadata.retries.retries: {retries} retries asked, at most \
                         {MAX_TASK_RETRIES} are allowed"
                    ));
                }
                (*retries, backoff)
            }
            None => (0, None),
        };
        let bound = |d: Option<&PbDuration>, field: &str| match d {
            Some(d) => positive_duration(d).map_err(|e| format!("metadata.{field}: {e}")),
            None => Ok(None),
        };
        let timeouts = metadata.timeouts.as_ref();
        Ok(Self {
            retries,
            backoff,
            max_runtime: bound(metadata.timeout.as_ref(), "timeout")?,
            max_queued: bound(
                timeouts.and_then(|t| t.queued_timeout.as_ref()),
                "timeouts.queued_timeout",
            )?,
            deadline: bound(
                timeouts.and_then(|t| t.deadline.as_ref()),
                "timeouts.deadline",
            )?,
        })
    }

    /// Time left before the deadline of an action queued at `queued_ms`, at `now_ms`.
    pub fn deadline_left(&self, queued_ms: i64, now_ms: i64) -> Option<Duration> {
        let deadline = self.deadline?;
        let elapsed = Duration::from_millis(u64::try_from(now_ms - queued_ms).unwrap_or(0));
        Some(deadline.saturating_sub(elapsed))
    }

    /// How long an attempt starting at `now_ms` may run: its own timeout or what is left of
    /// the action's deadline, whichever ends first.
    pub fn attempt_limit(&self, queued_ms: i64, now_ms: i64) -> Option<AttemptLimit> {
        let left = self.deadline_left(queued_ms, now_ms);
        match (self.max_runtime, left) {
            (Some(runtime), Some(left)) if left < runtime => Some(AttemptLimit {
                limit: left,
                deadline: true,
            }),
            (Some(runtime), _) => Some(AttemptLimit {
                limit: runtime,
                deadline: false,
            }),
            (None, Some(left)) => Some(AttemptLimit {
                limit: left,
                deadline: true,
            }),
            (None, None) => None,
        }
    }

    /// Decides what follows a failed attempt.
    pub fn after_failure(&self, failure: Failure, budget: Budget) -> After {
        let retry = match failure {
            Failure::Deadline => return After::Finish(ActionPhase::TimedOut),
            Failure::User { retryable, phase } => {
                if !retryable || budget.user_attempts > self.retries {
                    return After::Finish(phase);
                }
                let delay = self.backoff.as_ref().map_or(Duration::ZERO, |b| {
                    b.delay(budget.user_attempts.saturating_sub(1))
                });
                After::Retry {
                    system: false,
                    delay,
                }
            }
            Failure::System => {
                if budget.system_retries_used >= budget.system_retries_max {
                    return After::SystemBudgetSpent;
                }
                After::Retry {
                    system: true,
                    delay: system_retry_delay(budget.system_retries_used),
                }
            }
        };
        match (retry, budget.deadline_left) {
            (After::Retry { delay, .. }, Some(left)) if left <= delay => After::DeadlineWouldPass,
            _ => retry,
        }
    }
}

/// A task's environment variables as both modes set them: the task's own (its environment's),
/// then the run's over them. Each name appears once, where it first appeared, with the value of
/// the last layer that sets it.
pub fn task_environment(
    task_env: &[(String, String)],
    run_env: &[(String, String)],
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::with_capacity(task_env.len() + run_env.len());
    for (key, value) in task_env.iter().chain(run_env) {
        match merged.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => merged.push((key.clone(), value.clone())),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyteidl2::flyteidl::core::{Backoff as PbBackoff, TimeoutStrategy};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn pb(seconds: i64) -> PbDuration {
        PbDuration { seconds, nanos: 0 }
    }

    fn user(retryable: bool) -> Failure {
        Failure::User {
            retryable,
            phase: ActionPhase::Failed,
        }
    }

    #[test]
    fn the_run_environment_is_over_the_tasks() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let task = pairs(&[("A", "task"), ("B", "task")]);
        let run = pairs(&[("B", "run"), ("C", "run")]);
        assert_eq!(
            task_environment(&task, &run),
            pairs(&[("A", "task"), ("B", "run"), ("C", "run")])
        );
        assert_eq!(task_environment(&[], &[]), vec![]);
    }

    #[test]
    fn backoff_grows_by_its_factor_up_to_the_cap() {
        let b = Backoff::new(secs(10), 2.0, Some(secs(300))).unwrap();
        let delays: Vec<u64> = (0..7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        // Far beyond f64's range is still just the cap.
        assert_eq!(b.delay(100_000), secs(300));
        let constant = Backoff::new(secs(3), 1.0, None).unwrap();
        assert_eq!(constant.delay(50), secs(3));
    }

    #[test]
    fn backoff_rejects_what_would_never_end_or_shrink() {
        assert!(Backoff::new(secs(1), 2.0, None)
            .unwrap_err()
            .contains("cap is required"));
        assert!(Backoff::new(secs(1), 0.5, Some(secs(1)))
            .unwrap_err()
            .contains(">= 1.0"));
        assert!(Backoff::new(secs(1), f64::NAN, Some(secs(1))).is_err());
    }

    #[test]
    fn reads_retries_backoff_and_timeouts_from_metadata() {
        let metadata = TaskMetadata {
            retries: Some(RetryStrategy {
                retries: 3,
                backoff: Some(PbBackoff {
                    base: Some(pb(1)),
                    factor: Some(2.0),
                    cap: Some(pb(4)),
                }),
            }),
            timeout: Some(pb(30)),
            timeouts: Some(TimeoutStrategy {
                queued_timeout: Some(pb(5)),
                deadline: Some(pb(0)),
            }),
            ..Default::default()
        };
        let policy = TaskPolicy::from_metadata(Some(&metadata)).unwrap();
        assert_eq!(policy.retries, 3);
        assert_eq!(policy.backoff.as_ref().unwrap().delay(5), secs(4));
        assert_eq!(policy.max_runtime, Some(secs(30)));
        assert_eq!(policy.max_queued, Some(secs(5)));
        // Zero means "no bound".
        assert_eq!(policy.deadline, None);
        assert_eq!(
            TaskPolicy::from_metadata(None).unwrap(),
            TaskPolicy::default()
        );

        let unbounded = TaskMetadata {
            retries: Some(RetryStrategy {
                retries: 1,
                backoff: Some(PbBackoff {
                    base: Some(pb(1)),
                    factor: Some(3.0),
                    cap: None,
                }),
            }),
            ..Default::default()
        };
        let err = TaskPolicy::from_metadata(Some(&unbounded)).unwrap_err();
        assert!(err.starts_with("metadata.retries.backoff"), "{err}");
        let negative = TaskMetadata {
            timeout: Some(pb(-1)),
            ..Default::default()
        };
        assert!(TaskPolicy::from_metadata(Some(&negative))
            .unwrap_err()
            .starts_with("metadata.timeout"));
    }

    #[test]
    fn user_failures_use_the_task_retries_with_backoff() {
        let policy = TaskPolicy {
            retries: 2,
            backoff: Some(Backoff::new(secs(1), 2.0, Some(secs(60))).unwrap()),
            ..Default::default()
        };
        let after = |attempts| {
            policy.after_failure(
                user(true),
                Budget {
                    user_attempts: attempts,
                    ..Default::default()
                },
            )
        };
        assert_eq!(
            after(1),
            After::Retry {
                system: false,
                delay: secs(1)
            }
        );
        assert_eq!(
            after(2),
            After::Retry {
                system: false,
                delay: secs(2)
            }
        );
        assert_eq!(after(3), After::Finish(ActionPhase::Failed));
        // A non-recoverable error ends the action with retries left.
        assert_eq!(
            policy.after_failure(
                user(false),
                Budget {
                    user_attempts: 1,
                    ..Default::default()
                }
            ),
            After::Finish(ActionPhase::Failed)
        );
        let timed_out = Failure::User {
            retryable: true,
            phase: ActionPhase::TimedOut,
        };
        assert_eq!(
            TaskPolicy::default().after_failure(
                timed_out,
                Budget {
                    user_attempts: 1,
                    ..Default::default()
                }
            ),
            After::Finish(ActionPhase::TimedOut)
        );
    }

    #[test]
    fn system_failures_use_the_system_budget_only() {
        let policy = TaskPolicy::default();
        let budget = |used| Budget {
            user_attempts: 9,
            system_retries_used: used,
            system_retries_max: 2,
            deadline_left: None,
        };
        assert_eq!(
            policy.after_failure(Failure::System, budget(0)),
            After::Retry {
                system: true,
                delay: Duration::ZERO
            }
        );
        assert_eq!(
            policy.after_failure(Failure::System, budget(1)),
            After::Retry {
                system: true,
                delay: secs(1)
            }
        );
        assert_eq!(
            policy.after_failure(Failure::System, budget(2)),
            After::SystemBudgetSpent
        );
    }

    #[test]
    fn system_retries_back_off_to_a_cap() {
        let delays: Vec<u64> = (0..10).map(|n| system_retry_delay(n).as_secs()).collect();
        assert_eq!(delays, vec![0, 1, 2, 4, 8, 16, 30, 30, 30, 30]);
        assert_eq!(system_retry_delay(u32::MAX), secs(30));
    }

    #[test]
    fn a_task_may_ask_for_at_most_the_retry_cap() {
        let asking = |retries| TaskMetadata {
            retries: Some(RetryStrategy {
                retries,
                backoff: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            TaskPolicy::from_metadata(Some(&asking(MAX_TASK_RETRIES)))
                .unwrap()
                .retries,
            MAX_TASK_RETRIES
        );
        let refused = TaskPolicy::from_metadata(Some(&asking(1_000_000))).unwrap_err();
        assert!(refused.contains("at most 100"), "{refused}");
    }

    #[test]
    fn the_deadline_bounds_attempts_and_retries() {
        let policy = TaskPolicy {
            retries: 5,
            backoff: Some(Backoff::new(secs(10), 1.0, None).unwrap()),
            max_runtime: Some(secs(60)),
            deadline: Some(secs(100)),
            ..Default::default()
        };
        // Early on the per-attempt timeout is the tighter bound; later the deadline is.
        assert_eq!(
            policy.attempt_limit(0, 1_000),
            Some(AttemptLimit {
                limit: secs(60),
                deadline: false
            })
        );
        assert_eq!(
            policy.attempt_limit(0, 70_000),
            Some(AttemptLimit {
                limit: secs(30),
                deadline: true
            })
        );
        assert_eq!(
            policy.attempt_limit(0, 200_000).unwrap().limit,
            Duration::ZERO
        );
        let budget = |left| Budget {
            user_attempts: 1,
            deadline_left: Some(secs(left)),
            ..Default::default()
        };
        assert!(matches!(
            policy.after_failure(user(true), budget(11)),
            After::Retry { .. }
        ));
        assert_eq!(
            policy.after_failure(user(true), budget(10)),
            After::DeadlineWouldPass
        );
        assert_eq!(
            policy.after_failure(Failure::Deadline, budget(50)),
            After::Finish(ActionPhase::TimedOut)
        );
        assert_eq!(TaskPolicy::default().attempt_limit(0, 5), None);
    }
}
