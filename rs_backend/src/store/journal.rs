//! Runs executed in-process (local mode) recorded in the same tables as the backend's own runs,
//! so the services list and show them alike. Their actions never enter the backend's queue: the
//! run belongs to the process named by `owner_pid`/`owner_start`, and when that process is gone
//! before the run finished, its unfinished actions are failed (the run can be resumed by name).

use flyteidl2::flyteidl::common::ActionPhase;
use rusqlite::{params, OptionalExtension, Transaction};

use super::{terminal_phase_list, CachedStatements, Ctx, Store, StoreError};
use crate::names::RunKey;
use crate::procfs::ProcessRef;
use crate::store::ActionKind;

/// `runs.executor` of a run whose actions run in the process that started it (the backend's
/// own runs have 0).
pub const EXECUTOR_IN_PROCESS: i64 = 1;

/// An action of an in-process run entering the queue.
#[derive(Clone, Debug)]
pub struct QueuedAction {
    pub parent: Option<String>,
    pub group: String,
    pub kind: ActionKind,
    pub task_name: String,
    pub inputs: Option<Vec<u8>>,
    pub at_ms: i64,
}

/// How an action of an in-process run ended.
#[derive(Clone, Debug)]
pub struct FinishedAction {
    pub phase: ActionPhase,
    /// Serialized `core.ExecutionError`.
    pub error: Option<Vec<u8>>,
    pub outputs: Option<Vec<u8>>,
    pub cache_hit: bool,
    pub at_ms: i64,
}

/// One change to an in-process run, applied in order within a batch. The large variants are
/// boxed: a run's pending changes are a queue of these, and a fan-out queues thousands.
#[derive(Clone, Debug)]
pub enum JournalEvent {
    Queued {
        name: String,
        action: Box<QueuedAction>,
    },
    Started {
        name: String,
        attempt: u32,
        at_ms: i64,
    },
    Finished {
        name: String,
        outcome: Box<FinishedAction>,
    },
}

/// How an in-process run was opened.
#[derive(Debug)]
pub enum Opened {
    Created,
    /// The run existed (its previous process is gone): the outputs of every action that
    /// succeeded, by action name.
    Resumed {
        succeeded: Vec<(String, Vec<u8>)>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run {0} exists and was not run in local mode; choose another name")]
    NotInProcess(String),
    #[error(
        "run {run} is being run by another process (pid {pid}); wait for it or choose another name"
    )]
    Busy { run: String, pid: i32 },
    #[error("run {0} exists with other inputs; resuming it needs the inputs it was started with")]
    OtherInputs(String),
}

/// What the root action of a new in-process run is.
pub struct NewInProcessRun<'a> {
    pub key: &'a RunKey,
    pub owner: ProcessRef,
    pub spec: &'a [u8],
    pub task_name: &'a str,
    pub inputs: &'a [u8],
    pub run_output_base: &'a str,
    /// Serialized `core.ExecutionError` for actions a previous process left unfinished.
    pub interrupted: &'a [u8],
    pub now_ms: i64,
}

