//! Projects, as ProjectService keeps them: one serialized `project.Project` per (org, id).

use rusqlite::{params, OptionalExtension};

use super::{CachedStatements, Ctx, Store, StoreError};

/// A stored project: its id and the serialized `flyteidl2.project.Project`.
pub struct ProjectRow {
    pub id: String,
    pub project: Vec<u8>,
}

impl Store {
    /// Adds a project; false if one with this id already exists in the org.
    pub fn project_insert(
        &self,
        org: &str,
        id: &str,
        project: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let added = self
            .conn()
            .execute(
                "INSERT INTO projects (org, id, project, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (org, id) DO NOTHING",
                params![org, id, project, now_ms],
            )
            .ctx("insert project")?;
        Ok(added == 1)
    }

    /// Replaces a project; false if it does not exist.
    pub fn project_update(&self, org: &str, id: &str, project: &[u8]) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE projects SET project = ?3 WHERE org = ?1 AND id = ?2",
                params![org, id, project],
            )
            .ctx("update project")?;
        Ok(changed == 1)
    }

    pub fn project_get(&self, org: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn()
            .query_one(
                "SELECT project FROM projects WHERE org = ?1 AND id = ?2",
                params![org, id],
                |row| row.get(0),
            )
            .optional()
            .ctx("read project")
    }

    /// Up to `limit` projects of `org` with ids after `after`, in id order.
    pub fn project_page(
        &self,
        org: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ProjectRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT id, project FROM projects WHERE org = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )
            .ctx("prepare project listing")?;
        let rows = statement
            .query_map(params![org, after, limit], |row| {
                Ok(ProjectRow {
                    id: row.get(0)?,
                    project: row.get(1)?,
                })
            })
            .ctx("list projects")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read project row")
    }
}
