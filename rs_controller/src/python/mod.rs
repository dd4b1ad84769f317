//! The `flyte._core` Python module: the bridge over the ledger, the journal, the policy
//! core, the controller and the embedded backend. Python imports it in one place only, the
//! `flyte._bridge` package, which has one module per module here.

mod aio;
mod backend;
mod cache;
mod contract;
mod controller;
mod journal;
mod ledger;
mod notify;
mod policy;
mod rpc;
mod sandbox;
mod schedule;
mod signin;
mod values;

use pyo3::prelude::*;

/// What Python gets, by area.
#[pymodule]
#[pyo3(name = "_core")]
fn flyte_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Names shared with Rust: the pod contract, headers, run names.
    contract::register(m)?;
    // A run's actions: their names, their record, the cache keys of their calls.
    ledger::register(m)?;
    // A local run's durable record and the data dir's cache.
    journal::register(m)?;
    // Retries, backoff and time limits; serialized caching.
    policy::register(m)?;
    cache::register(m)?;
    // Awaitables for Rust futures, safe at interpreter exit.
    aio::register(m)?;
    // Talking to a backend: the controller of a task's children, plain RPCs, signing in.
    controller::register(m)?;
    rpc::register(m)?;
    signin::register(m)?;
    values::register(m)?;
    // The embedded backend, and cron schedules as its trigger scheduler reads them.
    backend::register(m)?;
    sandbox::register(m)?;
    schedule::register(m)?;
    // Notifications of finished runs, delivered as the backend delivers them.
    notify::register(m)?;
    Ok(())
}
