//! The MCP session secrets across hub restarts and rotations, in process: the AI config
//! publisher (`ai_config::start_publisher`, as `run` starts it) over a real sealed store file.
//!
//! Proves: a restarted hub (a new publisher over the reopened store) sends every MCP tenant the
//! same keys as before; a rotation (a short `rotateEvery`) sends the tenant a new current key
//! with the previous one kept as the second of the ring, under new ids, stored before it is
//! sent (a restart after it keeps both); a tenant without an MCP route gets no keys and keeps
//! its version; the ring does not open with another store key.

use std::sync::Arc;
use std::time::Duration;

use fleetgate_hub::ai_config::{self, Published, SessionKeys};
use fleetgate_hub::compile::Snapshot;
use fleetgate_hub::model::ai::{
    AiAuth, AiProvider, AiRoute, AiRouteProvider, AiRouteTarget, AiSnapshot, AiTenant, AiUpstream,
    McpSpec, McpTarget,
};
use fleetgate_hub::model::snapshot::SourceObject;
use fleetgate_hub::model::{ClusterKey, Kind, ObjectKey};
use fleetgate_hub::seal::Sealer;
use fleetgate_hub::session_secret::Rotation;
use fleetgate_hub::store::{SecretStore, Store};
use fleetgate_proto::aigateway::v1 as pb;
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(15);
const STORE_KEY: [u8; 32] = [5; 32];

fn source(tenant: &str, name: &str) -> SourceObject {
    SourceObject {
        cluster: ClusterKey {
            tenant: tenant.into(),
            cluster: "c1".into(),
        },
        object: ObjectKey {
            kind: Kind::HttpRoute,
            namespace: "tools".into(),
            name: name.into(),
        },
    }
}

fn mcp_route(tenant: &str) -> AiRoute {
    AiRoute {
        model_aliases: Default::default(),
        target: AiRouteTarget::Mcp(McpSpec {
            targets: vec![McpTarget {
                name: "alpha".into(),
                host: "alpha.tools.svc.cluster.local".into(),
                port: 8080,
                path: Some("/mcp".into()),
                protocol: "StreamableHTTP".into(),
                upstream: AiUpstream::Cluster(vec!["127.0.1.10:8080".parse().unwrap()]),
            }],
            failure_mode: "FailClosed".into(),
            prefix_mode: "Conditional".into(),
            session_routing: "Stateful".into(),
            authentication: None,
            authorization: None,
            accept_tools: vec![],
        }),
        source: source(tenant, "tools"),
    }
}

fn llm_route(tenant: &str) -> AiRoute {
    AiRoute {
        model_aliases: Default::default(),
        target: AiRouteTarget::Provider(AiRouteProvider {
            tls: false,
            name: String::new(),
            provider: AiProvider::OpenAi { model: None },
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port: 8080,
            path: None,
            path_prefix: None,
            endpoints: vec!["127.0.2.10:8080".parse().unwrap()],
            auth: AiAuth::None,
        }),
        source: source(tenant, "llm"),
    }
}

/// Tenant `a` with an MCP route, `b` with an LLM route only.
fn snapshot() -> Snapshot {
    let tenant = |id: &str, r: AiRoute| AiTenant {
        routes: [(id.to_string(), r)].into(),
        ..Default::default()
    };
    Snapshot {
        ai: AiSnapshot {
            tenants: [
                ("a".to_string(), tenant("c1/tools/tools", mcp_route("a"))),
                ("b".to_string(), tenant("c1/llm/llm", llm_route("b"))),
            ]
            .into(),
        },
        ..Default::default()
    }
}

