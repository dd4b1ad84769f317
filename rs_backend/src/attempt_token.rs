//! The credential of an attempt: each process the backend starts for an attempt gets a token
//! naming that attempt, signed with a key kept in the data dir. It lets the attempt's process
//! report on its own action (`ActionsService.Update`) and nothing else's, and — when callers
//! must authenticate — lets it call the backend at all (to start children, watch them).
//! Nothing is stored per attempt: the signature proves the backend issued the token, so tokens
//! of attempts that outlive a backend restart keep working.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::BackendError;
use crate::keyfile::{self, OnDamage, KEY_BYTES};

type HmacSha256 = Hmac<Sha256>;

/// Marks the token format (and its version), so a token is told apart from an access token.
const PREFIX: &str = "flyte-attempt.v1";

/// Which attempt a token was issued to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptClaim {
    /// The action's sequence number in the store.
    pub seq: i64,
    pub attempt: u32,
}

#[derive(Clone)]
pub struct AttemptKeys {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for AttemptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttemptKeys(..)")
    }
}

impl AttemptKeys {
    /// Loads the key from `path`, creating it (readable by the owner only) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, BackendError> {
        // A lost key only invalidates the tokens of attempts running now.
        let key = keyfile::load_or_create(path, "attempt key", OnDamage::Replace)?;
        Ok(Self { key })
    }

    fn mac(&self, claim: AttemptClaim) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("{PREFIX}\n{}\n{}", claim.seq, claim.attempt).as_bytes());
        mac
    }

    /// The token handed to the process of `claim`'s attempt.
    pub fn issue(&self, claim: AttemptClaim) -> String {
        let signature: String = self
            .mac(claim)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{PREFIX}.{}.{}.{signature}", claim.seq, claim.attempt)
    }

    /// The attempt a token was issued to, if this backend issued it (constant-time check).
    pub fn verify(&self, token: &str) -> Option<AttemptClaim> {
        let rest = token.strip_prefix(PREFIX)?.strip_prefix('.')?;
        let mut parts = rest.splitn(3, '.');
        let seq = parts.next()?.parse().ok()?;
        let attempt = parts.next()?.parse().ok()?;
        let signature = parts.next()?;
        if signature.len() != 64 {
            return None;
        }
        let bytes: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(signature.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        let claim = AttemptClaim { seq, attempt };
        self.mac(claim).verify_slice(&bytes).ok().map(|()| claim)
    }
}

/// The bearer token of a call's `authorization` metadata, if any.
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path) -> AttemptKeys {
        AttemptKeys::load_or_create(&dir.join("attempt.key")).unwrap()
    }

    #[test]
    fn a_token_names_its_attempt_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let claim = AttemptClaim {
            seq: 42,
            attempt: 3,
        };
        let token = keys(dir.path()).issue(claim);
        assert_eq!(keys(dir.path()).verify(&token), Some(claim));
    }

    #[test]
    fn forged_or_altered_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(dir.path());
        let token = keys.issue(AttemptClaim {
            seq: 42,
            attempt: 3,
        });
        let other = token.replacen(".42.", ".43.", 1);
        assert_eq!(keys.verify(&other), None);
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(super::tests::keys(elsewhere.path()).verify(&token), None);
        for junk in [
            "",
            "flyte-attempt.v1",
            "flyte-attempt.v1.1.1.zz",
            "Bearer x",
        ] {
            assert_eq!(keys.verify(junk), None, "{junk}");
        }
    }
}
