//! Secrets as stored: sealed values by (project, domain, name); empty project and domain
//! mean a wider scope.

use rusqlite::{params, OptionalExtension};

use super::{CachedStatements, Ctx, Store, StoreError};

#[derive(Clone, Debug)]
pub struct SecretRow {
    pub project: String,
    pub domain: String,
    pub name: String,
    pub kind: i32,
    /// Sealed (encrypted and authenticated) value.
    pub sealed: Vec<u8>,
    pub created_ms: i64,
}

const COLUMNS: &str = "project, domain, name, kind, value, created_ms";

fn secret_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        project: row.get(0)?,
        domain: row.get(1)?,
        name: row.get(2)?,
        kind: row.get(3)?,
        sealed: row.get(4)?,
        created_ms: row.get(5)?,
    })
}

impl Store {
    /// Adds a secret; false if one with this name exists in this scope.
    pub fn secret_insert(&self, row: &SecretRow) -> Result<bool, StoreError> {
        let added = self
            .conn()
            .execute(
                "INSERT INTO secrets (project, domain, name, kind, value, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![
                    row.project,
                    row.domain,
                    row.name,
                    row.kind,
                    row.sealed,
                    row.created_ms
                ],
            )
            .ctx("insert secret")?;
        Ok(added == 1)
    }

    /// Replaces a secret's value; false if it does not exist.
    pub fn secret_update(&self, row: &SecretRow) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .execute(
                "UPDATE secrets SET kind = ?4, value = ?5
                 WHERE project = ?1 AND domain = ?2 AND name = ?3",
                params![row.project, row.domain, row.name, row.kind, row.sealed],
            )
            .ctx("update secret")?;
        Ok(changed == 1)
    }

    pub fn secret_get(
        &self,
        project: &str,
        domain: &str,
        name: &str,
    ) -> Result<Option<SecretRow>, StoreError> {
        self.conn()
            .query_one(
                &format!(
                    "SELECT {COLUMNS} FROM secrets WHERE project = ?1 AND domain = ?2 AND name = ?3"
                ),
                params![project, domain, name],
                secret_row,
            )
            .optional()
            .ctx("read secret")
    }

    pub fn secret_delete(
        &self,
        project: &str,
        domain: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .execute(
                "DELETE FROM secrets WHERE project = ?1 AND domain = ?2 AND name = ?3",
                params![project, domain, name],
            )
            .ctx("delete secret")?;
        Ok(removed == 1)
    }

    /// Secrets of a scope and the scopes inside it (None: any), by name; values stay sealed.
    pub fn secret_list(
        &self,
        project: Option<&str>,
        domain: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<SecretRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM secrets
                 WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR domain = ?2)
                 ORDER BY name, domain, project LIMIT ?3 OFFSET ?4"
            ))
            .ctx("prepare secret listing")?;
        let rows = statement
            .query_map(params![project, domain, limit, offset], secret_row)
            .ctx("list secrets")?;
        rows.collect::<Result<Vec<_>, _>>().ctx("read secret row")
    }
}
