//! Running task actions as OS processes: a FIFO queue, a bounded number of computing
//! processes, and one supervising task per process.
//!
//! A parent that waits for unfinished task children does not hold one of the `max_parallel`
//! slots; otherwise a tree deeper than `max_parallel` would deadlock with every slot held by a
//! waiting parent.

mod child;
pub mod command;
pub mod forkserver;
mod launch;
mod monitor;
pub mod outcome;
pub mod pool;
mod pooled;
pub mod sleep;
pub mod spec;
pub mod worker;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flyteidl2::flyteidl::common::ActionPhase;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::engine::Engine;
use crate::names::RunKey;
use crate::phase;
use crate::policy::{Budget, TaskPolicy};
use crate::procfs;
use crate::store::{ActionRecord, NextStep};
use outcome::{decide, Verdict};

/// What the backend asks of a supervised process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Run,
    /// Kill it; the action is already ABORTED.
    Abort,
    /// Kill it and queue the action again for the next start of the backend.
    Shutdown,
    /// Leave it alone and stop supervising, as if the backend had died (used by tests).
    Abandon,
}

struct Running {
    run: RunKey,
    name: String,
    /// 0 while a fork server has not yet answered with the process, and for an attempt on a
    /// reusable worker (which is not the attempt's to kill).
    pgid: i32,
    /// Runs on a reusable worker: its pool bounds it, not `max_parallel`.
    pooled: bool,
    control: watch::Sender<Control>,
    task: Option<JoinHandle<()>>,
}

struct SchedState {
    queue: VecDeque<i64>,
    queued: HashSet<i64>,
    running: HashMap<i64, Running>,
    accepting: bool,
}

pub struct Scheduler {
    state: Mutex<SchedState>,
    /// The unfinished task children of each parent action (by seq). A parent with any is
    /// waiting, not computing. Kept from every published change (and, after a restart, from
    /// the store), so that counting them costs no query per dispatch.
    children: Mutex<HashMap<(RunKey, String), HashSet<i64>>>,
    /// Queued by code that may run while `state` is locked (the dispatcher's own launches):
    /// moved to the queue by the next dispatch.
    soon: Mutex<Vec<i64>>,
    /// When queued attempts run out of time to start: (when, seq, attempts before it).
    queue_limits: Mutex<BinaryHeap<Reverse<(Instant, i64, u32)>>>,
    wake: Notify,
    max_parallel: usize,
}

impl Scheduler {
    pub fn new(max_parallel: usize) -> Self {
        Self {
            state: Mutex::new(SchedState {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                running: HashMap::new(),
                accepting: true,
            }),
            children: Mutex::new(HashMap::new()),
            soon: Mutex::new(Vec::new()),
            queue_limits: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            max_parallel,
        }
    }

    fn state(&self) -> MutexGuard<'_, SchedState> {
        // The state stays consistent between statements, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Queues an action (by store sequence number) for its next attempt.
    pub fn enqueue(&self, seq: i64) {
        {
            let mut state = self.state();
            if !state.accepting || !state.queued.insert(seq) {
                return;
            }
            state.queue.push_back(seq);
        }
        self.wake();
    }

    /// Follows a task action's state: while unfinished, it counts among its parent's children.
    pub fn track_child(&self, record: &ActionRecord) {
        if record.kind != crate::store::ActionKind::Task {
            return;
        }
        let Some(parent) = &record.parent else {
            return;
        };
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        let key = (record.run.clone(), parent.clone());
        if phase::is_terminal(record.phase) {
            if let Some(active) = children.get_mut(&key) {
                active.remove(&record.seq);
                if active.is_empty() {
                    children.remove(&key);
                }
            }
        } else {
            children.entry(key).or_default().insert(record.seq);
        }
    }

    /// Whether the action has unfinished task children (it waits for them).
    pub fn waits_for_children(&self, run: &RunKey, name: &str) -> bool {
        let children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        // The key is owned; looking it up needs one (a clone per running parent and dispatch,
        // far cheaper than the query it replaces).
        children.contains_key(&(run.clone(), name.to_string()))
    }

    /// Queues an action ahead of every other (one that waited for a reusable worker's slot).
    pub fn enqueue_front(&self, seq: i64) {
        {
            let mut state = self.state();
            if !state.accepting || !state.queued.insert(seq) {
                return;
            }
            state.queue.push_front(seq);
        }
        self.wake();
    }

