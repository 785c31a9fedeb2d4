//! A raw Sync client: speaks the agent's wire protocol directly, to send the hub what a real
//! agent never would (foreign certificates, oversized updates, garbage), and to watch how it
//! refuses. Only `fleetgate-proto` is used, never hub internals.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use fleetgate_proto::spoke::v1::spoke_service_client::SpokeServiceClient;
use fleetgate_proto::spoke::v1::{AgentMessage, Hello, HubMessage, agent_message, hub_message};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::hub::HUB_SERVER_NAME;

/// The TLS material a raw client presents.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The CA the client trusts for the hub's serving certificate.
    pub ca_pem: String,
    /// The client certificate and key, if any.
    pub identity: Option<(String, String)>,
}

impl ClientTls {
    /// From an identity folder as `fleetgate-hub ca issue` writes it (ca.crt, tls.crt, tls.key).
    pub fn from_identity_dir(dir: &std::path::Path) -> anyhow::Result<Self> {
        let read = |f: &str| crate::components::read(&dir.join(f));
        Ok(Self {
            ca_pem: read("ca.crt")?,
            identity: Some((read("tls.crt")?, read("tls.key")?)),
        })
    }
}

/// Connects to the hub's agent port over mTLS. A handshake the hub refuses may surface here or
/// only on the first RPC (TLS 1.3 client auth is checked after the client's first flight).
pub async fn connect(
    hub: SocketAddr,
    tls: &ClientTls,
) -> anyhow::Result<SpokeServiceClient<Channel>> {
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&tls.ca_pem))
        .domain_name(HUB_SERVER_NAME);
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://{hub}"))?
        .tls_config(config)?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .with_context(|| format!("connecting to the hub at {hub}"))?;
    Ok(SpokeServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(usize::MAX))
}

/// An open Sync stream: send agent messages, receive hub messages.
pub struct SyncSession {
    tx: mpsc::Sender<AgentMessage>,
    responses: tonic::Streaming<HubMessage>,
}

impl std::fmt::Debug for SyncSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncSession").finish_non_exhaustive()
    }
}

impl SyncSession {
    /// Opens the stream and sends `Hello { cluster }` as its first message.
    pub async fn open(
        client: &mut SpokeServiceClient<Channel>,
        cluster: &str,
    ) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(hello(cluster))
            .await
            .expect("the receiver is alive until the request stream ends");
        let responses = client.sync(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self { tx, responses })
    }

    /// A handle that queues messages on the stream, for a task that sends while another reads
    /// the hub's answers with [`SyncSession::next`].
    pub fn sender(&self) -> mpsc::Sender<AgentMessage> {
        self.tx.clone()
    }

    /// Queues a message on the stream; `false` if the stream is already closed.
    pub async fn send(&self, msg: AgentMessage) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    /// The next hub message: `Ok(Some)`, `Ok(None)` when the hub ended the stream cleanly, `Err`
    /// with the hub's (or transport's) status when it ended it with an error, or a timeout error
    /// when nothing came within `timeout`.
    pub async fn next(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<Result<Option<HubMessage>, tonic::Status>> {
        tokio::time::timeout(timeout, self.responses.message())
            .await
            .context("no message from the hub in time")
    }
}

impl SyncSession {
    /// The next Ack or Nack (skipping Status pushes, which the hub may send at any time), with
    /// the same outcomes as [`SyncSession::next`]; `timeout` bounds the whole wait.
    pub async fn next_verdict(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<Result<Option<HubMessage>, tonic::Status>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Ok(Some(HubMessage {
                    kind: Some(hub_message::Kind::Status(_)),
                })) => continue,
                other => return Ok(other),
            }
        }
    }
}

/// `AgentMessage::Hello` for `cluster`.
pub fn hello(cluster: &str) -> AgentMessage {
    AgentMessage {
        kind: Some(agent_message::Kind::Hello(Hello {
            cluster: cluster.to_string(),
            agent_version: "e2e-raw-client".to_string(),
        })),
    }
}
