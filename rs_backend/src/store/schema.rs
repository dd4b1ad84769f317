//! The database schema. Bump VERSION and add a migration step when it changes.

use rusqlite::Connection;

use super::{Ctx, StoreError};

pub const VERSION: i64 = 9;

const CREATE: &str = r#"
CREATE TABLE runs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    org         TEXT NOT NULL,
    project     TEXT NOT NULL,
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    run_spec    BLOB,
    created_ms  INTEGER NOT NULL,
    trigger_task     TEXT,
    trigger_name     TEXT,
    trigger_revision INTEGER,
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
    restarts        INTEGER NOT NULL DEFAULT 0,
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

/// Outputs of successful cached tasks, by the cache key their callers computed: a reference to
/// the producing action's outputs, or (local runs, `output_uri` empty) the outputs themselves.
const CREATE_CACHE: &str = "
CREATE TABLE IF NOT EXISTS cache (
    key         TEXT PRIMARY KEY,
    task_name   TEXT NOT NULL,
    output_uri  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    outputs     BLOB
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

/// Deployed tasks (TaskService): one serialized `task.TaskSpec` per (project, domain, name,
/// version). `created_ms` is the first deploy of that version: a redeploy replaces the spec
/// but keeps its place in "latest" order, as a cluster does.
const CREATE_TASKS: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    project     TEXT NOT NULL,
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    spec        BLOB NOT NULL,
    env_name    TEXT NOT NULL,
    short_name  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (project, domain, name, version)
);
CREATE INDEX IF NOT EXISTS tasks_by_age ON tasks (project, domain, name, created_ms);
";

/// Triggers (TriggerService) of deployed tasks. `spec` is a `trigger.TriggerSpec` (inputs,
/// run spec, task version), `automation` a `task.TriggerAutomationSpec`. The scheduler fires
/// ticks after `since_ms`: the later of the last activation and `last_tick_ms`, the scheduled
/// time of the last run it created. Deleted triggers are kept, marked by `deleted_ms`.
const CREATE_TRIGGERS: &str = "
CREATE TABLE IF NOT EXISTS triggers (
    project       TEXT NOT NULL,
    domain        TEXT NOT NULL,
    task_name     TEXT NOT NULL,
    name          TEXT NOT NULL,
    spec          BLOB NOT NULL,
    automation    BLOB NOT NULL,
    active        INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    deployed_ms   INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    activated_ms  INTEGER NOT NULL,
    last_tick_ms  INTEGER,
    triggered_ms  INTEGER,
    deleted_ms    INTEGER,
    PRIMARY KEY (project, domain, task_name, name)
);
";

/// Secrets (SecretService), scoped to a project and domain, a domain, or everything (empty
/// strings). `value` is sealed (see the secrets module); plain values never reach the database.
const CREATE_SECRETS: &str = "
CREATE TABLE IF NOT EXISTS secrets (
    project     TEXT NOT NULL,
    domain      TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    value       BLOB NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (project, domain, name)
);
";

/// Tables added after the first schema: every migration creates whichever are missing.
const ADDED_TABLES: &[(&str, &str)] = &[
    (CREATE_CACHE, "create cache table"),
    (CREATE_PROJECTS, "create projects table"),
    (CREATE_TASKS, "create tasks table"),
    (CREATE_TRIGGERS, "create triggers table"),
    (CREATE_SECRETS, "create secrets table"),
];

fn add_tables(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    for (sql, what) in ADDED_TABLES {
        tx.execute_batch(sql).ctx(what)?;
    }
    Ok(())
}

pub fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .ctx("read schema version")?;
    match version {
        VERSION => Ok(()),
        newer if newer > VERSION => Err(StoreError::NewerSchema(newer)),
        _ => {
            // Another process may be migrating the same file: read the version again once
            // this one holds the write lock.
            let tx = super::write_transaction(conn).ctx("begin schema migration")?;
            let older: i64 = tx
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .ctx("read schema version")?;
            if older == VERSION {
                return Ok(());
            }
            if older == 0 {
                tx.execute_batch(CREATE).ctx("create schema")?;
            }
            // Version 2 added actions.cache_hit (and the cache table).
            if older == 1 {
                tx.execute_batch(
                    "ALTER TABLE actions ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;",
                )
                .ctx("add actions.cache_hit")?;
            }
            // Versions 3 to 6 only added tables; 7 records which trigger started a run.
            if (1..7).contains(&older) {
                tx.execute_batch(
                    "ALTER TABLE runs ADD COLUMN trigger_task TEXT;
                     ALTER TABLE runs ADD COLUMN trigger_name TEXT;
                     ALTER TABLE runs ADD COLUMN trigger_revision INTEGER;",
                )
                .ctx("add runs.trigger_*")?;
            }
            // Version 8 records runs executed in-process (local mode): who runs them, and
            // their actions' inputs and outputs inline.
            if older < 8 {
                tx.execute_batch(
                    "ALTER TABLE runs ADD COLUMN executor INTEGER NOT NULL DEFAULT 0;
                     ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
                     ALTER TABLE runs ADD COLUMN owner_start INTEGER;
                     ALTER TABLE actions ADD COLUMN inputs BLOB;
                     ALTER TABLE actions ADD COLUMN outputs BLOB;",
                )
                .ctx("add in-process run columns")?;
                // Only unfinished actions (and those still naming a process) are looked up
                // by phase; indexing every finished one made each insert pay for nothing.
                tx.execute_batch(&format!(
                    "DROP INDEX IF EXISTS actions_by_phase;
                     CREATE INDEX IF NOT EXISTS actions_unfinished ON actions (phase)
                         WHERE phase NOT IN ({terminal});
                     CREATE INDEX IF NOT EXISTS actions_with_process ON actions (pid)
                         WHERE pid IS NOT NULL;",
                    terminal = super::terminal_phase_list()
                ))
                .ctx("index unfinished actions")?;
            }
            // Version 9 counts the attempts a backend restart interrupted (they use no retry).
            if (1..9).contains(&older) {
                tx.execute_batch(
                    "ALTER TABLE actions ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;",
                )
                .ctx("add actions.restarts")?;
            }
            add_tables(&tx)?;
            // The cache table (version 2 on) gained inline outputs in version 8.
            if (2..8).contains(&older) {
                tx.execute_batch("ALTER TABLE cache ADD COLUMN outputs BLOB;")
                    .ctx("add cache.outputs")?;
            }
            // Version 6 stopped keeping projects per org (the backend is single-tenant).
            tx.execute_batch("UPDATE OR IGNORE projects SET org = '' WHERE org != '';")
                .ctx("move projects out of orgs")?;
            tx.pragma_update(None, "user_version", VERSION)
                .ctx("record schema version")?;
            tx.commit().ctx("commit schema migration")
        }
    }
}
