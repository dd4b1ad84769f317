//! `flyte._core.Backend`: the embedded backend, served from a Python process
//! (`flyte start local`, or a test).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flyte_backend::{BackendConfig, RunningBackend, TlsFiles};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::Notify;

pyo3::create_exception!(
    flyte._core,
    DataDirInUseError,
    PyOSError,
    "Another running backend holds the data directory (each backend locks its own)."
);

#[pyclass(name = "Backend", module = "flyte._core", frozen)]
pub struct PyBackend {
    endpoint: String,
    running: Mutex<Option<RunningBackend>>,
    stop: Arc<Notify>,
}

fn resolve(host: &str, port: u16) -> PyResult<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| PyValueError::new_err(format!("cannot listen on {host}:{port}: {e}")))?
        .next()
        .ok_or_else(|| PyValueError::new_err(format!("{host} resolves to no address")))
}

#[pymethods]
impl PyBackend {
    /// Starts serving at once (state is recovered from `data_dir` first); `endpoint` tells
    /// where. Serving continues on background threads until `shutdown()`. With
    /// `fork_server`, attempts are forked from that warm process instead of started afresh.
    #[new]
    #[pyo3(signature = (data_dir, bin_dir, host = "127.0.0.1".to_string(), port = 0, max_parallel = 8, fork_server = None, images = Vec::new(), worker = None, tls_cert = None, tls_key = None, request_log = None, auth_issuer = None, auth_audience = None, auth_client_id = None, auth_scopes = Vec::new(), system_retries = None, max_streams_per_connection = None, max_requests_per_second = None, max_message_bytes = None, sandbox = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        data_dir: PathBuf,
        bin_dir: PathBuf,
        host: String,
        port: u16,
        max_parallel: usize,
        fork_server: Option<Vec<String>>,
        images: Vec<(String, PathBuf)>,
        worker: Option<Vec<String>>,
        tls_cert: Option<PathBuf>,
        tls_key: Option<PathBuf>,
        request_log: Option<PathBuf>,
        auth_issuer: Option<String>,
        auth_audience: Option<String>,
        auth_client_id: Option<String>,
        auth_scopes: Vec<String>,
        system_retries: Option<u32>,
        max_streams_per_connection: Option<u32>,
        max_requests_per_second: Option<u32>,
        max_message_bytes: Option<usize>,
        sandbox: bool,
    ) -> PyResult<Self> {
        if max_parallel == 0 {
            return Err(PyValueError::new_err("max_parallel must be at least 1"));
        }
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(PyValueError::new_err(
                    "TLS needs both a certificate and its private key",
                ))
            }
        };
        let auth = match (auth_issuer, auth_audience) {
            (Some(issuer), Some(audience)) => Some(flyte_backend::AuthSettings {
                issuer,
                audience,
                client_id: auth_client_id.unwrap_or_else(|| "flyte-cli".to_string()),
                scopes: auth_scopes,
                redirect_uri: flyte_backend::auth::DEFAULT_REDIRECT_URI.to_string(),
            }),
            (None, None) => None,
            _ => {
                return Err(PyValueError::new_err(
                    "authentication needs both the authorization server (auth_issuer) and the audience of its tokens (auth_audience)",
                ))
            }
        };
        let addr = resolve(&host, port)?;
        let mut config = BackendConfig::new(data_dir, bin_dir);
        config.images = images;
        config.max_parallel = max_parallel;
        config.fork_server = fork_server;
        config.worker = worker;
        config.tls = tls;
        config.request_log = request_log;
        config.auth = auth;
        if let Some(budget) = system_retries {
            config.system_retries = budget;
        }
        if let Some(streams) = max_streams_per_connection {
            if streams == 0 {
                return Err(PyValueError::new_err(
                    "max_streams_per_connection must be at least 1",
                ));
            }
            config.max_streams_per_connection = streams;
        }
        if let Some(rate) = max_requests_per_second {
            if rate == 0 {
                return Err(PyValueError::new_err(
                    "max_requests_per_second must be at least 1",
                ));
            }
            config.max_requests_per_second = rate;
        }
        if let Some(bytes) = max_message_bytes {
            if bytes < 1024 {
                return Err(PyValueError::new_err(
                    "max_message_bytes must be at least 1024",
                ));
            }
            config.max_message_bytes = bytes;
        }
        config.sandbox = sandbox;
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        let running = py
            .allow_threads(|| runtime.block_on(flyte_backend::start(config, addr)))
            .map_err(|e| match e {
                flyte_backend::BackendError::DataDirInUse(_) => {
                    DataDirInUseError::new_err(e.to_string())
                }
                other => PyOSError::new_err(other.to_string()),
            })?;
        Ok(PyBackend {
            endpoint: running.endpoint(),
            running: Mutex::new(Some(running)),
            stop: Arc::new(Notify::new()),
        })
    }

    #[getter]
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Blocks until `shutdown()` is called or the process gets SIGINT/SIGTERM, then stops.
    /// The GIL is released meanwhile.
    fn wait(&self, py: Python<'_>) -> PyResult<()> {
        let stop = self.stop.clone();
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        py.allow_threads(|| {
            runtime.block_on(async move {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = stop.notified() => {}
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                Ok::<(), std::io::Error>(())
            })
        })
        .map_err(|e| PyOSError::new_err(e.to_string()))?;
        self.shutdown(py);
        Ok(())
    }

    /// Fires the triggers due at `now_ms` (ms since the epoch) and returns how many runs
    /// started. The scheduler does this every second on the wall clock; tests that need a
    /// schedule's later ticks now call it with the time they want.
    fn _fire_due_triggers(&self, py: Python<'_>, now_ms: i64) -> PyResult<usize> {
        let guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let running = guard
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the backend is shut down"))?;
        let runtime = pyo3_async_runtimes::tokio::get_runtime();
        Ok(py.allow_threads(|| runtime.block_on(running.fire_due_triggers(now_ms))))
    }

    /// Stops serving and the action processes' supervision; idempotent.
    fn shutdown(&self, py: Python<'_>) {
        // A stored permit: a wait() that starts later returns at once.
        self.stop.notify_one();
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(running) = running {
            let runtime = pyo3_async_runtimes::tokio::get_runtime();
            py.allow_threads(|| runtime.block_on(running.shutdown()));
        }
    }
}

/// Sends this process's backend log to `<data_dir>/logs` (`flyte start local`: the process
/// is the backend's). Programs that embed a backend keep their own logging.
#[pyfunction]
fn init_backend_log(data_dir: std::path::PathBuf) -> PyResult<bool> {
    flyte_backend::logging::init(&data_dir).map_err(PyValueError::new_err)
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBackend>()?;
    m.add_function(wrap_pyfunction!(read_secret, m)?)?;
    m.add_function(wrap_pyfunction!(init_backend_log, m)?)?;
    m.add("DataDirInUseError", m.py().get_type::<DataDirInUseError>())
}
