//! The execution tests again, with attempts forked by the SDK's fork server.

use std::time::Duration;

use flyteidl2::flyteidl::actions::AbortRequest;
use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::task::{Inputs, Outputs};
use flyteidl2::flyteidl::workflow::{error_info, GetActionDataRequest, TailLogsRequest};

use crate::common::*;

/// What the fake runtime recorded about its environment in one attempt.
fn env_dump(h: &Harness, run: &str, action: &str, attempt: u32) -> String {
    let data_dir = std::fs::canonicalize(h.data_dir()).expect("data dir");
    let path = data_dir.join(format!("data/_/proj/dev/{run}/{action}/{attempt}/env.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The pid of the fork server that forked an attempt.
fn forked_by(env: &str) -> i32 {
    env.lines()
        .find_map(|l| l.strip_prefix("FAKE_FORKED="))
        .unwrap_or_else(|| panic!("the attempt was not forked: {env}"))
        .parse()
        .expect("server pid")
}

/// Session id and process group of a live process.
fn session_and_group(pid: i32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let close = stat.rfind(')').expect("stat");
    let fields: Vec<i32> = stat[close + 1..]
        .split_whitespace()
        .skip(2)
        .take(2)
        .map(|f| f.parse().expect("number"))
        .collect();
    (fields[1], fields[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_attempts_run_in_their_own_session_and_succeed() {
    let mut h = Harness::start_forked(|_| {}).await;
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
        .arg("--names", "{{.runName}}/{{.actionName}}/{{.attempt}}");
    h.create_run("r1", &task, inputs.clone()).await;
    let details = h.wait_terminal("r1", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Succeeded);
    assert_eq!(details.attempts.len(), 1);
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

    // The same runtime contract as a spawned process: args, env, work dir.
    let env = env_dump(&h, "r1", "a0", 1);
    let data_dir = std::fs::canonicalize(h.data_dir()).expect("data dir");
    for expected in [
        format!("_U_EP_OVERRIDE={}", h.endpoint()),
        "RUN_NAME=r1".to_string(),
        "ACTION_NAME=a0".to_string(),
        "_FLYTE_ATTEMPT=1".to_string(),
        "EXTRA_FROM_CONFIG=yes".to_string(),
        "PYTHONUNBUFFERED=1".to_string(),
        format!("CWD={}", data_dir.join("work/r1/a0/1").display()),
        format!(
            "ARGS=--mode|succeed|--out|file://{}/|--ctl|{}|--names|r1/a0/1",
            data_dir.join("data/_/proj/dev/r1/a0/1").display(),
            h.ctl.display()
        ),
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} in\n{env}");
    }
    let server = forked_by(&env);

    // A running attempt is a child of the server, leading its own session and group.
    h.create_run(
        "held",
        &h.task("hold").arg("--release", "held"),
        Inputs::default(),
    )
    .await;
    let pid = h.pid_of("held", "a0", 1).await;
    assert_eq!(
        parent_of(pid),
        Some(server),
        "one server forks every attempt"
    );
    assert_eq!(session_and_group(pid), (pid, pid));
    h.release("held");
    assert_eq!(
        phase_of(&h.wait_terminal("held", "a0").await),
        ActionPhase::Succeeded
    );
    assert_eq!(forked_by(&env_dump(&h, "held", "a0", 1)), server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_user_failures_and_crashes_are_retried() {
    let mut h = Harness::start_forked(|c| c.system_retries = 1).await;
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
    h.create_run("crashy", &h.task("crash-once"), Inputs::default())
        .await;

    let failed = h.wait_terminal("fails", "a0").await;
    assert_eq!(phase_of(&failed), ActionPhase::Failed);
    assert_eq!(failed.attempts.len(), 2);
    let error = error_of(&failed);
    assert_eq!(error.message, "bad value");
    assert_eq!(error.kind, error_info::Kind::User as i32);

    let recovered = h.wait_terminal("flaky", "a0").await;
    assert_eq!(phase_of(&recovered), ActionPhase::Succeeded);
    assert_eq!(recovered.attempts.len(), 2);

    let crashed = h.wait_terminal("crashy", "a0").await;
    assert_eq!(phase_of(&crashed), ActionPhase::Succeeded);
    assert_eq!(crashed.attempts.len(), 2);
    let first = crashed.attempts[0].error_info.clone().expect("crash error");
    assert_eq!(first.kind, error_info::Kind::System as i32);
    // The status the server reaped is the real one.
    assert!(first.message.contains("SIGKILL"), "{}", first.message);
    forked_by(&env_dump(&h, "crashy", "a0", 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_timeouts_end_as_timed_out() {
    let mut h = Harness::start_forked(|_| {}).await;
    let slow = h.task("sleep").timeout(Duration::from_millis(300));
    h.create_run("slow", &slow, Inputs::default()).await;
    let details = h.wait_terminal("slow", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::TimedOut);
    assert_eq!(error_of(&details).code, "TaskTimeout");
    let pid_file = h.ctl.join("pid.slow.a0.1");
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
    {
        wait_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_memory_is_measured_without_the_shared_pages() {
    // Every child shares the server's 100 MiB copy-on-write: counting resident memory would
    // put even an idle child over a 64 MiB limit.
    let mut h = Harness::start_forked(|c| {
        if let Some(command) = c.fork_server.as_mut() {
            command.splice(0..0, ["env".to_string(), "FAKE_BALLAST_MB=100".to_string()]);
        }
    })
    .await;
    h.create_run(
        "lean",
        &h.task("hold").arg("--release", "lean").memory("64Mi"),
        Inputs::default(),
    )
    .await;
    let lean = h.pid_of("lean", "a0", 1).await;
    let hog = h.task("alloc").arg("--mb", "200").memory("64Mi");
    h.create_run("hog", &hog, Inputs::default()).await;
    let details = h.wait_terminal("hog", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Failed);
    let error = error_of(&details);
    assert_eq!(error.code, "OOMKilled");
    assert!(
        error.message.contains("limit of 64.0 MiB"),
        "{}",
        error.message
    );
    wait_gone(h.pid_of("hog", "a0", 1).await).await;

    // The lean one was measured all along and is still fine.
    assert!(alive(lean));
    assert_eq!(
        phase_of(&h.details("lean", "a0").await),
        ActionPhase::Running
    );
    h.release("lean");
    assert_eq!(
        phase_of(&h.wait_terminal("lean", "a0").await),
        ActionPhase::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_a_forked_attempt_kills_its_tree() {
    let mut h = Harness::start_forked(|_| {}).await;
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
    wait_gone(main).await;
    wait_gone(grandchild).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_logs_are_tailed() {
    let mut h = Harness::start_forked(|_| {}).await;
    h.create_run(
        "logs",
        &h.task("logs").arg("--release", "logs"),
        Inputs::default(),
    )
    .await;
    h.wait_running("logs", "a0").await;
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
            lines.extend(batch.lines.into_iter().map(|l| l.message));
        }
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
    assert!(lines[0].starts_with("fake runtime: mode=logs"), "{lines:?}");
    assert_eq!(lines[1..].to_vec(), expected, "all lines: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_backend_recovers_forked_attempts() {
    let mut h = Harness::start_forked(|_| {}).await;
    let blocking = h.task("hold-first");
    h.create_run("survivor", &blocking, Inputs::default()).await;
    h.create_run("orphan", &blocking, Inputs::default()).await;
    let survivor = h.pid_of("survivor", "a0", 1).await;
    let orphan = h.pid_of("orphan", "a0", 1).await;
    h.wait_running("survivor", "a0").await;
    h.wait_running("orphan", "a0").await;
    let server = forked_by(&env_dump(&h, "survivor", "a0", 1));

    // The backend dies abruptly; its fork server goes with it, its children do not.
    h.backend.take().expect("backend").abandon().await;
    wait_gone(server).await;
    assert!(alive(survivor), "abandoning must not touch attempts");
    // SAFETY: signalling a process this test started.
    unsafe {
        libc::kill(orphan, libc::SIGKILL);
    }
    wait_gone(orphan).await;

    h.restart(|_| {}).await;
    wait_gone(survivor).await;
    for run in ["survivor", "orphan"] {
        let details = h.wait_terminal(run, "a0").await;
        assert_eq!(phase_of(&details), ActionPhase::Succeeded, "{run}");
        assert_eq!(details.attempts.len(), 2, "{run}");
        let lost = details.attempts[0]
            .error_info
            .clone()
            .expect("lost attempt");
        assert!(
            lost.message.contains("backend restarted"),
            "{}",
            lost.message
        );
        assert_ne!(forked_by(&env_dump(&h, run, "a0", 2)), server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fork_server_leaves_its_children_concluded_and_is_replaced() {
    let mut h = Harness::start_forked(|c| c.system_retries = 1).await;
    // One finishes after the server is gone, one is killed after the server is gone.
    h.create_run(
        "finisher",
        &h.task("hold").arg("--release", "finisher"),
        Inputs::default(),
    )
    .await;
    h.create_run("victim", &h.task("hold-first"), Inputs::default())
        .await;
    let finisher = h.pid_of("finisher", "a0", 1).await;
    let victim = h.pid_of("victim", "a0", 1).await;
    let server = parent_of(finisher).expect("server");
    assert_ne!(server, std::process::id() as i32);

    // SAFETY: signalling the fork server this test's backend started.
    unsafe {
        libc::kill(server, libc::SIGKILL);
    }
    wait_gone(server).await;
    h.release("finisher");
    // SAFETY: as above, a process of this test.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }

    // No exit status can come any more: the files decide.
    let finished = h.wait_terminal("finisher", "a0").await;
    assert_eq!(phase_of(&finished), ActionPhase::Succeeded);
    assert_eq!(finished.attempts.len(), 1);

    let relaunched = h.wait_terminal("victim", "a0").await;
    assert_eq!(phase_of(&relaunched), ActionPhase::Succeeded);
    assert_eq!(relaunched.attempts.len(), 2);
    let lost = relaunched.attempts[0]
        .error_info
        .clone()
        .expect("crash error");
    assert_eq!(lost.kind, error_info::Kind::System as i32);
    assert!(lost.message.contains("unknown"), "{}", lost.message);
    let replacement = forked_by(&env_dump(&h, "victim", "a0", 2));
    assert_ne!(replacement, server);

    h.create_run("next", &h.task("succeed"), Inputs::default())
        .await;
    assert_eq!(
        phase_of(&h.wait_terminal("next", "a0").await),
        ActionPhase::Succeeded
    );
    assert_eq!(forked_by(&env_dump(&h, "next", "a0", 1)), replacement);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_server_that_exits_at_start_fails_the_launch_clearly() {
    let mut h = Harness::start_forked(|c| {
        c.system_retries = 1;
        c.fork_server = Some(vec![
            "python3".into(),
            "-c".into(),
            "import sys; print('no flyte here', file=sys.stderr); sys.exit(3)".into(),
        ]);
    })
    .await;
    h.create_run("r", &h.task("succeed"), Inputs::default())
        .await;
    let details = h.wait_terminal("r", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Failed);
    assert_eq!(
        details.attempts.len(),
        2,
        "a launch failure is a system retry"
    );
    let error = error_of(&details);
    assert_eq!(error.code, "LaunchFailed");
    assert_eq!(error.kind, error_info::Kind::System as i32);
    for expected in [
        "fork server",
        "python3",
        "exited with code 3",
        "no flyte here",
    ] {
        assert!(
            error.message.contains(expected),
            "{expected}: {}",
            error.message
        );
    }
}
