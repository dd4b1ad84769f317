//! Picking up where a previous backend instance stopped.
//!
//! Queued actions go back in the queue. An action that was running has lost its supervisor:
//! if its process is still alive (same pid and start time, so a recycled pid is never hit) it
//! is killed and runs again; if it had ended, what it left decides (complete outputs: it
//! succeeded and is kept). Neither uses any of the action's retries — the restart was not the
//! action's doing — so a run outlives any number of restarts. A re-executed parent
//! re-enqueues its children and finds their recorded state.

use std::sync::Arc;
use std::time::Duration;

use flyteidl2::flyteidl::common::ActionPhase;

use crate::engine::Engine;
use crate::error::BackendError;
use crate::executor::{conclude_lost_attempt, LostAttempt};
use crate::procfs;
use crate::store::ActionKind;

/// How long a killed leftover process may take to disappear before recovery moves on.
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub requeued: usize,
    pub relaunched: usize,
    pub killed: usize,
}

/// Kills a leftover process of a previous instance if it is still the same process.
async fn stop_leftover(process: &procfs::ProcessRef) -> bool {
    if !procfs::is_alive(process) {
        return false;
    }
    procfs::kill_group(process.pid);
    if !procfs::wait_gone(process, KILL_GRACE).await {
        tracing::warn!(
            pid = process.pid,
            "a leftover task process survived SIGKILL"
        );
    }
    true
}

pub async fn recover(engine: &Arc<Engine>) -> Result<Recovered, BackendError> {
    let mut summary = Recovered::default();
    // Local runs whose process died show as failed, not as running forever.
    engine
        .store
        .fail_orphaned_local_runs(&crate::journal::interrupted_error(), crate::clock::now_ms())?;
    // Aborted just before the previous instance died, but perhaps not yet killed.
    for record in engine.store.finished_actions_with_process()? {
        if let Some(process) = record.process {
            if stop_leftover(&process).await {
                summary.killed += 1;
            }
        }
        engine.store.clear_process(record.seq)?;
    }
    for record in engine.store.unfinished_actions()? {
        // Parents waiting for children they started before the restart still wait for them.
        engine.scheduler.track_child(&record);
        // A waiting condition keeps waiting, for what is left of its timeout.
        if let Some(condition) = crate::engine::condition::condition_action(&record) {
            engine.arm_condition_timeout(&record, &condition);
            continue;
        }
        // Traces are only recorded; their owner reports their end.
        if record.kind != ActionKind::Task {
            continue;
        }
        if record.phase == ActionPhase::Queued {
            engine.scheduler.enqueue(record.seq);
            summary.requeued += 1;
            continue;
        }
        if crate::executor::sleep::is_sleep(&record) {
            // No process was lost: the wait goes on, for what is left of it.
            crate::executor::sleep::start(engine, &record, record.attempts);
            continue;
        }
        let mut lost = LostAttempt::Ended(format!(
            "the backend restarted while attempt {} was running, and its process had ended \
             without a result; the action runs again",
            record.attempts
        ));
        if let Some(process) = record.process {
            if stop_leftover(&process).await {
                summary.killed += 1;
                lost = LostAttempt::Stopped(format!(
                    "the backend restarted while attempt {} was running; its process {} was \
                     stopped and the action runs again",
                    record.attempts, process.pid
                ));
            }
        }
        if record.attempts == 0 {
            // Never launched here: its phase was reported from outside (Update), so whoever
            // reported it owns it.
            continue;
        }
        conclude_lost_attempt(engine, &record, lost);
        summary.relaunched += 1;
    }
    Ok(summary)
}
