//! The gRPC channel to a Flyte 2 backend: endpoint parsing, TLS, auth headers, and the
//! classification of failed calls into "retry" and "give up".
//!
//! Nothing here talks to the network at construction time: [`Client::new`] validates the
//! configuration (so a bad endpoint or header fails at once, with a message naming it) and
//! the channel is created on first use. That keeps construction usable outside a tokio
//! runtime, which matters because the Python side must not start a runtime before it
//! might fork.

use std::collections::hash_map::RandomState;
use std::error::Error as StdError;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flyteidl2::flyteidl::actions::actions_service_client::ActionsServiceClient;
use futures::future::BoxFuture;
use tonic::codegen::http::uri::Authority;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// The generated ActionsService client over our channel, with auth headers attached.
pub type ActionsClient = ActionsServiceClient<InterceptedService<Channel, AuthInterceptor>>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint '{endpoint}': {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("invalid header '{name}': {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("cannot set up TLS for '{endpoint}': {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("the gRPC channel can only be created inside a tokio runtime")]
    NoRuntime,
}

/// A validated header, ready to be attached to requests.
pub type Header = (AsciiMetadataKey, AsciiMetadataValue);

/// Supplies the headers that authenticate each request.
///
/// `headers` runs on every request (inside a tonic interceptor, which is synchronous), so an
/// implementation that refreshes tokens should cache them and refresh in the background or
/// in `on_unauthenticated`.
pub trait AuthHeaderProvider: Send + Sync + 'static {
    /// Headers to add to the next request. An error fails that request with UNAUTHENTICATED.
    fn headers(&self) -> Result<Vec<Header>, String>;

    /// Called when the server answered UNAUTHENTICATED. Resolves to `true` if the
    /// credentials changed, in which case the call is retried once.
    fn on_unauthenticated(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
}

/// Fixed headers, e.g. `authorization: Bearer <api key>`.
#[derive(Clone)]
pub struct StaticHeaders {
    headers: Vec<Header>,
}

impl StaticHeaders {
    /// Validates header names and values; neither is echoed back in errors' values, since
    /// header values are usually secrets.
    pub fn new(pairs: &[(String, String)]) -> Result<Self, ClientError> {
        let headers = pairs
            .iter()
            .map(|(name, value)| validate_header(name, value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StaticHeaders { headers })
    }

    pub fn bearer(token: &str) -> Result<Self, ClientError> {
        Self::new(&[("authorization".to_string(), format!("Bearer {token}"))])
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

impl fmt::Debug for StaticHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: the values are credentials.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("StaticHeaders")
            .field("names", &names)
            .finish()
    }
}

impl AuthHeaderProvider for StaticHeaders {
    fn headers(&self) -> Result<Vec<Header>, String> {
        Ok(self.headers.clone())
    }
}

/// Headers that gRPC or HTTP/2 own; setting them from configuration would break the call.
const RESERVED_HEADERS: &[&str] = &["content-type", "te", "host", "connection", "user-agent"];

/// Checks one header pair and converts it to gRPC metadata.
pub fn validate_header(name: &str, value: &str) -> Result<Header, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidHeader {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    let key = AsciiMetadataKey::from_bytes(name.as_bytes())
        .map_err(|_| invalid("not a valid header name (letters, digits, '-' and '_' only)"))?;
    let lower = key.as_str();
    if lower.ends_with("-bin") {
        return Err(invalid("binary ('-bin') headers are not supported"));
    }
    if lower.starts_with("grpc-") || RESERVED_HEADERS.contains(&lower) {
        return Err(invalid("this header is reserved by gRPC"));
    }
    // http accepts any byte above 0x7f in a value; gRPC metadata is printable ASCII only,
    // and other gRPC implementations reject the whole call otherwise.
    let printable = value.chars().all(|c| c == ' ' || c.is_ascii_graphic());
    let value = AsciiMetadataValue::try_from(value)
        .ok()
        .filter(|_| printable)
        .ok_or_else(|| invalid("the value may only contain printable ASCII characters"))?;
    Ok((key, value))
}

/// Adds the configured headers to every request.
#[derive(Clone)]
pub struct AuthInterceptor {
    providers: Arc<[Arc<dyn AuthHeaderProvider>]>,
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        for provider in self.providers.iter() {
            let headers = provider
                .headers()
                .map_err(|e| Status::unauthenticated(format!("cannot obtain credentials: {e}")))?;
            let metadata = request.metadata_mut();
            for (key, value) in headers {
                metadata.insert(key, value);
            }
        }
        Ok(request)
    }
}

/// How to reach the backend.
#[derive(Clone)]
pub struct ClientConfig {
    /// "host:port", "dns:///host:port", "http://host:port" or "https://host[:port]".
    pub endpoint: String,
    /// Plaintext HTTP/2 instead of TLS.
    pub insecure: bool,
    /// Fixed headers added to every request (e.g. `authorization`).
    pub headers: Vec<(String, String)>,
    /// PEM bundle of extra trusted CAs, for backends with a private CA.
    pub ca_cert_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Deadline of each unary call; the watch stream has none (it is meant to stay open).
    pub rpc_timeout: Duration,
    /// Dynamic credentials, applied after `headers`.
    pub auth: Option<Arc<dyn AuthHeaderProvider>>,
}

impl ClientConfig {
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            insecure: false,
            headers: Vec::new(),
            ca_cert_pem: None,
            connect_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(30),
            auth: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("insecure", &self.insecure)
            .field("headers", &header_names)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|c| c.len()))
            .field("connect_timeout", &self.connect_timeout)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