impl Store {
    /// Creates an in-process run with its root action, or takes over one whose process is gone
    /// (same root inputs required).
    pub fn open_in_process_run(&self, new: &NewInProcessRun<'_>) -> Result<Opened, OpenError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin open local run")?;
        let key = new.key;
        let existing: Option<(i64, Option<i32>, Option<i64>)> = tx
            .query_one(
                "SELECT executor, owner_pid, owner_start FROM runs
                 WHERE org = ?1 AND project = ?2 AND domain = ?3 AND name = ?4",
                params![key.org, key.project, key.domain, key.name],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .ctx("read run")?;
        let opened = match existing {
            None => {
                tx.execute(
                    "INSERT INTO runs (org, project, domain, name, run_spec, created_ms, executor,
                                       owner_pid, owner_start)
                     VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8)",
                    params![
                        key.org,
                        key.project,
                        key.domain,
                        key.name,
                        new.now_ms,
                        EXECUTOR_IN_PROCESS,
                        new.owner.pid,
                        owner_start(&new.owner),
                    ],
                )
                .ctx("insert local run")?;
                tx.execute(
                    "INSERT INTO actions (org, project, domain, run, name, parent, grp, kind, spec,
                         task_name, task_version, input_uri, run_output_base, phase, attempts,
                         created_ms, inputs)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, '', ?6, ?7, ?8, '', '', ?9, ?10, 0, ?11, ?12)",
                    params![
                        key.org,
                        key.project,
                        key.domain,
                        key.name,
                        crate::ROOT_ACTION,
                        ActionKind::Task.to_db(),
                        new.spec,
                        new.task_name,
                        new.run_output_base,
                        ActionPhase::Queued as i32,
                        new.now_ms,
                        new.inputs,
                    ],
                )
                .ctx("insert local root action")?;
                Opened::Created
            }
            Some((executor, _, _)) if executor != EXECUTOR_IN_PROCESS => {
                return Err(OpenError::NotInProcess(key.name.clone()))
            }
            Some((_, pid, start)) => {
                if let Some(owner) = owner_of(pid, start) {
                    if owner != new.owner && crate::procfs::is_alive(&owner) {
                        return Err(OpenError::Busy {
                            run: key.name.clone(),
                            pid: owner.pid,
                        });
                    }
                }
                let stored: Option<Vec<u8>> = tx
                    .query_one(
                        "SELECT inputs FROM actions WHERE org = ?1 AND project = ?2 AND domain = ?3
                             AND run = ?4 AND name = ?5",
                        params![
                            key.org,
                            key.project,
                            key.domain,
                            key.name,
                            crate::ROOT_ACTION
                        ],
                        |row| row.get(0),
                    )
                    .optional()
                    .ctx("read local root inputs")?
                    .flatten();
                if stored.as_deref().unwrap_or_default() != new.inputs {
                    return Err(OpenError::OtherInputs(key.name.clone()));
                }
                tx.execute(
                    "UPDATE runs SET owner_pid = ?5, owner_start = ?6
                     WHERE org = ?1 AND project = ?2 AND domain = ?3 AND name = ?4",
                    params![
                        key.org,
                        key.project,
                        key.domain,
                        key.name,
                        new.owner.pid,
                        owner_start(&new.owner)
                    ],
                )
                .ctx("take over local run")?;
                // What the previous process left unfinished is over; the actions this one
                // calls again are queued anew.
                fail_unfinished(&tx, key, new.interrupted, new.now_ms)?;
                let mut stmt = tx
                    .prepare(
                        "SELECT name, outputs FROM actions WHERE org = ?1 AND project = ?2
                             AND domain = ?3 AND run = ?4 AND phase = ?5 AND outputs IS NOT NULL",
                    )
                    .ctx("prepare succeeded actions query")?;
                let succeeded = stmt
                    .query_map(
                        params![
                            key.org,
                            key.project,
                            key.domain,
                            key.name,
                            ActionPhase::Succeeded as i32
                        ],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .ctx("query succeeded actions")?
                    .collect::<Result<Vec<_>, _>>()
                    .ctx("read succeeded actions")?;
                drop(stmt);
                Opened::Resumed { succeeded }
            }
        };
        tx.commit().ctx("commit open local run")?;
        Ok(opened)
    }

    /// The inputs and outputs recorded with an action (local runs keep them inline).
    #[allow(clippy::type_complexity)]
    pub fn inline_data(&self, seq: i64) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), StoreError> {
        self.conn()
            .query_one(
                "SELECT inputs, outputs FROM actions WHERE seq = ?1",
                params![seq],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .ctx("read recorded inputs and outputs")
            .map(Option::unwrap_or_default)
    }

    /// Writes changes of one in-process run's actions in a single transaction; `spec_of`
    /// gives the serialized spec recorded for a task's actions.
    pub fn apply_journal<'a>(
        &self,
        key: &RunKey,
        run_output_base: &str,
        changes: &[(String, ActionChange)],
        spec_of: impl Fn(&str) -> &'a [u8],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin journal batch")?;
        for (name, change) in changes {
            apply(&tx, key, run_output_base, name, change, &spec_of)?;
        }
        tx.commit().ctx("commit journal batch")
    }

    /// Ends this process's ownership of an in-process run: whatever it left unfinished
    /// (actions abandoned after a timeout) is failed with `error`.
    pub fn release_in_process_run(
        &self,
        run: &RunKey,
        error: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin release local run")?;
        fail_unfinished(&tx, run, error, now_ms)?;
        release(&tx, run)?;
        tx.commit().ctx("commit release local run")
    }

    /// Fails the unfinished actions of in-process runs whose process is gone (killed before
    /// the run ended). Returns how many runs were concerned.
    pub fn fail_orphaned_local_runs(&self, error: &[u8], now_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin orphan check")?;
        // A local run is owned while its process records it; a clean end releases it.
        let owners: Vec<(RunKey, Option<ProcessRef>)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT org, project, domain, name, owner_pid, owner_start FROM runs
                     WHERE executor = {EXECUTOR_IN_PROCESS} AND owner_pid IS NOT NULL"
                ))
                .ctx("prepare orphan query")?;
            let rows = stmt
                .query_map([], |row| {
                    let run = RunKey {
                        org: row.get(0)?,
                        project: row.get(1)?,
                        domain: row.get(2)?,
                        name: row.get(3)?,
                    };
                    Ok((run, owner_of(row.get(4)?, row.get(5)?)))
                })
                .ctx("query orphans")?;
            rows.collect::<Result<Vec<_>, _>>().ctx("read orphans")?
        };
        let mut failed = 0;
        for (run, owner) in owners {
            if owner.is_some_and(|owner| crate::procfs::is_alive(&owner)) {
                continue;
            }
            fail_unfinished(&tx, &run, error, now_ms)?;
            release(&tx, &run)?;
            failed += 1;
        }
        tx.commit().ctx("commit orphan check")?;
        Ok(failed)
    }
}

