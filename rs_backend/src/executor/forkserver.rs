//! The backend's side of a fork server: a warm process that forks one fresh child per attempt.
//!
//! Starting a Python interpreter and importing the SDK costs far more CPU than a small task.
//! With `BackendConfig::fork_server` set, the backend keeps one such server (started on the
//! first launch, started again after it dies) and asks it to fork each attempt. Every attempt
//! is still its own OS process with its own session, log, exit status and memory.
//!
//! # Protocol
//!
//! UTF-8 JSON, one object per line, on the server's stdin and stdout; its stderr goes to
//! `<data_dir>/logs/forkserver.log`.
//!
//! - backend → server: `{"id": N, "args": [...], "env_file": "...", "cwd": "...", "log": "...",
//!   "view": {"root": "...", "openings": [["path", writable], ...]}}` (`view` when sandboxed):
//!   fork a child that calls setsid(), chdirs to `cwd`, appends fds 1 and 2 to `log`, merges
//!   the JSON object in `env_file` (which it then deletes; or `"env": {...}` given inline) into
//!   its inherited environment, runs the attempt with `args` and `_exit`s.
//! - server → backend: `{"id": N, "pid": P}` once forked, or `{"id": N, "error": "..."}`.
//! - backend → server: `{"go": N, "pid": P}` once the backend has recorded the child's pid: only then
//!   does the child of request N run its attempt (until then it waits, after setsid()). A
//!   server that exits first takes its waiting children with it.
//! - server → backend: `{"exited": P, "status": S}` when a child is reaped (S is the raw
//!   waitpid status).
//! - EOF on the server's stdin: the server exits; its children carry on.
//!
//! If the server dies, the exit statuses of its running children can no longer come; their
//! handles notice and fall back to watching the pid (see the `child` module).

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{oneshot, watch, Notify};

use serde_json::Value;

use crate::procfs;

/// Longest wait for the answer to one launch request. A server that takes longer is hung:
/// it is killed, and the attempt fails like a failed spawn.
pub const REPLY_LIMIT: Duration = Duration::from_secs(30);
/// How long a server may take to exit once its stdin closed (or its stdout did) before it is
/// killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// After the server process ended, how long to keep reading what it wrote before it died. A
/// child that kept the server's stdout open would otherwise hold the EOF back indefinitely.
const DRAIN_LIMIT: Duration = Duration::from_millis(200);
/// A protocol line longer than this is garbage; it also bounds the read buffer.
const MAX_LINE: usize = 1 << 20;
/// Exit reports for pids not (yet) announced are kept this long, for servers that report an
/// exit before the reply to the request that forked it.
const EARLY_EXITS: usize = 64;
/// How much of forkserver.log an error message quotes.
const TAIL_BYTES: u64 = 4096;
const TAIL_LINES: usize = 12;

/// One attempt to fork, with everything already substituted.
pub struct LaunchRequest<'a> {
    pub args: &'a [String],
    /// In increasing precedence; a repeated name keeps its last value.
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub log: &'a Path,
    /// The data dir and what of it the child may reach (see [`crate::sandbox::View`]); the
    /// child narrows its own view after opening its log.
    pub view: Option<(&'a Path, &'a [crate::sandbox::Opening])>,
}

/// A child the server forked. `exit` yields its raw wait status, or fails if the server died
/// before reporting it.
pub struct Forked {
    /// The launch request's id: what [`ForkServer::release`] names.
    pub id: u64,
    pub pid: i32,
    pub exit: oneshot::Receiver<ExitStatus>,
}

pub struct ForkServer {
    command: Vec<String>,
    /// Hides the backend's private files from the server and so from every child it forks.
    hider: Option<Arc<crate::sandbox::Hider>>,
    log_path: PathBuf,
    reply_limit: Duration,
    next_id: AtomicU64,
    /// The live server, if any. An async lock: starting a server must not race another start.
    current: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

/// The backend's end of one server process.
struct Conn {
    /// Taken (closed) to ask the server to exit.
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    shared: Arc<Shared>,
}

/// What the reader task and the launchers share about one server process.
struct Shared {
    /// `fork server ["cmd", ...] (pid N)`, for messages.
    name: String,
    log_path: PathBuf,
    /// forkserver.log's length when this server started: its own lines come after.
    log_start: u64,
    state: Mutex<State>,
    /// Becomes Some(reason) once the server is gone and can take no more requests.
    dead: watch::Sender<Option<String>>,
    /// Asks the reader task to kill the server (it stopped answering).
    kill: Notify,
}

#[derive(Default)]
struct State {
    /// Requests sent and not answered yet.
    pending: HashMap<u64, oneshot::Sender<Result<Forked, String>>>,
    /// Forked children whose exit was not reported yet.
    children: HashMap<i32, oneshot::Sender<ExitStatus>>,
    early_exits: VecDeque<(i32, ExitStatus)>,
    /// Why the server is gone; no request is accepted once set.
    closed: Option<String>,
}

impl ForkServer {
    pub fn new(
        command: Vec<String>,
        log_path: PathBuf,
        hider: Option<Arc<crate::sandbox::Hider>>,
    ) -> Self {
        Self {
            command,
            hider,
            log_path,
            reply_limit: REPLY_LIMIT,
            next_id: AtomicU64::new(1),
            current: tokio::sync::Mutex::new(None),
        }
    }

