//! Rust futures as Python awaitables, safe at interpreter exit.
//!
//! A finished Rust future hands its result to asyncio with `loop.call_soon_threadsafe`,
//! which briefly releases the GIL (it writes to the loop's self-pipe). If the main thread
//! reaches interpreter finalization in that window, Python terminates the tokio thread when
//! it asks for the GIL again, and unwinding that thread drops Python objects without the
//! GIL: a crash at exit. So every bridged task is counted, and an `atexit` hook (which runs
//! before finalization) waits, with the GIL released, until none is left.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::err::RustPanic;
use tokio::sync::oneshot;

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

/// Completes an asyncio future on its loop's thread, unless it was cancelled meanwhile.
#[pyclass]
struct Complete;

#[pymethods]
impl Complete {
    fn __call__(&self, fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            return Ok(());
        }
        let method = if ok { "set_result" } else { "set_exception" };
        fut.call_method1(method, (value,))?;
        Ok(())
    }
}

/// Tells the Rust side that the awaiting Python code cancelled the future.
#[pyclass]
struct OnDone {
    cancel: Option<oneshot::Sender<()>>,
}

#[pymethods]
impl OnDone {
    fn __call__(&mut self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            if let Some(cancel) = self.cancel.take() {
                let _ = cancel.send(());
            }
        }
        Ok(())
    }
}

fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static GET_RUNNING_LOOP: GILOnceCell<PyObject> = GILOnceCell::new();
    GET_RUNNING_LOOP
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
        })?
        .bind(py)
        .call0()
}

/// An asyncio-awaitable for `fut`, running on the shared tokio runtime.
///
/// One tokio task per awaitable, holding the boxed future and two Python references: a
/// parent awaiting tens of thousands of children holds one of these per child, so it is kept
/// small (pyo3-async-runtimes' generic bridge spawns two tasks per future, each sized to it,
/// and boxes it a third time). Cancelling the Python future drops the Rust one.
pub fn future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = running_loop(py)?;
    let py_fut = event_loop.call_method0("create_future")?;
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    py_fut.call_method1(
        "add_done_callback",
        (OnDone {
            cancel: Some(cancel_tx),
        },),
    )?;
    let target = py_fut.clone().unbind();
    let event_loop = event_loop.unbind();
    // Counted from here, not from inside the task: the task may not have started yet when
    // the exit hook looks.
    let guard = InFlight::new();
    // Boxed once, here: every state machine around it then holds a pointer, not a copy.
    let fut = Box::pin(fut);
    let task = async move {
        let _guard = guard;
        let outcome = AssertUnwindSafe(until_cancelled(fut, cancel_rx))
            .catch_unwind()
            .await;
        let outcome = match outcome {
            Ok(Some(result)) => result,
            // The Python side cancelled: nobody is waiting for an answer.
            Ok(None) => return,
            Err(panic) => Err(RustPanic::new_err(format!(
                "rust future panicked: {}",
                panic_message(panic.as_ref())
            ))),
        };
        Python::with_gil(move |py| {
            let (ok, value) = match outcome.and_then(|v| v.into_py_any(py)) {
                Ok(value) => (true, value),
                Err(err) => (false, err.into_value(py).into_any()),
            };
            let scheduled = event_loop.bind(py).call_method1(
                "call_soon_threadsafe",
                (Complete, target.bind(py), ok, value),
            );
            // The loop is closed: its futures can no longer be awaited by anyone.
            if let Err(e) = scheduled {
                tracing::debug!(error = %e, "could not hand a result to a closed event loop");
            }
        });
    };
    pyo3_async_runtimes::tokio::get_runtime().spawn(task);
    Ok(py_fut)
}

/// `fut`'s output, or `None` once the Python side cancelled. A sender dropped without a
/// word (its future finished, or its loop went away) is no cancellation.
async fn until_cancelled<F: Future + Unpin>(
    mut fut: F,
    cancel: oneshot::Receiver<()>,
) -> Option<F::Output> {
    let cancelled = async {
        if cancel.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        biased;
        out = &mut fut => Some(out),
        _ = cancelled => None,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
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
