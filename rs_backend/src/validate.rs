//! Turning wire requests into validated values. Every rejection is INVALID_ARGUMENT (or
//! UNIMPLEMENTED for valid requests this backend does not serve) with a message naming the field.

use flyteidl2::flyteidl::actions::{action, EnqueueRequest, UpdateRequest};
use flyteidl2::flyteidl::common::{ActionIdentifier, RunIdentifier};
use flyteidl2::flyteidl::core::parameter;
use flyteidl2::flyteidl::core::Literal;
use flyteidl2::flyteidl::task::{Inputs, NamedLiteral, TaskIdentifier, TaskSpec};
use flyteidl2::flyteidl::workflow::{
    create_run_request, list_runs_request, ConditionAction, CreateRunRequest, EventPayload,
    ListRunsRequest, TaskAction,
};
use tonic::Status;

use crate::clock::{now_ms, timestamp, timestamp_ms};
use crate::engine::{ActionRequest, ActionSpecRequest, RunInputs, RunRequest, StatusReport};
use crate::executor::spec::ExecSpec;
use crate::layout::{check_raw_data_prefix, is_file_uri};
use crate::names::{self, check_segment, generate_run_name, RunKey};
use crate::phase;
use crate::store::RunFilter;

/// Longest accepted group name (groups are labels, not path segments).
const MAX_GROUP_LEN: usize = 1024;

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// Characters of a client's value an error message repeats: enough to recognise it, never so
/// much that the reply gets large.
const ECHOED_CHARS: usize = 64;

/// A client's value as an error message may quote it.
pub fn clip(value: &str) -> String {
    match value.char_indices().nth(ECHOED_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_string(),
    }
}

pub fn run_id(id: Option<&RunIdentifier>, field: &str) -> Result<RunKey, Status> {
    let id = id.ok_or_else(|| invalid(format!("{field} is required")))?;
    RunKey::from_proto(id, field).map_err(invalid)
}

pub fn action_id(id: Option<&ActionIdentifier>, field: &str) -> Result<(RunKey, String), Status> {
    let id = id.ok_or_else(|| invalid(format!("{field} is required")))?;
    names::action_key(id, field).map_err(invalid)
}

/// Checks a CreateRun request; `deployed` finds the spec of a deployed task (`task_id`).
/// Inline inputs with the task's declared defaults added for the inputs not given, as a
/// cluster fills them in (offloaded inputs are taken as they are).
pub fn with_defaults(mut inputs: Inputs, spec: &TaskSpec) -> Inputs {
    for default in &spec.default_inputs {
        let given = inputs.literals.iter().any(|l| l.name == default.name);
        let value = default.parameter.as_ref().and_then(|p| match &p.behavior {
            Some(parameter::Behavior::Default(literal)) => Some(literal.clone()),
            _ => None,
        });
        if let (false, Some(value)) = (given, value) {
            inputs.literals.push(NamedLiteral {
                name: default.name.clone(),
                value: Some(value),
            });
        }
    }
    inputs
}