/// Ends every unfinished action (and attempt) of an in-process run as FAILED with `error`.
fn fail_unfinished(
    tx: &Transaction<'_>,
    run: &RunKey,
    error: &[u8],
    now_ms: i64,
) -> Result<(), StoreError> {
    // Found through the index of unfinished actions, then ended one by one: usually none.
    let unfinished: Vec<i64> = {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT seq FROM actions WHERE phase NOT IN ({}) AND org = ?1 AND project = ?2
                     AND domain = ?3 AND run = ?4",
                terminal_phase_list()
            ))
            .ctx("prepare unfinished actions query")?;
        let rows = stmt
            .query_map(params![run.org, run.project, run.domain, run.name], |row| {
                row.get(0)
            })
            .ctx("query unfinished actions")?;
        rows.collect::<Result<Vec<_>, _>>()
            .ctx("read unfinished actions")?
    };
    for seq in unfinished {
        tx.execute(
            "UPDATE attempts SET phase = ?2, ended_ms = ?3, error = ?4
             WHERE action_seq = ?1 AND ended_ms IS NULL",
            params![seq, ActionPhase::Failed as i32, now_ms, error],
        )
        .ctx("close interrupted attempts")?;
        tx.execute(
            "UPDATE actions SET phase = ?2, error = ?3, ended_ms = ?4, version = version + 1
             WHERE seq = ?1",
            params![seq, ActionPhase::Failed as i32, error, now_ms],
        )
        .ctx("fail interrupted actions")?;
    }
    Ok(())
}

fn release(tx: &Transaction<'_>, run: &RunKey) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE runs SET owner_pid = NULL, owner_start = NULL
         WHERE org = ?1 AND project = ?2 AND domain = ?3 AND name = ?4",
        params![run.org, run.project, run.domain, run.name],
    )
    .ctx("release local run")?;
    Ok(())
}

fn owner_start(owner: &ProcessRef) -> i64 {
    i64::try_from(owner.start_ticks).unwrap_or(i64::MAX)
}

fn owner_of(pid: Option<i32>, start: Option<i64>) -> Option<ProcessRef> {
    Some(ProcessRef {
        pid: pid?,
        start_ticks: u64::try_from(start?).ok()?,
    })
}

/// Everything recorded about one action since it was last written, folded: an action that
/// was queued, ran and finished in between is written once.
#[derive(Debug, Default)]
pub struct ActionChange {
    queued: Option<Box<QueuedAction>>,
    /// Attempts started: (number, when).
    attempts: Vec<(u32, i64)>,
    finished: Option<Box<FinishedAction>>,
}

