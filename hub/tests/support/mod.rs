//! Test support shared by the hub's integration tests (`mod support;` in each test file; every
//! test binary compiles it on its own, so not every helper is used by every file): the
//! operator's config file the tests write, and an in-process hub serving agents over mTLS on
//! loopback from it — the agent-facing end of the data path, as `fleetgate-hub` runs it.
#![allow(dead_code)]

pub mod envoy;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetgate_hub::config::{Config, RawConfig};
use fleetgate_hub::identity::{self, SpiffeId};
use fleetgate_hub::reload::ReloadSource;
use fleetgate_proto::spoke::v1::{self as pb, spoke_service_client::SpokeServiceClient};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Two tenants with one cluster each: `tenant-a`/`east` on `*.a.example` and 10.1.0.0/16,
/// `tenant-b`/`west` on `*.b.example` and 10.2.0.0/16.
pub const TWO_TENANTS: &str = r#"
- name: tenant-a
  hostnames: ["*.a.example"]
  clusters: [{name: east, endpointCidrs: [10.1.0.0/16]}]
- name: tenant-b
  hostnames: ["*.b.example"]
  clusters: [{name: west, endpointCidrs: [10.2.0.0/16]}]
"#;

/// `tenant-a` of [`TWO_TENANTS`] alone.
pub const TENANT_A: &str = r#"
- name: tenant-a
  hostnames: ["*.a.example"]
  clusters: [{name: east, endpointCidrs: [10.1.0.0/16]}]
"#;

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where a hub listens and what address its data plane announces.
pub struct Listen {
    pub agent: String,
    pub xds: String,
    pub data_plane_address: String,
    pub data_plane_bind: String,
}

impl Listen {
    /// Free loopback ports for every listener.
    pub fn loopback() -> Listen {
        Listen {
            agent: format!("127.0.0.1:{}", free_port()),
            xds: format!("127.0.0.1:{}", free_port()),
            data_plane_address: "127.0.0.1".into(),
            data_plane_bind: format!("127.0.0.1:{}", free_port()),
        }
    }

    /// Loopback addresses nothing listens on, for tests that never start the servers.
    pub fn unused() -> Listen {
        Listen {
            agent: "127.0.0.1:1".into(),
            xds: "127.0.0.1:2".into(),
            data_plane_address: "127.0.0.1".into(),
            data_plane_bind: "127.0.0.1:3".into(),
        }
    }
}

/// The operator's config file: PKI and store under `dir`, one HTTP data-plane listener on port
/// 80, `extra` top-level lines (quotas, grace period ...) and `tenants` (a YAML list).
pub fn config_yaml(dir: &Path, listen: &Listen, extra: &str, tenants: &str) -> String {
    format!(
        r#"
agentListen: {agent}
xdsListen: {xds}
pkiDir: {dir}/pki
storePath: {dir}/hub.redb
{extra}
dataPlane:
  address: {dp_address}
  listeners: [{{port: 80, bind: "{dp_bind}"}}]
tenants: {tenants}
"#,
        agent = listen.agent,
        xds = listen.xds,
        dp_address = listen.data_plane_address,
        dp_bind = listen.data_plane_bind,
        dir = dir.display(),
    )
}

/// [`config_yaml`] parsed and validated.
pub fn config(dir: &Path, listen: &Listen, extra: &str, tenants: &str) -> Config {
    let raw: RawConfig =
        serde_yaml::from_str(&config_yaml(dir, listen, extra, tenants)).expect("config parses");
    raw.validate().expect("config is valid")
}