pub fn create_run(
    request: CreateRunRequest,
    deployed: impl FnOnce(&TaskIdentifier) -> Result<TaskSpec, Status>,
) -> Result<RunRequest, Status> {
    let run = match &request.id {
        Some(create_run_request::Id::RunId(id)) => {
            names::check_run_name(&id.name).map_err(|e| invalid(format!("run_id.name: {e}")))?;
            RunKey::from_proto(id, "run_id").map_err(invalid)?
        }
        Some(create_run_request::Id::ProjectId(project)) => {
            check_segment("project_id.organization", &project.organization, false)
                .map_err(invalid)?;
            check_segment("project_id.name", &project.name, false).map_err(invalid)?;
            check_segment("project_id.domain", &project.domain, false).map_err(invalid)?;
            RunKey {
                org: String::new(),
                project: project.name.clone(),
                domain: project.domain.clone(),
                name: generate_run_name(),
            }
        }
        None => return Err(invalid("run_id or project_id is required")),
    };
    let (spec, task_id) = match request.task {
        Some(create_run_request::Task::TaskSpec(spec)) => (spec, None),
        Some(create_run_request::Task::TaskId(id)) => {
            let id = crate::services::tasks::check_task_id(Some(&id), "task_id")?;
            (deployed(&id)?, Some(id))
        }
        Some(create_run_request::Task::TriggerName(_)) => {
            return Err(Status::unimplemented(
                "creating a run from a trigger is not supported by the embedded backend",
            ))
        }
        None => return Err(invalid("task_spec is required")),
    };
    ExecSpec::from_task_spec(&spec).map_err(|e| invalid(format!("task_spec.{e}")))?;
    let inputs = match request.input_wrapper {
        Some(create_run_request::InputWrapper::Inputs(inputs)) => {
            RunInputs::Inline(with_defaults(inputs, &spec))
        }
        Some(create_run_request::InputWrapper::OffloadedInputData(offloaded)) => {
            if offloaded.uri.is_empty() {
                return Err(invalid("offloaded_input_data.uri is required"));
            }
            RunInputs::Offloaded(offloaded.uri)
        }
        None => RunInputs::Inline(with_defaults(Default::default(), &spec)),
    };
    let start_ms = match &request.run_start_time {
        Some(ts) => {
            timestamp_ms(ts).ok_or_else(|| invalid("run_start_time is not a valid timestamp"))?
        }
        None => now_ms(),
    };
    let mut run_spec = request.run_spec.unwrap_or_default();
    if let Some(envs) = &run_spec.envs {
        for (i, pair) in envs.values.iter().enumerate() {
            if pair.key.is_empty() || pair.key.contains(['=', '\0']) || pair.value.contains('\0') {
                return Err(invalid(format!(
                    "run_spec.envs.values[{i}] ({:?}) is not a valid environment variable",
                    pair.key
                )));
            }
        }
    }
    if let Some(raw) = &run_spec.raw_data_storage {
        if !raw.raw_data_prefix.is_empty() {
            check_raw_data_prefix(&raw.raw_data_prefix)
                .map_err(|e| invalid(format!("run_spec.raw_data_storage.raw_data_prefix: {e}")))?;
        }
    }
    check_notifications(&run_spec, "run_spec")?;
    if run_spec.run_start_time.is_none() {
        run_spec.run_start_time = Some(timestamp(start_ms));
    }
    Ok(RunRequest {
        run,
        task: TaskAction {
            id: task_id,
            spec: Some(spec),
            cache_key: None,
            queue: run_spec.queue.clone(),
        },
        inputs,
        run_spec: Some(run_spec),
        trigger: None,
    })
}

pub fn enqueue(request: EnqueueRequest) -> Result<ActionRequest, Status> {
    let action = request
        .action
        .ok_or_else(|| invalid("action is required"))?;
    let (run, name) = action_id(action.action_id.as_ref(), "action.action_id")?;
    let parent = action.parent_action_name.unwrap_or_default();
    if parent.is_empty() {
        return Err(invalid(
            "action.parent_action_name is required: the root action of a run is created by \
             CreateRun",
        ));
    }
    check_segment("action.parent_action_name", &parent, true).map_err(invalid)?;
    if parent == name {
        return Err(invalid("an action cannot be its own parent"));
    }
    if action.group.len() > MAX_GROUP_LEN {
        return Err(invalid(format!(
            "action.group is longer than {MAX_GROUP_LEN} bytes"
        )));
    }
    let run_output_base = if action.run_output_base.is_empty() {
        None
    } else if is_file_uri(&action.run_output_base) {
        Some(action.run_output_base)
    } else {
        return Err(invalid(format!(
            "action.run_output_base {:?} must be an absolute file:// URI: the embedded backend \
             checks attempt outputs on local disk",
            action.run_output_base
        )));
    };
    let spec = match action.spec {
        Some(action::Spec::Task(task)) => {
            ExecSpec::from_task(&task).map_err(|e| invalid(format!("action.task.{e}")))?;
            if action.input_uri.is_empty() {
                return Err(invalid("action.input_uri is required for a task action"));
            }
            ActionSpecRequest::Task(Box::new(task))
        }
        Some(action::Spec::Trace(trace)) => {
            if phase::from_wire(trace.phase).is_none() {
                return Err(invalid(format!(
                    "action.trace.phase must be a known, specified ActionPhase (got {})",
                    trace.phase
                )));
            }
            for (field, ts) in [
                ("start_time", &trace.start_time),
                ("end_time", &trace.end_time),
            ] {
                if let Some(ts) = ts {
                    if timestamp_ms(ts).is_none() {
                        return Err(invalid(format!(
                            "action.trace.{field} is not a valid timestamp"
                        )));
                    }
                }
            }
            ActionSpecRequest::Trace(Box::new(trace))
        }
        Some(action::Spec::Condition(condition)) => {
            check_condition(&condition)?;
            ActionSpecRequest::Condition(Box::new(condition))
        }
        None => return Err(invalid("action must have a task, a trace or a condition")),
    };
    Ok(ActionRequest {
        run,
        name,
        parent,
        group: action.group,
        input_uri: action.input_uri,
        run_output_base,
        spec,
    })
}

