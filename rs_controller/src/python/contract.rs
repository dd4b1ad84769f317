//! The names Rust and Python share (`flyte_backend::contract`), and run names.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Raises ValueError unless a cluster would accept `name` as a run name.
#[pyfunction]
fn check_run_name(name: &str) -> PyResult<()> {
    flyte_backend::check_run_name(name).map_err(PyValueError::new_err)
}

/// Seconds a sleep task (`flyte.extras.Sleep`) waits, by the rule the embedded backend applies:
/// `interface` (a serialized `core.TypedInterface`) has one duration input and no outputs,
/// and `inputs` (a serialized `task.Inputs`) holds a duration that is not negative. ValueError
/// says what is wrong otherwise.
#[pyfunction]
fn sleep_seconds(interface: &[u8], inputs: &[u8]) -> PyResult<f64> {
    use flyteidl2::flyteidl::core::TypedInterface;
    use flyteidl2::flyteidl::task::Inputs;
    use prost::Message;

    let interface = TypedInterface::decode(interface)
        .map_err(|e| PyValueError::new_err(format!("not a core.TypedInterface: {e}")))?;
    let inputs = Inputs::decode(inputs)
        .map_err(|e| PyValueError::new_err(format!("not a task.Inputs: {e}")))?;
    flyte_backend::executor::sleep::sleep_duration(Some(&interface), &inputs)
        .map(|d| d.as_secs_f64())
        .map_err(PyValueError::new_err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sleep_seconds, m)?)?;
    let names = PyDict::new(m.py());
    for (name, value) in flyte_backend::contract::NAMES {
        names.set_item(name, value)?;
    }
    m.add("CONTRACT", names)?;
    m.add_function(wrap_pyfunction!(check_run_name, m)?)
}
