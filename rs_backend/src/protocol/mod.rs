//! One port for every protocol a Flyte 2 manager serves: gRPC (HTTP/2, cleartext or TLS),
//! gRPC-Web (tonic-web), Connect (HTTP/1.1 and HTTP/2, see [`connect`]), and plain HTTP
//! routes (signed upload/download URLs, health) for everything that is not an RPC.
//!
//! The layer sits in front of the tonic services: RPC paths (`/pkg.Service/Method`) with a
//! Connect content type are translated into gRPC calls; other RPC requests go to the
//! services as they are (tonic-web handles gRPC-Web); anything else goes to the HTTP routes.

pub mod connect;
mod frames;
mod request_log;

pub use request_log::RequestLog;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};

use crate::auth::Authenticator;
use tonic::body::BoxBody;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

/// Largest message accepted or sent unless configured otherwise; task specs with big
/// interfaces exceed tonic's 4 MiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How tonic's codec begins the message of a request it cannot decode.
const UNDECODABLE: &str = "failed to decode Protobuf message";

/// tonic reports a request it cannot decode as INTERNAL; the request is what is wrong, and a
/// Flyte 2 cluster (connect-go) answers INVALID_ARGUMENT.
pub fn undecodable_is_invalid(status: tonic::Status) -> tonic::Status {
    if status.code() == tonic::Code::Internal && status.message().starts_with(UNDECODABLE) {
        tonic::Status::invalid_argument(status.message())
    } else {
        status
    }
}

/// Most bytes of an error message sent back: a message quoting a client's (possibly huge)
/// value stays readable, and small enough for any client's header limits.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// `message`, cut at `MAX_ERROR_MESSAGE_BYTES` (on a character boundary) if longer.
pub fn bounded_message(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_ERROR_MESSAGE_BYTES {
        return message.into();
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &message[..end], message.len()).into()
}

/// A percent-encoded `grpc-message` header cut to the same bound (never inside an escape).
fn bounded_header(value: &HeaderValue) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    if bytes.len() <= MAX_ERROR_MESSAGE_BYTES {
        return None;
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    // An escape is '%' and two hex digits: do not keep a '%' or its first digit alone.
    if let Some(at) = bytes[end - 2..end].iter().position(|b| *b == b'%') {
        end = end - 2 + at;
    }
    let mut cut = bytes[..end].to_vec();
    cut.extend_from_slice(format!("... ({} bytes in all)", bytes.len()).as_bytes());
    HeaderValue::from_bytes(&cut).ok()
}

/// `/package.Service/Method`: the path shape of every RPC, whatever the protocol.
pub fn is_rpc_path(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(service), Some(method), None) => {
            service.contains('.') && !service.starts_with('.') && !method.is_empty()
        }
        _ => false,
    }
}

/// Puts [`ProtocolService`] in front of the gRPC services.
#[derive(Clone)]
pub struct ProtocolLayer {
    http: axum::Router,
    log: Option<Arc<RequestLog>>,
    auth: Option<Arc<Authenticator>>,
    max_message_bytes: usize,
}

impl ProtocolLayer {
    pub fn new(
        http: axum::Router,
        log: Option<Arc<RequestLog>>,
        auth: Option<Arc<Authenticator>>,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            http,
            log,
            auth,
            max_message_bytes,
        }
    }
}