/// An endpoint reduced to what the channel needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEndpoint {
    /// `http://host:port` or `https://host:port`.
    pub uri: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Parses the endpoint forms Flyte configurations use. Plaintext when `insecure` or the
/// scheme is `http://`; TLS otherwise. A missing port defaults to 443 (TLS) or 80.
pub fn parse_endpoint(endpoint: &str, insecure: bool) -> Result<ParsedEndpoint, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = endpoint.trim();
    if trimmed.is_empty() {
        return Err(invalid("the endpoint is empty"));
    }

    let (target, tls) = if let Some(rest) = trimmed.strip_prefix("dns:") {
        // gRPC name syntax: "dns:[//authority/]host[:port]". The authority names a DNS server,
        // which we leave to the system resolver.
        let target = match rest.strip_prefix("//") {
            Some(with_authority) => match with_authority.split_once('/') {
                Some((_dns_server, target)) => target,
                None => return Err(invalid("expected 'dns:///host:port'")),
            },
            None => rest,
        };
        (target, !insecure)
    } else if let Some(target) = trimmed.strip_prefix("http://") {
        (target, false)
    } else if let Some(target) = trimmed.strip_prefix("https://") {
        (target, !insecure)
    } else if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(invalid(&format!(
            "unsupported scheme '{scheme}' (use host:port, dns:///host:port, http:// or https://)"
        )));
    } else {
        (trimmed, !insecure)
    };

    let target = target.strip_suffix('/').unwrap_or(target);
    if target.is_empty() {
        return Err(invalid("the host is missing"));
    }
    if target.contains(['/', '?', '#']) {
        return Err(invalid("a path, query or fragment is not allowed"));
    }
    if target.contains('@') {
        return Err(invalid("user information is not allowed in the endpoint"));
    }
    if target.contains(char::is_whitespace) {
        return Err(invalid("whitespace is not allowed"));
    }
    // Split host and port ourselves: `Authority` silently ignores a port it cannot parse.
    let (host, port) = if let Some(bracketed) = target.strip_prefix('[') {
        let (address, rest) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("an IPv6 address lacks its closing ']'"))?;
        let port = match rest {
            "" => None,
            _ => Some(
                rest.strip_prefix(':')
                    .ok_or_else(|| invalid("expected ':port' after the IPv6 address"))?,
            ),
        };
        (format!("[{address}]"), port)
    } else {
        match target.split(':').count() {
            1 => (target.to_string(), None),
            2 => {
                let (host, port) = target.split_once(':').unwrap_or((target, ""));
                (host.to_string(), Some(port))
            }
            _ => {
                return Err(invalid(
                    "IPv6 addresses must be written in brackets, e.g. [::1]:8089",
                ))
            }
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(invalid("the host is missing"));
    }
    let port = match port {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port != 0 && p.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return Err(invalid(&format!("'{p}' is not a valid port"))),
        },
    };
    let authority: Authority = format!("{host}:{port}")
        .parse()
        .map_err(|_| invalid("not a valid host[:port]"))?;
    let host = authority.host();
    let scheme = if tls { "https" } else { "http" };
    let uri = format!("{scheme}://{host}:{port}");
    Endpoint::from_shared(uri.clone()).map_err(|e| invalid(&error_chain(&e)))?;
    Ok(ParsedEndpoint {
        uri,
        tls,
        host: host.to_string(),
        port,
    })
}

