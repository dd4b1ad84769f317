//! The database schema. Bump VERSION and add a migration step when it changes.

use rusqlite::Connection;

use super::{Ctx, StoreError};

pub const VERSION: i64 = 3;

const CREATE: &str = r#"
CREATE TABLE runs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    org         TEXT NOT NULL,
    project     TEXT NOT NULL,
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    run_spec    BLOB,
    created_ms  INTEGER NOT NULL,
    UNIQUE (org, project, domain, name)
);

CREATE TABLE actions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    org             TEXT NOT NULL,
    project         TEXT NOT NULL,
    domain          TEXT NOT NULL,
    run             TEXT NOT NULL,
    name            TEXT NOT NULL,
    parent          TEXT,
    grp             TEXT NOT NULL,
    kind            INTEGER NOT NULL,
    spec            BLOB NOT NULL,
    task_name       TEXT NOT NULL,
    task_version    TEXT NOT NULL,
    input_uri       TEXT NOT NULL,
    run_output_base TEXT NOT NULL,
    phase           INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    system_retries  INTEGER NOT NULL DEFAULT 0,
    error           BLOB,
    output_uri      TEXT,
    abort_reason    TEXT,
    created_ms      INTEGER NOT NULL,
    started_ms      INTEGER,
    ended_ms        INTEGER,
    pid             INTEGER,
    proc_start      INTEGER,
    version         INTEGER NOT NULL DEFAULT 0,
    cache_hit       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org, project, domain, run, name)
);
CREATE INDEX actions_by_parent ON actions (org, project, domain, run, parent);
CREATE INDEX actions_by_phase ON actions (phase);

CREATE TABLE attempts (
    action_seq  INTEGER NOT NULL REFERENCES actions (seq),
    attempt     INTEGER NOT NULL,
    phase       INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    error       BLOB,
    output_uri  TEXT,
    log_path    TEXT NOT NULL,
    PRIMARY KEY (action_seq, attempt)
);
"#;

/// Outputs of successful cached tasks, by the cache key their callers computed.
const CREATE_CACHE: &str = "
CREATE TABLE IF NOT EXISTS cache (
    key         TEXT PRIMARY KEY,
    task_name   TEXT NOT NULL,
    output_uri  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
";

/// Projects (ProjectService). Each row is one flyteidl2 `project.Project`, kept whole.
const CREATE_PROJECTS: &str = "
CREATE TABLE IF NOT EXISTS projects (
    org         TEXT NOT NULL,
    id          TEXT NOT NULL,
    project     BLOB NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (org, id)
);
";

pub fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .ctx("read schema version")?;
    match version {
        0 => {
            let tx = conn.transaction().ctx("begin schema creation")?;
            tx.execute_batch(CREATE).ctx("create schema")?;
            tx.execute_batch(CREATE_CACHE).ctx("create cache table")?;
            tx.execute_batch(CREATE_PROJECTS)
                .ctx("create projects table")?;
            tx.pragma_update(None, "user_version", VERSION)
                .ctx("record schema version")?;
            tx.commit().ctx("commit schema creation")
        }
        1 => {
            // Version 2 added the cache: a column on actions and a table of entries.
            let tx = conn.transaction().ctx("begin schema migration to 2")?;
            tx.execute_batch(
                "ALTER TABLE actions ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;",
            )
            .ctx("add actions.cache_hit")?;
            tx.execute_batch(CREATE_CACHE).ctx("create cache table")?;
            tx.execute_batch(CREATE_PROJECTS)
                .ctx("create projects table")?;
            tx.pragma_update(None, "user_version", VERSION)
                .ctx("record schema version")?;
            tx.commit().ctx("commit schema migration to 3")
        }
        2 => {
            // Version 3 added projects.
            let tx = conn.transaction().ctx("begin schema migration to 3")?;
            tx.execute_batch(CREATE_PROJECTS)
                .ctx("create projects table")?;
            tx.pragma_update(None, "user_version", VERSION)
                .ctx("record schema version")?;
            tx.commit().ctx("commit schema migration to 3")
        }
        VERSION => Ok(()),
        newer => Err(StoreError::NewerSchema(newer)),
    }
}