    #[cfg(test)]
    fn with_reply_limit(mut self, limit: Duration) -> Self {
        self.reply_limit = limit;
        self
    }

    /// Forks one attempt, starting the server first if none is running. The error is a
    /// complete message for the attempt's LaunchFailed error.
    pub async fn launch(&self, request: &LaunchRequest<'_>) -> Result<Forked, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = encode_request(id, request)?;
        let conn = self.connection().await?;
        let shared = &conn.shared;
        let reply = shared.register(id)?;
        let exchange = async {
            let written = {
                let mut stdin = conn.stdin.lock().await;
                match stdin.as_mut() {
                    Some(stdin) => match stdin.write_all(line.as_bytes()).await {
                        Ok(()) => stdin.flush().await,
                        Err(err) => Err(err),
                    },
                    None => Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the backend is stopping the fork server",
                    )),
                }
            };
            if let Err(err) = written {
                shared.forget(id);
                // Most likely the server died: its exit status and log say more than EPIPE.
                if let Some(reason) = shared.wait_closed(EXIT_GRACE + DRAIN_LIMIT).await {
                    return Err(reason);
                }
                shared.kill.notify_one();
                return Err(format!(
                    "could not send a launch request to the {}: {err}{}",
                    shared.name,
                    shared.log_tail()
                ));
            }
            match reply.await {
                Ok(result) => result,
                // Dropped unanswered: the server is gone, and the reason is being recorded.
                Err(_) => Err(shared
                    .wait_closed(EXIT_GRACE * 2)
                    .await
                    .unwrap_or_else(|| format!("the {} went away", shared.name))),
            }
        };
        match tokio::time::timeout(self.reply_limit, exchange).await {
            Ok(result) => result,
            Err(_) => {
                shared.forget(id);
                // A server that does not answer would make every later attempt wait as long.
                shared.kill.notify_one();
                Err(format!(
                    "the {} did not answer a launch request within {}s and was killed{}",
                    shared.name,
                    self.reply_limit.as_secs_f64(),
                    shared.log_tail()
                ))
            }
        }
    }

    /// Lets a forked child run its attempt. A child waits for this after it forks, so the
    /// backend can record its pid first: a backend that dies in between leaves no child it
    /// cannot find again (the server exits, and its waiting children with it).
    pub async fn release(&self, forked: &Forked) {
        let Some(conn) = self.current.lock().await.clone() else {
            return;
        };
        let line = format!("{{\"go\": {}, \"pid\": {}}}\n", forked.id, forked.pid);
        let mut stdin = conn.stdin.lock().await;
        if let Some(stdin) = stdin.as_mut() {
            let sent = match stdin.write_all(line.as_bytes()).await {
                Ok(()) => stdin.flush().await,
                Err(err) => Err(err),
            };
            if let Err(err) = sent {
                // The server is gone, and the child with it: its exit is reported as usual.
                tracing::debug!(%err, pid = forked.pid, "could not release a forked child");
            }
        }
    }

    /// The running server, started if there is none (or the last one died).
    async fn connection(&self) -> Result<Arc<Conn>, String> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref() {
            if !conn.shared.is_closed() {
                return Ok(conn.clone());
            }
        }
        let conn = Arc::new(self.start()?);
        *current = Some(conn.clone());
        Ok(conn)
    }

    fn start(&self) -> Result<Conn, String> {
        let shown = format!("{:?}", self.command);
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| "the fork server command is empty".to_string())?;
        let cannot = |what: &str, err: std::io::Error| {
            format!(
                "could not start the fork server {shown}: {what} {}: {err}",
                self.log_path.display()
            )
        };
        if let Some(dir) = self.log_path.parent() {
            fs::create_dir_all(dir).map_err(|e| cannot("cannot create the log dir of", e))?;
        }
        let mut log = fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| cannot("cannot open", e))?;
        // A marker between servers, so a reader of the log can tell whose lines follow.
        let _ = writeln!(log, "[flyte backend] starting the fork server {shown}");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let stderr = log.try_clone().map_err(|e| cannot("cannot reopen", e))?;

        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("PYTHONUNBUFFERED", "1")
            // Dropped with its reader task (a runtime shutting down): its children live on.
            .kill_on_drop(true);
        // A Ctrl-C meant for the backend's terminal must not kill it; the backend ends it by
        // closing its stdin.
        super::command::own_session(&mut command, self.hider.clone(), None);
        let mut child = command
            .spawn()
            .map_err(|e| format!("could not start the fork server {shown}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!(
                "could not start the fork server {shown}: its stdin/stdout pipes are missing"
            ));
        };
        let name = match child.id() {
            Some(pid) => format!("fork server {shown} (pid {pid})"),
            None => format!("fork server {shown}"),
        };
        tracing::info!(server = %name, "started the fork server");
        let (dead, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            name,
            log_path: self.log_path.clone(),
            log_start,
            state: Mutex::new(State::default()),
            dead,
            kill: Notify::new(),
        });
        tokio::spawn(read_replies(shared.clone(), child, stdout));
        Ok(Conn {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            shared,
        })
    }

    /// Ends the server the way a dying backend would (its stdin closes), so children that
    /// still run are left alone; kills it if it does not go.
    pub async fn stop(&self) {
        let Some(conn) = self.current.lock().await.take() else {
            return;
        };
        conn.stdin.lock().await.take();
        if conn.shared.wait_closed(EXIT_GRACE * 2).await.is_none() {
            conn.shared.kill.notify_one();
            let _ = conn.shared.wait_closed(EXIT_GRACE).await;
        }
    }
}