/// A hub run in-process from a config file in its own directory (with a fresh CA), stopped
/// with [`TestHub::stop`].
pub struct TestHub {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub agent_addr: SocketAddr,
    listen: Listen,
    extra: String,
    reload: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestHub {
    /// Starts a hub serving `tenants` (a YAML list, e.g. [`TWO_TENANTS`]).
    pub async fn start(tenants: &str) -> TestHub {
        TestHub::start_with("", tenants, false).await
    }

    /// Starts a hub with `extra` top-level config lines; with `reload`, it re-reads its config
    /// file every 200 ms (see [`TestHub::write_config`]).
    pub async fn start_with(extra: &str, tenants: &str, reload: bool) -> TestHub {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        identity::init_ca(&dir.path().join("pki"), &["127.0.0.1".into()]).unwrap();
        let listen = Listen::loopback();
        let mut hub = TestHub {
            config_path: dir.path().join("hub.yaml"),
            agent_addr: listen.agent.parse().unwrap(),
            dir,
            listen,
            extra: extra.into(),
            reload,
            stop: None,
            task: None,
        };
        hub.write_config(tenants);
        hub.run().await;
        hub
    }

    /// Where Envoy binds the data-plane listener of port 80.
    pub fn data_plane_bind(&self) -> SocketAddr {
        self.listen.data_plane_bind.parse().unwrap()
    }

    /// The ADS address Envoys fetch their configuration from.
    pub fn xds_addr(&self) -> SocketAddr {
        self.listen.xds.parse().unwrap()
    }

    pub fn pki(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// Writes the config file with `tenants` (YAML list) as its tenants.
    pub fn write_config(&self, tenants: &str) {
        let yaml = config_yaml(self.dir.path(), &self.listen, &self.extra, tenants);
        std::fs::write(&self.config_path, yaml).unwrap();
    }

    /// Runs the hub from its config file and waits until its agent port accepts connections.
    pub async fn run(&mut self) {
        let config = RawConfig::from_file(&self.config_path)
            .unwrap()
            .validate()
            .unwrap();
        let source = self.reload.then(|| ReloadSource {
            path: self.config_path.clone(),
            poll: Duration::from_millis(200),
            trigger: None,
        });
        let (stop, stopped) = oneshot::channel();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            fleetgate_hub::run::run_reloading(config, source, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        }));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.agent_addr)
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the hub did not listen");
    }

    /// Stops the hub and waits until it has ended cleanly.
    pub async fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }

    /// Issues an agent identity (ca.crt, tls.crt, tls.key) for `tenant`/`cluster` from the
    /// hub's CA into a directory of its own, and returns that directory.
    pub fn issue(&self, tenant: &str, cluster: &str) -> PathBuf {
        let out = self.dir.path().join(format!("{tenant}-{cluster}"));
        let id = SpiffeId::new("fleetgate", tenant, cluster).unwrap();
        identity::issue_agent(&self.pki(), &id, time::Duration::hours(1), &out).unwrap();
        out
    }
}

/// An mTLS channel to `addr` with the agent identity in `identity_dir` (see [`TestHub::issue`]).
pub async fn mtls_channel(
    addr: SocketAddr,
    identity_dir: &Path,
) -> Result<Channel, tonic::transport::Error> {
    let read = |f: &str| std::fs::read(identity_dir.join(f)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(Identity::from_pem(read("tls.crt"), read("tls.key")))
        .domain_name(identity::HUB_SERVER_NAME);
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// An open Sync stream, as an agent holds it: send Updates with `tx`, read replies from `rx`.
pub struct SyncStream {
    pub tx: mpsc::Sender<pb::AgentMessage>,
    pub rx: tonic::Streaming<pb::HubMessage>,
}

impl SyncStream {
    /// Opens Sync on `ch` with a Hello for `cluster`.
    pub async fn open(ch: Channel, cluster: &str) -> Result<SyncStream, tonic::Status> {
        SyncStream::open_sending(ch, vec![hello(cluster)]).await
    }

    /// Opens Sync on `ch` with a Hello for `cluster` and an empty full state (revision 1), both
    /// queued before the call.
    pub async fn open_with_empty_state(
        ch: Channel,
        cluster: &str,
    ) -> Result<SyncStream, tonic::Status> {
        let empty = pb::agent_message::Kind::Update(update(1, true, vec![]));
        SyncStream::open_sending(ch, vec![hello(cluster), empty]).await
    }

    async fn open_sending(
        ch: Channel,
        first: Vec<pb::agent_message::Kind>,
    ) -> Result<SyncStream, tonic::Status> {
        let (tx, rx) = mpsc::channel(8);
        for kind in first {
            tx.send(pb::AgentMessage { kind: Some(kind) })
                .await
                .unwrap();
        }
        let mut client = SpokeServiceClient::new(ch)
            .max_encoding_message_size(64 * 1024 * 1024)
            .max_decoding_message_size(fleetgate_proto::MAX_MESSAGE_BYTES);
        let rx = client.sync(ReceiverStream::new(rx)).await?.into_inner();
        Ok(SyncStream { tx, rx })
    }

    /// Sends Update `revision` (`full` state or a delta) upserting `upserts`.
    pub async fn send(&self, revision: u64, full: bool, upserts: Vec<pb::Object>) {
        let kind = pb::agent_message::Kind::Update(update(revision, full, upserts));
        self.tx
            .send(pb::AgentMessage { kind: Some(kind) })
            .await
            .unwrap();
    }

    /// The next Ack/Nack (statuses skipped), or the error that ended the stream.
    pub async fn verdict(&mut self) -> Result<pb::hub_message::Kind, tonic::Status> {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.rx.message())
                .await
                .expect("the hub answered within 10 s")?
                .ok_or_else(|| tonic::Status::unknown("stream ended without a status"))?;
            match m.kind.unwrap() {
                pb::hub_message::Kind::Status(_) => continue,
                k => return Ok(k),
            }
        }
    }

    /// Waits for a Status that satisfies `f`.
    pub async fn status_where(&mut self, f: impl Fn(&pb::Status) -> bool) -> pb::Status {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.rx.message())
                .await
                .expect("status within 10 s")
                .unwrap()
                .unwrap();
            if let Some(pb::hub_message::Kind::Status(s)) = m.kind
                && f(&s)
            {
                return s;
            }
        }
    }
}

