//! The long-lived server streams. Each runs as its own task feeding a bounded channel; a slow
//! client only slows its own task. Changes arrive through the broadcast channel, which never
//! blocks the backend: a stream that falls behind gets a fresh snapshot instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flyteidl2::flyteidl::actions::{watch_for_updates_response, WatchForUpdatesResponse};
use flyteidl2::flyteidl::logs::dataplane::{LogLine, LogLineOriginator};
use flyteidl2::flyteidl::workflow::{tail_logs_response, ControlMessage, TailLogsResponse};
use tokio::sync::{broadcast::error::RecvError, mpsc, watch};
use tonic::Status;

use crate::clock::{now_ms, timestamp};
use crate::engine::{internal, Engine};
use crate::names::RunKey;
use crate::phase;
use crate::store::ActionRecord;
use crate::views;

pub(super) type Tx<T> = mpsc::Sender<Result<T, Status>>;

/// Resolves once the backend is stopping. (Drops the watch guard inside, keeping callers Send.)
pub(super) async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Sends one item unless the client goes away or the backend stops first; false means the
/// stream is over. A client that stops reading must not keep a stream alive past shutdown.
pub(super) async fn deliver<T>(
    tx: &Tx<T>,
    item: Result<T, Status>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        biased;
        _ = stopping(stop) => false,
        sent = tx.send(item) => sent.is_ok(),
    }
}

fn update_message(record: &ActionRecord) -> WatchForUpdatesResponse {
    WatchForUpdatesResponse {
        message: Some(watch_for_updates_response::Message::ActionUpdate(
            views::action_update(record),
        )),
    }
}

/// The newest version of each child a WatchForUpdates stream has sent. Changes arrive both
/// from snapshots and from the broadcast, which can replay states older than a snapshot just
/// sent; those are dropped so a client never sees an action move backwards.
type SentVersions = HashMap<String, u64>;

/// Sends a child's state unless the stream already sent it or a newer one.
async fn send_child(
    record: &ActionRecord,
    sent: &mut SentVersions,
    tx: &Tx<WatchForUpdatesResponse>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if sent
        .get(&record.name)
        .is_some_and(|version| *version >= record.version)
    {
        return true;
    }
    sent.insert(record.name.clone(), record.version);
    deliver(tx, Ok(update_message(record)), stop).await
}

/// Every current child, then the sentinel. False when the stream should end.
async fn send_children_snapshot(
    engine: &Engine,
    run: &RunKey,
    parent: &str,
    sent: &mut SentVersions,
    tx: &Tx<WatchForUpdatesResponse>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let children = match engine.store.children(run, parent) {
        Ok(children) => children,
        Err(err) => {
            deliver(tx, Err(internal("list child actions", err)), stop).await;
            return false;
        }
    };
    for child in &children {
        // A snapshot repeats every child, even one whose state was sent before.
        sent.insert(child.name.clone(), child.version);
        if !deliver(tx, Ok(update_message(child)), stop).await {
            return false;
        }
    }
    let sentinel = WatchForUpdatesResponse {
        message: Some(watch_for_updates_response::Message::ControlMessage(
            ControlMessage { sentinel: true },
        )),
    };
    deliver(tx, Ok(sentinel), stop).await
}

