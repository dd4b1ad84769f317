//! The backend's shared state and the operations the RPCs perform on it.
//!
//! Every operation commits to the store first and only then tells the world (watchers through
//! the broadcast channel, the scheduler through its wake-up), so nothing observed can be lost.

mod abort;
pub mod condition;
mod report;
mod submit;

use crate::attempt_token::AttemptKeys;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tonic::Status;

use crate::cache_gate::CacheGate;
use crate::config::BackendConfig;
use crate::executor::forkserver::ForkServer;
use crate::executor::pool::Pools;
use crate::executor::Scheduler;
use crate::layout::Layout;
use crate::names::RunKey;
use crate::phase;
use crate::secrets::SecretBox;
use crate::store::{ActionRecord, RunRecord, Store, StoreError};

pub use report::StatusReport;
pub use submit::{ActionRequest, ActionSpecRequest, RunInputs, RunRequest, ROOT_ACTION};

/// How many changes a watcher may fall behind before it gets a fresh snapshot instead.
pub(crate) const EVENT_BUFFER: usize = 4096;

pub struct Engine {
    pub config: BackendConfig,
    pub layout: Layout,
    pub store: Store,
    /// Where action processes reach this backend ("127.0.0.1:PORT").
    pub endpoint: String,
    pub scheduler: Scheduler,
    /// Seals and opens secret values (its key lives in the data dir).
    pub sealer: SecretBox,
    /// Signs the token each attempt's process is given (see [`crate::attempt_token`]).
    pub attempt_keys: AttemptKeys,
    /// Hides the database and keys from the processes started for tasks (None: the system
    /// cannot; see [`crate::sandbox`]).
    pub hider: Option<Arc<crate::sandbox::Hider>>,
    /// Set when attempts are forked from a warm server instead of spawned.
    pub forks: Option<ForkServer>,
    /// The warm workers of task environments with a reuse policy.
    pub pools: Pools,
    /// Set when callers must authenticate.
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    events: broadcast::Sender<Arc<ActionRecord>>,
    stop: watch::Sender<bool>,
    /// CreateRun checks for an existing run before writing its inputs file; serializing
    /// creations keeps two racing requests from overwriting each other's inputs.
    create_run_lock: tokio::sync::Mutex<()>,
    /// Whose turn it is to run a serialized cached task, per cache key (by action seq).
    pub cache_gate: CacheGate<()>,
}

impl Engine {
    /// The same engine, requiring callers to authenticate with `auth`.
    pub fn with_auth(mut self, auth: Option<Arc<crate::auth::Authenticator>>) -> Self {
        self.auth = auth;
        self
    }

    pub fn new(
        config: BackendConfig,
        layout: Layout,
        store: Store,
        endpoint: String,
        sealer: SecretBox,
        attempt_keys: AttemptKeys,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (stop, _) = watch::channel(false);
        let scheduler = Scheduler::new(config.max_parallel);
        let hider = config
            .sandbox
            .then(|| crate::sandbox::Hider::for_layout(&layout).map(Arc::new))
            .flatten();
        let forks = config
            .fork_server
            .clone()
            .map(|command| ForkServer::new(command, layout.fork_server_log_path(), hider.clone()));
        let pools = Pools::new(config.worker.clone(), layout.clone(), hider.clone());
        Self {
            config,
            layout,
            store,
            endpoint,
            scheduler,
            sealer,
            attempt_keys,
            hider,
            forks,
            pools,
            auth: None,
            events,
            stop,
            create_run_lock: tokio::sync::Mutex::new(()),
            cache_gate: CacheGate::default(),
        }
    }

    /// Announces a committed change to watchers and lets the scheduler re-evaluate.
    pub fn publish(&self, record: ActionRecord) -> Arc<ActionRecord> {
        if phase::is_terminal(record.phase) {
            // A serialized cached task that ended passes its key on: the next caller of the
            // same key finds the cache filled, or runs if this one failed.
            if let Some((next, ())) = self.cache_gate.release(record.seq as u64) {
                self.scheduler.enqueue_soon(next as i64);
            }
        }
        if record.parent.is_none() && phase::is_terminal(record.phase) {
            self.notify_run_end(&record);
        }
        self.scheduler.track_child(&record);
        let record = Arc::new(record);
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(record.clone());
        self.scheduler.wake();
        record
    }

    /// Delivers the notifications a run's spec asks for when it ends (off this thread: a slow
    /// webhook holds up nothing).
    fn notify_run_end(&self, root: &ActionRecord) {
        use flyteidl2::flyteidl::core::ExecutionError;
        use flyteidl2::flyteidl::task::run_spec::NotificationSettings;
        use flyteidl2::flyteidl::task::RunSpec;
        use prost::Message;

        let spec = match self.store.run(&root.run) {
            Ok(Some(run)) => run.run_spec,
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(%err, run = %root.run, "could not read the run spec to notify");
                None
            }
        };
        let Some(rules) = spec
            .and_then(|bytes| RunSpec::decode(bytes.as_slice()).ok())
            .and_then(|spec| match spec.notification_settings {
                Some(NotificationSettings::NotificationRules(rules)) => Some(rules),
                _ => None,
            })
            .filter(|rules| !rules.rules.is_empty())
        else {
            return;
        };
        let error = root
            .error
            .as_deref()
            .and_then(|bytes| ExecutionError::decode(bytes).ok())
            .map(|e| e.message)
            .or_else(|| root.abort_reason.clone())
            .unwrap_or_default();
        let outcome = crate::notify::RunOutcome {
            org: root.run.org.clone(),
            project: root.run.project.clone(),
            domain: root.run.domain.clone(),
            name: root.run.name.clone(),
            phase: root.phase,
            error,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    crate::notify::deliver(&rules, &outcome).await;
                });
            }
            Err(_) => {
                tracing::warn!(run = %root.run, "no runtime to deliver the run's notifications on")
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ActionRecord>> {
        self.events.subscribe()
    }

    /// Resolves once the backend starts stopping; streams end then.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn begin_stop(&self) {
        self.stop.send_replace(true);
        self.scheduler.wake();
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

impl Engine {
    /// The run's record, or NOT_FOUND naming it.
    pub fn require_run(&self, run: &RunKey) -> Result<RunRecord, Status> {
        self.store
            .run(run)
            .map_err(|e| internal("look up run", e))?
            .ok_or_else(|| Status::not_found(format!("run {run} does not exist")))
    }
}

/// A store failure as the client sees it.
pub fn internal(context: &str, err: StoreError) -> Status {
    tracing::error!(%err, "{context}");
    Status::internal(format!("{context}: {err}"))
}
