//! `flyte-submit`: start a run from Rust and follow it.
//!
//! ```text
//! flyte-submit --endpoint 127.0.0.1:8090 [--insecure] [--project P] [--domain D] FILE TASK [--inputs JSON]
//! ```
//!
//! Python (embedded) loads the task and converts the JSON inputs and the outputs; Rust does
//! every network call: CreateRun, WatchRunDetails, GetActionData. Prints each phase change
//! and the outputs as JSON; exits 0 when the run succeeded, 1 when it did not, 2 on bad usage.

use std::process::ExitCode;

use flyte_backend::phase::{is_terminal, phase_name};
use flyte_controller::client::{Client, ClientConfig};
use flyte_controller::rpc;
use flyteidl2::flyteidl::common::{ActionIdentifier, ActionPhase, RunIdentifier};
use flyteidl2::flyteidl::workflow::action_details::Result as DetailsResult;
use flyteidl2::flyteidl::workflow::run_service_client::RunServiceClient;
use flyteidl2::flyteidl::workflow::{
    create_run_request, CreateRunRequest, CreateRunResponse, GetActionDataRequest,
    WatchRunDetailsRequest,
};
use prost::Message;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Starts a run of TASK from FILE on a Flyte 2 backend and follows it to its end.
#[derive(clap::Parser)]
#[command(name = "flyte-submit")]
struct Args {
    /// The backend, as HOST:PORT (or a URL).
    #[arg(long)]
    endpoint: String,
    /// Plain-text gRPC instead of TLS.
    #[arg(long)]
    insecure: bool,
    /// The project to run in (the backend's default when empty).
    #[arg(long, default_value = "")]
    project: String,
    /// The domain to run in (the backend's default when empty).
    #[arg(long, default_value = "")]
    domain: String,
    /// The workflow file that defines the task.
    file: String,
    /// The task's name (its attribute name in FILE, or its full name).
    task: String,
    /// The task's inputs, as a JSON object of input name to value.
    #[arg(long, default_value = "{}")]
    inputs: String,
}

/// Makes the active virtualenv's packages (the SDK) importable by the embedded interpreter,
/// which otherwise only knows the base installation it was linked against.
fn add_virtualenv(py: Python<'_>) -> PyResult<()> {
    let Ok(venv) = std::env::var("VIRTUAL_ENV") else {
        return Ok(());
    };
    let site = py.import("site")?;
    for entry in std::fs::read_dir(std::path::Path::new(&venv).join("lib"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = entry.path().join("site-packages");
        if dir.is_dir() {
            site.call_method1("addsitedir", (dir.to_string_lossy().to_string(),))?;
        }
    }
    Ok(())
}

fn python_error(py: Python<'_>, e: PyErr) -> String {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Error".into());
    format!("{kind}: {}", e.value(py))
}

fn build_request(args: &Args) -> Result<(Vec<u8>, String), String> {
    Python::with_gil(|py| {
        add_virtualenv(py).map_err(|e| python_error(py, e))?;
        let embed = py
            .import("flyte._remote._embed")
            .map_err(|e| python_error(py, e))?;
        let out = embed
            .call_method1(
                "create_run_request",
                (
                    &args.file,
                    &args.task,
                    &args.inputs,
                    &args.project,
                    &args.domain,
                    &args.endpoint,
                ),
            )
            .map_err(|e| python_error(py, e))?;
        let (request, task): (Vec<u8>, String) = out.extract().map_err(|e| python_error(py, e))?;
        Ok((request, task))
    })
}

fn outputs_json(args: &Args, outputs: &[u8]) -> Result<String, String> {
    Python::with_gil(|py| {
        let embed = py
            .import("flyte._remote._embed")
            .map_err(|e| python_error(py, e))?;
        embed
            .call_method1(
                "outputs_json",
                (&args.file, &args.task, PyBytes::new(py, outputs)),
            )
            .and_then(|v| v.extract::<String>())
            .map_err(|e| python_error(py, e))
    })
}

async fn follow(args: &Args, client: &Client, request: Vec<u8>) -> Result<bool, String> {
    let sent = CreateRunRequest::decode(request.as_slice())
        .map_err(|e| format!("the SDK built a bad CreateRun request: {e}"))?;
    let raw = rpc::unary(client, "/flyteidl2.workflow.RunService/CreateRun", request)
        .await
        .map_err(|e| format!("creating the run failed: {e}"))?;
    let created = CreateRunResponse::decode(raw.as_slice())
        .map_err(|e| format!("bad CreateRun response: {e}"))?;
    let created_id: RunIdentifier = created
        .run
        .and_then(|r| r.action)
        .and_then(|a| a.id)
        .and_then(|id| id.run)
        .ok_or("the backend did not say which run it created")?;
    // Our own identifier (org included, which a backend may leave out of its answer), named
    // as the backend named the run.
    let run_id = match sent.id {
        Some(create_run_request::Id::RunId(mut id)) => {
            id.name = created_id.name;
            id
        }
        _ => created_id,
    };
    println!("run {} created", run_id.name);

    let mut runs = RunServiceClient::new(client.grpc_channel().map_err(|e| e.to_string())?);
    let mut last = None;
    let mut stream = runs
        .watch_run_details(WatchRunDetailsRequest {
            run_id: Some(run_id.clone()),
        })
        .await
        .map_err(|e| format!("watching the run failed: {e}"))?
        .into_inner();
    let mut error = None;
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|e| format!("watching the run failed: {e}"))?
    {
        let Some(action) = msg.details.and_then(|d| d.action) else {
            continue;
        };
        let phase = action
            .status
            .as_ref()
            .and_then(|s| ActionPhase::try_from(s.phase).ok())
            .unwrap_or(ActionPhase::Unspecified);
        if last != Some(phase) {
            println!("phase {}", phase_name(phase));
            last = Some(phase);
        }
        if is_terminal(phase) {
            error = match action.result {
                Some(DetailsResult::ErrorInfo(e)) => Some(format!("{}: {}", e.code, e.message)),
                Some(DetailsResult::AbortInfo(a)) => Some(format!("aborted: {}", a.reason)),
                _ => None,
            };
            break;
        }
    }
    if last != Some(ActionPhase::Succeeded) {
        let ended = last.map_or("without a phase", phase_name);
        println!(
            "error {}",
            error.unwrap_or_else(|| format!("run ended {ended}"))
        );
        return Ok(false);
    }
    let data = runs
        .get_action_data(GetActionDataRequest {
            action_id: Some(ActionIdentifier {
                run: Some(run_id),
                name: "a0".into(),
            }),
        })
        .await
        .map_err(|e| format!("reading the outputs failed: {e}"))?
        .into_inner();
    let outputs = data.outputs.map(|o| o.encode_to_vec()).unwrap_or_default();
    println!("outputs {}", outputs_json(args, &outputs)?);
    Ok(true)
}

fn main() -> ExitCode {
    // Bad usage prints the error and the usage and exits 2; --help exits 0.
    let args = <Args as clap::Parser>::parse();
    pyo3::prepare_freethreaded_python();
    let (request, task) = match build_request(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flyte-submit: {e}");
            return ExitCode::from(2);
        }
    };
    println!("task {task}");
    let mut config = ClientConfig::new(args.endpoint.clone());
    config.insecure = args.insecure;
    let client = match Client::new(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flyte-submit: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flyte-submit: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The GIL stays free while Rust waits on the network.
    let outcome = Python::with_gil(|py| {
        py.allow_threads(|| runtime.block_on(follow(&args, &client, request)))
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("flyte-submit: {e}");
            ExitCode::FAILURE
        }
    }
}
