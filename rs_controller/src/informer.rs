//! One `WatchForUpdates` stream per parent action, and the cache of its children's states.
//!
//! The server opens every stream with a snapshot of all children, then a sentinel control
//! message, then live updates. Because every new stream starts with a full snapshot, a
//! broken stream is repaired by simply opening another one and merging what it says; the
//! only care needed is that a stale snapshot must never move a finished child back to a
//! running phase, since its waiters have already been told it finished.
//!
//! Waiters are kept per child, so an update wakes only the callers waiting for that child:
//! a parent with thousands of children must not wake all of them on every update.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flyteidl2::flyteidl::actions::WatchForUpdatesRequest;
use flyteidl2::flyteidl::actions::{watch_for_updates_request, watch_for_updates_response};
use flyteidl2::flyteidl::common::{ActionIdentifier, ActionPhase, RunIdentifier};
use flyteidl2::flyteidl::workflow::ActionUpdate;
use prost::Message;
use tokio::sync::{oneshot, watch};
use tonic::{Code, Status};

use crate::client::{code_name, is_transient, Backoff, BackoffPolicy, Client};
use crate::controller::ControllerError;

/// Whether a phase is final. RECOVERED (reused from a prior run) is final too.
pub fn is_terminal(phase: i32) -> bool {
    matches!(
        ActionPhase::try_from(phase),
        Ok(ActionPhase::Succeeded
            | ActionPhase::Failed
            | ActionPhase::Aborted
            | ActionPhase::TimedOut
            | ActionPhase::Recovered)
    )
}

/// How the watch stream reconnects.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchPolicy {
    pub backoff: BackoffPolicy,
    /// Consecutive non-transient failures to open the stream (PERMISSION_DENIED, NOT_FOUND,
    /// UNIMPLEMENTED...) after which the informer gives up and fails its waiters with that
    /// error, instead of leaving them waiting on something that cannot work. Transient
    /// failures are retried forever.
    pub give_up_after: u32,
}

impl Default for WatchPolicy {
    fn default() -> Self {
        WatchPolicy {
            backoff: BackoffPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
                multiplier: 2.0,
            },
            give_up_after: 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum SyncState {
    /// The first snapshot has not been fully received yet.
    Pending,
    Synced,
    /// The informer stopped; every later wait fails with this error.
    Stopped(ControllerError),
}

/// Boxed: a channel holds its value's room inline from the start, and a parent waits on
/// one per child (an `ActionUpdate` is about a kilobyte inline).
type Waiter = oneshot::Sender<Result<Box<ActionUpdate>, ControllerError>>;

/// What the cache keeps of a child. A parent may have a hundred thousand children, so not
/// their updates as received (about a kilobyte each, mostly empty room).
enum Known {
    /// Not finished: its phase is all that matters (a later update replaces it).
    Running(i32),
    /// Finished: its final update, encoded without its action id (the run and the child's
    /// name give that back), typically a hundred bytes or two.
    Done(Box<[u8]>),
}

impl Known {
    fn of(update: &ActionUpdate) -> Known {
        if is_terminal(update.phase) {
            let stripped = ActionUpdate {
                action_id: None,
                ..update.clone()
            };
            Known::Done(stripped.encode_to_vec().into_boxed_slice())
        } else {
            Known::Running(update.phase)
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Known::Done(_))
    }

    /// The child's update as the server last sent it (a running child's: its phase only).
    fn update(&self, run: &Option<RunIdentifier>, name: &str) -> ActionUpdate {
        let mut update = match self {
            Known::Running(phase) => ActionUpdate {
                phase: *phase,
                ..Default::default()
            },
            // Encoded by `of` from a valid message: decoding it cannot fail.
            Known::Done(bytes) => ActionUpdate::decode(&bytes[..]).unwrap_or_default(),
        };
        update.action_id = Some(ActionIdentifier {
            run: run.clone(),
            name: name.to_string(),
        });
        update
    }
}

#[derive(Default)]
struct State {
    actions: HashMap<String, Known>,
    waiters: HashMap<String, Vec<Waiter>>,
    stopped: Option<ControllerError>,
}

struct Shared {
    /// The run of the watched parent (and so of every child).
    run: Option<RunIdentifier>,
    state: Mutex<State>,
    sync: watch::Sender<SyncState>,
    streams_opened: AtomicU64,
    sentinels: AtomicU64,
    updates: AtomicU64,
}

impl Shared {
    /// The state stays consistent even if a holder panicked (every mutation is a single
    /// insert or removal), so a poisoned lock is recovered rather than propagated.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, update: ActionUpdate) {
        let Some(name) = update.action_id.as_ref().map(|id| id.name.clone()) else {
            // An update without an action id is the protocol's older form of the sentinel.
            self.mark_synced();
            return;
        };
        self.updates.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        if state.actions.get(&name).is_some_and(Known::is_terminal) {
            // Final: a stale snapshot after a reconnect must not resurrect it, and its
            // waiters have already been answered.
            return;
        }
        let known = Known::of(&update);
        if known.is_terminal() {
            if let Some(waiters) = state.waiters.remove(&name) {
                for waiter in waiters {
                    // A waiter whose caller gave up has dropped its receiver; nothing to do.
                    let _ = waiter.send(Ok(Box::new(update.clone())));
                }
            }
        }
        state.actions.insert(name, known);
    }

    fn mark_synced(&self) {
        self.sentinels.fetch_add(1, Ordering::Relaxed);
        self.sync.send_if_modified(|s| {
            if *s == SyncState::Pending {
                *s = SyncState::Synced;
                true
            } else {
                false
            }
        });
    }

    /// Stops the informer: fails every waiter with `err`, now and later.
    fn stop(&self, err: ControllerError) {
        let waiters = {
            let mut state = self.lock();
            if state.stopped.is_some() {
                return;
            }
            state.stopped = Some(err.clone());
            std::mem::take(&mut state.waiters)
        };
        for waiter in waiters.into_values().flatten() {
            let _ = waiter.send(Err(err.clone()));
        }
        self.sync.send_replace(SyncState::Stopped(err));
    }
}

/// Counters for diagnostics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InformerStats {
    /// Watch streams successfully opened (the first one plus reconnects).
    pub streams_opened: u64,
    /// Sentinels received, one per stream that delivered its whole snapshot.
    pub sentinels: u64,
    /// Action updates received (including ones ignored as stale).
    pub updates: u64,
    /// Children currently known.
    pub children: usize,
    pub synced: bool,
    pub stopped: bool,
}

