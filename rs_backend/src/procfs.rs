//! What the backend needs to know about OS processes, read from /proc, and how it stops them.

use std::time::Duration;

/// A process as the backend remembers it. The start time (clock ticks since boot) tells a
/// process apart from a later one that happens to get the same pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessRef {
    pub pid: i32,
    pub start_ticks: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: i32,
    start_ticks: u64,
    rss_pages: u64,
}

/// Parses /proc/<pid>/stat. The command name may hold spaces and parentheses, so fields are
/// counted from the last ')'.
fn parse_stat(text: &str) -> Option<Stat> {
    let close = text.rfind(')')?;
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // Index 0 is field 3 ("state") of proc(5).
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
        rss_pages: fields.get(21)?.parse().ok()?,
    })
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn is_dead_state(state: char) -> bool {
    // Zombies have exited and only wait to be reaped; X is "dead".
    matches!(state, 'Z' | 'X' | 'x')
}

/// The start time of a live process, used to build a [`ProcessRef`] right after spawning.
pub fn start_ticks(pid: i32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_ticks)
}

/// Whether exactly this process (same pid and start time) is still running.
pub fn is_alive(process: &ProcessRef) -> bool {
    match read_stat(process.pid) {
        Some(stat) => stat.start_ticks == process.start_ticks && !is_dead_state(stat.state),
        None => false,
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Total resident memory of all live processes in a process group.
pub fn group_rss_bytes(pgid: i32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let pages: u64 = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .filter(|stat| stat.pgrp == pgid && !is_dead_state(stat.state))
        .map(|stat| stat.rss_pages)
        .sum();
    pages.saturating_mul(page_size())
}

/// The process group of a live process, with its start time; None once it is gone (zombies
/// count as gone). Used to see that a forked child has become its own group leader.
pub fn group_of(pid: i32) -> Option<(i32, u64)> {
    read_stat(pid)
        .filter(|stat| !is_dead_state(stat.state))
        .map(|stat| (stat.pgrp, stat.start_ticks))
}

/// Bytes of memory a process has to itself, from smaps_rollup: private clean plus private
/// dirty pages. None when the file cannot be read (old kernel, process gone, no permission).
fn unique_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_private_kib(&text).map(|kib| kib.saturating_mul(1024))
}

/// Sums the `Private_Clean` and `Private_Dirty` lines (in kB) of smaps or smaps_rollup text.
fn parse_private_kib(text: &str) -> Option<u64> {
    let mut found = false;
    let mut total: u64 = 0;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if key != "Private_Clean" && key != "Private_Dirty" {
            continue;
        }
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        total = total.saturating_add(kib);
        found = true;
    }
    found.then_some(total)
}

/// Memory that only the live processes of a group use. Processes forked from a warm fork
/// server share its pages copy-on-write, so their resident size counts the whole server over
/// and over; their private pages are what they really cost. A process whose smaps_rollup
/// cannot be read counts with its resident size instead.
pub fn group_unique_bytes(pgid: i32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let page = page_size();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .filter(|(_, stat)| stat.pgrp == pgid && !is_dead_state(stat.state))
        .map(|(pid, stat)| unique_bytes(pid).unwrap_or_else(|| stat.rss_pages.saturating_mul(page)))
        .fold(0u64, u64::saturating_add)
}

/// SIGKILLs one process (not its group). Refuses pid <= 1 for the same reason as
/// [`kill_group`].
pub fn kill_process(pid: i32) {
    if pid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; a vanished process yields ESRCH.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// SIGKILLs a whole process group. Refuses pgid <= 1: kill(-1) would signal every process.
pub fn kill_group(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; a vanished group yields ESRCH.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Waits until the process is gone (it may be reaped by someone else), up to `limit`.
pub async fn wait_gone(process: &ProcessRef, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !is_alive(process) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let text = "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 12345678 321 18446744073709551615";
        let stat = parse_stat(text).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                pgrp: 1234,
                start_ticks: 987654,
                rss_pages: 321
            }
        );
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 1").is_none());
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let me = ProcessRef {
            pid,
            start_ticks: start_ticks(pid).unwrap(),
        };
        assert!(is_alive(&me));
        assert!(!is_alive(&ProcessRef {
            pid,
            start_ticks: me.start_ticks + 1
        }));
    }

    #[test]
    fn parses_private_memory() {
        let text = "55d0-7ffe ---p 00000000 00:00 0 [rollup]\nRss: 9000 kB\nPss: 5000 kB\n\
                    Private_Clean: 100 kB\nPrivate_Dirty: 2048 kB\nSwap: 0 kB\n";
        assert_eq!(parse_private_kib(text), Some(2148));
        assert_eq!(parse_private_kib("Rss: 1 kB\n"), None);
        assert_eq!(parse_private_kib("Private_Dirty: lots kB\n"), None);
        let pid = std::process::id() as i32;
        let me = group_of(pid).expect("own stat");
        assert_eq!(me.1, start_ticks(pid).unwrap());
        assert!(group_unique_bytes(me.0) > 0);
    }

    #[test]
    fn refuses_dangerous_groups() {
        // Must be a no-op: signalling -1 or -0 would hit every process / our own group.
        kill_group(1);
        kill_group(0);
        kill_group(-5);
        kill_process(1);
        kill_process(0);
        kill_process(-5);
    }
}
