//! Keeping the backend's private files from the processes it starts. Tasks run as the user who
//! started the backend, so file permissions cannot keep a task from the database (every run's
//! state, sealed secrets) or the keys (which open secrets, sign attempt tokens and URLs). Each
//! process the backend starts for tasks — an attempt, the fork server whose children are
//! attempts, a reusable worker — gets a user and mount namespace of its own in which those
//! files are `/dev/null`. Nothing else changes: same user, same network, same files otherwise.
//! Where the kernel allows no unprivileged user namespaces, the backend says so once in its
//! log and starts processes as before.
//!
//! An attempt's process sees even less: a [`View`] covers the whole data dir with an empty
//! tmpfs and binds back only its run's own directory, its working dir and the few other paths
//! its launch names (the code bundle, uploaded inputs), so it cannot read other runs' inputs,
//! outputs or logs. No task process keeps `CAP_SYS_ADMIN` in its namespace: it cannot unmount
//! what hides the rest, and any namespace it makes itself gets those mounts locked.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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

    /// In a new, single-threaded child: hides the files from it and everything it starts,
    /// narrows its data dir to `view` if given, and takes away its `CAP_SYS_ADMIN`.
    /// Async-signal-safe: system calls on memory prepared before the fork.
    pub fn apply(&self, view: Option<&mut View>) -> io::Result<()> {
        // SAFETY: plain system calls on NUL-terminated strings and buffers owned by self.
        unsafe {
            own_namespaces(&self.uid_map, &self.gid_map)?;
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
            if let Some(view) = view {
                view.enter()?;
            }
            // Gone from the bounding set, it does not come back with the next exec, even for
            // a task of a backend started by root (uid 0 inside too).
            drop_admin(false)
        }
    }
}

const CAP_SYS_ADMIN: libc::c_ulong = 21;
const PR_CAPBSET_DROP: libc::c_int = 24;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOUNT_ATTR_RDONLY: u64 = 1;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Moves the calling (single-threaded) process into a user and mount namespace of its own,
/// keeping its user and group ids.
unsafe fn own_namespaces(uid_map: &[u8], gid_map: &[u8]) -> io::Result<()> {
    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
        return Err(io::Error::last_os_error());
    }
    // setgroups must be denied before an unprivileged process may write its gid_map.
    write_proc(c"/proc/self/setgroups", b"deny", true)?;
    write_proc(c"/proc/self/uid_map", uid_map, false)?;
    write_proc(c"/proc/self/gid_map", gid_map, false)
}

/// Takes `CAP_SYS_ADMIN` out of the bounding set (for what the process executes), and with
/// `now` out of the process's own sets too (for a process that goes on without exec).
unsafe fn drop_admin(now: bool) -> io::Result<()> {
    if libc::prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0 {
        return Err(io::Error::last_os_error());
    }
    if !now {
        return Ok(());
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
        return Err(io::Error::last_os_error());
    }
    let bit = !(1u32 << CAP_SYS_ADMIN);
    data[0].effective &= bit;
    data[0].permitted &= bit;
    data[0].inheritable &= bit;
    if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A path of the data dir that a task's process keeps in its [`View`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Opening {
    pub path: PathBuf,
    pub writable: bool,
}

/// The openings that need a mount of their own, parents first: those inside the root that
/// exist, without one inside another that already allows as much.
pub fn normalize(root: &Path, openings: &[Opening]) -> Vec<Opening> {
    let mut kept: Vec<Opening> = openings
        .iter()
        .filter(|o| o.path.starts_with(root) && o.path != root && o.path.exists())
        .cloned()
        .collect();
    // Sorted, a parent comes before what is inside it, and read-only before writable.
    kept.sort();
    let mut binds: Vec<Opening> = Vec::new();
    for opening in kept {
        if !binds.iter().any(|b| b.covers(&opening)) {
            binds.push(opening);
        }
    }
    binds
}

/// The directories between `root` (excluded) and `path` (excluded), outermost first: the
/// mount point's parents a view has to create.
fn ancestors_below<'a>(root: &Path, path: &'a Path) -> impl Iterator<Item = &'a Path> {
    let mut ancestors: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .take_while(|a| *a != root)
        .collect();
    ancestors.reverse();
    ancestors.into_iter()
}

impl Opening {
    /// Whether `other` is reachable through this opening, as writable as it wants to be.
    pub fn covers(&self, other: &Opening) -> bool {
        other.path.starts_with(&self.path) && (self.writable || !other.writable)
    }
}

