//! The names Rust and Python share (`flyte_backend::contract`), and run names.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Raises ValueError unless a cluster would accept `name` as a run name.
#[pyfunction]
fn check_run_name(name: &str) -> PyResult<()> {
    flyte_backend::check_run_name(name).map_err(PyValueError::new_err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let names = PyDict::new(m.py());
    for (name, value) in flyte_backend::contract::NAMES {
        names.set_item(name, value)?;
    }
    m.add("CONTRACT", names)?;
    m.add_function(wrap_pyfunction!(check_run_name, m)?)
}
