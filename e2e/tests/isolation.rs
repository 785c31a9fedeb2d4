//! Tenant isolation attacks (issue 4, "Proof") on the real components: kube-apiservers, agents,
//! the hub and Envoy. Each attack asserts that the attacker's object (or stream) is refused with
//! a clear reason, and that the victim tenant's requests keep returning 200 throughout: a
//! [`VictimProbe`] polls the victim in a background task from before the attack until after it.
//!
//! An expired certificate signed by the hub's own CA is refused here (with the other hostile
//! streams); a replayed bootstrap token and a removed cluster are in `enrollment.rs`.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    GATEWAY_CLASS, TENANT_A, TENANT_B, condition, gateway, http_route, http_service, listener,
    rule_to, wait_served,
};
use fleetgate_e2e::fleet::{RAW_CLUSTER, TenantSpec};
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::sync_client::{self, ClientTls, SyncSession};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use fleetgate_proto::spoke::v1 as pb;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Tenant B as a generous operator registers it: every `*.example` hostname is in its allowed
/// patterns, so only hostname OWNERSHIP stands between it and tenant A's hostnames.
const TENANT_B_BROAD: TenantSpec<'static> = ("tenant-b", "*.example", "127.0.2.0/24");

// --- the victim probe ---------------------------------------------------------------------------

/// Polls `GET http://<data plane>/` with `Host: <host>` every 20 ms in a background task and
/// records every answer that is not 200 with the expected body.
struct VictimProbe {
    stop: Arc<AtomicBool>,
    /// Requests made so far.
    requests: Arc<AtomicU64>,
    task: JoinHandle<ProbeReport>,
    host: String,
}

#[derive(Debug)]
struct ProbeReport {
    served: u32,
    /// (time since the probe started, what was answered instead)
    failures: Vec<(Duration, String)>,
}

impl VictimProbe {
    fn start(data_plane: SocketAddr, host: &str, path: &str, body: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (h, p, b, s, n) = (
            host.to_string(),
            path.to_string(),
            body.to_string(),
            stop.clone(),
            requests.clone(),
        );
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut report = ProbeReport {
                served: 0,
                failures: Vec::new(),
            };
            while !s.load(Ordering::Relaxed) {
                match fleetgate_e2e::http::get(data_plane, &h, &p, &[]).await {
                    Ok((200, got)) if got == b => report.served += 1,
                    Ok((status, got)) => report
                        .failures
                        .push((started.elapsed(), format!("{status} {got:?}"))),
                    Err(e) => report
                        .failures
                        .push((started.elapsed(), format!("request failed: {e:#}"))),
                }
                n.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            report
        });
        Self {
            stop,
            requests,
            task,
            host: host.to_string(),
        }
    }

    /// Lets the probe make 10 more requests (the victim must still be served after the attack),
    /// stops it, and asserts the victim was served, and only served, throughout.
    async fn assert_always_served(self, during: &str) {
        let target = self.requests.load(Ordering::Relaxed) + 10;
        let deadline = Instant::now() + TIMEOUT;
        while self.requests.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let report = self.task.await.expect("the probe task does not panic");
        assert!(
            report.failures.is_empty(),
            "{during}: the victim {} was not served {} times (of {}): {:?}",
            self.host,
            report.failures.len(),
            report.served as usize + report.failures.len(),
            &report.failures[..report.failures.len().min(10)]
        );
        assert!(
            report.served >= 10,
            "{during}: the probe of {} ran only {} requests",
            self.host,
            report.served
        );
        eprintln!(
            "{during}: victim {} answered 200 to all {} probe requests",
            self.host, report.served
        );
    }
}

// --- tenant objects ------------------------------------------------------------------------------

/// GatewayClass `fleetgate` and Gateway `name` with one HTTP listener on port 80, for `hostname`
/// (`None`: no hostname, the routes' hostnames decide).
fn gateway_yaml(name: &str, hostname: Option<&str>) -> String {
    format!(
        "{GATEWAY_CLASS}---\n{}",
        gateway(name, &listener("http", "HTTP", 80, hostname))
    )
}

/// HTTPRoute `name` on Gateway `web` for `hostname`: one rule per (PathPrefix, Service), port
/// 8080.
fn route_yaml(name: &str, hostname: &str, rules: &[(&str, &str)]) -> String {
    let rules: String = rules
        .iter()
        .map(|(path, svc)| rule_to(Some(path), &[(svc, 1)]))
        .collect();
    http_route(
        "default",
        name,
        &["{name: web}"],
        &[&format!("\"{hostname}\"")],
        &rules,
    )
}

/// Plays node `node-1` (.10 of the tenant's range) with Service `echo` and its echo backend
/// `<tenant>-echo`; then Gateway `web` (listener hostname `listener_host`) and HTTPRoute `app`
/// for `host` -> `echo`, and waits until `host` is served.
async fn deploy_victim(fleet: &Fleet, t: &FleetTenant, listener_host: &str, host: &str) -> Echo {
    let ip = t.create_node("node-1", 10).await.expect("node");
    let echo = t
        .node_port_backend("echo", ip, &format!("{}-echo", t.name))
        .await
        .expect("NodePort Service and echo backend");
    t.cluster
        .apply(&gateway_yaml("web", Some(listener_host)))
        .await
        .expect("apply Gateway");
    t.cluster
        .apply(&route_yaml("app", host, &[("/", "echo")]))
        .await
        .expect("apply HTTPRoute");
    wait_served(fleet, host, "/", &format!("{}-echo", t.name)).await;
    echo
}

