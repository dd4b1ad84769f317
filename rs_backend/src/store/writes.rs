//! State changes. Each is one transaction and returns the action as committed, so the caller
//! can notify watchers with exactly what is durable.

use super::CachedStatements;
use flyteidl2::flyteidl::common::ActionPhase;
use rusqlite::{params, OptionalExtension, Transaction};

use super::{action_from_row, Ctx, Store, StoreError, ACTION_COLUMNS};
use crate::names::RunKey;
use crate::phase::{self, Transition};
use crate::procfs::ProcessRef;
use crate::store::{
    ActionRecord, AttemptEnd, ConditionEnd, NewAction, NextStep, PhaseUpdate, ReportedPhase,
    RunTrigger,
};

fn load(tx: &Transaction<'_>, seq: i64) -> Result<Option<ActionRecord>, StoreError> {
    tx.query_one(
        &format!("SELECT {ACTION_COLUMNS} FROM actions WHERE seq = ?1"),
        params![seq],
        |row| action_from_row(row, 0),
    )
    .optional()
    .ctx("read action")
}

fn load_by_name(
    tx: &Transaction<'_>,
    run: &RunKey,
    name: &str,
) -> Result<Option<ActionRecord>, StoreError> {
    tx.query_one(
        &format!(
            "SELECT {ACTION_COLUMNS} FROM actions
             WHERE org = ?1 AND project = ?2 AND domain = ?3 AND run = ?4 AND name = ?5"
        ),
        params![run.org, run.project, run.domain, run.name, name],
        |row| action_from_row(row, 0),
    )
    .optional()
    .ctx("read action")
}

/// Reads back a row that this transaction just wrote; its absence is a store bug.
fn reload(tx: &Transaction<'_>, seq: i64) -> Result<ActionRecord, StoreError> {
    load(tx, seq)?.ok_or(StoreError::Sqlite {
        context: "read back a written action",
        source: rusqlite::Error::QueryReturnedNoRows,
    })
}

fn insert(tx: &Transaction<'_>, action: &NewAction, now_ms: i64) -> Result<i64, StoreError> {
    tx.exec(
        "INSERT INTO actions (org, project, domain, run, name, parent, grp, kind, spec,
             task_name, task_version, input_uri, run_output_base, phase, attempts,
             output_uri, created_ms, started_ms, ended_ms, cache_hit)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20)",
        params![
            action.run.org,
            action.run.project,
            action.run.domain,
            action.run.name,
            action.name,
            action.parent,
            action.group,
            action.kind.to_db(),
            action.spec,
            action.task_name,
            action.task_version,
            action.input_uri,
            action.run_output_base,
            action.phase as i32,
            action.attempts,
            action.output_uri,
            now_ms,
            action.started_ms,
            action.ended_ms,
            i64::from(action.cache_hit),
        ],
    )
    .ctx("insert action")?;
    Ok(tx.last_insert_rowid())
}

impl Store {
    /// Creates a run and its root action. None when the run already exists.
    pub fn create_run(
        &self,
        run_spec: Option<&[u8]>,
        trigger: Option<&RunTrigger>,
        root: &NewAction,
        now_ms: i64,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin create run")?;
        let run = &root.run;
        let inserted = tx
            .exec(
                "INSERT INTO runs (org, project, domain, name, run_spec, created_ms,
                                   trigger_task, trigger_name, trigger_revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (org, project, domain, name) DO NOTHING",
                params![
                    run.org,
                    run.project,
                    run.domain,
                    run.name,
                    run_spec,
                    now_ms,
                    trigger.map(|t| &t.task_name),
                    trigger.map(|t| &t.name),
                    trigger.map(|t| t.revision),
                ],
            )
            .ctx("insert run")?;
        if inserted == 0 {
            return Ok(None);
        }
        let seq = insert(&tx, root, now_ms)?;
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit create run")?;
        Ok(Some(record))
    }

    /// Inserts an action and returns it, or None (changing nothing) when one with the same id
    /// exists: inserting is idempotent on the action id.
    pub fn insert_action(
        &self,
        action: &NewAction,
        now_ms: i64,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin insert action")?;
        if load_by_name(&tx, &action.run, &action.name)?.is_some() {
            return Ok(None);
        }
        let seq = insert(&tx, action, now_ms)?;
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit insert action")?;
        Ok(Some(record))
    }

    /// Moves a queued action into its next attempt. None when it is no longer queued (aborted
    /// meanwhile) or `attempt` is not the next number.
    pub fn start_attempt(
        &self,
        seq: i64,
        attempt: u32,
        log_path: &str,
        now_ms: i64,
    ) -> Result<Option<ActionRecord>, StoreError> {
        self.start_attempt_in(seq, attempt, log_path, now_ms, None)
    }

