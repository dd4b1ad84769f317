//! The task cache: where the outputs of a successful cached task are, by cache key.
//!
//! Clients compute the key (task identity, interface, inputs by content, version, salt); the
//! backend only keeps key -> outputs. Entries point at the producing action's outputs, which
//! are never deleted while the data dir lives.

use super::CachedStatements;
use rusqlite::{params, OptionalExtension};

use super::{Ctx, Store, StoreError};

impl Store {
    /// The output reference cached under `key`, if any, recorded at `oldest_ms` or later
    /// (None: of any age).
    pub fn cache_get(
        &self,
        key: &str,
        oldest_ms: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_one(
                "SELECT output_uri FROM cache WHERE key = ?1 AND created_ms >= ?2",
                params![key, oldest_ms.unwrap_or(i64::MIN)],
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
            .exec(
                "INSERT INTO cache (key, task_name, output_uri, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET task_name = ?2, output_uri = ?3, created_ms = ?4",
                params![key, task_name, output_uri, now_ms],
            )
            .ctx("write cache entry")?;
        Ok(())
    }

    /// What is cached under `key` for an in-process run, recorded at `oldest_ms` or later:
    /// the outputs themselves when recorded inline, else the reference to a backend action's
    /// outputs.
    pub fn cache_entry(
        &self,
        key: &str,
        oldest_ms: Option<i64>,
    ) -> Result<Option<CacheEntry>, StoreError> {
        self.conn()
            .query_one(
                "SELECT output_uri, outputs FROM cache WHERE key = ?1 AND created_ms >= ?2",
                params![key, oldest_ms.unwrap_or(i64::MIN)],
                |row| {
                    let uri: String = row.get(0)?;
                    let outputs: Option<Vec<u8>> = row.get(1)?;
                    Ok(match outputs {
                        Some(bytes) => CacheEntry::Inline(bytes),
                        None => CacheEntry::Uri(uri),
                    })
                },
            )
            .optional()
            .ctx("read cache entry")
    }

    /// Records (or replaces) outputs cached under `key`, kept inline.
    pub fn cache_put_inline(
        &self,
        key: &str,
        task_name: &str,
        outputs: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn()
            .exec(
                "INSERT INTO cache (key, task_name, output_uri, created_ms, outputs)
                 VALUES (?1, ?2, '', ?4, ?3)
                 ON CONFLICT (key) DO UPDATE SET task_name = ?2, output_uri = '', outputs = ?3,
                     created_ms = ?4",
                params![key, task_name, outputs, now_ms],
            )
            .ctx("write cache entry")?;
        Ok(())
    }
}

/// A cache entry as an in-process run reads it.
#[derive(Debug, PartialEq)]
pub enum CacheEntry {
    Inline(Vec<u8>),
    Uri(String),
}