    /// Queues an action without taking the scheduler's lock (see `soon`).
    pub fn enqueue_soon(&self, seq: i64) {
        self.soon
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(seq);
        self.wake();
    }

    /// The attempt after `attempts` of action `seq` must start within `limit`.
    pub fn limit_queue_time(&self, seq: i64, attempts: u32, limit: Duration) {
        let Some(when) = Instant::now().checked_add(limit) else {
            return;
        };
        self.queue_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Reverse((when, seq, attempts)));
        self.wake();
    }

    /// The earliest queue limit still to come.
    fn next_queue_limit(&self) -> Option<Instant> {
        let limits = self.queue_limits.lock().unwrap_or_else(|p| p.into_inner());
        limits.peek().map(|Reverse((when, _, _))| *when)
    }

    /// Queue limits that have passed, as (seq, attempts).
    fn passed_queue_limits(&self) -> Vec<(i64, u32)> {
        let now = Instant::now();
        let mut limits = self.queue_limits.lock().unwrap_or_else(|p| p.into_inner());
        let mut passed = Vec::new();
        while let Some(Reverse((when, seq, attempts))) = limits.peek().copied() {
            if when > now {
                break;
            }
            limits.pop();
            passed.push((seq, attempts));
        }
        passed
    }

    /// Takes an action out of the queue (its attempt is being concluded without running).
    fn unqueue(&self, seq: i64) {
        let mut state = self.state();
        if state.queued.remove(&seq) {
            state.queue.retain(|queued| *queued != seq);
        }
    }

    /// Kills a running action's process group right away and tells its monitor why.
    pub fn abort_process(&self, seq: i64) {
        let state = self.state();
        if let Some(running) = state.running.get(&seq) {
            procfs::kill_group(running.pgid);
            running.control.send_replace(Control::Abort);
        }
    }

    /// A forked attempt's process group became known.
    fn set_pgid(&self, seq: i64, pgid: i32) {
        if let Some(running) = self.state().running.get_mut(&seq) {
            running.pgid = pgid;
        }
    }

    fn finished(&self, seq: i64) {
        self.state().running.remove(&seq);
    }

    /// Stops launching and hands `control` to every supervised process; returns the monitor
    /// tasks to wait for.
    pub fn stop(&self, control: Control) -> Vec<JoinHandle<()>> {
        let mut state = self.state();
        state.accepting = false;
        state.queue.clear();
        state.queued.clear();
        let mut handles = Vec::new();
        for running in state.running.values_mut() {
            running.control.send_replace(control);
            handles.extend(running.task.take());
        }
        handles
    }
}

