//! HTTPRoute Core and Extended features end to end on real components: tenant YAML in a tenant
//! API server -> agent -> hub -> Envoy -> echo backends. Matching (regex path, query, method,
//! precedence across routes), filters (redirect, rewrite, header modifiers, mirror, CORS),
//! timeouts, WebSocket upgrades and h2c backends.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{
    TENANT_A, class_and_http_gateway, condition, http_route, node_port_service,
};
use fleetgate_e2e::http::{Response, send};
use fleetgate_e2e::{Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A NodePort Service `name` (port 8080, optional appProtocol) and an echo backend of the same
/// name on the node's nodePort.
async fn service(t: &FleetTenant, node: IpAddr, name: &str, app_protocol: Option<&str>) -> Echo {
    let node_port = fleetgate_e2e::ports::free_port_in(node, 30000..=32767).expect("free port");
    let yaml = node_port_service("default", name, "TCP", 8080, node_port, app_protocol);
    t.cluster.apply(&yaml).await.expect("apply Service");
    Echo::start_at(name, SocketAddr::new(node, node_port))
        .await
        .expect("echo backend")
}

/// Node `node-1` and the Gateway.
async fn setup(t: &FleetTenant) -> IpAddr {
    let ip = t.create_node("node-1", 10).await.expect("node");
    t.cluster
        .apply(&class_and_http_gateway(None))
        .await
        .expect("apply Gateway");
    ip
}

/// An HTTPRoute `name` on Gateway `web` for `host` with the given `rules:` YAML (indented by 2).
fn route(name: &str, host: &str, rules: &str) -> String {
    http_route("default", name, &["{name: web}"], &[host], rules)
}

async fn call(
    fleet: &Fleet,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    send(fleet.data_plane(), method, host, path, headers).await
}

/// Waits until `method host path` is answered by echo backend `backend` (status 200).
async fn wait_backend(
    fleet: &Fleet,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    backend: &str,
) {
    eventually(TIMEOUT, || async {
        let r = call(fleet, method, host, path, headers).await?;
        ensure!(
            r.status == 200 && r.body == backend,
            "{method} {host}{path} {headers:?}: {} {:?} (want 200 from {backend})",
            r.status,
            r.body
        );
        Ok(())
    })
    .await
}

/// Asserts (now, once the configuration is known to be live) who answers.
async fn expect_backend(
    fleet: &Fleet,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    backend: &str,
) {
    let r = call(fleet, method, host, path, headers).await.unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, backend),
        "{method} {host}{path} {headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_query_method_and_precedence_across_routes() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = setup(a).await;
    let _one = service(a, node, "one", None).await;
    let _two = service(a, node, "two", None).await;
    let _three = service(a, node, "three", None).await;
    let to = |svc: &str| format!("    backendRefs:\n    - name: {svc}\n      port: 8080\n");

    // Route a-older: regex path, query and method matches, a plain prefix, and a prefix that
    // b-newer also has (the tie goes to the older / alphabetically first route).
    let older = route(
        "a-older",
        "match.a.example",
        &format!(
            "  - matches:\n    - path: {{type: RegularExpression, value: \"/v[0-9]+/items\"}}\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /api}}\n      method: POST\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /api}}\n      queryParams:\n      - {{name: animal, value: whale}}\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /api}}\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /p}}\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /}}\n{}",
            to("one"),
            to("three"),
            to("one"),
            to("two"),
            to("one"),
            to("two"),
        ),
    );
    a.cluster.apply(&older).await.expect("apply a-older");
    wait_backend(&fleet, "GET", "match.a.example", "/v2/items", &[], "one").await;

    // Regex: the whole path must match.
    expect_backend(&fleet, "GET", "match.a.example", "/v42/items", &[], "one").await;
    expect_backend(&fleet, "GET", "match.a.example", "/v2/itemsx", &[], "two").await;
    expect_backend(&fleet, "GET", "match.a.example", "/vx/items", &[], "two").await;
    // Method beats query parameters; query parameters beat none.
    expect_backend(&fleet, "POST", "match.a.example", "/api", &[], "three").await;
    expect_backend(
        &fleet,
        "POST",
        "match.a.example",
        "/api?animal=whale",
        &[],
        "three",
    )
    .await;
    expect_backend(
        &fleet,
        "GET",
        "match.a.example",
        "/api?animal=whale",
        &[],
        "one",
    )
    .await;
    expect_backend(
        &fleet,
        "GET",
        "match.a.example",
        "/api?animal=dolphin",
        &[],
        "two",
    )
    .await;
    expect_backend(&fleet, "GET", "match.a.example", "/api/x", &[], "two").await;

    // Route b-newer on the same host: an exact path and a prefix with a header match win over
    // a-older's /p; the plain /p tie stays with a-older.
    let newer = route(
        "b-newer",
        "match.a.example",
        &format!(
            "  - matches:\n    - path: {{type: Exact, value: /p/exact}}\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /p}}\n      headers:\n      - {{name: x-h, value: \"1\"}}\n{}\
             \x20 - matches:\n    - path: {{type: PathPrefix, value: /p}}\n{}",
            to("three"),
            to("two"),
            to("three"),
        ),
    );
    a.cluster.apply(&newer).await.expect("apply b-newer");
    wait_backend(&fleet, "GET", "match.a.example", "/p/exact", &[], "three").await;
    expect_backend(
        &fleet,
        "GET",
        "match.a.example",
        "/p/x",
        &[("x-h", "1")],
        "two",
    )
    .await;
    expect_backend(&fleet, "GET", "match.a.example", "/p/x", &[], "one").await;
    expect_backend(&fleet, "GET", "match.a.example", "/p", &[], "one").await;
    // Element-wise prefix: /px is not under /p.
    expect_backend(&fleet, "GET", "match.a.example", "/px", &[], "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_rewrites_header_modifiers_mirror_and_cors() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = setup(a).await;
    let _one = service(a, node, "one", None).await;
    let mirror = service(a, node, "mirror", None).await;
    // Some rules are named (HTTPRouteNamedRouteRule): names are carried and change nothing
    // else.
    let rules = r#"  - name: moved
    matches:
    - path: {type: PathPrefix, value: /old}
    filters:
    - type: RequestRedirect
      requestRedirect:
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
        statusCode: 301
  - matches:
    - path: {type: PathPrefix, value: /secure}
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: secure.a.example
  - matches:
    - path: {type: PathPrefix, value: /port}
    filters:
    - type: RequestRedirect
      requestRedirect:
        port: 8443
        path: {type: ReplaceFullPath, replaceFullPath: /elsewhere}
  - name: rewrite-prefix
    matches:
    - path: {type: PathPrefix, value: /rewrite}
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: internal.a.example
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /}
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /full}
    filters:
    - type: URLRewrite
      urlRewrite:
        path: {type: ReplaceFullPath, replaceFullPath: /replaced}
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /headers}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: x-req-added, value: yes}]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: x-resp-set, value: "1"}]
        remove: [x-echo-path]
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /mirror}
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {name: mirror, port: 8080}
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /cors}
    filters:
    - type: CORS
      cors:
        allowOrigins: ["https://app.a.example"]
        allowMethods: [GET, PUT]
        maxAge: 60
    backendRefs:
    - {name: one, port: 8080}
