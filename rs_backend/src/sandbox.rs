//! Keeping the backend's private files from the processes it starts. Tasks run as the user who
//! started the backend, so file permissions cannot keep a task from the database (every run's
//! state, sealed secrets) or the keys (which open secrets, sign attempt tokens and URLs). Each
//! process the backend starts for tasks — an attempt, the fork server whose children are
//! attempts, a reusable worker — gets a user and mount namespace of its own in which those
//! files are `/dev/null`. Nothing else changes: same user, same network, same files otherwise.
//! Where the kernel allows no unprivileged user namespaces, the backend says so once in its
//! log and starts processes as before.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::sync::OnceLock;

use crate::layout::Layout;

/// What a new child does to hide the files, prepared before the fork: between fork and exec a
/// child of a multi-threaded process may only make system calls, never allocate.
#[derive(Debug)]
pub struct Hider {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    files: Vec<CString>,
}

impl Hider {
    /// The hider of a data dir, if this system lets processes have user namespaces.
    pub fn for_layout(layout: &Layout) -> Option<Self> {
        if !supported() {
            return None;
        }
        Some(Self::new(layout))
    }

    fn new(layout: &Layout) -> Self {
        // SAFETY: neither call has preconditions or can fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let files = layout
            .private_files()
            .iter()
            .filter_map(|p| CString::new(p.as_os_str().as_bytes()).ok())
            .collect();
        Self {
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            files,
        }
    }

    /// In a new, single-threaded child: hides the files from it and everything it starts.
    /// Async-signal-safe: system calls on memory prepared before the fork.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: plain system calls on NUL-terminated strings and buffers owned by self.
        unsafe {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The same user and group inside as outside; setgroups must be denied before an
            // unprivileged process may write its gid_map.
            write_proc(c"/proc/self/setgroups", b"deny", true)?;
            write_proc(c"/proc/self/uid_map", &self.uid_map, false)?;
            write_proc(c"/proc/self/gid_map", &self.gid_map, false)?;
            // In a mount namespace of a new user namespace the copied mounts are slaves: what
            // is mounted on the system later still shows here, what is mounted here stays here.
            for file in &self.files {
                let mounted = libc::mount(
                    c"/dev/null".as_ptr(),
                    file.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                );
                if mounted != 0 {
                    let err = io::Error::last_os_error();
                    // A file not there yet (a WAL between checkpoints) has nothing to hide.
                    if err.raw_os_error() != Some(libc::ENOENT) {
                        return Err(err);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes `data` to a /proc file; `optional`: a missing file is fine (older kernels).
unsafe fn write_proc(path: &std::ffi::CStr, data: &[u8], optional: bool) -> io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        let err = io::Error::last_os_error();
        if optional && err.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(err);
    }
    let written = libc::write(fd, data.as_ptr().cast(), data.len());
    let err = io::Error::last_os_error();
    libc::close(fd);
    if written != data.len() as isize {
        return Err(err);
    }
    Ok(())
}

/// Whether a child can be given a user and mount namespace here: tried once per process with
/// a child that exits at once.
fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        // SAFETY: neither call has preconditions or can fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let probe = Hider {
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            files: Vec::new(),
        };
        let mut command = std::process::Command::new("/bin/sh");
        command.args(["-c", "exit 0"]);
        // SAFETY: see Hider::apply.
        unsafe {
            command.pre_exec(move || probe.apply());
        }
        match command.status() {
            Ok(status) if status.success() => true,
            outcome => {
                tracing::warn!(
                    ?outcome,
                    "this system gives processes no user namespaces: tasks can read the \
                     backend's database and keys in its data dir"
                );
                false
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_file_reads_empty_in_the_child_and_stays_whole_outside() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        let key = layout.secrets_key_path();
        std::fs::write(&key, b"the key").unwrap();
        if !supported() {
            eprintln!("no user namespaces here: nothing to test");
            return;
        }
        let hider = Hider::new(&layout);
        let mut command = std::process::Command::new("/bin/cat");
        command.arg(&key);
        // SAFETY: see Hider::apply.
        unsafe {
            command.pre_exec(move || hider.apply());
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"");
        assert_eq!(std::fs::read(&key).unwrap(), b"the key");
    }
}