/// Renders an error with its sources: tonic's transport errors say little at the top level.
pub fn error_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A configured connection to the backend; cheap to share behind an `Arc`.
pub struct Client {
    endpoint: Endpoint,
    parsed: ParsedEndpoint,
    interceptor: AuthInterceptor,
    providers: Vec<Arc<dyn AuthHeaderProvider>>,
    rpc_timeout: Duration,
    channel: OnceLock<Channel>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.parsed)
            .finish()
    }
}

impl Client {
    /// Validates the configuration and prepares the channel, without connecting.
    pub fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        let parsed = parse_endpoint(&config.endpoint, config.insecure)?;
        let mut providers: Vec<Arc<dyn AuthHeaderProvider>> = Vec::new();
        if !config.headers.is_empty() {
            providers.push(Arc::new(StaticHeaders::new(&config.headers)?));
        }
        if let Some(auth) = &config.auth {
            providers.push(auth.clone());
        }

        let endpoint = Endpoint::from_shared(parsed.uri.clone())
            .map_err(|e| ClientError::InvalidEndpoint {
                endpoint: config.endpoint.clone(),
                reason: error_chain(&e),
            })?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            // Keep-alive pings detect a silently dead connection under a long-lived watch
            // stream, which would otherwise wait forever for updates that never come.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        let endpoint = if parsed.tls {
            tls_endpoint(endpoint, &config.endpoint, config.ca_cert_pem.as_deref())?
        } else {
            endpoint
        };

        Ok(Client {
            endpoint,
            parsed,
            interceptor: AuthInterceptor {
                providers: providers.clone().into(),
            },
            providers,
            rpc_timeout: config.rpc_timeout,
            channel: OnceLock::new(),
        })
    }

    pub fn endpoint(&self) -> &ParsedEndpoint {
        &self.parsed
    }

    pub fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    /// The shared channel. The first call creates it (lazily connecting), which spawns its
    /// worker on the current tokio runtime, hence the runtime check.
    fn channel(&self) -> Result<Channel, ClientError> {
        if let Some(channel) = self.channel.get() {
            return Ok(channel.clone());
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::NoRuntime);
        }
        Ok(self
            .channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone())
    }

    /// An ActionsService client on the shared channel.
    pub fn actions(&self) -> Result<ActionsClient, ClientError> {
        Ok(self.wrap(self.channel()?))
    }

    /// The shared channel with auth applied, for any other service (see `rpc`).
    pub fn grpc_channel(
        &self,
    ) -> Result<InterceptedService<Channel, AuthInterceptor>, ClientError> {
        Ok(InterceptedService::new(
            self.channel()?,
            self.interceptor.clone(),
        ))
    }

    fn wrap(&self, channel: Channel) -> ActionsClient {
        ActionsServiceClient::with_interceptor(channel, self.interceptor.clone())
            // Snapshots of large fan-outs can exceed tonic's 4 MiB default message size.
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// Gives each auth provider a chance to refresh after an UNAUTHENTICATED answer.
    pub async fn refresh_credentials(&self) -> bool {
        let mut refreshed = false;
        for provider in &self.providers {
            refreshed |= provider.on_unauthenticated().await;
        }
        refreshed
    }
}

