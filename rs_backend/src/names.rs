//! Identity of runs and actions, and the rules their names follow.
//!
//! Names become path segments under the data dir, so they are restricted to a safe alphabet:
//! no separators, no leading dot (which also rules out `.` and `..`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use flyteidl2::flyteidl::common::{ActionIdentifier, RunIdentifier};
use sha2::{Digest, Sha256};

const MAX_SEGMENT_LEN: usize = 255;

/// Identifies a run: org / project / domain / name. The org of a request is checked but not
/// kept: like a single-tenant Flyte 2 cluster, the backend drops it from run identifiers, so
/// clients that derive an org from their endpoint (or get one from `_U_ORG_NAME`) all reach
/// the same runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunKey {
    pub org: String,
    pub project: String,
    pub domain: String,
    pub name: String,
}

impl RunKey {
    /// Validates a run identifier from a request; `field` names it in error messages.
    pub fn from_proto(id: &RunIdentifier, field: &str) -> Result<Self, String> {
        check_segment(&format!("{field}.org"), &id.org, false)?;
        check_segment(&format!("{field}.project"), &id.project, false)?;
        check_segment(&format!("{field}.domain"), &id.domain, false)?;
        check_segment(&format!("{field}.name"), &id.name, true)?;
        Ok(Self {
            org: String::new(),
            project: id.project.clone(),
            domain: id.domain.clone(),
            name: id.name.clone(),
        })
    }

    pub fn to_proto(&self) -> RunIdentifier {
        RunIdentifier {
            org: self.org.clone(),
            project: self.project.clone(),
            domain: self.domain.clone(),
            name: self.name.clone(),
        }
    }

    pub fn action_id(&self, action: &str) -> ActionIdentifier {
        ActionIdentifier {
            run: Some(self.to_proto()),
            name: action.to_string(),
        }
    }
}

impl std::fmt::Display for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.org, self.project, self.domain, self.name
        )
    }
}

/// Validates an action identifier: a full run id and a non-empty action name.
pub fn action_key(id: &ActionIdentifier, field: &str) -> Result<(RunKey, String), String> {
    let run = id
        .run
        .as_ref()
        .ok_or_else(|| format!("{field}.run is required"))?;
    let key = RunKey::from_proto(run, &format!("{field}.run"))?;
    check_segment(&format!("{field}.name"), &id.name, true)?;
    Ok((key, id.name.clone()))
}

/// Checks one name segment. Empty is allowed only where `required` is false.
pub fn check_segment(field: &str, value: &str, required: bool) -> Result<(), String> {
    if value.is_empty() {
        return if required {
            Err(format!("{field} is required"))
        } else {
            Ok(())
        };
    }
    if value.len() > MAX_SEGMENT_LEN {
        return Err(format!(
            "{field} is {} bytes long; at most {MAX_SEGMENT_LEN} are allowed",
            value.len()
        ));
    }
    if value.starts_with('.') {
        return Err(format!("{field} {value:?} must not start with '.'"));
    }
    // "_" is how an empty segment is spelled on disk; allowing it would alias two ids.
    if value == "_" {
        return Err(format!("{field} must not be \"_\""));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{field} {value:?} contains {bad:?}; only ASCII letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    Ok(())
}

/// Longest run name a Flyte 2 cluster accepts (`RunIdentifier.name`): it becomes part of
/// Kubernetes object names, together with action names.
pub const MAX_RUN_NAME_LEN: usize = 30;

/// A run name a cluster accepts: a DNS-1035 label (lowercase letters, digits and '-', starting
/// with a letter, not ending with '-') of at most [`MAX_RUN_NAME_LEN`] characters.
pub fn check_run_name(name: &str) -> Result<(), String> {
    let rule = "a run name must be 1-30 characters: lowercase letters, digits and '-', \
                starting with a letter and not ending with '-'";
    let valid = !name.is_empty()
        && name.len() <= MAX_RUN_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!("invalid run name {name:?}: {rule}"))
    }
}

/// A fresh run name: "r" followed by 19 characters from [a-z0-9].
pub fn generate_run_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

    // RandomState is seeded from the OS once per process and perturbed per instance; mixing in
    // the time, pid and a counter makes names unique even if the OS seed were weak.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut digest = Sha256::new();
    digest.update(hasher.finish().to_le_bytes());
    digest.update(std::process::id().to_le_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    digest.update(nanos.to_le_bytes());
    let bytes = digest.finalize();

    let mut name = String::with_capacity(20);
    name.push('r');
    for byte in bytes.iter().take(19) {
        name.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_follow_the_cluster_rule() {
        for good in ["a", "r0", "my-run-1", &"a".repeat(30), &generate_run_name()] {
            assert!(check_run_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-a",
            "a-",
            "My-run",
            "a_b",
            "a.b",
            &"a".repeat(31),
        ] {
            let err = check_run_name(bad).unwrap_err();
            assert!(err.contains("1-30 characters"), "{bad}: {err}");
        }
    }

    #[test]
    fn segments() {
        assert!(check_segment("f", "", false).is_ok());
        assert!(check_segment("f", "", true).is_err());
        assert!(check_segment("f", "a0", true).is_ok());
        assert!(check_segment("f", "my-run_1.x", true).is_ok());
        for bad in ["..", ".", ".hidden", "a/b", "a\\b", "a b", "x\0", "_", "ü"] {
            assert!(check_segment("f", bad, true).is_err(), "{bad:?} accepted");
        }
        assert!(check_segment("f", &"a".repeat(256), true).is_err());
    }

    #[test]
    fn action_identifiers() {
        let id = ActionIdentifier {
            run: Some(RunIdentifier {
                org: String::new(),
                project: "p".into(),
                domain: "d".into(),
                name: "r1".into(),
            }),
            name: "a0".into(),
        };
        let (run, name) = action_key(&id, "action_id").unwrap();
        assert_eq!(run.name, "r1");
        assert_eq!(name, "a0");

        let no_run = ActionIdentifier {
            run: None,
            name: "a0".into(),
        };
        assert!(action_key(&no_run, "action_id")
            .unwrap_err()
            .contains("action_id.run is required"));
    }

    #[test]
    fn run_names() {
        let a = generate_run_name();
        let b = generate_run_name();
        assert_eq!(a.len(), 20);
        assert!(a.starts_with('r'));
        assert!(a[1..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, b);
        assert!(check_segment("name", &a, true).is_ok());
    }
}