impl<S> Layer<S> for ProtocolLayer {
    type Service = ProtocolService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProtocolService {
            inner,
            http: self.http.clone(),
            log: self.log.clone(),
            auth: self.auth.clone(),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

#[derive(Clone)]
pub struct ProtocolService<S> {
    inner: S,
    http: axum::Router,
    log: Option<Arc<RequestLog>>,
    auth: Option<Arc<Authenticator>>,
    max_message_bytes: usize,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

impl<S> Service<Request<BoxBody>> for ProtocolService<S>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is checked per call (oneshot) on a clone, so one slow route never
        // holds back the others.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<BoxBody>) -> Self::Future {
        let path = request.uri().path().to_string();
        // HTTP/2 carries the host as :authority, which services cannot see; they answer with
        // URLs on the address the client used, so it travels as the `host` header everywhere.
        if !request.headers().contains_key(http::header::HOST) {
            if let Some(authority) = request.uri().authority() {
                if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                    request.headers_mut().insert(http::header::HOST, value);
                }
            }
        }
        let refused = request
            .extensions()
            .get::<crate::peer::PeerInfo>()
            .and_then(refusal);
        if !is_rpc_path(&path) {
            if let Some(status) = refused {
                return Box::pin(async move { Ok(refusal_page(&status)) });
            }
            let http = self.http.clone();
            return Box::pin(async move {
                let Ok(response) = http.oneshot(request).await;
                Ok(response.map(|body| {
                    tonic::body::boxed(http_body_util::BodyExt::map_err(body, |e| {
                        tonic::Status::internal(e.to_string())
                    }))
                }))
            });
        }
        let inner = RpcCall {
            inner: self.inner.clone(),
            path,
            log: self.log.clone(),
            auth: self.auth.clone(),
            refused,
        };
        let limit = self.max_message_bytes;
        match connect::classify(request.headers(), request.method()) {
            Some(kind) => {
                Box::pin(async move { Ok(connect::serve(inner, request, kind, limit).await) })
            }
            None => Box::pin(inner.oneshot(request)),
        }
    }
}

/// One RPC, by now in gRPC form whatever the client spoke: logged if a request log is kept,
/// and an UNIMPLEMENTED answer names the method (tonic answers an unknown service or method
/// with a bare UNIMPLEMENTED, which leaves a client guessing what it called).
#[derive(Clone)]
struct RpcCall<S> {
    inner: S,
    path: String,
    log: Option<Arc<RequestLog>>,
    auth: Option<Arc<Authenticator>>,
    /// Why this call is not served (see [`crate::peer`]): the connection's user may not use
    /// the backend, or the connection made too many requests.
    refused: Option<tonic::Status>,
}

/// Why a request on this connection is not served, if it is not.
fn refusal(peer: &crate::peer::PeerInfo) -> Option<tonic::Status> {
    if let Some(reason) = &peer.refused {
        return Some(tonic::Status::permission_denied(reason.to_string()));
    }
    let budget = peer.budget.as_ref()?;
    (!budget.take()).then(|| {
        tonic::Status::resource_exhausted(format!(
            "too many requests on this connection: at most {} a second are served (flyte start \
             local --max-requests-per-second); slow down and try again",
            budget.per_second()
        ))
    })
}

