//! The `flyte._core` Python module: a narrow bridge over the ledger, the store, the
//! controller and the embedded backend. `flyte_core` below is its table of contents.
//!
//! Only plain values cross it (strings, bytes, numbers, dicts of those).

mod aio;
mod backend;
mod cache;
mod controller;
mod policy;
mod rpc;
mod signin;

use pyo3::exceptions::{PyKeyError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use std::sync::Arc;

use flyte_backend::journal::{JournalError, OpenError, Opened, RunJournal, RunKey};
use flyte_backend::policy::Failure;
use policy::PyTaskPolicy;

use crate::ledger::{self, ActionKind, ActionRecord, Ledger, Phase, Submission};

pyo3::create_exception!(
    flyte._core,
    RunConflictError,
    PyValueError,
    "A local run cannot be opened under the name it was given (it is being run elsewhere, it \
     is not a local run, or it was started with other inputs)."
);

fn parse_phase(phase: &str) -> PyResult<Phase> {
    ledger::parse_phase(phase)
        .ok_or_else(|| PyValueError::new_err(format!("unknown phase '{phase}'")))
}

fn parse_kind(kind: &str) -> PyResult<ActionKind> {
    ActionKind::parse(kind)
        .ok_or_else(|| PyValueError::new_err(format!("unknown action kind '{kind}'")))
}

fn journal_err(e: JournalError) -> PyErr {
    match e {
        JournalError::Open(OpenError::Store(source)) => PyOSError::new_err(source.to_string()),
        JournalError::Open(conflict) => RunConflictError::new_err(conflict.to_string()),
        other => PyOSError::new_err(other.to_string()),
    }
}

fn record_to_dict<'py>(py: Python<'py>, r: &ActionRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &r.name)?;
    d.set_item("parent", &r.parent)?;
    d.set_item("task_name", &r.task_name)?;
    d.set_item("kind", r.kind.as_str())?;
    d.set_item("group", &r.group)?;
    d.set_item("phase", ledger::phase_name(r.phase))?;
    d.set_item("attempts", r.attempts)?;
    d.set_item("started_at", r.started_at)?;
    d.set_item("ended_at", r.ended_at)?;
    d.set_item("error", &r.error)?;
    d.set_item("cache_hit", r.cache_hit)?;
    Ok(d)
}

/// The durable record of a run executed in this process (local mode), kept in the data dir's
/// backend database; also the data dir's task cache for such runs.
#[pyclass(name = "RunJournal", module = "flyte._core", frozen)]
struct PyRunJournal {
    inner: Arc<RunJournal>,
}

#[pymethods]
impl PyRunJournal {
    /// Opens run `name` (creating it, or resuming it when its previous process is gone) with
    /// its root action running `task_name` on `inputs` (a serialized `task.Inputs`). Returns the
    /// journal and, for a resumed run, the outputs of every action that succeeded, by name.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::type_complexity)]
    fn open(
        py: Python<'_>,
        data_dir: std::path::PathBuf,
        org: String,
        project: String,
        domain: String,
        name: String,
        task_name: &str,
        inputs: &[u8],
    ) -> PyResult<(PyRunJournal, Option<Vec<(String, Py<PyBytes>)>>)> {
        let key = RunKey {
            org,
            project,
            domain,
            name,
        };
        let (journal, opened) = py
            .allow_threads(|| RunJournal::open(&data_dir, key, task_name, inputs))
            .map_err(journal_err)?;
        let resumed = match opened {
            Opened::Created => None,
            Opened::Resumed { succeeded } => Some(
                succeeded
                    .into_iter()
                    .map(|(name, bytes)| (name, PyBytes::new(py, &bytes).unbind()))
                    .collect(),
            ),
        };
        Ok((
            PyRunJournal {
                inner: Arc::new(journal),
            },
            resumed,
        ))
    }

    /// Waits until everything recorded so far is committed.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.inner.flush()).map_err(journal_err)
    }

    /// Commits what is left and stops recording; with `wait=False` the commit finishes in the
    /// background (`drain_journals` waits for it).
    #[pyo3(signature = (wait = true))]
    fn close(&self, py: Python<'_>, wait: bool) -> PyResult<()> {
        if wait {
            py.allow_threads(|| self.inner.close()).map_err(journal_err)
        } else {
            self.inner.close_in_background();
            Ok(())
        }
    }

    /// Serialized `task.Outputs` cached under `key`, if any.
    fn cache_get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let found = py
            .allow_threads(|| self.inner.cache_get(key))
            .map_err(journal_err)?;
        Ok(found.map(|bytes| PyBytes::new(py, &bytes)))
    }

    fn cache_put(
        &self,
        py: Python<'_>,
        key: &str,
        task_name: &str,
        outputs: &[u8],
    ) -> PyResult<()> {
        py.allow_threads(|| self.inner.cache_put(key, task_name, outputs))
            .map_err(journal_err)
    }
}

