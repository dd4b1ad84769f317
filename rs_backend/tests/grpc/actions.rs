use flyteidl2::flyteidl::actions::{
    action, watch_for_updates_request, watch_for_updates_response, Action, EnqueueRequest,
    UpdateRequest, WatchForUpdatesRequest, WatchForUpdatesResponse,
};
use flyteidl2::flyteidl::common::{
    filter::Function, sort::Direction, ActionPhase, Filter, ListRequest,
};
use flyteidl2::flyteidl::task::{Inputs, OutputReferences};
use flyteidl2::flyteidl::workflow::{
    action_metadata, ActionStatus, ActionUpdate, ListActionsRequest, ListActionsResponse,
    TailLogsRequest, TraceAction,
};
use flyteidl2::google::protobuf::Timestamp;
use tonic::{Code, Streaming};

use crate::common::*;

enum Event {
    Update(Box<ActionUpdate>),
    Sentinel,
}

async fn next_event(stream: &mut Streaming<WatchForUpdatesResponse>) -> Event {
    let message = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("watch stalled")
        .expect("watch failed")
        .expect("watch ended");
    match message.message {
        Some(watch_for_updates_response::Message::ActionUpdate(update)) => {
            Event::Update(Box::new(update))
        }
        Some(watch_for_updates_response::Message::ControlMessage(control)) => {
            assert!(control.sentinel);
            Event::Sentinel
        }
        None => panic!("empty watch message"),
    }
}

