//! The request log: every RPC request message, as the client sent it, appended to a file.
//!
//! It sits where every protocol has become gRPC (Connect calls already translated), so one
//! log covers all clients. Each line is `{"method": "/pkg.Service/Method", "message": "<base64>"}`
//! with the message decompressed; a request body that is not a well-formed gRPC body is logged
//! with an `"error"` instead and still passed on, so the service answers it as it would anyway.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use http::{HeaderMap, Request};
use tonic::body::BoxBody;

use super::connect::{boxed, grpc_message, read_body};
use super::frames;
use crate::error::BackendError;

pub struct RequestLog {
    file: Mutex<File>,
    /// Largest message read (the backend's message limit).
    limit: usize,
}

impl RequestLog {
    pub fn open(path: &Path, limit: usize) -> Result<Self, BackendError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| BackendError::io(format!("open request log {}", path.display()), e))?;
        Ok(Self {
            file: Mutex::new(file),
            limit,
        })
    }

    /// Whether this request is one the log records: a gRPC call (gRPC-Web is left alone).
    pub fn records(headers: &HeaderMap) -> bool {
        headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct == "application/grpc" || ct.starts_with("application/grpc+"))
    }

    /// Reads the whole request body, logs its messages, and gives back an equivalent request.
    pub async fn record(&self, method: &str, request: Request<BoxBody>) -> Request<BoxBody> {
        let (parts, body) = request.into_parts();
        let (entry, body) = match read_body(body, self.limit).await {
            Ok(bytes) => (messages(&bytes, &parts.headers, self.limit), boxed(bytes)),
            // The body is gone: the service sees an empty request and answers it as such.
            Err(status) => (Err(status.message().to_string()), tonic::body::empty_body()),
        };
        self.append(method, entry);
        Request::from_parts(parts, body)
    }

    fn append(&self, method: &str, entry: Result<Vec<Vec<u8>>, String>) {
        let mut lines = String::new();
        match entry {
            Ok(messages) => {
                for message in messages {
                    let line = serde_json::json!({
                        "method": method,
                        "message": base64::engine::general_purpose::STANDARD.encode(message),
                    });
                    lines.push_str(&line.to_string());
                    lines.push('\n');
                }
            }
            Err(error) => {
                lines.push_str(&serde_json::json!({"method": method, "error": error}).to_string());
                lines.push('\n');
            }
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = file.write_all(lines.as_bytes()) {
            tracing::warn!(%err, "could not append to the request log");
        }
    }
}

fn messages(body: &[u8], headers: &HeaderMap, limit: usize) -> Result<Vec<Vec<u8>>, String> {
    frames::decode_all(body, limit)?
        .into_iter()
        .map(|frame| {
            grpc_message(frame, headers, limit)
                .map(|m| m.to_vec())
                .map_err(|s| s.message().to_string())
        })
        .collect()
}
