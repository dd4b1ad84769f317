//! The controller: submits a running task's sub-actions to the backend and waits for them.
//!
//! Per parent action it keeps one [`Informer`] (the watch of that parent's children) and a
//! semaphore bounding concurrent `Enqueue` calls, so a parent fanning out thousands of
//! children cannot flood the backend. Unary calls are retried on transient failures with
//! jittered exponential backoff, within a bounded number of attempts and time.
//!
//! Cancellation: a `submit` future dropped before it finished (an asyncio task cancelled on
//! the Python side) aborts its action. The enqueue runs as its own task, so that the abort
//! can be sent strictly after any enqueue attempt already on the wire has completed;
//! otherwise the abort could overtake the enqueue and leave the child running unwatched.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flyteidl2::flyteidl::actions::{AbortRequest, Action};
use flyteidl2::flyteidl::common::ActionIdentifier;
use flyteidl2::flyteidl::workflow::ActionUpdate;
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Request, Status};

use crate::client::{
    code_name, is_transient, Backoff, BackoffPolicy, Client, ClientConfig, ClientError,
};
use crate::informer::{Informer, InformerStats, WatchPolicy};
use crate::pending::{Pending, SpecTable};

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ControllerError {
    /// The backend refused the call, or it kept failing until the retry budget ran out.
    #[error("{}: {message}", code_name(*code))]
    Rpc { code: Code, message: String },
    /// The action or identifier handed in cannot be submitted (missing ids, no parent).
    #[error("invalid action: {0}")]
    InvalidAction(String),
    #[error("invalid controller configuration: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the controller is closed")]
    Closed,
    /// The caller stopped waiting; only seen by the controller's own background tasks.
    #[error("the call was cancelled")]
    Cancelled,
}

impl ControllerError {
    fn from_status(status: &Status) -> Self {
        ControllerError::Rpc {
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

/// Retries of unary calls (Enqueue, Abort).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub backoff: BackoffPolicy,
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// No retry is started that would begin after this much time since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: BackoffPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(5),
                multiplier: 2.0,
            },
            max_attempts: 10,
            max_elapsed: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub client: ClientConfig,
    /// Concurrent Enqueue calls per parent action.
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
    pub watch: WatchPolicy,
}

impl ControllerConfig {
    pub fn new(client: ClientConfig) -> Self {
        ControllerConfig {
            client,
            max_in_flight: 64,
            retry: RetryPolicy::default(),
            watch: WatchPolicy::default(),
        }
    }
}

/// A parent action, as a map key: run (org, project, domain, name) + action name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ParentKey {
    org: String,
    project: String,
    domain: String,
    run: String,
    parent: String,
}

impl ParentKey {
    fn of(action: &ActionIdentifier) -> Option<Self> {
        let run = action.run.as_ref()?;
        Some(ParentKey {
            org: run.org.clone(),
            project: run.project.clone(),
            domain: run.domain.clone(),
            run: run.name.clone(),
            parent: action.name.clone(),
        })
    }
}

/// What a call is about: the action, and the parent whose informer watches it.
struct Target {
    action_id: ActionIdentifier,
    parent_id: ActionIdentifier,
    key: ParentKey,
}

impl Target {
    fn new(
        action_id: Option<&ActionIdentifier>,
        parent: Option<&str>,
    ) -> Result<Self, ControllerError> {
        let invalid = |m: &str| ControllerError::InvalidAction(m.to_string());
        let action_id = action_id.ok_or_else(|| invalid("action_id is missing"))?;
        let run = action_id
            .run
            .as_ref()
            .ok_or_else(|| invalid("action_id.run is missing"))?;
        if run.name.is_empty() {
            return Err(invalid("action_id.run.name is empty"));
        }
        if action_id.name.is_empty() {
            return Err(invalid("action_id.name is empty"));
        }
        let parent = match parent {
            Some(p) if !p.is_empty() => p,
            _ => {
                return Err(invalid(
                    "parent_action_name is missing (only sub-actions can be submitted)",
                ))
            }
        };
        if parent == action_id.name {
            return Err(invalid("an action cannot be its own parent"));
        }
        Ok(Target {
            action_id: action_id.clone(),
            parent_id: ActionIdentifier {
                run: Some(run.clone()),
                name: parent.to_string(),
            },
            key: ParentKey {
                org: run.org.clone(),
                project: run.project.clone(),
                domain: run.domain.clone(),
                run: run.name.clone(),
                parent: parent.to_string(),
            },
        })
    }

