//! flyteidl2.workflow.RunService: creating, inspecting, listing and aborting runs.

use std::sync::Arc;

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::task::{Inputs, NamedLiteral, Outputs};
use flyteidl2::flyteidl::workflow::run_service_server::RunService;
use flyteidl2::flyteidl::workflow::*;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::action_watch::{self, ActionFilter};
use super::actions::DEFAULT_ABORT_REASON;
use super::{streams, unsupported, ServerStream, STREAM_BUFFER};
use crate::datafile::read_optional;
use crate::engine::{internal, Engine, ROOT_ACTION};
use crate::layout::{outputs_file_uri, uri_to_path};
use crate::listing::{Listed, Query};
use crate::names::RunKey;
use crate::services::{identity, tasks};
use crate::store::{ActionRecord, Store};
use crate::{validate, views};

pub struct RunsApi {
    engine: Arc<Engine>,
}

impl RunsApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    fn action(&self, run: &RunKey, name: &str) -> Result<ActionRecord, Status> {
        self.engine
            .store
            .action(run, name)
            .map_err(|e| internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!("action {name:?} does not exist in run {run}"))
            })
    }
}

fn action_details(engine: &Engine, record: &ActionRecord) -> Result<ActionDetails, Status> {
    let attempts = engine
        .store
        .attempts(record.seq)
        .map_err(|e| internal("read attempts", e))?;
    Ok(views::action_details(record, &attempts))
}

fn run_details(engine: &Engine, root: &ActionRecord) -> Result<RunDetails, Status> {
    let run = engine.require_run(&root.run)?;
    Ok(views::run_details(
        &run,
        root,
        action_details(engine, root)?,
    ))
}

/// Reads a protobuf file behind a `file://` URI; None if it does not exist.
fn read_message<M: Message + Default>(uri: &str, what: &str) -> Result<Option<M>, Status> {
    let path = uri_to_path(uri)
        .map_err(|e| Status::failed_precondition(format!("cannot read the {what}: {e}")))?;
    let Some(bytes) = read_optional(&path)
        .map_err(|e| Status::internal(format!("read the {what} from {}: {e}", path.display())))?
    else {
        return Ok(None);
    };
    M::decode(bytes.as_slice()).map(Some).map_err(|e| {
        Status::data_loss(format!(
            "the {what} at {} is not a valid message: {e}",
            path.display()
        ))
    })
}

/// An action's inputs, and its outputs once it succeeded, with where each was read from.
pub struct ActionData {
    pub inputs: Option<Inputs>,
    pub outputs: Option<Outputs>,
    pub inputs_uri: String,
    pub outputs_uri: String,
}

/// The input file of an action: offloaded inputs arrive as the directory holding inputs.pb.
pub fn inputs_file_uri(input_uri: &str) -> String {
    if input_uri.ends_with(".pb") {
        input_uri.to_string()
    } else {
        crate::layout::join_uri(input_uri, "inputs.pb")
    }
}

fn decode_inline<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, Status> {
    M::decode(bytes)
        .map_err(|e| Status::data_loss(format!("the recorded {what} are not valid: {e}")))
}

/// An action's inputs and outputs: from the files its URIs name, or, for a local run's
/// actions, from the copies recorded with them.
/// The name a condition's value has among its action's outputs (a single output's name).
pub const CONDITION_OUTPUT: &str = "o0";

pub fn action_data(record: &ActionRecord, store: &Store) -> Result<ActionData, Status> {
    let mut data = ActionData {
        inputs: None,
        outputs: None,
        inputs_uri: String::new(),
        outputs_uri: String::new(),
    };
    if let Some(value) = crate::views::condition_value(record) {
        // A condition's output is the value it was signalled with, kept inline.
        data.outputs = Some(Outputs {
            literals: vec![NamedLiteral {
                name: CONDITION_OUTPUT.into(),
                value: Some(value),
            }],
            ..Default::default()
        });
    } else if record.input_uri.is_empty() || record.output_uri.is_none() {
        let (inputs, outputs) = store
            .inline_data(record.seq)
            .map_err(|e| internal("read recorded inputs and outputs", e))?;
        if let Some(bytes) = inputs {
            data.inputs = Some(decode_inline(&bytes, "inputs")?);
        }
        if let Some(bytes) = outputs {
            data.outputs = Some(decode_inline(&bytes, "outputs")?);
        }
    }
    if !record.input_uri.is_empty() {
        let uri = inputs_file_uri(&record.input_uri);
        data.inputs = read_message::<Inputs>(&uri, "inputs")?;
        if data.inputs.is_some() {
            data.inputs_uri = uri;
        }
    }
    let succeeded = matches!(
        record.phase,
        ActionPhase::Succeeded | ActionPhase::Recovered
    );
    if let (Some(output_uri), true) = (&record.output_uri, succeeded) {
        let uri = outputs_file_uri(output_uri);
        data.outputs = read_message::<Outputs>(&uri, "outputs")?;
        if data.outputs.is_some() {
            data.outputs_uri = uri;
        }
    }
    Ok(data)
}

