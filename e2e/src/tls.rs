//! TLS for end-to-end tests: an HTTPS client that trusts only a test CA, verifies the served
//! certificate against the SNI hostname and reports the certificate's serial (so a test can tell
//! which certificate the data plane served), and a tiny TLS echo backend for passthrough.
//!
//! Where it sits: outside the data path, at both of its ends: the client plays a tenant's user
//! connecting to the shared data plane, [`TlsEcho`] a tenant backend that terminates TLS itself.
//! Certificates come from [`crate::pki::Ca`] (rcgen).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::pki::CertAndKey;

/// How long a connect + handshake or one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The hex serial of the first certificate of a PEM chain.
pub fn serial_of_pem(pem: &str) -> anyhow::Result<String> {
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .context("no certificate in PEM")??;
    serial_of_der(&der)
}

fn serial_of_der(der: &[u8]) -> anyhow::Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).context("parsing certificate")?;
    Ok(cert.raw_serial_as_string().replace(':', ""))
}

/// One HTTPS connection to the data plane, kept open for several requests.
pub struct HttpsConnection {
    sender: SendRequest<Empty<Bytes>>,
    /// Serial (hex) of the certificate the server presented in the handshake.
    pub serial: String,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for HttpsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsConnection")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl Drop for HttpsConnection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a TLS connection to `addr` with SNI `sni`, trusting only `ca_pem`; the handshake fails
/// unless the served certificate chains to that CA and names `sni`.
pub async fn connect_tls(
    addr: SocketAddr,
    sni: &str,
    ca_pem: &str,
    alpn: &[&str],
) -> anyhow::Result<(tokio_rustls::client::TlsStream<TcpStream>, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(sni.to_string()).context("SNI is not a DNS name")?;
    let fut = async {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr} for {sni}"))?;
        let serial = match tls.get_ref().1.peer_certificates() {
            Some([leaf, ..]) => serial_of_der(leaf)?,
            _ => bail!("{addr} presented no certificate"),
        };
        anyhow::Ok((tls, serial))
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .with_context(|| format!("TLS connect to {addr} for {sni} timed out"))?
}

impl HttpsConnection {
    /// Connects (HTTP/1.1 over TLS) to `addr` with SNI `sni`, trusting only `ca_pem`.
    pub async fn open(addr: SocketAddr, sni: &str, ca_pem: &str) -> anyhow::Result<Self> {
        let (tls, serial) = connect_tls(addr, sni, ca_pem, &["http/1.1"]).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .context("HTTP/1.1 handshake")?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            serial,
            task,
        })
    }

    /// `GET <path>` with `Host: host` on this connection; (status, body).
    pub async fn get(&mut self, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, host)
            .body(Empty::<Bytes>::new())?;
        let fut = async {
            self.sender
                .ready()
                .await
                .context("the connection is closed")?;
            let resp = self.sender.send_request(req).await.context("request")?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(TIMEOUT, fut)
            .await
            .context("request timed out")?
    }
}

/// One HTTPS `GET https://<sni><path>` on a fresh connection; (status, body, served serial).
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    ca_pem: &str,
    path: &str,
) -> anyhow::Result<(u16, String, String)> {
    let mut c = HttpsConnection::open(addr, sni, ca_pem).await?;
    let (status, body) = c.get(sni, path).await?;
    Ok((status, body, c.serial.clone()))
}

/// A backend that terminates TLS itself (with `cert`) and answers every HTTP/1.1 request with
/// 200 and its name: what a TLS passthrough route reaches.
#[derive(Debug)]
pub struct TlsEcho {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsEcho {
    pub async fn start_at(name: &str, addr: SocketAddr, cert: &CertAndKey) -> anyhow::Result<Self> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("TLS echo {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let name = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, name) = (acceptor.clone(), name.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |_req| {
                        let body = name.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
