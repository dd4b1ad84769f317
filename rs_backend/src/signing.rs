//! Signed URLs for the backend's own storage: a stand-in for an object store's presigned
//! URLs. A URL names a method, a path under the storage root, an expiry and (for uploads)
//! the content's MD5; its signature is an HMAC-SHA256 under a key kept in the data dir, so
//! URLs handed out before a restart keep working until they expire.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::BackendError;
use crate::keyfile::{self, OnDamage, KEY_BYTES};

type HmacSha256 = Hmac<Sha256>;

pub struct UrlSigner {
    key: [u8; KEY_BYTES],
}

/// What a signature covers.
pub struct Grant<'a> {
    pub method: &'a str,
    /// Relative to the storage root, '/'-separated, no leading '/'.
    pub path: &'a str,
    /// Unix seconds.
    pub expires: i64,
    /// Base64 MD5 the uploaded content must have ("" for none).
    pub content_md5: &'a str,
}

impl Grant<'_> {
    fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.method, self.path, self.expires, self.content_md5
        )
    }
}

impl UrlSigner {
    /// Loads the key from `path`, creating it (readable by the owner only) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, BackendError> {
        // A lost signing key only invalidates URLs already handed out.
        let key = keyfile::load_or_create(path, "signing key", OnDamage::Replace)?;
        Ok(Self { key })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    pub fn sign(&self, grant: &Grant<'_>) -> String {
        let mut mac = self.mac();
        mac.update(grant.text().as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Constant-time check of a signature.
    pub fn verify(&self, grant: &Grant<'_>, signature: &str) -> bool {
        let Some(bytes) = unhex(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(grant.text().as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let signer = UrlSigner::load_or_create(&path).unwrap();
        let grant = Grant {
            method: "PUT",
            path: "uploads/p/d/x/file.tgz",
            expires: 100,
            content_md5: "abc=",
        };
        let signature = signer.sign(&grant);
        assert!(signer.verify(&grant, &signature));
        let reloaded = UrlSigner::load_or_create(&path).unwrap();
        assert!(reloaded.verify(&grant, &signature));
        for other in [
            Grant {
                method: "GET",
                ..grant
            },
            Grant {
                path: "uploads/p/d/x/other.tgz",
                ..grant
            },
            Grant {
                expires: 101,
                ..grant
            },
            Grant {
                content_md5: "",
                ..grant
            },
        ] {
            assert!(!signer.verify(&other, &signature));
        }
        assert!(!signer.verify(&grant, "zz"));
        assert!(!signer.verify(&grant, ""));
    }
}
