//! `flyte._core.RunJournal`: the durable record of a run executed in this process (local
//! mode), in the data dir's backend database; also the data dir's cache for such runs.

use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use flyte_backend::journal::{JournalError, OpenError, Opened, RunJournal, RunKey};

pyo3::create_exception!(
    flyte._core,
    RunConflictError,
    PyValueError,
    "A local run cannot be opened under the name it was given (it is being run elsewhere, it \
     is not a local run, or it was started with other inputs)."
);

fn journal_err(e: JournalError) -> PyErr {
    match e {
        JournalError::Open(OpenError::Store(source)) => PyOSError::new_err(source.to_string()),
        JournalError::Open(conflict) => RunConflictError::new_err(conflict.to_string()),
        other => PyOSError::new_err(other.to_string()),
    }
}

/// The durable record of a run executed in this process (local mode), kept in the data dir's
/// backend database; also the data dir's task cache for such runs.
#[pyclass(name = "RunJournal", module = "flyte._core", frozen)]
pub struct PyRunJournal {
    pub inner: Arc<RunJournal>,
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

    /// Serialized `task.Outputs` cached under `key`, if any, at most `max_age_ms` old.
    #[pyo3(signature = (key, max_age_ms = None))]
    fn cache_get<'py>(
        &self,
        py: Python<'py>,
        key: &str,
        max_age_ms: Option<i64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let found = py
            .allow_threads(|| self.inner.cache_get(key, max_age_ms))
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRunJournal>()?;
    m.add_function(wrap_pyfunction!(drain_journals, m)?)?;
    m.add("RunConflictError", m.py().get_type::<RunConflictError>())
}
