//! Starting, serving and stopping an embedded backend.

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;

use crate::attempt_token::AttemptKeys;
use crate::config::BackendConfig;
use crate::engine::Engine;
use crate::error::BackendError;
use crate::executor::{run_dispatcher, Control};
use crate::layout::Layout;
use crate::peer::{PeerPolicy, PeerStream};
use crate::protocol::{ProtocolLayer, RequestLog};
use crate::recovery::recover;
use crate::secrets::SecretBox;
use crate::services::http::{self, Files};
use crate::services::{self, projects};
use crate::signing::UrlSigner;
use crate::store::Store;
use crate::{firing, tls};

/// How long a graceful stop waits for clients to let go before connections are dropped.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// An exclusive lock on the data dir: two backends sharing state would corrupt each other's
/// view of which processes they own. Released when dropped (the lock dies with the file).
struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// How long a held lock is retried. A process forked by this one (to exec an action)
    /// briefly shares the lock's file until its exec closes it; that must not read as
    /// "another backend".
    const PATIENCE: Duration = Duration::from_secs(2);

    async fn acquire(path: &Path, data_dir: &Path) -> Result<Self, BackendError> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| BackendError::io(format!("open lock file {}", path.display()), e))?;
        let deadline = tokio::time::Instant::now() + Self::PATIENCE;
        loop {
            // SAFETY: flock on a valid, owned descriptor has no memory-safety preconditions.
            let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if locked == 0 {
                return Ok(Self { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock {
                return Err(BackendError::io(format!("lock {}", path.display()), err));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::DataDirInUse(data_dir.to_path_buf()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A backend that is serving. Stop it with [`RunningBackend::shutdown`], or run it until
/// [`ShutdownHandle::shutdown`] is called with [`RunningBackend::wait`].
pub struct RunningBackend {
    addr: SocketAddr,
    endpoint: String,
    engine: Arc<Engine>,
    /// Taken when stopping; None afterwards.
    server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    dispatcher: Option<JoinHandle<()>>,
    _lock: DataDirLock,
}

/// Asks a running backend to stop from anywhere (e.g. a Ctrl-C handler).
#[derive(Clone)]
pub struct ShutdownHandle {
    engine: Arc<Engine>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.engine.begin_stop();
    }
}

fn endpoint_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port()).to_string()
}

/// Keeps the data dir to the backend's user: the directory itself is 0700 (nothing under it
/// can be reached by another user, whatever its own mode), and everything the backend and its
/// tasks create from now on is 0600/0700 (the process's umask, which task processes inherit).
pub(crate) fn make_private(root: &std::path::Path) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o700))
        .map_err(|e| BackendError::io(format!("make data dir {} private", root.display()), e))
}

