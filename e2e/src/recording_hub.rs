//! A recording hub: a real gRPC server of the agent protocol (`fleetgate.spoke.v1`, mTLS with a
//! CA of its own) that acknowledges every Update, keeps the intent an agent has sent (full state
//! replaced, upserts and deletes applied) for a test to read, and pushes the Status a test gives
//! it, as the hub does.
//!
//! Where it sits: the other end of the wire for tests of the agent alone, when what matters is
//! exactly what the agent sends (resolved endpoints, keys read from Secrets) and that the status
//! it is given lands on the tenant's objects. The product hub keeps what it received to itself
//! (encrypted in its store), so tests of the whole path use it instead ([`crate::Fleet`]). Only
//! `fleetgate-proto` is used, never hub internals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use fleetgate_proto::spoke::v1::spoke_service_server::{SpokeService, SpokeServiceServer};
use fleetgate_proto::spoke::v1::{
    Ack, AgentMessage, HubMessage, Object, Status, agent_message, hub_message,
};
use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::hub::HUB_SERVER_NAME;
use crate::pki::{Ca, Leaf};
use crate::process::TestDir;

/// (kind, namespace, name) of an object.
pub type ObjectKey = (i32, String, String);

/// The intent an agent has sent, by object.
pub type Intent = BTreeMap<ObjectKey, Object>;

/// A running recording hub; stops when dropped.
pub struct RecordingHub {
    addr: SocketAddr,
    ca: Ca,
    intent: watch::Receiver<Intent>,
    status: watch::Sender<Option<Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RecordingHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingHub")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for RecordingHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Service {
    intent: watch::Sender<Intent>,
    status: watch::Receiver<Option<Status>>,
}

fn key(o: &Object) -> Option<ObjectKey> {
    o.r#ref
        .as_ref()
        .map(|r| (r.kind, r.namespace.clone(), r.name.clone()))
}

#[tonic::async_trait]
impl SpokeService for Service {
    type SyncStream = Pin<Box<dyn Stream<Item = Result<HubMessage, tonic::Status>> + Send>>;

    async fn sync(
        &self,
        req: tonic::Request<tonic::Streaming<AgentMessage>>,
    ) -> Result<tonic::Response<Self::SyncStream>, tonic::Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let intent = self.intent.clone();
        let mut status = self.status.clone();
        tokio::spawn(async move {
            let send_status = |s: Option<Status>| HubMessage {
                kind: s.map(hub_message::Kind::Status),
            };
            loop {
                tokio::select! {
                    m = inbound.next() => {
                        let Some(Ok(m)) = m else { return };
                        let Some(agent_message::Kind::Update(u)) = m.kind else { continue };
                        intent.send_modify(|cur| {
                            if u.full_state {
                                cur.clear();
                            }
                            for d in &u.deletes {
                                cur.remove(&(d.kind, d.namespace.clone(), d.name.clone()));
                            }
                            for o in u.upserts {
                                if let Some(k) = key(&o) {
                                    cur.insert(k, o);
                                }
                            }
                        });
                        let ack = HubMessage {
                            kind: Some(hub_message::Kind::Ack(Ack { revision: u.revision, ..Default::default() })),
                        };
                        if tx.send(Ok(ack)).await.is_err() {
                            return;
                        }
                        let latest = status.borrow_and_update().clone();
                        if latest.is_some() && tx.send(Ok(send_status(latest))).await.is_err() {
                            return;
                        }
                    }
                    r = status.changed() => {
                        if r.is_err() {
                            return;
                        }
                        let latest = status.borrow_and_update().clone();
                        if latest.is_some() && tx.send(Ok(send_status(latest))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl RecordingHub {
    /// Starts the server on a free loopback port, with a fresh CA and a serving certificate for
    /// [`HUB_SERVER_NAME`]; client certificates must come from that CA
    /// ([`RecordingHub::issue_agent_identity`]).
    pub async fn start() -> anyhow::Result<Self> {
        let ca = Ca::new("recording-hub-ca")?;
        let serving = ca.issue(&Leaf::server(HUB_SERVER_NAME, &[HUB_SERVER_NAME]))?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the recording hub")?;
        let addr = listener.local_addr()?;
        let (intent_tx, intent) = watch::channel(Intent::new());
        let (status, status_rx) = watch::channel(None);
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&serving.cert_pem, &serving.key_pem))
            .client_ca_root(Certificate::from_pem(ca.cert_pem()));
        let server = Server::builder()
            .tls_config(tls)
            .context("the recording hub's TLS")?
            .add_service(SpokeServiceServer::new(Service {
                intent: intent_tx,
                status: status_rx,
            }));
        let task = tokio::spawn(async move {
            if let Err(e) = server
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
            {
                tracing::warn!("the recording hub stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            ca,
            intent,
            status,
            task,
        })
    }

    /// `https://127.0.0.1:<port>`, for `fleetgate-agent --hub`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Writes an agent identity folder for (tenant, cluster) into `dir` (ca.crt, tls.crt with
    /// the SPIFFE ID, tls.key), as `fleetgate-hub ca issue` does for the product hub.
    pub fn issue_agent_identity(
        &self,
        dir: &TestDir,
        tenant: &str,
        cluster: &str,
    ) -> anyhow::Result<PathBuf> {
        let out = dir.subdir(&format!("recording-hub-identity-{tenant}-{cluster}"))?;
        let mut leaf = Leaf::client(&format!("{tenant}/{cluster}"), &[]);
        leaf.uri_sans = vec![format!(
            "spiffe://fleetgate/tenant/{tenant}/cluster/{cluster}"
        )];
        let issued = self.ca.issue(&leaf)?;
        self.ca.write_cert(&out.join("ca.crt"))?;
        issued.write(&out, "tls")?;
        Ok(out)
    }

    /// The intent received so far.
    pub fn intent(&self) -> Intent {
        self.intent.borrow().clone()
    }

    /// Waits until the received intent satisfies `check` (which says what is missing when it
    /// does not); the last complaint on timeout.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Intent) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        let mut rx = self.intent.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let why = match check(&rx.borrow_and_update()) {
                Ok(t) => return Ok(t),
                Err(why) => why,
            };
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => anyhow::bail!("the recording hub stopped; last: {why}"),
                Err(_) => anyhow::bail!("not within {timeout:?}: {why}"),
            }
        }
    }

    /// Pushes `status` to the connected agent (and to every agent that connects later).
    pub fn push_status(&self, status: Status) {
        self.status.send_replace(Some(status));
    }
}
