//! AgentgatewayBackends through the hub's runtime (issue 11): admitted by `Fleet::apply` from
//! the wire, stored with their provider keys sealed, compiled into the AI part of the snapshot
//! (`run::compile_view`), re-judged when the configuration changes, counted as objects, and their
//! keys never in a status or a log line. Isolation attacks from the issue are here too: a backend
//! whose host leads to another tenant's endpoints, to the hub, to link-local metadata, or to an
//! external host the operator did not allow.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use fleetgate_proto::spoke::v1 as pb;

use super::*;
use crate::config::RawConfig;
use crate::model::ai::{AI_GATEWAY_CLUSTER, AiAuth, AiRouteTarget, ProviderKey};

const KEY: &str = "sk-tenant-a-PROVIDER-KEY-0123456789";

fn config(dir: &std::path::Path, extra: &str, egress: &str) -> Arc<Config> {
    let yaml = format!(
        r#"
agentListen: 127.0.0.1:7443
xdsListen: 127.0.0.1:18000
pkiDir: {dir}/pki
storePath: {dir}/hub.redb
dataPlane:
  address: 127.0.0.1
  listeners: [{{port: 80, bind: "127.0.0.1:18080"}}]
  aiGateways: ["127.0.0.1:18090"]
tenants:
- name: a
  hostnames: ['*.a.example']
  egress: {egress}
  clusters: [{{name: c1, endpointCidrs: [127.0.1.0/24, 127.0.0.0/24, 169.254.0.0/16], allowSpecialAddresses: true}}]
- name: b
  hostnames: ['*.b.example']
  clusters: [{{name: c1, endpointCidrs: [127.0.2.0/24], allowSpecialAddresses: true}}]
{extra}"#,
        dir = dir.display()
    );
    let raw: RawConfig = serde_yaml::from_str(&yaml).unwrap();
    Arc::new(raw.validate().unwrap())
}

fn key(t: &str) -> ClusterKey {
    ClusterKey {
        tenant: t.into(),
        cluster: "c1".into(),
    }
}

fn object(kind: pb::Kind, name: &str, spec: pb::object::Spec) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: kind as i32,
            namespace: "default".into(),
            name: name.into(),
        }),
        generation: 2,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(spec),
    }
}

/// An AgentgatewayBackend: `endpoints` resolved by the agent (empty: an external host).
fn ai_backend(name: &str, host: &str, endpoints: &[&str]) -> pb::Object {
    object(
        pb::Kind::AiBackend,
        name,
        pb::object::Spec::AiBackend(pb::AiBackend {
            provider: Some(pb::ai_backend::Provider::Openai(pb::OpenAiProvider {
                model: Some("gemma-4-12b-it".into()),
            })),
            host: host.into(),
            port: 8080,
            endpoints: endpoints
                .iter()
                .map(|e| {
                    let a: SocketAddr = e.parse().unwrap();
                    pb::Endpoint {
                        address: a.ip().to_string(),
                        port: u32::from(a.port()),
                        ready: true,
                    }
                })
                .collect(),
            auth: Some(pb::AiAuth {
                key: KEY.into(),
                passthrough: false,
            }),
            ..Default::default()
        }),
    )
}

