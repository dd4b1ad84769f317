//! Supervising one attempt that runs on a reusable worker: its answer, its timeout, and
//! requests to stop it. The worker is shared, so stopping an attempt means asking the worker
//! to cancel it; a worker that cannot (its code does not yield) is killed, and the other
//! attempts it ran are retried as system failures.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::monitor::{conclude, sleep_until, stop_requested, Job};
use super::outcome::ExitCause;
use super::pool::Lease;
use super::worker::{AttemptEnd, Gone};
use super::Control;
use crate::engine::Engine;

/// How long a cancelled attempt may take to stop before its worker is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

pub async fn supervise(
    engine: Arc<Engine>,
    job: Job,
    lease: Lease,
    id: u64,
    mut end: oneshot::Receiver<AttemptEnd>,
    mut control: watch::Receiver<Control>,
) {
    let deadline = job.limit.and_then(|l| Instant::now().checked_add(l.limit));
    let (cause, stuck) = tokio::select! {
        answer = &mut end => from_answer(answer),
        _ = sleep_until(deadline) => {
            let stuck = cancel(&lease, id, &mut end, "its timeout").await;
            (job.limit.map(ExitCause::TimedOut).unwrap_or(ExitCause::Aborted), stuck)
        }
        request = stop_requested(&mut control) => {
            let (cause, why) = match request {
                // As if the backend had died: the worker finishes the attempt on its own.
                Control::Abandon => return,
                Control::Shutdown => (ExitCause::Shutdown, "the backend's shutdown"),
                Control::Abort | Control::Run => (ExitCause::Aborted, "an abort"),
            };
            let stuck = cancel(&lease, id, &mut end, why).await;
            (cause, stuck)
        }
    };
    if let Some(next) = engine.pools.release(&lease, stuck) {
        engine.scheduler.enqueue_front(next);
    }
    conclude(&engine, &job, cause);
}

fn from_answer(answer: Result<AttemptEnd, oneshot::error::RecvError>) -> (ExitCause, bool) {
    match answer {
        Ok(AttemptEnd::Done { stuck }) => (ExitCause::Exited(ExitStatus::from_raw(0)), stuck),
        Ok(AttemptEnd::Lost(Gone {
            out_of_memory: Some((used, limit)),
            ..
        })) => (ExitCause::OutOfMemory { used, limit }, false),
        Ok(AttemptEnd::Lost(gone)) => (ExitCause::WorkerLost(gone.reason), false),
        Err(_) => (
            ExitCause::WorkerLost("the reusable worker's answer was lost".into()),
            false,
        ),
    }
}

/// Asks the worker to stop attempt `id` and waits for it. Returns whether the attempt's
/// code still runs (the worker must then not be given more work).
async fn cancel(
    lease: &Lease,
    id: u64,
    end: &mut oneshot::Receiver<AttemptEnd>,
    why: &str,
) -> bool {
    lease.worker.cancel(id);
    match tokio::time::timeout(CANCEL_GRACE, end).await {
        Ok(Ok(AttemptEnd::Done { stuck })) => stuck,
        Ok(_) => false,
        Err(_) => {
            lease.worker.kill(Gone {
                reason: format!(
                    "the {} was killed: an attempt it ran did not stop within {}s of {why}",
                    lease.worker.name,
                    CANCEL_GRACE.as_secs()
                ),
                out_of_memory: None,
            });
            false
        }
    }
}
