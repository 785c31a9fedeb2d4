//! Ingress (`networking.k8s.io/v1`) end to end on real components: an Ingress of a fleetgate
//! IngressClass in a tenant API server -> agent (translated into a Gateway + HTTPRoutes) ->
//! hub (the usual admission) -> Envoy -> echo backends; `status.loadBalancer` and Warning Events
//! back on the Ingress. See docs/ingress.md.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{TENANT_A, TENANT_B, node_port_service, wait_served};
use fleetgate_e2e::pki::{Ca, Leaf};
use fleetgate_e2e::tls::https_get;
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;

/// The IngressClass fleetgate claims (controller fleetgate.dev/hub).
const INGRESS_CLASS: &str = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: fleetgate\nspec:\n  controller: fleetgate.dev/hub\n";

/// A NodePort Service `default/name` (port 8080, named `p`) and an echo backend answering
/// `<tenant>-<name>` on the node's nodePort.
async fn service(t: &FleetTenant, node: IpAddr, name: &str) -> Echo {
    let node_port = fleetgate_e2e::ports::free_port_in(node, 30000..=32767).expect("free port");
    t.cluster
        .apply(&node_port_service(
            "default", name, "TCP", 8080, node_port, None,
        ))
        .await
        .expect("apply Service");
    Echo::start_at(
        &format!("{}-{name}", t.name),
        SocketAddr::new(node, node_port),
    )
    .await
    .expect("echo backend")
}

/// Ingress `default/name` of class `class` with the YAML `spec` body (indented by 2).
fn ingress(name: &str, class: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  ingressClassName: {class}\n{spec}"
    )
}

/// Ingress `default/name` of class fleetgate: every path of `host` to Service `svc` port 8080.
fn simple_ingress(name: &str, host: &str, svc: &str) -> String {
    ingress(
        name,
        "fleetgate",
        &format!(
            "  rules:\n  - host: {host}\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: {svc}, port: {{number: 8080}}}}}}}}\n"
        ),
    )
}

/// `status.loadBalancer.ingress[*].ip` of Ingress `default/name`.
async fn load_balancer_ips(t: &FleetTenant, name: &str) -> anyhow::Result<Vec<String>> {
    let ing = t
        .cluster
        .get_json("Ingress", "default", name)
        .await?
        .with_context(|| format!("Ingress {name} missing"))?;
    Ok(ing["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect())
}

/// The messages of the Warning Events on Ingress `default/name`.
async fn warnings(t: &FleetTenant, name: &str) -> anyhow::Result<Vec<String>> {
    let events = Api::<Event>::namespaced(t.cluster.admin(), "default")
        .list(&ListParams::default())
        .await?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("Ingress")
                && e.involved_object.name.as_deref() == Some(name)
                && e.type_.as_deref() == Some("Warning")
        })
        .filter_map(|e| e.message)
        .collect())
}

/// Waits until Ingress `name` has a Warning Event whose message contains `want`.
async fn wait_warning(t: &FleetTenant, name: &str, want: &str) -> String {
    eventually(TIMEOUT, || async {
        let w = warnings(t, name).await?;
        w.iter()
            .find(|m| m.contains(want))
            .cloned()
            .with_context(|| format!("no Warning Event on Ingress {name} saying {want:?}: {w:?}"))
    })
    .await
}

async fn expect(fleet: &Fleet, host: &str, path: &str, want: (u16, &str)) {
    let (status, body) = fleet.get(host, path).await.expect("request");
    assert_eq!((status, body.as_str()), want, "{host}{path}");
}