/// Waits until `kind/name` in the tenant's cluster has an `Accepted` condition that is False for
/// its current generation (on the object, or on its first parent for a route) whose message
/// contains `words`; returns the condition.
async fn wait_rejected(t: &FleetTenant, kind: &str, name: &str, words: &str) -> Value {
    eventually(TIMEOUT, || async {
        let obj = t
            .cluster
            .get_json(kind, "default", name)
            .await?
            .with_context(|| format!("{kind} {name} missing"))?;
        let conditions = if kind == "Gateway" {
            &obj["status"]["conditions"]
        } else {
            &obj["status"]["parents"][0]["conditions"]
        };
        let accepted = condition(conditions, "Accepted")
            .with_context(|| format!("no Accepted condition yet: {}", obj["status"]))?;
        ensure!(accepted["status"] == "False", "not rejected: {accepted}");
        ensure!(
            accepted["observedGeneration"] == obj["metadata"]["generation"],
            "stale condition: {accepted}"
        );
        let message = accepted["message"].as_str().unwrap_or_default();
        ensure!(
            message.contains(words),
            "the message does not name {words:?}: {accepted}"
        );
        Ok(accepted.clone())
    })
    .await
}

// --- hostnames -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostname_hijacks_are_rejected_and_the_owner_keeps_being_served() {
    let fleet = Fleet::start(&[TENANT_A, TENANT_B_BROAD])
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    // The victim's Gateway claims the wildcard *.a.example, its route app.a.example.
    let _echo_a = deploy_victim(&fleet, a, "*.a.example", "app.a.example").await;
    // The attacker has a working app of its own: its rejections below are per object.
    let ip = b.create_node("node-1", 10).await.unwrap();
    let _echo_b = b
        .node_port_backend("echo", ip, "tenant-b-echo")
        .await
        .unwrap();
    b.cluster.apply(&gateway_yaml("web", None)).await.unwrap();
    b.cluster
        .apply(&route_yaml("own", "app.b.example", &[("/", "echo")]))
        .await
        .unwrap();
    wait_served(&fleet, "app.b.example", "/", "tenant-b-echo").await;

    let probe = VictimProbe::start(fleet.data_plane(), "app.a.example", "/", "tenant-a-echo");
    for (route, host, reason) in [
        // The exact hostname the victim serves.
        ("hijack-exact", "app.a.example", "HostnameConflict"),
        // A name nobody uses yet, but under the victim's wildcard.
        ("hijack-under-wildcard", "new.a.example", "HostnameConflict"),
        // A wildcard over the victim's subtree.
        ("hijack-wider-wildcard", "*.example", "HostnameConflict"),
        // Outside the attacker's allowed patterns altogether.
        ("not-allowed", "app.a.test", "HostnameNotAllowed"),
    ] {
        b.cluster
            .apply(&route_yaml(route, host, &[("/", "echo")]))
            .await
            .unwrap();
        let accepted = wait_rejected(b, "HTTPRoute", route, host).await;
        assert_eq!(accepted["reason"], reason, "{route}: {accepted}");
        eprintln!("{route}: {}", accepted["message"]);
    }
    // The same hijack through a Gateway listener hostname.
    b.cluster
        .apply(&gateway_yaml("steal", Some("app.a.example")))
        .await
        .unwrap();
    let accepted = wait_rejected(b, "Gateway", "steal", "app.a.example").await;
    assert_eq!(accepted["reason"], "HostnameConflict", "{accepted}");

    // Nothing of the attacker's is served for the victim's names; the attacker's own app is.
    for host in ["app.a.example", "new.a.example", "x.a.example"] {
        let (status, body) = fleet.get(host, "/").await.unwrap();
        assert_ne!(
            body, "tenant-b-echo",
            "{host} reached the attacker ({status})"
        );
    }
    wait_served(&fleet, "app.b.example", "/", "tenant-b-echo").await;
    probe.assert_always_served("hostname hijacks").await;
    fleet.assert_no_secrets_in_logs(Secrets::new());
}

// --- endpoints -----------------------------------------------------------------------------------

/// The hub's tenants as [`Fleet::start`] registers them, except that tenant B's raw cluster
/// (used by the raw Sync client) also has 127.0.0.1/32, where the hub and Envoy listen: as a
/// careless operator might register it. Only the "own addresses" rule keeps them out then.
fn tenants_with_loopback_for_b_raw() -> serde_json::Map<String, Value> {
    let cluster = |name: &str, cidrs: &[&str]| json!({"name": name, "endpointCidrs": cidrs, "allowSpecialAddresses": true});
    let mut extra = serde_json::Map::new();
    extra.insert(
        "tenants".into(),
        json!([
            {
                "name": "tenant-a",
                "hostnames": ["*.a.example"],
                "clusters": [cluster("c1", &["127.0.1.0/24"]), cluster(RAW_CLUSTER, &["127.0.1.0/24"])],
            },
            {
                "name": "tenant-b",
                "hostnames": ["*.b.example"],
                "clusters": [
                    cluster("c1", &["127.0.2.0/24"]),
                    cluster(RAW_CLUSTER, &["127.0.2.0/24", "127.0.0.1/32"]),
                ],
            },
        ]),
    );
    extra
}

fn object(kind: pb::Kind, name: &str, spec: pb::object::Spec) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: kind as i32,
            namespace: "default".into(),
            name: name.into(),
        }),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(spec),
    }
}

