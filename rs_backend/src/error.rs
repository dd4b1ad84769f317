//! Errors of starting and running the backend (request errors are gRPC statuses instead).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("invalid backend configuration: {0}")]
    InvalidConfig(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("data directory {} is in use by another running backend", .0.display())]
    DataDirInUse(PathBuf),
    #[error("gRPC server: {0}")]
    Server(#[from] tonic::transport::Error),
    #[error("backend task failed: {0}")]
    Task(String),
}

impl BackendError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