    /// `start_attempt` for an attempt whose process is already known (a reusable worker's):
    /// recorded in the same transaction, so a restarted backend can find it.
    pub fn start_attempt_in(
        &self,
        seq: i64,
        attempt: u32,
        log_path: &str,
        now_ms: i64,
        process: Option<ProcessRef>,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin start attempt")?;
        let Some(current) = load(&tx, seq)? else {
            return Ok(None);
        };
        if current.phase != ActionPhase::Queued || current.attempts.checked_add(1) != Some(attempt)
        {
            return Ok(None);
        }
        tx.exec(
            "UPDATE actions SET version = version + 1,
                 phase = ?2, attempts = ?3, started_ms = COALESCE(started_ms, ?4),
                 pid = ?5, proc_start = ?6, error = NULL
             WHERE seq = ?1",
            params![
                seq,
                ActionPhase::Running as i32,
                attempt,
                now_ms,
                process.map(|p| p.pid),
                process.map(|p| i64::try_from(p.start_ticks).unwrap_or(i64::MAX))
            ],
        )
        .ctx("mark action running")?;
        tx.exec(
            "INSERT OR REPLACE INTO attempts (action_seq, attempt, phase, started_ms, log_path)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![seq, attempt, ActionPhase::Running as i32, now_ms, log_path],
        )
        .ctx("insert attempt")?;
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit start attempt")?;
        Ok(Some(record))
    }

    /// Remembers the process of the running attempt, so a restarted backend can find it.
    pub fn set_process(
        &self,
        seq: i64,
        attempt: u32,
        process: ProcessRef,
    ) -> Result<(), StoreError> {
        self.conn()
            .exec(
                "UPDATE actions SET version = version + 1,
                     pid = ?3, proc_start = ?4 WHERE seq = ?1 AND attempts = ?2",
                params![
                    seq,
                    attempt,
                    process.pid,
                    i64::try_from(process.start_ticks).unwrap_or(i64::MAX)
                ],
            )
            .ctx("record process")?;
        Ok(())
    }

    /// Forgets the process of an action (it is known to be gone).
    pub fn clear_process(&self, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .exec(
                "UPDATE actions SET version = version + 1,
                     pid = NULL, proc_start = NULL WHERE seq = ?1",
                params![seq],
            )
            .ctx("forget process")?;
        Ok(())
    }

    /// Closes an attempt and moves its action on. Returns the action when it changed; an
    /// action that became terminal meanwhile (aborted) keeps its phase.
    pub fn finish_attempt(
        &self,
        seq: i64,
        attempt: u32,
        end: &AttemptEnd,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin finish attempt")?;
        tx.exec(
            "UPDATE attempts SET phase = ?3, ended_ms = ?4, error = ?5, output_uri = ?6
             WHERE action_seq = ?1 AND attempt = ?2 AND ended_ms IS NULL",
            params![
                seq,
                attempt,
                end.attempt_phase as i32,
                end.ended_ms,
                end.error,
                end.output_uri
            ],
        )
        .ctx("close attempt")?;
        let Some(current) = load(&tx, seq)? else {
            tx.commit().ctx("commit finish attempt")?;
            return Ok(None);
        };
        if phase::is_terminal(current.phase) || current.attempts != attempt {
            // The attempt's process is gone either way; forget it so a restart does not look
            // for it.
            tx.exec(
                "UPDATE actions SET version = version + 1,
                     pid = NULL, proc_start = NULL WHERE seq = ?1 AND attempts = ?2",
                params![seq, attempt],
            )
            .ctx("forget ended process")?;
            tx.commit().ctx("commit finish attempt")?;
            return Ok(None);
        }
        match end.next {
            NextStep::Finish(final_phase) => {
                tx.exec(
                    "UPDATE actions SET version = version + 1,
                         phase = ?2, error = ?3, output_uri = ?4, ended_ms = ?5,
                         pid = NULL, proc_start = NULL
                     WHERE seq = ?1",
                    params![
                        seq,
                        final_phase as i32,
                        end.error,
                        end.output_uri,
                        end.ended_ms
                    ],
                )
                .ctx("finish action")?;
            }
            NextStep::Retry { system, .. } => {
                tx.exec(
                    "UPDATE actions SET version = version + 1,
                         phase = ?2, system_retries = system_retries + ?3,
                         pid = NULL, proc_start = NULL
                     WHERE seq = ?1",
                    params![seq, ActionPhase::Queued as i32, i64::from(system)],
                )
                .ctx("queue retry")?;
            }
            NextStep::Requeue => {
                tx.exec(
                    "UPDATE actions SET version = version + 1, restarts = restarts + 1,
                         phase = ?2, pid = NULL, proc_start = NULL WHERE seq = ?1",
                    params![seq, ActionPhase::Queued as i32],
                )
                .ctx("queue interrupted attempt")?;
            }
        }
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit finish attempt")?;
        Ok(Some(record))
    }

