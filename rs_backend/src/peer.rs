//! Who is on the other end of a loopback connection. Without an authorization server the
//! backend serves only the user who started it (and root): any local user can reach a loopback
//! port, and whoever can submit a run runs code as the backend's user. The kernel records the
//! owner of every socket; the client's end of an accepted connection is looked up in
//! `/proc/net/tcp` (or `tcp6`), so clients need no credentials at all — our CLI, the
//! reference SDK and a browser get in the same way, as long as they run as that user.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// What the backend decided about a connection when it was accepted; every request on it
/// carries this (a request extension).
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    /// Why this connection may not use the backend, if it may not.
    pub refused: Option<Arc<str>>,
    /// The requests this connection may still make (none: no limit).
    pub budget: Option<Arc<RequestBudget>>,
}

impl PeerInfo {
    /// The same decision, with the connection's requests limited to `per_second`.
    pub fn limited(mut self, per_second: u32) -> Self {
        self.budget = Some(Arc::new(RequestBudget::new(per_second)));
        self
    }
}

/// A token bucket: a connection may make `per_second` requests a second, and as many at once
/// after a quiet second. One runaway client loop then cannot keep the backend from everyone
/// else; our own client backs off and repeats a request refused this way.
#[derive(Debug)]
pub struct RequestBudget {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RequestBudget {
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            state: Mutex::new((per_second, Instant::now())),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one request from the budget; false when it is spent.
    pub fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second)
            .min(self.per_second);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The backend's rule for local connections.
#[derive(Clone, Copy, Debug)]
pub enum PeerPolicy {
    /// Tokens decide (an authorization server is configured): any peer may connect.
    Anyone,
    /// Only sockets owned by this uid (or root) may use the backend.
    OwnerOnly { uid: u32 },
}

impl PeerPolicy {
    /// The policy of a backend without an authorization server, run by the current user.
    pub fn owner_only() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        PeerPolicy::OwnerOnly { uid }
    }

    /// Decides about the connection from `remote` to our `local` address.
    pub fn judge(&self, local: Option<SocketAddr>, remote: Option<SocketAddr>) -> PeerInfo {
        let PeerPolicy::OwnerOnly { uid } = *self else {
            return PeerInfo::default();
        };
        let (Some(local), Some(remote)) = (local, remote) else {
            return refused("the connection's addresses are unknown".into());
        };
        match socket_owner(local, remote) {
            Some(owner) if owner == uid || owner == 0 => PeerInfo::default(),
            Some(owner) => refused(format!(
                "this backend serves only the user who started it (uid {uid}); this connection \
                 comes from uid {owner}. Start your own backend (flyte start local), or configure \
                 an authorization server to share one"
            )),
            None => refused(format!(
                "cannot tell which user opened this connection (from {remote}); this backend \
                 serves only uid {uid}"
            )),
        }
    }
}

fn refused(message: String) -> PeerInfo {
    PeerInfo {
        refused: Some(message.into()),
        budget: None,
    }
}

/// The uid owning the client's end (`remote`) of a connection to our `local` address.
#[cfg(target_os = "linux")]
pub fn socket_owner(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let table = match remote.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    owner_in_table(&text, &proc_address(remote), &proc_address(local))
}

/// Other systems have no socket table to read; there the backend says so when it starts.
#[cfg(not(target_os = "linux"))]
pub fn socket_owner(_local: SocketAddr, _remote: SocketAddr) -> Option<u32> {
    None
}

/// Whether this system lets the backend tell local users apart.
pub fn owners_known() -> bool {
    cfg!(target_os = "linux")
}

/// An address as proc(5) prints it: the address's bytes read as native-endian 32-bit words,
/// each in hex, then the port in hex.
fn proc_address(addr: SocketAddr) -> String {
    let words: Vec<String> = match addr.ip() {
        IpAddr::V4(ip) => vec![format!("{:08X}", u32::from_ne_bytes(ip.octets()))],
        IpAddr::V6(ip) => ip
            .octets()
            .chunks_exact(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    };
    format!("{}:{:04X}", words.concat(), addr.port())
}

/// The uid column of the table's row whose local address is `ours` and remote `theirs`.
fn owner_in_table(table: &str, local: &str, remote: &str) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 7 && fields[1] == local && fields[2] == remote {
            fields[7].parse().ok()
        } else {
            None
        }
    })
}

/// An accepted connection with the decision about its peer.
pub struct PeerStream<S> {
    inner: S,
    info: PeerInfo,
}

impl<S> PeerStream<S> {
    pub fn new(inner: S, info: PeerInfo) -> Self {
        Self { inner, info }
    }
}

impl<S> Connected for PeerStream<S> {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PeerStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PeerStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_the_kernel_prints_them() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(proc_address(v4), "0100007F:1F90");
            let v6: SocketAddr = "[::1]:80".parse().unwrap();
            assert_eq!(proc_address(v6), "00000000000000000000000001000000:0050");
        }
    }

    #[test]
    fn the_owner_is_read_from_the_matching_row() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534        0 2 1 0 20 4 30 10 -1\n";
        assert_eq!(
            owner_in_table(table, "0100007F:C350", "0100007F:1F90"),
            Some(65534)
        );
        assert_eq!(
            owner_in_table(table, "0100007F:C351", "0100007F:1F90"),
            None
        );
    }

    #[test]
    fn a_budget_allows_a_second_of_requests_at_once_then_refuses() {
        let budget = RequestBudget::new(5);
        assert!((0..5).all(|_| budget.take()));
        assert!(!budget.take());
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert!(budget.take());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_of_our_own_is_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, remote) = listener.accept().unwrap();
        let policy = PeerPolicy::owner_only();
        let info = policy.judge(server.local_addr().ok(), Some(remote));
        assert!(info.refused.is_none(), "{:?}", info.refused);
        drop(client);
    }
}
