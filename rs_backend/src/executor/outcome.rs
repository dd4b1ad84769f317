//! How an attempt ended (the facts) and what that means for its action (the decision).
//!
//! Classification reads the files the runtime leaves in the attempt's output prefix:
//! `error.pb` (a serialized `core.ErrorDocument`, whatever the exit code: a cluster task
//! reports its failure that way and exits 0) or `outputs.pb` (success, with exit code 0).
//! Anything else is a crash and earns a system retry.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::core::{
    container_error, execution_error::ErrorKind, ContainerError, ErrorDocument, ExecutionError,
};
use prost::Message;

use crate::clock::{now_ms, timestamp};
use crate::datafile::read_optional;
use crate::policy::{After, AttemptLimit, Budget, Failure, TaskPolicy};
use crate::store::{AttemptEnd, NextStep};

/// Why an attempt's process is gone.
#[derive(Debug)]
pub enum ExitCause {
    Exited(ExitStatus),
    /// Ended with nobody able to see its exit status (the fork server that would have reaped
    /// it had died); the files it left decide.
    EndedUnknown,
    /// The attempt ran past its limit (the task's timeout or the action's deadline) and was
    /// killed.
    TimedOut(AttemptLimit),
    /// The process group's resident memory went past the limit and it was killed.
    OutOfMemory {
        used: u64,
        limit: u64,
    },
    /// Killed because the action was aborted.
    Aborted,
    /// Killed because the backend is shutting down.
    Shutdown,
    /// The process could not be started or waited for.
    LaunchFailed(String),
    /// Found gone (or killed) when a restarted backend recovered the action.
    Lost(String),
    /// The reusable worker running the attempt died (or was stopped) before answering; the
    /// files the attempt left decide, and without them it is a crash.
    WorkerLost(String),
}

/// What an attempt amounted to.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Succeeded {
        output_uri: String,
    },
    /// The task's own failure: retried within its retry budget if `retryable`. `phase` is
    /// the final phase if no retry is left (FAILED or TIMED_OUT).
    UserFailure {
        error: ExecutionError,
        phase: ActionPhase,
        retryable: bool,
    },
    /// Not the task's fault: retried within the backend's system retry budget.
    SystemFailure {
        error: ExecutionError,
    },
    /// The attempt ran into the action's deadline: the action ends TIMED_OUT.
    DeadlineExceeded {
        error: ExecutionError,
    },
    Aborted,
    /// The backend stopped (or died) under the attempt: not the action's doing, so it runs
    /// again without using any retry. The reason is what its error says.
    Interrupted(String),
    /// The action cannot run at all (e.g. its stored spec is unusable): fail without retries.
    Invalid {
        error: ExecutionError,
    },
}

pub fn error(code: &str, kind: ErrorKind, message: String) -> ExecutionError {
    ExecutionError {
        code: code.to_string(),
        message,
        kind: kind as i32,
        timestamp: Some(timestamp(now_ms())),
        worker: "local".into(),
        ..Default::default()
    }
}

