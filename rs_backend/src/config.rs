//! How an embedded backend is set up: where it keeps state and how it runs an action.

use std::path::PathBuf;

use crate::error::BackendError;

/// Settings of one embedded backend instance.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// All state lives here: `backend.db` (SQLite, WAL), `data/`, `logs/`, `work/`.
    pub data_dir: PathBuf,
    /// Where the programs of a task's image are found unless `images` maps the image
    /// elsewhere: the bin directory of a Python environment (e.g. a virtualenv's `bin`). A
    /// task's `container.args[0]` is looked up here first, then on PATH.
    pub bin_dir: PathBuf,
    /// Image name (or prefix of one) -> bin directory of the environment that stands in for
    /// it. The longest matching prefix wins.
    pub images: Vec<(String, PathBuf)>,
    /// Most processes that may compute at once. Parents blocked on children do not count.
    pub max_parallel: usize,
    /// Most RPCs one client connection may have open at once (HTTP/2 streams); a client that
    /// opens more waits for one to end (HTTP/2 flow control), so one client cannot hold an
    /// unbounded number of streams.
    pub max_streams_per_connection: u32,
    /// Requests one client connection may make a second (and at once, after a quiet second);
    /// more are answered RESOURCE_EXHAUSTED (HTTP 429), which clients back off from.
    pub max_requests_per_second: u32,
    /// Largest message (request or reply) in bytes; a larger request is refused
    /// (RESOURCE_EXHAUSTED or OUT_OF_RANGE, as tonic answers it).
    pub max_message_bytes: usize,
    /// Relaunches after crashes (lost processes, signals, missing results), separate from the
    /// task's own retries.
    pub system_retries: u32,
    /// Extra environment for every action process, applied before the task's own env.
    pub extra_env: Vec<(String, String)>,
    /// Program and arguments of a fork server, e.g.
    /// `["/path/python", "-m", "flyte._runtime._forkserver"]`. None: every attempt is a fresh
    /// process. Set: one warm server is started on the first launch (and again whenever it
    /// dies) and forks every attempt whose program is [`crate::contract::RUNTIME_PROGRAM`] in
    /// `bin_dir`; the attempt receives the rest of the container args. See the executor's
    /// `forkserver` module for the protocol.
    pub fork_server: Option<Vec<String>>,
    /// Program and arguments of a reusable worker, e.g.
    /// `["/path/python", "-m", "flyte._runtime._worker"]`: tasks with a `reuse_policy` whose
    /// program is [`crate::contract::RUNTIME_PROGRAM`] in `bin_dir` run on pools of these (see
    /// the executor's `pool` and `worker` modules). None: they run one process per attempt.
    pub worker: Option<Vec<String>>,
    /// Serve TLS (gRPC over HTTP/2) with this certificate chain and private key, both PEM.
    /// Tasks then reach the backend over TLS too, so the certificate must be one they trust
    /// (the system's roots, or `SSL_CERT_FILE` in the backend's environment, which they inherit).
    pub tls: Option<TlsFiles>,
    /// Append every RPC request this backend receives to this file, one JSON object per line
    /// (`{"method": "/pkg.Service/Method", "message": "<base64 protobuf>"}`): what a client
    /// really sent, e.g. to check it against the API's validation rules.
    pub request_log: Option<PathBuf>,
    /// Require every caller to authenticate with an access token from this OAuth2
    /// authorization server (see [`crate::auth`]); off when None.
    pub auth: Option<crate::auth::AuthSettings>,
    /// Start every task process in namespaces of its own in which the data dir shows only
    /// what the attempt may reach (see the `sandbox` module); on by default. Off, tasks see
    /// the whole data dir, the database and the keys included.
    pub sandbox: bool,
}

/// A configured program and its arguments: named, and carrying no NUL byte.
fn check_command(what: &str, command: &[String]) -> Result<(), BackendError> {
    match command.first() {
        None => {
            return Err(BackendError::InvalidConfig(format!(
                "{what} is empty: leave it unset, or name its program"
            )))
        }
        Some(program) if program.is_empty() => {
            return Err(BackendError::InvalidConfig(format!(
                "{what} starts with an empty program name"
            )))
        }
        Some(_) => {}
    }
    if command.iter().any(|arg| arg.contains('\0')) {
        return Err(BackendError::InvalidConfig(format!(
            "{what} has an argument with a NUL byte"
        )));
    }
    Ok(())
}

