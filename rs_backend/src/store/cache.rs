//! The task cache: where the outputs of a successful cached task are, by cache key.
//!
//! Clients compute the key (task identity, interface, inputs by content, version, salt); the
//! backend only keeps key -> outputs. Entries point at the producing action's outputs, which
//! are never deleted while the data dir lives.

use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};

impl Store {
    /// The output reference cached under `key`, if any.
    pub fn cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT output_uri FROM cache WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .ctx("read cache entry")
    }

    /// Records (or replaces) the outputs cached under `key`.
    pub fn cache_put(
        &self,
        key: &str,
        task_name: &str,
        output_uri: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO cache (key, task_name, output_uri, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET task_name = ?2, output_uri = ?3, created_ms = ?4",
                params![key, task_name, output_uri, now_ms],
            )
            .ctx("write cache entry")?;
        Ok(())
    }
}
