//! The embedded Flyte 2 backend.
//!
//! A gRPC server that speaks the flyteidl2 protocol of a Flyte 2 cluster — ActionsService,
//! RunService and RunLogsService — and runs every task action as a local OS process. State is
//! kept in SQLite under the data dir, so a restarted backend carries on where it stopped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flyte_backend::BackendError> {
//! use flyte_backend::{start, BackendConfig};
//! let config = BackendConfig::new(
//!     "/tmp/flyte-data".into(),
//!     vec!["python3".into(), "-m".into(), "flyte._runtime".into()],
//! );
//! let backend = start(config, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("serving on {}", backend.endpoint());
//! backend.shutdown().await;
//! # Ok(()) }
//! ```

// tonic::Status is the error type of every gRPC method; boxing it on the way there would only
// add conversions.
#![allow(clippy::result_large_err)]

mod clock;
mod config;
mod datafile;
mod engine;
mod error;
mod executor;
mod layout;
mod names;
mod phase;
mod procfs;
mod quantity;
mod recovery;
mod server;
mod services;
mod store;
mod validate;
mod views;

pub use config::BackendConfig;
pub use error::BackendError;
pub use server::{start, RunningBackend, ShutdownHandle};
