//! The web UI: pages to watch runs, served on the backend's port with the JSON they read.
//!
//! - `/v2/runs` lists runs; `/v2/runs/project/<p>/domain/<d>/<run>` shows one (the path a
//!   Flyte console uses, so `run.url` has the same shape on a cluster and here). Both are the
//!   same page: its script picks the view from the path.
//! - `/api/ui/...` is what the page reads: runs, a run's actions, an action's values, logs and
//!   report; and where its abort button posts. Values are rendered by [`values`].
//!
//! The page is three files compiled into the binary (no build step, no external assets).

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flyteidl2::flyteidl::common::{filter::Function, ActionPhase, Filter, ListRequest};
use flyteidl2::flyteidl::core::execution_error::ErrorKind;
use serde::Deserialize;
use serde_json::{json, Value};
use tonic::Status;

use crate::clock::now_ms;
use crate::engine::Engine;
use crate::layout::uri_to_path;
use crate::listing::{Listed, Query as Listing};
use crate::names::RunKey;
use crate::services::http::Files;
use crate::services::identity;
use crate::services::runs::action_data;
use crate::signing::Grant;
use crate::store::{ActionRecord, RunFilter};
use crate::values::{self, Links};
use crate::views;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Runs per page of the list.
const RUNS_PAGE: u32 = 50;
/// Actions of one run the page is given at most (a larger fan-out is summarised by counts).
const ACTIONS_SHOWN: u32 = 2000;
/// Bytes of a log per request; the page asks again from where it stopped.
const LOG_CHUNK: u64 = 256 * 1024;
/// How long a download link from the page stays valid.
const LINK_SECONDS: i64 = 3600;
const ABORT_REASON: &str = "aborted from the web UI";

struct Ui {
    engine: Arc<Engine>,
    files: Arc<Files>,
}

pub fn routes(engine: Arc<Engine>, files: Arc<Files>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/v2/runs") }))
        .route("/v2/runs", get(page))
        .route("/v2/runs/*rest", get(page))
        .route(
            "/ui/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/ui/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/api/ui/runs", get(list_runs))
        .route("/api/ui/runs/:project/:domain/:name", get(run))
        .route("/api/ui/runs/:project/:domain/:name/abort", post(abort))
        .route(
            "/api/ui/runs/:project/:domain/:name/actions/:action",
            get(action),
        )
        .route(
            "/api/ui/runs/:project/:domain/:name/actions/:action/log",
            get(log),
        )
        .route(
            "/api/ui/runs/:project/:domain/:name/actions/:action/report",
            get(report),
        )
        .with_state(Arc::new(Ui { engine, files }))
}

async fn page() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8").await
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// An error as the page shows it: `{"error": "..."}` with the matching HTTP status.
fn failure(status: &Status) -> Response {
    let code = match status.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, Json(json!({ "error": status.message() }))).into_response()
}

impl Ui {
    /// Signs a GET link for a file under the storage root, relative to this server.
    fn link(&self, uri: &str) -> Option<String> {
        let path = uri_to_path(uri).ok()?;
        let rel = path
            .strip_prefix(&self.files.root)
            .ok()?
            .to_str()?
            .to_string();
        let grant = Grant {
            method: "GET",
            path: &rel,
            expires: now_ms() / 1000 + LINK_SECONDS,
            content_md5: "",
        };
        Some(self.files.signed_url("", &grant))
    }

    fn record(&self, run: &RunKey, name: &str) -> Result<ActionRecord, Status> {
        self.engine
            .store
            .action(run, name)
            .map_err(|e| crate::engine::internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!("action {name:?} does not exist in run {run}"))
            })
    }
}

impl Links for Ui {
    fn download(&self, uri: &str) -> Option<String> {
        self.link(uri)
    }
}

fn run_key(project: String, domain: String, name: String) -> Result<RunKey, Status> {
    let id = flyteidl2::flyteidl::common::RunIdentifier {
        org: String::new(),
        project,
        domain,
        name,
    };
    RunKey::from_proto(&id, "run").map_err(Status::invalid_argument)
}

fn phase_name(phase: ActionPhase) -> &'static str {
    phase
        .as_str_name()
        .strip_prefix("ACTION_PHASE_")
        .unwrap_or("UNSPECIFIED")
}

fn error_json(record: &ActionRecord) -> Value {
    match views::action_error(record) {
        Some(err) => json!({
            "code": err.code,
            "kind": if err.kind == ErrorKind::System as i32 { "system" } else { "user" },
            "message": err.message,
        }),
        None => Value::Null,
    }
}

