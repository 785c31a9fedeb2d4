//! HTTPS termination, TLS passthrough and ReferenceGrant, end to end on real components: tenant
//! YAML (Secrets, Gateways, routes, grants) in a tenant API server -> agent -> hub -> Envoy (SDS
//! over ADS) -> the tenant's backend, checked with a TLS client that trusts only the tenant's
//! test CA and verifies the hostname, and status back on the tenant's objects.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use anyhow::{Context, ensure};
use fleetgate_e2e::agent::Agent;
use fleetgate_e2e::apiserver::SecretRbac;
use fleetgate_e2e::fixtures::{
    GATEWAY_CLASS, TENANT_A, TENANT_B, class_and_http_gateway, condition, gateway, http_route,
    rule_to, wait_route_condition,
};
use fleetgate_e2e::fleet::RAW_CLUSTER;
use fleetgate_e2e::pki::{Ca, CertAndKey, Leaf};
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::tls::{HttpsConnection, TlsEcho, connect_tls, https_get, serial_of_pem};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

/// A `kubernetes.io/tls` Secret with `cert`.
fn secret_yaml(ns: &str, name: &str, cert: &CertAndKey) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&cert.cert_pem),
        indent(&cert.key_pem)
    )
}

/// An HTTPS listener (port 443) for `host` with certificateRefs `secrets` (`ns/name` or `name`).
fn https_listener(name: &str, host: &str, secrets: &[&str]) -> String {
    let refs: String = secrets
        .iter()
        .map(|s| match s.split_once('/') {
            Some((ns, n)) => format!("      - {{name: {n}, namespace: {ns}}}\n"),
            None => format!("      - {{name: {s}}}\n"),
        })
        .collect();
    format!(
        "  - name: {name}\n    protocol: HTTPS\n    port: 443\n    hostname: {host}\n    tls:\n      mode: Terminate\n      certificateRefs:\n{refs}"
    )
}

/// [`GATEWAY_CLASS`] and Gateway `web` with `listeners`.
fn gateway_yaml(listeners: &[String]) -> String {
    format!(
        "{GATEWAY_CLASS}---\n{}",
        gateway("web", &listeners.concat())
    )
}

/// HTTPRoute `name` in `default` on Gateway `web` for `host` -> Service `svc_ns/svc`:8080.
fn route_yaml(name: &str, host: &str, svc_ns: &str, svc: &str) -> String {
    let svc = format!("{svc_ns}/{svc}");
    http_route(
        "default",
        name,
        &["{name: web}"],
        &[host],
        &rule_to(None, &[(&svc, 1)]),
    )
}

/// Node `node-1` (.10 of the tenant's range) and Service `ns/svc` (NodePort) with an echo
/// backend named `<tenant>-<svc>` on it.
async fn backend_in(t: &FleetTenant, ns: &str, svc: &str) -> Echo {
    let ip = t.create_node("node-1", 10).await.expect("node");
    if ns != "default" {
        t.cluster
            .apply(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
            ))
            .await
            .expect("namespace");
    }
    let port = fleetgate_e2e::ports::free_port_in(ip, 30000..=32767).expect("free port");
    t.cluster
        .apply(&fleetgate_e2e::fixtures::http_service(ns, svc, port))
        .await
        .expect("service");
    Echo::start_at(
        &format!("{}-{svc}", t.name),
        std::net::SocketAddr::new(ip, port),
    )
    .await
    .expect("echo")
}

/// Applies each document of `docs`, in order, in the tenant's cluster.
async fn apply_all(t: &FleetTenant, docs: &[String]) {
    for d in docs {
        t.cluster
            .apply(d)
            .await
            .unwrap_or_else(|e| panic!("apply in {}: {e:#}", t.name));
    }
}

