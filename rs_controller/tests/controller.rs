//! The controller against a real gRPC ActionsService written for these tests: children live
//! in memory and finish after a short delay; every watch gets a snapshot and a sentinel.
//! Switches make the server fail enqueues, break watch streams, serve stale snapshots,
//! hold enqueues at a gate, and record aborts, so each failure mode is exercised over the
//! wire rather than mocked.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flyte_controller::client::BackoffPolicy;
use flyte_controller::client::{
    parse_endpoint, validate_header, Client, ClientConfig, ClientError, ParsedEndpoint,
};
use flyte_controller::controller::{Controller, ControllerConfig, ControllerError, RetryPolicy};
use flyte_controller::informer::WatchPolicy;
use flyteidl2::flyteidl::actions::actions_service_server::{ActionsService, ActionsServiceServer};
use flyteidl2::flyteidl::actions::{
    watch_for_updates_request, watch_for_updates_response, AbortRequest, AbortResponse, Action,
    EnqueueRequest, EnqueueResponse, SignalRequest, SignalResponse, UpdateRequest, UpdateResponse,
    WatchForUpdatesRequest, WatchForUpdatesResponse,
};
use flyteidl2::flyteidl::common::{ActionIdentifier, ActionPhase, RunIdentifier};
use flyteidl2::flyteidl::workflow::{ActionUpdate, ControlMessage};
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Code, Request, Response, Status};

// ---------------------------------------------------------------------------------------
// The test server
// ---------------------------------------------------------------------------------------

type WatchItem = Result<WatchForUpdatesResponse, Status>;

#[derive(Default)]
struct ServerState {
    /// parent key ("run/parent") -> child name -> latest update
    children: HashMap<String, BTreeMap<String, ActionUpdate>>,
    watchers: Vec<(String, mpsc::UnboundedSender<WatchItem>)>,
    /// "enqueue-start:x", "enqueue-done:x", "abort:x" in the order they happened.
    events: Vec<String>,
    aborts: Vec<(String, String)>,
    authorization: Vec<String>,
}

struct FakeActions {
    state: Mutex<ServerState>,
    enqueue_calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    watch_calls: AtomicUsize,
    /// Fail this many upcoming enqueues with UNAVAILABLE.
    fail_enqueues: AtomicUsize,
    /// Streams still to be broken after `break_after` messages each.
    break_streams: AtomicUsize,
    break_after: AtomicUsize,
    /// Snapshots report finished children as RUNNING (a lagging replica).
    stale_snapshots: AtomicBool,
    /// While false, enqueues wait after being recorded as started.
    gate: watch::Sender<bool>,
    enqueue_delay: Duration,
    finish_delay: Duration,
}

fn parent_key(run: Option<&RunIdentifier>, parent: &str) -> String {
    format!("{}/{}", run.map(|r| r.name.as_str()).unwrap_or(""), parent)
}

fn phase_update(id: &ActionIdentifier, phase: ActionPhase) -> ActionUpdate {
    ActionUpdate {
        action_id: Some(id.clone()),
        phase: phase as i32,
        output_uri: if phase == ActionPhase::Succeeded {
            format!("mem://{}/outputs", id.name)
        } else {
            String::new()
        },
        ..Default::default()
    }
}

fn is_final(phase: i32) -> bool {
    flyte_controller::informer::is_terminal(phase)
}