/// A condition's signal payload (RunService.SignalEvent) as the literal it is stored as.
pub fn event_payload(payload: Option<EventPayload>) -> Result<Literal, Status> {
    use flyteidl2::flyteidl::core::primitive;
    use flyteidl2::flyteidl::workflow::event_payload::Value;

    let value = payload
        .and_then(|p| p.value)
        .ok_or_else(|| invalid("payload must hold a bool, int, float or string value"))?;
    let primitive = match value {
        Value::BoolValue(b) => primitive::Value::Boolean(b),
        Value::IntValue(i) => primitive::Value::Integer(i),
        Value::FloatValue(f) => primitive::Value::FloatValue(f),
        Value::StringValue(s) => primitive::Value::StringValue(s),
    };
    Ok(crate::engine::condition::primitive_literal(primitive))
}

fn check_condition(condition: &ConditionAction) -> Result<(), Status> {
    if condition.name.is_empty() {
        return Err(invalid("action.condition.name is required"));
    }
    if crate::engine::condition::simple_type(condition.r#type.as_ref()).is_none() {
        return Err(invalid(
            "action.condition.type must be the simple type BOOLEAN, INTEGER, FLOAT or STRING",
        ));
    }
    if let Some(hook) = &condition.webhook {
        let url = reqwest::Url::parse(&hook.url).map_err(|e| {
            invalid(format!(
                "action.condition.webhook.url {:?} is not a URL: {e}",
                hook.url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "action.condition.webhook.url {:?} must be an http or https URL",
                hook.url
            )));
        }
    }
    Ok(())
}

pub fn update(request: UpdateRequest) -> Result<StatusReport, Status> {
    let (run, name) = action_id(request.action_id.as_ref(), "action_id")?;
    let status = request
        .status
        .ok_or_else(|| invalid("status is required"))?;
    let phase = phase::from_wire(status.phase).ok_or_else(|| {
        invalid(format!(
            "status.phase must be a known, specified ActionPhase (got {})",
            status.phase
        ))
    })?;
    let time = |field: &str, ts: &Option<flyteidl2::google::protobuf::Timestamp>| match ts {
        Some(ts) => timestamp_ms(ts)
            .map(Some)
            .ok_or_else(|| invalid(format!("status.{field} is not a valid timestamp"))),
        None => Ok(None),
    };
    Ok(StatusReport {
        run,
        name,
        attempt: request.attempt,
        phase,
        started_ms: time("start_time", &status.start_time)?,
        ended_ms: time("end_time", &status.end_time)?,
    })
}

/// The runs a ListRuns scope selects.
pub fn run_filter(request: &ListRunsRequest) -> RunFilter {
    let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
    match &request.scope_by {
        None => RunFilter::default(),
        // Runs are not kept per org (see RunKey): every org sees every run.
        Some(list_runs_request::ScopeBy::Org(_)) => RunFilter::default(),
        Some(list_runs_request::ScopeBy::ProjectId(project)) => RunFilter {
            org: None,
            project: Some(project.name.clone()),
            domain: non_empty(&project.domain),
            ..Default::default()
        },
        Some(list_runs_request::ScopeBy::TriggerName(trigger)) => RunFilter {
            project: Some(trigger.project.clone()),
            domain: Some(trigger.domain.clone()),
            trigger: Some((trigger.task_name.clone(), trigger.name.clone())),
            ..Default::default()
        },
        Some(list_runs_request::ScopeBy::TaskName(task)) => RunFilter {
            org: None,
            project: Some(task.project.clone()),
            domain: Some(task.domain.clone()),
            task_name: Some(task.name.clone()),
            ..Default::default()
        },
        Some(list_runs_request::ScopeBy::TaskId(task)) => RunFilter {
            org: None,
            project: Some(task.project.clone()),
            domain: Some(task.domain.clone()),
            task_name: Some(task.name.clone()),
            task_version: Some(task.version.clone()),
            ..Default::default()
        },
    }
}