fn reason_or_default(reason: Option<String>) -> String {
    reason
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_ABORT_REASON.to_string())
}

#[tonic::async_trait]
impl RunService for RunsApi {
    async fn create_run(
        &self,
        request: Request<CreateRunRequest>,
    ) -> Result<Response<CreateRunResponse>, Status> {
        let engine = &self.engine;
        let request =
            validate::create_run(request.into_inner(), |id| tasks::deployed_spec(engine, id))?;
        let root = self.engine.create_run(request).await?;
        Ok(Response::new(CreateRunResponse {
            run: Some(views::run_summary(None, &root)),
        }))
    }

    async fn abort_run(
        &self,
        request: Request<AbortRunRequest>,
    ) -> Result<Response<AbortRunResponse>, Status> {
        let request = request.into_inner();
        let run = validate::run_id(request.run_id.as_ref(), "run_id")?;
        self.engine
            .abort_run(&run, &reason_or_default(request.reason))?;
        Ok(Response::new(AbortRunResponse {}))
    }

    async fn get_run_details(
        &self,
        request: Request<GetRunDetailsRequest>,
    ) -> Result<Response<GetRunDetailsResponse>, Status> {
        let run = validate::run_id(request.into_inner().run_id.as_ref(), "run_id")?;
        self.engine.require_run(&run)?;
        let root = self.action(&run, ROOT_ACTION)?;
        Ok(Response::new(GetRunDetailsResponse {
            details: Some(run_details(&self.engine, &root)?),
        }))
    }

    type WatchRunDetailsStream = ServerStream<WatchRunDetailsResponse>;

