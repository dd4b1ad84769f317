//! Signing in to a backend that requires it, as a Flyte 2 cluster asks: the backend describes
//! its OAuth2 authorization server through `AuthMetadataService`, and the client gets an access
//! token by one of the flows below, sends it on every call, caches it (and its refresh token)
//! where only this user can read it, renews it before it expires, and signs in again when the
//! backend rejects it mid-run.
//!
//! Flows: client credentials (an app's id and secret, or an API key), device code (headless:
//! a URL and code to open anywhere), PKCE (a browser on this machine, with a local callback),
//! and an external command that prints a token.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use futures::future::BoxFuture;
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::{validate_header, AuthHeaderProvider, Client, ClientConfig, Header};
use crate::rpc;
use flyteidl2::flyteidl::auth::{
    GetOAuth2MetadataRequest, GetOAuth2MetadataResponse, GetPublicClientConfigRequest,
    GetPublicClientConfigResponse,
};

/// Tokens are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// How long a browser or device sign-in may take.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Everything but RFC 3986's unreserved characters.
const ESCAPED_IN_BASIC: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How to get an access token.
#[derive(Clone, PartialEq, Eq)]
pub enum Flow {
    /// An application's own credentials (also what an API key holds).
    ClientSecret { client_id: String, secret: String },
    /// Headless: the user opens a URL on any device and confirms a code.
    DeviceFlow,
    /// A browser on this machine; the code comes back to a local callback.
    Pkce,
    /// A program that prints a token (no expiry known; run again when rejected).
    ExternalCommand(Vec<String>),
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The secret stays out of every log line.
            Flow::ClientSecret { client_id, .. } => write!(f, "ClientSecret({client_id})"),
            Flow::DeviceFlow => write!(f, "DeviceFlow"),
            Flow::Pkce => write!(f, "Pkce"),
            Flow::ExternalCommand(argv) => write!(f, "ExternalCommand({argv:?})"),
        }
    }
}

/// Everything a sign-in needs besides what the backend advertises.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub flow: Flow,
    /// Overrides the backend's public client id (PKCE, device code).
    pub client_id: Option<String>,
    /// Overrides the scopes the backend advertises when not empty.
    pub scopes: Vec<String>,
    /// Overrides the audience the backend advertises.
    pub audience: Option<String>,
    /// Where tokens are kept between processes; None keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Seconds since the epoch.
    #[serde(default)]
    expires_at: Option<u64>,
}