fn hello(cluster: &str) -> pb::agent_message::Kind {
    pb::agent_message::Kind::Hello(pb::Hello {
        cluster: cluster.into(),
        agent_version: "test".into(),
    })
}

fn update(revision: u64, full_state: bool, upserts: Vec<pb::Object>) -> pb::Update {
    pb::Update {
        traceparent: String::new(),
        revision,
        full_state,
        upserts,
        deletes: vec![],
    }
}

/// An answer of the hub's admin port, as [`admin_port`] read it.
pub struct AdminAnswer {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: String,
}

/// `method path` on the admin port `port` over a fresh HTTP/1.1 connection, with `headers`
/// (whole lines, e.g. `cookie: ...`) and `body`.
pub async fn admin_port(
    port: u16,
    method: &str,
    path: &str,
    headers: &[String],
    body: &str,
) -> AdminAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the admin port accepts");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    AdminAnswer {
        status: out[9..12].parse().expect("an HTTP status line"),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// tenant-a's cluster `east` connected, with Gateway `web` (`*.a.example`), HTTPRoute `good`
/// (`app.a.example`, accepted) and HTTPRoute `foreign` (tenant-b's `shop.b.example`, refused);
/// its stream once the hub answered.
pub async fn east_with_a_refused_route(hub: &TestHub) -> SyncStream {
    let id = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    let to = backend("app", 8080, "10.1.0.5", 30080);
    s.send(
        1,
        true,
        vec![
            http_gateway("web", "http", "*.a.example"),
            http_route("good", "web", "app.a.example", to.clone()),
            http_route("foreign", "web", "shop.b.example", to),
        ],
    )
    .await;
    s.verdict().await.unwrap();
    s
}

/// Gateway `default/name` (generation 1), class `fleetgate`, with one HTTP listener
/// `listener` on port 80 for `host`.
pub fn http_gateway(name: &str, listener: &str, host: &str) -> pb::Object {
    pb::Object {
        r#ref: Some(object_ref(pb::Kind::Gateway, name)),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::Gateway(pb::Gateway {
            gateway_class_name: "fleetgate".into(),
            listeners: vec![pb::Listener {
                name: listener.into(),
                protocol: "HTTP".into(),
                port: 80,
                hostname: host.into(),
                allowed_routes: None,
                tls: None,
            }],
            allowed_listeners: None,
            ..Default::default()
        })),
    }
}

/// HTTPRoute `default/name` (generation 1) on Gateway `default/gateway` for `host`, one rule:
/// all paths to `backend`.
pub fn http_route(name: &str, gateway: &str, host: &str, backend: pb::Backend) -> pb::Object {
    pb::Object {
        r#ref: Some(object_ref(pb::Kind::HttpRoute, name)),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
            parent_refs: vec![pb::ParentRef {
                namespace: "default".into(),
                name: gateway.into(),
                ..Default::default()
            }],
            hostnames: vec![host.into()],
            rules: vec![pb::HttpRouteRule {
                backends: vec![backend],
                ..Default::default()
            }],
        })),
    }
}

/// Service `default/svc` port `port` (weight 1) with one ready endpoint `address`:`target`.
pub fn backend(svc: &str, port: u32, address: &str, target: u32) -> pb::Backend {
    pb::Backend {
        namespace: "default".into(),
        name: svc.into(),
        port,
        weight: 1,
        endpoints: vec![pb::Endpoint {
            address: address.into(),
            port: target,
            ready: true,
        }],
        ..Default::default()
    }
}

/// `default/name` of `kind`.
pub fn object_ref(kind: pb::Kind, name: &str) -> pb::ObjectRef {
    pb::ObjectRef {
        kind: kind as i32,
        namespace: "default".into(),
        name: name.into(),
    }
}

/// Everything the hubs of this test binary log at warn and above, from the first call on: the
/// operator's view of what the hub refused. Tests of one binary share it; search it for what
/// only your test causes.
pub fn hub_log() -> String {
    use std::sync::{Arc, Mutex, OnceLock};
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static SINK: OnceLock<Sink> = OnceLock::new();
    let sink = SINK.get_or_init(|| {
        let sink = Sink(Arc::default());
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        sink
    });
    String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned()
}
