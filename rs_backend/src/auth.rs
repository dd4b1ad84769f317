//! Requiring authentication: every RPC but discovery carries a bearer token, either an access
//! token issued by the configured OAuth2 authorization server (a JWT, checked against the
//! server's published keys, issuer, audience and expiry) or the backend's own action token,
//! which only the action processes it starts are given.
//!
//! Clients find out how to sign in through `AuthMetadataService`: the authorization server's
//! metadata (endpoints, grant types) and the public client they should use, as on a cluster.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde::Deserialize;
use tonic::{Request, Response, Status};

use crate::attempt_token::AttemptKeys;
use crate::idl::flyteidl::auth::auth_metadata_service_server::AuthMetadataService;
use crate::idl::flyteidl::auth::{
    GetOAuth2MetadataRequest, GetOAuth2MetadataResponse, GetPublicClientConfigRequest,
    GetPublicClientConfigResponse,
};

/// Where a public client (the CLI) receives the authorization code: what clients default to.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:53593/callback";

/// RPCs answered without a token: how to get one.
const OPEN_SERVICES: &[&str] = &["/flyteidl2.auth.AuthMetadataService/"];

/// How this backend authenticates callers.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// The authorization server's issuer URL; its metadata is at
    /// `<issuer>/.well-known/oauth-authorization-server` (or `openid-configuration`).
    pub issuer: String,
    /// The audience access tokens must be issued for.
    pub audience: String,
    /// The public client the CLI signs in as (PKCE, device code).
    pub client_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
}

/// The authorization server's metadata document (RFC 8414), as far as clients use it.
#[derive(Clone, Debug, Default, Deserialize)]
struct ServerMetadata {
    issuer: String,
    #[serde(default)]
    authorization_endpoint: String,
    #[serde(default)]
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: String,
    #[serde(default)]
    jwks_uri: String,
    #[serde(default)]
    response_types_supported: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    grant_types_supported: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
}

/// Checks the bearer tokens of incoming calls.
pub struct Authenticator {
    settings: AuthSettings,
    metadata: ServerMetadata,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Action processes sign in with their attempt's token instead of an access token.
    attempts: AttemptKeys,
    http: reqwest::Client,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.settings.issuer)
            .finish()
    }
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("GET {url}: not the JSON expected: {e}"))
}

impl Authenticator {
    /// Reads the authorization server's metadata and keys; the backend does not start without
    /// them, since it could not check a single token.
    pub async fn discover(
        settings: AuthSettings,
        attempts: AttemptKeys,
    ) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let base = settings.issuer.trim_end_matches('/');
        let mut errors = Vec::new();
        let mut metadata = None;
        for doc in ["oauth-authorization-server", "openid-configuration"] {
            match get_json::<ServerMetadata>(&http, &format!("{base}/.well-known/{doc}")).await {
                Ok(found) => {
                    metadata = Some(found);
                    break;
                }
                Err(e) => errors.push(e),
            }
        }
        let metadata = metadata.ok_or_else(|| {
            format!(
                "the authorization server {} publishes no metadata: {}",
                settings.issuer,
                errors.join("; ")
            )
        })?;
        if metadata.jwks_uri.is_empty() {
            return Err(format!(
                "the authorization server {} publishes no jwks_uri to check tokens with",
                settings.issuer
            ));
        }
        let auth = Arc::new(Authenticator {
            settings,
            metadata,
            keys: RwLock::new(HashMap::new()),
            attempts,
            http,
        });
        auth.load_keys().await?;
        Ok(auth)
    }

    async fn load_keys(&self) -> Result<(), String> {
        let set: JwkSet = get_json(&self.http, &self.metadata.jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, key);
            }
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    /// Whether a call to `path` needs a token at all.
    pub fn is_open(path: &str) -> bool {
        OPEN_SERVICES.iter().any(|p| path.starts_with(p))
    }

    /// Checks the `authorization` header of a call; the error says what is wrong.
    pub async fn check(&self, authorization: Option<&str>) -> Result<(), Status> {
        let token = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "this backend requires authentication: sign in (see `flyte get config`) or \
                     pass an access token as 'authorization: Bearer <token>'",
                )
            })?;
        if self.attempts.verify(token).is_some() {
            return Ok(());
        }
        let header = decode_header(token)
            .map_err(|e| Status::unauthenticated(format!("the access token is malformed: {e}")))?;
        let kid = header.kid.clone().unwrap_or_default();
        let known = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&kid);
        if !known {
            // Keys rotate: look again once before refusing.
            self.load_keys()
                .await
                .map_err(|e| Status::unavailable(format!("cannot read the signing keys: {e}")))?;
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys.get(&kid).ok_or_else(|| {
            Status::unauthenticated(format!(
                "the access token is signed with a key ({kid:?}) the authorization server does not publish"
            ))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.metadata.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.leeway = 30;
        decode::<Claims>(token, key, &validation)
            .map(|data| tracing::debug!(subject = %data.claims.sub, "authenticated"))
            .map_err(|e| Status::unauthenticated(format!("the access token is not accepted: {e}")))
    }
}

/// `AuthMetadataService`: how clients sign in to this backend.
pub struct AuthMetadataApi {
    auth: Option<Arc<Authenticator>>,
    /// `scheme://host:port` of this backend: its data plane too.
    endpoint: String,
}

impl AuthMetadataApi {
    pub fn new(auth: Option<Arc<Authenticator>>, endpoint: String) -> Self {
        Self { auth, endpoint }
    }
}

#[tonic::async_trait]
impl AuthMetadataService for AuthMetadataApi {
    async fn get_o_auth2_metadata(
        &self,
        _request: Request<GetOAuth2MetadataRequest>,
    ) -> Result<Response<GetOAuth2MetadataResponse>, Status> {
        let Some(auth) = &self.auth else {
            return Err(Status::unimplemented(
                "this backend requires no authentication: there is no OAuth2 server to describe",
            ));
        };
        let m = auth.metadata.clone();
        Ok(Response::new(GetOAuth2MetadataResponse {
            issuer: m.issuer,
            authorization_endpoint: m.authorization_endpoint,
            token_endpoint: m.token_endpoint,
            response_types_supported: m.response_types_supported,
            scopes_supported: m.scopes_supported,
            token_endpoint_auth_methods_supported: m.token_endpoint_auth_methods_supported,
            jwks_uri: m.jwks_uri,
            code_challenge_methods_supported: m.code_challenge_methods_supported,
            grant_types_supported: m.grant_types_supported,
            device_authorization_endpoint: m.device_authorization_endpoint,
        }))
    }

    async fn get_public_client_config(
        &self,
        _request: Request<GetPublicClientConfigRequest>,
    ) -> Result<Response<GetPublicClientConfigResponse>, Status> {
        let mut config = GetPublicClientConfigResponse {
            authorization_metadata_key: "authorization".into(),
            dataplane_domain: self.endpoint.clone(),
            ..Default::default()
        };
        if let Some(auth) = &self.auth {
            let s = &auth.settings;
            config.client_id = s.client_id.clone();
            config.redirect_uri = s.redirect_uri.clone();
            config.scopes = s.scopes.clone();
            config.audience = s.audience.clone();
        }
        Ok(Response::new(config))
    }
}