impl FakeActions {
    fn new() -> Arc<Self> {
        Arc::new(FakeActions {
            state: Mutex::new(ServerState::default()),
            enqueue_calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            watch_calls: AtomicUsize::new(0),
            fail_enqueues: AtomicUsize::new(0),
            break_streams: AtomicUsize::new(0),
            break_after: AtomicUsize::new(usize::MAX),
            stale_snapshots: AtomicBool::new(false),
            gate: watch::channel(true).0,
            enqueue_delay: Duration::from_millis(2),
            finish_delay: Duration::from_millis(10),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.state.lock().unwrap()
    }

    /// Stores an update (unless the child is already final) and sends it to the watchers.
    fn publish(&self, key: &str, update: ActionUpdate) {
        let mut state = self.lock();
        let name = update.action_id.as_ref().unwrap().name.clone();
        let children = state.children.entry(key.to_string()).or_default();
        if children.get(&name).is_some_and(|u| is_final(u.phase)) {
            return;
        }
        children.insert(name, update.clone());
        state.watchers.retain(|(k, tx)| {
            k != key
                || tx
                    .send(Ok(WatchForUpdatesResponse {
                        message: Some(watch_for_updates_response::Message::ActionUpdate(
                            update.clone(),
                        )),
                    }))
                    .is_ok()
        });
    }

    fn events(&self) -> Vec<String> {
        self.lock().events.clone()
    }

    fn aborts(&self) -> Vec<(String, String)> {
        self.lock().aborts.clone()
    }

    fn phase_of(&self, run: &str, parent: &str, child: &str) -> Option<i32> {
        self.lock()
            .children
            .get(&format!("{run}/{parent}"))
            .and_then(|c| c.get(child))
            .map(|u| u.phase)
    }

    /// Ends every open watch stream with UNAVAILABLE.
    fn kick_watchers(&self) {
        let watchers = std::mem::take(&mut self.lock().watchers);
        for (_, tx) in watchers {
            let _ = tx.send(Err(Status::unavailable("server kicked the stream")));
        }
    }
}

/// Decrements the in-flight count even if the handler is cancelled.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The service handed to tonic; a newtype because the trait and `Arc` are both foreign.
struct Svc(Arc<FakeActions>);

impl std::ops::Deref for Svc {
    type Target = FakeActions;
    fn deref(&self) -> &FakeActions {
        &self.0
    }
}

#[tonic::async_trait]
impl ActionsService for Svc {
    async fn enqueue(
        &self,
        request: Request<EnqueueRequest>,
    ) -> Result<Response<EnqueueResponse>, Status> {
        self.enqueue_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(auth) = request.metadata().get("authorization") {
            let auth = auth.to_str().unwrap_or("<binary>").to_string();
            self.lock().authorization.push(auth);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _in_flight = InFlight(&self.in_flight);
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);

        let action = request
            .into_inner()
            .action
            .ok_or_else(|| Status::invalid_argument("action is required"))?;
        let id = action
            .action_id
            .clone()
            .ok_or_else(|| Status::invalid_argument("action_id is required"))?;
        let key = parent_key(id.run.as_ref(), action.parent_action_name());
        self.lock()
            .events
            .push(format!("enqueue-start:{}", id.name));

        tokio::time::sleep(self.enqueue_delay).await;
        let mut gate = self.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;

        if self
            .fail_enqueues
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Status::unavailable("try again later"));
        }
        if id.name.starts_with("invalid") {
            return Err(Status::invalid_argument(format!(
                "action '{}' is not acceptable",
                id.name
            )));
        }

        let known = self
            .lock()
            .children
            .get(&key)
            .is_some_and(|c| c.contains_key(&id.name));
        self.lock().events.push(format!("enqueue-done:{}", id.name));
        if known {
            return Ok(Response::new(EnqueueResponse {}));
        }
        self.publish(&key, phase_update(&id, ActionPhase::Queued));
        if !id.name.starts_with("hold") {
            let server = self.0.clone();
            tokio::spawn(async move {
                tokio::time::sleep(server.finish_delay).await;
                server.publish(&key, phase_update(&id, ActionPhase::Running));
                tokio::time::sleep(server.finish_delay).await;
                let last = if id.name.starts_with("fail") {
                    ActionPhase::Failed
                } else {
                    ActionPhase::Succeeded
                };
                server.publish(&key, phase_update(&id, last));
            });
        }
        Ok(Response::new(EnqueueResponse {}))
    }

    type WatchForUpdatesStream = Pin<Box<dyn Stream<Item = WatchItem> + Send + 'static>>;