/// A running publisher over the store at `dir`, as `run` starts it.
struct Hub {
    snapshots: watch::Sender<Arc<Snapshot>>,
    published: watch::Receiver<Arc<Published>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hub {
    fn start(dir: &std::path::Path, rotation: Rotation) -> Hub {
        let store = Store::open_sealed(&dir.join("hub.redb"), Sealer::from_key(&STORE_KEY))
            .expect("the store opens");
        let (snapshots, rx) = watch::channel(Arc::new(snapshot()));
        let (published, task) = ai_config::start_publisher(
            rx,
            SessionKeys {
                store: Arc::new(store),
                rotation,
            },
        )
        .expect("the publisher loads the ring");
        Hub {
            snapshots,
            published,
            task,
        }
    }

    fn keys(&self, tenant: &str) -> Vec<pb::McpSessionKey> {
        self.published.borrow().tenants[tenant]
            .config
            .mcp_session_keys
            .clone()
    }

    fn version(&self, tenant: &str) -> u64 {
        self.published.borrow().tenants[tenant].version
    }

    /// Stops as `run` does (the snapshot writer goes, the task ends and closes the store);
    /// returns `a`'s keys as last published (a rotation is stored before it is published).
    async fn stop(self) -> Vec<pb::McpSessionKey> {
        drop(self.snapshots);
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the publisher ends with its snapshot channel")
            .unwrap();
        self.published.borrow().tenants["a"]
            .config
            .mcp_session_keys
            .clone()
    }
}

fn ids(keys: &[pb::McpSessionKey]) -> Vec<u32> {
    keys.iter().map(|k| k.id).collect()
}

const NEVER: Rotation = Rotation {
    every: Duration::ZERO,
    grace: Duration::from_secs(3600),
};

#[tokio::test]
async fn session_keys_survive_a_hub_restart_and_rotate_keeping_the_previous_key() {
    let dir = tempfile::tempdir().unwrap();

    // First start: a ring of one secret, stored; only the MCP tenant gets keys.
    let hub = Hub::start(dir.path(), NEVER);
    let first = hub.keys("a");
    assert_eq!(ids(&first), [1]);
    assert_eq!(first[0].key.len(), 32);
    assert!(hub.keys("b").is_empty(), "no MCP route, no keys");
    hub.stop().await;

    // Restart: the same keys.
    let hub = Hub::start(dir.path(), NEVER);
    assert_eq!(hub.keys("a"), first, "a restarted hub sends the same keys");
    hub.stop().await;

    // Restart with a short rotation: the publisher rotates (the stored secret is older than
    // a second once the clock moves on) and sends [new, previous].
    let rotation = Rotation {
        every: Duration::from_secs(1),
        grace: Duration::from_secs(3600),
    };
    let hub = Hub::start(dir.path(), rotation);
    let b_version = hub.version("b");
    let mut rx = hub.published.clone();
    tokio::time::timeout(
        DEADLINE,
        rx.wait_for(|p| p.tenants["a"].key_ids.first().is_some_and(|id| *id > 1)),
    )
    .await
    .expect("the hub rotates within the deadline")
    .unwrap();
    let rotated = hub.keys("a");
    assert_eq!(
        rotated.len(),
        2,
        "current and previous: {:?}",
        ids(&rotated)
    );
    assert!(rotated[0].id > rotated[1].id);
    assert_ne!(rotated[0].key, first[0].key, "a new current key");
    assert_eq!(rotated[1].key.len(), 32);
    if rotated[1].id == 1 {
        assert_eq!(rotated[1].key, first[0].key, "the previous key is kept");
    }
    assert_eq!(hub.version("b"), b_version, "b has no keys: no new version");
    // (It may rotate again each second: what it last sent is what the store holds.)
    let rotated = hub.stop().await;

    // The rotation was stored: a restart (no rotation) sends the rotated ring.
    let hub = Hub::start(dir.path(), NEVER);
    assert_eq!(
        hub.keys("a"),
        rotated,
        "the rotated ring survives a restart"
    );
    hub.stop().await;

    // The ring is sealed under the store key: another one does not open it.
    let other = Store::open_sealed(&dir.path().join("hub.redb"), Sealer::from_key(&[6; 32]))
        .expect("the store opens");
    assert!(other.load_ring().is_err());
}