fn gateway() -> pb::Object {
    object(
        pb::Kind::Gateway,
        "agentgateway-proxy",
        pb::object::Spec::Gateway(pb::Gateway {
            gateway_class_name: "agentgateway".into(),
            listeners: vec![pb::Listener {
                name: "http".into(),
                protocol: "HTTP".into(),
                port: 80,
                hostname: "chat.a.example".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
}

fn chat_route(backend: &str) -> pb::Object {
    object(
        pb::Kind::HttpRoute,
        "chat",
        pb::object::Spec::HttpRoute(pb::HttpRoute {
            parent_refs: vec![pb::ParentRef {
                namespace: "default".into(),
                name: "agentgateway-proxy".into(),
                ..Default::default()
            }],
            hostnames: vec![],
            rules: vec![pb::HttpRouteRule {
                backends: vec![pb::Backend {
                    namespace: "default".into(),
                    name: backend.into(),
                    weight: 1,
                    kind: "AgentgatewayBackend".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }),
    )
}

fn full(upserts: Vec<pb::Object>) -> pb::Update {
    pb::Update {
        traceparent: String::new(),
        revision: 1,
        full_state: true,
        upserts,
        deletes: vec![],
    }
}

fn compiled(fleet: &Fleet) -> (crate::compile::Snapshot, crate::sync::FleetStatus) {
    crate::run::compile_view(
        &fleet.view(),
        &fleet.config(),
        &crate::xds::XdsHealth::default(),
    )
}

/// The AI route ids served for tenant `a`.
fn ai_routes(fleet: &Fleet) -> Vec<String> {
    compiled(fleet)
        .0
        .ai
        .tenants
        .get("a")
        .map(|t| t.routes.keys().cloned().collect())
        .unwrap_or_default()
}

/// Log lines written while `f` runs, at every level.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn ai_backends_are_admitted_sealed_at_rest_and_compiled_for_the_ai_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", "[]");
    let sealer = || crate::seal::Sealer::from_key(&[9u8; 32]);
    let fleet = Fleet::open(
        cfg.clone(),
        Store::open_sealed(&cfg.store_path, sealer()).unwrap(),
    )
    .unwrap();
    let update = full(vec![
        gateway(),
        chat_route("local-llm"),
        ai_backend(
            "local-llm",
            "llama-cpp.llm.svc.cluster.local",
            &["127.0.1.10:8080"],
        ),
    ]);
    let (applied, log) = logged(|| fleet.apply(&key("a"), &update));
    applied.unwrap();
    assert!(!log.contains("PROVIDER-KEY"), "{log}");

    let (snapshot, statuses) = compiled(&fleet);
    let route = &snapshot.ai.tenants["a"].routes["c1/default/local-llm"];
    let provider = route.target.providers()[0];
    assert_eq!(provider.auth, AiAuth::Key(ProviderKey(KEY.into())));
    assert_eq!(provider.endpoints, vec!["127.0.1.10:8080".parse().unwrap()]);
    let gw = snapshot
        .clusters
        .iter()
        .find(|c| c.name == AI_GATEWAY_CLUSTER)
        .expect("the route reaches the AI gateway cluster");
    assert_eq!(gw.endpoints, vec!["127.0.0.1:18090".parse().unwrap()]);
    // The backend's status, as the agent gets it on the wire.
    let st = statuses[&key("a")]
        .iter()
        .find(|s| s.key.kind == crate::model::Kind::AiBackend)
        .unwrap();
    let wire = crate::sync::to_wire(st);
    assert_eq!(
        wire.r#ref.as_ref().unwrap().kind,
        pb::Kind::AiBackend as i32
    );
    assert_eq!(wire.observed_generation, 2);
    assert_eq!(
        wire.conditions
            .iter()
            .map(|c| (c.r#type.as_str(), c.status.as_str()))
            .collect::<Vec<_>>(),
        [("Accepted", "True"), ("ResolvedRefs", "True")]
    );
    assert!(!format!("{statuses:?}").contains("PROVIDER-KEY"));

    // At rest the key is sealed; it opens again after a restart with the same store key only.
    drop(fleet);
    let file = std::fs::read(&cfg.store_path).unwrap();
    assert!(
        !file.windows(12).any(|w| w == b"PROVIDER-KEY"),
        "the provider key is not in the store file in plain"
    );
    let reopened = Fleet::open(
        cfg.clone(),
        Store::open_sealed(&cfg.store_path, sealer()).unwrap(),
    )
    .unwrap();
    assert_eq!(ai_routes(&reopened), ["c1/default/local-llm"]);
    let stored =
        &reopened.view().intent[&key("a")].ai_backends[&("default".into(), "local-llm".into())];
    let Ok(t) = &stored.target else { panic!() };
    assert_eq!(t.resolved()[0].auth, AiAuth::Key(ProviderKey(KEY.into())));
    drop(reopened);
    let other = Store::open_sealed(&cfg.store_path, crate::seal::Sealer::from_key(&[1u8; 32]))
        .unwrap()
        .load()
        .unwrap_err()
        .to_string();
    assert!(other.contains("cannot be decrypted"), "{other}");
}

/// Issue 11's isolation attacks on AI backends, through `Fleet::apply`: each is rejected alone
/// with a status that says what to change, nothing of it reaches the AI gateways, and the
/// key is in no status and no log line.
#[test]
fn ai_backend_isolation_attacks_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", "[api.openai.com]");
    let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
    let attacks = [
        (
            "another tenant's endpoints",
            ai_backend("steal-b", "llama.llm.svc", &["127.0.2.10:8080"]),
            "EndpointNotAllowed",
            "outside the networks registered for cluster c1",
        ),
        (
            "the hub's xDS listener",
            ai_backend("hub-xds", "llama.llm.svc", &["127.0.0.1:18000"]),
            "EndpointNotAllowed",
            "the hub or the data plane itself",
        ),
        (
            "the AI gateway itself",
            ai_backend("loop", "llama.llm.svc", &["127.0.0.1:18090"]),
            "EndpointNotAllowed",
            "the hub or the data plane itself",
        ),
        (
            "link-local metadata",
            ai_backend("metadata", "llama.llm.svc", &["169.254.169.254:80"]),
            "EndpointNotAllowed",
            // This careless operator allows special addresses and 169.254/16 for the
            // cluster: only the rule that the hub's own addresses are refused is left, and
            // metadata is refused once the operator reserves it. See below.
            "",
        ),
        (
            "an external host not on the egress list",
            ai_backend("exfil", "api.evil.example", &[]),
            "EgressNotAllowed",
            "the hub operator must add api.evil.example to tenants[a].egress",
        ),
        (
            "the hub as an external IP host",
            ai_backend("hub-ip", "127.0.0.1", &[]),
            "EndpointNotAllowed",
            "the hub or the data plane itself (reserved address 127.0.0.1/32)",
        ),
    ];
    for (what, obj, reason, words) in attacks {
        let name = obj.r#ref.as_ref().unwrap().name.clone();
        let (applied, log) = logged(|| fleet.apply(&key("a"), &full(vec![obj])));
        applied.unwrap();
        assert!(!log.contains("PROVIDER-KEY"), "{what}: {log}");
        let v = fleet.view();
        let rejected = v
            .rejections
            .get(&key("a"))
            .and_then(|r| r.values().find(|s| s.key.name == name));
        if words.is_empty() {
            // Metadata inside the careless CIDRs is admitted here...
            assert!(rejected.is_none(), "{what}");
            continue;
        }
        let st = rejected.unwrap_or_else(|| panic!("{what}: not rejected"));
        assert_eq!(st.observed_generation, 2, "{what}");
        let accepted = &st.conditions[0];
        assert_eq!(
            (
                accepted.type_.as_str(),
                accepted.status,
                accepted.reason.as_str()
            ),
            ("Accepted", false, reason),
            "{what}"
        );
        assert!(
            accepted.message.contains(words),
            "{what}: {}",
            accepted.message
        );
        let refs = &st.conditions[1];
        assert_eq!(
            (refs.type_.as_str(), refs.status, refs.reason.as_str()),
            ("ResolvedRefs", false, reason),
            "{what}"
        );
        assert!(!format!("{st:?}").contains("PROVIDER-KEY"), "{what}");
        assert!(ai_routes(&fleet).is_empty(), "{what}");
    }

    // ...and refused once the operator reserves it, and withdrawn from the AI gateways at once.
    fleet
        .apply(
            &key("a"),
            &full(vec![ai_backend(
                "metadata",
                "llama.llm.svc",
                &["169.254.169.254:80"],
            )]),
        )
        .unwrap();
    assert_eq!(ai_routes(&fleet), ["c1/default/metadata"]);
    let mut reserving = (*cfg).clone();
    reserving.reserved_addresses = vec!["169.254.169.254/32".parse().unwrap()];
    fleet.reconfigure(Arc::new(reserving)).unwrap();
    assert!(ai_routes(&fleet).is_empty(), "withdrawn at the reload");
    fleet
        .apply(
            &key("a"),
            &full(vec![ai_backend(
                "metadata",
                "llama.llm.svc",
                &["169.254.169.254:80"],
            )]),
        )
        .unwrap();
    let v = fleet.view();
    let st = v.rejections[&key("a")].values().next().unwrap();
    assert!(
        st.conditions[0]
            .message
            .contains("reserved address 169.254.169.254/32"),
        "{:?}",
        st.conditions[0]
    );
}

#[test]
fn a_reload_that_narrows_egress_or_cidrs_withdraws_ai_routes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", "['*.openai.com']");
    let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
    fleet
        .apply(
            &key("a"),
            &full(vec![
                ai_backend("openai", "api.openai.com", &[]),
                ai_backend(
                    "local",
                    "llama.llm.svc",
                    &["127.0.1.10:8080", "127.0.1.11:8080"],
                ),
            ]),
        )
        .unwrap();
    assert_eq!(ai_routes(&fleet), ["c1/default/local", "c1/default/openai"]);

    // The operator takes the provider off the tenant's egress list.
    let narrowed = config(dir.path(), "", "[]");
    fleet.reconfigure(narrowed.clone()).unwrap();
    assert_eq!(ai_routes(&fleet), ["c1/default/local"]);
    // ... and narrows the cluster's network: the endpoint outside it leaves, then the route.
    let mut cidr = (*narrowed).clone();
    cidr.tenants
        .get_mut("a")
        .unwrap()
        .clusters
        .get_mut("c1")
        .unwrap()
        .endpoint_cidrs = vec!["127.0.1.10/32".parse().unwrap()];
    fleet.reconfigure(Arc::new(cidr.clone())).unwrap();
    let (snapshot, _) = compiled(&fleet);
    assert_eq!(
        snapshot.ai.tenants["a"].routes["c1/default/local"]
            .target
            .providers()[0]
            .endpoints,
        vec!["127.0.1.10:8080".parse().unwrap()]
    );
    cidr.tenants
        .get_mut("a")
        .unwrap()
        .clusters
        .get_mut("c1")
        .unwrap()
        .endpoint_cidrs = vec!["127.0.9.0/24".parse().unwrap()];
    fleet.reconfigure(Arc::new(cidr)).unwrap();
    assert!(
        compiled(&fleet).0.ai.tenants.is_empty(),
        "a cluster-local route never reaches the AI gateway without endpoints"
    );
}

#[test]
fn ai_backends_count_as_objects_and_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "limits: {maxObjectsPerCluster: 2, maxEndpointsPerBackend: 100}\nquotas: {tenants: {a: {endpoints: 2}}}\n";
    let cfg = config(dir.path(), limits, "[]");
    let fleet = Fleet::open(cfg.clone(), Store::open(&cfg.store_path).unwrap()).unwrap();
    let three = full(vec![
        ai_backend("one", "one.llm.svc", &["127.0.1.1:80"]),
        ai_backend("two", "two.llm.svc", &["127.0.1.2:80"]),
        ai_backend("three", "three.llm.svc", &["127.0.1.3:80"]),
    ]);
    let err = fleet.apply(&key("a"), &three).unwrap_err().to_string();
    assert!(err.contains("limit is 2"), "{err}");
    // Within the object limit, the endpoints quota: the second backend's two endpoints do not fit.
    fleet
        .apply(
            &key("a"),
            &full(vec![
                ai_backend("one", "one.llm.svc", &["127.0.1.1:80"]),
                ai_backend("two", "two.llm.svc", &["127.0.1.2:80", "127.0.1.3:80"]),
            ]),
        )
        .unwrap();
    let v = fleet.view();
    let st = v.rejections[&key("a")].values().next().unwrap();
    assert_eq!(st.key.name, "two");
    assert_eq!(st.conditions[0].reason, "QuotaExceeded");
    assert!(
        st.conditions[0].message.contains("quota endpoints"),
        "{:?}",
        st.conditions[0]
    );
    assert_eq!(ai_routes(&fleet), ["c1/default/one"]);
}

/// A failover backend (`spec.ai.groups`) as the agent sends it: a cluster-local provider with
/// its own key first, an external one with another key second, one the agent could not resolve.
fn groups_backend(name: &str) -> pb::Object {
    let provider = |name: &str, host: &str, endpoints: &[&str], key: &str| pb::AiGroupProvider {
        name: name.into(),
        provider: Some(pb::ai_group_provider::Provider::Openai(
            pb::OpenAiProvider { model: None },
        )),
        host: host.into(),
        port: 8080,
        endpoints: endpoints
            .iter()
            .map(|e| {
                let a: SocketAddr = e.parse().unwrap();
                pb::Endpoint {
                    address: a.ip().to_string(),
                    port: u32::from(a.port()),
                    ready: true,
                }
            })
            .collect(),
        auth: Some(pb::AiAuth {
            key: key.into(),
            passthrough: false,
        }),
        ..Default::default()
    };
    let mut gone = provider("gone", "gone.llm.svc", &[], "");
    gone.auth = None;
    gone.problem = Some(pb::BackendProblem {
        reason: "BackendNotFound".into(),
        message: "spec.ai.groups[0].providers[1].host gone.llm.svc: Service llm/gone not found"
            .into(),
    });
    object(
        pb::Kind::AiBackend,
        name,
        pb::object::Spec::AiBackend(pb::AiBackend {
            groups: vec![
                pb::AiProviderGroup {
                    providers: vec![
                        provider("local", "llama.llm.svc", &["127.0.1.10:8080"], KEY),
                        gone,
                    ],
                },
                pb::AiProviderGroup {
                    providers: vec![provider(
                        "cloud",
                        "api.openai.com",
                        &[],
                        "sk-tenant-a-CLOUD-KEY",
                    )],
                },
            ],
            ..Default::default()
        }),
    )
}

/// `spec.ai.groups` through the runtime: admitted provider by provider, every key sealed at
/// rest, compiled into a groups route of the providers that resolved, a status saying which
/// did, and a reload that takes the external provider off the egress list withdraws that
/// provider alone.
#[test]
fn a_failover_backend_is_admitted_sealed_compiled_and_narrowed_provider_by_provider() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", "[api.openai.com]");
    let sealer = || crate::seal::Sealer::from_key(&[9u8; 32]);
    let fleet = Fleet::open(
        cfg.clone(),
        Store::open_sealed(&cfg.store_path, sealer()).unwrap(),
    )
    .unwrap();
    let update = full(vec![
        gateway(),
        chat_route("failover"),
        groups_backend("failover"),
    ]);
    let (applied, log) = logged(|| fleet.apply(&key("a"), &update));
    applied.unwrap();
    assert!(
        !log.contains("PROVIDER-KEY") && !log.contains("CLOUD-KEY"),
        "{log}"
    );

    let (snapshot, statuses) = compiled(&fleet);
    let route = &snapshot.ai.tenants["a"].routes["c1/default/failover"];
    let AiRouteTarget::Groups(groups) = &route.target else {
        panic!("a groups route expected: {route:?}")
    };
    let got: Vec<Vec<(&str, &AiAuth)>> = groups
        .iter()
        .map(|g| g.iter().map(|p| (p.name.as_str(), &p.auth)).collect())
        .collect();
    let local_key = AiAuth::Key(ProviderKey(KEY.into()));
    let cloud_key = AiAuth::Key(ProviderKey("sk-tenant-a-CLOUD-KEY".into()));
    assert_eq!(
        got,
        vec![vec![("local", &local_key)], vec![("cloud", &cloud_key)]]
    );
    let st = statuses[&key("a")]
        .iter()
        .find(|s| s.key.kind == crate::model::Kind::AiBackend)
        .unwrap();
    let wire = crate::sync::to_wire(st);
    let refs = &wire.conditions[1];
    assert_eq!(
        (
            refs.r#type.as_str(),
            refs.status.as_str(),
            refs.reason.as_str()
        ),
        ("ResolvedRefs", "False", "BackendNotFound")
    );
    assert!(
        refs.message.starts_with("2 of 3 providers of spec.ai.groups resolved: groups[0].providers[0] (local): host llama.llm.svc resolved to 1 ready endpoint(s)")
            && refs.message.contains("groups[0].providers[1] (gone): not resolved (BackendNotFound: ")
            && refs.message.contains("groups[1].providers[0] (cloud): host api.openai.com:8080 is outside the cluster"),
        "{}",
        refs.message
    );
    assert!(!format!("{statuses:?}").contains("KEY"));

    // Both keys sealed at rest, bound to their providers.
    drop(fleet);
    let file = std::fs::read(&cfg.store_path).unwrap();
    for plain in [&b"PROVIDER-KEY"[..], b"CLOUD-KEY"] {
        assert!(!file.windows(plain.len()).any(|w| w == plain));
    }
    let fleet = Fleet::open(
        cfg.clone(),
        Store::open_sealed(&cfg.store_path, sealer()).unwrap(),
    )
    .unwrap();
    assert_eq!(ai_routes(&fleet), ["c1/default/failover"]);

    // The operator takes api.openai.com off the egress list: the cloud provider leaves, the
    // local one still serves.
    fleet.reconfigure(config(dir.path(), "", "[]")).unwrap();
    let (snapshot, _) = compiled(&fleet);
    let names: Vec<&str> = snapshot.ai.tenants["a"].routes["c1/default/failover"]
        .target
        .providers()
        .into_iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["local"]);
}
