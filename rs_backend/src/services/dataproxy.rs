//! flyteidl2.dataproxy.DataProxyService: moving data in and out without a client touching
//! the storage itself. Upload and download locations are signed URLs served by the backend's
//! own HTTP routes (see `services::http`), standing in for an object store's presigned URLs.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::clock::{now_ms, positive_duration, timestamp};
use crate::datafile::write_atomic;
use crate::engine::{internal, Engine};
use crate::idl::flyteidl::dataproxy::data_proxy_service_server::DataProxyService;
use crate::idl::flyteidl::dataproxy::{
    create_download_link_request, tail_logs_response, upload_inputs_request, ArtifactType,
    CreateDownloadLinkRequest, CreateDownloadLinkResponse, CreateUploadLocationRequest,
    CreateUploadLocationResponse, GetActionDataRequest, GetActionDataResponse, PreSignedUrLs,
    TailLogsRequest, TailLogsResponse, UploadInputsRequest, UploadInputsResponse,
};
use crate::layout::{attempt_prefix, file_uri};
use crate::signing::Grant;
use crate::validate;
use flyteidl2::flyteidl::common::OffloadedInputData;
use flyteidl2::flyteidl::logs::dataplane::LogLine;
use flyteidl2::flyteidl::task::Inputs;

use super::http::{Files, MAX_UPLOAD_BYTES};
use super::{logs, projects, runs, streams, tasks, ServerStream, STREAM_BUFFER};

/// Longest a signed URL may live, and how long one lives when the caller does not say.
const MAX_EXPIRY: Duration = Duration::from_secs(3600);

pub struct DataProxyApi {
    engine: Arc<Engine>,
    files: Arc<Files>,
    scheme: &'static str,
}

impl DataProxyApi {
    pub fn new(engine: Arc<Engine>, files: Arc<Files>, tls: bool) -> Self {
        let scheme = if tls { "https" } else { "http" };
        Self {
            engine,
            files,
            scheme,
        }
    }

    /// The base of signed URLs: how this client reached the backend.
    fn base_url(&self, metadata: &MetadataMap) -> String {
        let host = metadata
            .get("host")
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or(&self.engine.endpoint);
        format!("{}://{host}", self.scheme)
    }
}

fn expiry(requested: Option<&flyteidl2::google::protobuf::Duration>) -> Result<Duration, Status> {
    match requested {
        None => Ok(MAX_EXPIRY),
        Some(d) => {
            let d = positive_duration(d)
                .map_err(|e| Status::invalid_argument(format!("expires_in: {e}")))?
                .unwrap_or(MAX_EXPIRY);
            if d > MAX_EXPIRY {
                return Err(Status::invalid_argument(format!(
                    "expires_in must be at most {}s",
                    MAX_EXPIRY.as_secs()
                )));
            }
            Ok(d)
        }
    }
}

/// A path segment from a client: no separators, no dot-segments.
fn segment<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.is_empty() || value == "." || value == ".." || value.contains(['/', '\\', '\0']) {
        return Err(Status::invalid_argument(format!(
            "{field} {value:?} must be a single path segment"
        )));
    }
    Ok(value)
}

/// RFC 4648 base32 with padding: how a content MD5 names its upload directory.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn report_lines(lines: Vec<LogLine>) -> TailLogsResponse {
    TailLogsResponse {
        logs: vec![tail_logs_response::Logs {
            lines,
            container: None,
        }],
    }
}

