//! Serialized caching for local mode: the core's cache gate (`flyte_backend::cache_gate`),
//! shared by every local run of this process. A caller takes a ticket, waits for its turn on
//! a cache key (awaiting, or blocking a worker thread), and is done with it when its action
//! ends, which hands the key to the next ticket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::sync::oneshot;

use flyte_backend::cache_gate::{Admission, CacheGate};

static GATE: LazyLock<CacheGate<oneshot::Sender<()>>> = LazyLock::new(CacheGate::default);
static TICKETS: AtomicU64 = AtomicU64::new(1);

/// Passes `key` on from `ticket` to the first waiter still waiting.
fn pass_on(key: &str, ticket: u64) {
    let mut from = ticket;
    while let Some((next, waiter)) = GATE.leave(key, from) {
        if waiter.send(()).is_ok() {
            return;
        }
        // That waiter stopped waiting (its coroutine was cancelled): skip it.
        from = next;
    }
}

/// Enters the queue of `key`; None when it is the ticket's turn already.
fn enter(key: &str, ticket: u64) -> Option<oneshot::Receiver<()>> {
    let (tx, rx) = oneshot::channel();
    match GATE.enter(key, ticket, tx) {
        Admission::Go => None,
        Admission::Wait => Some(rx),
    }
}

fn woken(result: Result<(), oneshot::error::RecvError>) -> PyResult<()> {
    result.map_err(|_| PyRuntimeError::new_err("the cache gate dropped a waiting caller"))
}

/// A new ticket for `cache_turn`.
#[pyfunction]
fn cache_ticket() -> u64 {
    TICKETS.fetch_add(1, Ordering::Relaxed)
}

/// Resolves when it is `ticket`'s turn to look up and fill the cache under `key`.
#[pyfunction]
fn cache_turn(py: Python<'_>, key: String, ticket: u64) -> PyResult<Bound<'_, PyAny>> {
    let waiting = enter(&key, ticket);
    crate::python::aio::future_into_py(py, async move {
        match waiting {
            Some(rx) => woken(rx.await),
            None => Ok(()),
        }
    })
}

/// Blocks this (worker) thread, without the GIL, until it is `ticket`'s turn on `key`.
#[pyfunction]
fn cache_turn_blocking(py: Python<'_>, key: &str, ticket: u64) -> PyResult<()> {
    match enter(key, ticket) {
        Some(rx) => woken(py.allow_threads(|| rx.blocking_recv())),
        None => Ok(()),
    }
}

/// `ticket` is done with `key` (its action ended, or it stopped waiting).
#[pyfunction]
fn cache_done(key: &str, ticket: u64) {
    pass_on(key, ticket);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cache_ticket, m)?)?;
    m.add_function(wrap_pyfunction!(cache_turn, m)?)?;
    m.add_function(wrap_pyfunction!(cache_turn_blocking, m)?)?;
    m.add_function(wrap_pyfunction!(cache_done, m)?)?;
    Ok(())
}