impl Token {
    fn expires_within(&self, margin: Duration) -> bool {
        match self.expires_at {
            Some(at) => now_secs() + margin.as_secs() >= at,
            None => false,
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// What the backend says about signing in.
#[derive(Clone, Debug)]
struct Discovered {
    metadata: GetOAuth2MetadataResponse,
    client: GetPublicClientConfigResponse,
}

/// An access token provider for [`Client`]: attach it with `ClientConfig::auth`.
pub struct OAuthProvider {
    settings: AuthSettings,
    /// The same backend without credentials, for discovery.
    discovery: Client,
    /// Identifies the backend in the token cache.
    endpoint: String,
    http: reqwest::Client,
    token: RwLock<Option<Token>>,
    header_key: RwLock<String>,
    discovered: tokio::sync::Mutex<Option<Discovered>>,
    /// One sign-in or renewal at a time.
    renewing: tokio::sync::Mutex<()>,
    /// Bumped whenever the token changes; renewals started for an older one are skipped.
    generation: Mutex<u64>,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    me: Weak<OAuthProvider>,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Drop for OAuthProvider {
    fn drop(&mut self) {
        if let Some(task) = self
            .renewer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl OAuthProvider {
    /// A provider for the backend `config` reaches (its own auth, if any, is not used for
    /// discovery). A cached token is loaded at once.
    pub fn new(config: &ClientConfig, settings: AuthSettings) -> Result<Arc<Self>, String> {
        let mut plain = config.clone();
        plain.auth = None;
        plain.headers.clear();
        let discovery = Client::new(&plain).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let endpoint = discovery.endpoint().uri.clone();
        let provider = Arc::new_cyclic(|me| OAuthProvider {
            settings,
            discovery,
            endpoint,
            http,
            token: RwLock::new(None),
            header_key: RwLock::new("authorization".to_string()),
            discovered: tokio::sync::Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
            generation: Mutex::new(0),
            renewer: Mutex::new(None),
            me: me.clone(),
        });
        if let Some(token) = provider.load_cached() {
            *provider.token.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
        }
        Ok(provider)
    }

    fn cache_path(&self) -> Option<PathBuf> {
        let dir = self.settings.cache_dir.as_ref()?;
        let flow = match &self.settings.flow {
            Flow::ClientSecret { client_id, .. } => format!("client:{client_id}"),
            Flow::DeviceFlow | Flow::Pkce => "user".to_string(),
            Flow::ExternalCommand(_) => return None,
        };
        let digest = Sha256::digest(format!("{}|{flow}", self.endpoint));
        let name: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{name}.json")))
    }

    fn load_cached(&self) -> Option<Token> {
        let path = self.cache_path()?;
        let text = std::fs::read_to_string(&path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the token where only this user can read it (a 0700 folder, a 0600 file,
    /// replaced atomically).
    fn store_cached(&self, token: &Token) {
        let Some(path) = self.cache_path() else {
            return;
        };
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            let partial = path.with_extension("partial");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&partial)?;
            file.write_all(serde_json::to_string(token).unwrap_or_default().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&partial, &path)
        };
        if let Err(err) = write() {
            tracing::warn!(%err, path = %path.display(), "could not cache the access token");
        }
    }

    fn forget_cached(&self) {
        if let Some(path) = self.cache_path() {
            let _ = std::fs::remove_file(path);
        }
    }

    async fn discover(&self) -> Result<Discovered, String> {
        let mut slot = self.discovered.lock().await;
        if let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let metadata = rpc::unary(
            &self.discovery,
            "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata",
            GetOAuth2MetadataRequest {}.encode_to_vec(),
        )
        .await
        .map_err(|e| format!("the backend does not describe its authorization server: {e}"))?;
        let client = rpc::unary(
            &self.discovery,
            "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig",
            GetPublicClientConfigRequest {}.encode_to_vec(),
        )
        .await
        .map_err(|e| format!("the backend does not describe its public client: {e}"))?;
        let found = Discovered {
            metadata: GetOAuth2MetadataResponse::decode(metadata.as_slice())
                .map_err(|e| e.to_string())?,
            client: GetPublicClientConfigResponse::decode(client.as_slice())
                .map_err(|e| e.to_string())?,
        };
        if !found.client.authorization_metadata_key.is_empty() {
            *self.header_key.write().unwrap_or_else(|e| e.into_inner()) =
                found.client.authorization_metadata_key.to_ascii_lowercase();
        }
        *slot = Some(found.clone());
        Ok(found)
    }

    fn scopes(&self, found: &Discovered) -> String {
        if self.settings.scopes.is_empty() {
            found.client.scopes.join(" ")
        } else {
            self.settings.scopes.join(" ")
        }
    }

    fn audience(&self, found: &Discovered) -> Option<String> {
        self.settings
            .audience
            .clone()
            .or_else(|| Some(found.client.audience.clone()))
            .filter(|a| !a.is_empty())
    }

    fn public_client_id(&self, found: &Discovered) -> Result<String, String> {
        self.settings
            .client_id
            .clone()
            .or_else(|| Some(found.client.client_id.clone()))
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                "the backend names no client id to sign in as; set admin.clientId".into()
            })
    }

    async fn post_token(
        &self,
        endpoint: &str,
        form: &[(&str, String)],
        basic: Option<(&str, &str)>,
    ) -> Result<Result<Token, OAuthError>, String> {
        if endpoint.is_empty() {
            return Err("the authorization server publishes no token endpoint".into());
        }
        let mut request = self
            .http
            .post(endpoint)
            .header("accept", "application/json")
            .header("cache-control", "no-cache")
            .form(form);
        if let Some((id, secret)) = basic {
            // RFC 6749 2.3.1 encodes both before joining them; percent-escaping every
            // reserved byte (a space as %20, not '+') reads back the same under either of
            // the decodings servers use.
            let escape = |text: &str| {
                percent_encoding::utf8_percent_encode(text, ESCAPED_IN_BASIC).to_string()
            };
            let credentials = STANDARD.encode(format!("{}:{}", escape(id), escape(secret)));
            request = request.header("authorization", format!("Basic {credentials}"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        if status.is_success() {
            let answer: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| format!("POST {endpoint}: not a token response: {e}"))?;
            return Ok(Ok(Token {
                access_token: answer.access_token,
                refresh_token: answer.refresh_token,
                expires_at: answer.expires_in.map(|s| now_secs() + s),
            }));
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(error) => Ok(Err(error)),
            Err(_) => Err(format!(
                "POST {endpoint}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }

    fn describe(error: &OAuthError) -> String {
        match &error.error_description {
            Some(text) => format!("{}: {text}", error.error),
            None => error.error.clone(),
        }
    }

    async fn refresh_grant(&self, found: &Discovered, refresh: &str) -> Result<Token, String> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh.to_string()),
        ];
        let basic = match &self.settings.flow {
            Flow::ClientSecret { client_id, secret } => Some((client_id.as_str(), secret.as_str())),
            _ => {
                form.push(("client_id", self.public_client_id(found)?));
                None
            }
        };
        let mut token = self
            .post_token(&found.metadata.token_endpoint, &form, basic)
            .await?
            .map_err(|e| Self::describe(&e))?;
        if token.refresh_token.is_none() {
            token.refresh_token = Some(refresh.to_string());
        }
        Ok(token)
    }

    async fn client_credentials(
        &self,
        found: &Discovered,
        client_id: &str,
        secret: &str,
    ) -> Result<Token, String> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("scope", self.scopes(found)),
        ];
        if let Some(audience) = self.audience(found) {
            form.push(("audience", audience));
        }
        self.post_token(
            &found.metadata.token_endpoint,
            &form,
            Some((client_id, secret)),
        )
        .await?
        .map_err(|e| format!("client {client_id} was refused: {}", Self::describe(&e)))
    }

    async fn device_flow(&self, found: &Discovered) -> Result<Token, String> {
        #[derive(Deserialize)]
        struct DeviceAnswer {
            device_code: String,
            user_code: String,
            verification_uri: String,
            #[serde(default)]
            verification_uri_complete: Option<String>,
            expires_in: u64,
            #[serde(default)]
            interval: Option<u64>,
        }
        let endpoint = &found.metadata.device_authorization_endpoint;
        if endpoint.is_empty() {
            return Err(
                "the authorization server offers no device sign-in (no device_authorization_endpoint)"
                    .into(),
            );
        }
        let client_id = self.public_client_id(found)?;
        let mut form = vec![
            ("client_id", client_id.clone()),
            ("scope", self.scopes(found)),
        ];
        if let Some(audience) = self.audience(found) {
            form.push(("audience", audience));
        }
        let response = self
            .http
            .post(endpoint)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("POST {endpoint}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "POST {endpoint}: HTTP {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ));
        }
        let answer: DeviceAnswer = response
            .json()
            .await
            .map_err(|e| format!("POST {endpoint}: not a device authorization: {e}"))?;
        let url = answer
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| answer.verification_uri.clone());
        eprintln!(
            "To sign in, open {url} and confirm the code {}",
            answer.user_code
        );
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(answer.expires_in).min(SIGN_IN_TIMEOUT);
        let mut interval = Duration::from_secs(answer.interval.unwrap_or(5).max(1));
        let mut poll = vec![
            ("grant_type", DEVICE_GRANT.to_string()),
            ("device_code", answer.device_code.clone()),
            ("client_id", client_id),
        ];
        if let Some(audience) = self.audience(found) {
            poll.push(("audience", audience));
        }
        loop {
            match self
                .post_token(&found.metadata.token_endpoint, &poll, None)
                .await?
            {
                Ok(token) => return Ok(token),
                Err(e) if e.error == "authorization_pending" => {}
                Err(e) if e.error == "slow_down" => interval += Duration::from_secs(5),
                Err(e) => return Err(format!("device sign-in failed: {}", Self::describe(&e))),
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err("device sign-in timed out: the code was not confirmed in time".into());
            }
            tokio::time::sleep(interval).await;
        }
    }

    async fn pkce(&self, found: &Discovered) -> Result<Token, String> {
        let client_id = self.public_client_id(found)?;
        let redirect = found.client.redirect_uri.clone();
        let redirect_url = url::Url::parse(&redirect)
            .map_err(|e| format!("the backend's redirect URI {redirect:?} is not a URL: {e}"))?;
        let host = redirect_url
            .host_str()
            .ok_or_else(|| format!("the redirect URI {redirect:?} names no host"))?
            .to_string();
        let port = redirect_url
            .port_or_known_default()
            .ok_or_else(|| format!("the redirect URI {redirect:?} names no port"))?;
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot listen for the sign-in callback on {host}:{port}: {e}"))?;

        let mut random = [0u8; 64];
        getrandom::getrandom(&mut random).map_err(|e| e.to_string())?;
        let verifier = URL_SAFE_NO_PAD.encode(random);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut state_bytes = [0u8; 24];
        getrandom::getrandom(&mut state_bytes).map_err(|e| e.to_string())?;
        let state = URL_SAFE_NO_PAD.encode(state_bytes);

        let mut authorize =
            url::Url::parse(&found.metadata.authorization_endpoint).map_err(|e| {
                format!("the authorization server's authorization endpoint is not a URL: {e}")
            })?;
        {
            let mut query = authorize.query_pairs_mut();
            query
                .append_pair("client_id", &client_id)
                .append_pair("response_type", "code")
                .append_pair("scope", &self.scopes(found))
                .append_pair("redirect_uri", &redirect)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(audience) = self.audience(found) {
                query.append_pair("audience", &audience);
            }
        }
        eprintln!("Opening a browser to sign in; if none opens, visit:\n  {authorize}");
        if let Err(err) = webbrowser::open(authorize.as_str()) {
            tracing::debug!(%err, "no browser could be opened");
        }
        let code = tokio::time::timeout(
            SIGN_IN_TIMEOUT,
            wait_for_code(&listener, redirect_url.path(), &state),
        )
        .await
        .map_err(|_| "browser sign-in timed out".to_string())??;
        let form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", client_id),
            ("redirect_uri", redirect),
        ];
        self.post_token(&found.metadata.token_endpoint, &form, None)
            .await?
            .map_err(|e| format!("the sign-in code was refused: {}", Self::describe(&e)))
    }

    async fn external_command(argv: &[String]) -> Result<Token, String> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| "admin.command is empty".to_string())?;
        let output = tokio::process::Command::new(program)
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{program} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if token.is_empty() {
            return Err(format!("{program} printed no token"));
        }
        Ok(Token {
            access_token: token,
            ..Default::default()
        })
    }

    /// A new token: a renewal with the refresh token when there is one, else a full sign-in.
    async fn obtain(&self, previous: Option<Token>) -> Result<Token, String> {
        if let Flow::ExternalCommand(argv) = &self.settings.flow {
            return Self::external_command(argv).await;
        }
        let found = self.discover().await?;
        if let Some(refresh) = previous.and_then(|t| t.refresh_token) {
            match self.refresh_grant(&found, &refresh).await {
                Ok(token) => return Ok(token),
                Err(err) => tracing::info!(%err, "renewing the token failed; signing in again"),
            }
        }
        match &self.settings.flow {
            Flow::ClientSecret { client_id, secret } => {
                self.client_credentials(&found, client_id, secret).await
            }
            Flow::DeviceFlow => self.device_flow(&found).await,
            Flow::Pkce => self.pkce(&found).await,
            Flow::ExternalCommand(_) => unreachable!("handled above"),
        }
    }

    fn install(&self, token: Token) {
        self.store_cached(&token);
        let expires = token.expires_at;
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = Some(token);
        *self.generation.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        if let Some(at) = expires {
            self.schedule_renewal(at);
        }
    }

    /// Renews the token a little before it expires, so calls never carry an expired one.
    fn schedule_renewal(&self, expires_at: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.me.clone();
        let wait =
            Duration::from_secs(expires_at.saturating_sub(now_secs())).saturating_sub(RENEW_BEFORE);
        let generation = *self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let task = runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(provider) = me.upgrade() else {
                return;
            };
            let current = *provider
                .generation
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if current == generation {
                provider.renew(generation).await;
            }
        });
        if let Some(old) = self
            .renewer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(task)
        {
            old.abort();
        }
    }

    /// Gets a new token unless another caller already replaced generation `seen`.
    async fn renew(&self, seen: u64) -> bool {
        let _one = self.renewing.lock().await;
        if *self.generation.lock().unwrap_or_else(|e| e.into_inner()) != seen {
            return true;
        }
        let previous = self.token.read().unwrap_or_else(|e| e.into_inner()).clone();
        match self.obtain(previous).await {
            Ok(token) => {
                self.install(token);
                true
            }
            Err(err) => {
                tracing::error!(%err, "signing in failed");
                eprintln!("Signing in to {} failed: {err}", self.endpoint);
                self.forget_cached();
                false
            }
        }
    }

    /// Makes sure a token is at hand (for callers that want to sign in before the first call).
    pub async fn sign_in(&self) -> Result<(), String> {
        let needs = {
            let token = self.token.read().unwrap_or_else(|e| e.into_inner());
            token
                .as_ref()
                .is_none_or(|t| t.expires_within(RENEW_BEFORE))
        };
        let seen = *self.generation.lock().unwrap_or_else(|e| e.into_inner());
        if needs && !self.renew(seen).await {
            return Err(format!("could not sign in to {}", self.endpoint));
        }
        Ok(())
    }
}

