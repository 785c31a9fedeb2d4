//! GRPCRoute end to end on real components: tenant YAML in a tenant API server -> agent -> hub
//! -> Envoy -> tonic gRPC echo backends (h2c). Method matching sends two methods of one service
//! to two backends, a header match picks a third, a RequestHeaderModifier reaches the backend,
//! calls nothing matches fail with UNIMPLEMENTED, and an HTTPRoute that claims a GRPCRoute's
//! hostname later is rejected with reason Conflicted. A GRPCRoute on an HTTPS listener (a
//! certificate made by the test) is reached by a gRPC call over TLS (HTTP/2 by ALPN).
//!
//! What Envoy returns when no route matches a gRPC call: its local 404 reply, which Envoy turns
//! into a gRPC trailers-only answer (HTTP 200, `grpc-status: 12` UNIMPLEMENTED) because the
//! request was gRPC — the mapping of HTTP 404 in gRPC's HTTP-to-status table. Both "known host,
//! no matching method" and "unknown host" (fleetgate's catch-all 404) answer that way.
//!
//! Needs the product binaries: `cargo build --bins` first.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    GATEWAY_CLASS, TENANT_A, class_and_http_gateway, condition, gateway, http_route, listener,
    node_port_service, wait_route_condition,
};
use fleetgate_e2e::grpc_echo::{GrpcEcho, Method, call, call_tls, call_with_headers};
use fleetgate_e2e::pki::{Ca, Leaf};
use fleetgate_e2e::{Fleet, FleetTenant, TIMEOUT, eventually};

const SERVICE: &str = "fleetgate.e2e.echo.v1.Echo";

/// A NodePort Service `name` (port 50051, no appProtocol: a GRPCRoute backend is h2c anyway)
/// and a gRPC echo backend of the same name on the node's nodePort.
async fn grpc_service(t: &FleetTenant, node: IpAddr, name: &str) -> GrpcEcho {
    let node_port = fleetgate_e2e::ports::free_port_in(node, 30000..=32767).expect("free port");
    let yaml = node_port_service("default", name, "TCP", 50051, node_port, None);
    t.cluster.apply(&yaml).await.expect("apply Service");
    GrpcEcho::start_at(name, SocketAddr::new(node, node_port))
        .await
        .expect("grpc echo backend")
}