/// A database made by an earlier version (0644) becomes 0600, with its journal files.
fn make_database_private(db: &std::path::Path) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BackendError::io(
                    format!("make {} private", path.display()),
                    e,
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Who may use a backend with this configuration (see [`crate::peer`]).
fn peer_policy(config: &BackendConfig) -> PeerPolicy {
    if config.auth.is_some() {
        PeerPolicy::Anyone
    } else if !crate::peer::owners_known() {
        tracing::warn!(
            "this system does not tell which user opened a local connection: any local user \
             can use this backend"
        );
        PeerPolicy::Anyone
    } else {
        PeerPolicy::owner_only()
    }
}

/// Opens (or creates) the state in `config.data_dir`, recovers unfinished work, and serves
/// ActionsService, RunService and RunLogsService on `addr` (port 0 picks a free port).
pub async fn start(
    config: BackendConfig,
    addr: SocketAddr,
) -> Result<RunningBackend, BackendError> {
    config.validate()?;
    if config.auth.is_none() && !addr.ip().is_loopback() {
        return Err(BackendError::InvalidConfig(format!(
            "refusing to serve on {addr} without authentication: anyone who reaches it could run \
             code as you. Configure an authorization server (flyte start local --auth-issuer URL \
             --auth-audience AUDIENCE), or listen on 127.0.0.1"
        )));
    }
    fs::create_dir_all(&config.data_dir).map_err(|e| {
        BackendError::io(format!("create data dir {}", config.data_dir.display()), e)
    })?;
    let root = fs::canonicalize(&config.data_dir).map_err(|e| {
        BackendError::io(format!("resolve data dir {}", config.data_dir.display()), e)
    })?;
    make_private(&root)?;
    let layout = Layout::new(root.clone());
    make_database_private(&layout.db_path())?;
    let lock = DataDirLock::acquire(&layout.lock_path(), &root).await?;
    let store = Store::open(&layout.db_path())?;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BackendError::io(format!("listen on {addr}"), e))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| BackendError::io("read the listening address", e))?;
    let endpoint = endpoint_of(local_addr);

    let sealer = SecretBox::load_or_create(&layout.secrets_key_path())?;
    let attempt_keys = AttemptKeys::load_or_create(&layout.attempt_key_path())?;
    let auth = match &config.auth {
        Some(settings) => Some(
            crate::auth::Authenticator::discover(settings.clone(), attempt_keys.clone())
                .await
                .map_err(BackendError::InvalidConfig)?,
        ),
        None => None,
    };
    let engine = Arc::new(
        Engine::new(
            config,
            layout,
            store,
            endpoint.clone(),
            sealer,
            attempt_keys,
        )
        .with_auth(auth),
    );
    let recovered = recover(&engine).await?;
    tracing::info!(?recovered, %endpoint, "embedded backend starting");

    let dispatcher = tokio::spawn(run_dispatcher(engine.clone()));
    tokio::spawn(firing::run(engine.clone()));
    {
        let engine = engine.clone();
        tokio::spawn(async move {
            let stop = engine.stop_signal();
            let waits_for_children = |run: &crate::names::RunKey, name: &str| {
                engine.scheduler.waits_for_children(run, name)
            };
            engine
                .pools
                .keep(
                    |seq| engine.scheduler.enqueue(seq),
                    waits_for_children,
                    stop,
                )
                .await;
        });
    }
    let mut stop = engine.stop_signal();
    let shutdown = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    projects::seed(&engine)?;
    let files = Arc::new(Files {
        root: engine.layout.storage_root(),
        signer: UrlSigner::load_or_create(&engine.layout.signing_key_path())?,
    });
    let request_log = match &engine.config.request_log {
        Some(path) => Some(Arc::new(RequestLog::open(
            path,
            engine.config.max_message_bytes,
        )?)),
        None => None,
    };
    let acceptor = match &engine.config.tls {
        Some(files) => Some(tls::acceptor(files)?),
        None => None,
    };
    let mut builder = tonic::transport::Server::builder()
        // Connect and gRPC-Web clients speak HTTP/1.1; gRPC clients HTTP/2. One port for all.
        .accept_http1(true)
        .max_concurrent_streams(engine.config.max_streams_per_connection)
        .layer(
            tower::ServiceBuilder::new()
                .layer(ProtocolLayer::new(
                    http::routes(files.clone())
                        .merge(services::callbacks::routes(engine.clone(), files.clone()))
                        .merge(services::ui::routes(engine.clone(), files.clone())),
                    request_log,
                    engine.auth.clone(),
                    engine.config.max_message_bytes,
                ))
                .layer(tonic_web::GrpcWebLayer::new()),
        );
    let router = services::add_all(&mut builder, &engine, &files, acceptor.is_some());
    let peers = peer_policy(&engine.config);
    let rate = engine.config.max_requests_per_second;
    let server = match acceptor {
        Some(acceptor) => tokio::spawn(router.serve_with_incoming_shutdown(
            tls::incoming(listener, acceptor, peers, rate),
            shutdown,
        )),
        None => tokio::spawn(router.serve_with_incoming_shutdown(
            // Without TCP_NODELAY a unary reply written in several pieces waits for the
            // client's delayed ACK: ~40 ms per RPC instead of well under 1 ms.
            TcpListenerStream::new(listener).map(move |accepted| {
                accepted.map(|stream| {
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(%err, "could not disable Nagle's algorithm");
                    }
                    let info = peers
                        .judge(stream.local_addr().ok(), stream.peer_addr().ok())
                        .limited(rate);
                    if let Some(reason) = &info.refused {
                        tracing::warn!(%reason, "refusing a connection");
                    }
                    PeerStream::new(stream, info)
                })
            }),
            shutdown,
        )),
    };
    Ok(RunningBackend {
        addr: local_addr,
        endpoint,
        engine,
        server: Some(server),
        dispatcher: Some(dispatcher),
        _lock: lock,
    })
}