/// The file in the attempt's work dir that carries its environment (see [`encode_request`]).
const ENV_FILE: &str = ".flyte-attempt-env.json";

fn encode_request(id: u64, request: &LaunchRequest<'_>) -> Result<String, String> {
    let utf8 = |what: &str, path: &Path| {
        path.to_str().map(str::to_string).ok_or_else(|| {
            format!(
                "the {what} {} is not valid UTF-8, which the fork-server protocol cannot carry",
                path.display()
            )
        })
    };
    let cwd = utf8("work dir", request.cwd)?;
    let log = utf8("log file", request.log)?;
    // Later entries win, as they would when set one after another on a command.
    let env: serde_json::Map<String, Value> = request
        .env
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();
    // The environment (secrets, the attempt's token) goes in a file of the attempt's work dir,
    // which only the attempt sees, never through the server: a forked child holds a copy of
    // the server's memory, with whatever requests of other attempts it had read.
    let env_file = request.cwd.join(ENV_FILE);
    crate::datafile::write_atomic(&env_file, Value::Object(env).to_string().as_bytes())
        .map_err(|e| format!("could not write {}: {e}", env_file.display()))?;
    let mut message = serde_json::json!({
        "id": id,
        "args": request.args,
        "env_file": utf8("environment file", &env_file)?,
        "cwd": cwd,
        "log": log,
    });
    if let Some((root, openings)) = request.view {
        let openings = openings
            .iter()
            .map(|o| Ok(serde_json::json!([utf8("path", &o.path)?, o.writable])))
            .collect::<Result<Vec<_>, String>>()?;
        message["view"] =
            serde_json::json!({"root": utf8("data dir", root)?, "openings": openings});
    }
    // serde_json escapes control characters, so the message stays on one line.
    Ok(format!("{message}\n"))
}

/// Why the reader stopped reading.
enum Trouble {
    Eof,
    Exited,
    Garbage(String),
    ReadFailed(std::io::Error),
    Killed,
}

