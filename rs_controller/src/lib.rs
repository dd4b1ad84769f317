//! Core of the flyte SDK.
//!
//! - [`ledger`]: deterministic action IDs and the per-run record of actions.
//! - [`client`]: channels, TLS and auth to a backend; [`auth`]: signing in with OAuth2.
//! - [`informer`] and [`controller`]: submitting actions and watching them finish.
//! - [`rpc`]: any other flyteidl2 call, with serialized messages.
//! - `python`: the pyo3 module `flyte._core`, a narrow bridge over the above (and over the
//!   embedded backend of the `flyte-backend` crate).

pub mod auth;
pub mod client;
pub mod controller;
pub mod informer;
pub mod ledger;
mod pending;
pub mod rpc;

mod python;

/// In the Python extension, Rust's allocations go to mimalloc. A parent awaiting tens of
/// thousands of children interleaves their long-lived state with the short-lived buffers of
/// their RPCs across the runtime's threads; with the C library's allocator the holes this
/// leaves kept the process about three times the size of what was in use.
#[cfg(feature = "extension-module")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