/// Waits for the browser to come back to the callback with a code for this sign-in.
async fn wait_for_code(
    listener: &tokio::net::TcpListener,
    path: &str,
    state: &str,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; 8192];
        let mut read = 0;
        while read < buffer.len() {
            let n = socket
                .read(&mut buffer[read..])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            read += n;
            if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buffer[..read]);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or("/");
        let url = url::Url::parse(&format!("http://callback{target}"))
            .map_err(|e| format!("a malformed callback: {e}"))?;
        let reply = |status: &str, text: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            )
        };
        if url.path().trim_matches('/') != path.trim_matches('/') {
            let _ = socket
                .write_all(reply("404 Not Found", "not the sign-in callback").as_bytes())
                .await;
            continue;
        }
        let params: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        if let Some(error) = params.get("error") {
            let _ = socket
                .write_all(reply("400 Bad Request", "Sign-in failed.").as_bytes())
                .await;
            return Err(format!(
                "the authorization server refused the sign-in: {error}"
            ));
        }
        if params.get("state").map(String::as_str) != Some(state) {
            let _ = socket
                .write_all(
                    reply("400 Bad Request", "This sign-in was not started here.").as_bytes(),
                )
                .await;
            continue;
        }
        let Some(code) = params.get("code").cloned() else {
            let _ = socket
                .write_all(reply("400 Bad Request", "No code in the callback.").as_bytes())
                .await;
            continue;
        };
        let _ = socket
            .write_all(
                reply(
                    "200 OK",
                    "<html><body>Signed in to Flyte. You can close this tab.</body></html>",
                )
                .as_bytes(),
            )
            .await;
        return Ok(code);
    }
}

