//! Sign-in settings from Python (`auth=` of `RpcClient` and `Controller`) and the one
//! provider per backend and flow that every client of this process shares, so a process signs
//! in once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::auth::{AuthSettings, Flow, OAuthProvider};
use crate::client::{AuthHeaderProvider, ClientConfig};

type Providers = Mutex<HashMap<String, Arc<OAuthProvider>>>;

fn providers() -> &'static Providers {
    static PROVIDERS: OnceLock<Providers> = OnceLock::new();
    PROVIDERS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn get<'py, T: FromPyObject<'py>>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match dict.get_item(key)? {
        Some(value) if !value.is_none() => Ok(Some(value.extract()?)),
        _ => Ok(None),
    }
}

/// `{"flow": "ClientSecret" | "DeviceFlow" | "Pkce" | "ExternalCommand", "client_id",
/// "client_secret", "command", "scopes", "audience", "cache_dir"}`.
pub fn settings_from(dict: &Bound<'_, PyDict>) -> PyResult<AuthSettings> {
    let flow_name: String = get(dict, "flow")?.unwrap_or_else(|| "Pkce".to_string());
    let client_id: Option<String> = get(dict, "client_id")?;
    let flow = match flow_name.as_str() {
        "ClientSecret" => Flow::ClientSecret {
            client_id: client_id.clone().ok_or_else(|| {
                PyValueError::new_err("the ClientSecret sign-in needs a client id (admin.clientId)")
            })?,
            secret: get(dict, "client_secret")?.ok_or_else(|| {
                PyValueError::new_err(
                    "the ClientSecret sign-in needs a secret (admin.clientSecretLocation or admin.clientSecretEnvVar)",
                )
            })?,
        },
        "DeviceFlow" => Flow::DeviceFlow,
        "Pkce" => Flow::Pkce,
        "ExternalCommand" => {
            let argv: Vec<String> = get(dict, "command")?.unwrap_or_default();
            if argv.is_empty() {
                return Err(PyValueError::new_err(
                    "the ExternalCommand sign-in needs a command (admin.command)",
                ));
            }
            Flow::ExternalCommand(argv)
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown sign-in flow {other:?}: use Pkce, DeviceFlow, ClientSecret or ExternalCommand"
            )))
        }
    };
    Ok(AuthSettings {
        flow,
        client_id,
        scopes: get(dict, "scopes")?.unwrap_or_default(),
        audience: get(dict, "audience")?,
        cache_dir: get::<String>(dict, "cache_dir")?.map(PathBuf::from),
    })
}

/// Attaches the shared provider for `settings` to `config`.
pub fn attach(config: &mut ClientConfig, settings: AuthSettings) -> PyResult<()> {
    let key = format!("{}|{:?}", config.endpoint, settings);
    let mut map = providers().lock().unwrap_or_else(|e| e.into_inner());
    let provider = match map.get(&key) {
        Some(p) => p.clone(),
        None => {
            let p = OAuthProvider::new(config, settings).map_err(PyValueError::new_err)?;
            map.insert(key, p.clone());
            p
        }
    };
    config.auth = Some(provider as Arc<dyn AuthHeaderProvider>);
    Ok(())
}

/// An API key (base64 of `endpoint:client_id:client_secret:org`) as (endpoint, client id,
/// secret, org); ValueError if it is not one.
#[pyfunction]
fn decode_api_key(key: &str) -> PyResult<(String, String, String, String)> {
    crate::auth::decode_api_key(key).map_err(PyValueError::new_err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_api_key, m)?)
}
