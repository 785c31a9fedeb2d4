//! The hub's admin port (`adminListen`) as an operator's Prometheus scrapes it: clusters by
//! connection state, objects by kind and acceptance with the Gateway API reason, the compile
//! histogram; labels never carry a hostname or an object's name; health answers; anything else
//! is refused with what the port serves.

use std::time::{Duration, Instant};

mod support;
use support::{TWO_TENANTS, TestHub, admin_port, east_with_a_refused_route, free_port};

/// `method path` on the admin port: (status code, body).
async fn admin(port: u16, method: &str, path: &str) -> (u16, String) {
    let a = admin_port(port, method, path, &[], "").await;
    (a.status, a.body)
}

/// Scrapes until every line of `want` is in the output (or 10 s pass); returns the last scrape.
async fn scrape_until(port: u16, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, text) = admin(port, "GET", "/metrics").await;
        assert_eq!(code, 200);
        if want.iter().all(|w| text.lines().any(|l| l.starts_with(w))) || Instant::now() > deadline
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_admin_port_serves_bounded_fleet_metrics_and_health() {
    let port = free_port();
    let mut hub = TestHub::start_with(
        &format!("adminListen: 127.0.0.1:{port}"),
        TWO_TENANTS,
        false,
    )
    .await;
    let s = east_with_a_refused_route(&hub).await;

    let want = [
        r#"fleetgate_hub_clusters{tenant="tenant-a",state="connected"} 1"#,
        r#"fleetgate_hub_clusters{tenant="tenant-b",state="disconnected"} 1"#,
        r#"fleetgate_hub_objects{tenant="tenant-a",kind="Gateway",accepted="true",reason="Accepted"} 1"#,
        r#"fleetgate_hub_objects{tenant="tenant-a",kind="HTTPRoute",accepted="true",reason="Accepted"} 1"#,
        r#"fleetgate_hub_objects{tenant="tenant-a",kind="HTTPRoute",accepted="false",reason="HostnameNotAllowed"} 1"#,
        r#"fleetgate_hub_data_plane_resources{resource="cluster"} 1"#,
        "fleetgate_hub_compile_duration_seconds_count ",
        "fleetgate_hub_store_bytes ",
        "fleetgate_hub_ai_gateways_connected 0",
        // Known label values are shown at 0 before anything goes wrong.
        r#"fleetgate_hub_envoy_nacks{type="envoy.config.listener.v3.Listener"} 0"#,
        r#"fleetgate_hub_ai_gateway_refusals{tenant="tenant-b"} 0"#,
    ];
    let text = scrape_until(port, &want).await;
    for w in want {
        assert!(
            text.lines().any(|l| l.starts_with(w)),
            "missing {w} in:\n{text}"
        );
    }
    // The store file holds the accepted objects: its size is not 0.
    let store_bytes: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("fleetgate_hub_store_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fleetgate_hub_store_bytes in:\n{text}"));
    assert!(store_bytes > 0.0, "store size {store_bytes}:\n{text}");
    // Bounded labels: no hostname, no object name.
    for leak in ["a.example", "b.example", "good", "foreign", "\"web\""] {
        assert!(
            !text.contains(leak),
            "{leak} leaked into the metrics:\n{text}"
        );
    }

    // The agent goes away: its cluster is counted as disconnected.
    drop(s);
    let text = scrape_until(
        port,
        &[r#"fleetgate_hub_clusters{tenant="tenant-a",state="disconnected"} 1"#],
    )
    .await;
    assert!(
        text.contains(r#"fleetgate_hub_clusters{tenant="tenant-a",state="disconnected"} 1"#),
        "{text}"
    );

    assert_eq!(admin(port, "GET", "/healthz").await, (200, "ok\n".into()));
    assert_eq!(admin(port, "GET", "/readyz").await.0, 200);
    let (code, body) = admin(port, "GET", "/admin/secrets").await;
    assert_eq!(code, 404);
    assert!(body.contains("/metrics"), "{body}");
    assert_eq!(admin(port, "POST", "/metrics").await.0, 405);
    hub.stop().await;
}
