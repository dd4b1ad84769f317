//! `flyte._core.Ledger`: the names and record of one run's actions, and the hashes that
//! name calls and key the cache.

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;

use flyte_backend::policy::Failure;

use super::journal::PyRunJournal;
use super::policy::PyTaskPolicy;
use crate::ledger::{self, ActionKind, Ledger, Phase, Submission};

/// What the ledger knows about one action.
#[pyclass(name = "ActionRecord", module = "flyte._core", frozen, get_all)]
pub struct PyActionRecord {
    name: String,
    parent: Option<String>,
    task_name: String,
    /// "task" or "trace".
    kind: &'static str,
    group: Option<String>,
    /// A flyteidl2 ActionPhase name without its prefix ("RUNNING", "SUCCEEDED", ...).
    phase: &'static str,
    attempts: u32,
    /// Seconds since the epoch.
    started_at: f64,
    ended_at: Option<f64>,
    error: Option<String>,
    cache_hit: bool,
}

impl From<ledger::ActionRecord> for PyActionRecord {
    fn from(r: ledger::ActionRecord) -> Self {
        PyActionRecord {
            name: r.name,
            parent: r.parent,
            task_name: r.task_name,
            kind: r.kind.as_str(),
            group: r.group,
            phase: ledger::phase_name(r.phase),
            attempts: r.attempts,
            started_at: r.started_at,
            ended_at: r.ended_at,
            error: r.error,
            cache_hit: r.cache_hit,
        }
    }
}

fn parse_phase(phase: &str) -> PyResult<Phase> {
    ledger::parse_phase(phase)
        .ok_or_else(|| PyValueError::new_err(format!("unknown phase '{phase}'")))
}

fn parse_kind(kind: &str) -> PyResult<ActionKind> {
    ActionKind::parse(kind)
        .ok_or_else(|| PyValueError::new_err(format!("unknown action kind '{kind}'")))
}

/// The ledger of one run.
#[pyclass(name = "Ledger", module = "flyte._core", frozen)]
struct PyLedger {
    inner: Ledger,
}

#[pymethods]
impl PyLedger {
    /// A run's ledger; with a journal, every action is also recorded durably.
    #[new]
    #[pyo3(signature = (run_name, journal = None))]
    fn new(run_name: String, journal: Option<&PyRunJournal>) -> Self {
        let inner = match journal {
            Some(journal) => Ledger::with_journal(run_name, journal.inner.clone()),
            None => Ledger::new(run_name),
        };
        PyLedger { inner }
    }

    #[getter]
    fn run_name(&self) -> &str {
        self.inner.run_name()
    }

    /// Records the run's root action and returns its name.
    fn record_root(&self, task_name: &str) -> String {
        self.inner.record_root(task_name)
    }

    /// Derives the name of a call from the hash of `inputs` (the bytes that identify its
    /// inputs), records it as queued and returns `(name, is_new)`. `literals` (a serialized
    /// `task.Inputs`) is what the journal keeps as the action's inputs.
    #[pyo3(signature = (parent, task_identity, inputs, group, task_name, kind = "task", literals = None))]
    #[allow(clippy::too_many_arguments)]
    fn submit(
        &self,
        parent: &str,
        task_identity: &str,
        inputs: &[u8],
        group: Option<&str>,
        task_name: &str,
        kind: &str,
        // Borrowed, not `Vec<u8>`: pyo3 would convert bytes element by element.
        literals: Option<&[u8]>,
    ) -> PyResult<(String, bool)> {
        let inputs_hash = ledger::sha256_hex(inputs);
        Ok(self.inner.submit(
            &Submission {
                parent,
                task_identity,
                inputs_hash: &inputs_hash,
                group,
                task_name,
                kind: parse_kind(kind)?,
            },
            literals.map(<[u8]>::to_vec),
        ))
    }

