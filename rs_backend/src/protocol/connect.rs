//! The Connect protocol (https://connectrpc.com/docs/protocol), served by translating each
//! call into a gRPC call to the tonic services and the answer back. Unary calls are
//! `application/proto` bodies with HTTP status codes and JSON errors; streaming calls are
//! `application/connect+proto` envelopes ending in a JSON end-of-stream message. Both work
//! over HTTP/1.1 and HTTP/2, with gzip in either direction.

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::BoxBody;
use tonic::{Code, Status};
use tower::ServiceExt;
use tower_service::Service;

use super::frames::{self, COMPRESSED, END_STREAM};

/// Responses at least this large are compressed when the client accepts gzip.
const COMPRESS_MIN_BYTES: usize = 1024;

const PROTO: &str = "application/proto";
const CONNECT_PROTO: &str = "application/connect+proto";

/// What a Connect request asks for, read from its headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unary,
    Stream,
}

/// Which requests are Connect calls: POSTs with a Connect content type. JSON is recognised
/// so that it can be refused with a clear answer instead of being mistaken for plain HTTP.
pub fn classify(headers: &HeaderMap, method: &Method) -> Option<Kind> {
    if method != Method::POST {
        return None;
    }
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let base = content_type.split(';').next()?.trim();
    match base {
        "application/proto" | "application/json" => Some(Kind::Unary),
        "application/connect+proto" | "application/connect+json" => Some(Kind::Stream),
        _ => None,
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status of a unary error, as the Connect protocol maps codes.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_json(status: &Status) -> serde_json::Value {
    let mut error = json!({ "code": code_name(status.code()) });
    if !status.message().is_empty() {
        error["message"] = json!(super::bounded_message(status.message()));
    }
    error
}

pub(super) fn boxed(body: impl Into<Bytes>) -> BoxBody {
    tonic::body::boxed(
        Full::new(body.into()).map_err(|never: Infallible| -> Status { match never {} }),
    )
}

/// A unary error answer.
fn unary_error(status: &Status, metadata: &HeaderMap) -> Response<BoxBody> {
    let mut response = Response::new(boxed(error_json(status).to_string()));
    *response.status_mut() = http_status(status.code());
    copy_metadata(metadata, response.headers_mut(), "");
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Headers a gRPC response carries that are about the transport, not the call.
fn is_transport_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("grpc-")
        || matches!(
            name,
            "content-type" | "content-length" | "content-encoding" | "te" | "trailer"
        )
}

/// Copies the call's metadata (not transport headers), each name with `prefix` added.
fn copy_metadata(from: &HeaderMap, to: &mut HeaderMap, prefix: &str) {
    for (name, value) in from {
        if is_transport_header(name) {
            continue;
        }
        if prefix.is_empty() {
            to.append(name.clone(), value.clone());
        } else if let Ok(prefixed) = HeaderName::from_bytes(format!("{prefix}{name}").as_bytes()) {
            to.append(prefixed, value.clone());
        }
    }
}

fn accepts_gzip(headers: &HeaderMap, header: &str) -> bool {
    headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| coding.split(';').next().unwrap_or("").trim() == "gzip")
}

/// The compression a request declares in `header`: Ok(true) for gzip, Ok(false) for none.
fn declared_gzip(headers: &HeaderMap, header: &str) -> Result<bool, Status> {
    match headers
        .get(header)
        .map(|v| v.to_str().unwrap_or("?").trim())
    {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") => Ok(true),
        Some(other) => Err(Status::unimplemented(format!(
            "unsupported compression {other:?}; this server accepts gzip and identity"
        ))),
    }
}

/// `connect-timeout-ms` as a gRPC deadline.
fn grpc_timeout(headers: &HeaderMap) -> Result<Option<HeaderValue>, Status> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return Ok(None);
    };
    let millis: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v: &u64| v.to_string().len() <= 10)
        .ok_or_else(|| {
            Status::invalid_argument(
                "connect-timeout-ms must be a positive integer of milliseconds",
            )
        })?;
    let value = HeaderValue::from_str(&format!("{millis}m")).expect("digits are a valid header");
    Ok(Some(value))
}