/// The answer to a browser (or any plain HTTP client) whose request is refused.
fn refusal_page(status: &tonic::Status) -> Response<BoxBody> {
    let (code, title) = match status.code() {
        tonic::Code::ResourceExhausted => {
            (http::StatusCode::TOO_MANY_REQUESTS, "429 Too Many Requests")
        }
        _ => (http::StatusCode::FORBIDDEN, "403 Forbidden"),
    };
    let mut response = Response::new(tonic::body::boxed(http_body_util::BodyExt::map_err(
        http_body_util::Full::new(bytes::Bytes::from(format!(
            "{title}: {}\n",
            status.message()
        ))),
        |never| -> tonic::Status { match never {} },
    )));
    *response.status_mut() = code;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl<S> Service<Request<BoxBody>> for RpcCall<S>
where
    S: Service<Request<BoxBody>, Response = Response<BoxBody>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BoxBody>) -> Self::Future {
        let path = self.path.clone();
        if let Some(status) = &self.refused {
            let mut response = status.clone().into_http();
            response.headers_mut().insert(
                crate::contract::BACKEND_KIND_HEADER,
                HeaderValue::from_static(crate::contract::EMBEDDED_BACKEND_KIND),
            );
            return Box::pin(async move { Ok(response) });
        }
        if let Some(auth) = self.auth.clone().filter(|_| !Authenticator::is_open(&path)) {
            // Checked before anything else sees the request; the answer to a caller without
            // a valid token says why, and nothing more.
            let fresh = self.inner.clone();
            let mut ready = std::mem::replace(&mut self.inner, fresh);
            let mut next = RpcCall {
                inner: ready.clone(),
                path: path.clone(),
                log: self.log.clone(),
                auth: None,
                refused: None,
            };
            return Box::pin(async move {
                let header = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if let Err(status) = auth.check(header.as_deref()).await {
                    let mut response = status.into_http();
                    response.headers_mut().insert(
                        crate::contract::BACKEND_KIND_HEADER,
                        HeaderValue::from_static(crate::contract::EMBEDDED_BACKEND_KIND),
                    );
                    return Ok(response);
                }
                futures::future::poll_fn(|cx| ready.poll_ready(cx)).await?;
                next.inner = ready;
                next.call(request).await
            });
        }
        let call = match &self.log {
            Some(log) if RequestLog::records(request.headers()) => {
                // The instance polled ready answers this call; a fresh clone stays behind.
                let fresh = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, fresh);
                let (log, path) = (log.clone(), path.clone());
                Box::pin(async move {
                    let request = log.record(&path, request).await;
                    ready.call(request).await
                }) as BoxFuture
            }
            _ => Box::pin(self.inner.call(request)),
        };
        Box::pin(async move {
            let mut response = call.await?;
            let headers = response.headers_mut();
            headers.insert(
                crate::contract::BACKEND_KIND_HEADER,
                HeaderValue::from_static(crate::contract::EMBEDDED_BACKEND_KIND),
            );
            // grpc-message is percent-encoded (tonic encodes spaces too).
            let undecodable = headers.get("grpc-message").is_some_and(|m| {
                percent_encoding::percent_decode(m.as_bytes())
                    .decode_utf8_lossy()
                    .starts_with(UNDECODABLE)
            });
            if undecodable && headers.get("grpc-status") == Some(&HeaderValue::from_static("13")) {
                headers.insert("grpc-status", HeaderValue::from_static("3"));
            }
            if let Some(cut) = headers.get("grpc-message").and_then(bounded_header) {
                headers.insert("grpc-message", cut);
            }
            let unimplemented = headers
                .get("grpc-status")
                .is_some_and(|s| s == HeaderValue::from_static("12"));
            let silent = headers.get("grpc-message").is_none_or(|m| m.is_empty());
            if unimplemented && silent {
                let message = format!(
                    "{} is not implemented by the embedded backend",
                    path.trim_start_matches('/')
                );
                if let Ok(value) = HeaderValue::from_str(&message) {
                    headers.insert("grpc-message", value);
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_bounded() {
        assert_eq!(bounded_message("short"), "short");
        let long = "é".repeat(2000);
        let cut = bounded_message(&long);
        assert!(cut.len() < MAX_ERROR_MESSAGE_BYTES + 40 && cut.ends_with("(4000 bytes in all)"));
        assert!(bounded_header(&HeaderValue::from_static("fine")).is_none());
        // Never cut inside a percent escape.
        for pad in 0..3 {
            let text = format!("{}{}", "a".repeat(pad), "%C3%A9".repeat(400));
            let cut = bounded_header(&HeaderValue::from_str(&text).unwrap()).unwrap();
            let kept = cut
                .to_str()
                .unwrap()
                .split("...")
                .next()
                .unwrap()
                .to_string();
            assert!(kept.len() <= MAX_ERROR_MESSAGE_BYTES);
            let escapes_whole = kept.match_indices('%').all(|(i, _)| kept.len() >= i + 3);
            assert!(escapes_whole, "{kept}");
        }
    }

    #[test]
    fn recognises_rpc_paths() {
        assert!(is_rpc_path("/flyteidl2.workflow.RunService/CreateRun"));
        assert!(!is_rpc_path("/files/a/b"));
        assert!(!is_rpc_path("/healthz"));
        assert!(!is_rpc_path("/a.b/c/d"));
        assert!(!is_rpc_path("/a.b/"));
        assert!(!is_rpc_path("/"));
    }
}
