//! Creating runs and enqueueing actions.

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::task::{Inputs, RunSpec};
use flyteidl2::flyteidl::workflow::{ConditionAction, TaskAction, TraceAction};
use std::sync::Arc;

use prost::Message;
use tonic::Status;

use super::{internal, Engine};
use crate::cache_gate::Admission;
use crate::clock::{now_ms, timestamp_ms};
use crate::datafile::write_atomic;
use crate::layout::{file_uri, outputs_file_uri, uri_to_path};
use crate::names::RunKey;
use crate::phase;
use crate::store::{ActionKind, ActionRecord, NewAction, RunRecord, RunTrigger};

/// Name of the root action of every run.
pub const ROOT_ACTION: &str = "a0";

/// A validated CreateRun.
#[derive(Debug)]
pub struct RunRequest {
    pub run: RunKey,
    pub task: TaskAction,
    pub inputs: RunInputs,
    pub run_spec: Option<RunSpec>,
    /// The trigger starting the run, when one is.
    pub trigger: Option<RunTrigger>,
}

#[derive(Debug)]
pub enum RunInputs {
    /// Written by the backend to `<run base>a0/inputs.pb`.
    Inline(Inputs),
    /// Already stored by the client at this URI.
    Offloaded(String),
}

/// A validated Enqueue.
#[derive(Debug)]
pub struct ActionRequest {
    pub run: RunKey,
    pub name: String,
    pub parent: String,
    pub group: String,
    pub input_uri: String,
    /// A `file://` base URI, or None for the run's own base.
    pub run_output_base: Option<String>,
    pub spec: ActionSpecRequest,
}

#[derive(Debug)]
pub enum ActionSpecRequest {
    Task(Box<TaskAction>),
    Trace(Box<TraceAction>),
    Condition(Box<ConditionAction>),
}

/// Name and version of the task an action runs, from its id or its template's id.
fn task_identity(task: &TaskAction) -> (String, String) {
    if let Some(id) = &task.id {
        return (id.name.clone(), id.version.clone());
    }
    task.spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.id.as_ref())
        .map(|id| (id.name.clone(), id.version.clone()))
        .unwrap_or_default()
}

fn normalized_base(uri: &str) -> String {
    if uri.ends_with('/') {
        uri.to_string()
    } else {
        format!("{uri}/")
    }
}

impl Engine {
    pub async fn create_run(&self, request: RunRequest) -> Result<ActionRecord, Status> {
        let _serialized = self.create_run_lock.lock().await;
        let run = &request.run;
        if self
            .store
            .run(run)
            .map_err(|e| internal("look up run", e))?
            .is_some()
        {
            return Err(Status::already_exists(format!("run {run} already exists")));
        }
        let input_uri = match &request.inputs {
            RunInputs::Inline(inputs) => {
                let path = self.layout.root_inputs_path(run);
                write_atomic(&path, &inputs.encode_to_vec()).map_err(|e| {
                    Status::internal(format!("write the run's inputs to {}: {e}", path.display()))
                })?;
                file_uri(&path)
            }
            RunInputs::Offloaded(uri) => uri.clone(),
        };
        let (task_name, task_version) = task_identity(&request.task);
        let root = NewAction {
            run: run.clone(),
            name: ROOT_ACTION.to_string(),
            parent: None,
            group: String::new(),
            kind: ActionKind::Task,
            spec: request.task.encode_to_vec(),
            task_name,
            task_version,
            input_uri,
            run_output_base: self.layout.run_base_uri(run),
            phase: ActionPhase::Queued,
            attempts: 0,
            output_uri: None,
            started_ms: None,
            ended_ms: None,
            cache_hit: false,
        };
        let run_spec = request.run_spec.as_ref().map(|spec| {
            let mut stored = spec.clone();
            crate::run_env::seal(&self.sealer, run, &mut stored);
            stored.encode_to_vec()
        });
        let record = self
            .store
            .create_run(
                run_spec.as_deref(),
                request.trigger.as_ref(),
                &root,
                now_ms(),
            )
            .map_err(|e| internal("create run", e))?
            .ok_or_else(|| Status::already_exists(format!("run {run} already exists")))?;
        self.publish(record.clone());
        self.queue_attempt(&record);
        Ok(record)
    }

