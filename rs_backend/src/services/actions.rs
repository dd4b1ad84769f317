//! flyteidl2.actions.ActionsService: how a running parent task manages its children.

use std::sync::Arc;

use flyteidl2::flyteidl::actions::actions_service_server::ActionsService;
use flyteidl2::flyteidl::actions::{
    watch_for_updates_request, AbortRequest, AbortResponse, EnqueueRequest, EnqueueResponse,
    SignalRequest, SignalResponse, UpdateRequest, UpdateResponse, WatchForUpdatesRequest,
    WatchForUpdatesResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{streams, ServerStream, STREAM_BUFFER};
use crate::attempt_token::{bearer, AttemptClaim};
use crate::engine::{internal, Engine};
use crate::store::{ActionKind, ActionRecord};
use crate::validate;

pub struct ActionsApi {
    engine: Arc<Engine>,
}

impl ActionsApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

/// The reason recorded when a client aborts without giving one.
pub const DEFAULT_ABORT_REASON: &str = "aborted by request";

impl ActionsApi {
    /// The attempt that may report on `record`: its own, or — for an action without a process
    /// of its own (a trace, a condition) — its parent's.
    fn holder_of(&self, record: ActionRecord) -> Result<AttemptClaim, Status> {
        let holder = match (record.kind, &record.parent) {
            (ActionKind::Task, _) | (_, None) => record,
            (_, Some(parent)) => self
                .engine
                .store
                .action(&record.run, parent)
                .map_err(|e| internal("look up parent action", e))?
                .ok_or_else(|| Status::not_found(format!("parent action {parent:?} is gone")))?,
        };
        Ok(AttemptClaim {
            seq: holder.seq,
            attempt: holder.attempts,
        })
    }
}

#[tonic::async_trait]
impl ActionsService for ActionsApi {
    async fn enqueue(
        &self,
        request: Request<EnqueueRequest>,
    ) -> Result<Response<EnqueueResponse>, Status> {
        let action = validate::enqueue(request.into_inner())?;
        self.engine.enqueue(action)?;
        Ok(Response::new(EnqueueResponse {}))
    }

    type WatchForUpdatesStream = ServerStream<WatchForUpdatesResponse>;

    async fn watch_for_updates(
        &self,
        request: Request<WatchForUpdatesRequest>,
    ) -> Result<Response<Self::WatchForUpdatesStream>, Status> {
        let parent_id = match request.into_inner().filter {
            Some(watch_for_updates_request::Filter::ParentActionId(id)) => id,
            None => {
                return Err(Status::invalid_argument(
                    "filter.parent_action_id is required",
                ))
            }
        };
        let (run, parent) = validate::action_id(Some(&parent_id), "parent_action_id")?;
        let exists = self
            .engine
            .store
            .action(&run, &parent)
            .map_err(|e| internal("look up parent action", e))?
            .is_some();
        if !exists {
            return Err(Status::not_found(format!(
                "action {parent:?} does not exist in run {run}"
            )));
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(streams::child_updates(self.engine.clone(), run, parent, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let claim = bearer(request.metadata()).and_then(|t| self.engine.attempt_keys.verify(t));
        let report = validate::update(request.into_inner())?;
        let record = self
            .engine
            .store
            .action(&report.run, &report.name)
            .map_err(|e| internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "action {:?} does not exist in run {}",
                    report.name, report.run
                ))
            })?;
        if claim != Some(self.holder_of(record)?) {
            return Err(Status::permission_denied(format!(
                "only the running attempt of action {:?} (or, for a trace, of its parent) may \
                 update its status: call with the token the backend gave that attempt ({}) as \
                 'authorization: Bearer <token>'",
                report.name,
                crate::contract::EXTRA_ACTION_TOKEN
            )));
        }
        self.engine.report_status(report)?;
        Ok(Response::new(UpdateResponse {}))
    }

    async fn abort(
        &self,
        request: Request<AbortRequest>,
    ) -> Result<Response<AbortResponse>, Status> {
        let request = request.into_inner();
        let (run, name) = validate::action_id(request.action_id.as_ref(), "action_id")?;
        let reason = request
            .reason
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_ABORT_REASON.to_string());
        self.engine.abort_action(&run, &name, &reason)?;
        Ok(Response::new(AbortResponse {}))
    }

    async fn signal(
        &self,
        request: Request<SignalRequest>,
    ) -> Result<Response<SignalResponse>, Status> {
        let request = request.into_inner();
        let (run, name) = validate::action_id(request.action_id.as_ref(), "action_id")?;
        let value = request
            .value
            .ok_or_else(|| Status::invalid_argument("value is required"))?;
        self.engine
            .signal(&run, &name, Some(&request.parent_action_name), &value)?;
        Ok(Response::new(SignalResponse {}))
    }
}
