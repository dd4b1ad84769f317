//! Secret values at rest and on their way into a task.
//!
//! Values are sealed with ChaCha20-Poly1305 under a key kept in the data dir (0600, see
//! [`keyfile`]): the database never holds a plain value, and a value cannot be moved to
//! another name or scope (the name and scope are the sealing's associated data). A task gets
//! exactly the secrets its template declares, looked up by key from the narrowest scope out
//! (project and domain, then domain, then everything), as environment variables or files.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use flyteidl2::flyteidl::core::{secret::MountType, Secret as DeclaredSecret};

use crate::error::BackendError;
use crate::keyfile::{self, OnDamage};
use crate::store::Store;

/// Where mounted secrets go inside an attempt's work dir (a cluster mounts them at
/// /etc/flyte/secrets; `FLYTE_SECRETS_DEFAULT_DIR` tells the task where they are).
pub const MOUNT_DIR: &str = ".flyte-secrets";
/// The variable naming the directory of mounted secrets (set by a cluster too).
pub use crate::contract::SECRETS_DIR as MOUNT_DIR_ENV;

pub struct SecretBox {
    key: LessSafeKey,
}

fn aad(project: &str, domain: &str, name: &str) -> Vec<u8> {
    format!("{project}\n{domain}\n{name}").into_bytes()
}

impl SecretBox {
    pub fn load_or_create(path: &Path) -> Result<Self, BackendError> {
        // Losing this key loses every secret: a damaged key file stops the backend.
        let bytes = keyfile::load_or_create(path, "secrets key", OnDamage::Refuse)?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| BackendError::InvalidConfig("the secrets key is unusable".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    pub fn seal(&self, project: &str, domain: &str, name: &str, value: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).expect("the OS random source is available");
        let mut sealed = value.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(project, domain, name)),
                &mut sealed,
            )
            .expect("sealing a value of any length succeeds");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, project: &str, domain: &str, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(project, domain, name)), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// The value of secret `key` for a task of `project`/`domain`, from the narrowest scope that
/// has it.
pub fn resolve(
    store: &Store,
    sealer: &SecretBox,
    project: &str,
    domain: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    for (p, d) in [(project, domain), ("", domain), ("", "")] {
        let row = store
            .secret_get(p, d, key)
            .map_err(|e| format!("reading secret {key:?}: {e}"))?;
        if let Some(row) = row {
            return sealer
                .open(&row.project, &row.domain, &row.name, &row.sealed)
                .map(Some)
                .ok_or_else(|| format!("secret {key:?} does not open with this backend's key"));
        }
    }
    Ok(None)
}

/// A secret's value from a backend's data dir without a running backend (what local mode
/// uses): None if the data dir has no secrets or not this one.
pub fn read_from_data_dir(
    data_dir: &Path,
    project: &str,
    domain: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    let layout = crate::layout::Layout::new(data_dir.to_path_buf());
    let (db, key_path) = (layout.db_path(), layout.secrets_key_path());
    if !db.is_file() || !key_path.is_file() {
        return Ok(None);
    }
    let store = Store::open(&db).map_err(|e| format!("opening {}: {e}", db.display()))?;
    let sealer = SecretBox::load_or_create(&key_path).map_err(|e| e.to_string())?;
    resolve(&store, &sealer, project, domain, key)
}

/// What an attempt gets for its declared secrets: environment variables, and files written
/// (0600) under `work_dir`.
pub struct Delivered {
    pub env: Vec<(String, String)>,
    pub files: Vec<PathBuf>,
}

/// Delivers the declared secrets, or names the ones that do not exist in any scope.
pub fn deliver(
    store: &Store,
    sealer: &SecretBox,
    project: &str,
    domain: &str,
    declared: &[DeclaredSecret],
    work_dir: &Path,
) -> Result<Delivered, String> {
    let mut delivered = Delivered {
        env: Vec::new(),
        files: Vec::new(),
    };
    let mut missing = Vec::new();
    for secret in declared {
        let Some(value) = resolve(store, sealer, project, domain, &secret.key)? else {
            missing.push(secret.key.clone());
            continue;
        };
        let as_file = secret.mount_requirement == MountType::File as i32;
        if as_file {
            let dir = work_dir.join(MOUNT_DIR);
            write_private(&dir, &secret.key, &value)?;
            delivered.files.push(dir.join(&secret.key));
            delivered
                .env
                .push((MOUNT_DIR_ENV.into(), dir.display().to_string()));
        } else {
            let name = if secret.env_var.is_empty() {
                secret.key.to_uppercase().replace('-', "_")
            } else {
                secret.env_var.clone()
            };
            let text = String::from_utf8(value).map_err(|_| {
                format!(
                    "secret {:?} is binary, so it cannot be an environment variable; declare it \
                     with mount=\"/etc/flyte/secrets\" to get it as a file",
                    secret.key
                )
            })?;
            delivered.env.push((name, text));
        }
    }
    if missing.is_empty() {
        Ok(delivered)
    } else {
        Err(format!(
            "secret(s) {} not found for {project}/{domain}, in that domain, or for all projects; \
             create them with `flyte create secret`",
            missing
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn write_private(dir: &Path, key: &str, value: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    if key.is_empty() || key.contains(['/', '\0']) || key.starts_with('.') {
        return Err(format!("secret key {key:?} cannot be a file name"));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(key);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("writing secret file {}: {e}", path.display()))?;
    file.write_all(value)
        .map_err(|e| format!("writing secret file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = SecretBox::load_or_create(&dir.path().join("k")).unwrap();
        let sealed = sealer.seal("p", "d", "api-key", b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            sealer.open("p", "d", "api-key", &sealed).unwrap(),
            b"hunter2"
        );
        assert!(sealer.open("p", "d", "other", &sealed).is_none());
        assert!(sealer.open("", "d", "api-key", &sealed).is_none());
        // The same key file opens it after a restart; the file is the owner's only.
        let again = SecretBox::load_or_create(&dir.path().join("k")).unwrap();
        assert_eq!(
            again.open("p", "d", "api-key", &sealed).unwrap(),
            b"hunter2"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("k"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A damaged key refuses to start rather than losing the secrets.
        std::fs::write(dir.path().join("k"), b"short").unwrap();
        assert!(SecretBox::load_or_create(&dir.path().join("k")).is_err());
    }
}