    /// Records an action. Enqueueing an id that exists changes nothing and succeeds: a parent
    /// re-executed after a crash re-enqueues the children it already started.
    pub fn enqueue(self: &Arc<Self>, request: ActionRequest) -> Result<(), Status> {
        let run = &request.run;
        let run_record = self.require_run(run)?;
        if self
            .store
            .action(run, &request.name)
            .map_err(|e| internal("look up action", e))?
            .is_some()
        {
            return Ok(());
        }
        let parent = self
            .store
            .action(run, &request.parent)
            .map_err(|e| internal("look up parent action", e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "parent action {:?} does not exist in run {run}",
                    request.parent
                ))
            })?;
        if parent.kind != ActionKind::Task {
            return Err(Status::invalid_argument(format!(
                "parent action {:?} is a {}; only tasks have children",
                request.parent,
                parent.kind.as_str()
            )));
        }
        if phase::is_terminal(parent.phase) {
            return Err(Status::failed_precondition(format!(
                "parent action {:?} already finished ({}); it cannot start new actions",
                request.parent,
                parent.phase.as_str_name()
            )));
        }

        let run_output_base = match &request.run_output_base {
            Some(base) => normalized_base(base),
            None => self.layout.run_base_uri(run),
        };
        let mut action = NewAction {
            run: run.clone(),
            name: request.name.clone(),
            parent: Some(request.parent.clone()),
            group: request.group.clone(),
            kind: ActionKind::Task,
            spec: Vec::new(),
            task_name: String::new(),
            task_version: String::new(),
            input_uri: request.input_uri.clone(),
            run_output_base,
            phase: ActionPhase::Queued,
            attempts: 0,
            output_uri: None,
            started_ms: None,
            ended_ms: None,
            cache_hit: false,
        };
        let now = now_ms();
        match &request.spec {
            ActionSpecRequest::Task(task) => {
                let (name, version) = task_identity(task);
                action.spec = task.encode_to_vec();
                action.task_name = name;
                action.task_version = version;
                let place = (run, request.name.as_str());
                if let Some(output_uri) = self.cached_outputs(&run_record, place, task) {
                    action.phase = ActionPhase::Succeeded;
                    action.output_uri = Some(output_uri);
                    action.started_ms = Some(now);
                    action.ended_ms = Some(now);
                    action.cache_hit = true;
                }
            }
            ActionSpecRequest::Trace(trace) => {
                // Validation guarantees a known, specified phase.
                let trace_phase = phase::from_wire(trace.phase).unwrap_or(ActionPhase::Succeeded);
                action.kind = ActionKind::Trace;
                action.spec = trace.encode_to_vec();
                action.task_name = trace.name.clone();
                action.phase = trace_phase;
                action.attempts = 1;
                action.started_ms = Some(
                    trace
                        .start_time
                        .as_ref()
                        .and_then(timestamp_ms)
                        .unwrap_or(now),
                );
                if phase::is_terminal(trace_phase) {
                    action.ended_ms = Some(
                        trace
                            .end_time
                            .as_ref()
                            .and_then(timestamp_ms)
                            .unwrap_or(now),
                    );
                }
                action.output_uri = trace
                    .outputs
                    .as_ref()
                    .map(|o| o.output_uri.clone())
                    .filter(|u| !u.is_empty());
            }
            ActionSpecRequest::Condition(condition) => {
                // Nothing runs: the condition waits, paused, for a signal.
                action.kind = ActionKind::Condition;
                action.spec = condition.encode_to_vec();
                action.task_name = condition.name.clone();
                action.phase = ActionPhase::Paused;
                action.started_ms = Some(now);
            }
        }
        let inserted = self
            .store
            .insert_action(&action, now)
            .map_err(|e| internal("insert action", e))?;
        // None: a concurrent Enqueue of the same id won the race; it is the same action.
        if let Some(record) = inserted {
            let queued = record.kind == ActionKind::Task && record.phase == ActionPhase::Queued;
            let record = self.publish(record);
            if let (true, ActionSpecRequest::Task(task)) = (queued, &request.spec) {
                self.queue_attempt_of(&record, task);
            }
            if record.kind == ActionKind::Condition {
                self.condition_created(&record);
            }
        }
        Ok(())
    }

    /// Outputs a cached task can reuse: its key has an entry whose outputs still exist, and
    /// neither the run nor the task asked to run again.
    /// The outputs of an earlier run of the task with the same inputs, brought into the run
    /// of the action at `place` (run, action) so that its processes, which
    /// see only their own run's data, can read them (see [`crate::data_refs::bring_outputs`]).
    fn cached_outputs(
        &self,
        run: &RunRecord,
        place: (&RunKey, &str),
        task: &TaskAction,
    ) -> Option<String> {
        let key = cache_key(task)?;
        if overwrites_cache(task) || run_overwrites_cache(run) {
            return None;
        }
        let oldest = cache_max_age_ms(task).map(|age| now_ms().saturating_sub(age));
        let output_uri = match self.store.cache_get(key, oldest) {
            Ok(found) => found?,
            Err(err) => {
                tracing::warn!(%err, "cache lookup failed; running the task");
                return None;
            }
        };
        let outputs = uri_to_path(&outputs_file_uri(&output_uri)).ok()?;
        if !outputs.is_file() {
            return None;
        }
        let (key, action) = place;
        // Always in the run's own directory, wherever its parent put its children's outputs.
        let own = self.layout.run_base_dir(key);
        let target = own.join(action).join("cache");
        let refs = self.layout.run_refs_dir(key);
        let shareable = self.layout.shareable();
        let dirs = crate::data_refs::RunDirs {
            own: &own,
            refs: &refs,
            shareable: &shareable,
        };
        match crate::data_refs::bring_outputs(self.layout.root(), &dirs, &output_uri, &target) {
            Ok(brought) => Some(brought),
            Err(err) => {
                tracing::warn!(%err, %action, source = %output_uri, "could not bring cached outputs into the run; running the task");
                None
            }
        }
    }

    /// Queues an action's next attempt, which may wait in the queue no longer than its task's
    /// `max_queued` (`metadata.timeouts.queued_timeout`).
    pub fn queue_attempt(&self, record: &ActionRecord) {
        match crate::views::task_action(record) {
            Some(task) => self.queue_attempt_of(record, &task),
            None => self.scheduler.enqueue(record.seq),
        }
    }

    /// `queue_attempt` for an action whose task is at hand (decoding it again costs more
    /// than the rest of queueing).
    pub fn queue_attempt_of(&self, record: &ActionRecord, task: &TaskAction) {
        let limit = crate::policy::TaskPolicy::from_metadata(
            task.spec
                .as_ref()
                .and_then(|s| s.task_template.as_ref())
                .and_then(|t| t.metadata.as_ref()),
        )
        .ok()
        .and_then(|policy| policy.max_queued);
        if let Some(limit) = limit {
            self.scheduler
                .limit_queue_time(record.seq, record.attempts, limit);
        }
        self.scheduler.enqueue(record.seq);
    }

    /// Whether a queued action may start now. A serialized cached task waits its turn among
    /// the calls with its cache key (it is queued again when the key passes to it); when its
    /// turn comes and an earlier holder filled the cache, it succeeds from the cache instead.
    pub fn cache_turn(&self, record: &ActionRecord, task: &TaskAction) -> bool {
        let serializable = task
            .spec
            .as_ref()
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .is_some_and(|m| m.cache_serializable);
        let Some(key) = cache_key(task).filter(|_| serializable) else {
            return true;
        };
        let who = record.seq as u64;
        if self.cache_gate.enter(key, who, ()) == Admission::Wait {
            return false;
        }
        let run = match self.store.run(&record.run) {
            Ok(Some(run)) => run,
            _ => return true,
        };
        let place = (&record.run, record.name.as_str());
        let Some(output_uri) = self.cached_outputs(&run, place, task) else {
            return true;
        };
        match self
            .store
            .succeed_from_cache(record.seq, &output_uri, now_ms())
        {
            // Publishing the end passes the key on.
            Ok(Some(updated)) => {
                self.publish(updated);
            }
            Ok(None) => {
                if let Some((next, ())) = self.cache_gate.release(who) {
                    self.scheduler.enqueue_soon(next as i64);
                }
            }
            Err(err) => {
                tracing::warn!(%err, action = %record.name, "could not record a cache hit; running the task");
                return true;
            }
        }
        false
    }

    /// Remembers a successful cached task's outputs under its cache key.
    pub fn cache_outputs(&self, record: &ActionRecord) {
        if record.phase != ActionPhase::Succeeded || record.cache_hit {
            return;
        }
        let Some(output_uri) = &record.output_uri else {
            return;
        };
        let Some(task) = crate::views::task_action(record) else {
            return;
        };
        let Some(key) = cache_key(&task) else {
            return;
        };
        if let Err(err) = self
            .store
            .cache_put(key, &record.task_name, output_uri, now_ms())
        {
            tracing::warn!(%err, action = %record.name, "could not record a cache entry");
        }
    }
}

