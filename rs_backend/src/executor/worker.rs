//! One reusable worker: a warm Python process that runs many attempts of one task
//! environment, several at a time, for the environments a `ReusePolicy` keeps warm.
//!
//! # Protocol
//!
//! UTF-8 JSON, one object per line, on the worker's stdin and stdout. Its stderr, and whatever
//! it prints outside an attempt, goes to `<data_dir>/logs/workers/<pool>-<n>.log`.
//!
//! - backend → worker: `{"id": N, "args": [...], "env": {...}, "log": "..."}`: run attempt N
//!   with the runtime's container args after the program. `env` holds the attempt's own
//!   variables (the worker's process environment holds what all its attempts share); what the
//!   attempt prints goes to `log`.
//! - backend → worker: `{"cancel": N}`: stop attempt N (it is still answered with `done`).
//! - worker → backend: `{"ready": true}` once it has imported what attempts need.
//! - worker → backend: `{"done": N}` once attempt N ended and its outputs or its error are
//!   written; `"stuck": true` when its code still runs on a thread that cannot be stopped, so
//!   the worker must not be trusted with more work.
//! - EOF on the worker's stdin: it finishes the attempts it runs, then exits.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot};

use super::forkserver::{describe_exit, excerpt, log_tail, small_int, take_json_lines};
use crate::procfs::{self, ProcessRef};
use crate::sandbox::{Opening, View};

/// How long a worker may take to exit once its stdin closed and its attempts ended.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How often a memory-limited worker's memory is measured.
const MEMORY_POLL: Duration = Duration::from_millis(100);

/// How an attempt on a worker ended, as far as the worker goes.
#[derive(Debug, PartialEq)]
pub enum AttemptEnd {
    /// The worker answered: the attempt's files say how it went.
    Done { stuck: bool },
    /// The worker died (or was killed) first.
    Lost(Gone),
}

/// Why a worker is gone.
#[derive(Clone, Debug, PartialEq)]
pub struct Gone {
    pub reason: String,
    /// (used, limit) when it was killed for using more memory than its task environment may.
    pub out_of_memory: Option<(u64, u64)>,
}

/// What a new worker process is started with.
pub struct Launch<'a> {
    pub command: &'a [String],
    /// In increasing precedence, over the backend's own environment.
    pub env: &'a [(String, String)],
    pub dir: &'a Path,
    pub log: &'a Path,
    pub memory_limit: Option<u64>,
    pub hider: Option<Arc<crate::sandbox::Hider>>,
    /// With a `hider`: the data dir, of which the worker sees only its own directory and,
    /// as they come, what its attempts may reach (see [`Worker::open`]).
    pub data_dir: Option<&'a Path>,
}

pub struct Worker {
    /// `worker N of pool P (pid X)`, for messages.
    pub name: String,
    pub process: ProcessRef,
    requests: Mutex<Option<mpsc::UnboundedSender<String>>>,
    state: Mutex<State>,
    next_id: AtomicU64,
    ready: AtomicBool,
    /// The data dir, when the worker has a view of it, and the paths opened in it so far.
    view: Option<(PathBuf, Mutex<Vec<Opening>>)>,
}

#[derive(Default)]
struct State {
    running: HashMap<u64, oneshot::Sender<AttemptEnd>>,
    gone: Option<Gone>,
    /// Set by whoever kills the worker, so its attempts learn why.
    killed_because: Option<Gone>,
}

