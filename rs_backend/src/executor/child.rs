//! The process of one attempt, however it was started: spawned by the backend itself, or
//! forked by the fork server (whose child it is, so only the server can reap it).

use std::process::ExitStatus;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::procfs::{self, ProcessRef};

/// How often an orphaned forked child (its server died) is checked for liveness.
const ORPHAN_POLL: Duration = Duration::from_millis(100);
/// While the server lives, how often a forked child is checked as a safety net, and how long
/// it may be gone before a missing exit report stops being waited for.
const REPORT_CHECK: Duration = Duration::from_secs(1);
const REPORT_GRACE: Duration = Duration::from_secs(10);

/// How a process ended, as far as anyone can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Status(ExitStatus),
    /// It is gone but nobody could observe its exit status (the fork server that should have
    /// reaped it died first).
    Unknown,
}

pub enum ChildProc {
    Spawned(tokio::process::Child),
    Forked(ForkedChild),
}

impl ChildProc {
    /// Waits until the process ended. Cancel safe: it can be raced in `select!` and called
    /// again.
    pub async fn wait(&mut self) -> std::io::Result<Ended> {
        match self {
            ChildProc::Spawned(child) => child.wait().await.map(Ended::Status),
            ChildProc::Forked(child) => Ok(child.wait().await),
        }
    }

    /// The memory a memory limit is checked against.
    pub fn memory_bytes(&self, pgid: i32) -> u64 {
        match self {
            ChildProc::Spawned(_) => procfs::group_rss_bytes(pgid),
            // Resident size would charge every child for the pages it shares with the server.
            ChildProc::Forked(_) => procfs::group_unique_bytes(pgid),
        }
    }
}

pub struct ForkedChild {
    process: ProcessRef,
    /// The server's report of its exit; None once the server can no longer send it.
    exit: Option<oneshot::Receiver<ExitStatus>>,
    ended: Option<Ended>,
    /// When it was first seen gone while its exit report was still awaited.
    gone_since: Option<Instant>,
}

impl ForkedChild {
    pub fn new(process: ProcessRef, exit: oneshot::Receiver<ExitStatus>) -> Self {
        Self {
            process,
            exit: Some(exit),
            ended: None,
            gone_since: None,
        }
    }

    async fn wait(&mut self) -> Ended {
        if let Some(ended) = self.ended {
            return ended;
        }
        loop {
            let Some(exit) = self.exit.as_mut() else {
                // Orphaned: the start time tells it apart from a later process with its pid.
                if !procfs::is_alive(&self.process) {
                    self.ended = Some(Ended::Unknown);
                    return Ended::Unknown;
                }
                tokio::time::sleep(ORPHAN_POLL).await;
                continue;
            };
            tokio::select! {
                report = exit => match report {
                    Ok(status) => {
                        self.exit = None;
                        self.ended = Some(Ended::Status(status));
                        return Ended::Status(status);
                    }
                    // The server died: nobody will report this exit.
                    Err(_) => self.exit = None,
                },
                _ = tokio::time::sleep(REPORT_CHECK) => {
                    // A live server that never reports an exit must not hang the attempt.
                    if procfs::is_alive(&self.process) {
                        self.gone_since = None;
                    } else {
                        let since = *self.gone_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= REPORT_GRACE {
                            tracing::warn!(pid = self.process.pid, "the fork server never reported a child's exit");
                            self.exit = None;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reported_status_is_kept() {
        let (tx, rx) = oneshot::channel();
        let mut child = ChildProc::Forked(ForkedChild::new(
            ProcessRef {
                pid: i32::MAX,
                start_ticks: 0,
            },
            rx,
        ));
        let status = std::os::unix::process::ExitStatusExt::from_raw(3 << 8);
        tx.send(status).unwrap();
        assert_eq!(child.wait().await.unwrap(), Ended::Status(status));
        // Asking again must not poll the spent channel.
        assert_eq!(child.wait().await.unwrap(), Ended::Status(status));
    }

    #[tokio::test]
    async fn an_orphan_that_is_gone_ends_unknown() {
        let (tx, rx) = oneshot::channel::<ExitStatus>();
        let mut child = ForkedChild::new(
            ProcessRef {
                pid: i32::MAX,
                start_ticks: 0,
            },
            rx,
        );
        drop(tx);
        assert_eq!(child.wait().await, Ended::Unknown);
    }
}
