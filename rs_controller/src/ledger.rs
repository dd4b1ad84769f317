//! Deterministic action IDs and the per-run record of what was submitted.
//!
//! A sub-action's name is a hash of everything that makes the call the same call:
//! the parent action, the task's identity (name + interface + body hash), the hash of
//! its inputs, the group it was called in, and how many identical calls the parent made
//! before it. A re-executed parent therefore re-derives exactly the same names, which
//! is what lets recovery find children that already ran.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flyte_backend::journal::{self, RunJournal};
use flyte_backend::policy::{After, AttemptLimit, Budget, Failure, TaskPolicy};
use sha2::{Digest, Sha256};

/// Length of a derived action name. 20 base-36 characters carry ~103 bits of the hash,
/// enough to make collisions inside one run negligible while staying a valid DNS label.
pub const ACTION_NAME_LEN: usize = 20;

/// Name of the root action of every run.
pub use flyte_backend::ROOT_ACTION;

const DOMAIN_TAG: &[u8] = b"flyte-action-id/v1";

/// What kind of work an action record describes (one definition, the store's).
pub use flyte_backend::journal::ActionKind;

/// Phases are flyteidl2's `common.ActionPhase`, everywhere.
pub use flyteidl2::flyteidl::common::ActionPhase as Phase;

pub use flyte_backend::phase::{parse_phase, phase_name};

/// Everything the ledger knows about one action of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRecord {
    pub name: String,
    pub parent: Option<String>,
    pub task_name: String,
    pub kind: ActionKind,
    pub group: Option<String>,
    pub phase: Phase,
    pub attempts: u32,
    pub started_at: f64,
    pub ended_at: Option<f64>,
    pub error: Option<String>,
    pub cache_hit: bool,
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Feeds one length-prefixed field into the hasher, so that ("ab", "c") and ("a", "bc")
/// can never hash alike.
fn field(h: &mut Sha256, data: &[u8]) {
    h.update((data.len() as u64).to_le_bytes());
    h.update(data);
}

/// Digest identifying a call irrespective of how many times it was made.
fn call_digest(parent: &str, task_identity: &str, inputs_hash: &str, group: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    field(&mut h, DOMAIN_TAG);
    field(&mut h, parent.as_bytes());
    field(&mut h, task_identity.as_bytes());
    field(&mut h, inputs_hash.as_bytes());
    field(&mut h, group.as_bytes());
    h.finalize().into()
}

/// Base-36 (0-9a-z) rendering of the leading bits of a digest, `ACTION_NAME_LEN` long.
/// The first character is forced to a letter so names never look like numbers.
fn base36_name(digest: &[u8; 32]) -> String {
    // 16 bytes = 128 bits, more than the ~103 bits 20 base-36 digits hold.
    let n = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    // The low 20 digits of n, as two halves of 10: 128-bit division is a slow library call,
    // so it is done twice here rather than once per digit (names are made for every call).
    const HALF: u128 = 36u128.pow(10);
    let mut out = [0u8; ACTION_NAME_LEN];
    let (high, low) = out.split_at_mut(ACTION_NAME_LEN / 2);
    base36_digits(low, (n % HALF) as u64);
    base36_digits(high, ((n / HALF) % HALF) as u64);
    out[0] = b'a' + (digest[16] % 26);
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// Writes the last `out.len()` base-36 digits of `n` into `out`.
fn base36_digits(out: &mut [u8], mut n: u64) {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
}

/// Name of the `seq`-th identical call (0-based) to a task under `parent`.
pub fn action_name(
    parent: &str,
    task_identity: &str,
    inputs_hash: &str,
    group: &str,
    seq: u32,
) -> String {
    name_from_call(&call_digest(parent, task_identity, inputs_hash, group), seq)
}

fn name_from_call(call: &[u8; 32], seq: u32) -> String {
    let mut h = Sha256::new();
    h.update(call);
    h.update(seq.to_le_bytes());
    base36_name(&h.finalize().into())
}

/// Cache key of a task call: independent of the run and of the call sequence, so that any
/// later call with the same task version and inputs finds it.
pub fn cache_key(
    task_name: &str,
    interface_hash: &str,
    version: &str,
    inputs_hash: &str,
    salt: &str,
) -> String {
    let mut h = Sha256::new();
    field(&mut h, b"flyte-cache-key/v1");
    field(&mut h, task_name.as_bytes());
    field(&mut h, interface_hash.as_bytes());
    field(&mut h, version.as_bytes());
    field(&mut h, inputs_hash.as_bytes());
    field(&mut h, salt.as_bytes());
    hex(&h.finalize())
}

fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Default)]
struct Inner {
    /// Identical calls seen so far, per call digest.
    seq: HashMap<[u8; 32], u32>,
    records: Vec<ActionRecord>,
    index: HashMap<String, usize>,
}