/// The watch of one parent action. Dropping it (or calling `shutdown`) ends the stream task.
pub struct Informer {
    parent: ActionIdentifier,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl Informer {
    /// Starts watching the children of `parent`. Must be called inside a tokio runtime.
    pub fn start(
        client: Arc<Client>,
        parent: ActionIdentifier,
        policy: WatchPolicy,
    ) -> Result<Arc<Informer>, ControllerError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| ControllerError::Client(crate::client::ClientError::NoRuntime))?;
        let (sync, _) = watch::channel(SyncState::Pending);
        let shared = Arc::new(Shared {
            run: parent.run.clone(),
            state: Mutex::new(State::default()),
            sync,
            streams_opened: AtomicU64::new(0),
            sentinels: AtomicU64::new(0),
            updates: AtomicU64::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        handle.spawn(run(
            shared.clone(),
            client,
            parent.clone(),
            policy,
            shutdown_rx,
        ));
        Ok(Arc::new(Informer {
            parent,
            shared,
            shutdown,
        }))
    }

    pub fn parent(&self) -> &ActionIdentifier {
        &self.parent
    }

    /// Waits until `child` reaches a terminal phase and returns that update.
    pub async fn wait_terminal(&self, child: &str) -> Result<ActionUpdate, ControllerError> {
        let rx = {
            let mut state = self.shared.lock();
            if let Some(err) = &state.stopped {
                return Err(err.clone());
            }
            if let Some(known) = state.actions.get(child) {
                if known.is_terminal() {
                    return Ok(known.update(&self.shared.run, child));
                }
            }
            let (tx, rx) = oneshot::channel();
            let waiters = state.waiters.entry(child.to_string()).or_default();
            // Drop the senders of callers that stopped waiting (cancelled tasks), so a
            // child that never finishes does not accumulate them.
            waiters.retain(|w| !w.is_closed());
            waiters.push(tx);
            rx
        };
        match rx.await {
            Ok(result) => result.map(|update| *update),
            Err(_) => Err(ControllerError::Closed),
        }
    }

    /// Waits until the first snapshot has been received, so that `get` answers from the
    /// server's full state rather than from whatever arrived so far.
    pub async fn wait_synced(&self) -> Result<(), ControllerError> {
        let mut rx = self.shared.sync.subscribe();
        let state = rx
            .wait_for(|s| *s != SyncState::Pending)
            .await
            .map_err(|_| ControllerError::Closed)?;
        match &*state {
            SyncState::Stopped(err) => Err(err.clone()),
            _ => Ok(()),
        }
    }

    /// The latest known state of `child`, if any.
    pub fn get(&self, child: &str) -> Option<ActionUpdate> {
        let state = self.shared.lock();
        let known = state.actions.get(child)?;
        Some(known.update(&self.shared.run, child))
    }

    pub fn is_synced(&self) -> bool {
        *self.shared.sync.borrow() == SyncState::Synced
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped.is_some()
    }

    pub fn stats(&self) -> InformerStats {
        let (children, stopped) = {
            let state = self.shared.lock();
            (state.actions.len(), state.stopped.is_some())
        };
        InformerStats {
            streams_opened: self.shared.streams_opened.load(Ordering::Relaxed),
            sentinels: self.shared.sentinels.load(Ordering::Relaxed),
            updates: self.shared.updates.load(Ordering::Relaxed),
            children,
            synced: self.is_synced(),
            stopped,
        }
    }

    /// Ends the stream and fails current and future waiters with `Closed`.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.shared.stop(ControllerError::Closed);
    }
}

