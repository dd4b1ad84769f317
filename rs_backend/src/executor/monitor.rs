//! Supervising one attempt's process: its exit, its timeout, its memory, and requests to
//! stop it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::child::{ChildProc, Ended};
use super::outcome::{classify, ExitCause};
use super::{conclude_attempt, follow_up, Control};
use crate::engine::Engine;
use crate::policy::{AttemptLimit, TaskPolicy};
use crate::procfs;
use crate::store::ActionRecord;

/// How often a memory-limited process group's memory is measured.
const MEMORY_POLL: Duration = Duration::from_millis(100);

pub struct Job {
    /// The action as it was when this attempt started.
    pub record: ActionRecord,
    pub attempt: u32,
    /// The process group (the process leads it); 0 until a forked process is known.
    pub pgid: i32,
    /// How long the attempt may run (its timeout or what is left of the action's deadline).
    pub limit: Option<AttemptLimit>,
    pub memory_limit: Option<u64>,
    pub policy: TaskPolicy,
    pub output_dir: PathBuf,
    pub output_uri: String,
}

pub async fn supervise(
    engine: Arc<Engine>,
    job: Job,
    mut child: ChildProc,
    mut control: watch::Receiver<Control>,
) {
    let Some(cause) = watch_process(&mut child, &job, &mut control).await else {
        // Abandoned: behave as if this backend had died on the spot.
        return;
    };
    // Whatever the task left behind in its group goes with it.
    procfs::kill_group(job.pgid);
    conclude(&engine, &job, cause);
}

/// Records how the attempt ended, frees its slot and starts what follows.
pub fn conclude(engine: &Arc<Engine>, job: &Job, cause: ExitCause) {
    let verdict = classify(&cause, &job.output_dir, &job.output_uri);
    let updated = conclude_attempt(engine, &job.record, job.attempt, verdict, &job.policy);
    engine.scheduler.finished(job.record.seq);
    if let Some(updated) = updated {
        follow_up(engine, &updated);
    }
    engine.scheduler.wake();
}

pub(super) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The backend's next request to stop an attempt: Abort, Shutdown or Abandon (never Run).
/// Pending forever once nobody can send one. Cancel safe.
pub(super) async fn stop_requested(control: &mut watch::Receiver<Control>) -> Control {
    loop {
        if control.changed().await.is_err() {
            return std::future::pending().await;
        }
        let request = *control.borrow_and_update();
        if request != Control::Run {
            return request;
        }
    }
}

async fn kill_and_reap(child: &mut ChildProc, pgid: i32) {
    procfs::kill_group(pgid);
    let _ = child.wait().await;
}

/// Waits for the process to end or be ended. None means "abandoned".
async fn watch_process(
    child: &mut ChildProc,
    job: &Job,
    control: &mut watch::Receiver<Control>,
) -> Option<ExitCause> {
    // checked: an absurd timeout from a client means "no deadline", not an overflow panic.
    let deadline = job.limit.and_then(|l| Instant::now().checked_add(l.limit));
    let mut ticker = tokio::time::interval(MEMORY_POLL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            status = child.wait() => {
                return match (status, *control.borrow()) {
                    (_, Control::Abandon) => None,
                    (_, Control::Abort) => Some(ExitCause::Aborted),
                    (_, Control::Shutdown) => Some(ExitCause::Shutdown),
                    (Ok(Ended::Status(status)), Control::Run) => Some(ExitCause::Exited(status)),
                    (Ok(Ended::Unknown), Control::Run) => Some(ExitCause::EndedUnknown),
                    (Err(err), Control::Run) => Some(ExitCause::LaunchFailed(format!(
                        "waiting for the task process failed: {err}"
                    ))),
                };
            }
            _ = sleep_until(deadline) => {
                kill_and_reap(child, job.pgid).await;
                return job.limit.map(ExitCause::TimedOut);
            }
            _ = ticker.tick(), if job.memory_limit.is_some() => {
                let limit = job.memory_limit.unwrap_or(u64::MAX);
                let used = child.memory_bytes(job.pgid);
                if used > limit {
                    kill_and_reap(child, job.pgid).await;
                    return Some(ExitCause::OutOfMemory { used, limit });
                }
            }
            request = stop_requested(control) => {
                let cause = match request {
                    Control::Abandon => return None,
                    Control::Shutdown => ExitCause::Shutdown,
                    Control::Abort | Control::Run => ExitCause::Aborted,
                };
                kill_and_reap(child, job.pgid).await;
                return Some(cause);
            }
        }
    }
}