impl AuthHeaderProvider for OAuthProvider {
    fn headers(&self) -> Result<Vec<Header>, String> {
        let token = self.token.read().unwrap_or_else(|e| e.into_inner());
        let Some(token) = token.as_ref() else {
            // Not signed in yet: the call goes out as is, and a rejection signs in.
            return Ok(Vec::new());
        };
        let key = self.header_key.read().unwrap_or_else(|e| e.into_inner());
        let header = validate_header(&key, &format!("Bearer {}", token.access_token))
            .map_err(|e| e.to_string())?;
        Ok(vec![header])
    }

    fn on_unauthenticated(&self) -> BoxFuture<'_, bool> {
        let seen = *self.generation.lock().unwrap_or_else(|e| e.into_inner());
        Box::pin(async move { self.renew(seen).await })
    }
}

/// An API key as the reference SDK makes them: standard base64 of
/// `endpoint:client_id:client_secret:org`. Returns (endpoint, client id, secret, org).
pub fn decode_api_key(key: &str) -> Result<(String, String, String, String), String> {
    let bytes = STANDARD.decode(key.trim()).map_err(|_| {
        "the API key is not base64 of endpoint:client_id:client_secret:org".to_string()
    })?;
    let text = String::from_utf8(bytes).map_err(|_| "the API key is not UTF-8 text".to_string())?;
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    match parts.as_slice() {
        [endpoint, client_id, secret, org] if !client_id.is_empty() && !secret.is_empty() => Ok((
            endpoint.to_string(),
            client_id.to_string(),
            secret.to_string(),
            if *org == "None" {
                String::new()
            } else {
                org.to_string()
            },
        )),
        _ => Err("the API key does not hold endpoint:client_id:client_secret:org".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_decode_as_the_reference_encodes_them() {
        let key = STANDARD.encode("flyte.example.com:my-app:s3cr:et:acme");
        assert_eq!(
            decode_api_key(&key).unwrap(),
            (
                "flyte.example.com".into(),
                "my-app".into(),
                "s3cr".into(),
                "et:acme".into()
            )
        );
        let no_org = STANDARD.encode("h:id:secret:None");
        assert_eq!(decode_api_key(&no_org).unwrap().3, "");
        assert!(decode_api_key("not base64!").is_err());
        assert!(decode_api_key(&STANDARD.encode("only:two")).is_err());
    }

    #[test]
    fn tokens_know_when_they_expire() {
        let soon = Token {
            access_token: "a".into(),
            refresh_token: None,
            expires_at: Some(now_secs() + 30),
        };
        assert!(soon.expires_within(RENEW_BEFORE));
        let later = Token {
            expires_at: Some(now_secs() + 3600),
            ..soon.clone()
        };
        assert!(!later.expires_within(RENEW_BEFORE));
        let never = Token {
            expires_at: None,
            ..soon
        };
        assert!(!never.expires_within(RENEW_BEFORE));
    }
}
