//! Where things live under the data dir, as paths and as `file://` URIs.
//!
//! ```text
//! <data_dir>/backend.db                                   state (SQLite, WAL)
//! <data_dir>/data/<org>/<project>/<domain>/<run>/         run base: inputs, outputs, raw data
//! <data_dir>/refs/<org>/<project>/<domain>/<run>/          other runs' files its cache hits name
//! <data_dir>/logs/<org>/<project>/<domain>/<run>/<action>/<attempt>.log
//! <data_dir>/logs/forkserver.log                          stderr of the fork server, if any
//! <data_dir>/work/<run>/<action>/<attempt>/               fresh working dir of one attempt
//! <data_dir>/workers/<pool>/<n>/                          working dir of reusable worker n
//! <data_dir>/logs/workers/<pool>-<n>.log                  what worker n wrote outside attempts
//! ```
//! Empty org/project/domain segments are spelled "_" (names themselves may not be "_").

use std::path::{Path, PathBuf};

use crate::names::RunKey;

const FILE_SCHEME: &str = "file://";

#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

fn segment(value: &str) -> &str {
    if value.is_empty() {
        "_"
    } else {
        value
    }
}

impl Layout {
    /// `root` must already be absolute (the backend canonicalizes the data dir at start).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("backend.db")
    }

    /// The backend's object storage: everything a signed URL may name lives under it.
    pub fn storage_root(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.root.join("signing.key")
    }

    /// The key that seals secret values (never leaves the data dir).
    /// What no task may read: the database (with its WAL) and the keys.
    pub fn private_files(&self) -> Vec<PathBuf> {
        let db = self.db_path();
        let mut files = vec![
            db.with_extension("db-wal"),
            db.with_extension("db-shm"),
            self.secrets_key_path(),
            self.attempt_key_path(),
            self.signing_key_path(),
        ];
        files.insert(0, db);
        files
    }

    pub fn attempt_key_path(&self) -> PathBuf {
        self.root.join("attempt.key")
    }

    pub fn secrets_key_path(&self) -> PathBuf {
        self.root.join("secrets.key")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join("backend.lock")
    }

    fn scoped(&self, top: &str, run: &RunKey) -> PathBuf {
        self.root
            .join(top)
            .join(segment(&run.org))
            .join(segment(&run.project))
            .join(segment(&run.domain))
            .join(&run.name)
    }

    pub fn run_base_dir(&self, run: &RunKey) -> PathBuf {
        self.scoped("data", run)
    }

    /// The run base URI, with a trailing slash: where a parent writes its children's inputs.
    pub fn run_base_uri(&self, run: &RunKey) -> String {
        dir_uri(&self.run_base_dir(run))
    }

    pub fn root_inputs_path(&self, run: &RunKey) -> PathBuf {
        self.run_base_dir(run).join("a0").join("inputs.pb")
    }

    /// What a value may name and a task be given to read besides its own run: runs' data
    /// (uploads included) and what cache hits brought into runs. Never the database, the keys,
    /// logs or work dirs.
    pub fn shareable(&self) -> [PathBuf; 2] {
        [self.storage_root(), self.root.join("refs")]
    }

    /// Where the files that a run's cache hits name, written by other runs, are linked: its
    /// tasks read them there, read-only.
    pub fn run_refs_dir(&self, run: &RunKey) -> PathBuf {
        self.scoped("refs", run)
    }

    /// Where the logs of a run's attempts are.
    pub fn run_log_dir(&self, run: &RunKey) -> PathBuf {
        self.scoped("logs", run)
    }

    pub fn log_path(&self, run: &RunKey, action: &str, attempt: u32) -> PathBuf {
        self.scoped("logs", run)
            .join(action)
            .join(format!("{attempt}.log"))
    }

    pub fn fork_server_log_path(&self) -> PathBuf {
        self.root.join("logs").join("forkserver.log")
    }

    /// `pool` is a pool's label (see the executor's `pool` module): a safe path segment.
    pub fn worker_dir(&self, pool: &str, number: u64) -> PathBuf {
        self.root
            .join("workers")
            .join(pool)
            .join(number.to_string())
    }

    pub fn worker_log_path(&self, pool: &str, number: u64) -> PathBuf {
        self.root
            .join("logs")
            .join("workers")
            .join(format!("{pool}-{number}.log"))
    }

    pub fn work_dir(&self, run: &RunKey, action: &str, attempt: u32) -> PathBuf {
        self.root
            .join("work")
            .join(&run.name)
            .join(action)
            .join(attempt.to_string())
    }
}