/// Reads the server's messages until it is gone, then records why and lets every waiter know.
async fn read_replies(shared: Arc<Shared>, mut child: Child, mut stdout: ChildStdout) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut status = None;
    let trouble = loop {
        tokio::select! {
            read = stdout.read(&mut chunk) => match read {
                Ok(0) => break Trouble::Eof,
                Ok(n) => {
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Err(err) = shared.take_lines(&mut buffer) {
                        break Trouble::Garbage(err);
                    }
                }
                Err(err) => break Trouble::ReadFailed(err),
            },
            exited = child.wait() => {
                status = Some(exited);
                let mut garbage = None;
                while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_LIMIT, stdout.read(&mut chunk)).await {
                    if n == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Err(err) = shared.take_lines(&mut buffer) {
                        garbage = Some(err);
                        break;
                    }
                }
                break garbage.map_or(Trouble::Exited, Trouble::Garbage);
            }
            _ = shared.kill.notified() => break Trouble::Killed,
        }
    };
    let status = match status {
        Some(status) => status.ok(),
        None => {
            if !matches!(trouble, Trouble::Eof) {
                let _ = child.start_kill();
            }
            match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                Ok(status) => status.ok(),
                Err(_) => {
                    // Closed its stdout yet lives on: it can serve nobody any more.
                    let _ = child.start_kill();
                    tokio::time::timeout(EXIT_GRACE, child.wait())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
            }
        }
    };
    let ended = match status {
        Some(status) => describe_exit(&status),
        None => "ended with an unknown status".to_string(),
    };
    let what = match trouble {
        Trouble::Eof | Trouble::Exited => format!("the {} exited: it {ended}", shared.name),
        Trouble::Garbage(err) => format!(
            "the {} broke the fork-server protocol ({err}) and was stopped (it {ended})",
            shared.name
        ),
        Trouble::ReadFailed(err) => format!(
            "reading from the {} failed ({err}); it was stopped (it {ended})",
            shared.name
        ),
        Trouble::Killed => format!("the {} was stopped (it {ended})", shared.name),
    };
    let reason = format!("{what}{}", shared.log_tail());
    tracing::warn!(%reason, "the fork server is gone");
    shared.close(reason);
}

pub(super) fn describe_exit(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended with an unknown status".into(),
    }
}

pub(super) fn excerpt(text: &str) -> String {
    const LIMIT: usize = 200;
    if text.len() <= LIMIT {
        return format!("{text:?}");
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}...", &text[..end])
}

pub(super) fn small_int<T: TryFrom<i64>>(message: &Value, key: &str) -> Option<T> {
    message
        .get(key)
        .and_then(Value::as_i64)
        .and_then(|v| T::try_from(v).ok())
}

