//! 32-byte keys kept in the data dir, readable by the backend's user only (0600).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::BackendError;

pub const KEY_BYTES: usize = 32;

/// What to do with a key file of the wrong size.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnDamage {
    /// Make a new key (for keys whose loss only invalidates short-lived tokens).
    Replace,
    /// Refuse to start: what the key protects would be lost with it.
    Refuse,
}

/// Reads the key at `path`, creating it on first use. `what` names it in messages.
pub fn load_or_create(
    path: &Path,
    what: &str,
    on_damage: OnDamage,
) -> Result<[u8; KEY_BYTES], BackendError> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() == KEY_BYTES => {
            let mut key = [0u8; KEY_BYTES];
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(bytes) if on_damage == OnDamage::Refuse => {
            return Err(BackendError::InvalidConfig(format!(
                "the {what} {} has {} bytes, not {KEY_BYTES}: restore it from a backup (a new key \
                 could not read what the old one protects)",
                path.display(),
                bytes.len()
            )))
        }
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the {what} has the wrong size; making a new one");
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(BackendError::io(
                format!("read the {what} {}", path.display()),
                err,
            ))
        }
    }
    let mut key = [0u8; KEY_BYTES];
    getrandom::getrandom(&mut key).map_err(|e| {
        BackendError::io(
            format!("generate the {what}"),
            std::io::Error::other(e.to_string()),
        )
    })?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| BackendError::io(format!("write the {what} {}", path.display()), e))?;
    Ok(key)
}