"#;
    a.cluster
        .apply(&route("filters", "filters.a.example", rules))
        .await
        .expect("apply route");
    let host = "filters.a.example";
    wait_backend(&fleet, "GET", host, "/rewrite/x", &[], "one").await;

    // Two rules of one name: the Gateway API v1.6 standard CRD lets the API server store it,
    // so the hub refuses it (`admit::rule_names`): Accepted=False on the new generation, and the
    // version already served stays served.
    let twice = "  - name: same\n    backendRefs:\n    - {name: one, port: 8080}\n\
                 \x20 - name: same\n    backendRefs:\n    - {name: one, port: 8080}\n";
    a.cluster
        .apply(&route("filters", host, twice))
        .await
        .expect("the API server stores it");
    eventually(TIMEOUT, || async {
        let r = a
            .cluster
            .get_json("HTTPRoute", "default", "filters")
            .await?
            .context("HTTPRoute filters")?;
        let c = condition(&r["status"]["parents"][0]["conditions"], "Accepted")
            .with_context(|| format!("no Accepted: {}", r["status"]))?;
        ensure!(
            c["status"] == "False"
                && c["observedGeneration"] == 2
                && c["message"].as_str().is_some_and(|m| m.contains("unique")),
            "Accepted: {c}"
        );
        Ok(())
    })
    .await;
    expect_backend(&fleet, "GET", host, "/rewrite/x", &[], "one").await;

    // Redirects: status and Location.
    for (path, status, location) in [
        ("/old/x", 301, "http://filters.a.example/new/x"),
        ("/secure/y", 302, "https://secure.a.example/secure/y"),
        ("/port/z", 302, "http://filters.a.example:8443/elsewhere"),
    ] {
        let r = call(&fleet, "GET", host, path, &[]).await.unwrap();
        assert_eq!(r.status, status, "{path}: {r:?}");
        assert_eq!(r.header("location"), Some(location), "{path}: {r:?}");
    }

    // URL rewrites: the backend sees the rewritten path and host.
    let r = call(&fleet, "GET", host, "/rewrite/x", &[]).await.unwrap();
    assert_eq!(r.header("x-echo-path"), Some("/x"), "{r:?}");
    assert_eq!(
        r.header("x-echo-header-host"),
        Some("internal.a.example"),
        "{r:?}"
    );
    let r = call(&fleet, "GET", host, "/rewrite", &[]).await.unwrap();
    assert_eq!(r.header("x-echo-path"), Some("/"), "{r:?}");
    let r = call(&fleet, "GET", host, "/full/a/b", &[]).await.unwrap();
    assert_eq!(r.header("x-echo-path"), Some("/replaced"), "{r:?}");

    // Request and response header modifiers.
    let r = call(&fleet, "GET", host, "/headers", &[]).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-echo-header-x-req-added"), Some("yes"), "{r:?}");
    assert_eq!(r.header("x-resp-set"), Some("1"), "{r:?}");
    assert_eq!(r.header("x-echo-path"), None, "removed: {r:?}");

    // Mirror: the mirror backend gets copies, the client gets the main backend's answer.
    let before = mirror.requests();
    for _ in 0..5 {
        expect_backend(&fleet, "GET", host, "/mirror/m", &[], "one").await;
    }
    eventually(TIMEOUT, || async {
        let n = mirror.requests();
        ensure!(
            n >= before + 5,
            "mirror saw {} requests, want {}",
            n - before,
            5
        );
        Ok(())
    })
    .await;

    // CORS: a preflight from an allowed origin is answered by the data plane.
    let r = call(
        &fleet,
        "OPTIONS",
        host,
        "/cors",
        &[
            ("origin", "https://app.a.example"),
            ("access-control-request-method", "PUT"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.a.example"),
        "{r:?}"
    );
    assert_eq!(r.header("access-control-max-age"), Some("60"), "{r:?}");
    let r = call(
        &fleet,
        "GET",
        host,
        "/cors",
        &[("origin", "https://evil.example")],
    )
    .await
    .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
}

/// Extended features that were unit-tested only (issue 10's audit): 303/307/308 redirects,
/// several mirrors on one rule, percentage mirrors, and header modifiers on one backendRef only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_codes_mirrors_and_backend_filters() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = setup(a).await;
    let _one = service(a, node, "one", None).await;
    let _two = service(a, node, "two", None).await;
    let m1 = service(a, node, "m1", None).await;
    let m2 = service(a, node, "m2", None).await;
    let half = service(a, node, "half", None).await;
    let never = service(a, node, "never", None).await;
    let rules = r#"  - matches:
    - path: {type: PathPrefix, value: /see-other}
    filters:
    - {type: RequestRedirect, requestRedirect: {statusCode: 303, path: {type: ReplaceFullPath, replaceFullPath: /done}}}
  - matches:
    - path: {type: PathPrefix, value: /temporary}
    filters:
    - {type: RequestRedirect, requestRedirect: {statusCode: 307, hostname: other.a.example}}
  - matches:
    - path: {type: PathPrefix, value: /permanent}
    filters:
    - {type: RequestRedirect, requestRedirect: {statusCode: 308, scheme: https}}
  - matches:
    - path: {type: PathPrefix, value: /two-mirrors}
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: m1, port: 8080}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m2, port: 8080}}}
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /some}
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: half, port: 8080}, percent: 50}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: never, port: 8080}, fraction: {numerator: 0, denominator: 100}}}
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /per-backend}
    backendRefs:
    - name: one
      port: 8080
      weight: 1
      filters:
      - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-backend, value: one}]}}
      - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-via, value: one}]}}
    - {name: two, port: 8080, weight: 1}