/// Waits until `method` on `host` (with `metadata`) is answered by backend `backend`.
async fn wait_backend(
    fleet: &Fleet,
    host: &str,
    method: Method,
    metadata: &[(&'static str, &str)],
    backend: &str,
) {
    eventually(TIMEOUT, || async {
        let r = call(fleet.data_plane(), host, method, metadata).await;
        let r = r.map_err(|s| anyhow::anyhow!("{method:?} on {host}: {s}"))?;
        ensure!(
            r.backend == backend,
            "{method:?} on {host} {metadata:?}: answered by {} (want {backend})",
            r.backend
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_method_and_header_matching_unimplemented_and_conflicts() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.expect("node");
    a.cluster
        .apply(&class_and_http_gateway(None))
        .await
        .expect("apply Gateway");
    let _say = grpc_service(a, node, "say").await;
    let _shout = grpc_service(a, node, "shout").await;
    let _gold = grpc_service(a, node, "gold").await;

    let routes = format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: echo
  namespace: default
spec:
  parentRefs:
  - name: web
  hostnames: [grpc.a.example]
  rules:
  - name: gold-tier
    matches:
    - method: {{service: {SERVICE}, method: Say}}
      headers:
      - {{name: x-tier, value: gold}}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - {{name: x-added, value: by-fleetgate}}
    backendRefs:
    - {{name: gold, port: 50051}}
  - name: say
    matches:
    - method: {{service: {SERVICE}, method: Say}}
    backendRefs:
    - {{name: say, port: 50051}}
  - matches:
    - method: {{type: RegularExpression, service: 'fleetgate\.e2e\..*', method: 'Sh.*'}}
    backendRefs:
    - {{name: shout, port: 50051}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: only-say
  namespace: default
spec:
  parentRefs:
  - name: web
  hostnames: [say.a.example]
  rules:
  - matches:
    - method: {{service: {SERVICE}, method: Say}}
    backendRefs:
    - {{name: say, port: 50051}}
"#
    );
    a.cluster.apply(&routes).await.expect("apply GRPCRoutes");

    // Method matching: two methods of one service, two backends (exact and regex matches).
    wait_backend(&fleet, "grpc.a.example", Method::Say, &[], "say").await;
    wait_backend(&fleet, "grpc.a.example", Method::Shout, &[], "shout").await;
    let dp = fleet.data_plane();
    let r = call(dp, "grpc.a.example", Method::Say, &[]).await.unwrap();
    assert_eq!(r.path, format!("/{SERVICE}/Say"));
    assert!(
        !r.metadata.iter().any(|m| m.starts_with("x-added=")),
        "{:?}",
        r.metadata
    );
    // Header match: the more specific rule (same method, one header) wins, and its
    // RequestHeaderModifier reaches the backend.
    let r = call(dp, "grpc.a.example", Method::Say, &[("x-tier", "gold")])
        .await
        .unwrap();
    assert_eq!(r.backend, "gold");
    assert!(
        r.metadata.iter().any(|m| m == "x-added=by-fleetgate"),
        "{:?}",
        r.metadata
    );
    let r = call(dp, "grpc.a.example", Method::Say, &[("x-tier", "silver")])
        .await
        .unwrap();
    assert_eq!(r.backend, "say");

    // Nothing matches: UNIMPLEMENTED (Envoy's 404 as a gRPC status), on a known host with an
    // unrouted method and on a host nobody configured.
    wait_backend(&fleet, "say.a.example", Method::Say, &[], "say").await;
    let e = call(dp, "say.a.example", Method::Shout, &[])
        .await
        .expect_err("Shout is not routed on say.a.example");
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    let e = call(dp, "nobody.a.example", Method::Say, &[])
        .await
        .expect_err("no route for an unknown host");
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");

    // Status: both routes accepted; the listener takes HTTPRoute and GRPCRoute and counts them.
    wait_route_condition(a, "GRPCRoute", "echo", "Accepted", "True", "Accepted").await;
    eventually(TIMEOUT, || async {
        let gw = a
            .cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway missing")?;
        let l = &gw["status"]["listeners"][0];
        ensure!(l["attachedRoutes"] == 2, "{l}");
        let kinds: Vec<&str> = l["supportedKinds"]
            .as_array()
            .context("no supportedKinds")?
            .iter()
            .filter_map(|k| k["kind"].as_str())
            .collect();
        ensure!(kinds == ["HTTPRoute", "GRPCRoute"], "{l}");
        Ok(())
    })
    .await;

    // An HTTPRoute created later for the GRPCRoute's hostname loses: Accepted=False/Conflicted,
    // and gRPC traffic keeps flowing to the GRPCRoute's backends.
    a.cluster
        .apply(&http_route(
            "default",
            "later",
            &["{name: web}"],
            &["grpc.a.example"],
            "  - backendRefs:\n    - {name: say, port: 50051}\n",
        ))
        .await
        .expect("apply HTTPRoute");
    wait_route_condition(a, "HTTPRoute", "later", "Accepted", "False", "Conflicted").await;
    wait_route_condition(a, "GRPCRoute", "echo", "Accepted", "True", "Accepted").await;
    let r = call(dp, "grpc.a.example", Method::Shout, &[])
        .await
        .unwrap();
    assert_eq!(r.backend, "shout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_an_https_listener_reaches_the_backend() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.expect("node");
    let ca = Ca::new("tenant-a-ca").unwrap();
    let cert = ca
        .issue(&Leaf::server("grpcs", &["grpcs.a.example"]))
        .unwrap();
    a.cluster
        .apply(&cert.secret_yaml("default", "grpcs-tls"))
        .await
        .expect("apply Secret");
    let https = format!(
        "{GATEWAY_CLASS}---\n{}    tls:\n      mode: Terminate\n      certificateRefs:\n      - {{name: grpcs-tls}}\n",
        gateway(
            "web",
            &listener("https", "HTTPS", 443, Some("grpcs.a.example"))
        )
    );
    a.cluster.apply(&https).await.expect("apply Gateway");
    let _say = grpc_service(a, node, "say").await;
    let _shout = grpc_service(a, node, "shout").await;
    a.cluster
        .apply(&format!(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: secure
  namespace: default
spec:
  parentRefs:
  - name: web
    sectionName: https
  rules:
  - matches:
    - method: {{service: {SERVICE}, method: Say}}
    backendRefs:
    - {{name: say, port: 50051}}
  - matches:
    - method: {{service: {SERVICE}, method: Shout}}
    backendRefs:
    - {{name: shout, port: 50051}}
"#
        ))
        .await
        .expect("apply GRPCRoute");

    // Over TLS with the tenant's certificate (verified against the test CA for the SNI name),
    // HTTP/2 by ALPN, each method reaches its backend.
    let tls = fleet.hub.data_plane_tls_addr();
    let ca_pem = ca.cert_pem().to_string();
    for (method, backend) in [(Method::Say, "say"), (Method::Shout, "shout")] {
        eventually(TIMEOUT, || async {
            let r = call_tls(tls, "grpcs.a.example", &ca_pem, method, &[])
                .await
                .map_err(|s| anyhow::anyhow!("{method:?} over TLS: {s}"))?;
            ensure!(r.backend == backend, "{method:?} answered by {}", r.backend);
            ensure!(
                r.path == format!("/{SERVICE}/{method:?}"),
                "path seen by the backend: {}",
                r.path
            );
            Ok(())
        })
        .await;
    }
    // The plaintext port does not serve the HTTPS listener's hostname.
    let e = call(fleet.data_plane(), "grpcs.a.example", Method::Say, &[])
        .await
        .expect_err("grpcs.a.example is served over TLS only");
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");

    wait_route_condition(a, "GRPCRoute", "secure", "Accepted", "True", "Accepted").await;
    eventually(TIMEOUT, || async {
        let gw = a
            .cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway missing")?;
        let l = &gw["status"]["listeners"][0];
        ensure!(l["name"] == "https" && l["attachedRoutes"] == 1, "{l}");
        let p = condition(&l["conditions"], "Programmed").context("Programmed")?;
        ensure!(p["status"] == "True", "{l}");
        Ok(())
    })
    .await;
}

/// GRPCRoute ResponseHeaderModifier and RequestMirror through Envoy (issue 10's audit: they were
/// unit-tested only): the client sees the modified response metadata, the mirror backend gets a
/// copy of every call while the client is answered by the main backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_response_header_modifier_and_mirror() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = a.create_node("node-1", 10).await.expect("node");
    a.cluster
        .apply(&class_and_http_gateway(None))
        .await
        .expect("apply Gateway");
    let _main = grpc_service(a, node, "main").await;
    let copy = grpc_service(a, node, "copy").await;
    let route = format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: filtered
  namespace: default
spec:
  parentRefs:
  - name: web
  hostnames: [filtered.a.example]
  rules:
  - matches:
    - method: {{service: {SERVICE}}}
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{{name: x-served-by, value: fleetgate}}]
        add: [{{name: x-tier, value: gold}}]
    - type: RequestMirror
      requestMirror:
        backendRef: {{name: copy, port: 50051}}
    backendRefs:
    - {{name: main, port: 50051}}
"#
    );
    a.cluster.apply(&route).await.expect("apply GRPCRoute");
    let host = "filtered.a.example";
    wait_backend(&fleet, host, Method::Say, &[], "main").await;
    let before = copy.requests();
    for method in [Method::Say, Method::Shout, Method::Say] {
        let (reply, headers) = call_with_headers(fleet.data_plane(), host, method, &[])
            .await
            .unwrap_or_else(|s| panic!("{method:?}: {s}"));
        assert_eq!(reply.backend, "main", "{method:?}");
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-served-by"), Some("fleetgate"), "{headers:?}");
        assert_eq!(get("x-tier"), Some("gold"), "{headers:?}");
    }
    eventually(TIMEOUT, || async {
        let n = copy.requests() - before;
        ensure!(n >= 3, "the mirror saw {n} of 3 calls");
        Ok(())
    })
    .await;
}