/// Waits until listener `listener` of Gateway `web` has condition `type_` with `status` and
/// `reason` for the current generation; returns the condition.
async fn wait_listener_condition(
    t: &FleetTenant,
    listener: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> Value {
    eventually(TIMEOUT, || async {
        let gw = t
            .cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway missing")?;
        let l = gw["status"]["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == listener))
            .with_context(|| format!("no status for listener {listener}: {}", gw["status"]))?;
        let c = condition(&l["conditions"], type_).with_context(|| format!("no {type_}: {l}"))?;
        ensure!(
            c["status"] == status && c["reason"] == reason,
            "listener {listener} {type_}: {c}"
        );
        ensure!(
            c["observedGeneration"] == gw["metadata"]["generation"],
            "stale: {c}"
        );
        Ok(c.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_tenants_certificate_and_rotation_keeps_open_connections() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let addr = fleet.hub.data_plane_tls_addr();
    let ca = Ca::new("tenant-a-ca").unwrap();
    let leaf = Leaf::server("app", &["app.a.example"]);
    let first = ca.issue(&leaf).unwrap();
    let first_serial = serial_of_pem(&first.cert_pem).unwrap();
    let _echo = backend_in(a, "default", "echo").await;
    apply_all(
        a,
        &[
            secret_yaml("default", "app-tls", &first),
            gateway_yaml(&[https_listener("https", "app.a.example", &["app-tls"])]),
            route_yaml("app", "app.a.example", "default", "echo"),
        ],
    )
    .await;

    // The tenant's certificate is served for its hostname (verified against the tenant's CA and
    // the SNI name by the client) and the request reaches its backend.
    eventually(TIMEOUT, || async {
        let (status, body, serial) = https_get(addr, "app.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            (status, body.as_str(), serial.as_str())
                == (200, "tenant-a-echo", first_serial.as_str()),
            "got {status} {body:?} serial {serial} (want 200 tenant-a-echo {first_serial})"
        );
        Ok(())
    })
    .await;
    wait_listener_condition(a, "https", "Programmed", "True", "Programmed").await;
    wait_listener_condition(a, "https", "ResolvedRefs", "True", "ResolvedRefs").await;

    // A connection opened before the rotation.
    let mut before = HttpsConnection::open(addr, "app.a.example", ca.cert_pem())
        .await
        .unwrap();
    assert_eq!(before.serial, first_serial);
    assert_eq!(
        before.get("app.a.example", "/").await.unwrap(),
        (200, "tenant-a-echo".to_string())
    );

    // Rotate the Secret in the tenant cluster: new handshakes get the new certificate.
    let modified_before = envoy_counter(&fleet, "listener_manager.listener_modified").await;
    let second = ca.issue(&leaf).unwrap();
    let second_serial = serial_of_pem(&second.cert_pem).unwrap();
    assert_ne!(first_serial, second_serial);
    a.cluster
        .apply(&secret_yaml("default", "app-tls", &second))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let (status, _, serial) = https_get(addr, "app.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            status == 200 && serial == second_serial,
            "got {status} serial {serial} (want 200 {second_serial})"
        );
        Ok(())
    })
    .await;
    // ... and the connection opened before still works, on its original handshake: Envoy got a
    // new SDS secret only, its listener was not modified (so nothing was drained).
    assert_eq!(
        before.get("app.a.example", "/x").await.unwrap(),
        (200, "tenant-a-echo".to_string())
    );
    assert_eq!(before.serial, first_serial);
    assert_eq!(
        envoy_counter(&fleet, "listener_manager.listener_modified").await,
        modified_before,
        "the rotation modified (and drained) the Envoy listener"
    );
    assert_eq!(
        envoy_counter(&fleet, "listener_manager.total_listeners_draining").await,
        0
    );
    // The tenant's keys went agent -> hub -> Envoy; no log (all at debug level) shows them.
    let mut secrets = Secrets::new();
    secrets.add_key_pem("the first certificate's key", &first.key_pem);
    secrets.add_key_pem("the rotated certificate's key", &second.key_pem);
    fleet.assert_no_secrets_in_logs(secrets);
}

/// Domain fronting across tenants (issue 10's audit): a client that completes the TLS handshake
/// for tenant A's hostname and then asks for tenant B's hostname in the Host header is not served
/// by tenant B. Each SNI hostname has its own route configuration, so B's routes are not in A's;
/// a Host the connection's SNI hostname does not serve gets 421 Misdirected Request from Envoy
/// itself (the Gateway API's answer for HTTPS listeners; a client that coalesced connections
/// retries on a new one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_of_another_tenant_is_not_served_on_this_tenants_tls_connection() {
    let fleet = Fleet::start(&[TENANT_A, TENANT_B]).await.expect("fleet");
    let addr = fleet.hub.data_plane_tls_addr();
    let (mut cas, mut echoes) = (Vec::new(), Vec::new());
    for (t, host) in [("tenant-a", "app.a.example"), ("tenant-b", "app.b.example")] {
        let t = fleet.tenant(t);
        let ca = Ca::new(&format!("{}-ca", t.name)).unwrap();
        let cert = ca.issue(&Leaf::server("app", &[host])).unwrap();
        echoes.push(backend_in(t, "default", "echo").await);
        t.cluster
            .apply(&secret_yaml("default", "app-tls", &cert))
            .await
            .unwrap();
        t.cluster
            .apply(&gateway_yaml(&[https_listener(
                "https",
                host,
                &["app-tls"],
            )]))
            .await
            .unwrap();
        t.cluster
            .apply(&route_yaml("app", host, "default", "echo"))
            .await
            .unwrap();
        cas.push(ca);
    }
    for (sni, ca, body) in [
        ("app.a.example", &cas[0], "tenant-a-echo"),
        ("app.b.example", &cas[1], "tenant-b-echo"),
    ] {
        eventually(TIMEOUT, || async {
            let (status, got, _) = https_get(addr, sni, ca.cert_pem(), "/").await?;
            ensure!(
                (status, got.as_str()) == (200, body),
                "{sni}: {status} {got:?}"
            );
            Ok(())
        })
        .await;
    }
    let mut fronted = HttpsConnection::open(addr, "app.a.example", cas[0].cert_pem())
        .await
        .unwrap();
    let (status, body) = fronted.get("app.b.example", "/").await.unwrap();
    assert_ne!(
        body, "tenant-b-echo",
        "tenant B was reached through A's TLS connection"
    );
    assert_eq!(status, 421, "{body}");
    // A host nobody serves is misdirected on this connection too.
    let (status, body) = fronted.get("nobody.a.example", "/").await.unwrap();
    assert_eq!(status, 421, "{body}");
    // The same connection still serves its own hostname.
    assert_eq!(
        fronted.get("app.a.example", "/").await.unwrap(),
        (200, "tenant-a-echo".to_string())
    );
}

/// An Envoy stat (counter or gauge) by exact name.
async fn envoy_counter(fleet: &Fleet, name: &str) -> u64 {
    let (status, body) = fleet
        .envoy
        .admin_get(&format!("/stats?filter=^{name}$"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stat {name} in {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_certificate_needs_a_reference_grant() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let addr = fleet.hub.data_plane_tls_addr();
    let ca = Ca::new("tenant-a-ca").unwrap();
    let _echo = backend_in(a, "default", "echo").await;
    a.cluster
        .apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: certs\n")
        .await
        .unwrap();
    let cert = ca.issue(&Leaf::server("app", &["app.a.example"])).unwrap();
    apply_all(
        a,
        &[
            secret_yaml("certs", "app-tls", &cert),
            gateway_yaml(&[https_listener("https", "app.a.example", &["certs/app-tls"])]),
            route_yaml("app", "app.a.example", "default", "echo"),
        ],
    )
    .await;

    // No grant in namespace certs: RefNotPermitted, nothing served.
    wait_listener_condition(a, "https", "ResolvedRefs", "False", "RefNotPermitted").await;
    assert!(
        connect_tls(addr, "app.a.example", ca.cert_pem(), &["http/1.1"])
            .await
            .is_err()
    );

    // A grant for Gateways from default to that Secret: served.
    a.cluster
        .apply(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata:
  name: gateways-from-default
  namespace: certs
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: Gateway
    namespace: default
  to:
  - group: ""
    kind: Secret
    name: app-tls
"#,
        )
        .await
        .unwrap();
    wait_listener_condition(a, "https", "ResolvedRefs", "True", "ResolvedRefs").await;
    eventually(TIMEOUT, || async {
        let (status, body, _) = https_get(addr, "app.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            status == 200 && body == "tenant-a-echo",
            "{status} {body:?}"
        );
        Ok(())
    })
    .await;

    // Withdrawn again.
    a.cluster
        .delete("ReferenceGrant", "certs", "gateways-from-default")
        .await
        .unwrap();
    wait_listener_condition(a, "https", "ResolvedRefs", "False", "RefNotPermitted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_foreign_certificates_are_reported_on_the_listener() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let addr = fleet.hub.data_plane_tls_addr();
    let ca = Ca::new("tenant-a-ca").unwrap();
    let _echo = backend_in(a, "default", "echo").await;
    // tenant-a owns *.a.example only: a certificate for a tenant-b name must not be served.
    let foreign = ca
        .issue(&Leaf::server("f", &["f.a.example", "shop.b.example"]))
        .unwrap();
    apply_all(
        a,
        &[
            secret_yaml("default", "foreign-tls", &foreign),
            gateway_yaml(&[
                https_listener("missing", "m.a.example", &["gone-tls"]),
                https_listener("foreign", "f.a.example", &["foreign-tls"]),
            ]),
            route_yaml("app", "m.a.example", "default", "echo"),
        ],
    )
    .await;

    let c = wait_listener_condition(
        a,
        "missing",
        "ResolvedRefs",
        "False",
        "InvalidCertificateRef",
    )
    .await;
    assert!(
        c["message"]
            .as_str()
            .unwrap_or("")
            .contains("default/gone-tls"),
        "{c}"
    );
    wait_listener_condition(a, "missing", "Programmed", "False", "Invalid").await;
    let c = wait_listener_condition(
        a,
        "foreign",
        "ResolvedRefs",
        "False",
        "InvalidCertificateRef",
    )
    .await;
    let msg = c["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("shop.b.example") && msg.contains("may not serve"),
        "{c}"
    );
    // Neither hostname is served: the handshake fails.
    for sni in ["f.a.example", "m.a.example"] {
        assert!(
            connect_tls(addr, sni, ca.cert_pem(), &["http/1.1"])
                .await
                .is_err(),
            "{sni} was served"
        );
    }

    // Creating the missing Secret fixes the listener.
    let good = ca.issue(&Leaf::server("m", &["m.a.example"])).unwrap();
    a.cluster
        .apply(&secret_yaml("default", "gone-tls", &good))
        .await
        .unwrap();
    wait_listener_condition(a, "missing", "ResolvedRefs", "True", "ResolvedRefs").await;
    eventually(TIMEOUT, || async {
        let (status, body, _) = https_get(addr, "m.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            status == 200 && body == "tenant-a-echo",
            "{status} {body:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_backend_needs_a_reference_grant() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let _echo = backend_in(a, "backend", "echo").await;
    apply_all(
        a,
        &[
            class_and_http_gateway(Some("app.a.example")),
            route_yaml("app", "app.a.example", "backend", "echo"),
        ],
    )
    .await;
    let wait_get = |want: u16| {
        let fleet = &fleet;
        async move {
            eventually(TIMEOUT, || async {
                let (status, body) = fleet.get("app.a.example", "/").await?;
                ensure!(status == want, "{status} {body:?} (want {want})");
                Ok(body)
            })
            .await
        }
    };

    // No grant: RefNotPermitted, and the route's traffic gets 500.
    wait_route_condition(
        a,
        "HTTPRoute",
        "app",
        "ResolvedRefs",
        "False",
        "RefNotPermitted",
    )
    .await;
    wait_get(500).await;

    // A grant in the Service's namespace for HTTPRoutes from default: served.
    let grant = r#"apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata:
  name: allow-default
  namespace: backend
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: default
  to:
  - group: ""
    kind: Service
"#;
    a.cluster.apply(grant).await.unwrap();
    assert_eq!(wait_get(200).await, "tenant-a-echo");
    wait_route_condition(
        a,
        "HTTPRoute",
        "app",
        "ResolvedRefs",
        "True",
        "ResolvedRefs",
    )
    .await;

    // Deleting the grant withdraws the access.
    a.cluster
        .delete("ReferenceGrant", "backend", "allow-default")
        .await
        .unwrap();
    wait_route_condition(
        a,
        "HTTPRoute",
        "app",
        "ResolvedRefs",
        "False",
        "RefNotPermitted",
    )
    .await;
    wait_get(500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_passthrough_reaches_a_tls_backend_next_to_https() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let addr = fleet.hub.data_plane_tls_addr();
    let ca = Ca::new("tenant-a-ca").unwrap();
    // HTTPS, terminated by the data plane, for app.a.example.
    let _echo = backend_in(a, "default", "echo").await;
    let app_cert = ca.issue(&Leaf::server("app", &["app.a.example"])).unwrap();
    a.cluster
        .apply(&secret_yaml("default", "app-tls", &app_cert))
        .await
        .unwrap();
    // A backend that terminates TLS itself, with its own certificate, behind a NodePort.
    let ip = a.ip(10);
    let port = fleetgate_e2e::ports::free_port_in(ip, 30000..=32767).unwrap();
    a.cluster
        .apply(&fleetgate_e2e::fixtures::http_service(
            "default", "pg", port,
        ))
        .await
        .unwrap();
    let backend_cert = ca.issue(&Leaf::server("pg", &["pg.db.a.example"])).unwrap();
    let backend_serial = serial_of_pem(&backend_cert.cert_pem).unwrap();
    let _pg = TlsEcho::start_at(
        "tenant-a-pg",
        std::net::SocketAddr::new(ip, port),
        &backend_cert,
    )
    .await
    .unwrap();
    apply_all(
        a,
        &[
            gateway_yaml(&[
            https_listener("https", "app.a.example", &["app-tls"]),
            "  - name: tls\n    protocol: TLS\n    port: 443\n    hostname: \"*.db.a.example\"\n    tls:\n      mode: Passthrough\n".to_string(),
        ]),
            route_yaml("app", "app.a.example", "default", "echo"),
        ],
    )
    .await;
    a.cluster
        .apply(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata:
  name: pg
  namespace: default
spec:
  parentRefs:
  - name: web
    sectionName: tls
  hostnames: [pg.db.a.example]
  rules:
  - backendRefs:
    - name: pg
      port: 8080
"#,
        )
        .await
        .unwrap();

    // The TLS stream reaches the backend untouched: the certificate is the backend's own.
    eventually(TIMEOUT, || async {
        let (status, body, serial) = https_get(addr, "pg.db.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            (status, body.as_str(), serial.as_str())
                == (200, "tenant-a-pg", backend_serial.as_str()),
            "got {status} {body:?} serial {serial} (want 200 tenant-a-pg {backend_serial})"
        );
        Ok(())
    })
    .await;
    // On the same port, HTTPS is terminated with the tenant's certificate for its hostname.
    let (status, body, serial) = https_get(addr, "app.a.example", ca.cert_pem(), "/")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "tenant-a-echo"));
    assert_eq!(serial, serial_of_pem(&app_cert.cert_pem).unwrap());
    // A name under the listener that no TLSRoute claims is not served.
    assert!(
        connect_tls(addr, "other.db.a.example", ca.cert_pem(), &["http/1.1"])
            .await
            .is_err()
    );

    // Status: the route is accepted, the listener counts it and names TLSRoute as its kind.
    eventually(TIMEOUT, || async {
        let r = a
            .cluster
            .get_json("TLSRoute", "default", "pg")
            .await?
            .context("TLSRoute missing")?;
        let c = condition(&r["status"]["parents"][0]["conditions"], "Accepted")
            .with_context(|| format!("no Accepted: {}", r["status"]))?;
        ensure!(c["status"] == "True", "{c}");
        let gw = a
            .cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway missing")?;
        let l = gw["status"]["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == "tls"))
            .with_context(|| format!("no tls listener status: {}", gw["status"]))?;
        ensure!(l["attachedRoutes"] == 1, "{l}");
        ensure!(l["supportedKinds"][0]["kind"] == "TLSRoute", "{l}");
        Ok(())
    })
    .await;
}

/// [`secret_yaml`] with the label `fleetgate.dev/expose=true` (what `--secrets label` reads).
fn labelled_secret_yaml(ns: &str, name: &str, cert: &CertAndKey) -> String {
    secret_yaml(ns, name, cert).replacen(
        "metadata:\n",
        "metadata:\n  labels:\n    fleetgate.dev/expose: \"true\"\n",
        1,
    )
}

/// Fails if the agent's log shows a refused (403) or failing watch: with RBAC that matches its
/// `--secrets` mode, the agent never asks for what it may not read.
fn assert_no_forbidden_watches(fleet: &mut Fleet) {
    let log = fleet.tenant_mut("tenant-a").agent.process().log();
    for bad in ["forbidden", "Forbidden", "watch failed"] {
        assert!(!log.contains(bad), "agent log has {bad:?}:\n{log}");
    }
    assert!(log.contains("watching TLS Secrets"), "{log}");
}

/// The RBAC deploy/agent-rbac.yaml ships (list/watch Secrets in `default` only, no ClusterRole
/// on Secrets) with `--secrets namespaces=default`: the agent runs on exactly that RBAC, serves
/// the certificate of a Secret in `default`, and a listener whose Secret is in another namespace
/// (granted by a ReferenceGrant, so only the agent's access is missing) gets
/// `ResolvedRefs=False/InvalidCertificateRef` naming the namespace to add. An agent started with
/// `--secrets cluster` on the same credentials exits at start with what to apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_rbac_reads_secrets_of_listed_namespaces_only_and_says_what_to_add() {
    let mut fleet = Fleet::start_with_agent_secrets(
        &[TENANT_A],
        SecretRbac::DeployDefault,
        "namespaces=default",
    )
    .await
    .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let addr = fleet.hub.data_plane_tls_addr();

    // The agent's credentials really are narrow: Secrets of `default` only.
    let agent_client = a.cluster.agent_client().await.unwrap();
    eventually(TIMEOUT, || async {
        Api::<Secret>::namespaced(agent_client.clone(), "default")
            .list(&ListParams::default())
            .await
            .context("the agent may list Secrets in default")?;
        Ok(())
    })
    .await;
    for (what, api) in [
        ("cluster-wide", Api::<Secret>::all(agent_client.clone())),
        (
            "in certs",
            Api::<Secret>::namespaced(agent_client.clone(), "certs"),
        ),
    ] {
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{what}: {e:?}"),
            other => panic!("the agent listed Secrets {what}: {other:?}"),
        }
    }

    let ca = Ca::new("tenant-a-ca").unwrap();
    let _echo = backend_in(a, "default", "echo").await;
    let app = ca.issue(&Leaf::server("app", &["app.a.example"])).unwrap();
    let app_serial = serial_of_pem(&app.cert_pem).unwrap();
    let shop = ca
        .issue(&Leaf::server("shop", &["shop.a.example"]))
        .unwrap();
    a.cluster
        .apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: certs\n")
        .await
        .unwrap();
    apply_all(
        a,
        &[
            secret_yaml("default", "app-tls", &app),
            secret_yaml("certs", "shop-tls", &shop),
        ],
    )
    .await;
    a.cluster
        .apply(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata:
  name: gateways-from-default
  namespace: certs
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: Gateway
    namespace: default
  to:
  - group: ""
    kind: Secret
"#,
        )
        .await
        .unwrap();
    apply_all(
        a,
        &[
            gateway_yaml(&[
                https_listener("https", "app.a.example", &["app-tls"]),
                https_listener("shop", "shop.a.example", &["certs/shop-tls"]),
            ]),
            route_yaml("app", "app.a.example", "default", "echo"),
        ],
    )
    .await;

    eventually(TIMEOUT, || async {
        let (status, body, serial) = https_get(addr, "app.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            (status, body.as_str(), serial.as_str()) == (200, "tenant-a-echo", app_serial.as_str()),
            "got {status} {body:?} serial {serial} (want 200 tenant-a-echo {app_serial})"
        );
        Ok(())
    })
    .await;
    wait_listener_condition(a, "https", "ResolvedRefs", "True", "ResolvedRefs").await;
    let c =
        wait_listener_condition(a, "shop", "ResolvedRefs", "False", "InvalidCertificateRef").await;
    let message = c["message"].as_str().unwrap_or_default();
    for words in [
        "certs/shop-tls",
        "where the agent may not read Secrets",
        "--secrets namespaces=default",
        "add certs to --secrets",
    ] {
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
    assert!(
        connect_tls(addr, "shop.a.example", ca.cert_pem(), &["http/1.1"])
            .await
            .is_err(),
        "a certificate the agent may not read was served"
    );
    assert_no_forbidden_watches(&mut fleet);

    // The same credentials with `--secrets cluster`: refused at start, with what to apply.
    let kubeconfig = fleet
        .tenant("tenant-a")
        .cluster
        .agent_kubeconfig()
        .to_path_buf();
    let mut wide = Agent::start_with_args(
        &fleet.dir,
        &fleet.hub,
        "tenant-a",
        RAW_CLUSTER,
        &kubeconfig,
        &["--secrets".into(), "cluster".into()],
    )
    .unwrap();
    let status = wide.wait_exit(2 * TIMEOUT).await.unwrap();
    assert!(!status.success(), "{status}");
    let log = wide.process().log();
    for words in [
        "--secrets cluster needs list and watch on Secrets cluster-wide",
        "deploy/agent-rbac-secrets-cluster.yaml",
    ] {
        assert!(log.contains(words), "{words:?} not in the log:\n{log}");
    }
}

/// `--secrets label` (with the cluster-wide variant deploy/agent-rbac-secrets-cluster.yaml, which
/// the label does not narrow): a labelled Secret's certificate is served; an unlabelled one is
/// never sent to the agent, so its listener gets `InvalidCertificateRef` saying to label it, and
/// labelling it is all it takes to be served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_mode_reads_only_labelled_secrets_and_says_to_label_the_others() {
    let mut fleet = Fleet::start_with_agent_secrets(&[TENANT_A], SecretRbac::ClusterWide, "label")
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let addr = fleet.hub.data_plane_tls_addr();
    let ca = Ca::new("tenant-a-ca").unwrap();
    let _echo = backend_in(a, "default", "echo").await;
    let app = ca.issue(&Leaf::server("app", &["app.a.example"])).unwrap();
    let shop = ca
        .issue(&Leaf::server("shop", &["shop.a.example"]))
        .unwrap();
    let shop_serial = serial_of_pem(&shop.cert_pem).unwrap();
    apply_all(
        a,
        &[
            labelled_secret_yaml("default", "app-tls", &app),
            secret_yaml("default", "shop-tls", &shop),
            gateway_yaml(&[
                https_listener("https", "app.a.example", &["app-tls"]),
                https_listener("shop", "shop.a.example", &["shop-tls"]),
            ]),
            route_yaml("app", "app.a.example", "default", "echo"),
            route_yaml("shop", "shop.a.example", "default", "echo"),
        ],
    )
    .await;

    eventually(TIMEOUT, || async {
        let (status, body, _) = https_get(addr, "app.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            status == 200 && body == "tenant-a-echo",
            "{status} {body:?}"
        );
        Ok(())
    })
    .await;
    let c =
        wait_listener_condition(a, "shop", "ResolvedRefs", "False", "InvalidCertificateRef").await;
    let message = c["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kubectl label secret -n default shop-tls fleetgate.dev/expose=true"),
        "{message:?}"
    );

    // Labelled: read, sent and served.
    a.cluster
        .apply(&labelled_secret_yaml("default", "shop-tls", &shop))
        .await
        .unwrap();
    wait_listener_condition(a, "shop", "ResolvedRefs", "True", "ResolvedRefs").await;
    eventually(TIMEOUT, || async {
        let (status, _, serial) = https_get(addr, "shop.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            status == 200 && serial == shop_serial,
            "{status} serial {serial}"
        );
        Ok(())
    })
    .await;
    assert_no_forbidden_watches(&mut fleet);
}
