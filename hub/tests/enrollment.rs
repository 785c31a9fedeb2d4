//! Enrollment and cluster removal, driven in-process over real TLS on loopback: bootstrap token
//! -> certificate -> Sync; single use (also across a restart); expired, foreign and malformed
//! tokens; renewal; and a cluster removed or disabled by a config reload losing its stream, its
//! certificate and its renewals.

use std::time::Duration;

use fleetgate_hub::enroll::token::{self, TokenKey};
use fleetgate_hub::identity::{self, SpiffeId};
use fleetgate_proto::enroll::v1::{
    EnrollRequest, EnrollResponse, RenewRequest, enroll_service_client::EnrollServiceClient,
};
use fleetgate_proto::spoke::v1 as pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

mod support;
use support::{SyncStream, TWO_TENANTS, TestHub};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A hub run in-process from a config file it re-reads every 200 ms, serving [`TWO_TENANTS`].
async fn start_hub() -> TestHub {
    TestHub::start_with("identity: {certificateLifetime: 1h}", TWO_TENANTS, true).await
}

/// [`start_hub`] with its admin port (metrics) on the returned port.
async fn start_hub_with_metrics() -> (TestHub, u16) {
    let port = support::free_port();
    let extra = format!("identity: {{certificateLifetime: 1h}}\nadminListen: 127.0.0.1:{port}");
    (TestHub::start_with(&extra, TWO_TENANTS, true).await, port)
}

/// The lines of the hub's `/metrics` that start with `prefix`.
async fn metric_lines(port: u16, prefix: &str) -> Vec<String> {
    let a = support::admin_port(port, "GET", "/metrics", &[], "").await;
    assert_eq!(a.status, 200);
    a.body
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Enrollment as an agent does it, against the hub's CA and token key.
impl TestHub {
    fn token(&self, tenant: &str, cluster: &str, expires: u64) -> String {
        let key = TokenKey::load_or_create(&self.pki()).unwrap();
        token::mint(&key, tenant, cluster, expires).unwrap()
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.pki().join(identity::CA_CERT)).unwrap()
    }

    /// A TLS channel trusting the hub CA, with `client` = (cert, key) PEM when given.
    async fn channel(&self, client: Option<&Agent>) -> Channel {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca_pem()))
            .domain_name(identity::HUB_SERVER_NAME);
        if let Some(a) = client {
            tls = tls.identity(Identity::from_pem(&a.cert_pem, &a.key_pem));
        }
        Channel::from_shared(format!("https://{}", self.agent_addr))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    async fn enroll(&self, token: &str) -> Result<Agent, tonic::Status> {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        self.enroll_csr(token, csr.der().to_vec(), key).await
    }

    async fn enroll_csr(
        &self,
        token: &str,
        csr_der: Vec<u8>,
        key: rcgen::KeyPair,
    ) -> Result<Agent, tonic::Status> {
        let r = EnrollServiceClient::new(self.channel(None).await)
            .enroll(EnrollRequest {
                token: token.into(),
                csr_der,
            })
            .await?
            .into_inner();
        Ok(Agent::from_response(r, key))
    }

    async fn renew(&self, agent: &Agent) -> Result<Agent, tonic::Status> {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let r = EnrollServiceClient::new(self.channel(Some(agent)).await)
            .renew(RenewRequest {
                csr_der: csr.der().to_vec(),
            })
            .await?
            .into_inner();
        Ok(Agent::from_response(r, key))
    }
}

/// An enrolled agent's identity.
struct Agent {
    cert_pem: String,
    key_pem: String,
    not_after: i64,
    ca_pem: String,
}

impl Agent {
    fn from_response(r: EnrollResponse, key: rcgen::KeyPair) -> Self {
        Agent {
            cert_pem: r.certificate_chain_pem,
            key_pem: key.serialize_pem(),
            not_after: r.not_after,
            ca_pem: r.ca_pem,
        }
    }

    fn spiffe(&self) -> SpiffeId {
        let (_, pem) = x509_parser::pem::parse_x509_pem(self.cert_pem.as_bytes()).unwrap();
        SpiffeId::from_certificate(&pem.contents, "fleetgate").unwrap()
    }
}

/// Opens a Sync stream for `agent`'s cluster and returns its first verdict.
async fn sync_verdict(
    hub: &TestHub,
    agent: &Agent,
    cluster: &str,
) -> Result<SyncStream, tonic::Status> {
    let mut s = SyncStream::open_with_empty_state(hub.channel(Some(agent)).await, cluster).await?;
    match s.verdict().await? {
        pb::hub_message::Kind::Ack(_) => Ok(s),
        other => panic!("expected Ack, got {other:?}"),
    }
}

