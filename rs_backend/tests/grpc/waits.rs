//! Actions that wait without a process, over gRPC: conditions survive a restart (a timeout
//! keeps counting from their creation) and end with the value they are signalled with; sleep
//! tasks wait out their duration, across a restart too.

use flyteidl2::flyteidl::actions::{action, Action, EnqueueRequest, SignalRequest};
use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::core::{literal_type, LiteralType, SimpleType};
use flyteidl2::flyteidl::task::Inputs;
use flyteidl2::flyteidl::workflow::{
    action_details, event_payload, ConditionAction, EventPayload, GetActionDataRequest,
    SignalEventRequest,
};
use flyteidl2::google::protobuf::Duration as PbDuration;
use tonic::Code;

use crate::common::*;

fn condition(name: &str, ty: SimpleType, timeout_ms: Option<i64>) -> ConditionAction {
    ConditionAction {
        name: name.into(),
        r#type: Some(LiteralType {
            r#type: Some(literal_type::Type::Simple(ty as i32)),
            ..Default::default()
        }),
        prompt: "go?".into(),
        timeout: timeout_ms.map(|ms| PbDuration {
            seconds: ms / 1000,
            nanos: i32::try_from(ms % 1000 * 1_000_000).unwrap_or_default(),
        }),
        ..Default::default()
    }
}

