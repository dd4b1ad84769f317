//! Queries. None of these change state.

use flyteidl2::flyteidl::common::ActionPhase;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row, Rows};

use super::{
    action_columns_of, action_from_row, attempt_from_row, run_columns_of, run_from_row,
    terminal_phase_list, CachedStatements, Ctx, Store, StoreError, ACTION_COLUMNS, RUN_COLUMNS,
    RUN_COLUMN_COUNT,
};
use crate::listing::Query;
use crate::names::RunKey;
use crate::store::{ActionRecord, AttemptRecord, RunFilter, RunRecord};

impl Store {
    pub fn run(&self, key: &RunKey) -> Result<Option<RunRecord>, StoreError> {
        self.conn()
            .query_one(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs
                     WHERE org = ?1 AND project = ?2 AND domain = ?3 AND name = ?4"
                ),
                params![key.org, key.project, key.domain, key.name],
                |row| run_from_row(row, 0),
            )
            .optional()
            .ctx("read run")
    }

    pub fn action(&self, run: &RunKey, name: &str) -> Result<Option<ActionRecord>, StoreError> {
        self.conn()
            .query_one(
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

    pub fn action_by_seq(&self, seq: i64) -> Result<Option<ActionRecord>, StoreError> {
        self.conn()
            .query_one(
                &format!("SELECT {ACTION_COLUMNS} FROM actions WHERE seq = ?1"),
                params![seq],
                |row| action_from_row(row, 0),
            )
            .optional()
            .ctx("read action")
    }

    /// How many of the run's actions are in each phase.
    pub fn phase_counts(&self, run: &RunKey) -> Result<Vec<(ActionPhase, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT phase, COUNT(*) FROM actions
                 WHERE org = ?1 AND project = ?2 AND domain = ?3 AND run = ?4 GROUP BY phase",
            )
            .ctx("prepare phase counts")?;
        let rows = stmt
            .query_map(params![run.org, run.project, run.domain, run.name], |row| {
                let phase: i32 = row.get(0)?;
                let count: i64 = row.get(1)?;
                Ok((
                    ActionPhase::try_from(phase).unwrap_or(ActionPhase::Unspecified),
                    u64::try_from(count).unwrap_or_default(),
                ))
            })
            .ctx("count actions by phase")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read phase counts")
    }

    /// The direct children of an action, in the order they were enqueued.
    pub fn children(&self, run: &RunKey, parent: &str) -> Result<Vec<ActionRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM actions
                 WHERE org = ?1 AND project = ?2 AND domain = ?3 AND run = ?4 AND parent = ?5
                 ORDER BY seq"
            ))
            .ctx("prepare children query")?;
        let rows = stmt
            .query_map(
                params![run.org, run.project, run.domain, run.name, parent],
                |row| action_from_row(row, 0),
            )
            .ctx("query children")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read children")
    }

    /// The actions of a run a listing selects, in its order.
    pub fn list_actions(
        &self,
        run: &RunKey,
        query: &Query,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        if query.matches_nothing() {
            return Ok(Vec::new());
        }
        let mut conditions = vec![
            "a.org = ?".to_string(),
            "a.project = ?".to_string(),
            "a.domain = ?".to_string(),
            "a.run = ?".to_string(),
        ];
        let mut values: Vec<Value> = vec![
            run.org.clone().into(),
            run.project.clone().into(),
            run.domain.clone().into(),
            run.name.clone().into(),
        ];
        conditions.extend(query.conditions().iter().cloned());
        values.extend(query.params().iter().cloned());
        values.push(query.sql_limit().into());
        let sql = format!(
            "SELECT {} FROM actions a WHERE {} ORDER BY {} LIMIT ?",
            action_columns_of("a"),
            conditions.join(" AND "),
            query.order_by()
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).ctx("prepare action listing")?;
        let rows = stmt.query(params_from_iter(values)).ctx("list actions")?;
        read_listing(rows, query.limit(), |row| {
            let action = action_from_row(row, 0)?;
            Ok(query.keeps(None, &action).then_some(action))
        })
        .ctx("read action listing")
    }

    /// Runs with their root action that a scope and a listing select, in the listing's order.
    pub fn list_runs(
        &self,
        filter: &RunFilter,
        query: &Query,
    ) -> Result<Vec<(RunRecord, ActionRecord)>, StoreError> {
        if query.matches_nothing() {
            return Ok(Vec::new());
        }
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let columns = [
            ("r.org", &filter.org),
            ("r.project", &filter.project),
            ("r.domain", &filter.domain),
            ("a.task_name", &filter.task_name),
            ("a.task_version", &filter.task_version),
            (
                "r.trigger_task",
                &filter.trigger.as_ref().map(|t| t.0.clone()),
            ),
            (
                "r.trigger_name",
                &filter.trigger.as_ref().map(|t| t.1.clone()),
            ),
        ];
        for (column, value) in columns {
            if let Some(value) = value {
                conditions.push(format!("{column} = ?"));
                values.push(value.clone().into());
            }
        }
        if filter.paused_only {
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM actions p WHERE p.org = r.org AND p.project = r.project
                     AND p.domain = r.domain AND p.run = r.name AND p.phase = {})",
                ActionPhase::Paused as i32
            ));
        }
        conditions.extend(query.conditions().iter().cloned());
        values.extend(query.params().iter().cloned());
        values.push(query.sql_limit().into());
        let sql = format!(
            "SELECT {}, {}
             FROM runs r JOIN actions a
               ON a.org = r.org AND a.project = r.project AND a.domain = r.domain
              AND a.run = r.name AND a.parent IS NULL
             WHERE {}
             ORDER BY {} LIMIT ?",
            run_columns_of("r"),
            action_columns_of("a"),
            if conditions.is_empty() {
                "1".to_string()
            } else {
                conditions.join(" AND ")
            },
            query.order_by()
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).ctx("prepare run listing")?;
        let rows = stmt.query(params_from_iter(values)).ctx("list runs")?;
        read_listing(rows, query.limit(), |row| {
            let run = run_from_row(row, 0)?;
            let root = action_from_row(row, RUN_COLUMN_COUNT)?;
            Ok(query.keeps(Some(&run), &root).then_some((run, root)))
        })
        .ctx("read run listing")
    }

    /// Every action that has not reached a terminal phase, in enqueue order.
    pub fn unfinished_actions(&self) -> Result<Vec<ActionRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ACTION_COLUMNS} FROM actions a WHERE phase NOT IN ({}) AND NOT EXISTS (
                     SELECT 1 FROM runs r WHERE r.org = a.org AND r.project = a.project
                         AND r.domain = a.domain AND r.name = a.run AND r.executor = {})
                 ORDER BY seq",
                terminal_phase_list(),
                super::EXECUTOR_IN_PROCESS
            ))
            .ctx("prepare unfinished actions query")?;
        let rows = stmt
            .query_map([], |row| action_from_row(row, 0))
            .ctx("query unfinished actions")?;
        rows.collect::<Result<Vec<_>, _>>()
            .ctx("read unfinished actions")
    }

    /// Finished actions that still name a process: the backend stopped between recording the
    /// end (an abort) and reaping the process, which may therefore still run.
    pub fn finished_actions_with_process(&self) -> Result<Vec<ActionRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ACTION_COLUMNS} FROM actions
                 WHERE pid IS NOT NULL AND phase IN ({}) ORDER BY seq",
                terminal_phase_list()
            ))
            .ctx("prepare finished-with-process query")?;
        let rows = stmt
            .query_map([], |row| action_from_row(row, 0))
            .ctx("query finished actions with a process")?;
        rows.collect::<Result<Vec<_>, _>>()
            .ctx("read finished actions with a process")
    }

    pub fn attempts(&self, action_seq: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT attempt, phase, started_ms, ended_ms, error, output_uri, log_path
                 FROM attempts WHERE action_seq = ?1 ORDER BY attempt",
            )
            .ctx("prepare attempts query")?;
        let rows = stmt
            .query_map(params![action_seq], attempt_from_row)
            .ctx("query attempts")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read attempts")
    }

    pub fn attempt(
        &self,
        action_seq: i64,
        attempt: u32,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.conn()
            .query_one(
                "SELECT attempt, phase, started_ms, ended_ms, error, output_uri, log_path
                 FROM attempts WHERE action_seq = ?1 AND attempt = ?2",
                params![action_seq, attempt],
                attempt_from_row,
            )
            .optional()
            .ctx("read attempt")
    }
}

/// Reads a listing's rows in order until `limit` are kept; `keep` reads one row and says
/// whether it belongs (the checks SQL could not do), so no more rows are read than needed.
fn read_listing<T>(
    mut rows: Rows<'_>,
    limit: Option<usize>,
    mut keep: impl FnMut(&Row<'_>) -> rusqlite::Result<Option<T>>,
) -> rusqlite::Result<Vec<T>> {
    let mut kept = Vec::new();
    while limit.is_none_or(|limit| kept.len() < limit) {
        let Some(row) = rows.next()? else { break };
        if let Some(item) = keep(row)? {
            kept.push(item);
        }
    }
    Ok(kept)
}
