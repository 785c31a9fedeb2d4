//! The update rate of a cluster, through the hub's real agent-facing gRPC server over mTLS on
//! loopback: past its burst a cluster's Update is refused with a Nack saying the rate and when
//! to retry, nothing of it applied; the next Update must be the full state; other tenants are
//! not slowed down.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetgate_hub::config::RawConfig;
use fleetgate_hub::identity::{self, SpiffeId};
use fleetgate_proto::spoke::v1::{self as pb, spoke_service_client::SpokeServiceClient};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Hub {
    dir: tempfile::TempDir,
    agent_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_hub() -> Hub {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    identity::init_ca(&pki, &["127.0.0.1".into()]).unwrap();
    let agent_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        r#"
agentListen: {agent_addr}
xdsListen: 127.0.0.1:{xds}
pkiDir: {pki}
storePath: {store}
dataPlane:
  address: 127.0.0.1
  listeners: [{{port: 80, bind: "127.0.0.1:{dp}"}}]
quotas:
  tenants:
    tenant-a: {{updatesPerSecond: 2, updateBurst: 2}}
tenants:
- name: tenant-a
  hostnames: ["*.a.example"]
  clusters: [{{name: east, endpointCidrs: [10.1.0.0/16]}}]
- name: tenant-b
  hostnames: ["*.b.example"]
  clusters: [{{name: west, endpointCidrs: [10.2.0.0/16]}}]
"#,
        xds = free_port(),
        dp = free_port(),
        pki = pki.display(),
        store = dir.path().join("hub.redb").display(),
    );
    let config: RawConfig = serde_yaml::from_str(&yaml).unwrap();
    let config = config.validate().unwrap();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        fleetgate_hub::run::run(config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(agent_addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Hub {
        dir,
        agent_addr,
        stop,
        task,
    }
}

fn issue(dir: &Path, tenant: &str, cluster: &str) -> PathBuf {
    let out = dir.join(format!("{tenant}-{cluster}"));
    let id = SpiffeId::new("fleetgate", tenant, cluster).unwrap();
    identity::issue_agent(&dir.join("pki"), &id, time::Duration::hours(1), &out).unwrap();
    out
}

struct Session {
    tx: mpsc::Sender<pb::AgentMessage>,
    rx: tonic::Streaming<pb::HubMessage>,
}

async fn open(addr: SocketAddr, identity_dir: &Path, cluster: &str) -> Session {
    let read = |f: &str| std::fs::read(identity_dir.join(f)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(Identity::from_pem(read("tls.crt"), read("tls.key")))
        .domain_name(identity::HUB_SERVER_NAME);
    let ch = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(8);
    tx.send(pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Hello(pb::Hello {
            cluster: cluster.into(),
            agent_version: "test".into(),
        })),
    })
    .await
    .unwrap();
    let rx = SpokeServiceClient::new(ch)
        .sync(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    Session { tx, rx }
}

impl Session {
    /// Sends Update `revision` and returns the hub's verdict on it (statuses skipped).
    async fn update(&mut self, revision: u64, full: bool) -> pb::hub_message::Kind {
        self.tx
            .send(pb::AgentMessage {
                kind: Some(pb::agent_message::Kind::Update(pb::Update {
                    revision,
                    full_state: full,
                    upserts: vec![],
                    deletes: vec![],
                })),
            })
            .await
            .unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.rx.message())
                .await
                .expect("hub answered within 10 s")
                .unwrap()
                .expect("stream open");
            match m.kind.unwrap() {
                pb::hub_message::Kind::Status(_) => continue,
                k => return k,
            }
        }
    }
}

fn nack_message(k: pb::hub_message::Kind, revision: u64) -> String {
    match k {
        pb::hub_message::Kind::Nack(n) if n.revision == revision => n.message,
        other => panic!("revision {revision}: expected a Nack, got {other:?}"),
    }
}

fn assert_ack(k: pb::hub_message::Kind, revision: u64) {
    assert!(
        matches!(&k, pb::hub_message::Kind::Ack(a) if a.revision == revision),
        "revision {revision}: expected an Ack, got {k:?}"
    );
}

#[tokio::test]
async fn a_cluster_past_its_update_rate_gets_a_nack_and_others_do_not() {
    let hub = start_hub().await;
    let a_id = issue(hub.dir.path(), "tenant-a", "east");
    let b_id = issue(hub.dir.path(), "tenant-b", "west");
    let mut a = open(hub.agent_addr, &a_id, "east").await;

    assert_ack(a.update(1, true).await, 1);
    assert_ack(a.update(2, false).await, 2);
    let message = nack_message(a.update(3, false).await, 3);
    assert!(
        message.starts_with("rate limit: 2 updates/s (burst 2) for this cluster, retry after "),
        "{message}"
    );
    let ms: String = message
        .split("retry after ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let retry = Duration::from_millis(ms.parse().unwrap());
    assert!(retry <= Duration::from_millis(500), "{retry:?}");

    // Tenant b sends as fast as its own (default) rate allows, undisturbed.
    let mut b = open(hub.agent_addr, &b_id, "west").await;
    for r in 1..=5 {
        assert_ack(b.update(r, r == 1).await, r);
    }

    // The refused revision is used up; a delta is refused until the full state comes.
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    let message = nack_message(a.update(4, false).await, 4);
    assert!(message.contains("send the full state"), "{message}");
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_ack(a.update(5, true).await, 5);

    let _ = hub.stop.send(());
    hub.task.await.unwrap();
}
