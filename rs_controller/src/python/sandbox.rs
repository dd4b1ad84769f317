//! A fork server's child narrowing what it sees of the backend's data dir before it runs an
//! attempt (the backend does the same in its own children before exec).

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use flyte_backend::sandbox::{enter_view as enter, Opening, View};

/// Moves this (single-threaded) process into user and mount namespaces of its own in which
/// `root` shows only `openings` (path, writable), changes to `cwd`, and drops the capability
/// to change mounts.
#[pyfunction]
fn enter_view(
    root: std::path::PathBuf,
    openings: Vec<(std::path::PathBuf, bool)>,
    cwd: std::path::PathBuf,
) -> PyResult<()> {
    let openings: Vec<Opening> = openings
        .into_iter()
        .map(|(path, writable)| Opening { path, writable })
        .collect();
    enter(View::new(&root, &openings, Some(&cwd))).map_err(|e| {
        PyOSError::new_err(format!(
            "could not enter the attempt's view of {}: {e}",
            root.display()
        ))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(enter_view, m)?)
}