/// Launches queued actions whenever something changes, until the backend stops.
pub async fn run_dispatcher(engine: Arc<Engine>) {
    let mut stop = engine.stop_signal();
    loop {
        if *stop.borrow() {
            return;
        }
        for (seq, attempts) in engine.scheduler.passed_queue_limits() {
            launch::time_out_queued(&engine, seq, attempts);
        }
        dispatch(&engine);
        let next_limit = engine.scheduler.next_queue_limit();
        tokio::select! {
            _ = engine.scheduler.wake.notified() => {}
            _ = monitor::sleep_until(next_limit.map(tokio::time::Instant::from_std)) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

fn dispatch(engine: &Arc<Engine>) {
    let scheduler = &engine.scheduler;
    let mut ended = Vec::new();
    {
        let mut state = scheduler.state();
        if !state.accepting {
            return;
        }
        let soon = std::mem::take(&mut *scheduler.soon.lock().unwrap_or_else(|p| p.into_inner()));
        for seq in soon {
            if state.queued.insert(seq) {
                state.queue.push_back(seq);
            }
        }
        let mut busy = state
            .running
            .values()
            .filter(|r| !r.pooled && !scheduler.waits_for_children(&r.run, &r.name))
            .count();
        while busy < scheduler.max_parallel {
            let Some(seq) = state.queue.pop_front() else {
                break;
            };
            state.queued.remove(&seq);
            match launch::launch(engine, seq) {
                launch::Launched::Started(running) => {
                    if !running.pooled {
                        busy += 1;
                    }
                    state.running.insert(seq, running);
                }
                launch::Launched::Skipped => {}
                launch::Launched::Failed(record, delay) => {
                    if record.phase == ActionPhase::Queued && !delay.is_zero() {
                        // A system retry's backoff: a launch that keeps failing (a read-only
                        // data dir) waits instead of spending its budget at once.
                        enqueue_later(engine, seq, delay);
                    } else if record.phase == ActionPhase::Queued && state.queued.insert(seq) {
                        state.queue.push_back(seq);
                    } else if phase::is_terminal(record.phase) {
                        ended.push(*record);
                    }
                }
            }
        }
    }
    // Outside the scheduler lock: aborting descendants signals their processes through it.
    for record in ended {
        abort_orphans(engine, &record);
    }
}

/// Records how an attempt ended and what follows. Returns the action if it changed, and how
/// long its next attempt waits.
fn conclude_attempt(
    engine: &Arc<Engine>,
    record: &ActionRecord,
    attempt: u32,
    verdict: Verdict,
    policy: &TaskPolicy,
) -> Option<Concluded> {
    let now = now_ms();
    let budget = Budget {
        user_attempts: record.user_attempts(),
        system_retries_used: record.system_retries,
        system_retries_max: engine.config.system_retries,
        deadline_left: policy.deadline_left(record.created_ms, now),
    };
    let end = decide(verdict, policy, budget, now);
    let retry_delay = match end.next {
        NextStep::Retry { delay, .. } => delay,
        _ => Duration::ZERO,
    };
    match engine.store.finish_attempt(record.seq, attempt, &end) {
        Ok(Some(updated)) => Some(recorded(engine, updated, retry_delay, policy.max_queued)),
        Ok(None) => None,
        Err(err) => {
            tracing::error!(%err, action = %record.name, run = %record.run,
                "could not record the end of an attempt; trying again until it can be");
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let later = EndToRecord {
                    seq: record.seq,
                    attempt,
                    end,
                    retry_delay,
                    max_queued: policy.max_queued,
                };
                runtime.spawn(record_end_later(engine.clone(), later));
            }
            None
        }
    }
}

/// Publishes an attempt's recorded end.
fn recorded(
    engine: &Engine,
    updated: ActionRecord,
    retry_delay: Duration,
    max_queued: Option<Duration>,
) -> Concluded {
    // Recorded before the success is published: a caller that sees it and calls the task
    // again gets the cached outputs.
    engine.cache_outputs(&updated);
    engine.publish(updated.clone());
    Concluded {
        record: updated,
        retry_delay,
        max_queued,
    }
}

/// An attempt's end the store could not take (a full disk, a read-only file system).
struct EndToRecord {
    seq: i64,
    attempt: u32,
    end: crate::store::AttemptEnd,
    retry_delay: Duration,
    max_queued: Option<Duration>,
}

/// Waits between tries to record an end: long enough not to spin on a full disk, short
/// enough that work goes on soon after space comes back.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(500);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(5);

/// Records the end once the store takes it, then carries on as if it had the first time; the
/// action stays running meanwhile (its process is gone; nothing runs twice). A backend that
/// stops first leaves it to recovery, which finds the attempt's files.
async fn record_end_later(engine: Arc<Engine>, later: EndToRecord) {
    let mut stop = engine.stop_signal();
    let mut wait = RECORD_RETRY_FIRST;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match engine
            .store
            .finish_attempt(later.seq, later.attempt, &later.end)
        {
            Ok(Some(updated)) => {
                tracing::info!(action = %updated.name, run = %updated.run, "recorded the end of an attempt after all");
                let concluded = recorded(&engine, updated, later.retry_delay, later.max_queued);
                follow_up(&engine, &concluded);
                engine.scheduler.wake();
                return;
            }
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(%err, seq = later.seq, "the end of an attempt still cannot be recorded");
                wait = (wait * 2).min(RECORD_RETRY_MAX);
            }
        }
    }
}

/// An action after the end of an attempt was recorded.
struct Concluded {
    record: ActionRecord,
    /// How long a queued retry waits before it may start (the task's backoff).
    retry_delay: Duration,
    /// How long a queued retry may then wait in the queue.
    max_queued: Option<Duration>,
}

