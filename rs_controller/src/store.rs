//! Local state in SQLite: the task cache and the record of finished runs.
//!
//! Several processes (a CLI run, a notebook, the embedded backend) may use the same file at
//! once, so the database runs in WAL mode with a busy timeout, and every write is a single
//! transaction that is durable before the call returns.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::ledger::{ActionKind, ActionRecord, Phase};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("local store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("local store {path}: cannot create directory: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A finished (or running) run as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub name: String,
    pub task_name: String,
    pub mode: String,
    pub phase: Phase,
    pub started_at: f64,
    pub ended_at: Option<f64>,
    pub error: Option<String>,
}

pub struct LocalStore {
    path: String,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cache (
    key        TEXT PRIMARY KEY,
    task       TEXT NOT NULL,
    value      BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    name       TEXT PRIMARY KEY,
    task       TEXT NOT NULL,
    mode       TEXT NOT NULL,
    phase      TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL,
    error      TEXT
);
CREATE TABLE IF NOT EXISTS actions (
    run        TEXT NOT NULL,
    name       TEXT NOT NULL,
    parent     TEXT,
    task       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    grp        TEXT,
    phase      TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL,
    error      TEXT,
    cache_hit  INTEGER NOT NULL,
    PRIMARY KEY (run, name)
);
";

impl LocalStore {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: shown.clone(),
                    source,
                })?;
            }
        }
        let sqlite = |source| StoreError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        Ok(LocalStore {
            path: shown,
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn()
            .query_row(
                "SELECT value FROM cache WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn cache_put(&self, key: &str, task: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO cache (key, task, value, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET task = excluded.task, value = excluded.value,
                 created_at = excluded.created_at",
                params![key, task, value, crate::ledger::now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn cache_delete(&self, key: &str) -> Result<bool, StoreError> {
        self.conn()
            .execute("DELETE FROM cache WHERE key = ?1", params![key])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Removes cached outputs, of one task or of all; returns how many were removed.
    pub fn cache_clear(&self, task: Option<&str>) -> Result<usize, StoreError> {
        let conn = self.conn();
        match task {
            Some(t) => conn.execute("DELETE FROM cache WHERE task = ?1", params![t]),
            None => conn.execute("DELETE FROM cache", []),
        }
        .map_err(|e| self.err(e))
    }

    /// Writes a run and all its actions in one transaction, replacing an earlier save of
    /// the same run.
    pub fn save_run(&self, run: &RunRecord, actions: &[ActionRecord]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO runs (name, task, mode, phase, started_at, ended_at, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                run.name,
                run.task_name,
                run.mode,
                run.phase.as_str(),
                run.started_at,
                run.ended_at,
                run.error
            ],
        )
        .map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT OR REPLACE INTO actions (run, name, parent, task, kind, grp, phase, attempts,
                     started_at, ended_at, error, cache_hit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(|e| self.err(e))?;
            for a in actions {
                stmt.execute(params![
                    run.name,
                    a.name,
                    a.parent,
                    a.task_name,
                    a.kind.as_str(),
                    a.group,
                    a.phase.as_str(),
                    a.attempts,
                    a.started_at,
                    a.ended_at,
                    a.error,
                    a.cache_hit as i64
                ])
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        let phase: String = r.get(3)?;
        Ok(RunRecord {
            name: r.get(0)?,
            task_name: r.get(1)?,
            mode: r.get(2)?,
            phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
            started_at: r.get(4)?,
            ended_at: r.get(5)?,
            error: r.get(6)?,
        })
    }

    /// Most recent runs first.
    pub fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT name, task, mode, phase, started_at, ended_at, error FROM runs
                 ORDER BY started_at DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit as i64], Self::run_from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    pub fn get_run(&self, name: &str) -> Result<Option<RunRecord>, StoreError> {
        self.conn()
            .query_row(
                "SELECT name, task, mode, phase, started_at, ended_at, error FROM runs WHERE name = ?1",
                params![name],
                Self::run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The actions of a run, in the order they were submitted.
    pub fn run_actions(&self, run: &str) -> Result<Vec<ActionRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT name, parent, task, kind, grp, phase, attempts, started_at, ended_at, error, cache_hit
                 FROM actions WHERE run = ?1 ORDER BY started_at, rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![run], |r| {
                let kind: String = r.get(3)?;
                let phase: String = r.get(5)?;
                Ok(ActionRecord {
                    name: r.get(0)?,
                    parent: r.get(1)?,
                    task_name: r.get(2)?,
                    kind: ActionKind::parse(&kind).unwrap_or(ActionKind::Task),
                    group: r.get(4)?,
                    phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
                    attempts: r.get(6)?,
                    started_at: r.get(7)?,
                    ended_at: r.get(8)?,
                    error: r.get(9)?,
                    cache_hit: r.get::<_, i64>(10)? != 0,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, Submission};

    #[test]
    fn cache_round_trip_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("sub/state.db")).unwrap();
        assert_eq!(store.cache_get("k").unwrap(), None);
        store.cache_put("k", "env.t", b"one").unwrap();
        assert_eq!(store.cache_get("k").unwrap().as_deref(), Some(&b"one"[..]));
        store.cache_put("k", "env.t", b"two").unwrap();
        assert_eq!(store.cache_get("k").unwrap().as_deref(), Some(&b"two"[..]));
        assert!(store.cache_delete("k").unwrap());
        assert!(!store.cache_delete("k").unwrap());
    }

    #[test]
    fn cache_is_shared_between_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        LocalStore::open(&path)
            .unwrap()
            .cache_put("k", "t", b"v")
            .unwrap();
        let other = LocalStore::open(&path).unwrap();
        assert_eq!(other.cache_get("k").unwrap().as_deref(), Some(&b"v"[..]));
        other.cache_put("k2", "u", b"w").unwrap();
        assert_eq!(other.cache_clear(Some("t")).unwrap(), 1);
        assert_eq!(other.cache_get("k2").unwrap().as_deref(), Some(&b"w"[..]));
    }

    #[test]
    fn runs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("state.db")).unwrap();
        let ledger = Ledger::new("r1");
        ledger.record_root("env.main");
        let (child, _) = ledger.submit(&Submission {
            parent: "a0",
            task_identity: "id",
            inputs_hash: "h",
            group: None,
            task_name: "env.child",
            kind: ActionKind::Task,
        });
        ledger.start_attempt(&child).unwrap();
        ledger
            .finish(&child, Phase::Failed, Some("boom".into()), false)
            .unwrap();
        let run = RunRecord {
            name: "r1".into(),
            task_name: "env.main".into(),
            mode: "local".into(),
            phase: Phase::Failed,
            started_at: 1.0,
            ended_at: Some(2.0),
            error: Some("boom".into()),
        };
        store.save_run(&run, &ledger.records()).unwrap();
        store.save_run(&run, &ledger.records()).unwrap();
        assert_eq!(store.get_run("r1").unwrap(), Some(run.clone()));
        assert_eq!(store.list_runs(10).unwrap(), vec![run]);
        let actions = store.run_actions("r1").unwrap();
        assert_eq!(actions, ledger.records());
        assert_eq!(store.get_run("nope").unwrap(), None);
    }

    #[test]
    fn unwritable_location_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = LocalStore::open(file.join("state.db"))
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("state.db"), "{err}");
    }
}