    /// Marks an action ABORTED (closing its open attempt). None when it was already terminal.
    pub fn abort(
        &self,
        seq: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin abort")?;
        let Some(current) = load(&tx, seq)? else {
            return Ok(None);
        };
        if phase::check(current.phase, ActionPhase::Aborted) != Transition::Apply {
            return Ok(None);
        }
        tx.exec(
            "UPDATE actions SET version = version + 1,
                 phase = ?2, abort_reason = ?3, ended_ms = ?4 WHERE seq = ?1",
            params![seq, ActionPhase::Aborted as i32, reason, now_ms],
        )
        .ctx("abort action")?;
        tx.exec(
            "UPDATE attempts SET phase = ?2, ended_ms = ?3
             WHERE action_seq = ?1 AND ended_ms IS NULL",
            params![seq, ActionPhase::Aborted as i32, now_ms],
        )
        .ctx("close aborted attempt")?;
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit abort")?;
        Ok(Some(record))
    }

    /// Ends a queued action as a cache hit with `output_uri` (a serialized cached task whose
    /// turn came after another call filled the cache). None when it was no longer queued.
    pub fn succeed_from_cache(
        &self,
        seq: i64,
        output_uri: &str,
        now_ms: i64,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin cache hit")?;
        let changed = tx
            .exec(
                "UPDATE actions SET version = version + 1, phase = ?2, output_uri = ?3,
                     cache_hit = 1, started_ms = COALESCE(started_ms, ?4), ended_ms = ?4
                 WHERE seq = ?1 AND phase = ?5",
                params![
                    seq,
                    ActionPhase::Succeeded as i32,
                    output_uri,
                    now_ms,
                    ActionPhase::Queued as i32
                ],
            )
            .ctx("record cache hit")?;
        if changed == 0 {
            return Ok(None);
        }
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit cache hit")?;
        Ok(Some(record))
    }

    /// Ends a waiting condition: SUCCEEDED with its signalled `value` (a serialized
    /// `core.Literal`), or TIMED_OUT with `error`. What was committed, or the action as it
    /// already was when it had ended (the caller compares); None when it does not exist.
    pub fn end_condition(
        &self,
        seq: i64,
        end: ConditionEnd<'_>,
        now_ms: i64,
    ) -> Result<Option<(ActionRecord, bool)>, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin condition end")?;
        let Some(current) = load(&tx, seq)? else {
            return Ok(None);
        };
        let to = match end {
            ConditionEnd::Signalled(_) => ActionPhase::Succeeded,
            ConditionEnd::TimedOut(_) => ActionPhase::TimedOut,
        };
        if phase::check(current.phase, to) != Transition::Apply {
            return Ok(Some((current, false)));
        }
        let (value, error) = match end {
            ConditionEnd::Signalled(value) => (Some(value), None),
            ConditionEnd::TimedOut(error) => (None, Some(error)),
        };
        tx.exec(
            "UPDATE actions SET version = version + 1, phase = ?2, outputs = ?3, error = ?4,
                 ended_ms = ?5, started_ms = COALESCE(started_ms, ?5)
             WHERE seq = ?1",
            params![seq, to as i32, value, error, now_ms],
        )
        .ctx("end condition")?;
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit condition end")?;
        Ok(Some((record, true)))
    }

    /// Applies a phase reported from outside (the Update RPC), guarded by the state machine.
    pub fn set_phase(
        &self,
        seq: i64,
        report: &ReportedPhase,
        now_ms: i64,
    ) -> Result<Option<PhaseUpdate>, StoreError> {
        let new_phase = report.phase;
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin phase update")?;
        let Some(current) = load(&tx, seq)? else {
            return Ok(None);
        };
        match phase::check(current.phase, new_phase) {
            Transition::Unchanged => return Ok(Some(PhaseUpdate::Unchanged)),
            Transition::Refused => {
                return Ok(Some(PhaseUpdate::Refused {
                    current: current.phase,
                }))
            }
            Transition::Apply => {}
        }
        let ended = phase::is_terminal(new_phase).then(|| report.ended_ms.unwrap_or(now_ms));
        tx.exec(
            "UPDATE actions SET version = version + 1,
                 phase = ?2, started_ms = COALESCE(started_ms, ?3),
                 ended_ms = COALESCE(?4, ended_ms), output_uri = COALESCE(?5, output_uri)
             WHERE seq = ?1",
            params![
                seq,
                new_phase as i32,
                report.started_ms,
                ended,
                report.output_uri
            ],
        )
        .ctx("update phase")?;
        let record = reload(&tx, seq)?;
        tx.commit().ctx("commit phase update")?;
        Ok(Some(PhaseUpdate::Applied(Box::new(record))))
    }
}