/// Two hosts, Prefix, Exact and a defaultBackend, backends by port number and by port name,
/// TLS from a Secret, the address in `status.loadBalancer`; an Ingress of another class is left
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_hosts_paths_default_backend_and_tls_are_served() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.expect("node");
    let _api = service(a, node, "api").await;
    let _web = service(a, node, "web").await;
    let _fallback = service(a, node, "fallback").await;
    let ca = Ca::new("tenant-a-ca").unwrap();
    let cert = ca
        .issue(&Leaf::server("shop", &["shop.a.example"]))
        .unwrap();
    a.cluster.apply(INGRESS_CLASS).await.expect("IngressClass");
    a.cluster
        .apply(&cert.secret_yaml("default", "shop-tls"))
        .await
        .expect("Secret");
    // Another controller's Ingress for a host tenant A owns: fleetgate leaves it alone.
    a.cluster
        .apply(&ingress(
            "nginx-owned",
            "nginx",
            "  rules:\n  - host: other.a.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}\n",
        ))
        .await
        .expect("nginx Ingress");
    a.cluster
        .apply(&ingress(
            "shop",
            "fleetgate",
            "  defaultBackend: {service: {name: fallback, port: {number: 8080}}}\n\
             \x20 tls:\n  - hosts: [shop.a.example]\n    secretName: shop-tls\n\
             \x20 rules:\n\
             \x20 - host: shop.a.example\n    http:\n      paths:\n\
             \x20     - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}\n\
             \x20     - {path: /login, pathType: Exact, backend: {service: {name: web, port: {name: p}}}}\n\
             \x20 - host: blog.a.example\n    http:\n      paths:\n\
             \x20     - {path: /, pathType: ImplementationSpecific, backend: {service: {name: web, port: {name: p}}}}\n",
        ))
        .await
        .expect("Ingress");

    wait_served(&fleet, "shop.a.example", "/api/items", "tenant-a-api").await;
    // Prefix is element-wise; Exact only the path itself; the rest to the defaultBackend.
    expect(&fleet, "shop.a.example", "/api", (200, "tenant-a-api")).await;
    expect(
        &fleet,
        "shop.a.example",
        "/apix",
        (200, "tenant-a-fallback"),
    )
    .await;
    expect(&fleet, "shop.a.example", "/login", (200, "tenant-a-web")).await;
    expect(
        &fleet,
        "shop.a.example",
        "/login/x",
        (200, "tenant-a-fallback"),
    )
    .await;
    expect(&fleet, "shop.a.example", "/", (200, "tenant-a-fallback")).await;
    // The second host; its `/` path takes everything (the defaultBackend is not needed there).
    expect(&fleet, "blog.a.example", "/any", (200, "tenant-a-web")).await;
    // Hosts the Ingress does not name are not sent to its defaultBackend on the shared port.
    expect(&fleet, "nowhere.a.example", "/", (404, "")).await;

    // HTTPS with the Secret's certificate, verified against the tenant's CA and the host name.
    let tls = fleet.hub.data_plane_tls_addr();
    eventually(TIMEOUT, || async {
        let (status, body, _) = https_get(tls, "shop.a.example", ca.cert_pem(), "/api").await?;
        ensure!(
            (status, body.as_str()) == (200, "tenant-a-api"),
            "https://shop.a.example/api: {status} {body:?}"
        );
        Ok(())
    })
    .await;

    // status.loadBalancer.ingress: the address the hub gives the Ingress's Gateway.
    let want = fleet.data_plane().ip().to_string();
    eventually(TIMEOUT, || async {
        let ips = load_balancer_ips(a, "shop").await?;
        ensure!(ips == vec![want.clone()], "status.loadBalancer: {ips:?}");
        Ok(())
    })
    .await;
    // The other class's Ingress got neither traffic nor status nor Events from fleetgate.
    expect(&fleet, "other.a.example", "/", (404, "")).await;
    let other = a
        .cluster
        .get_json("Ingress", "default", "nginx-owned")
        .await
        .unwrap()
        .unwrap();
    assert!(
        other["status"]["loadBalancer"]["ingress"].is_null(),
        "{}",
        other["status"]
    );
    assert!(warnings(a, "nginx-owned").await.unwrap().is_empty());
    assert!(warnings(a, "shop").await.unwrap().is_empty());

    // Deleting the Ingress withdraws it.
    a.cluster
        .delete("Ingress", "default", "shop")
        .await
        .expect("delete");
    eventually(TIMEOUT, || async {
        let (status, _) = fleet.get("shop.a.example", "/api").await?;
        ensure!(status == 404, "still served: {status}");
        Ok(())
    })
    .await;
}