    fn of_action(action: &Action) -> Result<Self, ControllerError> {
        Target::new(
            action.action_id.as_ref(),
            action.parent_action_name.as_deref(),
        )
    }
}

/// Checks that an action carries what `submit` and `enqueue` need, without sending it.
pub fn validate_action(action: &Action) -> Result<(), ControllerError> {
    Target::of_action(action).map(|_| ())
}

struct Parent {
    informer: Option<Arc<Informer>>,
    permits: Arc<Semaphore>,
}

struct Inner {
    client: Arc<Client>,
    max_in_flight: usize,
    retry: RetryPolicy,
    watch: WatchPolicy,
    parents: Mutex<HashMap<ParentKey, Parent>>,
    specs: SpecTable,
    closed: AtomicBool,
}

/// Shared between a submit's enqueue task and its drop guard.
#[derive(Default)]
struct EnqueueTracker {
    /// Set by the guard: no further attempt may start.
    cancelled: AtomicBool,
    /// Set before the first attempt goes on the wire: from then on the server may know the
    /// action, so a cancellation must abort it.
    sent: AtomicBool,
}

type EnqueueDone = Shared<BoxFuture<'static, Result<(), ControllerError>>>;

/// Sends Abort for a submitted action if the submit future is dropped before it finished.
struct AbortOnDrop {
    inner: Arc<Inner>,
    action_id: ActionIdentifier,
    tracker: Arc<EnqueueTracker>,
    enqueue: EnqueueDone,
    runtime: Handle,
    armed: bool,
}

const CANCEL_REASON: &str = "the parent task stopped waiting for this action (cancelled)";

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.tracker.cancelled.store(true, Ordering::SeqCst);
        let inner = self.inner.clone();
        let action_id = self.action_id.clone();
        let tracker = self.tracker.clone();
        let enqueue = self.enqueue.clone();
        // Spawning on a runtime that is shutting down drops the task quietly; there is
        // nothing better to do then, as the process is going away.
        self.runtime.spawn(async move {
            // Let an attempt already on the wire land first, so the abort cannot overtake it.
            let _ = enqueue.await;
            if !tracker.sent.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = inner.abort(&action_id, CANCEL_REASON, false).await {
                tracing::debug!(action = %action_id.name, error = %e, "abort after cancellation failed");
            }
        });
    }
}