impl Worker {
    /// Starts the worker process; its attempts can be sent at once (they wait in its stdin
    /// until it is ready).
    pub fn start(name: String, launch: &Launch<'_>) -> Result<Arc<Worker>, String> {
        let shown = format!("{:?}", launch.command);
        let (program, args) = launch
            .command
            .split_first()
            .ok_or_else(|| "the reusable worker command is empty".to_string())?;
        let cannot = |what: String, err: std::io::Error| {
            format!("could not start the {name} ({shown}): {what}: {err}")
        };
        fs::create_dir_all(launch.dir)
            .map_err(|e| cannot(format!("cannot create {}", launch.dir.display()), e))?;
        if let Some(dir) = launch.log.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| cannot(format!("cannot create {}", dir.display()), e))?;
        }
        let mut log = fs::File::options()
            .create(true)
            .append(true)
            .open(launch.log)
            .map_err(|e| cannot(format!("cannot open {}", launch.log.display()), e))?;
        let _ = writeln!(log, "[flyte backend] starting the {name}: {shown}");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);

        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(launch.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(false);
        let own = Opening {
            path: launch.dir.to_path_buf(),
            writable: true,
        };
        let view = launch
            .data_dir
            .filter(|_| launch.hider.is_some())
            .map(|root| View::new(root, std::slice::from_ref(&own), Some(launch.dir)));
        super::command::own_session(&mut command, launch.hider.clone(), view);
        let mut child = command.spawn().map_err(|e| cannot("spawn".into(), e))?;
        let (Some(stdin), Some(stdout), Some(pid)) = (
            child.stdin.take(),
            child.stdout.take(),
            child.id().and_then(|p| i32::try_from(p).ok()),
        ) else {
            let _ = child.start_kill();
            return Err(format!(
                "could not start the {name} ({shown}): its pipes or pid are missing"
            ));
        };
        let process = ProcessRef {
            pid,
            start_ticks: procfs::start_ticks(pid).unwrap_or_default(),
        };
        let (requests, outbox) = mpsc::unbounded_channel();
        let worker = Arc::new(Worker {
            name: format!("{name} (pid {pid})"),
            process,
            requests: Mutex::new(Some(requests)),
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            ready: AtomicBool::new(false),
            view: launch
                .data_dir
                .filter(|_| launch.hider.is_some())
                .map(|root| (root.to_path_buf(), Mutex::new(vec![own]))),
        });
        tracing::info!(worker = %worker.name, "started a reusable worker");
        tokio::spawn(write_requests(outbox, stdin));
        tokio::spawn(read_answers(
            worker.clone(),
            child,
            stdout,
            launch.log.to_path_buf(),
            log_start,
        ));
        if let Some(limit) = launch.memory_limit {
            tokio::spawn(watch_memory(worker.clone(), limit));
        }
        Ok(worker)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a single map or field operation: a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `openings` reachable in the worker's view of the data dir, before it runs an
    /// attempt that needs them. What it has seen stays: its memory holds it anyway.
    pub fn open(&self, openings: &[Opening]) -> Result<(), String> {
        let Some((root, opened)) = &self.view else {
            return Ok(());
        };
        let mut opened = opened.lock().unwrap_or_else(|p| p.into_inner());
        let new: Vec<Opening> = crate::sandbox::normalize(root, openings)
            .into_iter()
            .filter(|o| !opened.iter().any(|done| done.covers(o)))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let (pid, start) = (self.process.pid, self.process.start_ticks);
        crate::sandbox::open_in(pid, start, root, &new).map_err(|e| {
            format!(
                "could not open the attempt's data in the {}'s view: {e}",
                self.name
            )
        })?;
        opened.extend(new);
        Ok(())
    }

    pub fn is_gone(&self) -> bool {
        self.state().gone.is_some()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Sends one attempt. Returns its id (for `cancel`) and how it will end.
    pub fn run(
        &self,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<(u64, oneshot::Receiver<AttemptEnd>), String> {
        let log = log.to_str().ok_or_else(|| {
            format!(
                "the log file {} is not valid UTF-8, which the worker protocol cannot carry",
                log.display()
            )
        })?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let env: serde_json::Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let line = format!(
            "{}\n",
            serde_json::json!({"id": id, "args": args, "env": env, "log": log})
        );
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.state();
            if let Some(gone) = &state.gone {
                return Err(gone.reason.clone());
            }
            state.running.insert(id, sender);
        }
        if !self.send(line) {
            self.state().running.remove(&id);
            return Err(format!("the {} is being stopped", self.name));
        }
        Ok((id, receiver))
    }

    pub fn cancel(&self, id: u64) {
        self.send(format!("{}\n", serde_json::json!({ "cancel": id })));
    }

    fn send(&self, line: String) -> bool {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.as_ref().is_some_and(|r| r.send(line).is_ok())
    }

    /// Asks the worker to exit once its attempts ended (its stdin closes).
    pub fn close(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Kills the worker and everything it started; its running attempts end with `why`.
    pub fn kill(&self, why: Gone) {
        {
            let mut state = self.state();
            if state.gone.is_some() {
                return;
            }
            state.killed_because.get_or_insert(why);
        }
        self.close();
        procfs::kill_group(self.process.pid);
    }

    fn answered(&self, message: &Value, text: &str) -> Result<(), String> {
        if message.get("ready").is_some() {
            self.ready.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let Some(id) = small_int::<u64>(message, "done") else {
            return Err(format!(
                "a message that is neither ready nor done: {}",
                excerpt(text)
            ));
        };
        let stuck = message.get("stuck").and_then(Value::as_bool) == Some(true);
        match self.state().running.remove(&id) {
            Some(sender) => {
                let _ = sender.send(AttemptEnd::Done { stuck });
            }
            None => tracing::warn!(id, worker = %self.name, "a worker finished an unknown attempt"),
        }
        Ok(())
    }

    fn ended(&self, gone: Gone) {
        let running = {
            let mut state = self.state();
            let gone = state.killed_because.take().unwrap_or(gone);
            state.gone = Some(gone.clone());
            std::mem::take(&mut state.running)
                .into_values()
                .map(|sender| (sender, gone.clone()))
                .collect::<Vec<_>>()
        };
        self.close();
        for (sender, gone) in running {
            let _ = sender.send(AttemptEnd::Lost(gone));
        }
    }
}

async fn write_requests(mut outbox: mpsc::UnboundedReceiver<String>, mut stdin: ChildStdin) {
    while let Some(line) = outbox.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() {
            // The worker is gone; its reader reports why.
            return;
        }
        // Write what else is waiting before flushing, so a burst costs one flush.
        while let Ok(line) = outbox.try_recv() {
            if stdin.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
        if stdin.flush().await.is_err() {
            return;
        }
    }
    // The sender was dropped (close): EOF tells the worker to finish and exit.
}

async fn read_answers(
    worker: Arc<Worker>,
    mut child: Child,
    mut stdout: ChildStdout,
    log: PathBuf,
    log_start: u64,
) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let trouble = loop {
        match stdout.read(&mut chunk).await {
            Ok(0) => break None,
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                if let Err(err) =
                    take_json_lines(&mut buffer, |message, text| worker.answered(&message, text))
                {
                    break Some(format!("broke the worker protocol ({err})"));
                }
            }
            Err(err) => break Some(format!("could not be read from ({err})")),
        }
    };
    if trouble.is_some() {
        procfs::kill_group(worker.process.pid);
    }
    let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            // Closed its stdout yet lives on: it can serve nobody any more.
            procfs::kill_group(worker.process.pid);
            child.wait().await.ok()
        }
    };
    let ended = status
        .as_ref()
        .map(describe_exit)
        .unwrap_or_else(|| "ended with an unknown status".into());
    let what = match trouble {
        Some(trouble) => format!("the {} {trouble} and was stopped (it {ended})", worker.name),
        None => format!("the {} exited: it {ended}", worker.name),
    };
    let reason = format!("{what}{}", log_tail(&log, log_start));
    tracing::info!(%reason, "a reusable worker is gone");
    worker.ended(Gone {
        reason,
        out_of_memory: None,
    });
}