/// A host another tenant owns is refused (Warning Event saying so, no address) while the
/// owner's Ingress keeps serving; an unknown Service and a port name not found are reported too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_of_another_tenant_is_refused_and_bad_backends_are_reported() {
    let fleet = Fleet::start(&[TENANT_A, TENANT_B]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let node_a = a.create_node("node-1", 10).await.expect("node a");
    let node_b = b.create_node("node-1", 10).await.expect("node b");
    let _a_web = service(a, node_a, "web").await;
    let _b_web = service(b, node_b, "web").await;
    for t in [a, b] {
        t.cluster.apply(INGRESS_CLASS).await.expect("IngressClass");
    }
    a.cluster
        .apply(&simple_ingress("app", "app.a.example", "web"))
        .await
        .expect("A's Ingress");
    wait_served(&fleet, "app.a.example", "/", "tenant-a-web").await;

    // Tenant B asks for tenant A's host.
    b.cluster
        .apply(&simple_ingress("steal", "app.a.example", "web"))
        .await
        .expect("B's Ingress");
    let msg = wait_warning(b, "steal", "app.a.example").await;
    assert!(msg.contains("HostnameNotAllowed"), "{msg}");
    // A keeps serving; B's Ingress gets no address.
    expect(&fleet, "app.a.example", "/", (200, "tenant-a-web")).await;
    assert!(load_balancer_ips(b, "steal").await.unwrap().is_empty());

    // Bad backends in B's own hosts: reported on the Ingress, answered 500 by the data plane.
    b.cluster
        .apply(&ingress(
            "broken",
            "fleetgate",
            "  rules:\n  - host: broken.b.example\n    http:\n      paths:\n\
             \x20     - {path: /missing, pathType: Prefix, backend: {service: {name: missing, port: {number: 8080}}}}\n\
             \x20     - {path: /portname, pathType: Prefix, backend: {service: {name: web, port: {name: nope}}}}\n\
             \x20     - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 8080}}}}\n",
        ))
        .await
        .expect("broken Ingress");
    wait_served(&fleet, "broken.b.example", "/", "tenant-b-web").await;
    wait_warning(b, "broken", "Service default/missing not found").await;
    wait_warning(b, "broken", "no port named \"nope\"").await;
    for path in ["/missing", "/portname"] {
        let (status, _) = fleet.get("broken.b.example", path).await.unwrap();
        assert_eq!(status, 500, "broken.b.example{path}");
    }
    // ... and the Ingress that is served still gets its address.
    let want = fleet.data_plane().ip().to_string();
    eventually(TIMEOUT, || async {
        let ips = load_balancer_ips(b, "broken").await?;
        ensure!(ips == vec![want.clone()], "status.loadBalancer: {ips:?}");
        Ok(())
    })
    .await;
    expect(&fleet, "app.a.example", "/", (200, "tenant-a-web")).await;
}

/// The Ingress rules of `deploy/agent-rbac.yaml`.
const INGRESS_RULES: &str = "  - apiGroups: [\"networking.k8s.io\"]\n    resources: [\"ingresses\", \"ingressclasses\"]\n    verbs: [\"get\", \"list\", \"watch\"]\n  - apiGroups: [\"networking.k8s.io\"]\n    resources: [\"ingresses/status\"]\n    verbs: [\"patch\", \"update\"]\n";

