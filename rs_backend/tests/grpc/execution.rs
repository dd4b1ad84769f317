use std::time::Duration;

use flyteidl2::flyteidl::actions::AbortRequest;
use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::task::Inputs;
use flyteidl2::flyteidl::workflow::{action_details, error_info, AbortRunRequest, TailLogsRequest};
use tonic::Code;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_failures_use_the_task_retries() {
    let mut h = Harness::start().await;
    let failing = h
        .task("fail-user")
        .env("FAKE_ERROR", &user_error_hex())
        .retries(1);
    h.create_run("fails", &failing, Inputs::default()).await;
    let flaky = h
        .task("fail-user-once")
        .env("FAKE_ERROR", &user_error_hex())
        .retries(1);
    h.create_run("flaky", &flaky, Inputs::default()).await;

    let failed = h.wait_terminal("fails", "a0").await;
    assert_eq!(phase_of(&failed), ActionPhase::Failed);
    assert_eq!(failed.attempts.len(), 2);
    let error = error_of(&failed);
    assert_eq!(error.message, "bad value");
    assert_eq!(error.code, "ValueError");
    assert_eq!(error.kind, error_info::Kind::User as i32);
    assert!(failed.attempts[0].error_info.is_some());

    let recovered = h.wait_terminal("flaky", "a0").await;
    assert_eq!(phase_of(&recovered), ActionPhase::Succeeded);
    assert_eq!(recovered.attempts.len(), 2);
    assert_eq!(recovered.attempts[0].phase, ActionPhase::Failed as i32);
    assert_eq!(recovered.attempts[1].phase, ActionPhase::Succeeded as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_are_system_retries() {
    let mut h = Harness::start_with(|c| c.system_retries = 1).await;
    // No task retries: the relaunch after a crash does not use them.
    h.create_run("once", &h.task("crash-once"), Inputs::default())
        .await;
    h.create_run("always", &h.task("crash"), Inputs::default())
        .await;

    let once = h.wait_terminal("once", "a0").await;
    assert_eq!(phase_of(&once), ActionPhase::Succeeded);
    assert_eq!(once.attempts.len(), 2);
    let first = once.attempts[0].error_info.clone().expect("crash error");
    assert_eq!(first.kind, error_info::Kind::System as i32);
    assert!(first.message.contains("SIGKILL"), "{}", first.message);

    let always = h.wait_terminal("always", "a0").await;
    assert_eq!(phase_of(&always), ActionPhase::Failed);
    assert_eq!(always.attempts.len(), 2);
    let error = error_of(&always);
    assert_eq!(error.kind, error_info::Kind::System as i32);
    assert!(
        error.message.contains("gave up after 1 system retries"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_end_as_timed_out() {
    let mut h = Harness::start().await;
    let slow = h
        .task("sleep")
        .timeout(Duration::from_millis(300))
        .retries(1);
    h.create_run("slow", &slow, Inputs::default()).await;
    let details = h.wait_terminal("slow", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::TimedOut);
    assert_eq!(
        details.attempts.len(),
        2,
        "a timeout is retried like a user failure"
    );
    let error = error_of(&details);
    assert_eq!(error.code, "TaskTimeout");
    // Under heavy load an attempt may be killed before the runtime even wrote its pid.
    for attempt in 1..=2 {
        let pid_file = h.ctl.join(format!("pid.slow.a0.{attempt}"));
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            wait_gone(pid).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limits_are_enforced() {
    let mut h = Harness::start().await;
    let hog = h.task("alloc").arg("--mb", "200").memory("64Mi");
    h.create_run("hog", &hog, Inputs::default()).await;
    let details = h.wait_terminal("hog", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Failed);
    let error = error_of(&details);
    assert_eq!(error.code, "OOMKilled");
    assert_eq!(error.kind, error_info::Kind::User as i32);
    assert!(
        error.message.contains("limit of 64.0 MiB"),
        "{}",
        error.message
    );
    wait_gone(h.pid_of("hog", "a0", 1).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_kills_the_process_tree() {
    let mut h = Harness::start().await;
    h.create_run("single", &h.task("tree"), Inputs::default())
        .await;
    let main = h.pid_of("single", "a0", 1).await;
    let grandchild = h.grandchild_of("single", "a0").await;
    assert!(alive(main) && alive(grandchild));
    h.actions
        .abort(AbortRequest {
            action_id: Some(action_id("single", "a0")),
            reason: Some("enough".into()),
            aborted_by: None,
        })
        .await
        .expect("abort");
    let details = h.wait_terminal("single", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Aborted);
    match details.result {
        Some(action_details::Result::AbortInfo(info)) => assert_eq!(info.reason, "enough"),
        other => panic!("expected abort info, got {other:?}"),
    }
    wait_gone(main).await;
    wait_gone(grandchild).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_a_run_aborts_its_descendants() {
    let mut h = Harness::start().await;
    h.create_run(
        "tree",
        &h.task("hold").arg("--release", "never"),
        Inputs::default(),
    )
    .await;
    h.wait_running("tree", "a0").await;
    h.enqueue_task("tree", "c1", "a0", &h.task("tree")).await;
    let root = h.pid_of("tree", "a0", 1).await;
    let child = h.pid_of("tree", "c1", 1).await;
    let grandchild = h.grandchild_of("tree", "c1").await;
    h.runs
        .abort_run(AbortRunRequest {
            run_id: Some(run_id("tree")),
            reason: None,
        })
        .await
        .expect("abort run");
    for action in ["a0", "c1"] {
        let details = h.wait_terminal("tree", action).await;
        assert_eq!(phase_of(&details), ActionPhase::Aborted, "{action}");
    }
    for pid in [root, child, grandchild] {
        wait_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_logs_follows_a_running_attempt() {
    let mut h = Harness::start().await;
    h.create_run(
        "logs",
        &h.task("logs").arg("--release", "logs"),
        Inputs::default(),
    )
    .await;
    h.wait_running("logs", "a0").await;
    let missing = h
        .logs
        .tail_logs(TailLogsRequest {
            action_id: Some(action_id("logs", "a0")),
            attempt: 7,
        })
        .await
        .expect_err("no such attempt");
    assert_eq!(missing.code(), Code::NotFound);

    let mut stream = h
        .logs
        .tail_logs(TailLogsRequest {
            action_id: Some(action_id("logs", "a0")),
            attempt: 0,
        })
        .await
        .expect("tail")
        .into_inner();
    let mut lines = Vec::new();
    let mut released = false;
    while let Some(response) = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("tail stalled")
        .expect("tail failed")
    {
        for batch in response.logs {
            for line in batch.lines {
                assert_eq!(line.originator, 1, "USER");
                lines.push(line.message);
            }
        }
        // Released only once the live part was seen, to prove the stream follows.
        if !released && lines.iter().any(|l| l == "to stderr\n") {
            h.release("logs");
            released = true;
        }
    }
    assert!(released);
    let expected: Vec<String> = (0..5)
        .map(|i| format!("line {i}\n"))
        .chain(["to stderr\n".to_string(), "after release\n".to_string()])
        .collect();
    let tail: Vec<String> = lines.iter().skip(1).cloned().collect();
    assert_eq!(tail, expected, "all lines: {lines:?}");
    assert!(lines[0].starts_with("fake runtime: mode=logs"));
    assert_eq!(
        phase_of(&h.wait_terminal("logs", "a0").await),
        ActionPhase::Succeeded
    );

    // A finished attempt's log is read to the end and the stream closes.
    let mut again = h
        .logs
        .tail_logs(TailLogsRequest {
            action_id: Some(action_id("logs", "a0")),
            attempt: 1,
        })
        .await
        .expect("tail")
        .into_inner();
    let mut count = 0;
    while let Some(response) = again.message().await.expect("tail") {
        count += response.logs.iter().map(|b| b.lines.len()).sum::<usize>();
    }
    assert_eq!(count, lines.len());
}