async fn declare(h: &mut Harness, run: &str, name: &str, spec: ConditionAction) {
    h.actions
        .enqueue(EnqueueRequest {
            action: Some(Action {
                action_id: Some(action_id(run, name)),
                parent_action_name: Some("a0".into()),
                input_uri: format!("file://{}/{name}-inputs.pb", h.dir.path().display()),
                spec: Some(action::Spec::Condition(spec)),
                ..Default::default()
            }),
            run_spec: None,
        })
        .await
        .expect("enqueue condition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_wait_across_a_restart_and_end_with_their_signal() {
    let mut h = Harness::start().await;
    let root = h.task("hold").arg("--release", "root");
    h.create_run("r", &root, Inputs::default()).await;
    h.wait_running("r", "a0").await;
    declare(
        &mut h,
        "r",
        "gate",
        condition("gate", SimpleType::Integer, None),
    )
    .await;
    declare(
        &mut h,
        "r",
        "soon",
        condition("soon", SimpleType::Boolean, Some(1500)),
    )
    .await;
    let waiting = h.details("r", "gate").await;
    assert_eq!(phase_of(&waiting), ActionPhase::Paused);
    assert!(matches!(
        waiting.spec,
        Some(action_details::Spec::Condition(ref c)) if c.name == "gate"
    ));

    // The backend dies; the conditions keep waiting in the new one.
    h.backend.take().expect("backend").abandon().await;
    h.restart(|_| {}).await;
    let timed_out = h.wait_terminal("r", "soon").await;
    assert_eq!(phase_of(&timed_out), ActionPhase::TimedOut);
    match timed_out.result {
        Some(action_details::Result::ErrorInfo(e)) => assert_eq!(e.code, "ConditionTimedOut"),
        other => panic!("a timed-out condition carries its error, got {other:?}"),
    }
    assert_eq!(phase_of(&h.details("r", "gate").await), ActionPhase::Paused);

    // A wrong type, a task and an unknown action are refused; the right value ends it.
    let signal = |name: &str, value: event_payload::Value| SignalEventRequest {
        action_id: Some(action_id("r", name)),
        parent_action_name: "a0".into(),
        payload: Some(EventPayload { value: Some(value) }),
    };
    let wrong = h
        .runs
        .signal_event(signal("gate", event_payload::Value::BoolValue(true)))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let task = h
        .runs
        .signal_event(SignalEventRequest {
            parent_action_name: String::new(),
            ..signal("a0", event_payload::Value::IntValue(1))
        })
        .await
        .unwrap_err();
    assert_eq!(task.code(), Code::FailedPrecondition);
    // Under another parent, the condition is not found.
    let elsewhere = h
        .runs
        .signal_event(SignalEventRequest {
            parent_action_name: "a1".into(),
            ..signal("gate", event_payload::Value::IntValue(1))
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    let missing = h
        .runs
        .signal_event(signal("nope", event_payload::Value::IntValue(1)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let no_value = h
        .actions
        .signal(SignalRequest {
            action_id: Some(action_id("r", "gate")),
            parent_action_name: "a0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_value.code(), Code::InvalidArgument);
    h.runs
        .signal_event(signal("gate", event_payload::Value::IntValue(7)))
        .await
        .expect("signal");
    let late = h
        .runs
        .signal_event(signal("soon", event_payload::Value::BoolValue(true)))
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);

    let signalled = h.wait_terminal("r", "gate").await;
    assert_eq!(phase_of(&signalled), ActionPhase::Succeeded);
    let value = match signalled.result {
        Some(action_details::Result::SignalInfo(info)) => info.output.expect("signalled value"),
        other => panic!("a signalled condition carries its value, got {other:?}"),
    };
    let data = h
        .runs
        .get_action_data(GetActionDataRequest {
            action_id: Some(action_id("r", "gate")),
        })
        .await
        .expect("action data")
        .into_inner();
    let outputs = data.outputs.expect("outputs");
    assert_eq!(outputs.literals.len(), 1);
    assert_eq!(outputs.literals[0].value.as_ref(), Some(&value));
    h.release("root");
    h.wait_terminal("r", "a0").await;
}

/// A `core-sleep` task of `seconds`: the backend waits, runs no process, and keeps waiting
/// across a restart for what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_tasks_wait_without_a_process_across_a_restart() {
    use flyteidl2::flyteidl::core::{
        literal, primitive, scalar, Literal, Primitive, Scalar, TypedInterface, Variable,
        VariableEntry, VariableMap,
    };
    use flyteidl2::flyteidl::task::NamedLiteral;
    use flyteidl2::flyteidl::workflow::{create_run_request, CreateRunRequest};

    let mut h = Harness::start().await;
    // The program does not exist: it would fail at once if anything tried to run it.
    let mut spec = h.task("succeed").spec();
    let template = spec.task_template.as_mut().expect("template");
    template.r#type = "core-sleep".into();
    if let Some(flyteidl2::flyteidl::core::task_template::Target::Container(c)) =
        template.target.as_mut()
    {
        c.args = vec!["/nonexistent/program".into()];
    }
    template.interface = Some(TypedInterface {
        inputs: Some(VariableMap {
            variables: vec![VariableEntry {
                key: "duration".into(),
                value: Some(Variable {
                    r#type: Some(LiteralType {
                        r#type: Some(literal_type::Type::Simple(SimpleType::Duration as i32)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }],
        }),
        outputs: None,
    });
    let inputs = |seconds: i64| Inputs {
        literals: vec![NamedLiteral {
            name: "duration".into(),
            value: Some(Literal {
                value: Some(literal::Value::Scalar(Box::new(Scalar {
                    value: Some(scalar::Value::Primitive(Primitive {
                        value: Some(primitive::Value::Duration(PbDuration { seconds, nanos: 0 })),
                    })),
                }))),
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    for (name, seconds) in [("nap", 2), ("bad", -1)] {
        h.runs
            .create_run(CreateRunRequest {
                id: Some(create_run_request::Id::RunId(run_id(name))),
                task: Some(create_run_request::Task::TaskSpec(spec.clone())),
                input_wrapper: Some(create_run_request::InputWrapper::Inputs(inputs(seconds))),
                ..Default::default()
            })
            .await
            .expect("create run");
    }
    let bad = h.wait_terminal("bad", "a0").await;
    assert_eq!(phase_of(&bad), ActionPhase::Failed);
    match bad.result {
        Some(action_details::Result::ErrorInfo(e)) => {
            assert_eq!(e.code, "BadTaskSpecification");
            assert!(e.message.contains("must be non-negative"), "{}", e.message);
        }
        other => panic!("a bad sleep carries its error, got {other:?}"),
    }
    h.wait_running("nap", "a0").await;
    h.backend.take().expect("backend").abandon().await;
    h.restart(|_| {}).await;
    let done = h.wait_terminal("nap", "a0").await;
    assert_eq!(phase_of(&done), ActionPhase::Succeeded);
    // One attempt: the restart neither lost it nor started another.
    assert_eq!(done.attempts.len(), 1);
}