"#;
    let host = "more.a.example";
    a.cluster
        .apply(&route("more", host, rules))
        .await
        .expect("apply route");
    wait_backend(&fleet, "GET", host, "/two-mirrors", &[], "one").await;

    for (path, status, location) in [
        ("/see-other/x", 303, "http://more.a.example/done"),
        ("/temporary/y", 307, "http://other.a.example/temporary/y"),
        ("/permanent/z", 308, "https://more.a.example/permanent/z"),
    ] {
        let r = call(&fleet, "POST", host, path, &[]).await.unwrap();
        assert_eq!(r.status, status, "{path}: {r:?}");
        assert_eq!(r.header("location"), Some(location), "{path}: {r:?}");
    }

    // Two mirrors on one rule: each gets a copy of every request.
    let (b1, b2) = (m1.requests(), m2.requests());
    for _ in 0..5 {
        expect_backend(&fleet, "GET", host, "/two-mirrors", &[], "one").await;
    }
    eventually(TIMEOUT, || async {
        let (n1, n2) = (m1.requests() - b1, m2.requests() - b2);
        ensure!(n1 >= 5 && n2 >= 5, "mirrors saw {n1} and {n2}, want 5 each");
        Ok(())
    })
    .await;

    // Percentage mirrors: 50 % gets about half (a wide band: 200 requests, so the chance of
    // falling outside 60..=140 by luck is below one in a million), 0 % none.
    let (h0, n0) = (half.requests(), never.requests());
    for _ in 0..200 {
        expect_backend(&fleet, "GET", host, "/some", &[], "one").await;
    }
    // Mirrors are sent alongside; give the last copies time to land before counting.
    let settled = eventually(TIMEOUT, || async {
        let n = half.requests() - h0;
        ensure!(n >= 60, "the 50 % mirror saw only {n} of 200");
        Ok(n)
    })
    .await;
    assert!(settled <= 140, "the 50 % mirror saw {settled} of 200");
    assert_eq!(never.requests() - n0, 0, "the 0 % mirror got copies");

    // Header modifiers on one backendRef apply to that backend's share only.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let r = call(&fleet, "GET", host, "/per-backend", &[])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        let (set, via) = (r.header("x-echo-header-x-backend"), r.header("x-via"));
        match r.body.as_str() {
            "one" => assert_eq!((set, via), (Some("one"), Some("one")), "{r:?}"),
            "two" => assert_eq!((set, via), (None, None), "{r:?}"),
            other => panic!("unexpected backend {other}: {r:?}"),
        }
        *seen.entry(r.body.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both backends answered: {seen:?}");
}