/// Hands every complete line in `buffer` to `handle` as a JSON object (and its text), leaving
/// a partial last line in the buffer. Used by both line protocols the backend speaks with
/// Python processes (the fork server's and the reusable workers').
pub(super) fn take_json_lines(
    buffer: &mut Vec<u8>,
    mut handle: impl FnMut(Value, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut start = 0;
    while let Some(end) = buffer[start..].iter().position(|b| *b == b'\n') {
        let line = &buffer[start..start + end];
        start += end + 1;
        let parsed = std::str::from_utf8(line)
            .map_err(|_| "a line that is not UTF-8".to_string())
            .and_then(|text| {
                let text = text.trim();
                if text.is_empty() {
                    return Ok(());
                }
                // The peer's lines are its JSON library's output; serde_json bounds nesting
                // itself, so whatever another process writes cannot exhaust the stack.
                let message: Value =
                    serde_json::from_str(text).map_err(|e| format!("{e} in {}", excerpt(text)))?;
                if !message.is_object() {
                    return Err(format!("not a JSON object: {}", excerpt(text)));
                }
                handle(message, text)
            });
        if let Err(err) = parsed {
            buffer.clear();
            return Err(err);
        }
    }
    buffer.drain(..start);
    if buffer.len() > MAX_LINE {
        buffer.clear();
        return Err(format!("a line longer than {MAX_LINE} bytes"));
    }
    Ok(())
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a single map operation, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    fn register(&self, id: u64) -> Result<oneshot::Receiver<Result<Forked, String>>, String> {
        let mut state = self.state();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let (reply, receiver) = oneshot::channel();
        state.pending.insert(id, reply);
        Ok(receiver)
    }

    fn forget(&self, id: u64) {
        self.state().pending.remove(&id);
    }

    async fn wait_closed(&self, limit: Duration) -> Option<String> {
        let mut dead = self.dead.subscribe();
        let reason = match tokio::time::timeout(limit, dead.wait_for(Option::is_some)).await {
            Ok(Ok(reason)) => reason.clone(),
            _ => None,
        };
        reason
    }

    /// Fails what waits for a reply and cuts the children loose: their handles see the closed
    /// channel and watch their pids instead.
    fn close(&self, reason: String) {
        let (pending, children) = {
            let mut state = self.state();
            state.closed = Some(reason.clone());
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.children),
            )
        };
        for (_, reply) in pending {
            let _ = reply.send(Err(reason.clone()));
        }
        drop(children);
        self.dead.send_replace(Some(reason));
    }

    fn take_lines(&self, buffer: &mut Vec<u8>) -> Result<(), String> {
        take_json_lines(buffer, |message, text| self.handle_line(message, text))
    }

    fn handle_line(&self, message: Value, text: &str) -> Result<(), String> {
        if message.get("exited").is_some() {
            let pid = small_int::<i32>(&message, "exited");
            let status = small_int::<i32>(&message, "status");
            let (Some(pid), Some(status)) = (pid, status) else {
                return Err(format!("a malformed exit report {}", excerpt(text)));
            };
            self.child_exited(pid, ExitStatus::from_raw(status));
            return Ok(());
        }
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            return Err(format!(
                "a message that is neither a reply nor an exit report: {}",
                excerpt(text)
            ));
        };
        if message.get("pid").is_some() {
            // pid 0 or 1 cannot be a forked child, and signalling them would be disastrous.
            let Some(pid) = small_int::<i32>(&message, "pid").filter(|p| *p > 1) else {
                return Err(format!("a reply with an invalid pid {}", excerpt(text)));
            };
            self.forked(id, pid);
            return Ok(());
        }
        match message.get("error").and_then(Value::as_str) {
            Some(error) => {
                self.refused(id, error);
                Ok(())
            }
            None => Err(format!(
                "a reply with neither pid nor error: {}",
                excerpt(text)
            )),
        }
    }

    fn forked(&self, id: u64, pid: i32) {
        let mut state = self.state();
        let (exit, receiver) = oneshot::channel();
        let early = state
            .early_exits
            .iter()
            .position(|(p, _)| *p == pid)
            .and_then(|i| state.early_exits.remove(i))
            .map(|(_, status)| status);
        let forked = Forked {
            id,
            pid,
            exit: receiver,
        };
        let unclaimed = match state.pending.remove(&id) {
            Some(reply) => reply.send(Ok(forked)).is_err(),
            None => true,
        };
        if unclaimed && early.is_none() {
            // Its launcher gave up on it: nobody would supervise, kill or account for it.
            tracing::warn!(pid, id, server = %self.name, "killing a forked child nobody waits for");
            procfs::kill_group(pid);
            procfs::kill_process(pid);
        }
        match early {
            Some(status) => {
                let _ = exit.send(status);
            }
            None => {
                state.children.insert(pid, exit);
            }
        }
    }

    fn refused(&self, id: u64, error: &str) {
        let reply = self.state().pending.remove(&id);
        match reply {
            Some(reply) => {
                let _ = reply.send(Err(format!(
                    "the {} could not start the attempt: {error}",
                    self.name
                )));
            }
            None => {
                tracing::warn!(id, server = %self.name, %error, "a fork error for no known request")
            }
        }
    }

    fn child_exited(&self, pid: i32, status: ExitStatus) {
        let mut state = self.state();
        match state.children.remove(&pid) {
            // A closed receiver means its monitor stopped watching; nothing to do.
            Some(exit) => {
                let _ = exit.send(status);
            }
            None => {
                if state.early_exits.len() >= EARLY_EXITS {
                    state.early_exits.pop_front();
                }
                state.early_exits.push_back((pid, status));
            }
        }
    }

    /// The last lines this server wrote to its log, for error messages.
    fn log_tail(&self) -> String {
        log_tail(&self.log_path, self.log_start)
    }
}

