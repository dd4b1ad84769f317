//! Triggers of deployed tasks, and what the scheduler has fired.

use rusqlite::{params, OptionalExtension, Row};

use super::{CachedStatements, Ctx, Store, StoreError};

/// Identifies a trigger: it belongs to a task name (any version) in a project and domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TriggerKey {
    pub project: String,
    pub domain: String,
    pub task_name: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct TriggerRow {
    pub key: TriggerKey,
    pub spec: Vec<u8>,
    pub automation: Vec<u8>,
    pub active: bool,
    pub revision: i64,
    pub deployed_ms: i64,
    pub updated_ms: i64,
    pub activated_ms: i64,
    pub last_tick_ms: Option<i64>,
    pub triggered_ms: Option<i64>,
}

impl TriggerRow {
    /// Ticks after this are the scheduler's to fire.
    pub fn since_ms(&self) -> i64 {
        self.last_tick_ms
            .map_or(self.activated_ms, |t| t.max(self.activated_ms))
    }
}

const COLUMNS: &str = "project, domain, task_name, name, spec, automation, active, revision, \
                       deployed_ms, updated_ms, activated_ms, last_tick_ms, triggered_ms";

fn trigger_row(row: &Row<'_>) -> rusqlite::Result<TriggerRow> {
    Ok(TriggerRow {
        key: TriggerKey {
            project: row.get(0)?,
            domain: row.get(1)?,
            task_name: row.get(2)?,
            name: row.get(3)?,
        },
        spec: row.get(4)?,
        automation: row.get(5)?,
        active: row.get(6)?,
        revision: row.get(7)?,
        deployed_ms: row.get(8)?,
        updated_ms: row.get(9)?,
        activated_ms: row.get(10)?,
        last_tick_ms: row.get(11)?,
        triggered_ms: row.get(12)?,
    })
}

/// Which triggers a listing selects.
#[derive(Clone, Debug, Default)]
pub struct TriggerQuery {
    pub project: Option<String>,
    pub domain: Option<String>,
    pub task_name: Option<String>,
}