async fn watch_memory(worker: Arc<Worker>, limit: u64) {
    let mut ticker = tokio::time::interval(MEMORY_POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if worker.is_gone() {
            return;
        }
        let used = procfs::group_rss_bytes(worker.process.pid);
        if used > limit {
            worker.kill(Gone {
                reason: format!(
                    "the {} used {:.1} MiB of memory, above its task environment's limit of \
                     {:.1} MiB, and was killed with every attempt it ran",
                    worker.name,
                    used as f64 / 1048576.0,
                    limit as f64 / 1048576.0
                ),
                out_of_memory: Some((used, limit)),
            });
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(dir: &Path, script: &str, memory_limit: Option<u64>) -> Arc<Worker> {
        let command = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        Worker::start(
            "worker 1 of pool test".into(),
            &Launch {
                command: &command,
                env: &[],
                dir: &dir.join("w"),
                log: &dir.join("w.log"),
                memory_limit,
                hider: None,
                data_dir: None,
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn answers_reach_their_attempts() {
        let dir = tempfile::tempdir().unwrap();
        // A fake worker: ready, then finishes attempt 1, reports 2 as stuck, then waits.
        let worker = start(
            dir.path(),
            "echo '{\"ready\": true}'; read a; read b; \
             echo '{\"done\": 2, \"stuck\": true}'; echo '{\"done\": 1}'; read c",
            None,
        );
        let (one, first) = worker.run(&[], &[], Path::new("/tmp/1.log")).unwrap();
        let (two, second) = worker.run(&[], &[], Path::new("/tmp/2.log")).unwrap();
        assert_eq!((one, two), (1, 2));
        assert_eq!(second.await.unwrap(), AttemptEnd::Done { stuck: true });
        assert_eq!(first.await.unwrap(), AttemptEnd::Done { stuck: false });
        assert!(worker.is_ready());
        worker.close();
    }

    #[tokio::test]
    async fn a_dying_worker_loses_its_attempts_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let worker = start(
            dir.path(),
            "read a; echo 'cannot import user code' >&2; exit 3",
            None,
        );
        let (_, end) = worker.run(&[], &[], Path::new("/tmp/1.log")).unwrap();
        let AttemptEnd::Lost(gone) = end.await.unwrap() else {
            panic!("not lost");
        };
        assert!(
            gone.reason.contains("exited with code 3"),
            "{}",
            gone.reason
        );
        assert!(
            gone.reason.contains("cannot import user code"),
            "{}",
            gone.reason
        );
        assert!(worker.is_gone());
        let err = worker.run(&[], &[], Path::new("/tmp/2.log")).err().unwrap();
        assert!(err.contains("exited with code 3"), "{err}");
    }

    #[tokio::test]
    async fn garbage_stops_the_worker() {
        let dir = tempfile::tempdir().unwrap();
        let worker = start(dir.path(), "read a; echo hello; exec sleep 30", None);
        let (_, end) = worker.run(&[], &[], Path::new("/tmp/1.log")).unwrap();
        let AttemptEnd::Lost(gone) = end.await.unwrap() else {
            panic!("not lost");
        };
        assert!(
            gone.reason.contains("broke the worker protocol"),
            "{}",
            gone.reason
        );
        assert!(!procfs::is_alive(&worker.process));
    }

    #[tokio::test]
    async fn a_worker_over_its_memory_limit_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let worker = start(dir.path(), "exec sleep 30", Some(1024));
        let (_, end) = worker.run(&[], &[], Path::new("/tmp/1.log")).unwrap();
        let AttemptEnd::Lost(gone) = end.await.unwrap() else {
            panic!("not lost");
        };
        assert_eq!(gone.out_of_memory.map(|(_, limit)| limit), Some(1024));
        assert!(
            gone.reason.contains("above its task environment's limit"),
            "{}",
            gone.reason
        );
    }
}