fn assert_refused(r: Result<impl Sized, tonic::Status>, code: tonic::Code, words: &str) {
    match r {
        Ok(_) => panic!("expected {code:?} with {words:?}, got success"),
        Err(e) => {
            assert_eq!(e.code(), code, "{e:?}");
            assert!(
                e.message().contains(words),
                "{:?} lacks {words:?}",
                e.message()
            );
        }
    }
}

#[tokio::test]
async fn an_enrolled_agent_syncs_and_its_token_cannot_be_replayed_even_after_a_restart() {
    let mut hub = start_hub().await;
    let token = hub.token("tenant-a", "east", now() + 900);
    let agent = hub.enroll(&token).await.unwrap();
    assert_eq!(
        agent.spiffe(),
        SpiffeId::new("fleetgate", "tenant-a", "east").unwrap()
    );
    assert_eq!(agent.ca_pem.as_bytes(), hub.ca_pem().as_slice());
    // certificateLifetime: 1h.
    let left = agent.not_after - now() as i64;
    assert!((3500..=3600).contains(&left), "{left}");
    sync_verdict(&hub, &agent, "east").await.unwrap();

    assert_refused(
        hub.enroll(&token).await,
        tonic::Code::Unauthenticated,
        "bootstrap token already used: create a new one with `fleetgate-hub token create --tenant tenant-a --cluster east`",
    );
    hub.stop().await;
    hub.run().await;
    assert_refused(
        hub.enroll(&token).await,
        tonic::Code::Unauthenticated,
        "already used",
    );
    // The certificate outlives the restart.
    sync_verdict(&hub, &agent, "east").await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn expired_foreign_malformed_and_unregistered_tokens_are_refused() {
    let (mut hub, metrics) = start_hub_with_metrics().await;
    assert_refused(
        hub.enroll(&hub.token("tenant-a", "east", now() - 1)).await,
        tonic::Code::Unauthenticated,
        "expired: create a new one",
    );
    let foreign = token::mint(
        &TokenKey::from_bytes(&[7; 32]),
        "tenant-a",
        "east",
        now() + 900,
    )
    .unwrap();
    assert_refused(
        hub.enroll(&foreign).await,
        tonic::Code::Unauthenticated,
        "unknown to this hub",
    );
    assert_refused(
        hub.enroll("not-a-token").await,
        tonic::Code::Unauthenticated,
        "malformed",
    );
    assert_refused(
        hub.enroll(&hub.token("tenant-a", "ghost", now() + 900))
            .await,
        tonic::Code::PermissionDenied,
        "not registered",
    );

    // A malformed CSR is refused without spending the token.
    let token = hub.token("tenant-b", "west", now() + 900);
    assert_refused(
        hub.enroll_csr(
            &token,
            b"garbage".to_vec(),
            rcgen::KeyPair::generate().unwrap(),
        )
        .await,
        tonic::Code::InvalidArgument,
        "PKCS#10",
    );
    let agent = hub.enroll(&token).await.unwrap();
    assert_eq!(agent.spiffe().tenant, "tenant-b");
    // Each call is counted by its result.
    let mut counted = metric_lines(metrics, "fleetgate_hub_enrollments_total").await;
    counted.sort();
    assert_eq!(
        counted,
        vec![
            r#"fleetgate_hub_enrollments_total{result="invalid_argument"} 1"#,
            r#"fleetgate_hub_enrollments_total{result="issued"} 1"#,
            r#"fleetgate_hub_enrollments_total{result="permission_denied"} 1"#,
            r#"fleetgate_hub_enrollments_total{result="unauthenticated"} 3"#,
        ]
    );
    hub.stop().await;
}

#[tokio::test]
async fn sync_and_renew_need_a_client_certificate() {
    let mut hub = start_hub().await;
    assert_refused(
        SyncStream::open_with_empty_state(hub.channel(None).await, "east").await,
        tonic::Code::Unauthenticated,
        "no client certificate",
    );
    assert_refused(
        EnrollServiceClient::new(hub.channel(None).await)
            .renew(RenewRequest { csr_der: vec![] })
            .await,
        tonic::Code::Unauthenticated,
        "no client certificate",
    );
    hub.stop().await;
}

#[tokio::test]
async fn renewal_gives_a_new_certificate_for_a_new_key() {
    let (mut hub, metrics) = start_hub_with_metrics().await;
    let agent = hub
        .enroll(&hub.token("tenant-a", "east", now() + 900))
        .await
        .unwrap();
    let renewed = hub.renew(&agent).await.unwrap();
    assert_ne!(renewed.cert_pem, agent.cert_pem);
    assert_ne!(renewed.key_pem, agent.key_pem);
    assert_eq!(renewed.spiffe(), agent.spiffe());
    sync_verdict(&hub, &renewed, "east").await.unwrap();
    // The renewed certificate renews again.
    hub.renew(&renewed).await.unwrap();
    assert_refused(
        EnrollServiceClient::new(hub.channel(None).await)
            .renew(RenewRequest { csr_der: vec![] })
            .await,
        tonic::Code::Unauthenticated,
        "no client certificate",
    );
    let mut counted = metric_lines(metrics, "fleetgate_hub_certificate_renewals_total").await;
    counted.sort();
    assert_eq!(
        counted,
        vec![
            r#"fleetgate_hub_certificate_renewals_total{result="issued"} 2"#,
            r#"fleetgate_hub_certificate_renewals_total{result="unauthenticated"} 1"#,
        ]
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_removed_cluster_loses_its_stream_its_certificate_and_its_renewals() {
    let mut hub = start_hub().await;
    let east = hub
        .enroll(&hub.token("tenant-a", "east", now() + 900))
        .await
        .unwrap();
    let west = hub
        .enroll(&hub.token("tenant-b", "west", now() + 900))
        .await
        .unwrap();
    let mut east_stream = sync_verdict(&hub, &east, "east").await.unwrap();
    let mut west_stream = sync_verdict(&hub, &west, "west").await.unwrap();

    // An invalid file is refused: the running configuration stays, both streams stay open.
    std::fs::write(&hub.config_path, "tenants: [[[").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    sync_verdict(&hub, &east, "east").await.unwrap();

    // tenant-a's cluster is removed: its open stream is closed with the reason.
    hub.write_config(
        r#"
- name: tenant-a
  hostnames: ["*.a.example"]
  clusters: []
- name: tenant-b
  hostnames: ["*.b.example"]
  clusters: [{name: west, endpointCidrs: [10.2.0.0/16]}]
"#,
    );
    assert_refused(
        east_stream.verdict().await,
        tonic::Code::PermissionDenied,
        "not registered",
    );
    assert_refused(
        sync_verdict(&hub, &east, "east").await,
        tonic::Code::PermissionDenied,
        "not registered",
    );
    assert_refused(
        hub.renew(&east).await,
        tonic::Code::PermissionDenied,
        "not registered",
    );
    // The other tenant is untouched.
    sync_verdict(&hub, &west, "west").await.unwrap();

    // Added back: the certificate issued before the removal stays refused; a new token works.
    hub.write_config(TWO_TENANTS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_refused(
        sync_verdict(&hub, &east, "east").await,
        tonic::Code::PermissionDenied,
        "issued before the cluster was removed or disabled",
    );
    assert_refused(
        hub.renew(&east).await,
        tonic::Code::PermissionDenied,
        "issued before",
    );
    // The epoch has second granularity: a certificate issued in the removal's second counts as
    // issued before it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let east2 = hub
        .enroll(&hub.token("tenant-a", "east", now() + 900))
        .await
        .unwrap();
    sync_verdict(&hub, &east2, "east").await.unwrap();

    // Disabled (enabled: false): the same, and it survives a restart of the hub.
    hub.write_config(&TWO_TENANTS.replace(
        "{name: west, endpointCidrs: [10.2.0.0/16]}",
        "{name: west, endpointCidrs: [10.2.0.0/16], enabled: false}",
    ));
    assert_refused(
        west_stream.verdict().await,
        tonic::Code::PermissionDenied,
        "disabled",
    );
    assert_refused(
        hub.enroll(&hub.token("tenant-b", "west", now() + 900))
            .await,
        tonic::Code::PermissionDenied,
        "disabled",
    );
    hub.stop().await;
    hub.write_config(TWO_TENANTS);
    hub.run().await;
    assert_refused(
        sync_verdict(&hub, &west, "west").await,
        tonic::Code::PermissionDenied,
        "issued before",
    );
    sync_verdict(&hub, &east2, "east").await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn a_stream_ends_when_its_certificate_expires() {
    let mut hub = start_hub().await;
    let out = hub.dir.path().join("short-lived");
    identity::issue_agent(
        &hub.pki(),
        &SpiffeId::new("fleetgate", "tenant-a", "east").unwrap(),
        time::Duration::seconds(4),
        &out,
    )
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let agent = Agent {
        cert_pem: read("tls.crt"),
        key_pem: read("tls.key"),
        not_after: 0,
        ca_pem: read("ca.crt"),
    };
    let mut s = sync_verdict(&hub, &agent, "east").await.unwrap();
    assert_refused(
        s.verdict().await,
        tonic::Code::Unauthenticated,
        "certificate expired",
    );
    hub.stop().await;
}
