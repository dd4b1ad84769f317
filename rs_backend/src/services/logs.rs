//! flyteidl2.workflow.RunLogsService: an attempt's output, followed while it runs.

use std::path::PathBuf;
use std::sync::Arc;

use flyteidl2::flyteidl::common::ActionIdentifier;
use flyteidl2::flyteidl::workflow::run_logs_service_server::RunLogsService;
use flyteidl2::flyteidl::workflow::{TailLogsRequest, TailLogsResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{streams, ServerStream, STREAM_BUFFER};
use crate::engine::{internal, Engine};
use crate::store::ActionKind;
use crate::validate;

pub struct LogsApi {
    engine: Arc<Engine>,
}

impl LogsApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

/// Where an attempt's log is: (action seq, attempt, log file). Attempt 0 means the latest.
pub fn locate(
    engine: &Engine,
    action_id: Option<&ActionIdentifier>,
    attempt: u32,
) -> Result<(i64, u32, PathBuf), Status> {
    let (run, name) = validate::action_id(action_id, "action_id")?;
    let record = engine
        .store
        .action(&run, &name)
        .map_err(|e| internal("look up action", e))?
        .ok_or_else(|| Status::not_found(format!("action {name:?} does not exist in run {run}")))?;
    if record.kind == ActionKind::Trace {
        return Err(Status::not_found(format!(
            "action {name:?} is a trace; traces run inside their parent and have no logs of \
             their own"
        )));
    }
    let attempt = if attempt == 0 {
        record.attempts
    } else {
        attempt
    };
    if attempt == 0 {
        return Err(Status::not_found(format!(
            "action {name:?} has not started yet, so it has no logs"
        )));
    }
    let row = engine
        .store
        .attempt(record.seq, attempt)
        .map_err(|e| internal("look up attempt", e))?
        .ok_or_else(|| {
            Status::not_found(format!(
                "action {name:?} has no attempt {attempt} (it has {})",
                record.attempts
            ))
        })?;
    Ok((record.seq, attempt, PathBuf::from(row.log_path)))
}

#[tonic::async_trait]
impl RunLogsService for LogsApi {
    type TailLogsStream = ServerStream<TailLogsResponse>;

    async fn tail_logs(
        &self,
        request: Request<TailLogsRequest>,
    ) -> Result<Response<Self::TailLogsStream>, Status> {
        let request = request.into_inner();
        let (seq, attempt, path) =
            locate(&self.engine, request.action_id.as_ref(), request.attempt)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(streams::tail_log(
            self.engine.clone(),
            seq,
            attempt,
            path,
            tx,
            streams::run_logs_message,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