fn name_of(update: &ActionUpdate) -> &str {
    update.action_id.as_ref().map_or("", |i| i.name.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_is_idempotent() {
    let mut h = Harness::start().await;
    h.create_run(
        "r",
        &h.task("hold").arg("--release", "root"),
        Inputs::default(),
    )
    .await;
    h.wait_running("r", "a0").await;
    h.enqueue_task("r", "c1", "a0", &h.task("succeed")).await;
    let first = h.wait_terminal("r", "c1").await;
    assert_eq!(phase_of(&first), ActionPhase::Succeeded);

    // The same id again, even with a different spec, changes nothing.
    h.enqueue_task("r", "c1", "a0", &h.task("fail-user")).await;
    let again = h.details("r", "c1").await;
    assert_eq!(phase_of(&again), ActionPhase::Succeeded);
    assert_eq!(again.status.map(|s| s.attempts), Some(1));
    let actions = h
        .runs
        .list_actions(ListActionsRequest {
            run_id: Some(run_id("r")),
            request: None,
        })
        .await
        .expect("list actions")
        .into_inner()
        .actions;
    let names: Vec<String> = actions
        .iter()
        .filter_map(|a| a.id.as_ref().map(|i| i.name.clone()))
        .collect();
    assert_eq!(names, vec!["a0", "c1"]);
    match actions[1].metadata.as_ref() {
        Some(metadata) => assert_eq!(metadata.parent, "a0"),
        None => panic!("no metadata"),
    }
    h.release("root");
    h.wait_terminal("r", "a0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_a_snapshot_then_live_updates() {
    let mut h = Harness::start().await;
    h.create_run(
        "r",
        &h.task("hold").arg("--release", "root"),
        Inputs::default(),
    )
    .await;
    h.wait_running("r", "a0").await;
    h.enqueue_task("r", "c1", "a0", &h.task("succeed")).await;
    h.wait_terminal("r", "c1").await;

    let mut stream = h
        .actions
        .watch_for_updates(WatchForUpdatesRequest {
            filter: Some(watch_for_updates_request::Filter::ParentActionId(
                action_id("r", "a0"),
            )),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut snapshot = Vec::new();
    while let Event::Update(update) = next_event(&mut stream).await {
        snapshot.push(update);
    }
    assert_eq!(snapshot.len(), 1, "one update per existing child");
    assert_eq!(name_of(&snapshot[0]), "c1");
    assert_eq!(snapshot[0].phase, ActionPhase::Succeeded as i32);
    assert!(
        snapshot[0].output_uri.ends_with("/r/c1/1/"),
        "{}",
        snapshot[0].output_uri
    );

    h.enqueue_task("r", "c2", "a0", &h.task("succeed")).await;
    let mut seen = Vec::new();
    loop {
        match next_event(&mut stream).await {
            Event::Update(update) => {
                assert_eq!(name_of(&update), "c2", "only children of a0 are reported");
                let phase = update.phase;
                seen.push(phase);
                if phase == ActionPhase::Succeeded as i32 {
                    assert!(update.output_uri.ends_with("/r/c2/1/"));
                    assert!(update.error.is_none());
                    break;
                }
            }
            Event::Sentinel => panic!("a second sentinel without falling behind"),
        }
    }
    assert_eq!(seen.first(), Some(&(ActionPhase::Queued as i32)));
    // QUEUED < RUNNING < SUCCEEDED: a child's reported phase never moves backwards here.
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    h.release("root");
    h.wait_terminal("r", "a0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_actions_are_recorded_not_run() {
    let mut h = Harness::start().await;
    h.create_run(
        "r",
        &h.task("hold").arg("--release", "root"),
        Inputs::default(),
    )
    .await;
    h.wait_running("r", "a0").await;
    let trace = TraceAction {
        name: "my_traced_fn".into(),
        phase: ActionPhase::Succeeded as i32,
        start_time: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: 1_700_000_001,
            nanos: 500_000_000,
        }),
        outputs: Some(OutputReferences {
            output_uri: "file:///somewhere/t1/".into(),
            report_uri: String::new(),
        }),
        spec: None,
    };
    h.actions
        .enqueue(EnqueueRequest {
            action: Some(Action {
                action_id: Some(action_id("r", "t1")),
                parent_action_name: Some("a0".into()),
                input_uri: "file:///somewhere/t1/inputs.pb".into(),
                spec: Some(action::Spec::Trace(trace)),
                ..Default::default()
            }),
            run_spec: None,
        })
        .await
        .expect("enqueue trace");

    let details = h.details("r", "t1").await;
    assert_eq!(phase_of(&details), ActionPhase::Succeeded);
    let status = details.status.expect("status");
    assert_eq!(status.duration_ms, Some(1500));
    match details.metadata.as_ref().and_then(|m| m.spec.clone()) {
        Some(action_metadata::Spec::Trace(trace)) => assert_eq!(trace.name, "my_traced_fn"),
        other => panic!("unexpected metadata {other:?}"),
    }
    assert_eq!(details.attempts.len(), 1);

    let mut stream = h
        .actions
        .watch_for_updates(WatchForUpdatesRequest {
            filter: Some(watch_for_updates_request::Filter::ParentActionId(
                action_id("r", "a0"),
            )),
        })
        .await
        .expect("watch")
        .into_inner();
    match next_event(&mut stream).await {
        Event::Update(update) => {
            assert_eq!(name_of(&update), "t1");
            assert_eq!(update.output_uri, "file:///somewhere/t1/");
        }
        Event::Sentinel => panic!("the trace is missing from the snapshot"),
    }

    let logs = h
        .logs
        .tail_logs(TailLogsRequest {
            action_id: Some(action_id("r", "t1")),
            attempt: 0,
        })
        .await
        .expect_err("traces have no logs");
    assert_eq!(logs.code(), Code::NotFound);
    // Nothing was ever launched for the trace.
    assert!(!h.ctl.join("pid.t1.1").exists());
    h.release("root");
    h.wait_terminal("r", "a0").await;
    assert!(!h.ctl.join("pid.t1.1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_parents_do_not_hold_slots() {
    let mut h = Harness::start_with(|c| c.max_parallel = 1).await;
    h.create_run(
        "r",
        &h.task("hold").arg("--release", "root"),
        Inputs::default(),
    )
    .await;
    h.wait_running("r", "a0").await;
    // With one slot held by the parent this child would never start.
    h.enqueue_task("r", "c1", "a0", &h.task("hold").arg("--release", "c1"))
        .await;
    h.enqueue_task("r", "c2", "a0", &h.task("succeed")).await;
    h.wait_running("r", "c1").await;
    h.release("c1");
    assert_eq!(
        phase_of(&h.wait_terminal("r", "c2").await),
        ActionPhase::Succeeded
    );
    h.release("root");
    assert_eq!(
        phase_of(&h.wait_terminal("r", "a0").await),
        ActionPhase::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_parallel_processes_compute() {
    let mut h = Harness::start_with(|c| c.max_parallel = 1).await;
    h.create_run(
        "first",
        &h.task("hold").arg("--release", "first"),
        Inputs::default(),
    )
    .await;
    h.wait_running("first", "a0").await;
    h.create_run("second", &h.task("succeed"), Inputs::default())
        .await;
    h.release("first");
    let first = h.wait_terminal("first", "a0").await;
    let second = h.wait_terminal("second", "a0").await;
    let ended = first.status.and_then(|s| s.end_time).expect("end");
    let started = second.status.and_then(|s| s.start_time).expect("start");
    assert!(
        (started.seconds, started.nanos) >= (ended.seconds, ended.nanos),
        "the second run started before the first ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_applies_reported_phases_but_never_reopens() {
    let mut h = Harness::start().await;
    h.create_run(
        "r",
        &h.task("hold").arg("--release", "root"),
        Inputs::default(),
    )
    .await;
    h.wait_running("r", "a0").await;
    let running_trace = TraceAction {
        name: "slow_fn".into(),
        phase: ActionPhase::Running as i32,
        ..Default::default()
    };
    h.actions
        .enqueue(EnqueueRequest {
            action: Some(Action {
                action_id: Some(action_id("r", "t1")),
                parent_action_name: Some("a0".into()),
                spec: Some(action::Spec::Trace(running_trace)),
                ..Default::default()
            }),
            run_spec: None,
        })
        .await
        .expect("enqueue trace");
    assert_eq!(phase_of(&h.details("r", "t1").await), ActionPhase::Running);

    // What the root's process was given: it reports on itself and on its traces.
    let token = h
        .backend
        .as_ref()
        .and_then(|b| b.attempt_token(&run_id("r"), "a0"))
        .expect("the root's attempt token");
    let update = |name: &str, attempt: u32, phase: ActionPhase| {
        let mut request = tonic::Request::new(UpdateRequest {
            action_id: Some(action_id("r", name)),
            attempt,
            status: Some(ActionStatus {
                phase: phase as i32,
                ..Default::default()
            }),
            address: None,
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("an ASCII header"),
        );
        request
    };
    let anonymous = h
        .actions
        .update(UpdateRequest {
            action_id: Some(action_id("r", "t1")),
            attempt: 1,
            status: Some(ActionStatus {
                phase: ActionPhase::Succeeded as i32,
                ..Default::default()
            }),
            address: None,
        })
        .await
        .expect_err("no attempt's token");
    assert_eq!(anonymous.code(), Code::PermissionDenied);
    h.actions
        .update(update("t1", 1, ActionPhase::Succeeded))
        .await
        .expect("update");
    let details = h.details("r", "t1").await;
    assert_eq!(phase_of(&details), ActionPhase::Succeeded);
    assert!(details.status.and_then(|s| s.end_time).is_some());

    let reopen = h
        .actions
        .update(update("t1", 1, ActionPhase::Running))
        .await
        .expect_err("terminal phases are final");
    assert_eq!(reopen.code(), Code::FailedPrecondition);
    // Repeating the same terminal phase is harmless.
    h.actions
        .update(update("t1", 1, ActionPhase::Succeeded))
        .await
        .expect("idempotent update");
    let stale = h
        .actions
        .update(update("a0", 5, ActionPhase::Running))
        .await
        .expect_err("not the current attempt");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    let missing = h
        .actions
        .update(update("nope", 0, ActionPhase::Running))
        .await
        .expect_err("unknown action");
    assert_eq!(missing.code(), Code::NotFound);
    h.release("root");
    h.wait_terminal("r", "a0").await;
}

fn action_names(actions: &[flyteidl2::flyteidl::workflow::Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| a.id.as_ref().map(|i| i.name.clone()))
        .collect()
}

/// Lists the actions of run "r".
async fn list_actions(
    h: &mut Harness,
    request: ListRequest,
) -> Result<ListActionsResponse, tonic::Status> {
    h.runs
        .list_actions(ListActionsRequest {
            run_id: Some(run_id("r")),
            request: Some(request),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_filtered_sorted_and_paged() {
    let mut h = Harness::start().await;
    h.create_run(
        "r",
        &h.task("hold").arg("--release", "root"),
        Inputs::default(),
    )
    .await;
    h.wait_running("r", "a0").await;
    h.enqueue_task("r", "c1", "a0", &h.task("succeed")).await;
    let fails = h.task("fail-user").env("FAKE_ERROR", &user_error_hex());
    h.enqueue_task("r", "c2", "a0", &fails).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = utc_now_iso();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    h.enqueue_task("r", "c3", "a0", &h.task("hold").arg("--release", "c3"))
        .await;
    h.wait_running("r", "c3").await;
    h.enqueue_task("r", "g1", "c3", &h.task("succeed")).await;
    for name in ["c1", "c2", "g1"] {
        h.wait_terminal("r", name).await;
    }

    let cases: Vec<(Vec<Filter>, Vec<&str>)> = vec![
        (vec![], vec!["a0", "c1", "c2", "c3", "g1"]),
        (
            vec![list_filter("parent_name", Function::Equal, &["a0"])],
            vec!["c1", "c2", "c3"],
        ),
        (
            vec![list_filter("parent_name", Function::Equal, &["c3"])],
            vec!["g1"],
        ),
        (
            vec![list_filter("phase", Function::Equal, &["5"])],
            vec!["c1", "g1"],
        ),
        (
            vec![list_filter(
                "phase",
                Function::ValueIn,
                &["SUCCEEDED", "ACTION_PHASE_FAILED"],
            )],
            vec!["c1", "c2", "g1"],
        ),
        (
            vec![
                list_filter("phase", Function::Equal, &["4"]),
                list_filter("parent_name", Function::Equal, &["a0"]),
            ],
            vec!["c3"],
        ),
        (
            vec![list_filter("created_at", Function::LessThan, &[&between])],
            vec!["a0", "c1", "c2"],
        ),
        (
            vec![list_filter(
                "created_at",
                Function::GreaterThanOrEqual,
                &[&between],
            )],
            vec!["c3", "g1"],
        ),
        (
            vec![list_filter("name", Function::Contains, &["c"])],
            vec!["c1", "c2", "c3"],
        ),
    ];
    for (filters, expected) in cases {
        let described = format!("{filters:?}");
        let listed = list_actions(&mut h, sdk_list_request(filters, None))
            .await
            .unwrap_or_else(|e| panic!("{described}: {e}"));
        assert_eq!(action_names(&listed.actions), expected, "{described}");
        assert!(listed.token.is_empty(), "{described}");
    }

    let sorted = |key: &str, direction| sdk_list_request(vec![], Some(list_sort(key, direction)));
    let ascending = list_actions(&mut h, sorted("name", Direction::Ascending))
        .await
        .expect("list");
    assert_eq!(
        action_names(&ascending.actions),
        ["a0", "c1", "c2", "c3", "g1"]
    );
    let descending = list_actions(&mut h, sorted("name", Direction::Descending))
        .await
        .expect("list");
    assert_eq!(
        action_names(&descending.actions),
        ["g1", "c3", "c2", "c1", "a0"]
    );

    // Newest first, two a page, following the tokens.
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = sorted("created_at", Direction::Descending);
        request.limit = 2;
        request.token = token;
        let page = list_actions(&mut h, request).await.expect("list");
        pages.push(action_names(&page.actions));
        token = page.token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, [vec!["g1", "c3"], vec!["c2", "c1"], vec!["a0"]]);

    for (request, expected) in [
        (
            sdk_list_request(
                vec![list_filter("created_by", Function::Equal, &["me"])],
                None,
            ),
            "actions cannot be filtered by \"created_by\"",
        ),
        (
            sdk_list_request(vec![list_filter("labels.k", Function::Exists, &[])], None),
            "actions cannot be filtered by \"labels.k\"",
        ),
        (
            sdk_list_request(
                vec![list_filter("parent_name", Function::ValueIn, &[])],
                None,
            ),
            "VALUE_IN takes at least one value",
        ),
        (
            sdk_list_request(
                vec![list_filter("updated_at", Function::ValueIn, &[&between])],
                None,
            ),
            "VALUE_IN does not apply to times",
        ),
        (sorted("attempts", Direction::Ascending), "\"attempts\""),
    ] {
        let status = list_actions(&mut h, request)
            .await
            .expect_err("must be rejected");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(
            status.message().contains(expected),
            "expected {expected:?} in {:?}",
            status.message()
        );
    }

    h.release("c3");
    h.release("root");
    h.wait_terminal("r", "a0").await;
}
