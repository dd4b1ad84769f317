//! Condition callbacks: what a condition's webhook receiver calls to signal it, with no
//! credentials but the URI's signature. `POST /conditions/<org>/<project>/<domain>/<run>/
//! <action>?signature=...` with a JSON body: the value (`true`, `42`, `1.5`, `"text"`) or
//! `{"value": ...}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use flyteidl2::flyteidl::core::{primitive, Literal, SimpleType};
use serde::Deserialize;
use tonic::Code;

use super::http::Files;
use crate::engine::condition::{
    callback_authorized, condition_action, parse_callback_path, primitive_literal, simple_type,
};
use crate::engine::Engine;

struct Callbacks {
    engine: Arc<Engine>,
    files: Arc<Files>,
}

pub fn routes(engine: Arc<Engine>, files: Arc<Files>) -> Router {
    Router::new()
        .route("/conditions/*path", post(signal))
        .with_state(Arc::new(Callbacks { engine, files }))
}

#[derive(Deserialize)]
struct Signed {
    signature: String,
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

async fn signal(
    State(callbacks): State<Arc<Callbacks>>,
    UrlPath(path): UrlPath<String>,
    Query(query): Query<Signed>,
    body: Bytes,
) -> Response {
    // The signature covers the path as it was encoded in the URI.
    let encoded: Vec<String> = path
        .split('/')
        .map(|seg| {
            percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect();
    let encoded = encoded.join("/");
    if !callback_authorized(&callbacks.files.signer, &encoded, &query.signature) {
        return answer(
            StatusCode::FORBIDDEN,
            "the signature does not match this URI",
        );
    }
    let Some((run, action)) = parse_callback_path(&encoded) else {
        return answer(StatusCode::NOT_FOUND, "not a condition's callback URI");
    };
    let record = match callbacks.engine.store.action(&run, &action) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return answer(
                StatusCode::NOT_FOUND,
                format!("action {action:?} does not exist in run {run}"),
            )
        }
        Err(err) => return answer(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    let Some(expected) = condition_action(&record).and_then(|c| simple_type(c.r#type.as_ref()))
    else {
        return answer(
            StatusCode::CONFLICT,
            format!("action {action:?} is not a condition"),
        );
    };
    let value = match value_of(&body, expected) {
        Ok(value) => value,
        Err(message) => return answer(StatusCode::BAD_REQUEST, message),
    };
    match callbacks.engine.signal(&run, &action, None, &value) {
        Ok(()) => answer(StatusCode::OK, "signalled"),
        Err(status) => {
            let code = match status.code() {
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::InvalidArgument => StatusCode::BAD_REQUEST,
                Code::FailedPrecondition => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            answer(code, status.message())
        }
    }
}

/// The JSON body as a literal of the condition's declared type.
fn value_of(body: &[u8], expected: SimpleType) -> Result<Literal, String> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be JSON (the value, or {{\"value\": ...}}): {e}"))?;
    let json = match json {
        serde_json::Value::Object(mut fields) if fields.contains_key("value") => {
            fields.remove("value").unwrap_or_default()
        }
        other => other,
    };
    let primitive = match (expected, &json) {
        (SimpleType::Boolean, serde_json::Value::Bool(b)) => primitive::Value::Boolean(*b),
        (SimpleType::Integer, serde_json::Value::Number(n)) if n.as_i64().is_some() => {
            primitive::Value::Integer(n.as_i64().unwrap_or_default())
        }
        (SimpleType::Float, serde_json::Value::Number(n)) => {
            primitive::Value::FloatValue(n.as_f64().unwrap_or_default())
        }
        (SimpleType::String, serde_json::Value::String(s)) => {
            primitive::Value::StringValue(s.clone())
        }
        _ => {
            return Err(format!(
                "the condition expects a {} value, got {json}",
                expected.as_str_name()
            ))
        }
    };
    Ok(primitive_literal(primitive))
}