/// Sends a WebSocket upgrade request over a raw connection; returns the response head.
async fn websocket_handshake(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .context("websocket handshake timed out")??;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_websocket_and_h2c_backends() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = setup(a).await;
    let _one = service(a, node, "one", None).await;
    let _h2 = service(a, node, "grpcish", Some("kubernetes.io/h2c")).await;
    let _ws = service(a, node, "ws", Some("kubernetes.io/ws")).await;
    let rules = r#"  - matches:
    - path: {type: PathPrefix, value: /slow}
    timeouts:
      request: 500ms
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /try}
    timeouts:
      request: 10s
      backendRequest: 500ms
    backendRefs:
    - {name: one, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /h2}
    backendRefs:
    - {name: grpcish, port: 8080}
  - matches:
    - path: {type: PathPrefix, value: /ws}
    backendRefs:
    - {name: ws, port: 8080}
  - backendRefs:
    - {name: one, port: 8080}
"#;
    a.cluster
        .apply(&route("misc", "misc.a.example", rules))
        .await
        .expect("apply route");
    let host = "misc.a.example";
    wait_backend(&fleet, "GET", host, "/slow", &[], "one").await;

    // Timeouts: a backend slower than the request timeout gets 504; a fast one 200.
    let r = call(&fleet, "GET", host, "/slow", &[("x-echo-delay-ms", "3000")])
        .await
        .unwrap();
    assert_eq!(r.status, 504, "{r:?}");
    let r = call(&fleet, "GET", host, "/slow", &[("x-echo-delay-ms", "10")])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // backendRequest bounds each try to the backend.
    let r = call(&fleet, "GET", host, "/try", &[("x-echo-delay-ms", "3000")])
        .await
        .unwrap();
    assert_eq!(r.status, 504, "{r:?}");
    let r = call(&fleet, "GET", host, "/try", &[]).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // No timeout on the other rules: the same delay is fine there.
    let r = call(
        &fleet,
        "GET",
        host,
        "/other",
        &[("x-echo-delay-ms", "1000")],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");

    // h2c: the backend receives HTTP/2 from Envoy; a plain backend HTTP/1.1.
    let r = call(&fleet, "GET", host, "/h2", &[]).await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "grpcish"), "{r:?}");
    assert_eq!(r.header("x-echo-version"), Some("HTTP/2.0"), "{r:?}");
    let r = call(&fleet, "GET", host, "/other", &[]).await.unwrap();
    assert_eq!(r.header("x-echo-version"), Some("HTTP/1.1"), "{r:?}");

    // WebSocket: the upgrade goes through Envoy to the backend and back.
    let head = websocket_handshake(fleet.data_plane(), host, "/ws")
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-echo-backend: ws"),
        "{head}"
    );

    // Nothing matches on a known host: 404.
    a.cluster
        .apply(&route(
            "narrow",
            "narrow.a.example",
            "  - matches:\n    - path: {type: Exact, value: /only}\n    backendRefs:\n    - {name: one, port: 8080}\n",
        ))
        .await
        .unwrap();
    wait_backend(&fleet, "GET", "narrow.a.example", "/only", &[], "one").await;
    let r = call(&fleet, "GET", "narrow.a.example", "/other", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{r:?}");
}