    async fn watch_run_details(
        &self,
        request: Request<WatchRunDetailsRequest>,
    ) -> Result<Response<Self::WatchRunDetailsStream>, Status> {
        let run = validate::run_id(request.into_inner().run_id.as_ref(), "run_id")?;
        self.engine.require_run(&run)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(streams::action_changes(
            self.engine.clone(),
            run,
            ROOT_ACTION.to_string(),
            tx,
            |engine, root| {
                Ok(WatchRunDetailsResponse {
                    details: Some(run_details(engine, root)?),
                })
            },
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_action_details(
        &self,
        request: Request<GetActionDetailsRequest>,
    ) -> Result<Response<GetActionDetailsResponse>, Status> {
        let (run, name) =
            validate::action_id(request.into_inner().action_id.as_ref(), "action_id")?;
        let record = self.action(&run, &name)?;
        Ok(Response::new(GetActionDetailsResponse {
            details: Some(action_details(&self.engine, &record)?),
        }))
    }

    type WatchActionDetailsStream = ServerStream<WatchActionDetailsResponse>;

    async fn watch_action_details(
        &self,
        request: Request<WatchActionDetailsRequest>,
    ) -> Result<Response<Self::WatchActionDetailsStream>, Status> {
        let (run, name) =
            validate::action_id(request.into_inner().action_id.as_ref(), "action_id")?;
        self.action(&run, &name)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(streams::action_changes(
            self.engine.clone(),
            run,
            name,
            tx,
            |engine, record| {
                Ok(WatchActionDetailsResponse {
                    details: Some(action_details(engine, record)?),
                })
            },
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_action_data(
        &self,
        request: Request<GetActionDataRequest>,
    ) -> Result<Response<GetActionDataResponse>, Status> {
        let (run, name) =
            validate::action_id(request.into_inner().action_id.as_ref(), "action_id")?;
        let record = self.action(&run, &name)?;
        let data = action_data(&record, &self.engine.store)?;
        let (inputs, outputs) = (data.inputs, data.outputs);
        Ok(Response::new(GetActionDataResponse { inputs, outputs }))
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let request = request.into_inner();
        let query = Query::parse(
            Listed::Runs,
            request.request.as_ref(),
            &identity::local_subject(),
        )?;
        let mut filter = validate::run_filter(&request);
        filter.paused_only = request.paused_actions_only;
        let rows = self
            .engine
            .store
            .list_runs(&filter, &query)
            .map_err(|e| internal("list runs", e))?;
        Ok(Response::new(ListRunsResponse {
            token: query.next_token(rows.len(), rows.last().map(|(_, root)| root)),
            runs: rows
                .iter()
                .map(|(run, root)| views::run_summary(Some(run), root))
                .collect(),
        }))
    }

    type WatchRunsStream = ServerStream<WatchRunsResponse>;

    async fn watch_runs(
        &self,
        _request: Request<WatchRunsRequest>,
    ) -> Result<Response<Self::WatchRunsStream>, Status> {
        Err(unsupported("WatchRuns"))
    }

    async fn list_actions(
        &self,
        request: Request<ListActionsRequest>,
    ) -> Result<Response<ListActionsResponse>, Status> {
        let request = request.into_inner();
        let run = validate::run_id(request.run_id.as_ref(), "run_id")?;
        let query = Query::parse(
            Listed::Actions,
            request.request.as_ref(),
            &identity::local_subject(),
        )?;
        self.engine.require_run(&run)?;
        let actions = self
            .engine
            .store
            .list_actions(&run, &query)
            .map_err(|e| internal("list actions", e))?;
        Ok(Response::new(ListActionsResponse {
            token: query.next_token(actions.len(), actions.last()),
            actions: actions.iter().map(views::action_summary).collect(),
        }))
    }

    type WatchActionsStream = ServerStream<WatchActionsResponse>;

    async fn watch_actions(
        &self,
        request: Request<WatchActionsRequest>,
    ) -> Result<Response<Self::WatchActionsStream>, Status> {
        let request = request.into_inner();
        let run = validate::run_id(request.run_id.as_ref(), "run_id")?;
        let filter = ActionFilter::parse(&request.filter)?;
        self.engine.require_run(&run)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(action_watch::run_actions(
            self.engine.clone(),
            run,
            filter,
            tx,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type WatchClusterEventsStream = ServerStream<WatchClusterEventsResponse>;

    async fn watch_cluster_events(
        &self,
        _request: Request<WatchClusterEventsRequest>,
    ) -> Result<Response<Self::WatchClusterEventsStream>, Status> {
        Err(unsupported("WatchClusterEvents"))
    }

    async fn abort_action(
        &self,
        request: Request<AbortActionRequest>,
    ) -> Result<Response<AbortActionResponse>, Status> {
        let request = request.into_inner();
        let (run, name) = validate::action_id(request.action_id.as_ref(), "action_id")?;
        self.engine
            .abort_action(&run, &name, &reason_or_default(Some(request.reason)))?;
        Ok(Response::new(AbortActionResponse {}))
    }

    async fn signal_event(
        &self,
        request: Request<SignalEventRequest>,
    ) -> Result<Response<SignalEventResponse>, Status> {
        let request = request.into_inner();
        let (run, name) = validate::action_id(request.action_id.as_ref(), "action_id")?;
        let value = validate::event_payload(request.payload)?;
        self.engine
            .signal(&run, &name, Some(&request.parent_action_name), &value)?;
        Ok(Response::new(SignalEventResponse {}))
    }

    type WatchGroupsStream = ServerStream<WatchGroupsResponse>;

    async fn watch_groups(
        &self,
        _request: Request<WatchGroupsRequest>,
    ) -> Result<Response<Self::WatchGroupsStream>, Status> {
        Err(unsupported("WatchGroups"))
    }

    async fn get_action_data_ur_is(
        &self,
        _request: Request<GetActionDataUrIsRequest>,
    ) -> Result<Response<GetActionDataUrIsResponse>, Status> {
        Err(unsupported("GetActionDataURIs"))
    }

    async fn get_action_log_context(
        &self,
        _request: Request<GetActionLogContextRequest>,
    ) -> Result<Response<GetActionLogContextResponse>, Status> {
        Err(unsupported("GetActionLogContext"))
    }
}