#[tonic::async_trait]
impl DataProxyService for DataProxyApi {
    async fn create_upload_location(
        &self,
        request: Request<CreateUploadLocationRequest>,
    ) -> Result<Response<CreateUploadLocationResponse>, Status> {
        let base = self.base_url(request.metadata());
        let request = request.into_inner();
        if request.filename_root.is_empty() && request.content_md5.is_empty() {
            return Err(Status::invalid_argument(
                "either filename_root or content_md5 must be provided",
            ));
        }
        if !request.content_md5.is_empty() && request.content_md5.len() != 16 {
            return Err(Status::invalid_argument(format!(
                "content_md5 must be the 16 bytes of an MD5 digest, not {}",
                request.content_md5.len()
            )));
        }
        if request.content_length < 0 || request.content_length as u64 > MAX_UPLOAD_BYTES {
            return Err(Status::invalid_argument(format!(
                "content_length must be between 0 and {MAX_UPLOAD_BYTES} bytes"
            )));
        }
        let expires_in = expiry(request.expires_in.as_ref())?;
        projects::require(&self.engine, &request.org, &request.project)?;
        let domain = segment(&request.domain, "domain")?;
        let filename = segment(&request.filename, "filename")?;
        let directory = if request.filename_root.is_empty() {
            base32(&request.content_md5)
        } else {
            segment(&request.filename_root, "filename_root")?.to_string()
        };
        let rel = format!(
            "uploads/{}/{domain}/{directory}/{filename}",
            request.project
        );
        let path = self
            .files
            .file_path(&rel)
            .map_err(Status::invalid_argument)?;
        let md5 = if request.content_md5.is_empty() {
            String::new()
        } else {
            base64::engine::general_purpose::STANDARD.encode(&request.content_md5)
        };
        // A named file under a caller-chosen root is only replaced by the same content.
        if !request.filename_root.is_empty() && path.exists() {
            let existing = std::fs::read(&path)
                .map_err(|e| Status::internal(format!("read {}: {e}", path.display())))?;
            let existing_md5 = base64::engine::general_purpose::STANDARD
                .encode(<md5::Md5 as md5::Digest>::digest(&existing));
            if md5.is_empty() {
                return Err(Status::already_exists(format!(
                    "{rel} exists; content_md5 is required to overwrite it"
                )));
            }
            if md5 != existing_md5 {
                return Err(Status::already_exists(format!(
                    "{rel} exists with different content (hash mismatch)"
                )));
            }
        }
        let expires_at_ms = now_ms() + expires_in.as_millis() as i64;
        let grant = Grant {
            method: "PUT",
            path: &rel,
            expires: expires_at_ms / 1000,
            content_md5: &md5,
        };
        let mut headers = std::collections::HashMap::new();
        if !md5.is_empty() {
            headers.insert("Content-MD5".to_string(), md5.clone());
        }
        Ok(Response::new(CreateUploadLocationResponse {
            signed_url: self.files.signed_url(&base, &grant),
            native_url: file_uri(&path),
            expires_at: Some(timestamp((expires_at_ms / 1000) * 1000)),
            headers,
        }))
    }

    async fn upload_inputs(
        &self,
        request: Request<UploadInputsRequest>,
    ) -> Result<Response<UploadInputsResponse>, Status> {
        let request = request.into_inner();
        let (org, project, domain) = match request.id {
            Some(upload_inputs_request::Id::RunId(id)) => (id.org, id.project, id.domain),
            Some(upload_inputs_request::Id::ProjectId(id)) => (id.organization, id.name, id.domain),
            None => return Err(Status::invalid_argument("id is required")),
        };
        projects::require(&self.engine, &org, &project)?;
        let template = match request.task {
            Some(upload_inputs_request::Task::TaskSpec(spec)) => spec
                .task_template
                .ok_or_else(|| Status::invalid_argument("task_spec.task_template is required"))?,
            Some(upload_inputs_request::Task::TaskId(id)) => {
                let id = tasks::check_task_id(Some(&id), "task_id")?;
                tasks::deployed_spec(&self.engine, &id)?
                    .task_template
                    .ok_or_else(|| Status::internal("a deployed task has no task_template"))?
            }
            Some(upload_inputs_request::Task::TriggerName(name)) => {
                return Err(Status::not_found(format!(
                    "trigger {:?} does not exist on this backend",
                    name.name
                )))
            }
            None => return Err(Status::invalid_argument("task is required")),
        };
        let inputs = request.inputs.unwrap_or_default();
        // The hash ignores what the task's cache ignores; the file keeps everything.
        let ignored = template
            .metadata
            .as_ref()
            .map(|m| m.cache_ignore_input_vars.clone())
            .unwrap_or_default();
        let hashed = Inputs {
            literals: inputs
                .literals
                .iter()
                .filter(|l| !ignored.contains(&l.name))
                .cloned()
                .collect(),
            context: inputs.context.clone(),
        };
        let digest = Sha256::digest(hashed.encode_to_vec());
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
        let mut dir = if request.base_dir.is_empty() {
            self.files.root.join("uploads")
        } else {
            crate::layout::uri_to_path(&request.base_dir).map_err(|e| {
                Status::invalid_argument(format!(
                    "base_dir: {e}; the embedded backend writes inputs to local storage"
                ))
            })?
        };
        for part in [&org, &project, &domain] {
            if !part.is_empty() {
                dir = dir.join(segment(part, "id")?);
            }
        }
        let dir = dir.join("offloaded-inputs").join(&hash);
        let file = dir.join("inputs.pb");
        write_atomic(&file, &inputs.encode_to_vec())
            .map_err(|e| Status::internal(format!("write {}: {e}", file.display())))?;
        Ok(Response::new(UploadInputsResponse {
            offloaded_input_data: Some(OffloadedInputData {
                uri: file_uri(&dir),
                inputs_hash: hash,
            }),
        }))
    }