fn action_json(record: &ActionRecord) -> Value {
    json!({
        "name": record.name,
        "parent": record.parent,
        "group": record.group,
        "kind": record.kind.as_str(),
        "task": record.task_name,
        "phase": phase_name(record.phase),
        "attempts": record.attempts,
        "cache_hit": record.cache_hit,
        "created_ms": record.created_ms,
        "started_ms": record.started_ms,
        "ended_ms": record.ended_ms,
        "error": error_json(record),
        "abort_reason": record.abort_reason,
    })
}

#[derive(Deserialize)]
struct RunsQuery {
    project: Option<String>,
    domain: Option<String>,
    phase: Option<String>,
    task: Option<String>,
    token: Option<String>,
}

async fn list_runs(State(ui): State<Arc<Ui>>, Query(q): Query<RunsQuery>) -> Response {
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let mut filters = Vec::new();
    if let Some(phase) = non_empty(q.phase) {
        filters.push(Filter {
            function: Function::Equal as i32,
            field: "phase".into(),
            values: vec![phase],
        });
    }
    let request = ListRequest {
        limit: RUNS_PAGE,
        token: q.token.unwrap_or_default(),
        filters,
        ..Default::default()
    };
    let query = match Listing::parse(Listed::Runs, Some(&request), &identity::local_subject()) {
        Ok(query) => query,
        Err(status) => return failure(&status),
    };
    let filter = RunFilter {
        project: non_empty(q.project),
        domain: non_empty(q.domain),
        task_name: non_empty(q.task),
        ..Default::default()
    };
    match ui.engine.store.list_runs(&filter, &query) {
        Ok(rows) => Json(json!({
            "runs": rows.iter().map(|(_, root)| json!({
                "name": root.run.name,
                "project": root.run.project,
                "domain": root.run.domain,
                "task": root.task_name,
                "phase": phase_name(root.phase),
                "created_ms": root.created_ms,
                "started_ms": root.started_ms,
                "ended_ms": root.ended_ms,
                "error": error_json(root),
            })).collect::<Vec<_>>(),
            "next": query.next_token(rows.len(), rows.last().map(|(_, root)| root)),
        }))
        .into_response(),
        Err(err) => failure(&crate::engine::internal("list runs", err)),
    }
}