/// After an attempt's end was recorded: queue the retry (after its backoff) or clean up
/// below a finished action.
fn follow_up(engine: &Arc<Engine>, concluded: &Concluded) {
    let record = &concluded.record;
    if record.phase == ActionPhase::Queued {
        if let Some(limit) = concluded.max_queued {
            engine.scheduler.limit_queue_time(
                record.seq,
                record.attempts,
                concluded.retry_delay.saturating_add(limit),
            );
        }
        enqueue_later(engine, record.seq, concluded.retry_delay);
    } else if phase::is_terminal(record.phase) {
        abort_orphans(engine, record);
    }
}

/// Queues an action after `delay` (at once without one). Only the wait is lost if the backend
/// stops meanwhile: recovery queues the action again when it restarts.
pub(crate) fn enqueue_later(engine: &Arc<Engine>, seq: i64, delay: Duration) {
    if delay.is_zero() {
        engine.scheduler.enqueue(seq);
        return;
    }
    let engine = engine.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        engine.scheduler.enqueue(seq);
    });
}

/// Nothing waits for the children of a finished action any more.
fn abort_orphans(engine: &Engine, record: &ActionRecord) {
    let reason = format!(
        "parent action {} finished ({})",
        record.name,
        record.phase.as_str_name()
    );
    if let Err(err) = engine.abort_descendants(&record.run, &record.name, &reason) {
        tracing::error!(%err, action = %record.name, "could not abort the children of a finished action");
    }
}

/// How recovery found an attempt that was running when the previous backend died.
/// Either way the files it left decide: outputs that are complete mean it succeeded (kept,
/// not run again); an error file is the task's own failure; nothing at all means it died with
/// the backend (or was stopped), and it runs again, using no retry.
pub enum LostAttempt {
    /// Its process was still running and was stopped.
    Stopped(String),
    /// Its process had ended.
    Ended(String),
}

/// Used by recovery: concludes an attempt the previous backend could not see end.
pub fn conclude_lost_attempt(engine: &Arc<Engine>, record: &ActionRecord, lost: LostAttempt) {
    let policy = crate::views::task_action(record)
        .and_then(|t| spec::ExecSpec::from_task(&t).ok())
        .map(|s| s.policy)
        .unwrap_or_default();
    // Either way the files decide: a process stopped at restart may already have written
    // complete outputs (it was on its way out), and those are kept too.
    let reason = match lost {
        LostAttempt::Stopped(reason) | LostAttempt::Ended(reason) => reason,
    };
    let files =
        crate::layout::attempt_prefix(&record.run_output_base, &record.name, record.attempts);
    let verdict = match files {
        Ok((dir, uri)) => match outcome::classify(&outcome::ExitCause::EndedUnknown, &dir, &uri) {
            // Neither outputs nor an error: no sign the task itself failed.
            Verdict::SystemFailure { .. } => Verdict::Interrupted(reason),
            decided => decided,
        },
        Err(_) => Verdict::Interrupted(reason),
    };
    if let Some(concluded) = conclude_attempt(engine, record, record.attempts, verdict, &policy) {
        follow_up(engine, &concluded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ActionKind;

    fn child(name: &str, kind: ActionKind, phase: ActionPhase) -> ActionRecord {
        let (_dir, store) = crate::store::tests::open();
        let root = crate::store::tests::create(&store, "r1");
        let mut action = crate::store::tests::new_action(&root.run, name, Some("a0"), kind);
        action.phase = phase;
        store.insert_action(&action, 1).unwrap().unwrap()
    }

    #[test]
    fn a_parent_waits_while_a_task_child_is_unfinished() {
        let scheduler = Scheduler::new(1);
        let queued = child("c1", ActionKind::Task, ActionPhase::Queued);
        let run = queued.run.clone();
        assert!(!scheduler.waits_for_children(&run, "a0"));
        scheduler.track_child(&queued);
        // Traces run inside their parent: they never make it wait.
        scheduler.track_child(&child("t1", ActionKind::Trace, ActionPhase::Running));
        let mut running = queued.clone();
        running.phase = ActionPhase::Running;
        scheduler.track_child(&running);
        assert!(scheduler.waits_for_children(&run, "a0"));
        let mut done = queued.clone();
        done.phase = ActionPhase::Succeeded;
        scheduler.track_child(&done);
        assert!(!scheduler.waits_for_children(&run, "a0"));
        // Seen twice, counted once.
        scheduler.track_child(&done);
        assert!(!scheduler.waits_for_children(&run, "a0"));
    }
}