/// The record of one run: derives names for the calls its actions make and keeps what
/// happened to each action.
pub struct Ledger {
    run_name: String,
    inner: Mutex<Inner>,
    /// Where an in-process run records its actions durably (local mode).
    journal: Option<Arc<RunJournal>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LedgerError {
    #[error("unknown action '{0}' in this run")]
    UnknownAction(String),
}

pub struct Submission<'a> {
    pub parent: &'a str,
    pub task_identity: &'a str,
    pub inputs_hash: &'a str,
    pub group: Option<&'a str>,
    pub task_name: &'a str,
    pub kind: ActionKind,
}

impl Ledger {
    pub fn new(run_name: impl Into<String>) -> Self {
        Ledger {
            run_name: run_name.into(),
            inner: Mutex::new(Inner::default()),
            journal: None,
        }
    }

    /// A ledger whose actions are also recorded in `journal`.
    pub fn with_journal(run_name: impl Into<String>, journal: Arc<RunJournal>) -> Self {
        Ledger {
            journal: Some(journal),
            ..Ledger::new(run_name)
        }
    }

    pub fn run_name(&self) -> &str {
        &self.run_name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the run, so keep going with the data as it is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Derives the name of the next identical call, without recording anything.
    pub fn derive(
        &self,
        parent: &str,
        task_identity: &str,
        inputs_hash: &str,
        group: Option<&str>,
    ) -> String {
        let call = call_digest(parent, task_identity, inputs_hash, group.unwrap_or(""));
        let mut inner = self.lock();
        let counter = inner.seq.entry(call).or_insert(0);
        let seq = *counter;
        *counter += 1;
        name_from_call(&call, seq)
    }

    /// Derives a name for the call and records the action as queued. A name that is already
    /// recorded (a replayed call) keeps its record.
    /// `literals` (a serialized `task.Inputs`) is what the journal records as the inputs.
    pub fn submit(&self, s: &Submission<'_>, literals: Option<Vec<u8>>) -> (String, bool) {
        let name = self.derive(s.parent, s.task_identity, s.inputs_hash, s.group);
        let mut inner = self.lock();
        if inner.index.contains_key(&name) {
            return (name, false);
        }
        if let Some(journal) = &self.journal {
            journal.queued(
                &name,
                Some(s.parent),
                s.group,
                s.kind,
                s.task_name,
                literals,
            );
        }
        let record = ActionRecord {
            name: name.clone(),
            parent: Some(s.parent.to_string()),
            task_name: s.task_name.to_string(),
            kind: s.kind,
            group: s.group.map(str::to_string),
            phase: Phase::Queued,
            attempts: 0,
            started_at: now(),
            ended_at: None,
            error: None,
            cache_hit: false,
        };
        let idx = inner.records.len();
        inner.index.insert(name.clone(), idx);
        inner.records.push(record);
        (name, true)
    }

    /// Records the root action of the run.
    pub fn record_root(&self, task_name: &str) -> String {
        let mut inner = self.lock();
        if !inner.index.contains_key(ROOT_ACTION) {
            let idx = inner.records.len();
            inner.index.insert(ROOT_ACTION.to_string(), idx);
            inner.records.push(ActionRecord {
                name: ROOT_ACTION.to_string(),
                parent: None,
                task_name: task_name.to_string(),
                kind: ActionKind::Task,
                group: None,
                phase: Phase::Queued,
                attempts: 0,
                started_at: now(),
                ended_at: None,
                error: None,
                cache_hit: false,
            });
        }
        ROOT_ACTION.to_string()
    }

    fn with_record<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut ActionRecord) -> T,
    ) -> Result<T, LedgerError> {
        let mut inner = self.lock();
        let idx = *inner
            .index
            .get(name)
            .ok_or_else(|| LedgerError::UnknownAction(name.to_string()))?;
        Ok(f(&mut inner.records[idx]))
    }

    /// Marks the start of a new attempt.
    pub fn start_attempt(&self, name: &str) -> Result<u32, LedgerError> {
        let attempt = self.with_record(name, |r| {
            r.attempts += 1;
            r.phase = Phase::Running;
            r.attempts
        })?;
        if let Some(journal) = &self.journal {
            journal.started(name, attempt);
        }
        Ok(attempt)
    }

    /// How long the current attempt of an action may run, by the task's policy: its timeout or
    /// what is left of its deadline, whichever ends first.
    pub fn attempt_limit(
        &self,
        name: &str,
        policy: &TaskPolicy,
    ) -> Result<Option<AttemptLimit>, LedgerError> {
        let queued = self.with_record(name, |r| r.started_at)?;
        Ok(policy.attempt_limit(seconds_to_ms(queued), seconds_to_ms(now())))
    }

    /// Records a failed attempt of an in-process action and decides, by the task's policy,
    /// what follows: `Some(delay)` means try again after `delay`; `None` means the action
    /// ended (and is recorded as ended). `error` is `(code, message)`.
    pub fn attempt_failed(
        &self,
        name: &str,
        policy: &TaskPolicy,
        failure: Failure,
        error: (String, String),
    ) -> Result<Option<Duration>, LedgerError> {
        let (attempts, queued) = self.with_record(name, |r| (r.attempts, r.started_at))?;
        let budget = Budget {
            user_attempts: attempts,
            deadline_left: policy.deadline_left(seconds_to_ms(queued), seconds_to_ms(now())),
            ..Budget::default()
        };
        let (code, message) = error;
        let (phase, message) = match policy.after_failure(failure, budget) {
            After::Retry { delay, .. } => return Ok(Some(delay)),
            After::Finish(phase) => (phase, message),
            After::DeadlineWouldPass => (
                Phase::TimedOut,
                format!("{message} (the action's deadline leaves no time for another attempt)"),
            ),
            After::SystemBudgetSpent => (Phase::Failed, message),
        };
        self.finish(name, phase, Some((code, message)), false, None)?;
        Ok(None)
    }

    /// Ends an action. `outputs` (a serialized `task.Outputs`) is recorded in the journal;
    /// `error` is `(code, message)`.
    pub fn finish(
        &self,
        name: &str,
        phase: Phase,
        error: Option<(String, String)>,
        cache_hit: bool,
        outputs: Option<Vec<u8>>,
    ) -> Result<(), LedgerError> {
        let recorded = error
            .as_ref()
            .map(|(code, message)| journal::user_error(code, message));
        self.with_record(name, |r| {
            r.phase = phase;
            r.error = error.map(|(code, message)| {
                if code.is_empty() {
                    message
                } else {
                    format!("{code}: {message}")
                }
            });
            r.cache_hit = cache_hit;
            r.ended_at = Some(now());
        })?;
        if let Some(journal) = &self.journal {
            journal.finished(name, phase, recorded, outputs, cache_hit);
        }
        Ok(())
    }

    /// Marks an action as succeeded by an earlier process of a resumed run (nothing to
    /// record: the journal has it).
    pub fn replayed(&self, name: &str) -> Result<(), LedgerError> {
        self.with_record(name, |r| {
            r.phase = Phase::Succeeded;
            r.ended_at = Some(now());
        })
    }

    pub fn get(&self, name: &str) -> Option<ActionRecord> {
        let inner = self.lock();
        inner.index.get(name).map(|&i| inner.records[i].clone())
    }

    /// All records, in submission order.
    pub fn records(&self) -> Vec<ActionRecord> {
        self.lock().records.clone()
    }

    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub<'a>(
        parent: &'a str,
        identity: &'a str,
        inputs: &'a str,
        group: Option<&'a str>,
    ) -> Submission<'a> {
        Submission {
            parent,
            task_identity: identity,
            inputs_hash: inputs,
            group,
            task_name: "env.t",
            kind: ActionKind::Task,
        }
    }

    #[test]
    fn names_are_stable_across_ledgers() {
        let a = Ledger::new("r1");
        let b = Ledger::new("r2");
        for i in 0..50 {
            let inputs = format!("in{i}");
            assert_eq!(
                a.derive("a0", "t", &inputs, None),
                b.derive("a0", "t", &inputs, None)
            );
        }
    }

    #[test]
    fn identical_calls_get_distinct_names_in_call_order() {
        let l = Ledger::new("r");
        let names: Vec<String> = (0..5).map(|_| l.derive("a0", "t", "same", None)).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5);
        for (seq, name) in names.iter().enumerate() {
            assert_eq!(name, &action_name("a0", "t", "same", "", seq as u32));
        }
    }

    #[test]
    fn sequence_is_counted_per_call_not_globally() {
        // Interleaving other calls must not shift the sequence of identical ones.
        let l1 = Ledger::new("r");
        let x1 = l1.derive("a0", "t", "x", None);
        let _ = l1.derive("a0", "t", "y", None);
        let x2 = l1.derive("a0", "t", "x", None);

        let l2 = Ledger::new("r");
        let _ = l2.derive("a0", "t", "y", None);
        let _ = l2.derive("a0", "u", "x", None);
        let x1b = l2.derive("a0", "t", "x", None);
        let x2b = l2.derive("a0", "t", "x", None);
        assert_eq!((x1, x2), (x1b, x2b));
    }

    #[test]
    fn every_component_changes_the_name() {
        let base = action_name("a0", "t", "i", "", 0);
        assert_ne!(base, action_name("a1", "t", "i", "", 0));
        assert_ne!(base, action_name("a0", "t2", "i", "", 0));
        assert_ne!(base, action_name("a0", "t", "i2", "", 0));
        assert_ne!(base, action_name("a0", "t", "i", "g", 0));
        assert_ne!(base, action_name("a0", "t", "i", "", 1));
        // Field boundaries are unambiguous.
        assert_ne!(
            action_name("ab", "c", "i", "", 0),
            action_name("a", "bc", "i", "", 0)
        );
    }

    #[test]
    fn names_never_change() {
        // Runs recorded by earlier versions are resumed by name: these must hold forever.
        let named = |parent: &str, identity: &str, inputs: &[u8], group: &str, seq| {
            action_name(parent, identity, &sha256_hex(inputs), group, seq)
        };
        assert_eq!(named("a0", "t", b"i", "", 0), "yulkexcqq9ueze30os80");
        assert_eq!(named("a0", "t", b"i", "g", 3), "orvey35hghdsfazr6pv0");
        assert_eq!(
            named("parent-x", "identity", b"\x00\x01", "", 7),
            "ersxmih83bqfdf2ahk6b"
        );
    }

    #[test]
    fn names_are_dns_labels() {
        for i in 0..200 {
            let n = action_name("a0", "t", &i.to_string(), "", 0);
            assert_eq!(n.len(), ACTION_NAME_LEN);
            assert!(n.chars().next().unwrap().is_ascii_lowercase());
            assert!(n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        }
    }

    #[test]
    fn submit_records_and_replays() {
        let l = Ledger::new("r");
        let root = l.record_root("env.main");
        assert_eq!(root, ROOT_ACTION);
        let (n1, new1) = l.submit(&sub("a0", "t", "i", Some("g")), None);
        assert!(new1);
        assert_eq!(l.start_attempt(&n1).unwrap(), 1);
        assert_eq!(l.start_attempt(&n1).unwrap(), 2);
        l.finish(&n1, Phase::Succeeded, None, false, None).unwrap();
        let r = l.get(&n1).unwrap();
        assert_eq!(r.phase, Phase::Succeeded);
        assert_eq!(r.attempts, 2);
        assert_eq!(r.group.as_deref(), Some("g"));
        assert_eq!(r.parent.as_deref(), Some("a0"));
        assert!(r.ended_at.is_some());
        assert_eq!(l.len(), 2);
        assert_eq!(
            l.finish("nope", Phase::Failed, None, false, None),
            Err(LedgerError::UnknownAction("nope".into()))
        );
    }

    #[test]
    fn failed_attempts_follow_the_task_policy() {
        use flyte_backend::policy::Backoff;
        let l = Ledger::new("r");
        let (name, _) = l.submit(&sub("a0", "t", "i", None), None);
        let policy = TaskPolicy {
            retries: 2,
            backoff: Some(
                Backoff::new(
                    Duration::from_millis(100),
                    2.0,
                    Some(Duration::from_secs(1)),
                )
                .unwrap(),
            ),
            max_runtime: Some(Duration::from_secs(30)),
            ..TaskPolicy::default()
        };
        let failed = |l: &Ledger| {
            l.attempt_failed(
                &name,
                &policy,
                Failure::User {
                    retryable: true,
                    phase: Phase::Failed,
                },
                ("ValueError".into(), "boom".into()),
            )
            .unwrap()
        };
        l.start_attempt(&name).unwrap();
        assert_eq!(
            l.attempt_limit(&name, &policy).unwrap().unwrap().limit,
            Duration::from_secs(30)
        );
        assert_eq!(failed(&l), Some(Duration::from_millis(100)));
        l.start_attempt(&name).unwrap();
        assert_eq!(failed(&l), Some(Duration::from_millis(200)));
        l.start_attempt(&name).unwrap();
        assert_eq!(failed(&l), None);
        let record = l.get(&name).unwrap();
        assert_eq!(record.phase, Phase::Failed);
        assert_eq!(record.error.as_deref(), Some("ValueError: boom"));

        // A deadline already spent ends the action TIMED_OUT with retries left.
        let (late, _) = l.submit(&sub("a0", "t", "j", None), None);
        let strict = TaskPolicy {
            retries: 5,
            deadline: Some(Duration::from_millis(1)),
            ..TaskPolicy::default()
        };
        l.start_attempt(&late).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let user = Failure::User {
            retryable: true,
            phase: Phase::Failed,
        };
        assert_eq!(
            l.attempt_failed(&late, &strict, user, (String::new(), "slow".into()))
                .unwrap(),
            None
        );
        assert_eq!(l.get(&late).unwrap().phase, Phase::TimedOut);
    }

    #[test]
    fn concurrent_identical_calls_get_all_sequence_numbers() {
        let l = std::sync::Arc::new(Ledger::new("r"));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .map(|_| l.derive("a0", "t", "i", None))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        let mut expected: Vec<String> = (0..800)
            .map(|s| action_name("a0", "t", "i", "", s))
            .collect();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn cache_key_ignores_nothing_it_is_given() {
        let k = cache_key("t", "iface", "v1", "in", "");
        assert_eq!(k, cache_key("t", "iface", "v1", "in", ""));
        assert_ne!(k, cache_key("t", "iface", "v2", "in", ""));
        assert_ne!(k, cache_key("t", "iface", "v1", "in", "salt"));
        assert_ne!(k, cache_key("t", "iface2", "v1", "in", ""));
        assert_eq!(k.len(), 64);
    }
}
