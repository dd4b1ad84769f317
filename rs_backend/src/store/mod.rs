//! Durable state: runs, actions, attempts and the task cache in SQLite (WAL).
//!
//! Every method is one short transaction on a single connection behind a mutex, so each change
//! is committed before the caller acknowledges an RPC or notifies watchers.

mod cache;
mod journal;
mod projects;
mod reads;
mod records;
mod schema;
mod secrets;
mod tasks;
mod triggers;
mod writes;

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Row};

use crate::names::RunKey;
use crate::phase;
use crate::procfs::ProcessRef;

pub use cache::CacheEntry;
pub use journal::{
    ActionChange, FinishedAction, JournalEvent, NewInProcessRun, OpenError, Opened, QueuedAction,
    EXECUTOR_IN_PROCESS,
};
pub use records::*;
pub use secrets::SecretRow;
pub use tasks::{TaskQuery, TaskRow};
pub use triggers::{TriggerKey, TriggerQuery, TriggerRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the database has schema version {0}, newer than this backend understands ({})",
        schema::VERSION
    )]
    NewerSchema(i64),
}

/// Attaches what the store was doing to a SQLite error.
trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}

/// A transaction that takes the write lock at once. Local runs write the same file from other
/// processes; a deferred transaction that read first could not upgrade to a writer once another
/// connection committed (SQLite answers "database is locked" without waiting), so every write
/// transaction starts as a writer and waits its turn (the busy timeout).
fn write_transaction(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;
/// SQLite's page cache (KiB).
const PAGE_CACHE_KIB: i64 = 32 * 1024;

pub struct Store {
    conn: Mutex<Connection>,
}

/// Statements through the statement cache: state changes and lookups run for every action,
/// and parsing their SQL each time was a good part of the backend's CPU per action.
trait CachedStatements {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// `query_row` on a cached statement (rusqlite's own parses the SQL on every call).
    fn query_one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedStatements for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_one<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).ctx("open database")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .ctx("set busy timeout")?;
        // WAL keeps readers and the writer from blocking each other. synchronous=NORMAL in WAL
        // mode survives the backend process being killed (the case recovery is built for);
        // only an OS crash could drop the last commits.
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .ctx("enable WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx("set synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .ctx("enable foreign keys")?;
        // Every action passes through a few dozen distinct statements; rusqlite keeps 16
        // prepared by default, so a busy backend would parse its SQL again and again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // A big run's hot pages (the actions table's indexes) stay in SQLite's own cache
        // rather than being read again and again. (Not a memory mapping: the mapped file would
        // count in the backend's resident size as the database grows.)
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
            .ctx("set cache_size")?;
        schema::prepare(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied change: an open transaction
        // rolls back when dropped. So a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// The column before the last is a condition's value, kept in `outputs`; a local run's task outputs share
// that column and are not loaded with every record.
const ACTION_COLUMNS: &str = "seq, org, project, domain, run, name, parent, grp, kind, spec, \
     task_name, task_version, input_uri, run_output_base, phase, attempts, system_retries, \
     error, output_uri, abort_reason, created_ms, started_ms, ended_ms, pid, proc_start, version, \
     cache_hit, CASE WHEN kind = 3 THEN outputs END, restarts";

/// The same columns qualified with a table alias, for joins.
fn action_columns_of(alias: &str) -> String {
    ACTION_COLUMNS
        .split(", ")
        .map(|c| match c.trim() {
            value if value.starts_with("CASE") => {
                format!("CASE WHEN {alias}.kind = {CONDITION_KIND} THEN {alias}.outputs END")
            }
            column => format!("{alias}.{column}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn action_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<ActionRecord> {
    let pid: Option<i32> = row.get(at + 23)?;
    let proc_start: Option<i64> = row.get(at + 24)?;
    Ok(ActionRecord {
        seq: row.get(at)?,
        run: RunKey {
            org: row.get(at + 1)?,
            project: row.get(at + 2)?,
            domain: row.get(at + 3)?,
            name: row.get(at + 4)?,
        },
        name: row.get(at + 5)?,
        parent: row.get(at + 6)?,
        group: row.get(at + 7)?,
        kind: ActionKind::from_db(row.get(at + 8)?),
        spec: row.get(at + 9)?,
        task_name: row.get(at + 10)?,
        task_version: row.get(at + 11)?,
        input_uri: row.get(at + 12)?,
        run_output_base: row.get(at + 13)?,
        phase: phase::from_stored(row.get(at + 14)?),
        attempts: row.get(at + 15)?,
        system_retries: row.get(at + 16)?,
        error: row.get(at + 17)?,
        output_uri: row.get(at + 18)?,
        abort_reason: row.get(at + 19)?,
        created_ms: row.get(at + 20)?,
        started_ms: row.get(at + 21)?,
        ended_ms: row.get(at + 22)?,
        version: row.get(at + 25)?,
        cache_hit: row.get::<_, i64>(at + 26)? != 0,
        value: row.get(at + 27)?,
        restarts: row.get(at + 28)?,
        process: match (pid, proc_start) {
            (Some(pid), Some(start)) => Some(ProcessRef {
                pid,
                start_ticks: u64::try_from(start).unwrap_or_default(),
            }),
            _ => None,
        },
    })
}

const RUN_COLUMNS: &str = "run_spec, created_ms, trigger_task, trigger_name, trigger_revision";

fn run_columns_of(alias: &str) -> String {
    RUN_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many columns [`run_from_row`] reads.
const RUN_COLUMN_COUNT: usize = 5;

fn run_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<RunRecord> {
    let trigger = match (
        row.get::<_, Option<String>>(at + 2)?,
        row.get::<_, Option<String>>(at + 3)?,
    ) {
        (Some(task_name), Some(name)) => Some(RunTrigger {
            task_name,
            name,
            revision: row.get::<_, Option<i64>>(at + 4)?.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(RunRecord {
        run_spec: row.get(at)?,
        created_ms: row.get(at + 1)?,
        trigger,
    })
}

fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<AttemptRecord> {
    Ok(AttemptRecord {
        attempt: row.get(0)?,
        phase: phase::from_stored(row.get(1)?),
        started_ms: row.get(2)?,
        ended_ms: row.get(3)?,
        error: row.get(4)?,
        output_uri: row.get(5)?,
        log_path: row.get(6)?,
    })
}

/// SQL list of the terminal phase numbers, for `phase NOT IN (...)`.
fn terminal_phase_list() -> String {
    use flyteidl2::flyteidl::common::ActionPhase;
    [
        ActionPhase::Succeeded,
        ActionPhase::Failed,
        ActionPhase::Aborted,
        ActionPhase::TimedOut,
        ActionPhase::Recovered,
    ]
    .iter()
    .filter(|p| phase::is_terminal(**p))
    .map(|p| (*p as i32).to_string())
    .collect::<Vec<_>>()
    .join(", ")
}