/// Tag with which a task asks to always run and refresh its cache entry (`cache="override"`).
pub const CACHE_OVERRIDE_TAG: &str = "flyte.cache.override";

fn cache_key(task: &TaskAction) -> Option<&str> {
    task.cache_key
        .as_ref()
        .map(|k| k.value.as_str())
        .filter(|k| !k.is_empty())
}

fn run_overwrites_cache(run: &RunRecord) -> bool {
    run.run_spec
        .as_deref()
        .and_then(|bytes| RunSpec::decode(bytes).ok())
        .is_some_and(|spec| {
            #[allow(deprecated)]
            let run_level = spec.overwrite_cache;
            run_level || spec.cache_config.is_some_and(|c| c.overwrite_cache)
        })
}

fn overwrites_cache(task: &TaskAction) -> bool {
    task.spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.tags.get(CACHE_OVERRIDE_TAG))
        .is_some_and(|v| v == "true")
}

/// The oldest cached result the task reuses, in milliseconds (`TaskMetadata.cache_max_age`;
/// unset or zero: any age).
fn cache_max_age_ms(task: &TaskAction) -> Option<i64> {
    let age = task
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.cache_max_age.as_ref())?;
    let ms = age
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(age.nanos) / 1_000_000);
    (ms > 0).then_some(ms)
}
