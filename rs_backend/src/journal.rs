//! The durable record of a run whose actions execute in the caller's process (local mode).
//!
//! Local runs go into the data dir's backend database, in the same tables as the backend's
//! runs, so `flyte get run`/`get action` and every other reader show them alike, and a run
//! killed halfway can be resumed by name: the actions it finished are read back instead of run
//! again. Recording must not slow the in-process engine down, so changes are queued and a
//! writer thread commits them in batches (one transaction per batch); `flush` waits for
//! everything queued so far. A change lost to a kill only means that action runs again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::core::{execution_error::ErrorKind, ExecutionError};
use flyteidl2::flyteidl::task::TaskIdentifier;
use flyteidl2::flyteidl::workflow::TaskAction;
use prost::Message;

use crate::clock::now_ms;
use crate::datafile::read_optional;
use crate::layout::{outputs_file_uri, uri_to_path, Layout};
use crate::procfs::{self, ProcessRef};
use crate::store::{
    ActionChange, CacheEntry, FinishedAction, JournalEvent, NewInProcessRun, QueuedAction, Store,
    StoreError,
};

pub use crate::names::RunKey;
pub use crate::store::{ActionKind, OpenError, Opened};

/// How often the writer looks at what was recorded.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// How long an unfinished action may wait before it is written. Finished actions are written
/// at the next batch; holding the others back writes most actions once (queued, ran and
/// finished in one row), and losing a held one to a kill only means it runs again on resume.
const HOLD: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the run record in {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot create the data dir {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("recording run {run} failed: {message}")]
    Writer { run: String, message: String },
}

