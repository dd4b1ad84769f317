//! A run's environment variables (`RunSpec.envs`) are how users hand a run credentials, so
//! every value is treated as a secret: sealed with the data dir's secrets key before the run
//! spec is stored, opened only to start the run's actions, and hidden from every reply.

use base64::Engine as _;
use flyteidl2::flyteidl::task::RunSpec;

use crate::names::RunKey;
use crate::secrets::SecretBox;

/// Begins a sealed value. A real environment value cannot hold a NUL byte (CreateRun refuses
/// one), so no value a client sent is ever taken for a sealed one.
const SEALED: &str = "\0sealed:v1:";

/// What a reply shows in place of a value.
pub const HIDDEN: &str = "(hidden)";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// The name a value is sealed under: tied to its run and variable, so a sealed value copied
/// elsewhere does not open.
fn scope(run: &RunKey, key: &str) -> String {
    format!("run-env/{}/{key}", run.name)
}

/// Seals every value of `spec.envs` in place.
pub fn seal(sealer: &SecretBox, run: &RunKey, spec: &mut RunSpec) {
    for pair in spec.envs.iter_mut().flat_map(|e| e.values.iter_mut()) {
        if pair.value.starts_with(SEALED) {
            continue;
        }
        let sealed = sealer.seal(
            &run.project,
            &run.domain,
            &scope(run, &pair.key),
            pair.value.as_bytes(),
        );
        pair.value = format!("{SEALED}{}", B64.encode(sealed));
    }
}

/// The run's variables with their values, to start one of its actions. Specs stored before
/// values were sealed hold them in plain text; a value that does not open (the key replaced)
/// is left out and said in the backend's log.
pub fn open(sealer: &SecretBox, run: &RunKey, spec: &RunSpec) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for pair in spec.envs.iter().flat_map(|e| e.values.iter()) {
        let Some(sealed) = pair.value.strip_prefix(SEALED) else {
            env.push((pair.key.clone(), pair.value.clone()));
            continue;
        };
        let opened = B64
            .decode(sealed)
            .ok()
            .and_then(|bytes| {
                sealer.open(&run.project, &run.domain, &scope(run, &pair.key), &bytes)
            })
            .and_then(|plain| String::from_utf8(plain).ok());
        match opened {
            Some(value) => env.push((pair.key.clone(), value)),
            None => tracing::error!(
                run = %run,
                variable = %pair.key,
                "a run environment variable does not open with this data dir's secrets key; \
                 the run's actions start without it"
            ),
        }
    }
    env
}

/// The spec as replies show it: the variables' names, never their values.
pub fn hide(spec: &mut RunSpec) {
    for pair in spec.envs.iter_mut().flat_map(|e| e.values.iter_mut()) {
        pair.value = HIDDEN.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyteidl2::flyteidl::core::KeyValuePair;
    use flyteidl2::flyteidl::task::Envs;
    use prost::Message;

    fn run() -> RunKey {
        RunKey {
            org: String::new(),
            project: "p".into(),
            domain: "d".into(),
            name: "r1".into(),
        }
    }

    fn spec(value: &str) -> RunSpec {
        RunSpec {
            envs: Some(Envs {
                values: vec![KeyValuePair {
                    key: "TOKEN".into(),
                    value: value.into(),
                }],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_sealed_value_is_not_in_the_stored_bytes_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = SecretBox::load_or_create(&dir.path().join("secrets.key")).unwrap();
        let mut stored = spec("s3cr3t-value");
        seal(&sealer, &run(), &mut stored);
        let bytes = stored.encode_to_vec();
        assert!(!bytes.windows(12).any(|w| w == b"s3cr3t-value"));
        let decoded = RunSpec::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            open(&sealer, &run(), &decoded),
            vec![("TOKEN".to_string(), "s3cr3t-value".to_string())]
        );
        // Under another run's name the value does not open.
        let other = RunKey {
            name: "r2".into(),
            ..run()
        };
        assert!(open(&sealer, &other, &decoded).is_empty());
    }

    #[test]
    fn plain_values_of_older_specs_still_open_and_replies_hide_values() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = SecretBox::load_or_create(&dir.path().join("secrets.key")).unwrap();
        let old = spec("plain");
        assert_eq!(open(&sealer, &run(), &old)[0].1, "plain");
        let mut reply = spec("plain");
        hide(&mut reply);
        assert_eq!(reply.envs.unwrap().values[0].value, HIDDEN);
    }
}
