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
pub mod rpc;

mod python;