async fn first_slot(permits: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, ControllerError> {
    permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ControllerError::Closed)
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<ParentKey, Parent>> {
        // Each mutation is a single insert or field assignment; a poisoned map is consistent.
        self.parents.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_open(&self) -> Result<(), ControllerError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(ControllerError::Closed)
        } else {
            Ok(())
        }
    }

    fn with_parent<T>(
        &self,
        key: &ParentKey,
        f: impl FnOnce(&mut Parent) -> Result<T, ControllerError>,
    ) -> Result<T, ControllerError> {
        let mut parents = self.lock();
        // Checked under the lock that `close` holds, so nothing is created after a close.
        self.check_open()?;
        let parent = parents.entry(key.clone()).or_insert_with(|| Parent {
            informer: None,
            permits: Arc::new(Semaphore::new(self.max_in_flight)),
        });
        f(parent)
    }

    fn permits(&self, key: &ParentKey) -> Result<Arc<Semaphore>, ControllerError> {
        self.with_parent(key, |p| Ok(p.permits.clone()))
    }

    fn informer(&self, target: &Target) -> Result<Arc<Informer>, ControllerError> {
        self.with_parent(&target.key, |p| {
            if let Some(informer) = &p.informer {
                // A stopped informer gave up on a permanent error; the next caller tries anew.
                if !informer.is_stopped() {
                    return Ok(informer.clone());
                }
            }
            let informer = Informer::start(
                self.client.clone(),
                target.parent_id.clone(),
                self.watch.clone(),
            )?;
            p.informer = Some(informer.clone());
            Ok(informer)
        })
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the retry budget is spent.
    /// `attempt` returns `Err` to stop at once (closed, cancelled), `Ok(Err(status))` for an
    /// RPC failure to classify. With `stop_on_close`, closing the controller stops retries.
    async fn call_with_retry<T, F, Fut>(
        &self,
        what: &str,
        stop_on_close: bool,
        mut attempt: F,
    ) -> Result<T, ControllerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Result<T, Status>, ControllerError>>,
    {
        let started = Instant::now();
        let mut backoff = Backoff::new(self.retry.backoff.clone());
        let mut attempts = 0u32;
        let mut refreshed = false;
        loop {
            if stop_on_close {
                self.check_open()?;
            }
            attempts += 1;
            let status = match attempt().await? {
                Ok(value) => return Ok(value),
                Err(status) => status,
            };
            if status.code() == Code::Unauthenticated && !refreshed {
                refreshed = true;
                if self.client.refresh_credentials().await {
                    continue;
                }
            }
            if !is_transient(&status) {
                return Err(ControllerError::from_status(&status));
            }
            let delay = backoff.next_delay();
            let elapsed = started.elapsed();
            if attempts >= self.retry.max_attempts.max(1)
                || elapsed + delay > self.retry.max_elapsed
            {
                return Err(ControllerError::Rpc {
                    code: status.code(),
                    message: format!(
                        "{} (gave up on {what} after {attempts} attempts in {:.1}s)",
                        status.message(),
                        elapsed.as_secs_f64()
                    ),
                });
            }
            tracing::debug!(
                what,
                attempts,
                code = code_name(status.code()),
                message = status.message(),
                ?delay,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Enqueues `action` (boxed: thousands of children may wait for their turn, and a
    /// waiting call should cost little more than its action).
    async fn enqueue(
        &self,
        key: &ParentKey,
        action: Pending,
        tracker: Option<&EnqueueTracker>,
    ) -> Result<(), ControllerError> {
        let (permits, first) = self.enqueue_slot(key).await?;
        Box::pin(self.enqueue_now(permits, first, action, tracker)).await
    }

    /// The first attempt's slot, taken before the call's own state (its RPC's buffers and
    /// futures, kilobytes) is made: a call waiting for its turn holds only its action.
    async fn enqueue_slot(
        &self,
        key: &ParentKey,
    ) -> Result<(Arc<Semaphore>, OwnedSemaphorePermit), ControllerError> {
        let permits = self.permits(key)?;
        let first = first_slot(&permits).await?;
        Ok((permits, first))
    }

    async fn enqueue_now(
        &self,
        permits: Arc<Semaphore>,
        first: OwnedSemaphorePermit,
        action: Pending,
        tracker: Option<&EnqueueTracker>,
    ) -> Result<(), ControllerError> {
        let request = action.request();
        drop(action);
        let name = request
            .action
            .as_ref()
            .and_then(|a| a.action_id.as_ref())
            .map(|id| id.name.clone())
            .unwrap_or_default();
        let timeout = self.client.rpc_timeout();
        let first = Mutex::new(Some(first));
        let (request, permits, first) = (&request, &permits, &first);
        self.call_with_retry(&format!("enqueue of '{name}'"), true, move || async move {
            // Held for one attempt only: a call sleeping in backoff does not occupy a slot.
            let held = first.lock().unwrap_or_else(|p| p.into_inner()).take();
            let _permit = match held {
                Some(permit) => permit,
                None => permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ControllerError::Closed)?,
            };
            if let Some(tracker) = tracker {
                if tracker.cancelled.load(Ordering::SeqCst) {
                    return Err(ControllerError::Cancelled);
                }
                tracker.sent.store(true, Ordering::SeqCst);
            }
            let mut client = self.client.actions()?;
            let mut request = Request::new(request.clone());
            request.set_timeout(timeout);
            Ok(match client.enqueue(request).await {
                Ok(_) => Ok(()),
                // Enqueue is idempotent on the action id: a retry of an attempt that did land
                // (or a re-executed parent re-submitting its children) finds it there.
                Err(status) if status.code() == Code::AlreadyExists => Ok(()),
                Err(status) => Err(status),
            })
        })
        .await
    }

    async fn abort(
        &self,
        action_id: &ActionIdentifier,
        reason: &str,
        stop_on_close: bool,
    ) -> Result<(), ControllerError> {
        let request = AbortRequest {
            action_id: Some(action_id.clone()),
            reason: Some(reason.to_string()),
            aborted_by: None,
        };
        let timeout = self.client.rpc_timeout();
        let request = &request;
        self.call_with_retry(
            &format!("abort of '{}'", action_id.name),
            stop_on_close,
            move || async move {
                let mut client = self.client.actions()?;
                let mut request = Request::new(request.clone());
                request.set_timeout(timeout);
                Ok(client.abort(request).await.map(|_| ()))
            },
        )
        .await
    }

    fn close(&self) {
        let mut parents = self.lock();
        self.closed.store(true, Ordering::SeqCst);
        for parent in parents.values() {
            parent.permits.close();
            if let Some(informer) = &parent.informer {
                informer.shutdown();
            }
        }
        parents.clear();
    }
}

/// Submits sub-actions and watches them. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("client", &self.inner.client)
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

fn runtime() -> Result<Handle, ControllerError> {
    Handle::try_current().map_err(|_| ControllerError::Client(ClientError::NoRuntime))
}

impl Controller {
    /// Validates the configuration. Connects lazily, so this works outside a runtime.
    pub fn new(config: ControllerConfig) -> Result<Self, ControllerError> {
        if config.max_in_flight == 0 {
            return Err(ControllerError::InvalidConfig(
                "max_in_flight must be at least 1".to_string(),
            ));
        }
        let client = Client::new(&config.client)?;
        Ok(Controller {
            inner: Arc::new(Inner {
                client: Arc::new(client),
                max_in_flight: config.max_in_flight.min(Semaphore::MAX_PERMITS),
                retry: config.retry,
                watch: config.watch,
                parents: Mutex::new(HashMap::new()),
                specs: SpecTable::default(),
                closed: AtomicBool::new(false),
            }),
        })
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Enqueues `action` and waits until it is terminal; returns its terminal update
    /// (including failed or aborted outcomes: the caller interprets the phase).
    ///
    /// Dropping the returned future before it completes aborts the action.
    pub async fn submit(&self, action: Action) -> Result<ActionUpdate, ControllerError> {
        self.submit_boxed(Box::new(action)).await
    }

    /// `submit` of a boxed action: its future is small while the child runs, which counts
    /// when a parent waits for thousands of children.
    pub async fn submit_boxed(&self, action: Box<Action>) -> Result<ActionUpdate, ControllerError> {
        let target = Target::of_action(&action)?;
        let runtime = runtime()?;
        // Watch before enqueueing: the snapshot covers a child that finishes at once anyway,
        // but starting first saves a round of waiting for the stream to open.
        let informer = self.inner.informer(&target)?;
        let permits = self.inner.permits(&target.key)?;
        // What the call keeps while it waits: its id, the watch, and the action encoded.
        let action_id = target.action_id;
        let action = Pending::new(action, &self.inner.specs);

        // Waited for here, before anything is spawned: a parent with thousands of children
        // waiting for their turn holds one small future per child. Dropped while waiting,
        // nothing was sent, so nothing needs aborting.
        let first = first_slot(&permits).await?;
        let tracker = Arc::new(EnqueueTracker::default());
        let task = {
            let inner = self.inner.clone();
            let tracker = tracker.clone();
            runtime.spawn(async move {
                Box::pin(inner.enqueue_now(permits, first, action, Some(&tracker))).await
            })
        };
        let enqueue: EnqueueDone = task
            .map(|joined| joined.unwrap_or(Err(ControllerError::Closed)))
            .boxed()
            .shared();
        let mut guard = AbortOnDrop {
            inner: self.inner.clone(),
            action_id,
            tracker,
            enqueue: enqueue.clone(),
            runtime,
            armed: true,
        };

        let result = match enqueue.await {
            Ok(()) => informer.wait_terminal(&guard.action_id.name).await,
            Err(e) => Err(e),
        };
        guard.armed = false;
        result
    }

    /// Enqueues `action` without waiting for it (e.g. to record a finished trace).
    pub async fn enqueue(&self, action: Action) -> Result<(), ControllerError> {
        let target = Target::of_action(&action)?;
        self.inner
            .enqueue(
                &target.key,
                Pending::new(Box::new(action), &self.inner.specs),
                None,
            )
            .await
    }

    /// Waits until the action is terminal, watching it under `parent_action_name`.
    pub async fn wait(
        &self,
        action_id: &ActionIdentifier,
        parent_action_name: &str,
    ) -> Result<ActionUpdate, ControllerError> {
        let target = Target::new(Some(action_id), Some(parent_action_name))?;
        runtime()?;
        let informer = self.inner.informer(&target)?;
        informer.wait_terminal(&target.action_id.name).await
    }

    /// The action's latest state once the parent's watch has its full snapshot, or `None`
    /// if the server does not know it (e.g. a trace not yet recorded before a crash).
    pub async fn get(
        &self,
        action_id: &ActionIdentifier,
        parent_action_name: &str,
    ) -> Result<Option<ActionUpdate>, ControllerError> {
        let target = Target::new(Some(action_id), Some(parent_action_name))?;
        runtime()?;
        let informer = self.inner.informer(&target)?;
        informer.wait_synced().await?;
        Ok(informer.get(&target.action_id.name))
    }

    /// Asks the backend to abort an action.
    pub async fn abort(
        &self,
        action_id: &ActionIdentifier,
        reason: &str,
    ) -> Result<(), ControllerError> {
        if action_id.run.is_none() || action_id.name.is_empty() {
            return Err(ControllerError::InvalidAction(
                "action_id needs a run and a name".to_string(),
            ));
        }
        self.inner.check_open()?;
        self.inner.abort(action_id, reason, true).await
    }

    /// Counters of the watch of `parent` (run + parent action name), if one was started.
    pub fn informer_stats(&self, parent: &ActionIdentifier) -> Option<InformerStats> {
        let key = ParentKey::of(parent)?;
        let parents = self.inner.lock();
        parents.get(&key)?.informer.as_ref().map(|i| i.stats())
    }

    /// Stops watching the children of `parent` and forgets it: its attempt ended, and a
    /// process that runs many attempts (a reusable worker) must not keep every one's watch.
    pub fn release(&self, parent: &ActionIdentifier) {
        let Some(key) = ParentKey::of(parent) else {
            return;
        };
        let released = self.inner.lock().remove(&key);
        if let Some(released) = released {
            released.permits.close();
            if let Some(informer) = released.informer {
                informer.shutdown();
            }
        }
    }

    /// How many parents have a watch or a submission slot open, for tests.
    pub fn parents(&self) -> usize {
        self.inner.lock().len()
    }

    /// Stops every watch and fails pending and later calls with `Closed`. Aborts triggered
    /// by cancelled submits still go out.
    pub fn close(&self) {
        self.inner.close();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }
}
