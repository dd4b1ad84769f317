//! `flyte._core.RpcClient`: run-level calls (RunService, RunLogsService) with serialized
//! messages, over the same channel, TLS and auth as the controller.

use std::sync::Arc;

use pyo3::exceptions::{PyStopAsyncIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::Mutex;
use tonic::Streaming;

use crate::client::{Client, ClientConfig};
use crate::python::controller::controller_error;
use crate::rpc::{self, RpcError};

fn to_py_err(e: RpcError) -> PyErr {
    match e {
        RpcError::Status(status) => Python::with_gil(|py| {
            controller_error(
                py,
                crate::client::code_name(status.code()),
                status.message(),
            )
        }),
        RpcError::BadMethod(_) | RpcError::Client(_) => PyValueError::new_err(e.to_string()),
    }
}

fn bytes_of(data: Vec<u8>) -> Py<PyBytes> {
    Python::with_gil(|py| PyBytes::new(py, &data).unbind())
}

#[pyclass(name = "RpcClient", module = "flyte._core", frozen)]
pub struct PyRpcClient {
    client: Arc<Client>,
}

#[pymethods]
impl PyRpcClient {
    #[new]
    #[pyo3(signature = (endpoint, insecure = false, headers = Vec::new(), ca_cert = None, auth = None))]
    fn new(
        endpoint: String,
        insecure: bool,
        headers: Vec<(String, String)>,
        ca_cert: Option<Vec<u8>>,
        auth: Option<Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let mut config = ClientConfig::new(endpoint);
        config.insecure = insecure;
        config.headers = headers;
        config.ca_cert_pem = ca_cert;
        if let Some(auth) = auth {
            crate::python::signin::attach(
                &mut config,
                crate::python::signin::settings_from(&auth)?,
            )?;
        }
        let client = Client::new(&config).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyRpcClient {
            client: Arc::new(client),
        })
    }

    /// Calls `method` (e.g. "/flyteidl2.workflow.RunService/CreateRun") with a serialized
    /// request; the awaitable gives the serialized response.
    fn unary<'py>(
        &self,
        py: Python<'py>,
        method: String,
        request: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        crate::python::aio::future_into_py(py, async move {
            let out = rpc::unary(&client, &method, request)
                .await
                .map_err(to_py_err)?;
            Ok(bytes_of(out))
        })
    }

    /// As `unary`, but the awaitable gives (response bytes, {header: value}).
    fn unary_with_headers<'py>(
        &self,
        py: Python<'py>,
        method: String,
        request: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        crate::python::aio::future_into_py(py, async move {
            let (out, headers) = rpc::unary_with_headers(&client, &method, request)
                .await
                .map_err(to_py_err)?;
            Python::with_gil(|py| {
                let dict = pyo3::types::PyDict::new(py);
                for (key, value) in headers {
                    dict.set_item(key, value)?;
                }
                Ok((bytes_of(out), dict.unbind()))
            })
        })
    }

    /// Opens a server stream lazily; iterate it with `async for`.
    fn stream(&self, method: String, request: Vec<u8>) -> PyRpcStream {
        PyRpcStream {
            client: self.client.clone(),
            method,
            request: Arc::new(Mutex::new(Some(request))),
            stream: Arc::new(Mutex::new(None)),
        }
    }
}

type Shared<T> = Arc<Mutex<Option<T>>>;

#[pyclass(name = "RpcStream", module = "flyte._core", frozen)]
pub struct PyRpcStream {
    client: Arc<Client>,
    method: String,
    request: Shared<Vec<u8>>,
    stream: Shared<Streaming<Vec<u8>>>,
}

#[pymethods]
impl PyRpcStream {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        let method = self.method.clone();
        let request = self.request.clone();
        let stream = self.stream.clone();
        crate::python::aio::future_into_py(py, async move {
            let mut guard = stream.lock().await;
            if guard.is_none() {
                let Some(req) = request.lock().await.take() else {
                    return Err(PyStopAsyncIteration::new_err(()));
                };
                *guard = Some(
                    rpc::server_stream(&client, &method, req)
                        .await
                        .map_err(to_py_err)?,
                );
            }
            let Some(s) = guard.as_mut() else {
                return Err(PyStopAsyncIteration::new_err(()));
            };
            match s.message().await {
                Ok(Some(msg)) => Ok(bytes_of(msg)),
                Ok(None) => {
                    *guard = None;
                    Err(PyStopAsyncIteration::new_err(()))
                }
                Err(status) => {
                    *guard = None;
                    Err(to_py_err(RpcError::Status(Box::new(status))))
                }
            }
        })
    }

    /// Stops reading; the server sees the stream closed.
    fn cancel(&self) {
        let stream = self.stream.clone();
        let request = self.request.clone();
        pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            request.lock().await.take();
            stream.lock().await.take();
        });
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRpcClient>()?;
    m.add_class::<PyRpcStream>()?;
    Ok(())
}
