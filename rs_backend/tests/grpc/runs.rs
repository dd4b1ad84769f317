use flyteidl2::flyteidl::actions::{
    watch_for_updates_request, AbortRequest, EnqueueRequest, SignalRequest, UpdateRequest,
    WatchForUpdatesRequest,
};
use flyteidl2::flyteidl::common::{ActionPhase, ListRequest, ProjectIdentifier};
use flyteidl2::flyteidl::core::KeyValuePair;
use flyteidl2::flyteidl::task::{Envs, Inputs, Outputs, RunSpec, TaskSpec};
use flyteidl2::flyteidl::workflow::{
    action_metadata, create_run_request, list_runs_request, CreateRunRequest, GetActionDataRequest,
    GetActionDetailsRequest, GetRunDetailsRequest, ListActionsRequest, ListRunsRequest,
    TailLogsRequest, WatchRunDetailsRequest, WatchRunsRequest,
};
use tonic::Code;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_succeeds_with_outputs_and_details() {
    let mut h = Harness::start().await;
    let outputs = Outputs {
        literals: vec![int_literal("o0", 42)],
        ..Default::default()
    };
    let inputs = Inputs {
        literals: vec![int_literal("x", 7)],
        ..Default::default()
    };
    let task = h
        .task("succeed")
        .env("FAKE_OUTPUTS", &outputs_hex(&outputs))
        .arg("--input", "{{.input}}")
        .arg("--input-prefix", "{{.inputPrefix}}")
        .arg("--raw", "{{.rawOutputDataPrefix}}")
        .arg("--names", "{{.runName}}/{{.actionName}}/{{.attempt}}");
    let created = h
        .runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id("r1"))),
            task: Some(create_run_request::Task::TaskSpec(task.spec())),
            input_wrapper: Some(create_run_request::InputWrapper::Inputs(inputs.clone())),
            run_spec: Some(RunSpec {
                envs: Some(Envs {
                    values: vec![KeyValuePair {
                        key: "EXTRA_FROM_RUN".into(),
                        value: "run".into(),
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create run")
        .into_inner();
    let action = created.run.and_then(|r| r.action).expect("root action");
    assert_eq!(action.id.as_ref().map(|i| i.name.as_str()), Some("a0"));
    match action.metadata.and_then(|m| m.spec) {
        Some(action_metadata::Spec::Task(task)) => {
            assert_eq!(task.short_name, "fake_task");
            assert_eq!(task.task_type, "python");
            assert_eq!(task.id.map(|i| i.name), Some("tests.fake_task".into()));
        }
        other => panic!("unexpected metadata {other:?}"),
    }

    let details = h.wait_terminal("r1", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Succeeded);
    let status = details.status.expect("status");
    assert_eq!(status.attempts, 1);
    assert!(status.start_time.is_some() && status.end_time.is_some());
    assert!(status.duration_ms.is_some());
    let attempt = &details.attempts[0];
    assert_eq!(attempt.attempt, 1);
    assert!(attempt.logs_available);
    assert!(attempt.log_info[0]
        .uri
        .ends_with("/logs/_/proj/dev/r1/a0/1.log"));
    assert!(attempt.log_context.is_some());
    assert!(attempt
        .outputs
        .as_ref()
        .is_some_and(|o| o.output_uri.ends_with("/r1/a0/1/")));

    let data = h
        .runs
        .get_action_data(GetActionDataRequest {
            action_id: Some(action_id("r1", "a0")),
        })
        .await
        .expect("action data")
        .into_inner();
    assert_eq!(data.inputs, Some(inputs));
    assert_eq!(data.outputs, Some(outputs));

    let run_details = h
        .runs
        .get_run_details(GetRunDetailsRequest {
            run_id: Some(run_id("r1")),
        })
        .await
        .expect("run details")
        .into_inner()
        .details
        .expect("details");
    assert!(run_details
        .run_spec
        .as_ref()
        .is_some_and(|s| s.run_start_time.is_some()));
    assert_eq!(
        run_details.action.as_ref().map(phase_of),
        Some(ActionPhase::Succeeded)
    );

    // The runtime contract: placeholders, environment, work dir.
    let data_dir = std::fs::canonicalize(h.data_dir()).expect("data dir");
    let base = format!("file://{}/data/_/proj/dev/r1/", data_dir.display());
    let env = std::fs::read_to_string(data_dir.join("data/_/proj/dev/r1/a0/1/env.txt"))
        .expect("env dump");
    for expected in [
        format!("_U_EP_OVERRIDE={}", h.endpoint()),
        "_U_INSECURE=true".to_string(),
        "_U_USE_ACTIONS=1".to_string(),
        "_U_ORG_NAME=local".to_string(),
        "FLYTE_INTERNAL_EXECUTION_PROJECT=proj".to_string(),
        "FLYTE_INTERNAL_EXECUTION_DOMAIN=dev".to_string(),
        "FLYTE_INTERNAL_EXECUTION_ID=r1".to_string(),
        "RUN_NAME=r1".to_string(),
        "ACTION_NAME=a0".to_string(),
        "FLYTE_ATTEMPT_NUMBER=0".to_string(),
        "_F_PN=r1-a0-0".to_string(),
        "_FLYTE_ATTEMPT=1".to_string(),
        format!("_U_RUN_BASE={base}"),
        format!("_FLYTE_DATA_DIR={}", data_dir.display()),
        "PYTHONUNBUFFERED=1".to_string(),
        "EXTRA_FROM_CONFIG=yes".to_string(),
        "EXTRA_FROM_RUN=run".to_string(),
        format!("CWD={}/work/r1/a0/1", data_dir.display()),
        format!("--out|{base}a0/1/"),
        format!("--input|{base}a0/inputs.pb"),
        format!("--input-prefix|{base}a0"),
        format!("--raw|{base}raw/a0/1/"),
        "--names|r1/a0/1".to_string(),
    ] {
        assert!(env.contains(&expected), "missing {expected:?} in\n{env}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ids_are_generated_or_unique() {
    let mut h = Harness::start().await;
    let task = h.task("succeed");
    let created = h
        .runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::ProjectId(ProjectIdentifier {
                organization: String::new(),
                domain: "dev".into(),
                name: "proj".into(),
            })),
            task: Some(create_run_request::Task::TaskSpec(task.spec())),
            ..Default::default()
        })
        .await
        .expect("create run")
        .into_inner();
    let name = created
        .run
        .and_then(|r| r.action)
        .and_then(|a| a.id)
        .and_then(|i| i.run)
        .map(|r| r.name)
        .expect("generated name");
    assert_eq!(name.len(), 20);
    assert!(name.starts_with('r'));
    h.wait_terminal(&name, "a0").await;

    h.create_run("dup", &task, Inputs::default()).await;
    let again = h
        .runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id("dup"))),
            task: Some(create_run_request::Task::TaskSpec(task.spec())),
            ..Default::default()
        })
        .await
        .expect_err("duplicate run");
    assert_eq!(again.code(), Code::AlreadyExists);
    h.wait_terminal("dup", "a0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_actions_are_listed() {
    let mut h = Harness::start().await;
    let task = h.task("succeed");
    for name in ["l1", "l2", "l3"] {
        h.create_run(name, &task, Inputs::default()).await;
    }
    let page = |limit, token: &str| ListRunsRequest {
        request: Some(ListRequest {
            limit,
            token: token.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let names = |runs: &[flyteidl2::flyteidl::workflow::Run]| -> Vec<String> {
        runs.iter()
            .filter_map(|r| {
                r.action
                    .as_ref()?
                    .id
                    .as_ref()?
                    .run
                    .as_ref()
                    .map(|r| r.name.clone())
            })
            .collect()
    };
    let first = h
        .runs
        .list_runs(page(2, ""))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(&first.runs), vec!["l3", "l2"]);
    assert!(!first.token.is_empty());
    let second = h
        .runs
        .list_runs(page(2, &first.token))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(&second.runs), vec!["l1"]);
    assert!(second.token.is_empty());

    let elsewhere = h
        .runs
        .list_runs(ListRunsRequest {
            scope_by: Some(list_runs_request::ScopeBy::ProjectId(ProjectIdentifier {
                organization: String::new(),
                domain: "dev".into(),
                name: "other".into(),
            })),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(elsewhere.runs.is_empty());

    let actions = h
        .runs
        .list_actions(ListActionsRequest {
            run_id: Some(run_id("l2")),
            request: None,
        })
        .await
        .expect("list actions")
        .into_inner();
    assert_eq!(actions.actions.len(), 1);
    for name in ["l1", "l2", "l3"] {
        h.wait_terminal(name, "a0").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_run_details_ends_when_the_run_ends() {
    let mut h = Harness::start().await;
    let task = h.task("hold").arg("--release", "w");
    h.create_run("w1", &task, Inputs::default()).await;
    let mut stream = h
        .runs
        .watch_run_details(WatchRunDetailsRequest {
            run_id: Some(run_id("w1")),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = stream.message().await.expect("first").expect("message");
    let phase = first
        .details
        .as_ref()
        .and_then(|d| d.action.as_ref())
        .map(phase_of);
    assert!(matches!(
        phase,
        Some(ActionPhase::Queued | ActionPhase::Running)
    ));
    h.release("w");
    let mut last = None;
    while let Some(message) = stream.message().await.expect("stream") {
        last = message.details.and_then(|d| d.action).map(|a| phase_of(&a));
    }
    assert_eq!(last, Some(ActionPhase::Succeeded));
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.expect_err("request must fail").code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_rejected_clearly() {
    let mut h = Harness::start().await;
    let task = h.task("succeed");

    assert_eq!(
        code(h.runs.create_run(CreateRunRequest::default()).await),
        Code::InvalidArgument
    );
    let mut bad_name = run_id("x");
    bad_name.name = "../escape".into();
    assert_eq!(
        code(
            h.runs
                .create_run(CreateRunRequest {
                    id: Some(create_run_request::Id::RunId(bad_name)),
                    task: Some(create_run_request::Task::TaskSpec(task.spec())),
                    ..Default::default()
                })
                .await
        ),
        Code::InvalidArgument
    );
    let no_container = TaskSpec {
        task_template: Some(Default::default()),
        ..Default::default()
    };
    let status = h
        .runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id("nc"))),
            task: Some(create_run_request::Task::TaskSpec(no_container)),
            ..Default::default()
        })
        .await
        .expect_err("no container");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("container"),
        "{}",
        status.message()
    );
    let bad_memory = task.clone().memory("a lot");
    assert_eq!(
        code(
            h.runs
                .create_run(CreateRunRequest {
                    id: Some(create_run_request::Id::RunId(run_id("bm"))),
                    task: Some(create_run_request::Task::TaskSpec(bad_memory.spec())),
                    ..Default::default()
                })
                .await
        ),
        Code::InvalidArgument
    );

    assert_eq!(
        code(h.actions.enqueue(EnqueueRequest::default()).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.actions
                .watch_for_updates(WatchForUpdatesRequest { filter: None })
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(h.actions.update(UpdateRequest::default()).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(h.actions.abort(AbortRequest::default()).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.runs
                .get_action_details(GetActionDetailsRequest { action_id: None })
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.runs
                .get_run_details(GetRunDetailsRequest { run_id: None })
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(h.logs.tail_logs(TailLogsRequest::default()).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(
            h.runs
                .list_runs(ListRunsRequest {
                    request: Some(ListRequest {
                        token: "not-a-token".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
        ),
        Code::InvalidArgument
    );

    // Well-formed but about things that do not exist.
    assert_eq!(
        code(
            h.runs
                .get_run_details(GetRunDetailsRequest {
                    run_id: Some(run_id("missing")),
                })
                .await
        ),
        Code::NotFound
    );
    h.create_run(
        "present",
        &h.task("hold").arg("--release", "p"),
        Inputs::default(),
    )
    .await;
    let mut child = task.clone();
    child.args.push("--x".into());
    let enqueue = |run: &str, parent: &str| EnqueueRequest {
        action: Some(flyteidl2::flyteidl::actions::Action {
            action_id: Some(action_id(run, "c1")),
            parent_action_name: Some(parent.into()),
            input_uri: "file:///nowhere/inputs.pb".into(),
            spec: Some(flyteidl2::flyteidl::actions::action::Spec::Task(
                child.action(),
            )),
            ..Default::default()
        }),
        run_spec: None,
    };
    assert_eq!(
        code(h.actions.enqueue(enqueue("missing", "a0")).await),
        Code::NotFound
    );
    assert_eq!(
        code(h.actions.enqueue(enqueue("present", "nope")).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            h.actions
                .watch_for_updates(WatchForUpdatesRequest {
                    filter: Some(watch_for_updates_request::Filter::ParentActionId(
                        action_id("present", "nope")
                    )),
                })
                .await
        ),
        Code::NotFound
    );

    // Methods the embedded backend does not offer say so.
    let status = h
        .runs
        .watch_runs(WatchRunsRequest::default())
        .await
        .expect_err("unsupported");
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(status.message().contains("embedded backend"));
    assert_eq!(
        code(h.actions.signal(SignalRequest::default()).await),
        Code::Unimplemented
    );

    // And the backend still works.
    h.release("p");
    let done = h.wait_terminal("present", "a0").await;
    assert_eq!(phase_of(&done), ActionPhase::Succeeded);
}