/// A run's notifications must be ones this backend can deliver (see the notify module).
pub fn check_notifications(
    run_spec: &flyteidl2::flyteidl::task::RunSpec,
    field: &str,
) -> Result<(), Status> {
    use flyteidl2::flyteidl::task::run_spec::NotificationSettings;

    match &run_spec.notification_settings {
        Some(NotificationSettings::NotificationRuleName(name)) => Err(invalid(format!(
            "{field}.notification_rule_name {name:?}: this backend has no named notification \
             rules; give the rules inline"
        ))),
        Some(NotificationSettings::NotificationRules(rules)) => {
            crate::notify::check_rules(rules, false).map_err(|e| invalid(format!("{field}.{e}")))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::spec::tests::task_with;
    use flyteidl2::flyteidl::actions::Action;
    use flyteidl2::flyteidl::common::ActionPhase;
    use flyteidl2::flyteidl::core::Container;
    use flyteidl2::flyteidl::workflow::{ActionStatus, TraceAction};
    use tonic::Code;

    fn program() -> Container {
        Container {
            args: vec!["flyte-action".into()],
            ..Default::default()
        }
    }

    fn run_identifier() -> RunIdentifier {
        RunIdentifier {
            org: "o".into(),
            project: "p".into(),
            domain: "d".into(),
            name: "r1".into(),
        }
    }

    fn good_action() -> Action {
        Action {
            action_id: Some(ActionIdentifier {
                run: Some(run_identifier()),
                name: "child".into(),
            }),
            parent_action_name: Some("a0".into()),
            input_uri: "file:///tmp/in.pb".into(),
            spec: Some(action::Spec::Task(task_with(program(), None))),
            ..Default::default()
        }
    }

    fn enqueue_error(action: Option<Action>) -> Status {
        match enqueue(EnqueueRequest {
            action,
            run_spec: None,
        }) {
            Ok(_) => panic!("accepted"),
            Err(status) => status,
        }
    }

    #[test]
    fn enqueue_accepts_a_good_request() {
        let request = enqueue(EnqueueRequest {
            action: Some(good_action()),
            run_spec: None,
        })
        .unwrap();
        assert_eq!(request.name, "child");
        assert_eq!(request.parent, "a0");
        assert!(request.run_output_base.is_none());
    }

    #[test]
    fn enqueue_rejects_malformed_requests() {
        assert!(enqueue_error(None).message().contains("action is required"));

        let mut no_id = good_action();
        no_id.action_id = None;
        assert!(enqueue_error(Some(no_id))
            .message()
            .contains("action.action_id is required"));

        let mut empty_name = good_action();
        if let Some(id) = empty_name.action_id.as_mut() {
            id.name.clear();
        }
        assert!(enqueue_error(Some(empty_name))
            .message()
            .contains("action.action_id.name is required"));

        let mut traversal = good_action();
        if let Some(id) = traversal.action_id.as_mut() {
            id.name = "../../etc".into();
        }
        assert_eq!(enqueue_error(Some(traversal)).code(), Code::InvalidArgument);

        let mut no_parent = good_action();
        no_parent.parent_action_name = None;
        assert!(enqueue_error(Some(no_parent))
            .message()
            .contains("parent_action_name is required"));

        let mut no_spec = good_action();
        no_spec.spec = None;
        assert!(enqueue_error(Some(no_spec))
            .message()
            .contains("a task, a trace or a condition"));

        let mut no_input = good_action();
        no_input.input_uri.clear();
        assert!(enqueue_error(Some(no_input))
            .message()
            .contains("input_uri is required"));

        let mut no_container = good_action();
        no_container.spec = Some(action::Spec::Task(TaskAction::default()));
        assert!(enqueue_error(Some(no_container))
            .message()
            .contains("action.task.spec is required"));

        let mut remote_base = good_action();
        remote_base.run_output_base = "s3://bucket/run/".into();
        assert!(enqueue_error(Some(remote_base))
            .message()
            .contains("run_output_base"));

        let mut bad_trace = good_action();
        bad_trace.spec = Some(action::Spec::Trace(TraceAction {
            name: "t".into(),
            phase: 0,
            ..Default::default()
        }));
        assert!(enqueue_error(Some(bad_trace))
            .message()
            .contains("trace.phase"));

        use flyteidl2::flyteidl::core::{literal_type, LiteralType, SimpleType};
        use flyteidl2::flyteidl::workflow::ConditionWebhook;
        let condition = |c: ConditionAction| {
            let mut action = good_action();
            action.spec = Some(action::Spec::Condition(c));
            action
        };
        let typed = |t: SimpleType| ConditionAction {
            name: "approval".into(),
            r#type: Some(LiteralType {
                r#type: Some(literal_type::Type::Simple(t as i32)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(enqueue(EnqueueRequest {
            action: Some(condition(typed(SimpleType::Boolean))),
            ..Default::default()
        })
        .is_ok());
        assert!(enqueue_error(Some(condition(ConditionAction::default())))
            .message()
            .contains("condition.name is required"));
        assert!(enqueue_error(Some(condition(typed(SimpleType::Struct))))
            .message()
            .contains("BOOLEAN, INTEGER, FLOAT or STRING"));
        let hooked = |url: &str| ConditionAction {
            webhook: Some(ConditionWebhook {
                url: url.into(),
                payload: None,
            }),
            ..typed(SimpleType::Integer)
        };
        assert!(enqueue_error(Some(condition(hooked("file:///etc/passwd"))))
            .message()
            .contains("must be an http or https URL"));
        assert!(enqueue_error(Some(condition(hooked("not a url"))))
            .message()
            .contains("is not a URL"));
    }

    #[test]
    fn create_run_validation() {
        let nothing_deployed = |_: &TaskIdentifier| -> Result<TaskSpec, Status> {
            Err(Status::not_found("nothing is deployed"))
        };
        let missing_id = create_run(CreateRunRequest::default(), nothing_deployed).unwrap_err();
        assert!(missing_id.message().contains("run_id or project_id"));

        let no_task = create_run(
            CreateRunRequest {
                id: Some(create_run_request::Id::RunId(run_identifier())),
                ..Default::default()
            },
            nothing_deployed,
        )
        .unwrap_err();
        assert!(no_task.message().contains("task_spec is required"));

        let incomplete_id = create_run(
            CreateRunRequest {
                id: Some(create_run_request::Id::RunId(run_identifier())),
                task: Some(create_run_request::Task::TaskId(Default::default())),
                ..Default::default()
            },
            nothing_deployed,
        )
        .unwrap_err();
        assert!(incomplete_id
            .message()
            .contains("task_id.project is required"));
        let deployed_id = TaskIdentifier {
            org: String::new(),
            project: "p".into(),
            domain: "d".into(),
            name: "env.t".into(),
            version: "v1".into(),
        };
        let missing = create_run(
            CreateRunRequest {
                id: Some(create_run_request::Id::RunId(run_identifier())),
                task: Some(create_run_request::Task::TaskId(deployed_id.clone())),
                ..Default::default()
            },
            nothing_deployed,
        )
        .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);

        // A deployed task's declared defaults fill the inputs that were not given.
        let mut deployed = task_with(program(), None).spec.unwrap();
        deployed
            .default_inputs
            .push(flyteidl2::flyteidl::task::NamedParameter {
                name: "x".into(),
                parameter: Some(flyteidl2::flyteidl::core::Parameter {
                    behavior: Some(parameter::Behavior::Default(Default::default())),
                    ..Default::default()
                }),
            });
        let by_id = create_run(
            CreateRunRequest {
                id: Some(create_run_request::Id::RunId(run_identifier())),
                task: Some(create_run_request::Task::TaskId(deployed_id.clone())),
                ..Default::default()
            },
            |_| Ok(deployed.clone()),
        )
        .unwrap();
        assert_eq!(by_id.task.id, Some(deployed_id));
        match by_id.inputs {
            RunInputs::Inline(inputs) => assert_eq!(inputs.literals[0].name, "x"),
            RunInputs::Offloaded(uri) => panic!("inline inputs expected, got {uri}"),
        }

        let spec = task_with(program(), None).spec.unwrap();
        let generated = create_run(
            CreateRunRequest {
                id: Some(create_run_request::Id::ProjectId(Default::default())),
                task: Some(create_run_request::Task::TaskSpec(spec)),
                ..Default::default()
            },
            nothing_deployed,
        )
        .unwrap();
        assert_eq!(generated.run.name.len(), 20);
        let bad_raw = create_run(
            CreateRunRequest {
                id: Some(create_run_request::Id::ProjectId(Default::default())),
                task: Some(create_run_request::Task::TaskSpec(
                    task_with(program(), None).spec.unwrap(),
                )),
                run_spec: Some(flyteidl2::flyteidl::task::RunSpec {
                    raw_data_storage: Some(flyteidl2::flyteidl::task::RawDataStorage {
                        raw_data_prefix: "ftp://nowhere/x".into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            nothing_deployed,
        )
        .unwrap_err();
        assert_eq!(bad_raw.code(), Code::InvalidArgument);
        assert!(bad_raw.message().contains("raw_data_prefix"));
        assert!(generated.run_spec.and_then(|s| s.run_start_time).is_some());
    }

    #[test]
    fn update_validation() {
        let no_status = update(UpdateRequest {
            action_id: Some(good_action().action_id.unwrap()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(no_status.message().contains("status is required"));
        let bad_phase = update(UpdateRequest {
            action_id: Some(good_action().action_id.unwrap()),
            status: Some(ActionStatus {
                phase: 42,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap_err();
        assert!(bad_phase.message().contains("status.phase"));
        let ok = update(UpdateRequest {
            action_id: Some(good_action().action_id.unwrap()),
            status: Some(ActionStatus {
                phase: ActionPhase::Running as i32,
                ..Default::default()
            }),
            attempt: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.phase, ActionPhase::Running);
    }
}