/// An ExtensionRef filter (fleetgate has no filter extensions) on one rule: that rule answers
/// 500, never served without the filter; the route's other rule is served; the route is
/// `Accepted=False/UnsupportedValue` in the tenant cluster with a message naming the filter and
/// what to change (issue 10's audit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_ref_filter_answers_500_on_its_rule_and_the_route_says_why() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let node = setup(a).await;
    let _one = service(a, node, "one", None).await;
    let host = "ext.a.example";
    a.cluster
        .apply(&route(
            "ext",
            host,
            "  - matches:\n    - path: {type: PathPrefix, value: /guarded}\n    filters:\n    - type: ExtensionRef\n      extensionRef: {group: auth.example.com, kind: Policy, name: strict}\n    backendRefs:\n    - {name: one, port: 8080}\n  - backendRefs:\n    - {name: one, port: 8080}\n",
        ))
        .await
        .unwrap();
    wait_backend(&fleet, "GET", host, "/open", &[], "one").await;
    let r = call(&fleet, "GET", host, "/guarded/x", &[]).await.unwrap();
    assert_eq!(r.status, 500, "{r:?}");
    assert_ne!(r.body, "one", "the backend must not be reached: {r:?}");
    eventually(TIMEOUT, || async {
        let r = a
            .cluster
            .get_json("HTTPRoute", "default", "ext")
            .await?
            .context("HTTPRoute ext")?;
        let c = condition(&r["status"]["parents"][0]["conditions"], "Accepted")
            .with_context(|| format!("no Accepted: {}", r["status"]))?;
        ensure!(
            c["status"] == "False" && c["reason"] == "UnsupportedValue",
            "Accepted: {c}"
        );
        let m = c["message"].as_str().unwrap_or_default();
        ensure!(
            m.contains("ExtensionRef auth.example.com/Policy \"strict\"")
                && m.contains("remove the filter"),
            "message: {m}"
        );
        ensure!(
            c["observedGeneration"] == r["metadata"]["generation"],
            "stale: {c}"
        );
        Ok(())
    })
    .await;
}