/// TLS with the system's roots plus an optional private CA. A system without root
/// certificates (a slim container) still works when a private CA is given.
fn tls_endpoint(
    endpoint: Endpoint,
    configured: &str,
    ca_cert_pem: Option<&[u8]>,
) -> Result<Endpoint, ClientError> {
    let tls_err = |reason: String| ClientError::Tls {
        endpoint: configured.to_string(),
        reason,
    };
    if let Some(pem) = ca_cert_pem {
        // tonic accepts a PEM without certificates silently; say so instead of failing later
        // with an opaque handshake error.
        let text = String::from_utf8_lossy(pem);
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return Err(tls_err(
                "ca_cert contains no PEM certificate ('-----BEGIN CERTIFICATE-----')".to_string(),
            ));
        }
    }
    let base = || {
        let config = ClientTlsConfig::new();
        match ca_cert_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config,
        }
    };
    match endpoint.clone().tls_config(base().with_native_roots()) {
        Ok(endpoint) => Ok(endpoint),
        Err(native_err) => match ca_cert_pem {
            Some(_) => endpoint
                .tls_config(base())
                .map_err(|e| tls_err(error_chain(&e))),
            None => Err(tls_err(format!(
                "{} (install the system CA certificates or pass ca_cert)",
                error_chain(&native_err)
            ))),
        },
    }
}

/// The canonical name of a gRPC code, as other gRPC libraries (and Python's grpc) print it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether a failed call is worth repeating.
///
/// A status with a source was produced on our side from a transport failure (connection
/// refused or reset, HTTP/2 errors); those are transient whatever code tonic gave them.
/// A status without a source came from the server, and only the codes gRPC documents as
/// retryable are retried: a server's UNKNOWN is usually an application error that would
/// fail the same way again.
pub fn is_transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            true
        }
        Code::Unknown | Code::Internal | Code::Cancelled => status.source().is_some(),
        _ => false,
    }
}

/// Exponential backoff: `initial`, doubling up to `max`, each delay jittered into
/// `[delay/2, delay]` so that many clients reconnecting after one outage spread out.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            multiplier: 2.0,
        }
    }
}

/// The state of one backoff sequence.
#[derive(Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    current: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        // A per-process random seed without a dependency on `rand`: std seeds RandomState
        // from the OS. Jitter needs spread, not cryptographic quality.
        let seed = RandomState::new().build_hasher().finish() | 1;
        Backoff {
            current: policy.initial,
            policy,
            rng: seed,
        }
    }

    pub fn reset(&mut self) {
        self.current = self.policy.initial;
    }

    /// The next delay to wait, advancing the sequence.
    pub fn next_delay(&mut self) -> Duration {
        let max = self.policy.max.max(self.policy.initial);
        let base = self.current.min(max);
        let grown = base.mul_f64(self.policy.multiplier.max(1.0));
        self.current = grown.min(max);
        // xorshift64: fraction in [0, 1).
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 + 0.5 * fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            multiplier: 2.0,
        });
        let bounds = [100, 200, 400, 400, 400];
        for upper in bounds {
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(upper), "{d:?} > {upper}ms");
            assert!(
                d >= Duration::from_millis(upper / 2),
                "{d:?} < {upper}/2 ms"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn transient_classification() {
        assert!(is_transient(&Status::unavailable("x")));
        assert!(is_transient(&Status::deadline_exceeded("x")));
        assert!(is_transient(&Status::resource_exhausted("x")));
        assert!(is_transient(&Status::aborted("x")));
        assert!(!is_transient(&Status::unknown("server said so")));
        assert!(!is_transient(&Status::invalid_argument("x")));
        assert!(!is_transient(&Status::not_found("x")));
        assert!(!is_transient(&Status::unauthenticated("x")));
        let transport = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert_eq!(transport.code(), Code::Unknown);
        assert!(is_transient(&transport));
    }
}
