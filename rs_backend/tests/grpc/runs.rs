use flyteidl2::flyteidl::actions::{
    watch_for_updates_request, AbortRequest, EnqueueRequest, SignalRequest, UpdateRequest,
    WatchForUpdatesRequest,
};
use flyteidl2::flyteidl::common::{
    filter::Function, sort::Direction, ActionPhase, Filter, ListRequest, ProjectIdentifier,
};
use flyteidl2::flyteidl::core::KeyValuePair;
use flyteidl2::flyteidl::task::{Envs, Inputs, Labels, Outputs, RunSpec, TaskSpec};
use flyteidl2::flyteidl::workflow::{
    action_metadata, create_run_request, list_runs_request, CreateRunRequest, GetActionDataRequest,
    GetActionDetailsRequest, GetRunDetailsRequest, ListActionsRequest, ListRunsRequest,
    ListRunsResponse, TailLogsRequest, WatchRunDetailsRequest, WatchRunsRequest,
};
use tonic::{Code, Status};

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
    // A signal names the condition it resolves.
    assert_eq!(
        code(h.actions.signal(SignalRequest::default()).await),
        Code::InvalidArgument
    );

    // And the backend still works.
    h.release("p");
    let done = h.wait_terminal("present", "a0").await;
    assert_eq!(phase_of(&done), ActionPhase::Succeeded);
}

fn run_names(runs: &[flyteidl2::flyteidl::workflow::Run]) -> Vec<String> {
    runs.iter()
        .filter_map(|r| Some(r.action.as_ref()?.id.as_ref()?.run.as_ref()?.name.clone()))
        .collect()
}