impl Drop for Informer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How one stream ended.
struct StreamEnd {
    /// Whether it delivered anything; a stream that did was healthy, so the backoff restarts.
    received: bool,
    error: Option<Status>,
}

async fn run(
    shared: Arc<Shared>,
    client: Arc<Client>,
    parent: ActionIdentifier,
    policy: WatchPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(policy.backoff.clone());
    let mut permanent_failures = 0u32;
    loop {
        let end = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            end = watch_once(&shared, &client, &parent) => end,
        };
        if end.received {
            backoff.reset();
            permanent_failures = 0;
        }
        match &end.error {
            None => tracing::debug!(parent = %parent.name, "watch stream ended; reconnecting"),
            Some(status) if is_transient(status) => {
                tracing::debug!(parent = %parent.name, %status, "watch stream failed; reconnecting");
            }
            Some(status) => {
                if status.code() == Code::Unauthenticated && client.refresh_credentials().await {
                    continue;
                }
                permanent_failures += 1;
                tracing::warn!(
                    parent = %parent.name,
                    code = code_name(status.code()),
                    message = status.message(),
                    attempt = permanent_failures,
                    "cannot watch the children of this action"
                );
                if permanent_failures >= policy.give_up_after {
                    shared.stop(ControllerError::Rpc {
                        code: status.code(),
                        message: format!(
                            "watching the children of action '{}' failed {} times: {}",
                            parent.name,
                            permanent_failures,
                            status.message()
                        ),
                    });
                    return;
                }
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    shared.stop(ControllerError::Closed);
}

async fn watch_once(shared: &Shared, client: &Client, parent: &ActionIdentifier) -> StreamEnd {
    let mut actions = match client.actions() {
        Ok(actions) => actions,
        Err(e) => {
            return StreamEnd {
                received: false,
                error: Some(Status::failed_precondition(e.to_string())),
            }
        }
    };
    let request = WatchForUpdatesRequest {
        filter: Some(watch_for_updates_request::Filter::ParentActionId(
            parent.clone(),
        )),
    };
    let mut stream = match actions.watch_for_updates(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            return StreamEnd {
                received: false,
                error: Some(status),
            }
        }
    };
    shared.streams_opened.fetch_add(1, Ordering::Relaxed);
    let mut received = false;
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                received = true;
                match response.message {
                    Some(watch_for_updates_response::Message::ActionUpdate(update)) => {
                        shared.apply(update)
                    }
                    Some(watch_for_updates_response::Message::ControlMessage(control))
                        if control.sentinel =>
                    {
                        shared.mark_synced()
                    }
                    // Other control messages, and message kinds newer than this client.
                    Some(watch_for_updates_response::Message::ControlMessage(_)) | None => {}
                }
            }
            Ok(None) => {
                return StreamEnd {
                    received,
                    error: None,
                }
            }
            Err(status) => {
                return StreamEnd {
                    received,
                    error: Some(status),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(name: &str, phase: ActionPhase) -> ActionUpdate {
        ActionUpdate {
            action_id: Some(ActionIdentifier {
                run: None,
                name: name.to_string(),
            }),
            phase: phase as i32,
            ..Default::default()
        }
    }

    fn shared() -> Shared {
        Shared {
            run: Some(RunIdentifier {
                name: "r".into(),
                ..Default::default()
            }),
            state: Mutex::new(State::default()),
            sync: watch::channel(SyncState::Pending).0,
            streams_opened: AtomicU64::new(0),
            sentinels: AtomicU64::new(0),
            updates: AtomicU64::new(0),
        }
    }

    #[test]
    fn waiters_get_the_first_terminal_update_and_stale_ones_are_ignored() {
        let shared = shared();
        let (tx, mut rx) = oneshot::channel();
        shared
            .lock()
            .waiters
            .entry("a".into())
            .or_default()
            .push(tx);

        shared.apply(update("a", ActionPhase::Running));
        assert!(rx.try_recv().is_err(), "woken before the child finished");
        shared.apply(update("a", ActionPhase::Succeeded));
        let got = rx.try_recv().unwrap().unwrap();
        assert_eq!(got.phase, ActionPhase::Succeeded as i32);

        // A snapshot from a lagging server, then a contradicting terminal state.
        shared.apply(update("a", ActionPhase::Running));
        shared.apply(update("a", ActionPhase::Failed));
        let cached = shared.lock().actions["a"].update(&shared.run, "a");
        assert_eq!(cached.phase, ActionPhase::Succeeded as i32);
        assert_eq!(cached.action_id.unwrap().run.unwrap().name, "r");
        assert_eq!(shared.updates.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn stopping_fails_waiters_and_sync() {
        let shared = shared();
        let (tx, mut rx) = oneshot::channel();
        shared
            .lock()
            .waiters
            .entry("a".into())
            .or_default()
            .push(tx);
        let err = ControllerError::Rpc {
            code: Code::PermissionDenied,
            message: "no".into(),
        };
        shared.stop(err.clone());
        assert_eq!(rx.try_recv().unwrap(), Err(err.clone()));
        assert_eq!(*shared.sync.borrow(), SyncState::Stopped(err));
        // A later stop (e.g. shutdown) keeps the first reason.
        shared.stop(ControllerError::Closed);
        assert!(matches!(
            shared.lock().stopped,
            Some(ControllerError::Rpc { .. })
        ));
    }

    #[test]
    fn an_update_without_id_counts_as_the_sentinel() {
        let shared = shared();
        shared.apply(ActionUpdate::default());
        assert_eq!(*shared.sync.borrow(), SyncState::Synced);
    }

    #[test]
    fn terminal_phases() {
        for p in [
            ActionPhase::Succeeded,
            ActionPhase::Failed,
            ActionPhase::Aborted,
            ActionPhase::TimedOut,
            ActionPhase::Recovered,
        ] {
            assert!(is_terminal(p as i32), "{p:?}");
        }
        for p in [
            ActionPhase::Unspecified,
            ActionPhase::Queued,
            ActionPhase::WaitingForResources,
            ActionPhase::Initializing,
            ActionPhase::Running,
            ActionPhase::Paused,
        ] {
            assert!(!is_terminal(p as i32), "{p:?}");
        }
        assert!(!is_terminal(1234));
        assert!(!is_terminal(-1));
    }

    #[test]
    fn finished_children_are_kept_small_and_whole() {
        let run = Some(RunIdentifier {
            org: "o".into(),
            project: "p".into(),
            domain: "d".into(),
            name: "r".into(),
        });
        let mut done = update("a", ActionPhase::Failed);
        done.action_id = Some(ActionIdentifier {
            run: run.clone(),
            name: "a".into(),
        });
        done.output_uri = "file:///data/r/a/1".into();
        let known = Known::of(&done);
        assert!(matches!(&known, Known::Done(bytes) if bytes.len() < 64));
        assert_eq!(known.update(&run, "a"), done);

        let running = Known::of(&update("a", ActionPhase::Running));
        assert!(!running.is_terminal());
        assert_eq!(running.update(&run, "a").phase, ActionPhase::Running as i32);
        // What a parent holds per child, in the cache and per waiting call.
        assert!(std::mem::size_of::<Known>() <= 24);
        assert!(std::mem::size_of::<Result<Box<ActionUpdate>, ControllerError>>() <= 64);
    }
}
