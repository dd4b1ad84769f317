//! Deployed tasks, as TaskService keeps them: one serialized `task.TaskSpec` per
//! (project, domain, name, version).

use rusqlite::{params, OptionalExtension, Row};

use super::{CachedStatements, Ctx, Store, StoreError};

/// One deployed version of a task.
#[derive(Clone, Debug)]
pub struct TaskRow {
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
    pub spec: Vec<u8>,
    pub env_name: String,
    pub short_name: String,
    pub created_ms: i64,
}

/// Which task names a listing selects.
#[derive(Clone, Debug, Default)]
pub struct TaskQuery {
    pub project: Option<String>,
    pub domain: Option<String>,
    /// Exactly this name.
    pub name: Option<String>,
    /// Names containing this text (e.g. `"env."` for an environment's tasks).
    pub name_contains: Option<String>,
    /// Oldest first (by first deploy); newest first otherwise.
    pub ascending: bool,
}

const COLUMNS: &str = "project, domain, name, version, spec, env_name, short_name, created_ms";

fn task_row(row: &Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        project: row.get(0)?,
        domain: row.get(1)?,
        name: row.get(2)?,
        version: row.get(3)?,
        spec: row.get(4)?,
        env_name: row.get(5)?,
        short_name: row.get(6)?,
        created_ms: row.get(7)?,
    })
}

/// `text` as a LIKE pattern matching itself anywhere (with `\` as the escape).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Deploys a version: inserted, or (same version again) its spec replaced. True when the
    /// version is new.
    pub fn task_upsert(&self, task: &TaskRow, now_ms: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        let existed: bool = conn
            .query_one(
                "SELECT 1 FROM tasks WHERE project = ?1 AND domain = ?2 AND name = ?3 AND version = ?4",
                params![task.project, task.domain, task.name, task.version],
                |_| Ok(()),
            )
            .optional()
            .ctx("look up task version")?
            .is_some();
        conn.execute(
            "INSERT INTO tasks (project, domain, name, version, spec, env_name, short_name, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (project, domain, name, version) DO UPDATE SET
                 spec = excluded.spec, env_name = excluded.env_name,
                 short_name = excluded.short_name, updated_ms = excluded.updated_ms",
            params![
                task.project,
                task.domain,
                task.name,
                task.version,
                task.spec,
                task.env_name,
                task.short_name,
                now_ms
            ],
        )
        .ctx("deploy task")?;
        Ok(!existed)
    }

    pub fn task_get(
        &self,
        project: &str,
        domain: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<TaskRow>, StoreError> {
        self.conn()
            .query_one(
                &format!(
                    "SELECT {COLUMNS} FROM tasks
                     WHERE project = ?1 AND domain = ?2 AND name = ?3 AND version = ?4"
                ),
                params![project, domain, name, version],
                task_row,
            )
            .optional()
            .ctx("read task")
    }

    /// The latest version (by first deploy) of each task name the query selects, in the
    /// query's order; `offset`/`limit` page through them.
    pub fn task_latest(
        &self,
        query: &TaskQuery,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let order = if query.ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM (
                 SELECT *, ROW_NUMBER() OVER (
                     PARTITION BY project, domain, name ORDER BY created_ms DESC, version DESC
                 ) AS rn
                 FROM tasks
                 WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR domain = ?2)
                   AND (?3 IS NULL OR name = ?3) AND (?4 IS NULL OR name LIKE ?4 ESCAPE '\\')
             ) WHERE rn = 1
             ORDER BY created_ms {order}, name {order}
             LIMIT ?5 OFFSET ?6"
        );
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql).ctx("prepare task listing")?;
        let rows = statement
            .query_map(
                params![
                    query.project,
                    query.domain,
                    query.name,
                    query.name_contains.as_deref().map(contains_pattern),
                    limit,
                    offset
                ],
                task_row,
            )
            .ctx("list tasks")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read task row")
    }

    /// Every version of one task, newest first.
    pub fn task_versions(
        &self,
        project: &str,
        domain: &str,
        name: &str,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM tasks WHERE project = ?1 AND domain = ?2 AND name = ?3
                 ORDER BY created_ms DESC, version DESC LIMIT ?4 OFFSET ?5"
            ))
            .ctx("prepare version listing")?;
        let rows = statement
            .query_map(params![project, domain, name, limit, offset], task_row)
            .ctx("list task versions")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read task row")
    }
}