    async fn watch_for_updates(
        &self,
        request: Request<WatchForUpdatesRequest>,
    ) -> Result<Response<Self::WatchForUpdatesStream>, Status> {
        self.watch_calls.fetch_add(1, Ordering::SeqCst);
        let parent = match request.into_inner().filter {
            Some(watch_for_updates_request::Filter::ParentActionId(id)) => id,
            None => return Err(Status::invalid_argument("a parent action is required")),
        };
        if parent.name.starts_with("forbidden") {
            return Err(Status::permission_denied("not your action"));
        }
        let key = parent_key(parent.run.as_ref(), &parent.name);
        let (tx, rx) = mpsc::unbounded_channel();
        {
            // Snapshot and registration under one lock: no update falls between them.
            let mut state = self.lock();
            let stale = self.stale_snapshots.load(Ordering::SeqCst);
            for update in state
                .children
                .get(&key)
                .into_iter()
                .flat_map(|c| c.values())
            {
                let mut update = update.clone();
                if stale {
                    update.phase = ActionPhase::Running as i32;
                }
                let _ = tx.send(Ok(WatchForUpdatesResponse {
                    message: Some(watch_for_updates_response::Message::ActionUpdate(update)),
                }));
            }
            let _ = tx.send(Ok(WatchForUpdatesResponse {
                message: Some(watch_for_updates_response::Message::ControlMessage(
                    ControlMessage { sentinel: true },
                )),
            }));
            state.watchers.push((key, tx));
        }
        let stream = UnboundedReceiverStream::new(rx);
        let breaking = self
            .break_streams
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let stream: Self::WatchForUpdatesStream = if breaking {
            let k = self.break_after.load(Ordering::SeqCst);
            Box::pin(stream.take(k).chain(futures::stream::once(async {
                Err(Status::unavailable("stream broken by the test"))
            })))
        } else {
            Box::pin(stream)
        };
        Ok(Response::new(stream))
    }

    async fn update(
        &self,
        _request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        Err(Status::unimplemented("not used by the controller"))
    }

    async fn abort(
        &self,
        request: Request<AbortRequest>,
    ) -> Result<Response<AbortResponse>, Status> {
        let request = request.into_inner();
        let id = request
            .action_id
            .ok_or_else(|| Status::invalid_argument("action_id is required"))?;
        let reason = request.reason.unwrap_or_default();
        let known_under = {
            let mut state = self.lock();
            state.events.push(format!("abort:{}", id.name));
            state.aborts.push((id.name.clone(), reason));
            state
                .children
                .iter()
                .find(|(_, c)| c.contains_key(&id.name))
                .map(|(k, _)| k.clone())
        };
        match known_under {
            Some(key) => {
                self.publish(&key, phase_update(&id, ActionPhase::Aborted));
                Ok(Response::new(AbortResponse {}))
            }
            None => Err(Status::not_found(format!("no action '{}'", id.name))),
        }
    }

    async fn signal(
        &self,
        _request: Request<SignalRequest>,
    ) -> Result<Response<SignalResponse>, Status> {
        Err(Status::unimplemented("not used by the controller"))
    }
}

struct TestServer {
    fake: Arc<FakeActions>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_on(listener: tokio::net::TcpListener, fake: Arc<FakeActions>) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let service = ActionsServiceServer::new(Svc(fake.clone()));
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    TestServer { fake, addr, task }
}

async fn start_server(fake: Arc<FakeActions>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, fake).await
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const RUN: &str = "r1";
const PARENT: &str = "a0";
/// Upper bound for any one test, so a bug shows up as a failure rather than a hang.
const LIMIT: Duration = Duration::from_secs(30);

fn run_id() -> RunIdentifier {
    RunIdentifier {
        org: "org".into(),
        project: "proj".into(),
        domain: "dev".into(),
        name: RUN.into(),
    }
}

fn action_id(name: &str) -> ActionIdentifier {
    ActionIdentifier {
        run: Some(run_id()),
        name: name.into(),
    }
}

fn parent_id(name: &str) -> ActionIdentifier {
    action_id(name)
}

fn action_under(parent: &str, name: &str) -> Action {
    Action {
        action_id: Some(action_id(name)),
        parent_action_name: Some(parent.into()),
        input_uri: format!("mem://{name}/inputs.pb"),
        run_output_base: "mem://out".into(),
        ..Default::default()
    }
}

fn action(name: &str) -> Action {
    action_under(PARENT, name)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(50),
            multiplier: 2.0,
        },
        max_attempts: 8,
        max_elapsed: Duration::from_secs(20),
    }
}

fn fast_watch() -> WatchPolicy {
    WatchPolicy {
        backoff: BackoffPolicy {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(50),
            multiplier: 2.0,
        },
        give_up_after: 3,
    }
}

