//! Core of the flyte SDK.
//!
//! - [`ledger`]: deterministic action IDs and the per-run record of actions.
//! - [`store`]: local state in SQLite (task cache, run records).
//! - `python`: the pyo3 module `flyte._core`, a narrow bridge over the above.

pub mod ledger;
pub mod store;

mod python;