impl RunningBackend {
    /// Fires the triggers due at `now_ms` (the scheduler does this every second with the
    /// wall clock); for tests that drive time themselves. Returns the runs started.
    #[doc(hidden)]
    pub async fn fire_due_triggers(&self, now_ms: i64) -> usize {
        firing::fire_due(&self.engine, now_ms).await
    }

    /// The token of the current attempt of `action` in run `run` (what its process was given);
    /// for tests that call ActionsService.Update as that process would.
    #[doc(hidden)]
    pub fn attempt_token(
        &self,
        run: &flyteidl2::flyteidl::common::RunIdentifier,
        action: &str,
    ) -> Option<String> {
        let run = crate::names::RunKey::from_proto(run, "run").ok()?;
        let record = self.engine.store.action(&run, action).ok()??;
        Some(
            self.engine
                .attempt_keys
                .issue(crate::attempt_token::AttemptClaim {
                    seq: record.seq,
                    attempt: record.attempts,
                }),
        )
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// "127.0.0.1:PORT": what clients and action processes connect to.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            engine: self.engine.clone(),
        }
    }

    /// Stops serving. Running attempts are killed and their actions queued again, without
    /// using a retry, so the next start on this data dir runs them anew.
    pub async fn shutdown(mut self) {
        self.engine.begin_stop();
        if let Err(err) = self.finish(Control::Shutdown).await {
            tracing::warn!(%err, "the embedded backend stopped with an error");
        }
    }

    /// Serves until a [`ShutdownHandle`] asks to stop (or the server fails), then stops like
    /// [`RunningBackend::shutdown`].
    pub async fn wait(mut self) -> Result<(), BackendError> {
        let served = match self.server.take() {
            Some(server) => server.await,
            None => Ok(Ok(())),
        };
        self.engine.begin_stop();
        let finished = self.finish(Control::Shutdown).await;
        match served {
            Ok(Ok(())) => finished,
            Ok(Err(err)) => Err(BackendError::Server(err)),
            Err(join) => Err(BackendError::Task(format!(
                "the gRPC server task failed: {join}"
            ))),
        }
    }

    /// Stops serving and supervising but leaves every process running and every action as it
    /// is, exactly as if the backend process had been killed. For crash-recovery tests.
    #[doc(hidden)]
    pub async fn abandon(mut self) {
        self.engine.begin_stop();
        if let Err(err) = self.finish(Control::Abandon).await {
            tracing::warn!(%err, "the embedded backend stopped with an error");
        }
    }

    async fn finish(&mut self, control: Control) -> Result<(), BackendError> {
        for monitor in self.engine.scheduler.stop(control) {
            if let Err(err) = monitor.await {
                tracing::warn!(%err, "an attempt monitor failed while stopping");
            }
        }
        if let Some(dispatcher) = self.dispatcher.take() {
            if let Err(err) = dispatcher.await {
                tracing::warn!(%err, "the dispatcher failed while stopping");
            }
        }
        // Nothing launches any more. Closing its stdin is what a dying backend would do too,
        // so attempts left running (abandon) live on as they would after a crash.
        if let Some(forks) = &self.engine.forks {
            forks.stop().await;
        }
        // Abandoned workers are left to finish what they run, as after a crash; otherwise
        // their attempts were cancelled and concluded, and the workers go.
        self.engine.pools.stop_all(control != Control::Abandon);
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        match tokio::time::timeout(DRAIN_LIMIT, &mut server).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(err))) => Err(BackendError::Server(err)),
            Ok(Err(join)) => Err(BackendError::Task(format!(
                "the gRPC server task failed: {join}"
            ))),
            Err(_) => {
                tracing::warn!("clients kept connections open; dropping them");
                server.abort();
                Ok(())
            }
        }
    }
}

impl Drop for RunningBackend {
    /// Dropped without an orderly stop: stop serving and stop the running attempts (their
    /// monitors queue them again if the runtime lives on; otherwise the next start recovers
    /// them).
    fn drop(&mut self) {
        if self.server.is_some() || self.dispatcher.is_some() {
            self.engine.begin_stop();
            self.engine.scheduler.stop(Control::Shutdown);
            // Nobody will send the workers more work or wait for their answers.
            self.engine.pools.stop_all(true);
        }
    }
}