impl Store {
    /// Deploys a trigger (new, replaced, or brought back after a delete). Activation time
    /// moves only when it goes from inactive to active, so a redeploy does not reset its
    /// schedule. Returns the stored row.
    pub fn trigger_deploy(
        &self,
        key: &TriggerKey,
        spec: &[u8],
        automation: &[u8],
        active: bool,
        now_ms: i64,
    ) -> Result<TriggerRow, StoreError> {
        let mut conn = self.conn();
        let tx = super::write_transaction(&mut conn).ctx("begin trigger deploy")?;
        let existing = tx
            .query_one(
                &format!(
                    "SELECT {COLUMNS}, deleted_ms FROM triggers
                     WHERE project = ?1 AND domain = ?2 AND task_name = ?3 AND name = ?4"
                ),
                params![key.project, key.domain, key.task_name, key.name],
                |row| Ok((trigger_row(row)?, row.get::<_, Option<i64>>(13)?)),
            )
            .optional()
            .ctx("read trigger")?;
        let (revision, deployed_ms, activated_ms, last_tick, triggered) = match &existing {
            Some((row, None)) => (
                row.revision + 1,
                row.deployed_ms,
                if active && !row.active {
                    now_ms
                } else {
                    row.activated_ms
                },
                row.last_tick_ms,
                row.triggered_ms,
            ),
            Some((row, Some(_deleted))) => (row.revision + 1, now_ms, now_ms, None, None),
            None => (1, now_ms, now_ms, None, None),
        };
        tx.execute(
            "INSERT INTO triggers (project, domain, task_name, name, spec, automation, active,
                 revision, deployed_ms, updated_ms, activated_ms, last_tick_ms, triggered_ms, deleted_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL)
             ON CONFLICT (project, domain, task_name, name) DO UPDATE SET
                 spec = excluded.spec, automation = excluded.automation, active = excluded.active,
                 revision = excluded.revision, deployed_ms = excluded.deployed_ms,
                 updated_ms = excluded.updated_ms, activated_ms = excluded.activated_ms,
                 last_tick_ms = excluded.last_tick_ms, triggered_ms = excluded.triggered_ms,
                 deleted_ms = NULL",
            params![
                key.project,
                key.domain,
                key.task_name,
                key.name,
                spec,
                automation,
                active,
                revision,
                deployed_ms,
                now_ms,
                activated_ms,
                last_tick,
                triggered
            ],
        )
        .ctx("deploy trigger")?;
        tx.commit().ctx("commit trigger deploy")?;
        Ok(TriggerRow {
            key: key.clone(),
            spec: spec.to_vec(),
            automation: automation.to_vec(),
            active,
            revision,
            deployed_ms,
            updated_ms: now_ms,
            activated_ms,
            last_tick_ms: last_tick,
            triggered_ms: triggered,
        })
    }

    /// A trigger that exists (not deleted).
    pub fn trigger_get(&self, key: &TriggerKey) -> Result<Option<TriggerRow>, StoreError> {
        self.conn()
            .query_one(
                &format!(
                    "SELECT {COLUMNS} FROM triggers WHERE project = ?1 AND domain = ?2
                     AND task_name = ?3 AND name = ?4 AND deleted_ms IS NULL"
                ),
                params![key.project, key.domain, key.task_name, key.name],
                trigger_row,
            )
            .optional()
            .ctx("read trigger")
    }

    /// Triggers that exist, active first, then most recently changed.
    pub fn trigger_list(
        &self,
        query: &TriggerQuery,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TriggerRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM triggers WHERE deleted_ms IS NULL
                   AND (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR domain = ?2)
                   AND (?3 IS NULL OR task_name = ?3)
                 ORDER BY active DESC, updated_ms DESC, name LIMIT ?4 OFFSET ?5"
            ))
            .ctx("prepare trigger listing")?;
        let rows = statement
            .query_map(
                params![query.project, query.domain, query.task_name, limit, offset],
                trigger_row,
            )
            .ctx("list triggers")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read trigger row")
    }

    /// Activates or deactivates; false if the trigger does not exist. Activating moves the
    /// activation time, so ticks missed while inactive are not fired.
    pub fn trigger_set_active(
        &self,
        key: &TriggerKey,
        active: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE triggers SET
                     activated_ms = CASE WHEN ?5 AND NOT active THEN ?6 ELSE activated_ms END,
                     active = ?5, revision = revision + 1, updated_ms = ?6
                 WHERE project = ?1 AND domain = ?2 AND task_name = ?3 AND name = ?4
                   AND deleted_ms IS NULL",
                params![
                    key.project,
                    key.domain,
                    key.task_name,
                    key.name,
                    active,
                    now_ms
                ],
            )
            .ctx("update trigger")?;
        Ok(changed == 1)
    }

    /// Deletes (marks deleted); false if it does not exist.
    pub fn trigger_delete(&self, key: &TriggerKey, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE triggers SET deleted_ms = ?5, active = 0, revision = revision + 1,
                     updated_ms = ?5
                 WHERE project = ?1 AND domain = ?2 AND task_name = ?3 AND name = ?4
                   AND deleted_ms IS NULL",
                params![key.project, key.domain, key.task_name, key.name, now_ms],
            )
            .ctx("delete trigger")?;
        Ok(changed == 1)
    }

    /// Active triggers, for the scheduler.
    pub fn trigger_active(&self) -> Result<Vec<TriggerRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM triggers WHERE active AND deleted_ms IS NULL"
            ))
            .ctx("prepare active triggers")?;
        let rows = statement
            .query_map([], trigger_row)
            .ctx("list active triggers")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read trigger row")
    }

    /// Records that the run of `tick_ms` exists (only ever moves forward).
    pub fn trigger_fired(
        &self,
        key: &TriggerKey,
        tick_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE triggers SET last_tick_ms = MAX(COALESCE(last_tick_ms, ?5), ?5),
                     triggered_ms = ?6
                 WHERE project = ?1 AND domain = ?2 AND task_name = ?3 AND name = ?4",
                params![
                    key.project,
                    key.domain,
                    key.task_name,
                    key.name,
                    tick_ms,
                    now_ms
                ],
            )
            .ctx("record trigger tick")?;
        Ok(())
    }
}