async fn run(
    State(ui): State<Arc<Ui>>,
    UrlPath((project, domain, name)): UrlPath<(String, String, String)>,
) -> Response {
    let answer = || -> Result<Value, Status> {
        let run = run_key(project, domain, name)?;
        ui.engine.require_run(&run)?;
        let request = ListRequest {
            limit: ACTIONS_SHOWN,
            ..Default::default()
        };
        let query = Listing::parse(Listed::Actions, Some(&request), &identity::local_subject())?;
        let actions = ui
            .engine
            .store
            .list_actions(&run, &query)
            .map_err(|e| crate::engine::internal("list actions", e))?;
        let counts = ui
            .engine
            .store
            .phase_counts(&run)
            .map_err(|e| crate::engine::internal("count actions", e))?;
        Ok(json!({
            "name": run.name,
            "project": run.project,
            "domain": run.domain,
            "actions": actions.iter().map(action_json).collect::<Vec<_>>(),
            "counts": counts.into_iter().map(|(phase, n)| (phase_name(phase).to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "truncated": actions.len() as u32 >= ACTIONS_SHOWN,
        }))
    };
    match answer() {
        Ok(body) => Json(body).into_response(),
        Err(status) => failure(&status),
    }
}

async fn action(
    State(ui): State<Arc<Ui>>,
    UrlPath((project, domain, name, action)): UrlPath<(String, String, String, String)>,
) -> Response {
    let answer = || -> Result<Value, Status> {
        let run = run_key(project, domain, name)?;
        let record = ui.record(&run, &action)?;
        let attempts = ui
            .engine
            .store
            .attempts(record.seq)
            .map_err(|e| crate::engine::internal("read attempts", e))?;
        // Values that cannot be read (deleted files) leave the rest of the page standing.
        let (inputs, outputs, data_error) = match action_data(&record, &ui.engine.store) {
            Ok(data) => (
                data.inputs
                    .as_ref()
                    .map(|i| values::inputs_json(i, ui.as_ref())),
                data.outputs
                    .as_ref()
                    .map(|o| values::outputs_json(o, ui.as_ref())),
                None,
            ),
            Err(status) => (None, None, Some(status.message().to_string())),
        };
        let report = record
            .output_uri
            .as_deref()
            .and_then(|uri| uri_to_path(&format!("{}/report.html", uri.trim_end_matches('/'))).ok())
            .is_some_and(|p| p.is_file());
        // The user's traceback is in the failed attempt's log, where the task's process printed it.
        let traceback = views::action_error(&record)
            .filter(|_| record.attempts > 0)
            .and_then(|_| {
                last_traceback(&ui.engine.layout.log_path(&run, &action, record.attempts))
            });
        Ok(json!({
            "action": action_json(&record),
            "traceback": traceback,
            "inputs": inputs,
            "outputs": outputs,
            "data_error": data_error,
            "report": report,
            "attempts": attempts.iter().map(|a| json!({
                "attempt": a.attempt,
                "phase": phase_name(a.phase),
                "started_ms": a.started_ms,
                "ended_ms": a.ended_ms,
                "error": views::decode_error(a.error.as_deref()).map(|e| e.message),
            })).collect::<Vec<_>>(),
        }))
    };
    match answer() {
        Ok(body) => Json(body).into_response(),
        Err(status) => failure(&status),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    attempt: Option<u32>,
    #[serde(default)]
    offset: u64,
}

/// A piece of an attempt's log from `offset`; `x-log-size` is the log's size, `x-log-done`
/// whether the attempt ended (nothing more will be written).
async fn log(
    State(ui): State<Arc<Ui>>,
    UrlPath((project, domain, name, action)): UrlPath<(String, String, String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let found = (|| -> Result<(std::path::PathBuf, bool), Status> {
        let run = run_key(project, domain, name)?;
        let record = ui.record(&run, &action)?;
        let attempt = q.attempt.unwrap_or(record.attempts).max(1);
        let done = ui
            .engine
            .store
            .attempt(record.seq, attempt)
            .map_err(|e| crate::engine::internal("read attempt", e))?
            .is_some_and(|a| a.ended_ms.is_some());
        Ok((ui.engine.layout.log_path(&run, &action, attempt), done))
    })();
    let (path, done) = match found {
        Ok(found) => found,
        Err(status) => return failure(&status),
    };
    let (text, size) = match read_from(&path, q.offset) {
        Ok(read) => read,
        Err(err) => {
            return failure(&Status::internal(format!(
                "read the log {}: {err}",
                path.display()
            )))
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-log-size", HeaderValue::from(size));
    headers.insert(
        "x-log-done",
        HeaderValue::from_static(if done { "1" } else { "0" }),
    );
    (headers, text).into_response()
}

/// How much of a log's end is searched for a traceback, and the most of one that is shown.
const TRACEBACK_WINDOW: u64 = 64 * 1024;
const TRACEBACK_MAX: usize = 16 * 1024;

/// The last Python traceback in a log (a failed attempt prints its error's there), if any.
fn last_traceback(path: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(TRACEBACK_WINDOW)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let start = text.rfind("Traceback (most recent call last):")?;
    let found = text[start..].trim_end();
    let end = found
        .char_indices()
        .nth(TRACEBACK_MAX)
        .map_or(found.len(), |(i, _)| i);
    Some(found[..end].to_string())
}

/// Up to `LOG_CHUNK` bytes from `offset` and the file's size; a log not written yet is empty.
fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<(Vec<u8>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let start = offset.min(size);
    file.seek(SeekFrom::Start(start))?;
    let mut text = Vec::new();
    file.take(LOG_CHUNK).read_to_end(&mut text)?;
    Ok((text, size))
}

/// The action's report, in a sandbox: its scripts run, but with no access to this origin.
async fn report(
    State(ui): State<Arc<Ui>>,
    UrlPath((project, domain, name, action)): UrlPath<(String, String, String, String)>,
) -> Response {
    let found = (|| -> Result<std::path::PathBuf, Status> {
        let run = run_key(project, domain, name)?;
        let record = ui.record(&run, &action)?;
        let uri = record
            .output_uri
            .ok_or_else(|| Status::not_found("the action has no report (it wrote no outputs)"))?;
        uri_to_path(&format!("{}/report.html", uri.trim_end_matches('/')))
            .map_err(Status::failed_precondition)
    })();
    let path = match found {
        Ok(path) => path,
        Err(status) => return failure(&status),
    };
    match std::fs::read(&path) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, "sandbox allow-scripts"),
            ],
            body,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            failure(&Status::not_found("the action wrote no report"))
        }
        Err(e) => failure(&Status::internal(format!(
            "read the report {}: {e}",
            path.display()
        ))),
    }
}

async fn abort(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    UrlPath((project, domain, name)): UrlPath<(String, String, String)>,
) -> Response {
    // A form on another site cannot send this header: only the page's own script aborts.
    if headers.get("x-flyte-ui").is_none() {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "aborts come from the UI's own page (x-flyte-ui header)"})),
        )
            .into_response();
    }
    let result =
        run_key(project, domain, name).and_then(|run| ui.engine.abort_run(&run, ABORT_REASON));
    match result {
        Ok(()) => Json(json!({"aborted": true})).into_response(),
        Err(status) => failure(&status),
    }
}