    async fn create_download_link(
        &self,
        request: Request<CreateDownloadLinkRequest>,
    ) -> Result<Response<CreateDownloadLinkResponse>, Status> {
        let base = self.base_url(request.metadata());
        let request = request.into_inner();
        if request.artifact_type != ArtifactType::Report as i32 {
            return Err(Status::invalid_argument(
                "only ARTIFACT_TYPE_REPORT download links are supported",
            ));
        }
        let attempt_id = match request.source {
            Some(create_download_link_request::Source::ActionAttemptId(id)) => id,
            _ => {
                return Err(Status::invalid_argument(
                    "a report download link needs source.action_attempt_id",
                ))
            }
        };
        let expires_in = expiry(request.expires_in.as_ref())?;
        let (run, name) = validate::action_id(attempt_id.action_id.as_ref(), "action_id")?;
        let record = self
            .engine
            .store
            .action(&run, &name)
            .map_err(|e| internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!("action {name:?} does not exist in run {run}"))
            })?;
        let attempt = if attempt_id.attempt == 0 {
            record.attempts
        } else {
            attempt_id.attempt
        };
        let (dir, _) = attempt_prefix(&record.run_output_base, &name, attempt)
            .map_err(Status::failed_precondition)?;
        let report = dir.join("report.html");
        let rel = report
            .strip_prefix(&self.files.root)
            .map_err(|_| {
                Status::failed_precondition("the report is outside the backend's storage")
            })?
            .to_string_lossy()
            .into_owned();
        if !report.is_file() {
            return Err(Status::not_found(format!(
                "attempt {attempt} of action {name:?} has no report"
            )));
        }
        let expires_at_ms = now_ms() + expires_in.as_millis() as i64;
        let grant = Grant {
            method: "GET",
            path: &rel,
            expires: expires_at_ms / 1000,
            content_md5: "",
        };
        Ok(Response::new(CreateDownloadLinkResponse {
            pre_signed_urls: Some(PreSignedUrLs {
                signed_url: vec![self.files.signed_url(&base, &grant)],
                expires_at: Some(timestamp((expires_at_ms / 1000) * 1000)),
            }),
        }))
    }

    async fn get_action_data(
        &self,
        request: Request<GetActionDataRequest>,
    ) -> Result<Response<GetActionDataResponse>, Status> {
        let (run, name) =
            validate::action_id(request.into_inner().action_id.as_ref(), "action_id")?;
        let record = self
            .engine
            .store
            .action(&run, &name)
            .map_err(|e| internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!("action {name:?} does not exist in run {run}"))
            })?;
        let data = runs::action_data(&record, &self.engine.store)?;
        Ok(Response::new(GetActionDataResponse {
            inputs: Some(data.inputs.unwrap_or_default()),
            outputs: Some(data.outputs.unwrap_or_default()),
            inputs_uri: data.inputs_uri,
            outputs_uri: data.outputs_uri,
        }))
    }

    type TailLogsStream = ServerStream<TailLogsResponse>;

    async fn tail_logs(
        &self,
        request: Request<TailLogsRequest>,
    ) -> Result<Response<Self::TailLogsStream>, Status> {
        let request = request.into_inner();
        let (seq, attempt, path) =
            logs::locate(&self.engine, request.action_id.as_ref(), request.attempt)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(streams::tail_log(
            self.engine.clone(),
            seq,
            attempt,
            path,
            tx,
            report_lines,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY======");
        assert_eq!(base32(b"fo"), "MZXQ====");
        assert_eq!(base32(b"foo"), "MZXW6===");
        assert_eq!(base32(b"foob"), "MZXW6YQ=");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI======");
        assert_eq!(base32(&[0u8; 16]).len(), 32);
    }

    #[test]
    fn segments_refuse_paths() {
        assert!(segment("a.tgz", "f").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            assert!(segment(bad, "f").is_err(), "{bad:?}");
        }
    }
}