/// The gRPC request that carries `messages` to the same method.
fn grpc_request(
    parts: &http::request::Parts,
    messages: &[Bytes],
) -> Result<Request<BoxBody>, Status> {
    let mut body = Vec::new();
    for message in messages {
        body.extend_from_slice(&frames::encode(0, message));
    }
    let mut request = Request::new(boxed(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = http::Version::HTTP_2;
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if n.starts_with("connect-")
            || matches!(
                n,
                "content-type"
                    | "content-length"
                    | "content-encoding"
                    | "accept-encoding"
                    | "connection"
                    | "transfer-encoding"
                    | "te"
            )
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("te", HeaderValue::from_static("trailers"));
    if let Some(timeout) = grpc_timeout(&parts.headers)? {
        headers.insert("grpc-timeout", timeout);
    }
    Ok(request)
}

pub(super) async fn read_body(body: BoxBody, limit: usize) -> Result<Bytes, Status> {
    match Limited::new(body, limit.saturating_add(5)).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => {
            if err.is::<http_body_util::LengthLimitError>() {
                Err(Status::resource_exhausted(format!(
                    "the request is larger than the limit of {limit} bytes"
                )))
            } else {
                Err(Status::cancelled(format!(
                    "the request body could not be read: {err}"
                )))
            }
        }
    }
}

/// The status a gRPC response ended with: from its trailers, or from its headers when the
/// server answered with headers only.
fn grpc_status(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> Option<Status> {
    trailers
        .and_then(Status::from_header_map)
        .or_else(|| Status::from_header_map(headers))
        .map(super::undecodable_is_invalid)
}

/// Decompresses one gRPC message the tonic service compressed (only if asked, never here).
pub(super) fn grpc_message(
    frame: frames::Frame,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Status> {
    if frame.flags & COMPRESSED == 0 {
        return Ok(frame.data);
    }
    match declared_gzip(headers, "grpc-encoding") {
        Ok(true) => frames::gunzip(&frame.data, limit).map_err(Status::internal),
        _ => Err(Status::internal(
            "the service sent a compressed message in an unknown encoding",
        )),
    }
}

/// Serves one Connect call through `inner`, a gRPC service.
pub async fn serve<S>(
    inner: S,
    request: Request<BoxBody>,
    kind: Kind,
    limit: usize,
) -> Response<BoxBody>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = super::BoxError>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    match kind {
        Kind::Unary => unary(inner, request, limit).await,
        Kind::Stream => stream(inner, request, limit).await,
    }
}

fn codec_of(headers: &HeaderMap) -> &str {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("")
}

fn unsupported_codec(content_type: &str, supported: &'static str) -> Response<BoxBody> {
    let status = Status::unimplemented(format!(
        "content type {content_type} is not supported; use {supported} (binary protobuf)"
    ));
    let mut response = unary_error(&status, &HeaderMap::new());
    *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response
        .headers_mut()
        .insert("accept-post", HeaderValue::from_static(supported));
    response
}

async fn unary<S>(inner: S, request: Request<BoxBody>, limit: usize) -> Response<BoxBody>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = super::BoxError>,
{
    let content_type = codec_of(request.headers()).to_string();
    if content_type != PROTO {
        return unsupported_codec(&content_type, PROTO);
    }
    let accept_gzip = accepts_gzip(request.headers(), "accept-encoding");
    let (parts, body) = request.into_parts();
    let result = async {
        let gzipped = declared_gzip(&parts.headers, CONTENT_ENCODING.as_str())?;
        let mut message = read_body(body, limit).await?;
        if gzipped {
            message = frames::gunzip(&message, limit).map_err(Status::invalid_argument)?;
        }
        let grpc = grpc_request(&parts, &[message])?;
        let response = inner
            .oneshot(grpc)
            .await
            .map_err(|e| Status::internal(format!("the service failed: {e}")))?;
        let (head, body) = response.into_parts();
        let collected = body
            .collect()
            .await
            .map_err(|e| Status::internal(format!("the service failed mid-answer: {e}")))?;
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        let status = grpc_status(&head.headers, trailers.as_ref())
            .unwrap_or_else(|| Status::internal("the service ended without a status"));
        if status.code() != Code::Ok {
            return Ok::<_, Status>(Err((status, head.headers, trailers)));
        }
        let mut messages = frames::decode_all(&data, limit).map_err(Status::internal)?;
        if messages.len() != 1 {
            return Err(Status::internal(format!(
                "a unary method answered with {} messages",
                messages.len()
            )));
        }
        let message = grpc_message(messages.remove(0), &head.headers, limit)?;
        Ok(Ok((message, head.headers, trailers)))
    }
    .await;
    match result {
        Err(status) => unary_error(&status, &HeaderMap::new()),
        Ok(Err((status, headers, trailers))) => {
            let mut metadata = headers;
            if let Some(trailers) = trailers {
                metadata.extend(trailers);
            }
            unary_error(&status, &metadata)
        }
        Ok(Ok((message, headers, trailers))) => {
            let compress = accept_gzip && message.len() >= COMPRESS_MIN_BYTES;
            let body = if compress {
                frames::gzip(&message)
            } else {
                message
            };
            let mut response = Response::new(boxed(body));
            copy_metadata(&headers, response.headers_mut(), "");
            if let Some(trailers) = &trailers {
                copy_metadata(trailers, response.headers_mut(), "trailer-");
            }
            let out = response.headers_mut();
            out.insert(CONTENT_TYPE, HeaderValue::from_static(PROTO));
            if compress {
                out.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            out.insert(
                "accept-encoding",
                HeaderValue::from_static("gzip, identity"),
            );
            response
        }
    }
}

/// The JSON end-of-stream message.
fn end_of_stream(status: Option<&Status>, trailers: Option<&HeaderMap>) -> Bytes {
    let mut end = json!({});
    if let Some(status) = status.filter(|s| s.code() != Code::Ok) {
        end["error"] = error_json(status);
    }
    let mut metadata: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(trailers) = trailers {
        for (name, value) in trailers {
            if is_transport_header(name) {
                continue;
            }
            if let Ok(value) = value.to_str() {
                metadata
                    .entry(name.as_str().to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
    }
    if !metadata.is_empty() {
        end["metadata"] = json!(metadata);
    }
    Bytes::from(end.to_string())
}

type Chunk = Result<http_body::Frame<Bytes>, Status>;

async fn stream<S>(inner: S, request: Request<BoxBody>, limit: usize) -> Response<BoxBody>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = super::BoxError>,
    S::Future: Send + 'static,
{
    let content_type = codec_of(request.headers()).to_string();
    if content_type != CONNECT_PROTO {
        return unsupported_codec(&content_type, CONNECT_PROTO);
    }
    let accept_gzip = accepts_gzip(request.headers(), "connect-accept-encoding");
    let (parts, body) = request.into_parts();
    let (tx, rx) = mpsc::channel::<Chunk>(16);
    let mut response = Response::new(tonic::body::boxed(StreamBody::new(ReceiverStream::new(rx))));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONNECT_PROTO));
    headers.insert(
        "connect-accept-encoding",
        HeaderValue::from_static("gzip, identity"),
    );
    if accept_gzip {
        headers.insert("connect-content-encoding", HeaderValue::from_static("gzip"));
    }
    let opened = async {
        let gzipped = declared_gzip(&parts.headers, "connect-content-encoding")?;
        let body = read_body(body, limit).await?;
        let mut messages = Vec::new();
        for frame in frames::decode_all(&body, limit).map_err(Status::invalid_argument)? {
            if frame.flags & END_STREAM != 0 {
                return Err(Status::invalid_argument(
                    "a request stream may not carry an end-of-stream message",
                ));
            }
            let message = if frame.flags & COMPRESSED != 0 {
                if !gzipped {
                    return Err(Status::invalid_argument(
                        "a message is flagged compressed but connect-content-encoding names none",
                    ));
                }
                frames::gunzip(&frame.data, limit).map_err(Status::invalid_argument)?
            } else {
                frame.data
            };
            messages.push(message);
        }
        let grpc = grpc_request(&parts, &messages)?;
        inner
            .oneshot(grpc)
            .await
            .map_err(|e| Status::internal(format!("the service failed: {e}")))
    }
    .await;
    let answer = match opened {
        Ok(answer) => answer,
        Err(status) => {
            let _ = tx
                .send(Ok(http_body::Frame::data(frames::encode(
                    END_STREAM,
                    &end_of_stream(Some(&status), None),
                ))))
                .await;
            return response;
        }
    };
    let (head, body) = answer.into_parts();
    copy_metadata(&head.headers, response.headers_mut(), "");
    tokio::spawn(relay(head.headers, body, tx, accept_gzip, limit));
    response
}

/// Re-frames a gRPC response stream as Connect envelopes until it ends or the client leaves.
async fn relay(
    headers: HeaderMap,
    mut body: BoxBody,
    tx: mpsc::Sender<Chunk>,
    gzip: bool,
    limit: usize,
) {
    let envelope = |message: &[u8]| {
        if gzip && message.len() >= COMPRESS_MIN_BYTES {
            frames::encode(COMPRESSED, &frames::gzip(message))
        } else {
            frames::encode(0, message)
        }
    };
    let send_end = |status: Option<Status>, trailers: Option<HeaderMap>| {
        let end = end_of_stream(status.as_ref(), trailers.as_ref());
        frames::encode(END_STREAM, &end)
    };
    // Headers-only answer: the call failed (or ended) before any message.
    if let Some(status) = Status::from_header_map(&headers) {
        let _ = tx
            .send(Ok(http_body::Frame::data(send_end(Some(status), None))))
            .await;
        return;
    }
    let mut decoder = frames::Decoder::new(limit);
    loop {
        let frame = match body.frame().await {
            None => {
                let status = Status::internal("the service ended the stream without a status");
                let _ = tx
                    .send(Ok(http_body::Frame::data(send_end(Some(status), None))))
                    .await;
                return;
            }
            Some(Err(err)) => {
                let status = Status::internal(format!("the service stream failed: {err}"));
                let _ = tx
                    .send(Ok(http_body::Frame::data(send_end(Some(status), None))))
                    .await;
                return;
            }
            Some(Ok(frame)) => frame,
        };
        let frame = match frame.into_data() {
            Ok(data) => {
                decoder.push(&data);
                loop {
                    let next = decoder
                        .next_frame()
                        .map_err(Status::internal)
                        .and_then(|f| f.map(|f| grpc_message(f, &headers, limit)).transpose());
                    match next {
                        Ok(Some(message)) => {
                            if tx
                                .send(Ok(http_body::Frame::data(envelope(&message))))
                                .await
                                .is_err()
                            {
                                return; // the client went away; dropping the body cancels the call
                            }
                        }
                        Ok(None) => break,
                        Err(status) => {
                            let _ = tx
                                .send(Ok(http_body::Frame::data(send_end(Some(status), None))))
                                .await;
                            return;
                        }
                    }
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            let status = Status::from_header_map(&trailers).unwrap_or_else(|| {
                Status::internal("the service ended the stream without a status")
            });
            let _ = tx
                .send(Ok(http_body::Frame::data(send_end(
                    Some(status),
                    Some(trailers),
                ))))
                .await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_connect_requests() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/proto"));
        assert_eq!(classify(&headers, &Method::POST), Some(Kind::Unary));
        assert_eq!(classify(&headers, &Method::GET), None);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/connect+proto; charset=x"),
        );
        assert_eq!(classify(&headers, &Method::POST), Some(Kind::Stream));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        assert_eq!(classify(&headers, &Method::POST), None);
    }

    #[test]
    fn maps_codes_as_the_protocol_says() {
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::Unimplemented),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(code_name(Code::InvalidArgument), "invalid_argument");
        let end = end_of_stream(Some(&Status::not_found("no such run")), None);
        let parsed: serde_json::Value = serde_json::from_slice(&end).unwrap();
        assert_eq!(parsed["error"]["code"], "not_found");
        assert_eq!(parsed["error"]["message"], "no such run");
        assert_eq!(&end_of_stream(Some(&Status::ok("")), None)[..], b"{}");
    }

    #[test]
    fn timeouts_and_encodings() {
        let mut headers = HeaderMap::new();
        headers.insert("connect-timeout-ms", HeaderValue::from_static("1500"));
        assert_eq!(grpc_timeout(&headers).unwrap().unwrap(), "1500m");
        headers.insert("connect-timeout-ms", HeaderValue::from_static("soon"));
        assert!(grpc_timeout(&headers).is_err());
        headers.insert(
            "accept-encoding",
            HeaderValue::from_static("br, gzip;q=0.5"),
        );
        assert!(accepts_gzip(&headers, "accept-encoding"));
        headers.insert("content-encoding", HeaderValue::from_static("zstd"));
        assert!(declared_gzip(&headers, "content-encoding").is_err());
    }
}
