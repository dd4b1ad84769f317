//! Stored records rendered as the flyteidl2 messages clients see.

use flyteidl2::flyteidl::common::{ActionPhase, TriggerIdentifier, TriggerName};
use flyteidl2::flyteidl::core::{
    container_context::ProcessContext, execution_error::ErrorKind, CatalogCacheStatus,
    ContainerContext, ExecutionError, Literal, LogContext, PodLogContext, TaskLog,
};
use flyteidl2::flyteidl::task::{OutputReferences, TaskIdentifier};
use flyteidl2::flyteidl::workflow::{
    self as wf, action_details, action_metadata, error_info, AbortInfo, ActionAttempt,
    ActionDetails, ActionMetadata, ActionStatus, ActionType, ActionUpdate, ConditionActionMetadata,
    ErrorInfo, PhaseTransition, RunSource, SignalInfo, TaskActionMetadata, TraceActionMetadata,
};
use prost::Message;

use crate::clock::timestamp;
use crate::engine::condition::condition_action;
use crate::layout::file_uri;
use crate::store::{ActionKind, ActionRecord, AttemptRecord, RunRecord};

/// The container name reported in log contexts; there is one "container" per attempt.
const CONTAINER_NAME: &str = "main";

pub fn task_action(record: &ActionRecord) -> Option<wf::TaskAction> {
    match record.kind {
        ActionKind::Task => wf::TaskAction::decode(record.spec.as_slice()).ok(),
        ActionKind::Trace | ActionKind::Condition => None,
    }
}

pub fn trace_action(record: &ActionRecord) -> Option<wf::TraceAction> {
    match record.kind {
        ActionKind::Trace => wf::TraceAction::decode(record.spec.as_slice()).ok(),
        ActionKind::Task | ActionKind::Condition => None,
    }
}

pub fn decode_error(bytes: Option<&[u8]>) -> Option<ExecutionError> {
    bytes.map(|b| {
        ExecutionError::decode(b).unwrap_or_else(|err| ExecutionError {
            code: "UndecodableError".into(),
            message: format!("the stored error could not be decoded: {err}"),
            kind: ErrorKind::System as i32,
            ..Default::default()
        })
    })
}

/// The error a client sees for an action: the stored failure, or one describing an abort.
pub fn action_error(record: &ActionRecord) -> Option<ExecutionError> {
    if record.phase == ActionPhase::Aborted {
        return Some(ExecutionError {
            code: "Aborted".into(),
            message: record
                .abort_reason
                .clone()
                .unwrap_or_else(|| "the action was aborted".into()),
            kind: ErrorKind::User as i32,
            ..Default::default()
        });
    }
    decode_error(record.error.as_deref())
}

pub fn action_update(record: &ActionRecord) -> ActionUpdate {
    ActionUpdate {
        action_id: Some(record.run.action_id(&record.name)),
        phase: record.phase as i32,
        error: action_error(record),
        output_uri: record.output_uri.clone().unwrap_or_default(),
        value: condition_value(record),
        address: None,
    }
}

/// A condition's signalled value (conditions carry it inline, never as an outputs file).
pub fn condition_value(record: &ActionRecord) -> Option<Literal> {
    record
        .value
        .as_deref()
        .and_then(|bytes| Literal::decode(bytes).ok())
}

pub fn error_info(error: &ExecutionError) -> ErrorInfo {
    let kind = match ErrorKind::try_from(error.kind) {
        Ok(ErrorKind::User) => error_info::Kind::User,
        Ok(ErrorKind::System) => error_info::Kind::System,
        _ => error_info::Kind::Unspecified,
    };
    ErrorInfo {
        message: error.message.clone(),
        kind: kind as i32,
        code: error.code.clone(),
        gpu_fault: None,
    }
}

fn task_identifier(record: &ActionRecord, action: &wf::TaskAction) -> TaskIdentifier {
    if let Some(id) = &action.id {
        return id.clone();
    }
    let template_id = action
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.id.as_ref());
    match template_id {
        Some(id) => TaskIdentifier {
            org: id.org.clone(),
            project: id.project.clone(),
            domain: id.domain.clone(),
            name: id.name.clone(),
            version: id.version.clone(),
        },
        None => TaskIdentifier {
            org: record.run.org.clone(),
            project: record.run.project.clone(),
            domain: record.run.domain.clone(),
            name: record.task_name.clone(),
            version: record.task_version.clone(),
        },
    }
}