/// WatchForUpdates: the children of `parent` as they change.
pub async fn child_updates(
    engine: Arc<Engine>,
    run: RunKey,
    parent: String,
    tx: Tx<WatchForUpdatesResponse>,
) {
    // Subscribed before the snapshot is read, so no change falls between the two.
    let mut events = engine.subscribe();
    let mut stop = engine.stop_signal();
    let mut sent = SentVersions::new();
    if !send_children_snapshot(&engine, &run, &parent, &mut sent, &tx, &mut stop).await {
        return;
    }
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = stopping(&mut stop) => return,
            event = events.recv() => match event {
                Ok(record) => {
                    if record.run == run
                        && record.parent.as_deref() == Some(parent.as_str())
                        && !send_child(&record, &mut sent, &tx, &mut stop).await
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a watcher fell behind; sending a fresh snapshot");
                    if !send_children_snapshot(&engine, &run, &parent, &mut sent, &tx, &mut stop)
                        .await
                    {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

/// WatchRunDetails / WatchActionDetails: the action rendered by `render`, first as it is, then
/// after every change, ending once it is terminal.
pub async fn action_changes<T, F>(
    engine: Arc<Engine>,
    run: RunKey,
    name: String,
    tx: Tx<T>,
    render: F,
) where
    T: Send + 'static,
    F: Fn(&Engine, &ActionRecord) -> Result<T, Status> + Send + 'static,
{
    let mut events = engine.subscribe();
    let mut stop = engine.stop_signal();
    let mut changed = true;
    loop {
        if changed {
            let record = match engine.store.action(&run, &name) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    let missing =
                        Status::not_found(format!("action {name:?} does not exist in run {run}"));
                    deliver(&tx, Err(missing), &mut stop).await;
                    return;
                }
                Err(err) => {
                    deliver(&tx, Err(internal("read action", err)), &mut stop).await;
                    return;
                }
            };
            let message = match render(&engine, &record) {
                Ok(message) => message,
                Err(status) => {
                    deliver(&tx, Err(status), &mut stop).await;
                    return;
                }
            };
            if !deliver(&tx, Ok(message), &mut stop).await || phase::is_terminal(record.phase) {
                return;
            }
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = stopping(&mut stop) => return,
            event = events.recv() => match event {
                Ok(record) => changed = record.run == run && record.name == name,
                Err(RecvError::Lagged(_)) => changed = true,
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
const EVENT_BUFFER_FOR_TESTS: usize = crate::engine::EVENT_BUFFER;

/// Lines per TailLogs message.
const LINES_PER_MESSAGE: usize = 500;
/// A line longer than this is sent in pieces rather than buffered without bound.
const MAX_PENDING_LINE: usize = 64 * 1024;
/// How often a running attempt's log is checked for new output.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// Splits complete lines (terminators kept: LF, CRLF or CR) off the front of `buf`. With
/// `flush`, the unterminated rest becomes a line too.
pub fn take_lines(buf: &mut Vec<u8>, flush: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < buf.len() {
        let end = match buf[i] {
            b'\n' => Some(i),
            b'\r' => match buf.get(i + 1) {
                Some(b'\n') => Some(i + 1),
                Some(_) => Some(i),
                // A CR at the very end may be the first half of a CRLF still being written.
                None if flush => Some(i),
                None => break,
            },
            _ => None,
        };
        if let Some(end) = end {
            lines.push(String::from_utf8_lossy(&buf[start..=end]).into_owned());
            start = end + 1;
            i = end;
        }
        i += 1;
    }
    if start < buf.len() && (flush || buf.len() - start >= MAX_PENDING_LINE) {
        lines.push(String::from_utf8_lossy(&buf[start..]).into_owned());
        start = buf.len();
    }
    buf.drain(..start);
    lines
}

fn attempt_finished(engine: &Engine, seq: i64, attempt: u32) -> bool {
    if engine.is_stopping() {
        return true;
    }
    match (
        engine.store.attempt(seq, attempt),
        engine.store.action_by_seq(seq),
    ) {
        (Ok(Some(row)), Ok(Some(action))) => {
            row.ended_ms.is_some() || phase::is_terminal(action.phase)
        }
        // Gone or unreadable: nothing more will be written that we could follow.
        _ => true,
    }
}

/// How one batch of log lines becomes a message of a particular TailLogs stream.
pub type WrapLines<T> = fn(Vec<LogLine>) -> T;

/// RunLogsService's message.
pub fn run_logs_message(lines: Vec<LogLine>) -> TailLogsResponse {
    TailLogsResponse {
        logs: vec![tail_logs_response::Logs { lines }],
    }
}

async fn send_lines<T>(
    lines: Vec<String>,
    tx: &Tx<T>,
    stop: &mut watch::Receiver<bool>,
    wrap: WrapLines<T>,
) -> bool {
    for chunk in lines.chunks(LINES_PER_MESSAGE) {
        let ts = timestamp(now_ms());
        let message = wrap(
            chunk
                .iter()
                .map(|line| LogLine {
                    timestamp: Some(ts),
                    message: line.clone(),
                    originator: LogLineOriginator::User as i32,
                    short_pod_name: String::new(),
                })
                .collect(),
        );
        if !deliver(tx, Ok(message), stop).await {
            return false;
        }
    }
    true
}

/// TailLogs: the attempt's log from the start; while the attempt runs, new lines as they come.
pub async fn tail_log<T>(
    engine: Arc<Engine>,
    seq: i64,
    attempt: u32,
    path: std::path::PathBuf,
    tx: Tx<T>,
    wrap: WrapLines<T>,
) {
    use std::io::{Read, Seek, SeekFrom};

    let mut stop = engine.stop_signal();
    let mut position: u64 = 0;
    let mut pending = Vec::new();
    loop {
        // Decided before reading, so output written just before the end is still read.
        let finished = attempt_finished(&engine, seq, attempt);
        let mut fresh = Vec::new();
        match std::fs::File::open(&path) {
            Ok(mut file) => {
                if let Err(err) = file
                    .seek(SeekFrom::Start(position))
                    .and_then(|_| file.read_to_end(&mut fresh))
                {
                    let failed =
                        Status::internal(format!("read log file {}: {err}", path.display()));
                    deliver(&tx, Err(failed), &mut stop).await;
                    return;
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                let failed = Status::internal(format!("open log file {}: {err}", path.display()));
                deliver(&tx, Err(failed), &mut stop).await;
                return;
            }
        }
        position += fresh.len() as u64;
        let got_data = !fresh.is_empty();
        pending.extend_from_slice(&fresh);
        let lines = take_lines(&mut pending, finished);
        if !lines.is_empty() && !send_lines(lines, &tx, &mut stop, wrap).await {
            return;
        }
        if finished {
            return;
        }
        if !got_data {
            tokio::select! {
                _ = tx.closed() => return,
                _ = stopping(&mut stop) => return,
                _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;
    use crate::layout::Layout;
    use crate::store::{ActionKind, NewAction, Store};
    use flyteidl2::flyteidl::common::ActionPhase;

    fn new_action(run: &RunKey, name: &str, parent: Option<&str>) -> NewAction {
        NewAction {
            run: run.clone(),
            name: name.into(),
            parent: parent.map(str::to_string),
            group: String::new(),
            kind: ActionKind::Task,
            spec: Vec::new(),
            task_name: String::new(),
            task_version: String::new(),
            input_uri: String::new(),
            run_output_base: "file:///x/".into(),
            phase: ActionPhase::Queued,
            attempts: 0,
            output_uri: None,
            started_ms: None,
            ended_ms: None,
            cache_hit: false,
        }
    }

    fn is_sentinel(message: &WatchForUpdatesResponse) -> bool {
        matches!(
            message.message,
            Some(watch_for_updates_response::Message::ControlMessage(_))
        )
    }

    /// A watcher that does not read must not hold anyone up; once it reads again it gets a
    /// fresh snapshot and sentinel instead of the changes it missed.
    #[tokio::test]
    async fn a_lagging_watcher_gets_a_fresh_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("backend.db")).unwrap();
        let run = RunKey {
            org: String::new(),
            project: "p".into(),
            domain: "d".into(),
            name: "r".into(),
        };
        store
            .create_run(None, None, &new_action(&run, "a0", None), 0)
            .unwrap();
        let child = store
            .insert_action(&new_action(&run, "c1", Some("a0")), 0)
            .unwrap()
            .unwrap();
        let config = BackendConfig::new(dir.path().into(), "/usr/bin".into());
        let engine = Arc::new(Engine::new(
            config,
            Layout::new(dir.path().into()),
            store,
            "127.0.0.1:1".into(),
            crate::secrets::SecretBox::load_or_create(&dir.path().join("secrets.key")).unwrap(),
            crate::attempt_token::AttemptKeys::load_or_create(&dir.path().join("attempt.key"))
                .unwrap(),
        ));
        let (tx, mut rx) = mpsc::channel(1);
        let watcher = tokio::spawn(child_updates(engine.clone(), run, "a0".into(), tx));
        assert!(!is_sentinel(&rx.recv().await.unwrap().unwrap()));
        assert!(is_sentinel(&rx.recv().await.unwrap().unwrap()));

        // Far more changes than the broadcast buffer holds, while nobody reads.
        for _ in 0..EVENT_BUFFER_FOR_TESTS + 100 {
            engine.publish(child.clone());
        }
        let mut sentinels = 0;
        let mut updates = 0;
        while sentinels == 0 {
            let message = rx.recv().await.unwrap().unwrap();
            if is_sentinel(&message) {
                sentinels += 1;
            } else {
                updates += 1;
            }
        }
        assert!(
            updates < EVENT_BUFFER_FOR_TESTS,
            "the missed changes were not replayed"
        );
        engine.begin_stop();
        watcher.await.unwrap();
    }

    #[test]
    fn splits_lines_keeping_terminators() {
        let mut buf = b"one\ntwo\r\nthree\rfour".to_vec();
        assert_eq!(
            take_lines(&mut buf, false),
            vec!["one\n", "two\r\n", "three\r"]
        );
        assert_eq!(buf, b"four");
        assert_eq!(take_lines(&mut buf, true), vec!["four"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn waits_for_the_rest_of_a_crlf() {
        let mut buf = b"half\r".to_vec();
        assert!(take_lines(&mut buf, false).is_empty());
        buf.extend_from_slice(b"\nnext\n");
        assert_eq!(take_lines(&mut buf, false), vec!["half\r\n", "next\n"]);
    }

    #[test]
    fn long_lines_do_not_grow_without_bound() {
        let mut buf = vec![b'x'; MAX_PENDING_LINE + 10];
        let lines = take_lines(&mut buf, false);
        assert_eq!(lines.len(), 1);
        assert!(buf.is_empty());
    }
}