fn controller_for(server: &TestServer, max_in_flight: usize) -> Controller {
    controller_at(&format!("http://{}", server.addr), max_in_flight)
}

fn controller_at(endpoint: &str, max_in_flight: usize) -> Controller {
    let mut client = ClientConfig::new(endpoint);
    client.headers = vec![("authorization".into(), "Bearer test-key".into())];
    let mut config = ControllerConfig::new(client);
    config.max_in_flight = max_in_flight;
    config.retry = fast_retry();
    config.watch = fast_watch();
    Controller::new(config).unwrap()
}

/// Polls `check` until it holds; fails the test (rather than hanging) after `LIMIT`.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("the test took too long")
}

fn phase(update: &ActionUpdate) -> ActionPhase {
    ActionPhase::try_from(update.phase).unwrap()
}

// ---------------------------------------------------------------------------------------
// Submitting and waiting
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_returns_the_terminal_update() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let update = within(controller.submit(action("c1"))).await.unwrap();
    assert_eq!(phase(&update), ActionPhase::Succeeded);
    assert_eq!(update.action_id.unwrap().name, "c1");
    assert_eq!(update.output_uri, "mem://c1/outputs");

    let failed = within(controller.submit(action("fail-1"))).await.unwrap();
    assert_eq!(phase(&failed), ActionPhase::Failed);

    // Submitting again is idempotent: the server keeps one action, the answer is the same.
    let again = within(controller.submit(action("c1"))).await.unwrap();
    assert_eq!(phase(&again), ActionPhase::Succeeded);

    // The configured header reached the server on every call.
    let auth = server.fake.lock().authorization.clone();
    assert_eq!(auth.len(), 3);
    assert!(auth.iter().all(|a| a == "Bearer test-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_submits_respect_max_in_flight() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let controller = controller.clone();
            tokio::spawn(async move { controller.submit(action(&format!("m{i}"))).await })
        })
        .collect();
    let results = within(futures::future::join_all(tasks)).await;
    for result in results {
        let update = result.unwrap().unwrap();
        assert_eq!(phase(&update), ActionPhase::Succeeded);
    }
    assert_eq!(server.fake.enqueue_calls.load(Ordering::SeqCst), 200);
    let max = server.fake.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 8, "the server saw {max} concurrent enqueues");
    // One watch stream served all 200 children.
    assert_eq!(server.fake.watch_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_is_per_parent() {
    let fake = FakeActions::new();
    fake.gate.send_replace(false);
    let server = start_server(fake).await;
    let controller = controller_for(&server, 1);

    // With the gate closed, one enqueue per parent can be in flight; two parents give two.
    let a = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action_under("pa", "x1")).await }
    });
    let b = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action_under("pb", "x2")).await }
    });
    let fake = server.fake.clone();
    eventually("two enqueues in flight", || {
        fake.in_flight.load(Ordering::SeqCst) == 2
    })
    .await;
    fake.gate.send_replace(true);
    assert_eq!(
        phase(&within(a).await.unwrap().unwrap()),
        ActionPhase::Succeeded
    );
    assert_eq!(
        phase(&within(b).await.unwrap().unwrap()),
        ActionPhase::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_enqueue_failures_are_retried() {
    let fake = FakeActions::new();
    fake.fail_enqueues.store(3, Ordering::SeqCst);
    let server = start_server(fake).await;
    let controller = controller_for(&server, 8);

    let update = within(controller.submit(action("t1"))).await.unwrap();
    assert_eq!(phase(&update), ActionPhase::Succeeded);
    assert_eq!(server.fake.enqueue_calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_attempt_limit() {
    let fake = FakeActions::new();
    fake.fail_enqueues.store(1000, Ordering::SeqCst);
    let server = start_server(fake).await;
    let mut config = ControllerConfig::new(ClientConfig::new(format!("http://{}", server.addr)));
    config.retry = RetryPolicy {
        max_attempts: 3,
        ..fast_retry()
    };
    let controller = Controller::new(config).unwrap();

    let err = within(controller.submit(action("t2"))).await.unwrap_err();
    match err {
        ControllerError::Rpc { code, message } => {
            assert_eq!(code, Code::Unavailable);
            assert!(message.contains("gave up"), "{message}");
            assert!(message.contains("3 attempts"), "{message}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(server.fake.enqueue_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_surface_at_once_with_their_code() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let err = within(controller.submit(action("invalid-1")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ControllerError::Rpc {
            code: Code::InvalidArgument,
            message: "action 'invalid-1' is not acceptable".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "INVALID_ARGUMENT: action 'invalid-1' is not acceptable"
    );
    assert_eq!(server.fake.enqueue_calls.load(Ordering::SeqCst), 1);

    let err = within(controller.enqueue(action("invalid-2")))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ControllerError::Rpc {
            code: Code::InvalidArgument,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_starts_late_is_waited_for() {
    // Reserve a port, free it, and start the server there only after the controller has
    // begun failing to connect: connection errors must count as transient.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let controller = controller_at(&format!("http://{addr}"), 8);

    let submit = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action("late")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = serve_on(listener, FakeActions::new()).await;

    let update = within(submit).await.unwrap().unwrap();
    assert_eq!(phase(&update), ActionPhase::Succeeded);
    assert!(server.fake.enqueue_calls.load(Ordering::SeqCst) >= 1);
}

// ---------------------------------------------------------------------------------------
// The watch stream
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_watch_streams_lose_nothing() {
    let fake = FakeActions::new();
    fake.break_after.store(3, Ordering::SeqCst);
    fake.break_streams.store(8, Ordering::SeqCst);
    let server = start_server(fake).await;
    let controller = controller_for(&server, 8);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let controller = controller.clone();
            tokio::spawn(async move { controller.submit(action(&format!("s{i}"))).await })
        })
        .collect();
    for result in within(futures::future::join_all(tasks)).await {
        assert_eq!(phase(&result.unwrap().unwrap()), ActionPhase::Succeeded);
    }
    let stats = controller.informer_stats(&parent_id(PARENT)).unwrap();
    assert!(stats.streams_opened >= 2, "{stats:?}");
    assert!(server.fake.watch_calls.load(Ordering::SeqCst) >= 2);
    assert_eq!(stats.children, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_snapshot_never_regresses_a_terminal_state() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let update = within(controller.submit(action("done"))).await.unwrap();
    assert_eq!(phase(&update), ActionPhase::Succeeded);

    // The next stream's snapshot claims the child is RUNNING again.
    server.fake.stale_snapshots.store(true, Ordering::SeqCst);
    let before = controller.informer_stats(&parent_id(PARENT)).unwrap();
    server.fake.kick_watchers();
    eventually("a second snapshot", || {
        controller
            .informer_stats(&parent_id(PARENT))
            .is_some_and(|s| s.sentinels > before.sentinels)
    })
    .await;

    let cached = within(controller.get(&action_id("done"), PARENT))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(phase(&cached), ActionPhase::Succeeded);
    let waited = within(controller.wait(&action_id("done"), PARENT))
        .await
        .unwrap();
    assert_eq!(phase(&waited), ActionPhase::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_answers_from_the_synced_snapshot() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    // Recorded by another controller (a previous incarnation of the parent).
    let earlier = controller_for(&server, 8);
    within(earlier.enqueue(action("trace-1"))).await.unwrap();
    let fake = server.fake.clone();
    eventually("the trace to finish", || {
        fake.phase_of(RUN, PARENT, "trace-1").is_some_and(is_final)
    })
    .await;

    let found = within(controller.get(&action_id("trace-1"), PARENT))
        .await
        .unwrap();
    assert_eq!(phase(&found.unwrap()), ActionPhase::Succeeded);
    let missing = within(controller.get(&action_id("never-recorded"), PARENT))
        .await
        .unwrap();
    assert!(missing.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_cannot_work_fails_its_waiters() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let err = within(controller.wait(&action_id("c"), "forbidden-parent"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Rpc {
                code: Code::PermissionDenied,
                ..
            }
        ),
        "{err:?}"
    );
    // Three attempts (give_up_after), not an endless loop.
    assert_eq!(server.fake.watch_calls.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------------------------------
// Cancellation, abort and close
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_submit_aborts_the_action() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let submit = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action("hold-1")).await }
    });
    let fake = server.fake.clone();
    eventually("the action to be enqueued", || {
        fake.phase_of(RUN, PARENT, "hold-1").is_some()
    })
    .await;
    submit.abort();
    assert!(within(submit).await.unwrap_err().is_cancelled());

    eventually("the abort", || !fake.aborts().is_empty()).await;
    let aborts = fake.aborts();
    assert_eq!(aborts.len(), 1);
    assert_eq!(aborts[0].0, "hold-1");
    assert!(aborts[0].1.contains("cancelled"), "{}", aborts[0].1);
    assert_eq!(
        fake.phase_of(RUN, PARENT, "hold-1"),
        Some(ActionPhase::Aborted as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_never_overtakes_its_enqueue() {
    let fake = FakeActions::new();
    fake.gate.send_replace(false);
    let server = start_server(fake).await;
    let controller = controller_for(&server, 8);

    let submit = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action("hold-2")).await }
    });
    let fake = server.fake.clone();
    eventually("the enqueue to reach the server", || {
        fake.events().iter().any(|e| e == "enqueue-start:hold-2")
    })
    .await;
    // Cancel while the enqueue is held inside the server, and only then let it finish.
    submit.abort();
    assert!(within(submit).await.unwrap_err().is_cancelled());
    fake.gate.send_replace(true);

    eventually("the abort", || !fake.aborts().is_empty()).await;
    let events = fake.events();
    let done = events.iter().position(|e| e == "enqueue-done:hold-2");
    let abort = events.iter().position(|e| e == "abort:hold-2");
    assert!(
        done.is_some() && abort.is_some() && done < abort,
        "{events:?}"
    );
    assert_eq!(
        fake.phase_of(RUN, PARENT, "hold-2"),
        Some(ActionPhase::Aborted as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_submit_that_never_got_a_slot_is_never_sent() {
    let fake = FakeActions::new();
    fake.gate.send_replace(false);
    let server = start_server(fake).await;
    let controller = controller_for(&server, 1);

    // The first submit holds the only slot; the second waits for it and is cancelled.
    let first = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action("first")).await }
    });
    let fake = server.fake.clone();
    eventually("the first enqueue", || {
        fake.events().iter().any(|e| e == "enqueue-start:first")
    })
    .await;
    let second = tokio::spawn({
        let c = controller.clone();
        async move { c.submit(action("second")).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    second.abort();
    assert!(within(second).await.unwrap_err().is_cancelled());
    fake.gate.send_replace(true);
    assert_eq!(
        phase(&within(first).await.unwrap().unwrap()),
        ActionPhase::Succeeded
    );

    // A later call through the same slot proves the cancelled one had its turn and passed.
    within(controller.submit(action("third"))).await.unwrap();
    let events = fake.events();
    assert!(!events.iter().any(|e| e.ends_with(":second")), "{events:?}");
    assert!(fake.aborts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_abort_reaches_the_server() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    within(controller.enqueue(action("hold-3"))).await.unwrap();
    let waiter = tokio::spawn({
        let c = controller.clone();
        async move { c.wait(&action_id("hold-3"), PARENT).await }
    });
    within(controller.abort(&action_id("hold-3"), "user asked"))
        .await
        .unwrap();
    let update = within(waiter).await.unwrap().unwrap();
    assert_eq!(phase(&update), ActionPhase::Aborted);
    assert_eq!(
        server.fake.aborts(),
        vec![("hold-3".to_string(), "user asked".to_string())]
    );

    let err = within(controller.abort(&action_id("nobody"), "x"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ControllerError::Rpc {
            code: Code::NotFound,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_pending_and_later_calls() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    within(controller.enqueue(action("hold-4"))).await.unwrap();
    let waiter = tokio::spawn({
        let c = controller.clone();
        async move { c.wait(&action_id("hold-4"), PARENT).await }
    });
    eventually("the watch to sync", || {
        controller
            .informer_stats(&parent_id(PARENT))
            .is_some_and(|s| s.synced)
    })
    .await;
    controller.close();
    assert_eq!(within(waiter).await.unwrap(), Err(ControllerError::Closed));
    assert_eq!(
        within(controller.submit(action("after"))).await,
        Err(ControllerError::Closed)
    );
    assert!(controller.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_actions_are_rejected_before_any_call() {
    let server = start_server(FakeActions::new()).await;
    let controller = controller_for(&server, 8);

    let mut no_parent = action("x");
    no_parent.parent_action_name = None;
    let mut no_id = action("x");
    no_id.action_id = None;
    let mut no_run = action("x");
    no_run.action_id.as_mut().unwrap().run = None;
    let mut own_parent = action(PARENT);
    own_parent.parent_action_name = Some(PARENT.into());
    for bad in [no_parent, no_id, no_run, own_parent] {
        let err = within(controller.submit(bad)).await.unwrap_err();
        assert!(matches!(err, ControllerError::InvalidAction(_)), "{err:?}");
    }
    assert_eq!(server.fake.enqueue_calls.load(Ordering::SeqCst), 0);
    assert_eq!(server.fake.watch_calls.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

fn parsed(endpoint: &str, insecure: bool) -> ParsedEndpoint {
    parse_endpoint(endpoint, insecure).unwrap_or_else(|e| panic!("{endpoint}: {e}"))
}

#[test]
fn endpoint_forms() {
    let cases = [
        ("localhost:8090", true, "http://localhost:8090"),
        ("localhost:8090", false, "https://localhost:8090"),
        (
            "dns:///flyte.example.com:443",
            false,
            "https://flyte.example.com:443",
        ),
        (
            "dns:///flyte.example.com",
            false,
            "https://flyte.example.com:443",
        ),
        (
            "dns:///flyte.example.com:81",
            true,
            "http://flyte.example.com:81",
        ),
        (
            "dns://8.8.8.8/flyte.example.com:444",
            false,
            "https://flyte.example.com:444",
        ),
        (
            "dns:flyte.example.com:445",
            false,
            "https://flyte.example.com:445",
        ),
        ("http://127.0.0.1:30080", false, "http://127.0.0.1:30080"),
        ("http://127.0.0.1:30080/", false, "http://127.0.0.1:30080"),
        ("http://localhost", false, "http://localhost:80"),
        (
            "https://flyte.example.com",
            false,
            "https://flyte.example.com:443",
        ),
        (
            "https://flyte.example.com:8443",
            false,
            "https://flyte.example.com:8443",
        ),
        ("[::1]:8089", true, "http://[::1]:8089"),
        ("[::1]", false, "https://[::1]:443"),
        ("  localhost:1  ", true, "http://localhost:1"),
    ];
    for (endpoint, insecure, uri) in cases {
        assert_eq!(
            parsed(endpoint, insecure).uri,
            uri,
            "{endpoint} insecure={insecure}"
        );
    }
    let p = parsed("dns:///flyte.example.com:443", false);
    assert!(p.tls);
    assert_eq!((p.host.as_str(), p.port), ("flyte.example.com", 443));
    assert!(!parsed("http://h:1", false).tls);
}

#[test]
fn bad_endpoints_are_clear_errors() {
    for endpoint in [
        "",
        "   ",
        "unix:///tmp/flyte.sock",
        "localhost:8090/api",
        "localhost:8090?x=1",
        "localhost:notaport",
        "localhost:",
        "localhost:+80",
        "::1:8089",
        "[::1:8089",
        "[::1]8089",
        "localhost:0",
        "localhost:99999",
        "user@localhost:1",
        "http://",
        "dns:///",
        "dns://only-authority",
        "local host:1",
        "http://local host:1",
    ] {
        match parse_endpoint(endpoint, true) {
            Err(ClientError::InvalidEndpoint {
                endpoint: e,
                reason,
            }) => {
                assert_eq!(e, endpoint);
                assert!(!reason.is_empty());
            }
            other => panic!("{endpoint:?} gave {other:?}"),
        }
    }
    let err = parse_endpoint("unix:///tmp/s", false).unwrap_err();
    assert!(
        err.to_string().contains("unsupported scheme 'unix'"),
        "{err}"
    );
}

#[test]
fn header_validation() {
    let (key, value) = validate_header("Authorization", "Bearer abc").unwrap();
    assert_eq!(key.as_str(), "authorization");
    assert_eq!(value.to_str().unwrap(), "Bearer abc");
    validate_header("x-flyte-org", "my-org").unwrap();

    for (name, value) in [
        ("", "v"),
        ("bad key", "v"),
        ("bad:key", "v"),
        ("x-data-bin", "v"),
        ("grpc-timeout", "1S"),
        ("content-type", "text/plain"),
        ("x-token", "secret\nvalue"),
        ("x-token", "sécret"),
    ] {
        let err = validate_header(name, value).unwrap_err();
        assert!(matches!(err, ClientError::InvalidHeader { .. }), "{err:?}");
        // Header values are usually credentials: they never appear in the message.
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    let mut config = ClientConfig::new("localhost:1");
    config.insecure = true;
    config.headers = vec![
        ("x-ok".into(), "1".into()),
        ("x-bad".into(), "a\r\nb".into()),
    ];
    let err = Client::new(&config).unwrap_err();
    assert!(err.to_string().contains("x-bad"), "{err}");
    let err = Controller::new(ControllerConfig::new(config)).unwrap_err();
    assert!(matches!(
        err,
        ControllerError::Client(ClientError::InvalidHeader { .. })
    ));
}

const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUECbnpLR5lqPzZA+mDICQq6UvSgswCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNZmx5dGUtdGVzdC1jYTAgFw0yNjExMjExOTA0MTZaGA8yMTI2
MTAyODE5MDQxNlowGDEWMBQGA1UEAwwNZmx5dGUtdGVzdC1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABJ91V2N9aiz1EZs0AKN9H68cjnb3RhOgDWB9mmWDICSF
qxoGTACTFesS6EIuQBEa+fmcCUbgKtsAIzstlP9DJv+jUzBRMB0GA1UdDgQWBBQ2
uKj8EdR+4T87920AEISdF4+K5TAfBgNVHSMEGDAWgBQ2uKj8EdR+4T87920AEISd
F4+K5TAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIEo1IcAj/BXV
OeJTCNOoDBtzn2FEE0Lw9WyNhZVdmzIOAiEAveSIEqNzTENj0Wp5jpPydLbqXcdv
OVnHwFFBSe1f/Ms=
-----END CERTIFICATE-----
";

/// All TLS cases in one test: the last part changes the process's certificate lookup
/// environment, which no other test reads (they all use plaintext).
#[test]
fn tls_configuration_builds() {
    let tls = |endpoint: &str, ca: Option<&[u8]>| {
        let mut config = ClientConfig::new(endpoint);
        config.ca_cert_pem = ca.map(<[u8]>::to_vec);
        Client::new(&config)
    };

    let client = tls("dns:///flyte.example.com", None).unwrap();
    assert!(client.endpoint().tls);
    tls("https://flyte.example.com:8443", Some(TEST_CA.as_bytes())).unwrap();
    tls("127.0.0.1:8443", Some(TEST_CA.as_bytes())).unwrap();

    let err = tls("https://flyte.example.com", Some(b"not a certificate")).unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let garbled = TEST_CA.replace("MIIB", "!!!!");
    assert!(matches!(
        tls("https://flyte.example.com", Some(garbled.as_bytes())),
        Err(ClientError::Tls { .. })
    ));

    // A system without root certificates: TLS still works with a private CA, and without
    // one the error says what to do.
    let empty = std::env::temp_dir().join(format!("flyte-no-certs-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("SSL_CERT_FILE", empty.join("none.pem"));
    std::env::set_var("SSL_CERT_DIR", &empty);
    let without_ca = tls("https://flyte.example.com", None);
    let with_ca = tls("https://flyte.example.com", Some(TEST_CA.as_bytes()));
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    let _ = std::fs::remove_dir_all(&empty);
    let err = without_ca.unwrap_err();
    assert!(err.to_string().contains("ca_cert"), "{err}");
    with_ca.unwrap();
}

#[test]
fn the_channel_needs_a_runtime_but_construction_does_not() {
    let mut config = ClientConfig::new("localhost:1");
    config.insecure = true;
    let client = Client::new(&config).unwrap();
    assert_eq!(client.actions().err(), Some(ClientError::NoRuntime));

    let err = Controller::new(ControllerConfig {
        max_in_flight: 0,
        ..ControllerConfig::new(config)
    })
    .unwrap_err();
    assert!(err.to_string().contains("max_in_flight"), "{err}");
}
