//! `flyte._core.Controller`: the controller as Python awaitables.
//!
//! Actions, identifiers and updates cross as serialized flyteidl2 messages. The awaitables
//! run on pyo3-async-runtimes' shared tokio runtime, which is created on the first call that
//! needs it (never at import or construction, so a process may still fork safely after
//! creating a Controller). The GIL is only taken to build the result.

use flyteidl2::flyteidl::actions::Action;
use flyteidl2::flyteidl::common::ActionIdentifier;
use prost::Message;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::client::{code_name, ClientConfig};
use crate::controller::{self, Controller, ControllerConfig};

pyo3::create_exception!(
    flyte._core,
    ControllerError,
    PyException,
    "A call to the Flyte backend failed. `code` is the gRPC code name (e.g. \
     'INVALID_ARGUMENT'), `message` the server's explanation."
);

pub(crate) fn controller_error(py: Python<'_>, code: &str, message: &str) -> PyErr {
    let err = ControllerError::new_err(format!("{code}: {message}"));
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail in practice; if it did,
    // the error would still carry the text.
    let _ = value.setattr("code", code);
    let _ = value.setattr("message", message);
    err
}

fn to_py_err(err: controller::ControllerError) -> PyErr {
    match err {
        controller::ControllerError::Rpc { code, message } => {
            Python::with_gil(|py| controller_error(py, code_name(code), &message))
        }
        controller::ControllerError::InvalidAction(_)
        | controller::ControllerError::InvalidConfig(_)
        | controller::ControllerError::Client(_) => PyValueError::new_err(err.to_string()),
        controller::ControllerError::Closed | controller::ControllerError::Cancelled => {
            Python::with_gil(|py| controller_error(py, "CANCELLED", &err.to_string()))
        }
    }
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> PyResult<M> {
    M::decode(bytes).map_err(|e| PyValueError::new_err(format!("cannot decode {what}: {e}")))
}

fn to_bytes(message: &impl Message) -> Py<PyBytes> {
    let encoded = message.encode_to_vec();
    Python::with_gil(|py| PyBytes::new(py, &encoded).unbind())
}

/// Submits sub-actions to a Flyte 2 backend and watches them.
#[pyclass(name = "Controller", module = "flyte._core", frozen)]
struct PyController {
    inner: Controller,
}

#[pymethods]
impl PyController {
    #[new]
    #[pyo3(signature = (endpoint, insecure = false, headers = Vec::new(), max_in_flight = 64, ca_cert = None, auth = None))]
    fn new(
        endpoint: String,
        insecure: bool,
        headers: Vec<(String, String)>,
        max_in_flight: usize,
        ca_cert: Option<&[u8]>,
        auth: Option<Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let mut client = ClientConfig::new(endpoint);
        client.insecure = insecure;
        client.headers = headers;
        client.ca_cert_pem = ca_cert.map(<[u8]>::to_vec);
        if let Some(auth) = auth {
            crate::python::signin::attach(
                &mut client,
                crate::python::signin::settings_from(&auth)?,
            )?;
        }
        let mut config = ControllerConfig::new(client);
        config.max_in_flight = max_in_flight;
        let inner = Controller::new(config).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyController { inner })
    }

    /// Enqueues a serialized `flyteidl2.actions.Action` and resolves to the serialized
    /// terminal `flyteidl2.workflow.ActionUpdate`. Cancelling the awaitable aborts the action.
    fn submit<'py>(&self, py: Python<'py>, action: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let action: Box<Action> = Box::new(decode(action, "flyteidl2.actions.Action")?);
        controller::validate_action(&action).map_err(to_py_err)?;
        let inner = self.inner.clone();
        crate::python::aio::future_into_py(py, async move {
            let update = inner.submit_boxed(action).await.map_err(to_py_err)?;
            Ok(to_bytes(&update))
        })
    }

    /// Enqueues a serialized `flyteidl2.actions.Action` without waiting for it.
    fn enqueue<'py>(&self, py: Python<'py>, action: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let action: Action = decode(action, "flyteidl2.actions.Action")?;
        controller::validate_action(&action).map_err(to_py_err)?;
        let inner = self.inner.clone();
        crate::python::aio::future_into_py(py, async move {
            inner.enqueue(action).await.map_err(to_py_err)
        })
    }

    /// Waits until the action (a serialized `flyteidl2.common.ActionIdentifier`) is
    /// terminal; resolves to its serialized `ActionUpdate`.
    fn wait<'py>(
        &self,
        py: Python<'py>,
        action_id: &[u8],
        parent_action_name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action_id: ActionIdentifier = decode(action_id, "flyteidl2.common.ActionIdentifier")?;
        let inner = self.inner.clone();
        crate::python::aio::future_into_py(py, async move {
            let update = inner
                .wait(&action_id, &parent_action_name)
                .await
                .map_err(to_py_err)?;
            Ok(to_bytes(&update))
        })
    }

    /// The action's latest serialized `ActionUpdate` once the parent's watch is synced, or
    /// `None` if the backend does not know the action.
    fn get<'py>(
        &self,
        py: Python<'py>,
        action_id: &[u8],
        parent_action_name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action_id: ActionIdentifier = decode(action_id, "flyteidl2.common.ActionIdentifier")?;
        let inner = self.inner.clone();
        crate::python::aio::future_into_py(py, async move {
            let update = inner
                .get(&action_id, &parent_action_name)
                .await
                .map_err(to_py_err)?;
            Ok(update.map(|u| to_bytes(&u)))
        })
    }

    /// Asks the backend to abort the action (a serialized `ActionIdentifier`).
    fn abort<'py>(
        &self,
        py: Python<'py>,
        action_id: &[u8],
        reason: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action_id: ActionIdentifier = decode(action_id, "flyteidl2.common.ActionIdentifier")?;
        let inner = self.inner.clone();
        crate::python::aio::future_into_py(py, async move {
            inner.abort(&action_id, &reason).await.map_err(to_py_err)
        })
    }

    /// Forgets the parent action (a serialized `ActionIdentifier`) whose attempt ended: its
    /// watch stops.
    fn release(&self, parent: &[u8]) -> PyResult<()> {
        let parent: ActionIdentifier = decode(parent, "flyteidl2.common.ActionIdentifier")?;
        self.inner.release(&parent);
        Ok(())
    }

    /// How many parent actions have a watch or submission slots open.
    #[getter]
    fn parents(&self) -> usize {
        self.inner.parents()
    }

    /// Stops all watches; pending and later calls fail with `ControllerError('CANCELLED')`.
    fn close(&self) {
        self.inner.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn __repr__(&self) -> String {
        format!(
            "Controller(endpoint={:?})",
            self.inner.client().endpoint().uri
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let error_type = py.get_type::<ControllerError>();
    // Class-level defaults, so an instance raised from Python code still has both fields.
    error_type.setattr("code", "UNKNOWN")?;
    error_type.setattr("message", "")?;
    m.add("ControllerError", error_type)?;
    m.add_class::<PyController>()?;
    Ok(())
}
