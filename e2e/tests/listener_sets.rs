//! ListenerSets (Gateway API v1) end to end on real components (a kube-apiserver with the
//! Gateway API v1.6.3 CRDs, the agent, the hub and Envoy): a Gateway that allows ListenerSets
//! from its namespace takes one that adds a listener on another data-plane port with its own
//! hostname; an HTTPRoute attached to the ListenerSet is served there by Envoy; the statuses of
//! the ListenerSet, the Gateway (`attachedListenerSets`) and the route say so; a ListenerSet
//! whose Gateway allows none is refused (`NotAllowed`) and adds nothing to the data plane. A team
//! in its own namespace brings an HTTPS listener with its own certificate through a ListenerSet
//! on a Gateway that allows ListenerSets from a label selector.
//!
//! Needs the product binaries: `cargo build --bins` first. Each test starts its own fleet.

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{GATEWAY_CLASS, TENANT_A, condition};
use fleetgate_e2e::pki::{Ca, Leaf};
use fleetgate_e2e::{Echo, Fleet, TIMEOUT, eventually};
use serde_json::Value;

/// Gateway `web` takes ListenerSets from its own namespace; its own listener serves
/// www.a.example on port 80. Gateway `closed` leaves allowedListeners unset (None).
const GATEWAYS: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
  namespace: default