/// The last lines written to `path` after byte `from`, for error messages.
pub(super) fn log_tail(path: &Path, from: u64) -> String {
    let shown = path.display();
    let read = || -> std::io::Result<String> {
        let mut file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        let start = from.max(len.saturating_sub(TAIL_BYTES));
        if start >= len {
            return Ok(String::new());
        }
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        if start > from && !lines.is_empty() {
            // Cut mid-line by the byte limit.
            lines.remove(0);
        }
        let lines: Vec<&str> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
        let keep = lines.len().saturating_sub(TAIL_LINES);
        Ok(lines[keep..].join("\n"))
    };
    match read() {
        Ok(tail) if tail.is_empty() => format!("; it wrote nothing to {shown}"),
        Ok(tail) => format!("; the end of {shown}:\n{tail}"),
        Err(err) => format!("; {shown} could not be read: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(dir: &Path, script: &str) -> ForkServer {
        ForkServer::new(
            vec!["sh".into(), "-c".into(), script.into()],
            dir.join("logs").join("forkserver.log"),
            None,
        )
        .with_reply_limit(Duration::from_secs(5))
    }

    fn request<'a>(
        dir: &'a Path,
        args: &'a [String],
        env: &'a [(String, String)],
    ) -> LaunchRequest<'a> {
        LaunchRequest {
            args,
            env,
            cwd: dir,
            log: dir,
            view: None,
        }
    }

    #[test]
    fn requests_are_one_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec!["--out".to_string(), "a \"b\"\n".to_string()];
        let env = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "x".to_string()),
            ("A".to_string(), "2".to_string()),
        ];
        let line = encode_request(
            9,
            &LaunchRequest {
                args: &args,
                env: &env,
                cwd: dir.path(),
                log: Path::new("/l/1.log"),
                view: None,
            },
        )
        .unwrap();
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["id"], 9);
        assert_eq!(parsed["args"], serde_json::json!(["--out", "a \"b\"\n"]));
        // The environment is not in the line: it is in a file of the work dir.
        assert!(!line.contains("\"B\""), "{line}");
        let env_file = dir.path().join(ENV_FILE);
        assert_eq!(parsed["env_file"], env_file.to_str().unwrap());
        let env: Value = serde_json::from_slice(&std::fs::read(env_file).unwrap()).unwrap();
        assert_eq!(env, serde_json::json!({"B": "x", "A": "2"}));
        assert_eq!(parsed["cwd"], dir.path().to_str().unwrap());
        assert_eq!(parsed["log"], "/l/1.log");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let forks = ForkServer::new(
            vec!["/nonexistent/fork-server".into()],
            dir.path().join("forkserver.log"),
            None,
        );
        let err = forks
            .launch(&request(dir.path(), &[], &[]))
            .await
            .err()
            .unwrap();
        assert!(err.contains("could not start the fork server"), "{err}");
        assert!(err.contains("/nonexistent/fork-server"), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_exits_at_start_fails_the_launch() {
        let dir = tempfile::tempdir().unwrap();
        let forks = server(dir.path(), "echo cannot import flyte >&2; exit 3");
        let err = forks
            .launch(&request(dir.path(), &[], &[]))
            .await
            .err()
            .unwrap();
        assert!(err.contains("exited with code 3"), "{err}");
        assert!(err.contains("cannot import flyte"), "{err}");
        assert!(err.contains("\"sh\""), "{err}");
    }

    #[tokio::test]
    async fn garbage_answers_fail_the_launch() {
        let dir = tempfile::tempdir().unwrap();
        let forks = server(dir.path(), "read line; echo hello there; exec sleep 10");
        let err = forks
            .launch(&request(dir.path(), &[], &[]))
            .await
            .err()
            .unwrap();
        assert!(err.contains("broke the fork-server protocol"), "{err}");
        assert!(err.contains("hello there"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_is_killed_after_the_reply_limit() {
        let dir = tempfile::tempdir().unwrap();
        let forks = server(dir.path(), "echo waiting >&2; exec sleep 10")
            .with_reply_limit(Duration::from_millis(300));
        let err = forks
            .launch(&request(dir.path(), &[], &[]))
            .await
            .err()
            .unwrap();
        assert!(err.contains("did not answer"), "{err}");
        assert!(err.contains("waiting"), "{err}");
        // The next launch starts a new server rather than waiting on the hung one.
        let conn = forks.current.lock().await.clone().unwrap();
        assert!(conn.shared.wait_closed(EXIT_GRACE * 2).await.is_some());
    }

    #[tokio::test]
    async fn replies_and_exits_reach_their_waiters() {
        let dir = tempfile::tempdir().unwrap();
        // A fake server: forks nothing, answers with its own pid, reports an exit for it, and
        // refuses the second request.
        let forks = server(
            dir.path(),
            "read a; echo \"{\\\"id\\\": 1, \\\"pid\\\": $$}\"; \
             echo \"{\\\"exited\\\": $$, \\\"status\\\": 768}\"; \
             read b; echo '{\"id\": 2, \"error\": \"out of pids\"}'; read c",
        );
        let forked = forks.launch(&request(dir.path(), &[], &[])).await.unwrap();
        assert!(forked.pid > 1);
        let status = forked.exit.await.unwrap();
        assert_eq!(status.code(), Some(3));
        let err = forks
            .launch(&request(dir.path(), &[], &[]))
            .await
            .err()
            .unwrap();
        assert!(err.contains("out of pids"), "{err}");
        forks.stop().await;
        assert!(forks.current.lock().await.is_none());
    }
}
