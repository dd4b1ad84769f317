//! TLS on the one port, for every protocol on it: ALPN offers `h2` (gRPC) and `http/1.1`
//! (Connect, gRPC-Web, signed-URL uploads), as a cluster's ingress does.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::peer::{PeerPolicy, PeerStream};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::TlsFiles;
use crate::error::BackendError;

/// A client that connects but never finishes its handshake is dropped after this long.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

fn invalid(message: String) -> BackendError {
    BackendError::InvalidConfig(message)
}

/// The acceptor for a certificate chain and key (PEM files), checked now so that a bad file
/// stops the start rather than every connection.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, BackendError> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            invalid(format!(
                "cannot read the TLS {what} {}: {e}",
                path.display()
            ))
        })
    };
    let cert_pem = read(&files.cert, "certificate")?;
    let key_pem = read(&files.key, "private key")?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the TLS certificate {}: {e}", files.cert.display())))?;
    if chain.is_empty() {
        return Err(invalid(format!(
            "the TLS certificate {} is not PEM: it holds no '-----BEGIN CERTIFICATE-----' block",
            files.cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| invalid(format!("the TLS private key {}: {e}", files.key.display())))?
        .ok_or_else(|| {
            invalid(format!(
                "the TLS private key {} is not PEM: it holds no private key block",
                files.key.display()
            ))
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            invalid(format!(
                "the TLS certificate and key do not go together: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepted connections after their handshakes. Handshakes run concurrently, so one slow
/// client does not hold up the others; accepting stops when the server drops the stream.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    peers: PeerPolicy,
    rate: u32,
) -> ReceiverStream<std::io::Result<PeerStream<TlsStream<TcpStream>>>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%err, "could not disable Nagle's algorithm");
            }
            let info = peers
                .judge(stream.local_addr().ok(), stream.peer_addr().ok())
                .limited(rate);
            if let Some(reason) = &info.refused {
                tracing::warn!(%reason, "refusing a connection");
            }
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(PeerStream::new(tls, info))).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%err, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
