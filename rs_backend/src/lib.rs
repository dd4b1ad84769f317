//! The embedded Flyte 2 backend.
//!
//! A gRPC server that speaks the flyteidl2 protocol of a Flyte 2 cluster — ActionsService,
//! RunService and RunLogsService — and runs every task action as a local OS process. State is
//! kept in SQLite under the data dir, so a restarted backend carries on where it stopped.
//! [`start`] must be called inside a tokio runtime (multi-threaded in practice).
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
//!
//! # The runtime contract
//!
//! An attempt runs `runtime_command` followed by the task's `container.args`, in which
//! `{{.input}}`, `{{.inputPrefix}}`, `{{.outputPrefix}}`, `{{.rawOutputDataPrefix}}`,
//! `{{.checkpointOutputPrefix}}`, `{{.prevCheckpointPrefix}}`, `{{.runName}}`,
//! `{{.actionName}}` and `{{.attempt}}` are filled in. It runs in its own process group, in a
//! fresh work dir, with stdout and stderr going to the attempt's log, and with
//! `_FLYTE_ENDPOINT`, `_FLYTE_INSECURE`, `_FLYTE_ORG`, `_FLYTE_PROJECT`, `_FLYTE_DOMAIN`,
//! `_FLYTE_RUN`, `_FLYTE_ACTION`, `_FLYTE_ATTEMPT` (1-based), `_FLYTE_RUN_OUTPUT_BASE`,
//! `_FLYTE_DATA_DIR`, `_FLYTE_INPUT_URI`, `_FLYTE_OUTPUT_PREFIX`, `_FLYTE_RAW_DATA_PREFIX`
//! and `PYTHONUNBUFFERED=1` set (over the backend's environment, `extra_env`, the task's env
//! and the run's env, in that order).
//!
//! The attempt succeeded if it exits 0 having written `<output prefix>outputs.pb`; it failed
//! if it wrote `<output prefix>error.pb` (a `core.ExecutionError`: kind USER uses the task's
//! retries, SYSTEM is treated as a crash). Anything else is a crash, relaunched up to
//! `system_retries` times. Timeouts (`metadata.timeout`) and memory limits
//! (`container.resources.limits`) kill the process group and count as user failures.

//!
//! # Fork server
//!
//! With [`BackendConfig::fork_server`] set, attempts are not spawned: a warm server process
//! (started on the first launch, and again whenever it dies) forks each one and runs it
//! in-process with only the task's container args. Each attempt is still its own process,
//! session, log and exit status, with the same environment as above. Their memory is
//! measured as private (unique) memory rather than resident size, which would count the
//! pages they share with the server. The line-oriented JSON protocol is documented in the
//! executor's `forkserver` module; the server's stderr goes to `<data_dir>/logs/forkserver.log`.

// tonic::Status is the error type of every gRPC method; boxing it on the way there would only
// add conversions.
#![allow(clippy::result_large_err)]

mod clock;
mod config;
mod datafile;
mod engine;
mod error;
mod executor;
mod json;
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
