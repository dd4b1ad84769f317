//! Rust futures as Python awaitables, safe at interpreter exit.
//!
//! A finished Rust future hands its result to asyncio with `loop.call_soon_threadsafe`,
//! which briefly releases the GIL (it writes to the loop's self-pipe). If the main thread
//! reaches interpreter finalization in that window, Python terminates the tokio thread when
//! it asks for the GIL again, and unwinding that thread drops Python objects without the
//! GIL: a crash at exit. So every bridged task is counted, and an `atexit` hook (which runs
//! before finalization) waits, with the GIL released, until none is left.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{ContextExt, Runtime};
use pyo3_async_runtimes::TaskLocals;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

tokio::task_local! {
    static LOCALS: OnceCell<TaskLocals>;
}

/// pyo3-async-runtimes' tokio integration on its shared runtime, with counted tasks.
struct Counted;

impl Runtime for Counted {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Counted from here, not from inside the task: the task may not have started yet
        // when the hook looks.
        let guard = InFlight::new();
        pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            let _guard = guard;
            fut.await;
        })
    }
}

impl ContextExt for Counted {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        LOCALS
            .try_with(|c| {
                c.get()
                    .map(|locals| Python::with_gil(|py| locals.clone_ref(py)))
            })
            .unwrap_or_default()
    }
}

/// An asyncio-awaitable for `fut`, running on the shared tokio runtime.
pub fn future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::generic::future_into_py::<Counted, F, T>(py, fut)
}

/// Waits (GIL released) until no bridged task can touch Python any more, or `timeout`
/// seconds pass. Returns how many were still running.
#[pyfunction]
#[pyo3(signature = (timeout = 2.0))]
fn quiesce(py: Python<'_>, timeout: f64) -> usize {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
    py.allow_threads(|| {
        while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    IN_FLIGHT.load(Ordering::SeqCst)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(quiesce, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (&hook,))?;
    m.add_function(hook)
}