/// Changes waiting for the writer. Recording one is a push under a lock: the writer is only
/// woken when it sleeps with nothing to do, never once per change.
#[derive(Default)]
struct Pending {
    events: Vec<JournalEvent>,
    /// Flushes asked for, and how many of them the writer has served.
    requested: u64,
    served: u64,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// The writer waits on it for work; flushes wait on it for the writer.
    wake: Condvar,
    served: Condvar,
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The open record of one in-process run.
pub struct RunJournal {
    key: RunKey,
    store: Arc<Store>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A serialized `core.ExecutionError` of the user's kind, as local mode records failures.
pub fn user_error(code: &str, message: &str) -> Vec<u8> {
    execution_error(code, message, ErrorKind::User)
}

fn execution_error(code: &str, message: &str, kind: ErrorKind) -> Vec<u8> {
    ExecutionError {
        code: code.to_string(),
        message: message.to_string(),
        kind: kind as i32,
        worker: "local".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A serialized `workflow.TaskAction` naming `task_name`: what a local action records as its
/// spec (local mode does not serialize its tasks).
fn task_spec(task_name: &str) -> Vec<u8> {
    TaskAction {
        id: Some(TaskIdentifier {
            name: task_name.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn this_process() -> ProcessRef {
    let pid = std::process::id() as i32;
    ProcessRef {
        pid,
        start_ticks: procfs::start_ticks(pid).unwrap_or_default(),
    }
}

fn ended_error() -> Vec<u8> {
    execution_error(
        "Abandoned",
        "the run ended before this action finished (its caller stopped waiting for it)",
        ErrorKind::User,
    )
}

pub(crate) fn interrupted_error() -> Vec<u8> {
    execution_error(
        "Interrupted",
        "the process running this local run ended before the action finished; running the \
         run again with the same name resumes it",
        ErrorKind::System,
    )
}

impl RunJournal {
    /// Opens (creating or resuming) the record of run `key` in `data_dir`, with its root
    /// action running `task_name` on `inputs` (a serialized `task.Inputs`). A resumed run hands
    /// back the outputs of the actions that already succeeded.
    pub fn open(
        data_dir: &Path,
        key: RunKey,
        task_name: &str,
        inputs: &[u8],
    ) -> Result<(RunJournal, Opened), JournalError> {
        std::fs::create_dir_all(data_dir).map_err(|source| JournalError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let layout = Layout::new(data_dir.to_path_buf());
        let db = layout.db_path();
        let store_err = |source| JournalError::Store {
            path: db.display().to_string(),
            source,
        };
        for failure in drain_run(&key) {
            tracing::warn!("{failure}");
        }
        let store = Arc::new(Store::open(&db).map_err(store_err)?);
        let now = now_ms();
        store
            .fail_orphaned_local_runs(&interrupted_error(), now)
            .map_err(store_err)?;
        let run_output_base = layout.run_base_uri(&key);
        let opened = store.open_in_process_run(&NewInProcessRun {
            key: &key,
            owner: this_process(),
            spec: &task_spec(task_name),
            task_name,
            inputs,
            run_output_base: &run_output_base,
            interrupted: &interrupted_error(),
            now_ms: now,
        })?;
        let shared = Arc::new(Shared::default());
        let writer = {
            let key = key.clone();
            let shared = shared.clone();
            let store = store.clone();
            std::thread::Builder::new()
                .name(format!("flyte-journal-{}", key.name))
                .spawn(move || write_batches(&store, &key, &run_output_base, &shared))
                .map_err(|source| JournalError::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                })?
        };
        Ok((
            RunJournal {
                key,
                store,
                shared,
                writer: Mutex::new(Some(writer)),
            },
            opened,
        ))
    }

    pub fn run(&self) -> &RunKey {
        &self.key
    }

    fn send(&self, event: JournalEvent) {
        let mut pending = self.shared.lock();
        if pending.closing {
            return;
        }
        pending.events.push(event);
        if pending.events.len() == 1 {
            self.shared.wake.notify_one();
        }
    }

    pub fn queued(
        &self,
        name: &str,
        parent: Option<&str>,
        group: Option<&str>,
        kind: ActionKind,
        task_name: &str,
        inputs: Option<Vec<u8>>,
    ) {
        self.send(JournalEvent::Queued {
            name: name.to_string(),
            action: Box::new(QueuedAction {
                parent: parent.map(str::to_string),
                group: group.unwrap_or_default().to_string(),
                kind,
                task_name: task_name.to_string(),
                inputs,
                at_ms: now_ms(),
            }),
        });
    }

    pub fn started(&self, name: &str, attempt: u32) {
        self.send(JournalEvent::Started {
            name: name.to_string(),
            attempt,
            at_ms: now_ms(),
        });
    }

    pub fn finished(
        &self,
        name: &str,
        phase: ActionPhase,
        error: Option<Vec<u8>>,
        outputs: Option<Vec<u8>>,
        cache_hit: bool,
    ) {
        self.send(JournalEvent::Finished {
            name: name.to_string(),
            outcome: Box::new(FinishedAction {
                phase,
                error,
                outputs,
                cache_hit,
                at_ms: now_ms(),
            }),
        });
    }

    fn store_error(&self, source: StoreError) -> JournalError {
        JournalError::Store {
            path: format!("the data dir of run {}", self.key.name),
            source,
        }
    }

    /// Outputs (a serialized `task.Outputs`) cached under `key` by a local run, or by a
    /// backend action whose outputs file is still there, at most `max_age_ms` old (None: any
    /// age).
    pub fn cache_get(
        &self,
        key: &str,
        max_age_ms: Option<i64>,
    ) -> Result<Option<Vec<u8>>, JournalError> {
        let oldest = max_age_ms.map(|age| now_ms().saturating_sub(age));
        match self
            .store
            .cache_entry(key, oldest)
            .map_err(|e| self.store_error(e))?
        {
            None => Ok(None),
            Some(CacheEntry::Inline(bytes)) => Ok(Some(bytes)),
            Some(CacheEntry::Uri(uri)) => {
                let Ok(path) = uri_to_path(&outputs_file_uri(&uri)) else {
                    return Ok(None);
                };
                Ok(read_optional(&path).ok().flatten())
            }
        }
    }

    /// Caches `outputs` under `key`; durable when this returns, so a caller waiting on the
    /// same key (`Cache(serialize=True)`) finds it.
    pub fn cache_put(
        &self,
        key: &str,
        task_name: &str,
        outputs: &[u8],
    ) -> Result<(), JournalError> {
        self.store
            .cache_put_inline(key, task_name, outputs, now_ms())
            .map_err(|e| self.store_error(e))
    }

    fn failed(&self) -> Result<(), JournalError> {
        match self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some(message) => Err(JournalError::Writer {
                run: self.key.name.clone(),
                message,
            }),
            None => Ok(()),
        }
    }

    /// Waits until every change recorded so far is committed.
    pub fn flush(&self) -> Result<(), JournalError> {
        let mut pending = self.shared.lock();
        if !pending.closing {
            pending.requested += 1;
            let ticket = pending.requested;
            self.shared.wake.notify_one();
            while pending.served < ticket && !pending.closing {
                pending = self
                    .shared
                    .served
                    .wait(pending)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        drop(pending);
        self.failed()
    }

    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        {
            let mut pending = self.shared.lock();
            pending.closing = true;
            self.shared.wake.notify_one();
            self.shared.served.notify_all();
        }
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Commits what is recorded, stops the writer and releases the run (whatever is still
    /// unfinished is failed: its caller stopped waiting for it).
    pub fn close(&self) -> Result<(), JournalError> {
        if let Some(writer) = self.stop_writer() {
            let _ = writer.join();
        }
        self.failed()
    }

    /// Like [`close`](Self::close), without waiting: the writer finishes on its own, and
    /// [`drain_closing`] waits for every journal closed this way (at interpreter exit, say).
    pub fn close_in_background(&self) {
        if let Some(writer) = self.stop_writer() {
            CLOSING.lock().unwrap_or_else(|e| e.into_inner()).push((
                self.key.clone(),
                self.shared.clone(),
                writer,
            ));
        }
    }
}

type Closing = (RunKey, Arc<Shared>, JoinHandle<()>);

/// Journals closed in the background whose writer may still be committing.
static CLOSING: Mutex<Vec<Closing>> = Mutex::new(Vec::new());

/// Waits for every journal closed in the background; returns what failed to be recorded.
pub fn drain_closing() -> Vec<String> {
    drain_where(|_| true)
}

/// Waits for the journals of `run` closed in the background: a run opened again must not be
/// released by its previous writer.
fn drain_run(run: &RunKey) -> Vec<String> {
    drain_where(|key| key == run)
}

fn drain_where(pick: impl Fn(&RunKey) -> bool) -> Vec<String> {
    let closing: Vec<Closing> = {
        let mut all = CLOSING.lock().unwrap_or_else(|e| e.into_inner());
        let (picked, kept) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|(key, _, _)| pick(key));
        *all = kept;
        picked
    };
    let mut failures = Vec::new();
    for (key, shared, writer) in closing {
        let _ = writer.join();
        if let Some(message) = shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            failures.push(format!("recording run {key} failed: {message}"));
        }
    }
    failures
}

impl Drop for RunJournal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn write_batches(store: &Store, key: &RunKey, run_output_base: &str, shared: &Shared) {
    // Each task's spec, encoded once.
    let mut specs: HashMap<String, Vec<u8>> = HashMap::new();
    // Recorded but not yet written, with when each was first seen.
    let mut held: HashMap<String, (Instant, ActionChange)> = HashMap::new();
    let mut batch: Vec<(String, ActionChange)> = Vec::new();
    loop {
        let mut pending = shared.lock();
        let idle = |p: &Pending| p.events.is_empty() && p.requested == p.served && !p.closing;
        while idle(&pending) && held.is_empty() {
            pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
        }
        if pending.requested == pending.served && !pending.closing {
            // Gather what else comes within the window into the same transaction.
            pending = shared
                .wake
                .wait_timeout(pending, BATCH_WINDOW)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let events = std::mem::take(&mut pending.events);
        let (ticket, closing) = (pending.requested, pending.closing);
        let everything = pending.requested != pending.served || closing;
        drop(pending);

        let now = Instant::now();
        for event in events {
            if let Some((_, change)) = held.get_mut(event.action()) {
                change.fold(event);
            } else {
                let mut change = ActionChange::default();
                let name = change.fold(event);
                held.insert(name, (now, change));
            }
        }
        let due = |(since, change): &(Instant, ActionChange)| {
            everything || change.is_finished() || now.duration_since(*since) >= HOLD
        };
        if held.values().all(due) {
            batch.extend(held.drain().map(|(name, (_, change))| (name, change)));
        } else {
            let names: Vec<String> = held
                .iter()
                .filter(|(_, entry)| due(entry))
                .map(|(name, _)| name.clone())
                .collect();
            for name in names {
                if let Some((_, change)) = held.remove(&name) {
                    batch.push((name, change));
                }
            }
        }
        for (_, change) in &batch {
            if let Some(task) = change.queued_task() {
                if !specs.contains_key(task) {
                    specs.insert(task.to_string(), task_spec(task));
                }
            }
        }
        commit(store, key, run_output_base, &batch, &specs, shared);
        batch.clear();

        let mut pending = shared.lock();
        pending.served = ticket;
        shared.served.notify_all();
        if closing && pending.events.is_empty() && held.is_empty() {
            break;
        }
    }
    if let Err(err) = store.release_in_process_run(key, &ended_error(), now_ms()) {
        shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| err.to_string());
    }
}

fn commit(
    store: &Store,
    key: &RunKey,
    run_output_base: &str,
    batch: &[(String, ActionChange)],
    specs: &HashMap<String, Vec<u8>>,
    shared: &Shared,
) {
    if batch.is_empty() {
        return;
    }
    let spec_of = |task: &str| specs.get(task).map(Vec::as_slice).unwrap_or_default();
    if let Err(err) = store.apply_journal(key, run_output_base, batch, spec_of) {
        tracing::warn!(run = %key, "recording the run failed: {err}");
        shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| err.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{new_action, run_key as key};

    /// The succeeded actions a reopened run hands back.
    fn resumed(opened: Opened) -> Vec<(String, Vec<u8>)> {
        match opened {
            Opened::Resumed { succeeded } => succeeded,
            Opened::Created => panic!("the run exists"),
        }
    }

    fn phase_of(store: &Store, run: &RunKey, action: &str) -> ActionPhase {
        store.action(run, action).unwrap().unwrap().phase
    }

    #[test]
    fn a_local_run_is_recorded_and_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let run = key("r1");
        let (journal, opened) =
            RunJournal::open(dir.path(), run.clone(), "env.main", b"in").unwrap();
        assert!(matches!(opened, Opened::Created));
        journal.started("a0", 1);
        journal.queued(
            "c1",
            Some("a0"),
            None,
            ActionKind::Task,
            "env.child",
            Some(b"c1-in".to_vec()),
        );
        journal.queued(
            "c2",
            Some("a0"),
            Some("g"),
            ActionKind::Task,
            "env.child",
            None,
        );
        journal.started("c1", 1);
        journal.started("c2", 1);
        journal.finished(
            "c1",
            ActionPhase::Succeeded,
            None,
            Some(b"c1-out".to_vec()),
            false,
        );
        journal.cache_put("k", "env.child", b"cached").unwrap();
        assert_eq!(
            journal.cache_get("k", None).unwrap().as_deref(),
            Some(&b"cached"[..])
        );
        assert_eq!(journal.cache_get("missing", None).unwrap(), None);
        // An entry older than the caller accepts is a miss.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(journal.cache_get("k", Some(5)).unwrap(), None);
        assert!(journal.cache_get("k", Some(60_000)).unwrap().is_some());
        journal.flush().unwrap();

        let store = Store::open(&dir.path().join("backend.db")).unwrap();
        assert_eq!(phase_of(&store, &run, "a0"), ActionPhase::Running);
        assert_eq!(phase_of(&store, &run, "c1"), ActionPhase::Succeeded);
        assert_eq!(phase_of(&store, &run, "c2"), ActionPhase::Running);
        let c1 = store.action(&run, "c1").unwrap().unwrap();
        assert_eq!(c1.parent.as_deref(), Some("a0"));
        assert_eq!(c1.task_name, "env.child");
        assert_eq!(
            store.inline_data(c1.seq).unwrap(),
            (Some(b"c1-in".to_vec()), Some(b"c1-out".to_vec()))
        );
        assert_eq!(store.attempts(c1.seq).unwrap().len(), 1);
        // The backend never picks up a local run's actions.
        assert!(store.unfinished_actions().unwrap().is_empty());
        journal.close().unwrap();

        // Other inputs are refused; the same inputs resume the run.
        assert!(matches!(
            RunJournal::open(dir.path(), run.clone(), "env.main", b"other"),
            Err(JournalError::Open(OpenError::OtherInputs(_)))
        ));
        let (again, opened) = RunJournal::open(dir.path(), run.clone(), "env.main", b"in").unwrap();
        assert_eq!(
            resumed(opened),
            vec![("c1".to_string(), b"c1-out".to_vec())]
        );
        // What the previous process left unfinished is failed, until queued again.
        assert_eq!(phase_of(&store, &run, "c2"), ActionPhase::Failed);
        again.queued(
            "c2",
            Some("a0"),
            Some("g"),
            ActionKind::Task,
            "env.child",
            None,
        );
        again.queued("c1", Some("a0"), None, ActionKind::Task, "env.child", None);
        again.flush().unwrap();
        assert_eq!(phase_of(&store, &run, "c2"), ActionPhase::Queued);
        assert_eq!(phase_of(&store, &run, "c1"), ActionPhase::Succeeded);
    }

    #[test]
    fn a_run_of_a_dead_process_is_failed_and_a_backend_run_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("backend.db")).unwrap();
        let gone = ProcessRef {
            pid: i32::MAX - 1,
            start_ticks: 1,
        };
        let run = key("orphan");
        store
            .open_in_process_run(&NewInProcessRun {
                key: &run,
                owner: gone,
                spec: &[],
                task_name: "env.main",
                inputs: b"",
                run_output_base: "file:///x/",
                interrupted: b"",
                now_ms: 1,
            })
            .unwrap();
        assert_eq!(store.fail_orphaned_local_runs(b"gone", 2).unwrap(), 1);
        assert_eq!(phase_of(&store, &run, "a0"), ActionPhase::Failed);
        assert_eq!(store.fail_orphaned_local_runs(b"gone", 3).unwrap(), 0);

        let backend_run = key("remote");
        let root = new_action(&backend_run, crate::ROOT_ACTION, None, ActionKind::Task);
        store.create_run(None, None, &root, 1).unwrap();
        assert!(matches!(
            RunJournal::open(dir.path(), backend_run, "t", b""),
            Err(JournalError::Open(OpenError::NotInProcess(_)))
        ));
    }

    #[test]
    fn a_journal_closed_in_the_background_is_drained() {
        let dir = tempfile::tempdir().unwrap();
        let run = key("bg");
        let (journal, _) = RunJournal::open(dir.path(), run.clone(), "env.main", b"").unwrap();
        journal.started("a0", 1);
        journal.finished(
            "a0",
            ActionPhase::Succeeded,
            None,
            Some(b"out".to_vec()),
            false,
        );
        journal.close_in_background();
        // Opening the run again waits for its previous writer, which released it.
        let (again, opened) = RunJournal::open(dir.path(), run.clone(), "env.main", b"").unwrap();
        assert_eq!(resumed(opened), vec![("a0".to_string(), b"out".to_vec())]);
        again.close_in_background();
        assert!(drain_closing().is_empty());
        let store = Store::open(&dir.path().join("backend.db")).unwrap();
        assert_eq!(phase_of(&store, &run, "a0"), ActionPhase::Succeeded);
    }
}