spec:
  gatewayClassName: fleetgate
  allowedListeners:
    namespaces:
      from: Same
  listeners:
  - {name: http, protocol: HTTP, port: 80, hostname: www.a.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: closed
  namespace: default
spec:
  gatewayClassName: fleetgate
  listeners:
  - {name: http, protocol: HTTP, port: 80, hostname: closed.a.example}
"#;

/// ListenerSet `extra` adds port 8080 for alt.a.example to `web`; `refused` tries the same on
/// `closed`.
const LISTENER_SETS: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata:
  name: extra
  namespace: default
spec:
  parentRef:
    name: web
  listeners:
  - {name: alt, protocol: HTTP, port: 8080, hostname: alt.a.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata:
  name: refused
  namespace: default
spec:
  parentRef:
    name: closed
  listeners:
  - {name: alt, protocol: HTTP, port: 8080, hostname: refused.a.example}
"#;

/// `main` on the Gateway's own listener -> Service main; `alt` on the ListenerSet (no hostnames:
/// it gets the listener's) -> Service alt; `lost` on the refused ListenerSet.
const ROUTES: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: main
  namespace: default
spec:
  parentRefs:
  - name: web
  hostnames: [www.a.example]
  rules:
  - backendRefs:
    - {name: main, port: 8080}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: alt
  namespace: default
spec:
  parentRefs:
  - group: gateway.networking.k8s.io
    kind: ListenerSet
    name: extra
    sectionName: alt
  rules:
  - backendRefs:
    - {name: alt, port: 8080}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: lost
  namespace: default
spec:
  parentRefs:
  - kind: ListenerSet
    name: refused
  rules:
  - backendRefs:
    - {name: alt, port: 8080}
"#;

/// The `type` condition of `conditions` as (status, reason).
fn cond(conditions: &Value, type_: &str) -> anyhow::Result<(String, String)> {
    let c = condition(conditions, type_).with_context(|| format!("no {type_} in {conditions}"))?;
    Ok((
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    ))
}

fn is(c: (String, String), status: &str, reason: &str) -> bool {
    c.0 == status && c.1 == reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_set_adds_a_port_and_hostname_to_its_gateway() {
    let fleet = Fleet::start_named_with_http_ports("listener-sets", &[TENANT_A], &[8080])
        .await
        .expect("fleet");
    let a = fleet.tenant("tenant-a");
    let ip = a.create_node("node-1", 10).await.unwrap();
    let _main = a.node_port_backend("main", ip, "main-echo").await.unwrap();
    let _alt = a.node_port_backend("alt", ip, "alt-echo").await.unwrap();
    for y in [GATEWAY_CLASS, GATEWAYS, LISTENER_SETS, ROUTES] {
        a.cluster.apply(y).await.unwrap();
    }

    // Envoy serves the ListenerSet's listener on port 8080 with the route attached to it, and
    // the Gateway's own listener on port 80; neither hostname leaks onto the other port.
    eventually(TIMEOUT, || async {
        let (status, body) = fleet.get_on(8080, "alt.a.example", "/").await?;
        ensure!(
            status == 200 && body == "alt-echo",
            "alt.a.example:8080 -> {status} {body:?}"
        );
        let (status, body) = fleet.get("www.a.example", "/").await?;
        ensure!(
            status == 200 && body == "main-echo",
            "www.a.example:80 -> {status} {body:?}"
        );
        Ok(())
    })
    .await;
    let (status, _) = fleet.get("alt.a.example", "/").await.unwrap();
    assert_eq!(
        status, 404,
        "the ListenerSet's hostname is served on its port only"
    );
    let (status, _) = fleet.get_on(8080, "www.a.example", "/").await.unwrap();
    assert_eq!(
        status, 404,
        "the Gateway's hostname is not served on the new port"
    );
    // The refused ListenerSet added nothing.
    let (status, _) = fleet.get_on(8080, "refused.a.example", "/").await.unwrap();
    assert_eq!(status, 404, "a refused ListenerSet adds no hostname");

    // Status: the ListenerSet is accepted and programmed with its listener's attached route;
    // the Gateway counts it and lists only its own listener; the route names its parent as
    // written.
    eventually(TIMEOUT, || async {
        let ls = a
            .cluster
            .get_json("ListenerSet", "default", "extra")
            .await?
            .context("ListenerSet extra")?;
        let st = &ls["status"];
        ensure!(
            is(cond(&st["conditions"], "Accepted")?, "True", "Accepted"),
            "Accepted: {st}"
        );
        ensure!(
            is(cond(&st["conditions"], "Programmed")?, "True", "Programmed"),
            "Programmed: {st}"
        );
        let g = ls["metadata"]["generation"]
            .as_i64()
            .context("generation")?;
        let observed =
            condition(&st["conditions"], "Accepted").context("Accepted")?["observedGeneration"]
                .as_i64();
        ensure!(
            observed == Some(g),
            "observedGeneration {observed:?}, generation {g}"
        );
        let l = &st["listeners"][0];
        ensure!(l["name"] == "alt", "listeners: {}", st["listeners"]);
        ensure!(l["attachedRoutes"] == 1, "attachedRoutes: {l}");
        ensure!(
            is(cond(&l["conditions"], "Programmed")?, "True", "Programmed"),
            "listener: {l}"
        );
        ensure!(
            l["supportedKinds"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k["kind"] == "HTTPRoute")),
            "supportedKinds: {l}"
        );

        let gw = a
            .cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway web")?;
        ensure!(
            gw["status"]["attachedListenerSets"] == 1,
            "attachedListenerSets: {}",
            gw["status"]
        );
        let own = gw["status"]["listeners"].as_array().context("listeners")?;
        ensure!(
            own.len() == 1 && own[0]["name"] == "http" && own[0]["attachedRoutes"] == 1,
            "the Gateway lists its own listener only: {own:?}"
        );

        let r = a
            .cluster
            .get_json("HTTPRoute", "default", "alt")
            .await?
            .context("HTTPRoute alt")?;
        let parent = &r["status"]["parents"][0];
        ensure!(
            parent["parentRef"]["kind"] == "ListenerSet" && parent["parentRef"]["name"] == "extra",
            "parentRef: {parent}"
        );
        ensure!(
            is(cond(&parent["conditions"], "Accepted")?, "True", "Accepted"),
            "route: {parent}"
        );
        Ok(())
    })
    .await;

    // The ListenerSet of a Gateway that allows none is refused, and says what to change.
    eventually(TIMEOUT, || async {
        let ls = a
            .cluster
            .get_json("ListenerSet", "default", "refused")
            .await?
            .context("ListenerSet refused")?;
        let st = &ls["status"];
        ensure!(
            is(cond(&st["conditions"], "Accepted")?, "False", "NotAllowed"),
            "Accepted: {st}"
        );
        ensure!(
            is(
                cond(&st["conditions"], "Programmed")?,
                "False",
                "NotAllowed"
            ),
            "Programmed: {st}"
        );
        let msg = condition(&st["conditions"], "Accepted").context("Accepted")?["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(msg.contains("allowedListeners"), "message: {msg}");
        let gw = a
            .cluster
            .get_json("Gateway", "default", "closed")
            .await?
            .context("Gateway closed")?;
        let n = gw["status"]["attachedListenerSets"].as_i64().unwrap_or(0);
        ensure!(n == 0, "attachedListenerSets of closed: {n}");
        ensure!(
            is(
                cond(&gw["status"]["conditions"], "Programmed")?,
                "True",
                "Programmed"
            ),
            "the closed Gateway itself is fine: {}",
            gw["status"]
        );
        let r = a
            .cluster
            .get_json("HTTPRoute", "default", "lost")
            .await?
            .context("HTTPRoute lost")?;
        let parent = &r["status"]["parents"][0];
        ensure!(
            is(
                cond(&parent["conditions"], "Accepted")?,
                "False",
                "NoMatchingParent"
            ),
            "route on a refused ListenerSet: {parent}"
        );
        Ok(())
    })
    .await;

    // Allowing it later takes it: the Gateway's change alone brings the hostname up.
    a.cluster
        .apply(&GATEWAYS.replace(
            "  name: closed\n  namespace: default\nspec:\n  gatewayClassName: fleetgate\n",
            "  name: closed\n  namespace: default\nspec:\n  gatewayClassName: fleetgate\n  allowedListeners: {namespaces: {from: All}}\n",
        ))
        .await
        .unwrap();
    eventually(TIMEOUT, || async {
        let (status, body) = fleet.get_on(8080, "refused.a.example", "/").await?;
        ensure!(
            status == 200 && body == "alt-echo",
            "refused.a.example:8080 after allowing -> {status} {body:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_brings_its_own_https_listener_and_certificate() {
    let fleet = Fleet::start(&[TENANT_A]).await.expect("fleet");
    let a = fleet.tenant("tenant-a");
    let ip = a.create_node("node-1", 10).await.unwrap();
    a.cluster
        .apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {listeners: allowed}\n")
        .await
        .unwrap();
    a.cluster
        .apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n")
        .await
        .unwrap();
    // The team's Service and backend, in its namespace.
    let node_port = fleetgate_e2e::ports::free_port_in(ip, 30000..=32767).unwrap();
    a.cluster
        .apply(&fleetgate_e2e::fixtures::http_service(
            "team", "app", node_port,
        ))
        .await
        .unwrap();
    let _app = Echo::start_at("team-app", std::net::SocketAddr::new(ip, node_port))
        .await
        .unwrap();
    let ca = Ca::new("team-ca").unwrap();
    let cert = ca
        .issue(&Leaf::server("secure", &["secure.a.example"]))
        .unwrap();
    a.cluster
        .apply(&cert.secret_yaml("team", "secure-tls"))
        .await
        .unwrap();
    let yaml = format!(
        r#"{GATEWAY_CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: shared
  namespace: default
spec:
  gatewayClassName: fleetgate
  allowedListeners:
    namespaces:
      from: Selector
      selector:
        matchLabels: {{listeners: allowed}}
  listeners:
  - {{name: http, protocol: HTTP, port: 80, hostname: www.a.example}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata:
  name: secure
  namespace: team
spec:
  parentRef:
    name: shared
    namespace: default
  listeners:
  - name: https
    protocol: HTTPS
    port: 443
    hostname: secure.a.example
    tls:
      mode: Terminate
      certificateRefs:
      - {{name: secure-tls}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata:
  name: unselected
  namespace: other
spec:
  parentRef:
    name: shared
    namespace: default
  listeners:
  - {{name: http, protocol: HTTP, port: 80, hostname: other.a.example}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: app
  namespace: team
spec:
  parentRefs:
  - {{kind: ListenerSet, name: secure}}
  rules:
  - backendRefs:
    - {{name: app, port: 8080}}
"#
    );
    a.cluster.apply(&yaml).await.unwrap();

    // Envoy terminates TLS for the team's hostname with the team's certificate (verified
    // against the team's CA for that SNI name) and forwards to the team's backend.
    let tls = fleet.hub.data_plane_tls_addr();
    let want_serial = fleetgate_e2e::tls::serial_of_pem(&cert.cert_pem).unwrap();
    eventually(TIMEOUT, || async {
        let (status, body, serial) =
            fleetgate_e2e::tls::https_get(tls, "secure.a.example", ca.cert_pem(), "/").await?;
        ensure!(
            status == 200 && body == "team-app",
            "https://secure.a.example -> {status} {body:?}"
        );
        ensure!(serial == want_serial, "served certificate {serial}");
        Ok(())
    })
    .await;

    eventually(TIMEOUT, || async {
        let ls = a
            .cluster
            .get_json("ListenerSet", "team", "secure")
            .await?
            .context("ListenerSet secure")?;
        let l = &ls["status"]["listeners"][0];
        ensure!(
            is(
                cond(&l["conditions"], "ResolvedRefs")?,
                "True",
                "ResolvedRefs"
            ) && is(cond(&l["conditions"], "Programmed")?, "True", "Programmed")
                && l["attachedRoutes"] == 1,
            "listener: {l}"
        );
        // The namespace the selector does not select is refused.
        let other = a
            .cluster
            .get_json("ListenerSet", "other", "unselected")
            .await?
            .context("ListenerSet unselected")?;
        ensure!(
            is(
                cond(&other["status"]["conditions"], "Accepted")?,
                "False",
                "NotAllowed"
            ),
            "unselected: {}",
            other["status"]
        );
        let gw = a
            .cluster
            .get_json("Gateway", "default", "shared")
            .await?
            .context("Gateway shared")?;
        ensure!(
            gw["status"]["attachedListenerSets"] == 1,
            "attachedListenerSets: {}",
            gw["status"]
        );
        Ok(())
    })
    .await;
    let (status, _) = fleet.get("other.a.example", "/").await.unwrap();
    assert_eq!(status, 404, "the unselected ListenerSet adds no hostname");
}
