//! Condition actions over gRPC: they wait without a process, survive a restart (a timeout
//! keeps counting from their creation) and end with the value they are signalled with.

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
