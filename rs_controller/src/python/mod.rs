//! The `flyte._core` Python module: a narrow bridge over the ledger, the store, the
//! controller and the embedded backend. `flyte_core` below is its table of contents.
//!
//! Only plain values cross it (strings, bytes, numbers, dicts of those).

mod aio;
mod backend;
mod controller;
mod rpc;
mod signin;

use pyo3::exceptions::{PyKeyError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::ledger::{self, ActionKind, ActionRecord, Ledger, Phase, Submission};
use crate::store::{LocalStore, RunRecord};

fn parse_phase(phase: &str) -> PyResult<Phase> {
    Phase::parse(phase).ok_or_else(|| PyValueError::new_err(format!("unknown phase '{phase}'")))
}

fn parse_kind(kind: &str) -> PyResult<ActionKind> {
    ActionKind::parse(kind)
        .ok_or_else(|| PyValueError::new_err(format!("unknown action kind '{kind}'")))
}

fn record_to_dict<'py>(py: Python<'py>, r: &ActionRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &r.name)?;
    d.set_item("parent", &r.parent)?;
    d.set_item("task_name", &r.task_name)?;
    d.set_item("kind", r.kind.as_str())?;
    d.set_item("group", &r.group)?;
    d.set_item("phase", r.phase.as_str())?;
    d.set_item("attempts", r.attempts)?;
    d.set_item("started_at", r.started_at)?;
    d.set_item("ended_at", r.ended_at)?;
    d.set_item("error", &r.error)?;
    d.set_item("cache_hit", r.cache_hit)?;
    Ok(d)
}

fn run_to_dict<'py>(py: Python<'py>, r: &RunRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &r.name)?;
    d.set_item("task_name", &r.task_name)?;
    d.set_item("mode", &r.mode)?;
    d.set_item("phase", r.phase.as_str())?;
    d.set_item("started_at", r.started_at)?;
    d.set_item("ended_at", r.ended_at)?;
    d.set_item("error", &r.error)?;
    Ok(d)
}

/// The ledger of one run.
#[pyclass(name = "Ledger", module = "flyte._core", frozen)]
struct PyLedger {
    inner: Ledger,
}

#[pymethods]
impl PyLedger {
    #[new]
    fn new(run_name: String) -> Self {
        PyLedger {
            inner: Ledger::new(run_name),
        }
    }

    #[getter]
    fn run_name(&self) -> &str {
        self.inner.run_name()
    }

    /// Records the run's root action and returns its name.
    fn record_root(&self, task_name: &str) -> String {
        self.inner.record_root(task_name)
    }

    /// Derives the name of a call from the hash of its serialized inputs, records it as
    /// queued and returns `(name, is_new)`.
    #[pyo3(signature = (parent, task_identity, inputs, group, task_name, kind = "task"))]
    fn submit(
        &self,
        parent: &str,
        task_identity: &str,
        inputs: &[u8],
        group: Option<&str>,
        task_name: &str,
        kind: &str,
    ) -> PyResult<(String, bool)> {
        let inputs_hash = ledger::sha256_hex(inputs);
        Ok(self.inner.submit(&Submission {
            parent,
            task_identity,
            inputs_hash: &inputs_hash,
            group,
            task_name,
            kind: parse_kind(kind)?,
        }))
    }

    /// Starts a new attempt of an action; returns the attempt number (1-based).
    fn start_attempt(&self, name: &str) -> PyResult<u32> {
        self.inner
            .start_attempt(name)
            .map_err(|e| PyKeyError::new_err(e.to_string()))
    }

    #[pyo3(signature = (name, phase, error = None, cache_hit = false))]
    fn finish(
        &self,
        name: &str,
        phase: &str,
        error: Option<String>,
        cache_hit: bool,
    ) -> PyResult<()> {
        self.inner
            .finish(name, parse_phase(phase)?, error, cache_hit)
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

    /// Persists the run and its actions.
    #[pyo3(signature = (store, task_name, mode, phase, started_at, ended_at = None, error = None))]
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        py: Python<'_>,
        store: &PyLocalStore,
        task_name: String,
        mode: String,
        phase: &str,
        started_at: f64,
        ended_at: Option<f64>,
        error: Option<String>,
    ) -> PyResult<()> {
        let run = RunRecord {
            name: self.inner.run_name().to_string(),
            task_name,
            mode,
            phase: parse_phase(phase)?,
            started_at,
            ended_at,
            error,
        };
        let records = self.inner.records();
        py.allow_threads(|| store.inner.save_run(&run, &records))
            .map_err(|e| PyOSError::new_err(e.to_string()))
    }
}

/// Local state: the task cache and run records, in one SQLite file.
#[pyclass(name = "LocalStore", module = "flyte._core", frozen)]
struct PyLocalStore {
    inner: LocalStore,
}

fn os_err(e: crate::store::StoreError) -> PyErr {
    PyOSError::new_err(e.to_string())
}

#[pymethods]
impl PyLocalStore {
    #[new]
    fn new(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let inner = py
            .allow_threads(|| LocalStore::open(&path))
            .map_err(os_err)?;
        Ok(PyLocalStore { inner })
    }

    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    fn cache_get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let value = py
            .allow_threads(|| self.inner.cache_get(key))
            .map_err(os_err)?;
        Ok(value.map(|v| PyBytes::new(py, &v)))
    }

    fn cache_put(&self, py: Python<'_>, key: &str, task: &str, value: &[u8]) -> PyResult<()> {
        py.allow_threads(|| self.inner.cache_put(key, task, value))
            .map_err(os_err)
    }

    fn cache_delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        py.allow_threads(|| self.inner.cache_delete(key))
            .map_err(os_err)
    }

    #[pyo3(signature = (task = None))]
    fn cache_clear(&self, py: Python<'_>, task: Option<&str>) -> PyResult<usize> {
        py.allow_threads(|| self.inner.cache_clear(task))
            .map_err(os_err)
    }

    #[pyo3(signature = (limit = 50))]
    fn list_runs<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let runs = py
            .allow_threads(|| self.inner.list_runs(limit))
            .map_err(os_err)?;
        runs.iter().map(|r| run_to_dict(py, r)).collect()
    }

    fn get_run<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let run = py
            .allow_threads(|| self.inner.get_run(name))
            .map_err(os_err)?;
        run.map(|r| run_to_dict(py, &r)).transpose()
    }

    fn run_actions<'py>(&self, py: Python<'py>, run: &str) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let actions = py
            .allow_threads(|| self.inner.run_actions(run))
            .map_err(os_err)?;
        actions.iter().map(|r| record_to_dict(py, r)).collect()
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
    m.add_class::<PyLocalStore>()?;
    aio::register(m)?;
    controller::register(m)?;
    backend::register(m)?;
    rpc::register(m)?;
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