fn describe_status(status: &ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGTERM => " (SIGTERM)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGINT => " (SIGINT)",
            _ => "",
        };
        format!("was killed by signal {signal}{name}")
    } else {
        match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "ended with an unknown status".into(),
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Turns the facts about an attempt into a verdict. `output_dir`/`output_uri` are the
/// attempt's output prefix as a path and as a URI.
pub fn classify(cause: &ExitCause, output_dir: &Path, output_uri: &str) -> Verdict {
    match cause {
        ExitCause::Exited(status) => classify_exit(Some(status), output_dir, output_uri),
        ExitCause::EndedUnknown => classify_exit(None, output_dir, output_uri),
        ExitCause::TimedOut(AttemptLimit {
            limit,
            deadline: true,
        }) => Verdict::DeadlineExceeded {
            error: error(
                "DeadlineExceeded",
                ErrorKind::User,
                format!(
                    "the action reached its deadline ({:.3}s were left for this attempt) and \
                     was killed",
                    limit.as_secs_f64()
                ),
            ),
        },
        ExitCause::TimedOut(AttemptLimit { limit, .. }) => Verdict::UserFailure {
            error: error(
                "TaskTimeout",
                ErrorKind::User,
                format!(
                    "the attempt ran longer than the task's timeout of {:.3}s and was killed",
                    limit.as_secs_f64()
                ),
            ),
            phase: ActionPhase::TimedOut,
            retryable: true,
        },
        ExitCause::OutOfMemory { used, limit } => Verdict::UserFailure {
            error: error(
                "OOMKilled",
                ErrorKind::User,
                format!(
                    "the task used {:.1} MiB of memory, above its limit of {:.1} MiB, and was killed",
                    mib(*used),
                    mib(*limit)
                ),
            ),
            phase: ActionPhase::Failed,
            retryable: true,
        },
        ExitCause::Aborted => Verdict::Aborted,
        ExitCause::Shutdown => Verdict::Interrupted(
            "the backend shut down while this attempt ran; the action will run again when it \
             restarts"
                .into(),
        ),
        ExitCause::LaunchFailed(message) => Verdict::SystemFailure {
            error: error("LaunchFailed", ErrorKind::System, message.clone()),
        },
        ExitCause::Lost(message) => Verdict::SystemFailure {
            error: error("ProcessLost", ErrorKind::System, message.clone()),
        },
        ExitCause::WorkerLost(message) => match classify_exit(None, output_dir, output_uri) {
            Verdict::SystemFailure { error: found } if found.code == "ProcessCrashed" => {
                Verdict::SystemFailure {
                    error: error("WorkerLost", ErrorKind::System, message.clone()),
                }
            }
            finished => finished,
        },
    }
}

/// `status` is None when it could not be observed: then only the files count.
fn classify_exit(status: Option<&ExitStatus>, output_dir: &Path, output_uri: &str) -> Verdict {
    let described = match status {
        Some(status) => describe_status(status),
        None => "ended while its fork server was gone (its exit status is unknown)".to_string(),
    };
    let error_path = output_dir.join("error.pb");
    match read_optional(&error_path) {
        Ok(Some(bytes)) => {
            let error_uri = crate::layout::join_uri(output_uri, "error.pb");
            return match ErrorDocument::decode(bytes.as_slice()) {
                Ok(ErrorDocument {
                    error: Some(reported),
                }) => reported_failure(reported, error_uri),
                Ok(ErrorDocument { error: None }) => Verdict::SystemFailure {
                    error: error(
                        "BadErrorFile",
                        ErrorKind::System,
                        format!(
                            "the task process {described} and left {} without an error in it",
                            error_path.display()
                        ),
                    ),
                },
                Err(err) => Verdict::SystemFailure {
                    error: error(
                        "BadErrorFile",
                        ErrorKind::System,
                        format!(
                            "the task process {} and left {} that is not a valid \
                             ErrorDocument: {err}",
                            described,
                            error_path.display()
                        ),
                    ),
                },
            };
        }
        Ok(None) => {}
        Err(err) => {
            return Verdict::SystemFailure {
                error: error(
                    "BadErrorFile",
                    ErrorKind::System,
                    format!("could not read {}: {err}", error_path.display()),
                ),
            }
        }
    }
    let outputs_exist = output_dir.join("outputs.pb").is_file();
    let success = status.is_none_or(ExitStatus::success);
    if success && outputs_exist {
        return Verdict::Succeeded {
            output_uri: output_uri.to_string(),
        };
    }
    let detail = match status {
        Some(status) if status.success() => format!(
            "the task process exited with code 0 but wrote neither outputs.pb nor error.pb to {}",
            output_dir.display()
        ),
        Some(_) => format!("the task process {described} without reporting an error"),
        None => format!(
            "the task process {described} and wrote neither outputs.pb nor error.pb to {}",
            output_dir.display()
        ),
    };
    Verdict::SystemFailure {
        error: error("ProcessCrashed", ErrorKind::System, detail),
    }
}

/// A failure the task reported: its origin says whose fault it is, its kind whether another
/// attempt could help.
fn reported_failure(reported: ContainerError, error_uri: String) -> Verdict {
    let recoverable = reported.kind == container_error::Kind::Recoverable as i32;
    let system = reported.origin == ErrorKind::System as i32;
    let mut converted = error(
        &reported.code,
        if system {
            ErrorKind::System
        } else {
            ErrorKind::User
        },
        reported.message,
    );
    converted.error_uri = error_uri;
    if system && recoverable {
        Verdict::SystemFailure { error: converted }
    } else {
        Verdict::UserFailure {
            error: converted,
            phase: ActionPhase::Failed,
            retryable: recoverable,
        }
    }
}

/// Decides what follows an attempt, by the task's policy (see [`crate::policy`]).
pub fn decide(verdict: Verdict, policy: &TaskPolicy, budget: Budget, ended_ms: i64) -> AttemptEnd {
    let end = |attempt_phase, error: Option<ExecutionError>, output_uri, next| AttemptEnd {
        attempt_phase,
        error: error.map(|e| e.encode_to_vec()),
        output_uri,
        ended_ms,
        next,
    };
    let (failure, attempt_phase, mut error) = match verdict {
        Verdict::Succeeded { output_uri } => {
            return end(
                ActionPhase::Succeeded,
                None,
                Some(output_uri),
                NextStep::Finish(ActionPhase::Succeeded),
            )
        }
        Verdict::UserFailure {
            error,
            phase,
            retryable,
        } => (Failure::User { retryable, phase }, phase, error),
        Verdict::SystemFailure { error } => (Failure::System, ActionPhase::Failed, error),
        Verdict::DeadlineExceeded { error } => (Failure::Deadline, ActionPhase::TimedOut, error),
        Verdict::Invalid { error } => {
            return end(
                ActionPhase::Failed,
                Some(error),
                None,
                NextStep::Finish(ActionPhase::Failed),
            )
        }
        Verdict::Aborted => {
            return end(
                ActionPhase::Aborted,
                None,
                None,
                NextStep::Finish(ActionPhase::Aborted),
            )
        }
        Verdict::Interrupted(reason) => {
            return end(
                ActionPhase::Failed,
                Some(self::error("Interrupted", ErrorKind::System, reason)),
                None,
                NextStep::Requeue,
            )
        }
    };
    let next = match policy.after_failure(failure, budget) {
        After::Retry { system, delay } => NextStep::Retry { system, delay },
        After::Finish(phase) => NextStep::Finish(phase),
        After::DeadlineWouldPass => {
            error.message = format!(
                "{} (the action's deadline leaves no time for another attempt)",
                error.message
            );
            NextStep::Finish(ActionPhase::TimedOut)
        }
        After::SystemBudgetSpent => {
            if budget.system_retries_max > 0 {
                error.message = format!(
                    "{} (gave up after {} system retries)",
                    error.message, budget.system_retries_used
                );
            }
            NextStep::Finish(ActionPhase::Failed)
        }
    };
    end(attempt_phase, Some(error), None, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitCause {
        ExitCause::Exited(ExitStatus::from_raw(code << 8))
    }

    use std::time::Duration;

    fn budget(user_attempts: u32, used: u32, max: u32) -> Budget {
        Budget {
            user_attempts,
            system_retries_used: used,
            system_retries_max: max,
            deadline_left: None,
        }
    }

    fn retries(retries: u32) -> TaskPolicy {
        TaskPolicy {
            retries,
            ..Default::default()
        }
    }

    const NOW: NextStep = NextStep::Retry {
        system: false,
        delay: Duration::ZERO,
    };

    #[test]
    fn success_needs_exit_zero_and_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let uri = "file:///x/";
        assert!(matches!(
            classify(&exited(0), dir.path(), uri),
            Verdict::SystemFailure { .. }
        ));
        std::fs::write(dir.path().join("outputs.pb"), b"").unwrap();
        assert_eq!(
            classify(&exited(0), dir.path(), uri),
            Verdict::Succeeded {
                output_uri: uri.into()
            }
        );
        assert!(matches!(
            classify(&exited(3), dir.path(), uri),
            Verdict::SystemFailure { .. }
        ));
    }

    fn document(origin: ErrorKind, kind: container_error::Kind) -> Vec<u8> {
        ErrorDocument {
            error: Some(ContainerError {
                code: "ValueError".into(),
                message: "boom".into(),
                kind: kind as i32,
                origin: origin as i32,
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn error_file_decides_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let error_pb = dir.path().join("error.pb");
        std::fs::write(
            &error_pb,
            document(ErrorKind::User, container_error::Kind::Recoverable),
        )
        .unwrap();
        // Reported failures count whatever the exit code (cluster tasks exit 0).
        for status in [exited(0), exited(1)] {
            match classify(&status, dir.path(), "file:///o/") {
                Verdict::UserFailure {
                    error,
                    phase,
                    retryable,
                } => {
                    assert_eq!(error.message, "boom");
                    assert_eq!(error.code, "ValueError");
                    assert_eq!(error.error_uri, "file:///o/error.pb");
                    assert_eq!(phase, ActionPhase::Failed);
                    assert!(retryable);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        std::fs::write(
            &error_pb,
            document(ErrorKind::User, container_error::Kind::NonRecoverable),
        )
        .unwrap();
        assert!(matches!(
            classify(&exited(0), dir.path(), "u"),
            Verdict::UserFailure {
                retryable: false,
                ..
            }
        ));
        std::fs::write(
            &error_pb,
            document(ErrorKind::System, container_error::Kind::Recoverable),
        )
        .unwrap();
        assert!(matches!(
            classify(&exited(0), dir.path(), "u"),
            Verdict::SystemFailure { .. }
        ));
        std::fs::write(&error_pb, b"\xff\xff\xff").unwrap();
        match classify(&exited(1), dir.path(), "u") {
            Verdict::SystemFailure { error } => assert_eq!(error.code, "BadErrorFile"),
            other => panic!("unexpected {other:?}"),
        }
        std::fs::write(&error_pb, b"").unwrap();
        match classify(&exited(1), dir.path(), "u") {
            Verdict::SystemFailure { error } => assert_eq!(error.code, "BadErrorFile"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn signals_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let killed = ExitCause::Exited(ExitStatus::from_raw(libc::SIGKILL));
        match classify(&killed, dir.path(), "u") {
            Verdict::SystemFailure { error } => {
                assert!(error.message.contains("SIGKILL"), "{}", error.message)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_unknown_status_is_judged_by_the_files() {
        let dir = tempfile::tempdir().unwrap();
        match classify(&ExitCause::EndedUnknown, dir.path(), "u") {
            Verdict::SystemFailure { error } => {
                assert_eq!(error.code, "ProcessCrashed");
                assert!(error.message.contains("unknown"), "{}", error.message);
            }
            other => panic!("unexpected {other:?}"),
        }
        std::fs::write(dir.path().join("outputs.pb"), b"").unwrap();
        assert_eq!(
            classify(&ExitCause::EndedUnknown, dir.path(), "u"),
            Verdict::Succeeded {
                output_uri: "u".into()
            }
        );
        std::fs::write(
            dir.path().join("error.pb"),
            document(ErrorKind::User, container_error::Kind::Recoverable),
        )
        .unwrap();
        assert!(matches!(
            classify(&ExitCause::EndedUnknown, dir.path(), "u"),
            Verdict::UserFailure { .. }
        ));
    }

    #[test]
    fn timeouts_and_oom_are_user_failures() {
        let dir = tempfile::tempdir().unwrap();
        let limit = |deadline| {
            ExitCause::TimedOut(AttemptLimit {
                limit: Duration::from_secs(2),
                deadline,
            })
        };
        match classify(&limit(true), dir.path(), "u") {
            Verdict::DeadlineExceeded { error } => assert_eq!(error.code, "DeadlineExceeded"),
            other => panic!("unexpected {other:?}"),
        }
        match classify(&limit(false), dir.path(), "u") {
            Verdict::UserFailure { error, phase, .. } => {
                assert_eq!(error.code, "TaskTimeout");
                assert_eq!(phase, ActionPhase::TimedOut);
            }
            other => panic!("unexpected {other:?}"),
        }
        let oom = ExitCause::OutOfMemory {
            used: 300 << 20,
            limit: 250 << 20,
        };
        match classify(&oom, dir.path(), "u") {
            Verdict::UserFailure { error, .. } => {
                assert_eq!(error.code, "OOMKilled");
                assert_eq!(error.kind, ErrorKind::User as i32);
                assert!(error.message.contains("300.0 MiB"), "{}", error.message);
                assert!(error.message.contains("250.0 MiB"), "{}", error.message);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn user_failure() -> Verdict {
        Verdict::UserFailure {
            error: ExecutionError::default(),
            phase: ActionPhase::Failed,
            retryable: true,
        }
    }

    fn system_failure() -> Verdict {
        Verdict::SystemFailure {
            error: ExecutionError::default(),
        }
    }

    #[test]
    fn user_retries_follow_the_task_budget() {
        assert_eq!(
            decide(user_failure(), &retries(2), budget(1, 0, 3), 0).next,
            NOW
        );
        assert_eq!(
            decide(user_failure(), &retries(2), budget(3, 0, 3), 0).next,
            NextStep::Finish(ActionPhase::Failed)
        );
        assert_eq!(
            decide(user_failure(), &retries(0), budget(1, 0, 3), 0).next,
            NextStep::Finish(ActionPhase::Failed)
        );
        let timeout = Verdict::UserFailure {
            error: ExecutionError::default(),
            phase: ActionPhase::TimedOut,
            retryable: true,
        };
        let final_error = Verdict::UserFailure {
            error: ExecutionError::default(),
            phase: ActionPhase::Failed,
            retryable: false,
        };
        assert_eq!(
            decide(final_error, &retries(2), budget(1, 0, 3), 0).next,
            NextStep::Finish(ActionPhase::Failed)
        );
        assert_eq!(
            decide(timeout, &retries(0), budget(1, 0, 3), 0).next,
            NextStep::Finish(ActionPhase::TimedOut)
        );
        let paced = TaskPolicy {
            retries: 3,
            backoff: Some(
                crate::policy::Backoff::new(Duration::from_secs(2), 3.0, Some(Duration::MAX))
                    .unwrap(),
            ),
            ..Default::default()
        };
        assert_eq!(
            decide(user_failure(), &paced, budget(2, 0, 3), 0).next,
            NextStep::Retry {
                system: false,
                delay: Duration::from_secs(6)
            }
        );
    }

    #[test]
    fn the_deadline_ends_the_action_whatever_retries_are_left() {
        let error = ExecutionError {
            message: "too slow".into(),
            ..Default::default()
        };
        let end = decide(
            Verdict::DeadlineExceeded { error },
            &retries(5),
            budget(1, 0, 3),
            0,
        );
        assert_eq!(end.next, NextStep::Finish(ActionPhase::TimedOut));
        assert_eq!(end.attempt_phase, ActionPhase::TimedOut);
        let mut squeezed = budget(1, 0, 3);
        squeezed.deadline_left = Some(Duration::ZERO);
        let end = decide(user_failure(), &retries(5), squeezed, 0);
        assert_eq!(end.next, NextStep::Finish(ActionPhase::TimedOut));
        let error = ExecutionError::decode(end.error.unwrap().as_slice()).unwrap();
        assert!(error.message.contains("deadline"), "{}", error.message);
    }

    #[test]
    fn system_retries_follow_the_backend_budget() {
        assert_eq!(
            decide(system_failure(), &retries(0), budget(1, 0, 3), 0).next,
            NextStep::Retry {
                system: true,
                delay: Duration::ZERO
            }
        );
        let last = decide(system_failure(), &retries(0), budget(1, 3, 3), 0);
        assert_eq!(last.next, NextStep::Finish(ActionPhase::Failed));
        let error = ExecutionError::decode(last.error.unwrap().as_slice()).unwrap();
        assert!(error.message.contains("gave up after 3 system retries"));
        assert_eq!(
            decide(
                Verdict::Interrupted("stopped".into()),
                &retries(0),
                budget(1, 3, 3),
                0
            )
            .next,
            NextStep::Requeue
        );
    }
}
