//! Cron schedules, by the rule the backend's trigger scheduler fires them.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_cron, m)?)?;
    m.add_function(wrap_pyfunction!(cron_next_after, m)?)
}
