//! Task inputs and outputs as JSON values, for the CLI: the same rendering as the web UI's.

use flyte_backend::values::{inputs_json, outputs_json, NoLinks};
use flyteidl2::flyteidl::task::{Inputs, Outputs};
use prost::Message;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A serialized `flyteidl2.task.Outputs` (or `Inputs`, with `kind="inputs"`) as a JSON list of
/// `{"name": ..., "value": ...}`.
#[pyfunction]
#[pyo3(signature = (message, kind = "outputs"))]
fn values_json(message: &[u8], kind: &str) -> PyResult<String> {
    let bad =
        |e: prost::DecodeError| PyValueError::new_err(format!("not a valid {kind} message: {e}"));
    let value = match kind {
        "outputs" => outputs_json(&Outputs::decode(message).map_err(bad)?, &NoLinks),
        "inputs" => inputs_json(&Inputs::decode(message).map_err(bad)?, &NoLinks),
        other => {
            return Err(PyValueError::new_err(format!(
                "kind must be 'inputs' or 'outputs', not {other:?}"
            )))
        }
    };
    Ok(value.to_string())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(values_json, m)?)
}