/// Gateway `name`: one HTTP listener on port 80 without a hostname.
fn wire_gateway(name: &str) -> pb::Object {
    object(
        pb::Kind::Gateway,
        name,
        pb::object::Spec::Gateway(pb::Gateway {
            gateway_class_name: "fleetgate".into(),
            listeners: vec![pb::Listener {
                name: "http".into(),
                protocol: "HTTP".into(),
                port: 80,
                hostname: String::new(),
                allowed_routes: None,
                tls: None,
            }],
            allowed_listeners: None,
            ..Default::default()
        }),
    )
}

/// HTTPRoute `name` on Gateway `gateway` for `hostname`, PathPrefix `path` -> one backend with
/// `endpoint`.
fn wire_route(
    name: &str,
    gateway: &str,
    hostname: &str,
    path: &str,
    endpoint: SocketAddr,
) -> pb::Object {
    object(
        pb::Kind::HttpRoute,
        name,
        pb::object::Spec::HttpRoute(pb::HttpRoute {
            parent_refs: vec![pb::ParentRef {
                namespace: "default".into(),
                name: gateway.into(),
                ..Default::default()
            }],
            hostnames: vec![hostname.into()],
            rules: vec![pb::HttpRouteRule {
                matches: vec![pb::HttpRouteMatch {
                    path: Some(pb::PathMatch {
                        r#type: pb::path_match::Type::PathPrefix as i32,
                        value: path.into(),
                    }),
                    ..Default::default()
                }],
                backends: vec![pb::Backend {
                    namespace: "default".into(),
                    name: "svc".into(),
                    port: 8080,
                    weight: 1,
                    endpoints: vec![pb::Endpoint {
                        address: endpoint.ip().to_string(),
                        port: u32::from(endpoint.port()),
                        ready: true,
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }),
    )
}

fn update(revision: u64, full_state: bool, upserts: Vec<pb::Object>) -> pb::AgentMessage {
    pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Update(pb::Update {
            traceparent: String::new(),
            revision,
            full_state,
            upserts,
            deletes: vec![],
        })),
    }
}

/// Reads the raw session's messages until a Status carries an Accepted condition for every
/// route in `names` (on its first parent); returns (name, status, reason, message) of each.
async fn route_verdicts(
    session: &mut SyncSession,
    names: &[&str],
) -> Vec<(String, String, String, String)> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = session
            .next(left)
            .await
            .expect("a Status from the hub in time")
            .expect("the stream stays open");
        let Some(pb::HubMessage {
            kind: Some(pb::hub_message::Kind::Status(status)),
        }) = msg
        else {
            continue;
        };
        let verdicts: Vec<_> = names
            .iter()
            .filter_map(|n| {
                let o = status
                    .objects
                    .iter()
                    .find(|o| o.r#ref.as_ref().is_some_and(|r| r.name == *n))?;
                let c = o
                    .parents
                    .first()?
                    .conditions
                    .iter()
                    .find(|c| c.r#type == "Accepted")?;
                Some((
                    n.to_string(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ))
            })
            .collect();
        if verdicts.len() == names.len() {
            return verdicts;
        }
    }
}

/// Each `(route, status, reason, message)`: the routes named in `admitted` are Accepted, every
/// other one is refused as an address of the hub or the data plane itself.
fn assert_own_address_verdicts(verdicts: &[(String, String, String, String)], admitted: &[&str]) {
    for (name, status, reason, message) in verdicts {
        eprintln!("{name}: {status} {reason}: {message}");
        if admitted.contains(&name.as_str()) {
            assert_eq!(status, "True", "{name}: {reason} {message}");
        } else {
            assert_eq!(
                (status.as_str(), reason.as_str()),
                ("False", "EndpointNotAllowed"),
                "{name}: {message}"
            );
            assert!(
                message.contains("the hub or the data plane itself"),
                "{name}: {message}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_outside_the_senders_networks_are_rejected() {
    let fleet = Fleet::start_with(&[TENANT_A, TENANT_B], tenants_with_loopback_for_b_raw())
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let _echo_a = deploy_victim(&fleet, a, "app.a.example", "app.a.example").await;
    let victim_node_port = a
        .cluster
        .get_json("Service", "default", "echo")
        .await
        .unwrap()
        .expect("the victim's Service")["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a nodePort") as u16;
    b.cluster.apply(&gateway_yaml("web", None)).await.unwrap();

    let probe = VictimProbe::start(fleet.data_plane(), "app.a.example", "/", "tenant-a-echo");
    // Through the attacker's real agent: it plays a Node at the address (the agent sends node
    // address x nodePort), one at a time, and routes to a NodePort Service there.
    let attacks = [
        (
            "evil-loopback",
            "127.0.0.1".to_string(),
            30101,
            "to-loopback",
        ),
        (
            "evil-metadata",
            "169.254.169.254".to_string(),
            30102,
            "to-metadata",
        ),
        // The victim's own node and nodePort: its backend, if this were admitted.
        (
            "evil-neighbour",
            a.ip(10).to_string(),
            victim_node_port,
            "to-neighbour",
        ),
    ];
    for (node, ip, node_port, route) in &attacks {
        b.cluster.create_node(node, ip).await.unwrap();
        b.cluster
            .apply(&http_service("default", route, *node_port))
            .await
            .unwrap();
        b.cluster
            .apply(&route_yaml(
                route,
                &format!("{route}.b.example"),
                &[("/", route)],
            ))
            .await
            .unwrap();
        let accepted = wait_rejected(b, "HTTPRoute", route, &format!("{ip}:{node_port}")).await;
        assert_eq!(accepted["reason"], "EndpointNotAllowed", "{accepted}");
        let message = accepted["message"].as_str().unwrap();
        assert!(
            message.contains("127.0.2.0/24"),
            "the message should name the allowed networks: {message}"
        );
        eprintln!("{route}: {message}");
        b.cluster.delete("Node", "", node).await.unwrap();
    }

    // Through a raw Sync client of the attacker's raw cluster, whose networks include 127.0.0.1:
    // the hub's agent and xDS ports, the data plane's port, and any port of the data plane's
    // advertised address (127.0.0.1 here) are refused by the "own addresses" rule (the
    // networks rule would say "outside the networks"); an endpoint in the cluster's own network
    // is admitted, so the stream itself is fine.
    let identity = fleet
        .hub
        .issue_agent_identity("tenant-b", RAW_CLUSTER)
        .unwrap();
    let tls = ClientTls::from_identity_dir(&identity).unwrap();
    let mut client = sync_client::connect(fleet.hub.agent_addr(), &tls)
        .await
        .unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let unused_port = fleetgate_e2e::ports::free_addr().unwrap().port();
    let own = [
        ("to-hub-agent", fleet.hub.agent_addr()),
        ("to-hub-xds", fleet.hub.xds_addr()),
        ("to-data-plane", fleet.data_plane()),
        ("to-data-plane-address", loopback(unused_port)),
        ("control", SocketAddr::from(([127, 0, 2, 10], unused_port))),
    ];
    let mut upserts = vec![wire_gateway("raw")];
    upserts.extend(
        own.iter()
            .map(|(n, addr)| wire_route(n, "raw", &format!("{n}.b.example"), "/", *addr)),
    );
    assert!(session.send(update(1, true, upserts)).await);
    let names: Vec<&str> = own.iter().map(|(n, _)| *n).collect();
    let verdicts = route_verdicts(&mut session, &names).await;
    assert_own_address_verdicts(&verdicts, &["control"]);
    drop(session);
    probe
        .assert_always_served("endpoint attacks (agent and raw client)")
        .await;
}

/// Tenant B's raw cluster registered as carelessly as possible: every IPv4 and IPv6 address,
/// special addresses allowed. Only "where does this endpoint really connect" stands between it
/// and the hub's own listeners (issue 8).
fn tenants_with_everything_for_b_raw() -> serde_json::Map<String, Value> {
    let mut extra = tenants_with_loopback_for_b_raw();
    extra["tenants"][1]["clusters"][1]["endpointCidrs"] = json!(["0.0.0.0/0", "::/0"]);
    // The advertised address elsewhere, so that the listeners themselves (not the whole of
    // 127.0.0.1, which the data plane's address would reserve) are what the rule must find.
    extra.insert("dataPlane".into(), json!({"address": "127.0.0.254"}));
    extra
}

/// Issue 8, end to end through Envoy: every spelling of the hub's, Envoy's and the admin
/// interface's own addresses is refused, and none reaches the data plane, while an echo of the
/// raw cluster's own network is served under two spellings (plain and IPv4-mapped). The
/// refused spellings are real: from this host a plain TCP connect through `0.0.0.0` and
/// `::ffff:127.0.0.1` reaches the hub's listener (the kernel maps them to loopback), so only the
/// refusal keeps them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_the_hubs_own_addresses_is_refused() {
    let fleet = Fleet::start_with(&[TENANT_A, TENANT_B], tenants_with_everything_for_b_raw())
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let _echo_a = deploy_victim(&fleet, a, "app.a.example", "app.a.example").await;
    let probe = VictimProbe::start(fleet.data_plane(), "app.a.example", "/", "tenant-a-echo");
    let echo = Echo::start("tenant-b-raw-echo", [127, 0, 2, 10].into())
        .await
        .unwrap();
    let xds = fleet.hub.xds_addr().port();
    for spelling in ["0.0.0.0", "::ffff:127.0.0.1", "::ffff:0.0.0.0"] {
        let target = SocketAddr::new(spelling.parse().unwrap(), xds);
        tokio::net::TcpStream::connect(target)
            .await
            .unwrap_or_else(|e| panic!("{target} should reach the hub's xDS listener: {e}"));
    }

    let identity = fleet
        .hub
        .issue_agent_identity("tenant-b", RAW_CLUSTER)
        .unwrap();
    let tls = ClientTls::from_identity_dir(&identity).unwrap();
    let mut client = sync_client::connect(fleet.hub.agent_addr(), &tls)
        .await
        .unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    let at = |ip: &str, port: u16| SocketAddr::new(ip.parse().unwrap(), port);
    let agent = fleet.hub.agent_addr().port();
    let data_plane = fleet.data_plane().port();
    let admin = fleet.envoy.admin_addr();
    // (route, endpoint, admitted)
    let cases: Vec<(&str, SocketAddr, bool)> = vec![
        // Controls: the raw cluster's own network, written plainly and IPv4-mapped.
        ("control", echo.addr(), true),
        ("control-mapped", at("::ffff:127.0.2.10", echo.port()), true),
        // 1. the unspecified address is this host's loopback
        ("xds-unspecified", at("0.0.0.0", xds), false),
        ("agent-unspecified", at("0.0.0.0", agent), false),
        ("data-plane-unspecified", at("0.0.0.0", data_plane), false),
        ("xds-mapped-unspecified", at("::ffff:0.0.0.0", xds), false),
        // 3. IPv6 forms that embed 127.0.0.1
        ("xds-mapped", at("::ffff:127.0.0.1", xds), false),
        ("xds-compatible", at("::127.0.0.1", xds), false),
        ("xds-nat64", at("64:ff9b::7f00:1", xds), false),
        ("xds-nat64-local", at("64:ff9b:1::7f00:1", xds), false),
        ("xds-6to4", at("2002:7f00:1::", xds), false),
        (
            "xds-teredo",
            at("2001:0:4136:e378:8000:63bf:80ff:fffe", xds),
            false,
        ),
        // Envoy's admin interface (dataPlane.admin), as written and through 0.0.0.0
        ("envoy-admin", admin, false),
        (
            "envoy-admin-unspecified",
            at("0.0.0.0", admin.port()),
            false,
        ),
        (
            "envoy-admin-mapped",
            at("::ffff:127.0.0.1", admin.port()),
            false,
        ),
    ];
    let mut upserts = vec![wire_gateway("raw")];
    upserts.extend(
        cases
            .iter()
            .map(|(n, addr, _)| wire_route(n, "raw", &format!("{n}.b.example"), "/", *addr)),
    );
    assert!(session.send(update(1, true, upserts)).await);
    let names: Vec<&str> = cases.iter().map(|(n, _, _)| *n).collect();
    let verdicts = route_verdicts(&mut session, &names).await;
    let admitted: Vec<&str> = cases.iter().filter(|c| c.2).map(|c| c.0).collect();
    assert_own_address_verdicts(&verdicts, &admitted);
    // Through Envoy: the controls reach the echo; a refused route is not in the data plane.
    for (name, _, admitted) in &cases {
        let host = format!("{name}.b.example");
        if *admitted {
            wait_served(&fleet, &host, "/", "tenant-b-raw-echo").await;
        } else {
            let (code, body) = fleet.get(&host, "/").await.unwrap();
            assert_eq!(code, 404, "{name}: {body}");
        }
    }
    assert!(echo.requests() >= 2, "the controls reached the echo server");
    drop(session);
    probe
        .assert_always_served("every spelling of the hub's own addresses")
        .await;
}

// --- the stream ----------------------------------------------------------------------------------

/// A Gateway object whose encoding is larger than `bytes`.
fn oversized_gateway(bytes: usize) -> pb::Object {
    let mut g = wire_gateway("huge");
    if let Some(pb::object::Spec::Gateway(gw)) = &mut g.spec {
        gw.listeners[0].name = "x".repeat(bytes);
    }
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_streams_are_refused_and_the_hub_keeps_serving() {
    let mut fleet = Fleet::start(&[TENANT_A, TENANT_B]).await.expect("fleet");
    let _echo = deploy_victim(
        &fleet,
        fleet.tenant("tenant-a"),
        "app.a.example",
        "app.a.example",
    )
    .await;
    let probe = VictimProbe::start(fleet.data_plane(), "app.a.example", "/", "tenant-a-echo");
    let hub_addr = fleet.hub.agent_addr();
    let raw_identity = fleet
        .hub
        .issue_agent_identity("tenant-b", RAW_CLUSTER)
        .unwrap();
    let good = ClientTls::from_identity_dir(&raw_identity).unwrap();

    // Control: the raw client with a hub-issued identity is answered, so a refusal below is the
    // hub's doing and not a broken client.
    let mut client = sync_client::connect(hub_addr, &good).await.unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    assert!(session.send(update(1, true, vec![])).await);
    let answer = session.next_verdict(TIMEOUT).await.unwrap();
    assert!(
        matches!(
            &answer,
            Ok(Some(pb::HubMessage {
                kind: Some(pb::hub_message::Kind::Ack(pb::Ack { revision: 1, .. }))
            }))
        ),
        "the hub did not Ack an empty full state: {answer:?}"
    );
    drop(session);

    // A payload naming another cluster than the certificate's (the victim's cluster name, which
    // tenant B's own cluster shares) is refused and logged. Tenants are never named on the wire:
    // the hub takes the tenant from the certificate only.
    let mut client = sync_client::connect(hub_addr, &good).await.unwrap();
    let refused = match SyncSession::open(&mut client, "c1").await {
        Err(status) => status,
        Ok(mut session) => {
            session.send(update(1, true, vec![])).await;
            match session.next_verdict(TIMEOUT).await.unwrap() {
                Err(status) => status,
                other => panic!("the hub accepted a Hello naming another cluster: {other:?}"),
            }
        }
    };
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    assert!(
        refused.message().contains("\"c1\"") && refused.message().contains(RAW_CLUSTER),
        "the refusal should name both clusters: {}",
        refused.message()
    );
    eventually(TIMEOUT, || {
        let log = fleet.hub.process().log();
        async move {
            ensure!(
                log.contains("agent named another cluster than its certificate"),
                "not logged yet"
            );
            Ok(())
        }
    })
    .await;

    // A client certificate from a CA the hub does not know is refused: at the handshake, or at
    // the latest on the first RPC.
    let foreign_ca = fleetgate_e2e::pki::Ca::new("not-the-hub").unwrap();
    let mut foreign_leaf = fleetgate_e2e::pki::Leaf::client("intruder", &[]);
    foreign_leaf.uri_sans = vec![format!(
        "spiffe://fleetgate/tenant/tenant-a/cluster/{RAW_CLUSTER}"
    )];
    let foreign = foreign_ca.issue(&foreign_leaf).unwrap();
    let mut secrets = Secrets::new();
    secrets.add_key_pem("the foreign certificate's key", &foreign.key_pem);
    let foreign_tls = ClientTls {
        ca_pem: good.ca_pem.clone(),
        identity: Some((foreign.cert_pem, foreign.key_pem)),
    };
    let refused = refusal(hub_addr, &foreign_tls, "a foreign certificate").await;
    eprintln!("foreign certificate refused: {refused}");
    // The hub's side: the handshake refusal is logged with rustls' reason.
    hub_logged_refusal(&mut fleet, "invalid peer certificate: UnknownIssuer").await;

    // An expired certificate signed by the hub's own CA, naming tenant B's raw cluster, is
    // refused likewise (certificates are checked for validity at every handshake).
    let pki = fleet.hub.pki_dir();
    let hub_ca = fleetgate_e2e::pki::Ca::from_pem(
        &std::fs::read_to_string(pki.join("ca.crt")).unwrap(),
        &std::fs::read_to_string(pki.join("ca.key")).unwrap(),
    )
    .unwrap();
    let mut expired_leaf = fleetgate_e2e::pki::Leaf::client("tenant-b-raw", &[]);
    expired_leaf.uri_sans = vec![format!(
        "spiffe://fleetgate/tenant/tenant-b/cluster/{RAW_CLUSTER}"
    )];
    expired_leaf.expired = true;
    let expired = hub_ca.issue(&expired_leaf).unwrap();
    secrets.add_key_pem("the expired certificate's key", &expired.key_pem);
    let expired_tls = ClientTls {
        ca_pem: good.ca_pem.clone(),
        identity: Some((expired.cert_pem, expired.key_pem)),
    };
    let refused = refusal(hub_addr, &expired_tls, "an expired certificate").await;
    eprintln!("expired certificate refused: {refused}");
    hub_logged_refusal(&mut fleet, "invalid peer certificate: certificate expired").await;

    // An Update larger than the 16 MiB limit is refused with an error that says so.
    let mut client = sync_client::connect(hub_addr, &good).await.unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    let huge = oversized_gateway(fleetgate_proto::MAX_MESSAGE_BYTES + 1024);
    session.send(update(1, true, vec![huge])).await;
    let status = match session.next_verdict(TIMEOUT).await.unwrap() {
        Err(status) => status,
        other => panic!("an oversized Update was not refused with an error: {other:?}"),
    };
    eprintln!("oversized Update refused: {status}");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(
        status.message().contains("message length too large"),
        "the refusal does not say what is wrong: {status}"
    );
    drop(session);

    // The hub survived and still serves the others.
    assert!(
        fleet.hub.is_running(),
        "the hub died: {}",
        fleet.hub.process().log_tail(40)
    );
    fleet.ensure_running().unwrap();
    probe.assert_always_served("hostile streams").await;
    // No log at debug level shows a key: the hub's, the agents', the hostile clients'.
    fleet.assert_no_secrets_in_logs(secrets);
}

/// What the hub logs (at warn, with `reason=...`) when it refuses a TLS handshake on its agent
/// port: `fleetgate_hub::sync::handshake::REFUSED`.
const HANDSHAKE_REFUSED: &str = "refused a TLS handshake on the agent port";

/// Waits until the hub's log has a refused TLS handshake whose reason contains `reason`.
async fn hub_logged_refusal(fleet: &mut Fleet, reason: &str) {
    let want = format!("reason={reason}");
    let log = fleet.hub.process().log_path().to_path_buf();
    eventually(TIMEOUT, || {
        let log = without_colors(&std::fs::read_to_string(&log).unwrap_or_default());
        let want = want.clone();
        async move {
            ensure!(
                log.lines()
                    .any(|l| l.contains(HANDSHAKE_REFUSED) && l.contains(&want)),
                "the hub's log has no {HANDSHAKE_REFUSED:?} line with {want:?} yet"
            );
            Ok(())
        }
    })
    .await;
}

/// `log` without ANSI colour sequences (`ESC [ ... m`), as the hub writes them around fields.
fn without_colors(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Opens a Sync stream with `tls` and sends an empty full state; returns how the hub refused it
/// (at the handshake, on the first RPC, or on the stream). Panics if the hub answers.
async fn refusal(hub_addr: SocketAddr, tls: &ClientTls, what: &str) -> String {
    match sync_client::connect(hub_addr, tls).await {
        Err(e) => format!("connect: {e:#}"),
        Ok(mut client) => match SyncSession::open(&mut client, RAW_CLUSTER).await {
            Err(status) => format!("open: {status}"),
            Ok(mut session) => {
                session.send(update(1, true, vec![])).await;
                match session.next_verdict(TIMEOUT).await {
                    Ok(Err(status)) => format!("stream: {status}"),
                    Ok(Ok(None)) => "stream closed".to_string(),
                    Ok(Ok(Some(msg))) => panic!("the hub answered {what}: {msg:?}"),
                    Err(e) => panic!("the hub neither refused nor answered {what}: {e:#}"),
                }
            }
        },
    }
}

// --- a flood -------------------------------------------------------------------------------------

/// Routes in the attacker's flood: with its Gateway, the 10,000 objects the hub allows a cluster
/// by default.
const FLOOD_ROUTES: usize = 9_999;
/// Routes re-sent (with a changed path) in each further flood Update.
const FLOOD_BATCH: usize = 500;
/// How many times (at least) the victim changes its route during the flood.
const VICTIM_UPDATES: usize = 3;
/// The bound on each victim route update during the flood (from the change in the victim's
/// cluster until Envoy serves it) with release binaries: issue 4's 2 s, asserted by `make bench`
/// (`FLEETGATE_PROFILE=release`); measured 432 to 1,208 ms (docs/benchmarks.md, "Isolation").
/// docs/security.md states the same bounds.
const RELEASE_BOUND: Duration = Duration::from_secs(2);
/// The same bound with debug binaries (`make test`): 60 s. A debug hub takes about a second to
/// store and as long to compile 10,000 routes per flood Update, and Envoy re-applies the shared
/// route configuration (10,000 virtual hosts) for every change, so on a loaded 2-core machine a
/// victim update waits up to some 25 s; the debug bound only proves the victim is not starved.
const DEBUG_BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_tenant_does_not_delay_another() {
    // The default quotas would cut the flood to 2,000 routes and 20 Updates/s (docs/limits.md);
    // the operator raised them for tenant-b, so the whole flood reaches the data plane and the
    // victim competes with it there.
    let quotas = json!({"tenants": {"tenant-b": {
        "routes": FLOOD_ROUTES,
        "hostnames": FLOOD_ROUTES,
        "updatesPerSecond": 10_000,
        "updateBurst": 10_000,
    }}});
    let hub_extra = [("quotas".to_string(), quotas)].into_iter().collect();
    let fleet = Fleet::start_with(&[TENANT_A, TENANT_B], hub_extra)
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let _echo = deploy_victim(&fleet, a, "app.a.example", "app.a.example").await;
    // The victim's updates send a new path to this second backend, so that being served means
    // the update is on the data plane (the "/" rule would answer any path).
    let _echo2 = a
        .node_port_backend("echo2", a.ip(10), "tenant-a-echo2")
        .await
        .unwrap();

    // The attacker's raw cluster floods: 9,999 routes in its first Update...
    let identity = fleet
        .hub
        .issue_agent_identity("tenant-b", RAW_CLUSTER)
        .unwrap();
    let tls = ClientTls::from_identity_dir(&identity).unwrap();
    let mut client = sync_client::connect(fleet.hub.agent_addr(), &tls)
        .await
        .unwrap();
    let mut session = SyncSession::open(&mut client, RAW_CLUSTER).await.unwrap();
    let backend = SocketAddr::from(([127, 0, 2, 10], 8080));
    let flood = move |path: &str, range: std::ops::Range<usize>| -> Vec<pb::Object> {
        range
            .map(|i| {
                wire_route(
                    &format!("r{i}"),
                    "flood",
                    &format!("r{i}.b.example"),
                    path,
                    backend,
                )
            })
            .collect()
    };
    let mut first = vec![wire_gateway("flood")];
    first.extend(flood("/", 0..FLOOD_ROUTES));
    let started = Instant::now();
    assert!(session.send(update(1, true, first)).await);
    let verdict = session
        .next_verdict(Duration::from_secs(120))
        .await
        .unwrap();
    assert!(
        matches!(
            verdict,
            Ok(Some(pb::HubMessage {
                kind: Some(pb::hub_message::Kind::Ack(_))
            }))
        ),
        "the flood's first Update: {verdict:?}"
    );
    eprintln!("{FLOOD_ROUTES} routes acked after {:?}", started.elapsed());
    // The flood is on the data plane (its backend does not listen: 503, not 404).
    let last = format!("r{}.b.example", FLOOD_ROUTES - 1);
    eventually(TIMEOUT, || async {
        let (status, _) = fleet.get(&last, "/").await?;
        ensure!(
            status != 404,
            "{last}: {status}, the flood is not served yet"
        );
        Ok(())
    })
    .await;

    // ...then keeps re-sending batches of them, changed, without waiting for the hub: the
    // stream's queue stays full, so the hub always has the next flood Update to apply.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let flood_started = Instant::now();
    let sender = {
        let (stop, tx) = (stop.clone(), session.sender());
        tokio::spawn(async move {
            let mut revision = 2u64;
            while !stop.load(Ordering::Relaxed) {
                let from = (revision as usize * FLOOD_BATCH) % FLOOD_ROUTES;
                let to = (from + FLOOD_BATCH).min(FLOOD_ROUTES);
                let path = format!("/p{revision}");
                if tx
                    .send(update(revision, false, flood(&path, from..to)))
                    .await
                    .is_err()
                {
                    break;
                }
                revision += 1;
            }
        })
    };
    let reader = {
        let (stop, acked) = (stop.clone(), acked.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match session.next(Duration::from_secs(1)).await {
                    Err(_) => continue, // nothing within a second; check `stop` again
                    Ok(Ok(Some(pb::HubMessage {
                        kind: Some(pb::hub_message::Kind::Ack(_)),
                    }))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(Some(pb::HubMessage {
                        kind: Some(pb::hub_message::Kind::Status(_)),
                    }))) => {}
                    other => panic!("the flood stream: {other:?}"),
                }
            }
        })
    };
    eventually(TIMEOUT, || {
        let n = acked.load(Ordering::Relaxed);
        async move {
            ensure!(n >= 2, "the flood has not started ({n} Updates acked)");
            Ok(())
        }
    })
    .await;

    // The victim changes its route (a new rule each time) in its own cluster while the flood
    // runs, several times, so that its changes meet flood Updates being applied and compiled.
    let probe = VictimProbe::start(fleet.data_plane(), "app.a.example", "/", "tenant-a-echo");
    let acked_before = acked.load(Ordering::Relaxed);
    let mut latencies = Vec::new();
    // At least VICTIM_UPDATES changes, and more until a flood Update was applied meanwhile.
    for n in 2.. {
        let overlapped = acked.load(Ordering::Relaxed) > acked_before;
        if n > VICTIM_UPDATES + 1 && (overlapped || n > 4 * VICTIM_UPDATES) {
            break;
        }
        let path = format!("/v{n}");
        let t0 = Instant::now();
        a.cluster
            .apply(&route_yaml(
                "app",
                "app.a.example",
                &[("/", "echo"), (&path, "echo2")],
            ))
            .await
            .unwrap();
        loop {
            let (status, body) = fleet.get("app.a.example", &path).await.unwrap();
            if status == 200 && body == "tenant-a-echo2" {
                latencies.push(t0.elapsed());
                break;
            }
            assert!(
                t0.elapsed() < DEBUG_BOUND,
                "the victim's update {n} was not served within {DEBUG_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let flood_updates_meanwhile = acked.load(Ordering::Relaxed) - acked_before;
    probe.assert_always_served("a flood of routes").await;
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("the flood reader does not panic");
    sender.abort();
    let flood_rate = acked.load(Ordering::Relaxed) as f64 / flood_started.elapsed().as_secs_f64();
    let worst = *latencies
        .iter()
        .max()
        .expect("victim updates were measured");
    let ms: Vec<u128> = latencies.iter().map(|d| d.as_millis()).collect();
    eprintln!(
        "BENCH isolation_flood victim_update_served_ms={ms:?} worst_ms={} flood_updates_acked_meanwhile={flood_updates_meanwhile} flood_updates_per_s={flood_rate:.1} (flood: {FLOOD_ROUTES} routes, then Updates of {FLOOD_BATCH} changed routes queued back to back)",
        worst.as_millis()
    );
    assert!(
        flood_updates_meanwhile >= 1,
        "no flood Update was applied while the victim updated: the flood did not run concurrently"
    );
    // Issue 4: "served in under 2 s", asserted with the release binaries (`make bench`); with
    // debug binaries (`make test`) within DEBUG_BOUND.
    let bound = if std::env::var("FLEETGATE_PROFILE").as_deref() == Ok("release") {
        RELEASE_BOUND
    } else {
        DEBUG_BOUND
    };
    assert!(
        worst < bound,
        "a victim route update took {worst:?} to be served during the flood (bound {bound:?}): {ms:?}"
    );
}

// --- own addresses -------------------------------------------------------------------------------

/// Issue 10: tenants A and B each apply a Gateway with a hostname-less HTTP listener and a
/// hostname-less HTTPRoute. Each is served on its own address (read from the Gateway's
/// `status.addresses`), and a request to one tenant's address reaches only that tenant's
/// backend whatever Host it names: the other tenant's hostnames, arbitrary ones, an address.
/// A's traffic is probed from before B applies until after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostname_less_gateways_are_served_on_their_own_address_only() {
    use fleetgate_e2e::own_address::{
        free_addresses, gateway_address, open_gateway_and_route, pools, wait_served_at,
    };
    let ips = free_addresses(2, 80);
    let fleet = Fleet::start_with(&[TENANT_A, TENANT_B], pools(&ips, 80, 80))
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let mut echoes = Vec::new();
    for t in [a, b] {
        let ip = t.create_node("node-1", 10).await.unwrap();
        echoes.push(
            t.node_port_backend("echo", ip, &format!("{}-echo", t.name))
                .await
                .unwrap(),
        );
    }
    a.cluster
        .apply(&open_gateway_and_route("open", 80, "echo"))
        .await
        .unwrap();
    let a_addr = SocketAddr::new(gateway_address(a, "open").await, 80);
    wait_served_at(a_addr, "anything.example", "tenant-a-echo").await;
    let probe = VictimProbe::start(a_addr, "app.b.example", "/", "tenant-a-echo");

    b.cluster
        .apply(&open_gateway_and_route("open", 80, "echo"))
        .await
        .unwrap();
    let b_addr = SocketAddr::new(gateway_address(b, "open").await, 80);
    assert_ne!(a_addr, b_addr, "two tenants on one address");
    wait_served_at(b_addr, "anything.example", "tenant-b-echo").await;

    let hosts = [
        "app.a.example",
        "app.b.example",
        "x.b.example",
        "evil.example",
        "localhost",
        &a_addr.ip().to_string(),
        &b_addr.ip().to_string(),
    ];
    for (addr, want) in [(a_addr, "tenant-a-echo"), (b_addr, "tenant-b-echo")] {
        for host in hosts {
            let (status, body) = fleetgate_e2e::http::get(addr, host, "/", &[])
                .await
                .unwrap();
            assert_eq!(
                (status, body.as_str()),
                (200, want),
                "{addr} with Host {host}"
            );
        }
    }
    // The shared data plane serves neither: its catch-all answers 404.
    for host in ["app.a.example", "app.b.example", "anything.example"] {
        let (status, body) = fleet.get(host, "/").await.unwrap();
        assert_eq!(status, 404, "shared port, Host {host}: {body:?}");
    }
    probe
        .assert_always_served("tenant b's hostname-less Gateway")
        .await;
}