/// `file://` URI of a directory, always ending in '/'.
pub fn dir_uri(path: &Path) -> String {
    let mut uri = file_uri(path);
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

pub fn file_uri(path: &Path) -> String {
    format!("{FILE_SCHEME}{}", path.display())
}

/// Appends `rel` to a prefix URI, inserting the '/' the prefix may lack.
pub fn join_uri(prefix: &str, rel: &str) -> String {
    if prefix.ends_with('/') {
        format!("{prefix}{rel}")
    } else {
        format!("{prefix}/{rel}")
    }
}

pub fn is_file_uri(uri: &str) -> bool {
    uri_to_path(uri).is_ok()
}

/// The local path of a `file://` URI with an absolute path.
pub fn uri_to_path(uri: &str) -> Result<PathBuf, String> {
    let rest = uri.strip_prefix(FILE_SCHEME).ok_or_else(|| {
        format!("{uri:?} is not a file:// URI; the embedded backend only reaches local files")
    })?;
    if !rest.starts_with('/') {
        return Err(format!("{uri:?} must hold an absolute path (file:///...)"));
    }
    if rest.contains('\0') {
        return Err(format!("{uri:?} contains a NUL byte"));
    }
    Ok(PathBuf::from(rest))
}

/// An attempt's output prefix under its action's run output base,
/// `<base><action>/<attempt>/`, as a path and as a URI.
pub fn attempt_prefix(
    run_output_base: &str,
    action: &str,
    attempt: u32,
) -> Result<(PathBuf, String), String> {
    let dir = uri_to_path(run_output_base)?
        .join(action)
        .join(attempt.to_string());
    let uri = dir_uri(&dir);
    Ok((dir, uri))
}

/// Where an attempt may put raw (offloaded) data: `<base>raw/<action>/<attempt>/`.
pub fn raw_data_prefix(
    run_output_base: &str,
    action: &str,
    attempt: u32,
) -> Result<String, String> {
    let dir = uri_to_path(run_output_base)?
        .join("raw")
        .join(action)
        .join(attempt.to_string());
    Ok(dir_uri(&dir))
}

/// Schemes a run's raw data prefix may use: the backend hands the prefix to its action
/// processes, which reach object stores themselves.
const RAW_DATA_SCHEMES: &[&str] = &["s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "azure"];

/// Checks a run's `raw_data_storage.raw_data_prefix`: an absolute `file://` URI or an object
/// store URI with a bucket.
pub fn check_raw_data_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains('\0') {
        return Err(format!("{prefix:?} contains a NUL byte"));
    }
    if prefix.starts_with(FILE_SCHEME) {
        return uri_to_path(prefix).map(|_| ());
    }
    let (scheme, rest) = prefix
        .split_once("://")
        .ok_or_else(|| format!("{prefix:?} is not a URI (expected file:///..., s3://bucket/..., gs://... or abfs://...)"))?;
    if !RAW_DATA_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{prefix:?} has an unsupported scheme {scheme:?} (use file, s3, gs or abfs)"
        ));
    }
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Err(format!("{prefix:?} names no bucket"));
    }
    Ok(())
}

/// Where an attempt puts raw data when its run chose a prefix of its own:
/// `<prefix>/<run>/<action>/<attempt>/`.
pub fn run_raw_data_prefix(prefix: &str, run: &str, action: &str, attempt: u32) -> String {
    let mut uri = join_uri(
        &join_uri(&join_uri(prefix, run), action),
        &attempt.to_string(),
    );
    uri.push('/');
    uri
}

/// The file holding outputs for an output reference: a prefix gets `outputs.pb` appended; a
/// reference that already names a `.pb` file is used as is.
pub fn outputs_file_uri(output_uri: &str) -> String {
    if output_uri.ends_with(".pb") {
        output_uri.to_string()
    } else {
        join_uri(output_uri, "outputs.pb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunKey {
        RunKey {
            org: String::new(),
            project: "p".into(),
            domain: "d".into(),
            name: "r1".into(),
        }
    }

    #[test]
    fn raw_data_prefixes_of_runs() {
        assert!(check_raw_data_prefix("s3://bucket/some/where").is_ok());
        assert!(check_raw_data_prefix("abfs://c@acct.dfs.core.windows.net/x").is_ok());
        assert!(check_raw_data_prefix("file:///tmp/raw").is_ok());
        assert!(check_raw_data_prefix("file://relative").is_err());
        assert!(check_raw_data_prefix("s3://").is_err());
        assert!(check_raw_data_prefix("ftp://host/x").is_err());
        assert!(check_raw_data_prefix("/tmp/raw").is_err());
        assert_eq!(
            run_raw_data_prefix("s3://b/raw/", "r1", "a0", 2),
            "s3://b/raw/r1/a0/2/"
        );
        assert_eq!(
            run_raw_data_prefix("file:///tmp/x", "r1", "abc", 1),
            "file:///tmp/x/r1/abc/1/"
        );
    }

    #[test]
    fn paths_and_uris() {
        let layout = Layout::new("/data".into());
        assert_eq!(layout.run_base_uri(&run()), "file:///data/data/_/p/d/r1/");
        assert_eq!(
            layout.root_inputs_path(&run()),
            PathBuf::from("/data/data/_/p/d/r1/a0/inputs.pb")
        );
        assert_eq!(
            layout.log_path(&run(), "a0", 2),
            PathBuf::from("/data/logs/_/p/d/r1/a0/2.log")
        );
        assert_eq!(
            layout.work_dir(&run(), "a0", 1),
            PathBuf::from("/data/work/r1/a0/1")
        );
    }

    #[test]
    fn uri_handling() {
        assert_eq!(join_uri("file:///a/", "b"), "file:///a/b");
        assert_eq!(join_uri("file:///a", "b"), "file:///a/b");
        assert_eq!(
            uri_to_path("file:///x/y.pb").unwrap(),
            PathBuf::from("/x/y.pb")
        );
        assert!(uri_to_path("s3://bucket/x").is_err());
        assert!(uri_to_path("file://relative").is_err());
        assert_eq!(outputs_file_uri("file:///o/"), "file:///o/outputs.pb");
        let (dir, uri) = attempt_prefix("file:///b/", "a1", 2).unwrap();
        assert_eq!(dir, PathBuf::from("/b/a1/2"));
        assert_eq!(uri, "file:///b/a1/2/");
        assert_eq!(
            raw_data_prefix("file:///b/", "a1", 2).unwrap(),
            "file:///b/raw/a1/2/"
        );
        assert!(attempt_prefix("s3://b/", "a1", 1).is_err());
        assert_eq!(outputs_file_uri("file:///o/x.pb"), "file:///o/x.pb");
    }
}
