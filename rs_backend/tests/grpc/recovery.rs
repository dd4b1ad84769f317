use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::task::{Inputs, Outputs};
use flyteidl2::flyteidl::workflow::{error_info, GetActionDataRequest, ListRunsRequest};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_backend_keeps_runs_and_relaunches_lost_actions() {
    let mut h = Harness::start().await;
    let outputs = Outputs {
        literals: vec![int_literal("o", 1)],
        ..Default::default()
    };
    let done = h
        .task("succeed")
        .env("FAKE_OUTPUTS", &outputs_hex(&outputs));
    h.create_run("done", &done, Inputs::default()).await;
    h.wait_terminal("done", "a0").await;

    // Both block on their first attempt and succeed on any later one.
    let blocking = h.task("hold-first");
    h.create_run("survivor", &blocking, Inputs::default()).await;
    h.create_run("orphan", &blocking, Inputs::default()).await;
    let survivor = h.pid_of("survivor", "a0", 1).await;
    let orphan = h.pid_of("orphan", "a0", 1).await;
    h.wait_running("survivor", "a0").await;
    h.wait_running("orphan", "a0").await;

    // The backend dies abruptly: nothing is cleaned up.
    h.backend.take().expect("backend").abandon().await;
    assert!(alive(survivor), "abandoning must not touch processes");
    // And one process dies while no backend is around.
    // SAFETY: signalling a process this test started.
    unsafe {
        libc::kill(orphan, libc::SIGKILL);
    }
    wait_gone(orphan).await;

    h.restart(|_| {}).await;
    // The previous instance's process is killed before the action runs again.
    wait_gone(survivor).await;
    for run in ["survivor", "orphan"] {
        let details = h.wait_terminal(run, "a0").await;
        assert_eq!(phase_of(&details), ActionPhase::Succeeded, "{run}");
        assert_eq!(details.attempts.len(), 2, "{run}");
        let lost = details.attempts[0]
            .error_info
            .clone()
            .expect("lost attempt");
        assert_eq!(lost.kind, error_info::Kind::System as i32);
        assert!(
            lost.message.contains("backend restarted"),
            "{}",
            lost.message
        );
    }

    // Finished work is intact.
    let data = h
        .runs
        .get_action_data(GetActionDataRequest {
            action_id: Some(action_id("done", "a0")),
        })
        .await
        .expect("data")
        .into_inner();
    assert_eq!(data.outputs, Some(outputs));
    let runs = h
        .runs
        .list_runs(ListRunsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .runs;
    assert_eq!(runs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_requeues_without_using_retries() {
    // No system retries at all: only a requeue can bring the action back.
    let mut h = Harness::start_with(|c| c.system_retries = 0).await;
    h.create_run("r", &h.task("hold-first"), Inputs::default())
        .await;
    let pid = h.pid_of("r", "a0", 1).await;
    h.wait_running("r", "a0").await;
    h.backend.take().expect("backend").shutdown().await;
    assert!(!alive(pid), "shutdown stops running attempts");
    h.restart(|c| c.system_retries = 0).await;
    let details = h.wait_terminal("r", "a0").await;
    assert_eq!(phase_of(&details), ActionPhase::Succeeded);
    assert_eq!(details.attempts.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_serves_one_backend_at_a_time() {
    let h = Harness::start().await;
    let config = flyte_backend::BackendConfig::new(h.data_dir(), "/usr/bin".into());
    let second = flyte_backend::start(config, "127.0.0.1:0".parse().expect("addr")).await;
    assert!(matches!(
        second,
        Err(flyte_backend::BackendError::DataDirInUse(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_after_a_shutdown_request() {
    let mut h = Harness::start().await;
    let backend = h.backend.take().expect("backend");
    let handle = backend.shutdown_handle();
    let waiting = tokio::spawn(backend.wait());
    handle.shutdown();
    let result = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("wait() returned")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
    // Nothing holds the data dir any more.
    h.restart(|_| {}).await;
}