/// An agent whose RBAC predates Ingress support says so and sends the rest of the cluster's
/// intent, instead of waiting for ever for a list it may not make; with the shipped RBAC the
/// same cluster's Ingress is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_rbac_for_ingresses_still_sends_the_rest() {
    use fleetgate_e2e::recording_hub::{Intent, RecordingHub};
    use fleetgate_e2e::{Agent, Etcd, TenantCluster, TestDir};
    use fleetgate_proto::spoke::v1::Kind;
    use k8s_openapi::api::networking::v1::Ingress;

    let dir = TestDir::new("ingress_old_rbac").expect("test folder");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let cluster = TenantCluster::start("tenant-a", &etcd)
        .await
        .expect("kube-apiserver starts with the CRDs");
    let rbac = std::fs::read_to_string(
        fleetgate_e2e::components::workspace_dir().join("deploy/agent-rbac.yaml"),
    )
    .unwrap();
    assert!(
        rbac.contains(INGRESS_RULES),
        "deploy/agent-rbac.yaml changed shape"
    );
    cluster
        .apply(&rbac.replace(INGRESS_RULES, ""))
        .await
        .expect("the RBAC without Ingresses");
    cluster
        .apply(&format!(
            "{}---\n{}---\n{INGRESS_CLASS}---\n{}",
            fleetgate_e2e::fixtures::GATEWAY_CLASS,
            fleetgate_e2e::fixtures::gateway(
                "web",
                &fleetgate_e2e::fixtures::listener("http", "HTTP", 80, Some("web.a.example"))
            ),
            simple_ingress("shop", "shop.a.example", "web"),
        ))
        .await
        .expect("Gateway and Ingress");
    let hub = RecordingHub::start()
        .await
        .expect("the recording hub starts");
    let identity = hub
        .issue_agent_identity(&dir, "tenant-a", "c1")
        .expect("identity");
    let has = |intent: &Intent, kind: Kind, name: &str| {
        intent.contains_key(&(kind as i32, "default".to_string(), name.to_string()))
    };
    let start = || {
        Agent::start_against(
            &dir,
            &hub.url(),
            &identity,
            "tenant-a",
            "c1",
            cluster.agent_kubeconfig(),
            &[],
        )
        .expect("the agent starts")
    };
    let mut agent = start();
    hub.wait_for(TIMEOUT, |intent| {
        has(intent, Kind::Gateway, "web")
            .then_some(())
            .ok_or_else(|| format!("no Gateway web in {:?}", intent.keys()))
    })
    .await
    .expect("the Gateway is sent");
    assert!(
        !has(&hub.intent(), Kind::Gateway, "shop.ingress"),
        "no Ingress without the RBAC to read it"
    );
    let log = agent.process().log();
    assert!(
        log.contains("does not allow list on ingresses.networking.k8s.io"),
        "{log}"
    );
    agent.kill();

    // With the shipped RBAC (once the authorizer has it) the Ingress is sent.
    cluster.apply(&rbac).await.expect("the shipped RBAC");
    let client = cluster.agent_client().await.expect("the agent's client");
    eventually(TIMEOUT, || async {
        Api::<Ingress>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(drop)
            .context("the agent may not list Ingresses yet")
    })
    .await;
    let _agent = start();
    hub.wait_for(TIMEOUT, |intent| {
        (has(intent, Kind::Gateway, "shop.ingress")
            && has(intent, Kind::HttpRoute, "shop.ingress.0"))
        .then_some(())
        .ok_or_else(|| format!("no Ingress objects in {:?}", intent.keys()))
    })
    .await
    .expect("the Ingress is sent");
}

/// An Ingress with only a defaultBackend stands for a hostname-less listener: with address pools
/// it is served on an address of its own, for any Host, and that address is its
/// `status.loadBalancer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_without_hosts_is_served_on_an_address_of_its_own() {
    use fleetgate_e2e::own_address::{free_addresses, pools, wait_served_at};
    let ips = free_addresses(1, 80);
    let fleet = Fleet::start_with(&[TENANT_A], pools(&ips, 80, 80))
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.expect("node");
    let _web = service(a, node, "web").await;
    a.cluster.apply(INGRESS_CLASS).await.expect("IngressClass");
    a.cluster
        .apply(&ingress(
            "open",
            "fleetgate",
            "  defaultBackend: {service: {name: web, port: {number: 8080}}}\n",
        ))
        .await
        .expect("Ingress");
    eventually(TIMEOUT, || async {
        let got = load_balancer_ips(a, "open").await?;
        ensure!(
            got == vec![ips[0].to_string()],
            "status.loadBalancer: {got:?}"
        );
        Ok(())
    })
    .await;
    for host in ["open.example", "app.a.example"] {
        wait_served_at(SocketAddr::new(ips[0], 80), host, "tenant-a-web").await;
    }
    // Not on the shared port: that one serves hostnames only.
    expect(&fleet, "open.example", "/", (404, "")).await;
    assert!(warnings(a, "open").await.unwrap().is_empty());
}
