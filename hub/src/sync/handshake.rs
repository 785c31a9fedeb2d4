//! The TLS handshake of the agent-facing server (Sync, Enroll, Renew), done by the hub itself so
//! that every refused handshake is logged with its reason: an expired client certificate, one
//! from another CA, a client that speaks no TLS. (tonic's own acceptor drops these at debug
//! level, so an operator would not see them.)
//!
//! Where it sits: in front of `sync`. The client certificate is asked for but optional (an agent
//! without one calls `EnrollService/Enroll`); one that is presented must chain to the hub's CA
//! and be valid now, or the handshake fails here. Sync and Renew refuse calls without a verified
//! certificate (`super::identify`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// How long a client may take to finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The log message of a refused handshake; the `reason` field says why.
pub const REFUSED: &str = "refused a TLS handshake on the agent port";

/// The server side of the agent port's TLS: the hub's certificate and key, client certificates
/// verified against `client_ca` (optional), HTTP/2 by ALPN.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(client_ca_pem) {
        let c = c.map_err(|e| format!("the CA certificate is not valid PEM: {e}"))?;
        roots
            .add(c)
            .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client certificate verifier: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the hub certificate is not valid PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| "the hub key holds no valid PEM private key".to_string())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("the hub certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The connections of `listener` that completed the handshake, for
/// `tonic::transport::Server::serve_with_incoming_shutdown` (their client certificates reach
/// `Request::peer_certs`). A refused handshake is logged at warn with the peer and the reason
/// and the connection is closed. The accept loop ends when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection on the agent port failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Some(tls) = handshake(&acceptor, tcp, peer).await {
                    let _ = tx.send(Ok(tls)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        // A connection closed before the handshake (a port probe, a health check): not a refusal.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, "a connection to the agent port closed before the TLS handshake");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, reason = %e, "{REFUSED}");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, reason = %format!("no handshake within {}s", HANDSHAKE_TIMEOUT.as_secs()), "{REFUSED}");
            None
        }
    }
}