    /// Starts a new attempt of an action; returns the attempt number (1-based).
    fn start_attempt(&self, name: &str) -> PyResult<u32> {
        self.inner
            .start_attempt(name)
            .map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    /// How long the current attempt may run by `policy`: `(seconds, is_deadline)`, or None
    /// when it has no bound. `is_deadline` means the bound is the action's deadline, not the
    /// per-attempt timeout.
    fn attempt_limit(&self, name: &str, policy: &PyTaskPolicy) -> PyResult<Option<(f64, bool)>> {
        let limit = self
            .inner
            .attempt_limit(name, &policy.inner)
            .map_err(|e| PyKeyError::new_err(e.to_string()))?;
        Ok(limit.map(|l| (l.limit.as_secs_f64(), l.deadline)))
    }

    /// Records a failed attempt and decides by `policy` what follows: seconds to wait before
    /// the next attempt, or None when the action ended (recorded FAILED or TIMED_OUT).
    /// `retryable` is false for a non-recoverable error; `timed_out` marks an attempt that ran
    /// past its limit, `deadline` one that ran into the action's deadline.
    #[pyo3(signature = (name, policy, error_code, error, *, retryable = true, timed_out = false, deadline = false))]
    #[allow(clippy::too_many_arguments)]
    fn attempt_failed(
        &self,
        name: &str,
        policy: &PyTaskPolicy,
        error_code: String,
        error: String,
        retryable: bool,
        timed_out: bool,
        deadline: bool,
    ) -> PyResult<Option<f64>> {
        let failure = if deadline {
            Failure::Deadline
        } else {
            Failure::User {
                retryable,
                phase: if timed_out {
                    Phase::TimedOut
                } else {
                    Phase::Failed
                },
            }
        };
        let next = self
            .inner
            .attempt_failed(name, &policy.inner, failure, (error_code, error))
            .map_err(|e| PyKeyError::new_err(e.to_string()))?;
        Ok(next.map(|delay| delay.as_secs_f64()))
    }

    /// Ends an action. `error` is its message, `error_code` what kind of error it was (the
    /// exception's class); `outputs` a serialized `task.Outputs`.
    #[pyo3(signature = (name, phase, error = None, cache_hit = false, outputs = None, error_code = None))]
    fn finish(
        &self,
        name: &str,
        phase: &str,
        error: Option<String>,
        cache_hit: bool,
        outputs: Option<&[u8]>,
        error_code: Option<String>,
    ) -> PyResult<()> {
        let error = error.map(|message| (error_code.unwrap_or_default(), message));
        self.inner
            .finish(
                name,
                parse_phase(phase)?,
                error,
                cache_hit,
                outputs.map(<[u8]>::to_vec),
            )
            .map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    /// Marks an action as succeeded by an earlier process of this (resumed) run.
    fn replayed(&self, name: &str) -> PyResult<()> {
        self.inner
            .replayed(name)
            .map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    fn get(&self, name: &str) -> Option<PyActionRecord> {
        self.inner.get(name).map(PyActionRecord::from)
    }

    /// Every action, in submission order.
    fn actions(&self) -> Vec<PyActionRecord> {
        self.inner
            .records()
            .into_iter()
            .map(PyActionRecord::from)
            .collect()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

/// Name of the `seq`-th identical call of a task under `parent` (see `Ledger.submit`).
#[pyfunction]
#[pyo3(signature = (parent, task_identity, inputs, group = None, seq = 0))]
fn action_name(
    parent: &str,
    task_identity: &str,
    inputs: &[u8],
    group: Option<&str>,
    seq: u32,
) -> String {
    ledger::action_name(
        parent,
        task_identity,
        &ledger::sha256_hex(inputs),
        group.unwrap_or(""),
        seq,
    )
}

/// Cache key of a call, from the serialized inputs that take part in caching.
#[pyfunction]
fn cache_key(
    task_name: &str,
    interface_hash: &str,
    version: &str,
    inputs: &[u8],
    salt: &str,
) -> String {
    ledger::cache_key(
        task_name,
        interface_hash,
        version,
        &ledger::sha256_hex(inputs),
        salt,
    )
}

#[pyfunction]
fn sha256_hex(data: &[u8]) -> String {
    ledger::sha256_hex(data)
}

/// Whether a phase (named with or without `ACTION_PHASE_`) ends an action: the one rule every
/// part of the SDK and the backend uses.
#[pyfunction]
fn is_terminal(phase: &str) -> PyResult<bool> {
    Ok(flyte_backend::phase::is_terminal(parse_phase(phase)?))
}

/// Whether an action that ended in `phase` has outputs to use (SUCCEEDED or RECOVERED).
#[pyfunction]
fn is_success(phase: &str) -> PyResult<bool> {
    Ok(flyte_backend::phase::is_success(parse_phase(phase)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ROOT_ACTION", ledger::ROOT_ACTION)?;
    m.add_function(wrap_pyfunction!(is_terminal, m)?)?;
    m.add_function(wrap_pyfunction!(is_success, m)?)?;
    m.add_class::<PyLedger>()?;
    m.add_class::<PyActionRecord>()?;
    m.add_function(wrap_pyfunction!(action_name, m)?)?;
    m.add_function(wrap_pyfunction!(cache_key, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_hex, m)?)
}