async fn list_runs(h: &mut Harness, request: ListRequest) -> Result<ListRunsResponse, Status> {
    h.runs
        .list_runs(ListRunsRequest {
            request: Some(request),
            scope_by: Some(list_runs_request::ScopeBy::ProjectId(ProjectIdentifier {
                organization: String::new(),
                domain: "dev".into(),
                name: "proj".into(),
            })),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// A run of `task` under another task name, with labels.
async fn create_listed_run(
    h: &mut Harness,
    name: &str,
    task_name: &str,
    task: &Task,
    labels: &[(&str, &str)],
) {
    let mut spec = task.spec();
    if let Some(id) = spec.task_template.as_mut().and_then(|t| t.id.as_mut()) {
        id.name = task_name.into();
    }
    h.runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id(name))),
            task: Some(create_run_request::Task::TaskSpec(spec)),
            run_spec: Some(RunSpec {
                labels: Some(Labels {
                    values: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("create run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_filtered_sorted_and_paged() {
    let mut h = Harness::start().await;
    let succeeds = h.task("succeed");
    let fails = h.task("fail-user").env("FAKE_ERROR", &user_error_hex());
    create_listed_run(&mut h, "fa", "pkg.alpha", &succeeds, &[("team", "ml")]).await;
    create_listed_run(
        &mut h,
        "fb",
        "pkg.beta",
        &fails,
        &[("team", "ops"), ("tier", "gold")],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = utc_now_iso();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    create_listed_run(&mut h, "fc", "pkg.alpha", &succeeds, &[]).await;
    create_listed_run(&mut h, "fd", "pkg.beta", &fails, &[("team", "ml")]).await;
    for name in ["fa", "fb", "fc", "fd"] {
        h.wait_terminal(name, "a0").await;
    }
    let all_ended = utc_now_iso();
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() }.to_string();

    let cases: Vec<(Vec<Filter>, Vec<&str>)> = vec![
        (vec![], vec!["fa", "fb", "fc", "fd"]),
        (
            vec![list_filter("phase", Function::Equal, &["5"])],
            vec!["fa", "fc"],
        ),
        (
            vec![list_filter("phase", Function::Equal, &["FAILED"])],
            vec!["fb", "fd"],
        ),
        (
            vec![list_filter("phase", Function::ValueIn, &["5", "6"])],
            vec!["fa", "fb", "fc", "fd"],
        ),
        (
            vec![list_filter("phase", Function::ValueIn, &["1", "4"])],
            vec![],
        ),
        (
            vec![list_filter("task_name", Function::Equal, &["pkg.alpha"])],
            vec!["fa", "fc"],
        ),
        (
            vec![
                list_filter("task_name", Function::Equal, &["pkg.beta"]),
                list_filter("task_version", Function::Equal, &["v1"]),
            ],
            vec!["fb", "fd"],
        ),
        (
            vec![list_filter(
                "created_at",
                Function::GreaterThanOrEqual,
                &[&between],
            )],
            vec!["fc", "fd"],
        ),
        (
            vec![list_filter("created_at", Function::LessThan, &[&between])],
            vec!["fa", "fb"],
        ),
        (
            vec![list_filter("updated_at", Function::LessThan, &[&all_ended])],
            vec!["fa", "fb", "fc", "fd"],
        ),
        (
            vec![list_filter(
                "updated_at",
                Function::GreaterThanOrEqual,
                &[&all_ended],
            )],
            vec![],
        ),
        (
            vec![list_filter("labels.team", Function::Equal, &["ml"])],
            vec!["fa", "fd"],
        ),
        (
            vec![list_filter("labels.tier", Function::Exists, &[])],
            vec!["fb"],
        ),
        (
            vec![
                list_filter("labels.team", Function::Equal, &["ml"]),
                list_filter("phase", Function::Equal, &["6"]),
            ],
            vec!["fd"],
        ),
        (
            vec![list_filter("name", Function::ValueIn, &["fb", "fc", "zz"])],
            vec!["fb", "fc"],
        ),
        (
            vec![list_filter("created_by", Function::Equal, &[&me])],
            vec!["fa", "fb", "fc", "fd"],
        ),
        (
            vec![list_filter(
                "created_by",
                Function::Equal,
                &["someone-else"],
            )],
            vec![],
        ),
    ];
    for (filters, expected) in cases {
        let described = format!("{filters:?}");
        let listed = list_runs(&mut h, sdk_list_request(filters, None))
            .await
            .unwrap_or_else(|e| panic!("{described}: {e}"));
        assert_eq!(run_names(&listed.runs), expected, "{described}");
        assert!(listed.token.is_empty(), "{described}");
    }

    let sorted = |key: &str, direction| sdk_list_request(vec![], Some(list_sort(key, direction)));
    let newest_first = list_runs(&mut h, sorted("created_at", Direction::Descending))
        .await
        .expect("list");
    assert_eq!(run_names(&newest_first.runs), ["fd", "fc", "fb", "fa"]);
    let by_phase = list_runs(&mut h, sorted("phase", Direction::Descending))
        .await
        .expect("list");
    assert_eq!(run_names(&by_phase.runs), ["fd", "fb", "fc", "fa"]);

    // Pages of a sorted, filtered listing, as a client follows the tokens.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let mut request = sdk_list_request(
            vec![list_filter("phase", Function::ValueIn, &["5", "6"])],
            None,
        );
        request.limit = 3;
        request.token = token;
        request.sort_by_fields = vec![list_sort("name", Direction::Descending)];
        let page = list_runs(&mut h, request).await.expect("list");
        seen.extend(run_names(&page.runs));
        pages += 1;
        token = page.token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["fd", "fc", "fb", "fa"]);
    assert_eq!(pages, 2);
    // Label filters are checked outside SQL and still fill every page.
    let mut request = sdk_list_request(
        vec![list_filter("labels.team", Function::Exists, &[])],
        None,
    );
    request.limit = 2;
    let first = list_runs(&mut h, request.clone()).await.expect("list");
    assert_eq!(run_names(&first.runs), ["fa", "fb"]);
    request.token = first.token;
    let second = list_runs(&mut h, request).await.expect("list");
    assert_eq!(run_names(&second.runs), ["fd"]);
    assert!(second.token.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_run_filters_are_rejected_by_name() {
    let mut h = Harness::start().await;
    let cases: Vec<(ListRequest, &str)> = vec![
        (
            sdk_list_request(vec![list_filter("owner", Function::Equal, &["x"])], None),
            "\"owner\"",
        ),
        (
            sdk_list_request(vec![list_filter("phase", Function::Contains, &["5"])], None),
            "CONTAINS does not apply to phases",
        ),
        (
            sdk_list_request(vec![list_filter("phase", Function::Equal, &["DONE"])], None),
            "\"DONE\" is not an action phase",
        ),
        (
            sdk_list_request(
                vec![list_filter(
                    "created_at",
                    Function::LessThan,
                    &["2026-01-02"],
                )],
                None,
            ),
            "RFC 3339",
        ),
        (
            sdk_list_request(
                vec![list_filter("task_name", Function::Equal, &["a", "b"])],
                None,
            ),
            "EQUAL takes exactly one value",
        ),
        (
            sdk_list_request(vec![list_filter("name", Function::EndsWith, &["a"])], None),
            "ENDS_WITH",
        ),
        (
            sdk_list_request(
                vec![list_filter("labels.k", Function::Exists, &["v"])],
                None,
            ),
            "EXISTS takes no values",
        ),
        (
            sdk_list_request(vec![], Some(list_sort("duration", Direction::Ascending))),
            "\"duration\"",
        ),
        (
            ListRequest {
                token: "17".into(),
                ..Default::default()
            },
            "not a page token issued by this backend",
        ),
    ];
    for (request, expected) in cases {
        let status = list_runs(&mut h, request)
            .await
            .expect_err("must be rejected");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status.message().contains(expected),
            "expected {expected:?} in {:?}",
            status.message()
        );
    }
}
