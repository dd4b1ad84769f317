//! Plain HTTP on the backend's port: health checks and the targets of signed URLs (uploads
//! with PUT, downloads with GET) under the backend's storage root.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::clock::now_ms;
use crate::signing::{Grant, UrlSigner};

/// Largest upload accepted (a cluster's data proxy allows 100 MiB by default).
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
const FILES_PREFIX: &str = "/files/";

/// What the routes need: where files live and how URLs are signed.
pub struct Files {
    pub root: PathBuf,
    pub signer: UrlSigner,
}

impl Files {
    /// A signed URL on `base` (e.g. "http://127.0.0.1:8090") for `path` under the root.
    pub fn signed_url(&self, base: &str, grant: &Grant<'_>) -> String {
        let encoded: Vec<String> = grant
            .path
            .split('/')
            .map(|seg| {
                percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            })
            .collect();
        let mut url = format!(
            "{base}{FILES_PREFIX}{}?expires={}&signature={}",
            encoded.join("/"),
            grant.expires,
            self.signer.sign(grant)
        );
        if !grant.content_md5.is_empty() {
            let md5 = percent_encoding::utf8_percent_encode(
                grant.content_md5,
                percent_encoding::NON_ALPHANUMERIC,
            );
            url.push_str(&format!("&content_md5={md5}"));
        }
        url
    }

    pub fn file_path(&self, rel: &str) -> Result<PathBuf, String> {
        let rel = Path::new(rel);
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(format!("{} is not a plain relative path", rel.display()));
        }
        Ok(self.root.join(rel))
    }
}

pub fn routes(files: Arc<Files>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "OK" }))
        .route("/files/*path", get(download).put(upload))
        .with_state(files)
}

#[derive(Deserialize)]
struct Signed {
    expires: i64,
    signature: String,
    #[serde(default)]
    content_md5: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

/// Checks the signature and expiry; the path under the root on success.
fn authorize(files: &Files, method: &str, path: &str, query: &Signed) -> Result<PathBuf, Response> {
    let grant = Grant {
        method,
        path,
        expires: query.expires,
        content_md5: &query.content_md5,
    };
    if !files.signer.verify(&grant, &query.signature) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "the signature does not match this URL",
        ));
    }
    if now_ms() / 1000 > query.expires {
        return Err(refuse(StatusCode::FORBIDDEN, "this signed URL has expired"));
    }
    files
        .file_path(path)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, e))
}

async fn upload(
    State(files): State<Arc<Files>>,
    UrlPath(path): UrlPath<String>,
    Query(query): Query<Signed>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = match authorize(&files, "PUT", &path, &query) {
        Ok(target) => target,
        Err(refused) => return refused,
    };
    // The MD5 the URL was signed for must be the one the client declares and the one the
    // content has, as an object store checks a presigned PUT.
    let declared = headers
        .get("content-md5")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_string();
    if !query.content_md5.is_empty() && declared != query.content_md5 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the Content-MD5 header must be the MD5 this URL was signed for",
        );
    }
    match store(&target, body, &declared).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err((status, message)) => refuse(status, message),
    }
}

/// Streams the body to a temporary file next to `target`, checks it, then renames it into place.
async fn store(target: &Path, body: Body, declared_md5: &str) -> Result<(), (StatusCode, String)> {
    let internal = |what: &str, e: std::io::Error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} {}: {e}", target.display()),
        )
    };
    let dir = target.parent().expect("a file under the root has a parent");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| internal("create the directory of", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(dir)
        .map_err(|e| internal("create a temporary file for", e))?;
    let (std_file, tmp_path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    let mut hasher = Md5::new();
    let mut size: u64 = 0;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("the upload was interrupted: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len() as u64;
        if size > MAX_UPLOAD_BYTES {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("uploads are limited to {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        hasher.update(&data);
        file.write_all(&data)
            .await
            .map_err(|e| internal("write", e))?;
    }
    file.sync_all().await.map_err(|e| internal("flush", e))?;
    drop(file);
    if !declared_md5.is_empty() {
        let actual = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
        if actual != declared_md5 {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("the content's MD5 is {actual}, not the declared {declared_md5}"),
            ));
        }
    }
    tmp_path
        .persist(target)
        .map_err(|e| internal("move the upload into place at", e.error))?;
    Ok(())
}

async fn download(
    State(files): State<Arc<Files>>,
    UrlPath(path): UrlPath<String>,
    Query(query): Query<Signed>,
) -> Response {
    let target = match authorize(&files, "GET", &path, &query) {
        Ok(target) => target,
        Err(refused) => return refused,
    };
    match tokio::fs::File::open(&target).await {
        Ok(file) => Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            refuse(StatusCode::NOT_FOUND, format!("{path} does not exist"))
        }
        Err(err) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("open {path}: {err}"),
        ),
    }
}