impl ActionChange {
    /// Adds a later event of the same action; returns the event's action name.
    pub fn fold(&mut self, event: JournalEvent) -> String {
        match event {
            JournalEvent::Queued { name, action } => {
                self.queued = Some(action);
                name
            }
            JournalEvent::Started {
                name,
                attempt,
                at_ms,
            } => {
                self.attempts.push((attempt, at_ms));
                name
            }
            JournalEvent::Finished { name, outcome } => {
                self.finished = Some(outcome);
                name
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// The task this change queues its action for, if it does.
    pub fn queued_task(&self) -> Option<&str> {
        self.queued.as_ref().map(|q| q.task_name.as_str())
    }
}

impl JournalEvent {
    pub fn action(&self) -> &str {
        match self {
            JournalEvent::Queued { name, .. }
            | JournalEvent::Started { name, .. }
            | JournalEvent::Finished { name, .. } => name,
        }
    }
}

fn apply<'a>(
    tx: &Transaction<'_>,
    key: &RunKey,
    run_output_base: &str,
    name: &str,
    change: &ActionChange,
    spec_of: &impl Fn(&str) -> &'a [u8],
) -> Result<(), StoreError> {
    let (mut phase, mut error, mut outputs, mut cache_hit, mut ended_ms) =
        (ActionPhase::Queued, None, None, false, None);
    if !change.attempts.is_empty() {
        phase = ActionPhase::Running;
    }
    if let Some(done) = &change.finished {
        (phase, error, outputs, cache_hit, ended_ms) = (
            done.phase,
            done.error.as_deref(),
            done.outputs.as_deref(),
            done.cache_hit,
            Some(done.at_ms),
        );
    }
    let attempt = change.attempts.last().map(|(n, _)| *n);
    let started_ms = change.attempts.first().map(|(_, at)| *at).or(ended_ms);
    // The row written, by its seq; none when the action had succeeded already (a resumed run
    // queues its unfinished actions again; what succeeded stays as it was).
    let mut inserted = None;
    if let Some(queued) = &change.queued {
        let added = tx
            .prepare_cached(
                "INSERT INTO actions (org, project, domain, run, name, parent, grp, kind, spec,
                     task_name, task_version, input_uri, run_output_base, phase, attempts,
                     created_ms, inputs, started_ms, ended_ms, error, outputs, cache_hit)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', '', ?11, ?12, ?13, ?14, ?15,
                     ?16, ?17, ?18, ?19, ?20)
                 ON CONFLICT (org, project, domain, run, name) DO NOTHING",
            )
            .ctx("prepare journal queued")?
            .execute(params![
                key.org,
                key.project,
                key.domain,
                key.name,
                name,
                queued.parent,
                queued.group,
                queued.kind.to_db(),
                spec_of(&queued.task_name),
                queued.task_name,
                run_output_base,
                phase as i32,
                attempt.unwrap_or(0),
                queued.at_ms,
                queued.inputs,
                started_ms,
                ended_ms,
                error,
                outputs,
                i64::from(cache_hit),
            ])
            .ctx("journal queued")?;
        // The usual case is a new row; its seq is the one just given out.
        if added == 1 {
            inserted = Some(tx.last_insert_rowid());
        }
    }
    let seq: Option<i64> = match inserted {
        Some(seq) => Some(seq),
        None => {
            let updated = tx
                .prepare_cached(
                    "UPDATE actions SET phase = ?6, attempts = COALESCE(?7, attempts),
                         started_ms = COALESCE(started_ms, ?8), ended_ms = ?9, error = ?10,
                         outputs = ?11, cache_hit = ?12, version = version + 1
                     WHERE org = ?1 AND project = ?2 AND domain = ?3 AND run = ?4 AND name = ?5
                         AND phase != ?13",
                )
                .ctx("prepare journal update")?
                .execute(params![
                    key.org,
                    key.project,
                    key.domain,
                    key.name,
                    name,
                    phase as i32,
                    attempt,
                    started_ms,
                    ended_ms,
                    error,
                    outputs,
                    i64::from(cache_hit),
                    ActionPhase::Succeeded as i32,
                ])
                .ctx("journal update")?;
            if updated == 0 {
                None
            } else {
                tx.prepare_cached(
                    "SELECT seq FROM actions
                     WHERE org = ?1 AND project = ?2 AND domain = ?3 AND run = ?4 AND name = ?5",
                )
                .ctx("prepare journal seq")?
                .query_row(
                    params![key.org, key.project, key.domain, key.name, name],
                    |row| row.get(0),
                )
                .optional()
                .ctx("journal seq")?
            }
        }
    };
    match seq {
        Some(seq) => record_attempts(tx, seq, change, phase, ended_ms, error),
        None => Ok(()),
    }
}

/// The attempts table: each attempt started in the batch gets its row (earlier ones of the
/// batch failed, or no later one would have started); the last one ends with the action.
fn record_attempts(
    tx: &Transaction<'_>,
    seq: i64,
    change: &ActionChange,
    phase: ActionPhase,
    ended_ms: Option<i64>,
    error: Option<&[u8]>,
) -> Result<(), StoreError> {
    let last = change.attempts.len().checked_sub(1);
    for (i, (attempt, at_ms)) in change.attempts.iter().enumerate() {
        let (attempt_phase, attempt_end) = match (Some(i) == last, change.finished.is_some()) {
            (true, true) => (phase, ended_ms),
            (true, false) => (ActionPhase::Running, None),
            (false, _) => (
                ActionPhase::Failed,
                change.attempts.get(i + 1).map(|(_, at)| *at),
            ),
        };
        tx.prepare_cached(
            "INSERT OR REPLACE INTO attempts (action_seq, attempt, phase, started_ms, ended_ms,
                 error, log_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '')",
        )
        .ctx("prepare journal attempt")?
        .execute(params![
            seq,
            attempt,
            attempt_phase as i32,
            at_ms,
            attempt_end,
            if attempt_end.is_some() { error } else { None },
        ])
        .ctx("journal attempt")?;
    }
    if change.attempts.is_empty() && change.finished.is_some() {
        tx.prepare_cached(
            "UPDATE attempts SET phase = ?2, ended_ms = ?3, error = ?4
             WHERE action_seq = ?1 AND ended_ms IS NULL",
        )
        .ctx("prepare journal attempt end")?
        .execute(params![seq, phase as i32, ended_ms, error])
        .ctx("journal attempt end")?;
    }
    Ok(())
}