/// What a task's process sees of the data dir: an empty tmpfs over all of it, with a few
/// paths bound back. Prepared before the fork (see [`Hider::apply`]).
#[derive(Debug)]
pub struct View {
    root: CString,
    /// Mount points below the root to create, parents first.
    dirs: Vec<CString>,
    files: Vec<CString>,
    /// (path, writable), and a slot per bind for the detached copy opened before the cover.
    binds: Vec<(CString, bool)>,
    trees: Vec<libc::c_int>,
    cwd: Option<CString>,
}

impl View {
    /// The view of `root` with `openings` (paths outside the root, or missing, are left
    /// out; an opening inside another that allows as much is left to it). `cwd`: where the
    /// process works; it must be one of the openings or inside one.
    pub fn new(root: &Path, openings: &[Opening], cwd: Option<&Path>) -> Self {
        let binds = normalize(root, openings);
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut files = Vec::new();
        for bind in &binds {
            dirs.extend(ancestors_below(root, &bind.path).map(Path::to_path_buf));
            if bind.path.is_dir() {
                dirs.push(bind.path.clone());
            } else {
                files.push(bind.path.clone());
            }
        }
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).ok();
        let binds: Vec<(CString, bool)> = binds
            .iter()
            .filter_map(|b| Some((c(&b.path)?, b.writable)))
            .collect();
        Self {
            root: c(root).unwrap_or_default(),
            dirs: dirs.iter().filter_map(|d| c(d)).collect(),
            files: files.iter().filter_map(|f| c(f)).collect(),
            trees: vec![-1; binds.len()],
            binds,
            cwd: cwd.and_then(c),
        }
    }

    /// In a process with a mount namespace of its own (and `CAP_SYS_ADMIN` in it): covers the
    /// root and binds the openings back. Async-signal-safe.
    unsafe fn enter(&mut self) -> io::Result<()> {
        let result = self.mount_all();
        for fd in &mut self.trees {
            if *fd >= 0 {
                libc::close(*fd);
                *fd = -1;
            }
        }
        result?;
        if let Some(cwd) = &self.cwd {
            // The old working dir is the covered one, where ".." leads to everything.
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    unsafe fn mount_all(&mut self) -> io::Result<()> {
        // Copies of the openings first, while they can still be reached by their paths.
        for (slot, (path, writable)) in self.trees.iter_mut().zip(&self.binds) {
            *slot = clone_tree(path, *writable)?;
        }
        if libc::mount(
            c"flyte-view".as_ptr(),
            self.root.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0700,size=1m,nr_inodes=65536".as_ptr().cast(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        for dir in &self.dirs {
            if libc::mkdir(dir.as_ptr(), 0o700) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        for file in &self.files {
            let fd = libc::open(
                file.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::close(fd);
        }
        for (fd, (path, _)) in self.trees.iter().zip(&self.binds) {
            move_tree(*fd, path)?;
        }
        // Writes outside the openings fail loudly instead of going to the small tmpfs.
        set_read_only(&self.root, true)
    }
}

/// A path to attach in another process's view, prepared before the fork.
struct Attachment {
    source: CString,
    ancestors: Vec<CString>,
    is_dir: bool,
    writable: bool,
}

/// In `open_in`'s child: copies the paths here, joins the namespaces of `pidfd`'s process and
/// attaches the copies there. Async-signal-safe.
unsafe fn attach(
    pidfd: libc::c_int,
    root: &std::ffi::CStr,
    prepared: &[Attachment],
    trees: &mut [libc::c_int],
) -> io::Result<()> {
    for (slot, p) in trees.iter_mut().zip(prepared) {
        *slot = clone_tree(&p.source, p.writable)?;
    }
    if libc::setns(pidfd, libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
        return Err(io::Error::last_os_error());
    }
    // The cover is read-only for the process; its mount points are made here.
    set_read_only(root, false)?;
    let attached = attach_all(prepared, trees);
    let sealed = set_read_only(root, true);
    attached.and(sealed)
}

unsafe fn attach_all(prepared: &[Attachment], trees: &[libc::c_int]) -> io::Result<()> {
    let made = |result: libc::c_int| {
        if result != 0 && *libc::__errno_location() != libc::EEXIST {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    for (fd, p) in trees.iter().zip(prepared) {
        for dir in &p.ancestors {
            made(libc::mkdir(dir.as_ptr(), 0o700))?;
        }
        if p.is_dir {
            made(libc::mkdir(p.source.as_ptr(), 0o700))?;
        } else {
            let file = libc::open(
                p.source.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            );
            if file < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::close(file);
        }
        move_tree(*fd, &p.source)?;
    }
    Ok(())
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// An `O_PATH` descriptor of `path` (relative to `dir`, or `AT_FDCWD`), resolved through no
/// symbolic link and, relative to a directory, staying beneath it. Async-signal-safe.
pub(crate) unsafe fn open_no_links(
    dir: libc::c_int,
    path: &std::ffi::CStr,
) -> io::Result<libc::c_int> {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS
            | if dir == libc::AT_FDCWD {
                0
            } else {
                RESOLVE_BENEATH
            },
    };
    let fd = libc::syscall(
        libc::SYS_openat2,
        dir,
        path.as_ptr(),
        &how,
        std::mem::size_of::<OpenHow>(),
    );
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as libc::c_int)
}

/// A detached copy of the mount of `path` (read-only unless `writable`), for `move_tree`.
/// No symbolic link is followed on the way: a path checked before the fork cannot be turned
/// into a link to somewhere else meanwhile. Async-signal-safe.
unsafe fn clone_tree(path: &std::ffi::CStr, writable: bool) -> io::Result<libc::c_int> {
    let at = open_no_links(libc::AT_FDCWD, path)?;
    let fd = libc::syscall(
        libc::SYS_open_tree,
        at,
        c"".as_ptr(),
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
    );
    let err = io::Error::last_os_error();
    libc::close(at);
    if fd < 0 {
        return Err(err);
    }
    let fd = fd as libc::c_int;
    if !writable {
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let set = libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr,
            std::mem::size_of::<MountAttr>(),
        );
        if set != 0 {
            let err = io::Error::last_os_error();
            libc::close(fd);
            return Err(err);
        }
    }
    Ok(fd)
}

/// Makes the mount at `path` (only that one, not those on it) read-only or writable again.
/// Async-signal-safe.
unsafe fn set_read_only(path: &std::ffi::CStr, read_only: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if read_only { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    let set = libc::syscall(
        libc::SYS_mount_setattr,
        libc::AT_FDCWD,
        path.as_ptr(),
        0,
        &attr,
        std::mem::size_of::<MountAttr>(),
    );
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches a copy made by `clone_tree` at `target`. Async-signal-safe.
unsafe fn move_tree(fd: libc::c_int, target: &std::ffi::CStr) -> io::Result<()> {
    let moved = libc::syscall(
        libc::SYS_move_mount,
        fd,
        c"".as_ptr(),
        libc::AT_FDCWD,
        target.as_ptr(),
        MOVE_MOUNT_F_EMPTY_PATH,
    );
    if moved != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Adds `openings` to the view of a running process (a reusable worker, which learns of
/// the runs it serves one attempt at a time). The backend, as the owner of the process's user
/// namespace, copies each path and attaches the copy inside the process's mount namespace,
/// from a short-lived child of its own.
pub fn open_in(pid: i32, start_ticks: u64, root: &Path, openings: &[Opening]) -> io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let mut prepared = Vec::new();
    for opening in &normalize(root, openings) {
        prepared.push(Attachment {
            source: c(&opening.path)?,
            ancestors: ancestors_below(root, &opening.path)
                .map(c)
                .collect::<io::Result<_>>()?,
            is_dir: opening.path.is_dir(),
            writable: opening.writable,
        });
    }
    if prepared.is_empty() {
        return Ok(());
    }
    let mut trees = vec![-1 as libc::c_int; prepared.len()];
    let root_c = c(root)?;
    // SAFETY: pidfd_open has no memory preconditions.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // The descriptor holds the process it was opened on: if that one started when ours did,
    // it is ours and not a process that got its pid after it ended.
    if crate::procfs::start_ticks(pid) != Some(start_ticks) {
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(pidfd) };
        return Err(io::Error::other(format!("process {pid} is gone")));
    }
    // SAFETY: between fork and _exit the child of this multi-threaded process only makes
    // system calls on memory prepared above; the parent only waits for it.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: in the child, system calls only (see above).
        let code = match unsafe { attach(pidfd, &root_c, &prepared, &mut trees) } {
            Ok(()) => 0,
            Err(err) => err
                .raw_os_error()
                .filter(|e| (1..256).contains(e))
                .unwrap_or(255),
        };
        // SAFETY: ends the child without running anything of the parent's.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(pidfd) };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    while unsafe { libc::waitpid(child, &mut status, 0) } != child {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(());
    }
    if libc::WIFEXITED(status) {
        return Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(status)));
    }
    Err(io::Error::other(format!(
        "the mounting child ended with status {status}"
    )))
}

/// For a process that goes on without exec (a fork server's child): moves it into namespaces
/// of its own, narrows its data dir to `view` and drops its `CAP_SYS_ADMIN`. The process must
/// be single-threaded.
pub fn enter_view(mut view: View) -> io::Result<()> {
    // SAFETY: neither call has preconditions or can fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let uid_map = format!("{uid} {uid} 1\n").into_bytes();
    let gid_map = format!("{gid} {gid} 1\n").into_bytes();
    // SAFETY: system calls on memory owned here; the caller guarantees a single thread.
    unsafe {
        own_namespaces(&uid_map, &gid_map)?;
        view.enter()?;
        drop_admin(true)
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
        // A view too: a kernel may allow the namespaces but not the mount calls views use.
        let dir = tempfile::tempdir();
        let mut view = dir.as_ref().ok().map(|dir| {
            // Canonical: a view follows no symbolic link. One opening of each kind.
            let root = dir
                .path()
                .canonicalize()
                .unwrap_or(dir.path().to_path_buf());
            let openings = [("rw", true), ("ro", false)].map(|(name, writable)| {
                let path = root.join(name);
                let _ = std::fs::create_dir(&path);
                Opening { path, writable }
            });
            View::new(&root, &openings, None)
        });
        let mut command = std::process::Command::new("/bin/sh");
        command.args(["-c", "exit 0"]);
        // SAFETY: see Hider::apply.
        unsafe {
            command.pre_exec(move || probe.apply(view.as_mut()));
        }
        match command.status() {
            Ok(status) if status.success() && dir.is_ok() => true,
            outcome => {
                tracing::warn!(
                    ?outcome,
                    "this system gives processes no user namespaces with mounts of their own: \
                     tasks can read the backend's database and keys and every run's data in its \
                     data dir"
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
            command.pre_exec(move || hider.apply(None));
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"");
        assert_eq!(std::fs::read(&key).unwrap(), b"the key");
    }

    /// A process in a view sees its openings only; paths opened later (as for a worker) appear.
    #[test]
    fn a_view_shows_its_openings_and_what_is_opened_later() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let layout = Layout::new(root.clone());
        let own = root.join("data/_/p/d/own");
        let other = root.join("data/_/p/d/other");
        let bundle = root.join("uploads/p/d/x/code.tar.gz");
        for d in [&own, &other, &bundle.parent().unwrap().to_path_buf()] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(own.join("in.txt"), b"mine").unwrap();
        std::fs::write(other.join("in.txt"), b"theirs").unwrap();
        std::fs::write(&bundle, b"code").unwrap();
        if !supported() {
            eprintln!("no user namespaces here: nothing to test");
            return;
        }
        let hider = Hider::new(&layout);
        let mut view = View::new(
            &root,
            &[
                Opening {
                    path: own.clone(),
                    writable: true,
                },
                Opening {
                    path: bundle.clone(),
                    writable: false,
                },
            ],
            Some(&own),
        );
        let script = "cat in.txt; echo; cat \"$1\"; echo; ls \"$2\"; \
                      echo x > \"$1\" 2>/dev/null || echo read-only; \
                      touch \"$4/planted\" 2>/dev/null || echo sealed; \
                      read line; cat \"$3/in.txt\"";
        let mut command = std::process::Command::new("/bin/sh");
        command
            .args(["-c", script, "sh"])
            .arg(&bundle)
            .arg(root.join("data/_/p/d"))
            .arg(&other)
            .arg(&root)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        // SAFETY: see Hider::apply.
        unsafe {
            command.pre_exec(move || hider.apply(Some(&mut view)));
        }
        let mut child = command.spawn().unwrap();
        use std::io::{BufRead as _, Write as _};
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut before = String::new();
        while !before.ends_with("sealed\n") {
            assert!(stdout.read_line(&mut before).unwrap() > 0, "{before:?}");
        }
        assert_eq!(before, "mine\ncode\nown\nread-only\nsealed\n");
        let pid = child.id() as i32;
        open_in(
            pid,
            crate::procfs::start_ticks(pid).unwrap(),
            &root,
            &[Opening {
                path: other.clone(),
                writable: false,
            }],
        )
        .unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut after = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut after).unwrap();
        assert!(child.wait().unwrap().success());
        let text = after;
        assert_eq!(text, "theirs");
    }
}
