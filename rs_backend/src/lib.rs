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
//!     "/path/to/venv/bin".into(),
//! );
//! let backend = start(config, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("serving on {}", backend.endpoint());
//! backend.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # The task contract
//!
//! An attempt runs the task's `container.args` as a Flyte 2 cluster runs a pod's container:
//! `args[0]` is the program, looked up in the bin directory that stands in for the task's
//! `container.image` ([`BackendConfig::images`], else [`BackendConfig::bin_dir`]), then on
//! PATH. `{{.input}}` (the inputs file; offloaded inputs are a directory holding `inputs.pb`),
//! `{{.inputPrefix}}`, `{{.outputPrefix}}`, `{{.rawOutputDataPrefix}}`,
//! `{{.checkpointOutputPrefix}}`, `{{.prevCheckpointPrefix}}`, `{{.runName}}`,
//! `{{.actionName}}`, `{{.attempt}}` and `{{.runStartTime}}` are filled in. It runs in its own
//! process group, in a fresh work dir, with stdout and stderr going to the attempt's log, and
//! with the variables a cluster sets on a task pod (`ACTION_NAME`, `RUN_NAME`, `_U_RUN_BASE`,
//! `_U_ORG_NAME`, `_U_EP_OVERRIDE`, `_U_INSECURE`, `_U_USE_ACTIONS`,
//! `FLYTE_INTERNAL_EXECUTION_{ID,PROJECT,DOMAIN}`, `FLYTE_ATTEMPT_NUMBER` (0-based),
//! `FLYTE_INTERNAL_TASK_*`, `_F_PN`) over the backend's `extra_env`, the task's env and the
//! run's env. [`contract::EXTRA_DATA_DIR`] and [`contract::EXTRA_ATTEMPT`] are extras a task may use but
//! must not need.
//!
//! The attempt failed if it wrote `<output prefix>error.pb` (a `core.ErrorDocument`: origin
//! USER uses the task's retries when the error is RECOVERABLE, SYSTEM is treated as a crash);
//! it succeeded if it exits 0 having written `<output prefix>outputs.pb`. Anything else is a
//! crash, relaunched up to `system_retries` times. Timeouts (`metadata.timeout`) and memory
//! limits (`container.resources.limits`) kill the process group and count as user failures.
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

mod attempt_token;
pub mod auth;
pub mod cache_gate;
mod clock;
mod config;
pub mod contract;
mod data_refs;
mod datafile;
mod engine;
mod error;
pub mod executor;
mod firing;
pub mod idl;
pub mod journal;
mod keyfile;
mod layout;
mod listing;
pub mod logging;
mod names;
pub mod notify;
mod peer;
pub mod phase;
pub mod policy;
mod procfs;
mod protocol;
mod quantity;
mod recovery;
mod run_env;
pub mod sandbox;
pub mod schedule;
mod secrets;
mod server;
mod services;
mod signing;
mod store;
mod tls;
mod validate;
pub mod values;
mod views;

pub use auth::AuthSettings;
pub use config::{BackendConfig, TlsFiles};

pub use engine::ROOT_ACTION;
pub use error::BackendError;
pub use names::{check_run_name, MAX_RUN_NAME_LEN};
pub use secrets::read_from_data_dir as read_secret;
pub use server::{start, RunningBackend, ShutdownHandle};
