//! A task's retry and time-limit rules (`flyte_backend::policy`), for local mode: the same
//! rules the embedded backend applies to its processes.

use std::time::Duration;

use flyteidl2::flyteidl::core::TaskMetadata;
use prost::Message;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use flyte_backend::policy::{Backoff, TaskPolicy};

/// A task's policy, read from its serialized `core.TaskMetadata` (retries, their backoff,
/// timeout and timeouts).
#[pyclass(name = "TaskPolicy", module = "flyte._core", frozen)]
pub struct PyTaskPolicy {
    pub inner: TaskPolicy,
}

#[pymethods]
impl PyTaskPolicy {
    #[new]
    fn new(metadata: &[u8]) -> PyResult<Self> {
        let metadata = TaskMetadata::decode(metadata)
            .map_err(|e| PyValueError::new_err(format!("not a core.TaskMetadata: {e}")))?;
        let inner = TaskPolicy::from_metadata(Some(&metadata)).map_err(PyValueError::new_err)?;
        Ok(Self { inner })
    }

    #[getter]
    fn retries(&self) -> u32 {
        self.inner.retries
    }

    /// Seconds an attempt may run (None: no per-attempt bound).
    #[getter]
    fn max_runtime(&self) -> Option<f64> {
        self.inner.max_runtime.map(|d| d.as_secs_f64())
    }

    /// Seconds the whole action may take (None: no deadline).
    #[getter]
    fn deadline(&self) -> Option<f64> {
        self.inner.deadline.map(|d| d.as_secs_f64())
    }
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{what} must be a number of seconds >= 0")))
}

/// Seconds before retry `n` (0-based) under a backoff of `base` seconds growing by `factor`
/// up to `cap` seconds; ValueError for a backoff the core refuses.
#[pyfunction]
#[pyo3(signature = (base, factor, cap, n))]
fn backoff_delay(base: f64, factor: f64, cap: Option<f64>, n: u32) -> PyResult<f64> {
    let cap = cap.map(|c| seconds(c, "cap")).transpose()?;
    let backoff =
        Backoff::new(seconds(base, "base")?, factor, cap).map_err(PyValueError::new_err)?;
    Ok(backoff.delay(n).as_secs_f64())
}

/// A task's environment variables as both modes set them: the task's, then the run's over them.
#[pyfunction]
fn task_environment(
    task_env: Vec<(String, String)>,
    run_env: Vec<(String, String)>,
) -> Vec<(String, String)> {
    flyte_backend::policy::task_environment(&task_env, &run_env)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTaskPolicy>()?;
    m.add_function(wrap_pyfunction!(task_environment, m)?)?;
    m.add_function(wrap_pyfunction!(backoff_delay, m)?)?;
    Ok(())
}