/// PEM files of a TLS server identity.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl BackendConfig {
    pub const DEFAULT_MAX_PARALLEL: usize = 8;
    pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 1024;
    /// Several times what one client needs for the fastest fan-out measured (~2,000 calls a
    /// second, benchmarks/backend).
    pub const DEFAULT_MAX_REQUESTS_PER_SECOND: u32 = 10_000;
    /// With `policy::system_retry_delay` between them, ten relaunches span about two and
    /// a half minutes: a crash loop still ends, a passing condition (a full disk) is outlasted.
    pub const DEFAULT_SYSTEM_RETRIES: u32 = 10;

    pub fn new(data_dir: PathBuf, bin_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bin_dir,
            images: Vec::new(),
            max_parallel: Self::DEFAULT_MAX_PARALLEL,
            max_streams_per_connection: Self::DEFAULT_MAX_STREAMS_PER_CONNECTION,
            max_requests_per_second: Self::DEFAULT_MAX_REQUESTS_PER_SECOND,
            max_message_bytes: crate::protocol::MAX_MESSAGE_BYTES,
            system_retries: Self::DEFAULT_SYSTEM_RETRIES,
            extra_env: Vec::new(),
            fork_server: None,
            worker: None,
            tls: None,
            request_log: None,
            auth: None,
            sandbox: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BackendError> {
        if self.bin_dir.as_os_str().is_empty() {
            return Err(BackendError::InvalidConfig(
                "bin_dir is empty: it must name the directory of the default environment's programs"
                    .into(),
            ));
        }
        for (image, dir) in &self.images {
            if image.is_empty() {
                return Err(BackendError::InvalidConfig(
                    "an image mapping has an empty image name".into(),
                ));
            }
            if !dir.is_dir() {
                return Err(BackendError::InvalidConfig(format!(
                    "image {image} is mapped to {}, which is not a directory",
                    dir.display()
                )));
            }
        }
        for (what, command) in [("fork_server", &self.fork_server), ("worker", &self.worker)] {
            if let Some(command) = command {
                check_command(what, command)?;
            }
        }
        if self.max_parallel == 0 {
            return Err(BackendError::InvalidConfig(
                "max_parallel must be at least 1".into(),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(BackendError::InvalidConfig("data_dir is empty".into()));
        }
        for (key, _) in &self.extra_env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(BackendError::InvalidConfig(format!(
                    "extra_env has an invalid variable name {key:?}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let config = BackendConfig::new("/tmp/x".into(), "/usr/bin".into());
        assert_eq!(config.max_parallel, 8);
        assert_eq!(config.system_retries, 10);
        assert!(config.validate().is_ok());

        let empty = BackendConfig::new("/tmp/x".into(), "".into());
        assert!(matches!(
            empty.validate(),
            Err(BackendError::InvalidConfig(_))
        ));

        let mut unmapped = BackendConfig::new("/tmp/x".into(), "/usr/bin".into());
        unmapped
            .images
            .push(("ghcr.io/x".into(), "/no/such/dir".into()));
        assert!(unmapped.validate().is_err());
        unmapped.images = vec![(String::new(), "/usr".into())];
        assert!(unmapped.validate().is_err());
        unmapped.images = vec![("ghcr.io/x".into(), "/usr".into())];
        assert!(unmapped.validate().is_ok());

        let mut zero = BackendConfig::new("/tmp/x".into(), "/usr/bin".into());
        zero.max_parallel = 0;
        assert!(zero.validate().is_err());

        let mut bad_env = BackendConfig::new("/tmp/x".into(), "/usr/bin".into());
        bad_env.extra_env.push(("A=B".into(), "c".into()));
        assert!(bad_env.validate().is_err());

        let mut forked = BackendConfig::new("/tmp/x".into(), "/usr/bin".into());
        assert_eq!(forked.fork_server, None);
        forked.fork_server = Some(vec!["python3".into(), "-m".into(), "server".into()]);
        assert!(forked.validate().is_ok());
        forked.fork_server = Some(vec![]);
        assert!(forked.validate().is_err());
        forked.fork_server = Some(vec![String::new()]);
        assert!(forked.validate().is_err());
    }
}

impl BackendConfig {
    /// The bin directory standing in for `image`: the longest mapped prefix, else `bin_dir`.
    pub fn bin_dir_for(&self, image: &str) -> &std::path::Path {
        self.images
            .iter()
            .filter(|(prefix, _)| image.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.bin_dir.as_path(), |(_, dir)| dir.as_path())
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn longest_image_prefix_wins() {
        let mut config = BackendConfig::new("/tmp/x".into(), "/default/bin".into());
        config.images = vec![
            ("ghcr.io/flyteorg/flyte".into(), "/ref/bin".into()),
            ("ghcr.io/flyteorg/flyte:py3.11".into(), "/ref311/bin".into()),
        ];
        assert_eq!(
            config.bin_dir_for("ghcr.io/flyteorg/flyte:py3.11-v2.12.1"),
            std::path::Path::new("/ref311/bin")
        );
        assert_eq!(
            config.bin_dir_for("ghcr.io/flyteorg/flyte:py3.12-v2.12.1"),
            std::path::Path::new("/ref/bin")
        );
        assert_eq!(
            config.bin_dir_for("docker.io/other"),
            std::path::Path::new("/default/bin")
        );
    }
}