/// Waits for the journals closed without waiting; returns what failed to be recorded.
#[pyfunction]
fn drain_journals(py: Python<'_>) -> Vec<String> {
    py.allow_threads(flyte_backend::journal::drain_closing)
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
        literals: Option<Vec<u8>>,
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
            literals,
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
        outputs: Option<Vec<u8>>,
        error_code: Option<String>,
    ) -> PyResult<()> {
        let error = error.map(|message| (error_code.unwrap_or_default(), message));
        self.inner
            .finish(name, parse_phase(phase)?, error, cache_hit, outputs)
            .map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    /// Marks an action as succeeded by an earlier process of this (resumed) run.
    fn replayed(&self, name: &str) -> PyResult<()> {
        self.inner
            .replayed(name)
            .map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    fn get<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .get(name)
            .map(|r| record_to_dict(py, &r))
            .transpose()
    }

    fn actions<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .records()
            .iter()
            .map(|r| record_to_dict(py, r))
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

/// Raises ValueError unless a cluster would accept `name` as a run name.
#[pyfunction]
fn check_run_name(name: &str) -> PyResult<()> {
    flyte_backend::check_run_name(name).map_err(PyValueError::new_err)
}

/// Checks a cron schedule (5 fields, an IANA time zone or ""), raising ValueError.
#[pyfunction]
#[pyo3(signature = (expression, timezone = ""))]
fn check_cron(expression: &str, timezone: &str) -> PyResult<()> {
    flyte_backend::schedule::parse_cron(expression, timezone)
        .map(|_| ())
        .map_err(PyValueError::new_err)
}

/// The first time (epoch ms) strictly after `after_ms` at which a cron schedule fires: the
/// same rule the backend's trigger scheduler uses.
#[pyfunction]
#[pyo3(signature = (expression, timezone, after_ms))]
fn cron_next_after(expression: &str, timezone: &str, after_ms: i64) -> PyResult<i64> {
    let schedule =
        flyte_backend::schedule::parse_cron(expression, timezone).map_err(PyValueError::new_err)?;
    schedule
        .next_after(after_ms)
        .ok_or_else(|| PyValueError::new_err(format!("{expression:?} does not fire again")))
}

/// A secret's value from a backend's data dir (local mode's source of secrets), or None.
#[pyfunction]
fn read_secret(
    py: Python<'_>,
    data_dir: std::path::PathBuf,
    project: &str,
    domain: &str,
    key: &str,
) -> PyResult<Option<Py<PyBytes>>> {
    let value = py
        .allow_threads(|| flyte_backend::read_secret(&data_dir, project, domain, key))
        .map_err(PyOSError::new_err)?;
    Ok(value.map(|v: Vec<u8>| PyBytes::new(py, v.as_slice()).unbind()))
}

#[pymodule]
#[pyo3(name = "_core")]
fn flyte_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ROOT_ACTION", ledger::ROOT_ACTION)?;
    m.add("RUNTIME_PROGRAM", flyte_backend::RUNTIME_PROGRAM)?;
    m.add("EXTRA_ENV_DATA_DIR", flyte_backend::EXTRA_ENV_DATA_DIR)?;
    m.add("EXTRA_ENV_ATTEMPT", flyte_backend::EXTRA_ENV_ATTEMPT)?;
    m.add_class::<PyLedger>()?;
    m.add_class::<PyRunJournal>()?;
    m.add_function(wrap_pyfunction!(drain_journals, m)?)?;
    m.add("RunConflictError", m.py().get_type::<RunConflictError>())?;
    aio::register(m)?;
    controller::register(m)?;
    backend::register(m)?;
    rpc::register(m)?;
    policy::register(m)?;
    cache::register(m)?;
    m.add_function(wrap_pyfunction!(action_name, m)?)?;
    m.add_function(wrap_pyfunction!(cache_key, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_hex, m)?)?;
    m.add_function(wrap_pyfunction!(check_run_name, m)?)?;
    m.add_function(wrap_pyfunction!(check_cron, m)?)?;
    m.add_function(wrap_pyfunction!(read_secret, m)?)?;
    m.add("SECRETS_DIR_ENV", flyte_backend::SECRETS_DIR_ENV)?;
    m.add("BACKEND_KIND_HEADER", flyte_backend::BACKEND_KIND_HEADER)?;
    m.add(
        "EXTRA_ENV_ACTION_TOKEN",
        flyte_backend::EXTRA_ENV_ACTION_TOKEN,
    )?;
    m.add_function(wrap_pyfunction!(decode_api_key, m)?)?;
    m.add(
        "EMBEDDED_BACKEND_KIND",
        flyte_backend::EMBEDDED_BACKEND_KIND,
    )?;
    m.add_function(wrap_pyfunction!(cron_next_after, m)?)?;
    Ok(())
}

/// An API key (base64 of `endpoint:client_id:client_secret:org`) as (endpoint, client id,
/// secret, org); ValueError if it is not one.
#[pyfunction]
fn decode_api_key(key: &str) -> PyResult<(String, String, String, String)> {
    crate::auth::decode_api_key(key).map_err(pyo3::exceptions::PyValueError::new_err)
}