fn task_metadata(record: &ActionRecord, action: &wf::TaskAction) -> TaskActionMetadata {
    let spec = action.spec.as_ref();
    let template = spec.and_then(|s| s.task_template.as_ref());
    let id = task_identifier(record, action);
    let short_name = spec
        .map(|s| s.short_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.name.clone());
    TaskActionMetadata {
        task_type: template.map(|t| t.r#type.clone()).unwrap_or_default(),
        short_name,
        id: Some(id),
        queue: (!action.queue.is_empty()).then(|| action.queue.clone()),
    }
}

pub fn action_metadata(record: &ActionRecord) -> ActionMetadata {
    let mut metadata = ActionMetadata {
        parent: record.parent.clone().unwrap_or_default(),
        group: record.group.clone(),
        ..Default::default()
    };
    match record.kind {
        ActionKind::Task => {
            metadata.action_type = ActionType::Task as i32;
            if let Some(action) = task_action(record) {
                let task = task_metadata(record, &action);
                metadata.funtion_name = task.short_name.clone();
                metadata.environment_name = action
                    .spec
                    .as_ref()
                    .and_then(|s| s.environment.as_ref())
                    .map(|e| e.name.clone())
                    .unwrap_or_default();
                metadata.spec = Some(action_metadata::Spec::Task(task));
            }
        }
        ActionKind::Trace => {
            metadata.action_type = ActionType::Trace as i32;
            let name = trace_action(record)
                .map(|t| t.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| record.name.clone());
            metadata.funtion_name = name.clone();
            metadata.spec = Some(action_metadata::Spec::Trace(TraceActionMetadata { name }));
        }
        ActionKind::Condition => {
            metadata.action_type = ActionType::Condition as i32;
            let condition = condition_action(record).unwrap_or_default();
            metadata.funtion_name = condition.name.clone();
            metadata.spec = Some(action_metadata::Spec::Condition(ConditionActionMetadata {
                name: condition.name,
                r#type: condition.r#type,
            }));
        }
    }
    metadata
}

pub fn action_status(record: &ActionRecord) -> ActionStatus {
    let duration_ms = match (record.started_ms, record.ended_ms) {
        (Some(start), Some(end)) => u64::try_from(end.saturating_sub(start)).ok(),
        _ => None,
    };
    ActionStatus {
        phase: record.phase as i32,
        start_time: record.started_ms.map(timestamp),
        end_time: record.ended_ms.map(timestamp),
        attempts: record.attempts,
        cache_status: if record.cache_hit {
            CatalogCacheStatus::CacheHit as i32
        } else {
            CatalogCacheStatus::CacheDisabled as i32
        },
        duration_ms,
    }
}

pub fn action_summary(record: &ActionRecord) -> wf::Action {
    wf::Action {
        id: Some(record.run.action_id(&record.name)),
        metadata: Some(action_metadata(record)),
        status: Some(action_status(record)),
    }
}

/// Marks a root action's metadata with the trigger that started its run.
fn with_trigger(metadata: &mut ActionMetadata, root: &ActionRecord, run: &RunRecord) {
    if let Some(trigger) = &run.trigger {
        metadata.trigger_name = trigger.name.clone();
        metadata.trigger_id = Some(TriggerIdentifier {
            name: Some(TriggerName {
                org: root.run.org.clone(),
                project: root.run.project.clone(),
                domain: root.run.domain.clone(),
                name: trigger.name.clone(),
                task_name: trigger.task_name.clone(),
            }),
            revision: u64::try_from(trigger.revision).unwrap_or_default(),
        });
        metadata.source = RunSource::ScheduleTrigger as i32;
    }
}

/// A run as listed; `run` (when at hand) tells whether a trigger started it.
pub fn run_summary(run: Option<&RunRecord>, root: &ActionRecord) -> wf::Run {
    let mut action = action_summary(root);
    if let (Some(run), Some(metadata)) = (run, action.metadata.as_mut()) {
        with_trigger(metadata, root, run);
    }
    wf::Run {
        action: Some(action),
        labels: crate::listing::labels_of(run),
    }
}

/// Names the attempt the way a pod would be named, so log tooling has something stable.
fn pod_name(record: &ActionRecord, attempt: u32) -> String {
    format!("{}-{}-{}", record.run.name, record.name, attempt)
}

fn attempt_view(record: &ActionRecord, attempt: &AttemptRecord) -> ActionAttempt {
    let start = timestamp(attempt.started_ms);
    let end = attempt.ended_ms.map(timestamp);
    let pod = pod_name(record, attempt.attempt);
    let log = TaskLog {
        uri: file_uri(std::path::Path::new(&attempt.log_path)),
        name: format!("Logs (attempt {})", attempt.attempt),
        ready: true,
        show_while_pending: true,
        ..Default::default()
    };
    let log_context = LogContext {
        pods: vec![PodLogContext {
            namespace: format!("{}-{}", record.run.project, record.run.domain),
            pod_name: pod.clone(),
            containers: vec![ContainerContext {
                container_name: CONTAINER_NAME.into(),
                process: Some(ProcessContext {
                    container_start_time: Some(start),
                    container_end_time: end,
                }),
            }],
            primary_container_name: CONTAINER_NAME.into(),
            init_containers: Vec::new(),
        }],
        primary_pod_name: pod,
        ..Default::default()
    };
    ActionAttempt {
        phase: attempt.phase as i32,
        phase_transitions: phase_transitions(record, attempt),
        start_time: Some(start),
        end_time: end,
        error_info: decode_error(attempt.error.as_deref()).map(|e| error_info(&e)),
        attempt: attempt.attempt,
        log_info: vec![log],
        outputs: attempt
            .output_uri
            .clone()
            .map(|output_uri| OutputReferences {
                output_uri,
                report_uri: String::new(),
            }),
        logs_available: true,
        cluster: "local".into(),
        log_context: Some(log_context),
        ..Default::default()
    }
}

/// The phases an attempt went through: the first waited in the queue from the action's
/// creation (later ones start as soon as the one before failed), then ran until it ended.
fn phase_transitions(record: &ActionRecord, attempt: &AttemptRecord) -> Vec<PhaseTransition> {
    let mut out = Vec::new();
    if attempt.attempt == 1 {
        out.push(PhaseTransition {
            phase: ActionPhase::Queued as i32,
            start_time: Some(timestamp(record.created_ms.min(attempt.started_ms))),
            end_time: Some(timestamp(attempt.started_ms)),
        });
    }
    out.push(PhaseTransition {
        phase: ActionPhase::Running as i32,
        start_time: Some(timestamp(attempt.started_ms)),
        end_time: attempt.ended_ms.map(timestamp),
    });
    out
}

/// A trace was never executed here; its single "attempt" mirrors what the client reported.
fn trace_attempt(record: &ActionRecord, trace: &wf::TraceAction) -> ActionAttempt {
    ActionAttempt {
        phase: record.phase as i32,
        start_time: trace.start_time.or(record.started_ms.map(timestamp)),
        end_time: trace.end_time.or(record.ended_ms.map(timestamp)),
        attempt: 1,
        outputs: trace.outputs.clone(),
        logs_available: false,
        ..Default::default()
    }
}

/// A condition never runs; its single "attempt" is its wait.
fn condition_attempt(record: &ActionRecord) -> ActionAttempt {
    ActionAttempt {
        phase: record.phase as i32,
        start_time: Some(timestamp(record.started_ms.unwrap_or(record.created_ms))),
        end_time: record.ended_ms.map(timestamp),
        error_info: action_error(record)
            .filter(|_| record.phase != ActionPhase::Aborted)
            .map(|e| error_info(&e)),
        attempt: 1,
        logs_available: false,
        ..Default::default()
    }
}

pub fn action_details(record: &ActionRecord, attempts: &[AttemptRecord]) -> ActionDetails {
    let result = if record.phase == ActionPhase::Aborted {
        Some(action_details::Result::AbortInfo(AbortInfo {
            reason: record.abort_reason.clone().unwrap_or_default(),
            aborted_by: None,
        }))
    } else if let Some(output) = condition_value(record) {
        Some(action_details::Result::SignalInfo(SignalInfo {
            signalled_by: None,
            output: Some(output),
        }))
    } else {
        decode_error(record.error.as_deref())
            .map(|e| action_details::Result::ErrorInfo(error_info(&e)))
    };
    let (spec, attempt_views) = match record.kind {
        ActionKind::Task => (
            task_action(record)
                .and_then(|a| a.spec)
                .map(action_details::Spec::Task),
            attempts.iter().map(|a| attempt_view(record, a)).collect(),
        ),
        ActionKind::Trace => {
            let trace = trace_action(record).unwrap_or_default();
            (
                trace.spec.clone().map(action_details::Spec::Trace),
                vec![trace_attempt(record, &trace)],
            )
        }
        ActionKind::Condition => (
            condition_action(record).map(action_details::Spec::Condition),
            vec![condition_attempt(record)],
        ),
    };
    ActionDetails {
        id: Some(record.run.action_id(&record.name)),
        metadata: Some(action_metadata(record)),
        status: Some(action_status(record)),
        attempts: attempt_views,
        result,
        spec,
    }
}

pub fn run_details(
    run: &RunRecord,
    root_record: &ActionRecord,
    mut root: ActionDetails,
) -> wf::RunDetails {
    if let Some(metadata) = root.metadata.as_mut() {
        with_trigger(metadata, root_record, run);
    }
    wf::RunDetails {
        run_spec: run
            .run_spec
            .as_deref()
            .and_then(|b| flyteidl2::flyteidl::task::RunSpec::decode(b).ok())
            .map(|mut spec| {
                crate::run_env::hide(&mut spec);
                spec
            }),
        action: Some(root),
    }
}
