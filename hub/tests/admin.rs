//! The operators' admin API on the hub's admin port, driven the way an operator drives it: with
//! the `fleetgate-hub` binary (`operator-token create`, then `admin ...`) against a hub run
//! in-process, plus raw HTTP for what the CLI never sends. Every admin action is refused
//! without a token, with a bad, foreign or expired one, and with a viewer's; an admin's
//! disable, enable and revoke reach the agent's stream and survive a hub restart.

use std::process::Output;
use std::time::Duration;

use fleetgate_hub::admin::operator_token::{self, Role};
use fleetgate_hub::enroll::token::{self, TokenKey};
use serde_json::Value;

mod support;
use support::{
    SyncStream, TWO_TENANTS, TestHub, admin_port, east_with_a_refused_route, free_port,
    http_gateway, mtls_channel,
};

/// Runs `fleetgate-hub args...` (off the async runtime: the hub under test runs on it).
async fn hub_cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate-hub"))
            .args(&args)
            .output()
            .expect("running fleetgate-hub")
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An operator token minted by the CLI, as an operator gets one.
async fn operator(hub: &TestHub, name: &str, role: &str) -> String {
    let pki = hub.pki().display().to_string();
    let out = hub_cli(
        [
            "operator-token",
            "create",
            "--pki-dir",
            &pki,
            "--name",
            name,
            "--role",
            role,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// `fleetgate-hub admin --url ... --token ... <args>`.
async fn admin(port: u16, token: &str, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec![
        "admin".into(),
        "--url".into(),
        format!("http://127.0.0.1:{port}"),
        "--token".into(),
        token.into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    hub_cli(all).await
}

/// `fleetgate-hub admin --url ... --token ... <words of line>`.
async fn cli(port: u16, token: &str, line: &str) -> Output {
    admin(port, token, &line.split_whitespace().collect::<Vec<_>>()).await
}

/// The command failed and said `why` on stderr.
fn assert_refused(out: &Output, why: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "succeeded: {}", text(&out.stdout));
    assert!(err.contains(why), "{err}");
}

async fn admin_json(port: u16, token: &str, args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = admin(port, token, &all).await;
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `method path` on the admin port with `authorization` (raw), body `body`: (status, body).
async fn raw(
    port: u16,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> (u16, String) {
    let headers: Vec<String> = authorization
        .map(|a| format!("authorization: {a}"))
        .into_iter()
        .collect();
    let a = admin_port(port, method, path, &headers, body).await;
    (a.status, a.body)
}

/// Every action of the API, as (method, path, body).
const ACTIONS: [(&str, &str, &str); 4] = [
    ("POST", "/api/v1/clusters/tenant-a/east/disable", ""),
    ("POST", "/api/v1/clusters/tenant-a/east/enable", ""),
    ("POST", "/api/v1/clusters/tenant-a/east/revoke", ""),
    (
        "POST",
        "/api/v1/tokens",
        r#"{"tenant": "tenant-a", "cluster": "east"}"#,
    ),
];
/// Every read of the API.
const READS: [&str; 6] = [
    "/api/v1/data-plane",
    "/api/v1/whoami",
    "/api/v1/tenants",
    "/api/v1/clusters",
    "/api/v1/allocations",
    "/api/v1/tenants/tenant-a/objects",
];

async fn start() -> (TestHub, u16) {
    let port = free_port();
    let hub = TestHub::start_with(
        &format!("adminListen: 127.0.0.1:{port}"),
        TWO_TENANTS,
        false,
    )
    .await;
    (hub, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_the_fleet_and_only_admins_act() {
    let (mut hub, port) = start().await;
    // tenant-b's hostname on route `foreign`: refused, and the operator sees why.
    let _agent = east_with_a_refused_route(&hub).await;

    let viewer = operator(&hub, "vera", "viewer").await;
    let who = admin_json(port, &viewer, &["whoami"]).await;
    assert_eq!(
        (who["name"].as_str(), who["role"].as_str()),
        (Some("vera"), Some("viewer"))
    );

    let tenants = admin_json(port, &viewer, &["tenants"]).await;
    let a = &tenants.as_array().unwrap()[0];
    assert_eq!(a["name"], "tenant-a");
    assert_eq!(
        (a["clusters"].as_u64(), a["connected"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (a["objects"].as_u64(), a["withProblems"].as_u64()),
        (Some(3), Some(1))
    );
    // The Gateway listener's wildcard and the route's hostname; not the refused one.
    assert_eq!(
        a["ownedHostnames"],
        serde_json::json!(["*.a.example", "app.a.example"])
    );

    // No Envoy or AI gateway connected, no Envoy rejection standing.
    let data_plane = admin_json(port, &viewer, &["data-plane"]).await;
    assert_eq!(
        data_plane,
        serde_json::json!({"envoys": [], "aiGateways": [], "envoyRejections": []})
    );

    // The table form, as printed.
    let out = cli(port, &viewer, "clusters list").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0][..3], ["TENANT", "CLUSTER", "STATE"], "{table}");
    assert_eq!(lines[1][..3], ["tenant-a", "east", "connected"], "{table}");
    assert_eq!(
        lines[2][..3],
        ["tenant-b", "west", "disconnected"],
        "{table}"
    );

    // The rejection with the message the tenant got.
    let objects = admin_json(
        port,
        &viewer,
        &["status", "--tenant", "tenant-a", "--query", "foreign"],
    )
    .await;
    let objects = objects.as_array().unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let problem = &objects[0]["problems"][0];
    assert_eq!(problem["type"], "Accepted");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("shop.b.example"),
        "{problem}"
    );
    let out = cli(port, &viewer, "status --tenant nobody").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no tenant \"nobody\""),
        "{}",
        text(&out.stderr)
    );

    // A viewer acts: refused, by the CLI and by the API, for every action.
    let out = cli(
        port,
        &viewer,
        "clusters disable --tenant tenant-a --cluster east",
    )
    .await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("403") && err.contains("only admin may"),
        "{err}"
    );
    let bearer = format!("Bearer {viewer}");
    for (method, path, body) in ACTIONS {
        let (code, answer) = raw(port, method, path, Some(&bearer), body).await;
        assert_eq!(code, 403, "{method} {path}: {answer}");
    }

    // Without a token, with a malformed, altered, foreign or expired one: 401 for every route.
    let other_hub = tempfile::tempdir().unwrap();
    fleetgate_hub::identity::init_ca(other_hub.path(), &[]).unwrap();
    let foreign_key =
        operator_token::operator_key(&TokenKey::load_or_create(other_hub.path()).unwrap());
    let foreign = operator_token::mint(&foreign_key, "mallory", Role::Admin, u64::MAX / 2).unwrap();
    let key = operator_token::operator_key(&TokenKey::load_or_create(&hub.pki()).unwrap());
    let expired = operator_token::encode(&key, &"ab".repeat(16), "old", Role::Admin, 1000);
    let raised = viewer.replace(".viewer.", ".admin.");
    // A bootstrap token of this very hub is no operator token.
    let bootstrap = token::mint(
        &TokenKey::load_or_create(&hub.pki()).unwrap(),
        "tenant-a",
        "east",
        u64::MAX / 2,
    )
    .unwrap();
    let bad: Vec<(Option<String>, &str)> = vec![
        (None, "no operator token"),
        (Some("Basic dmVyYTp4".into()), "must be `Bearer"),
        (Some("Bearer nonsense".into()), "malformed"),
        (Some(format!("Bearer {raised}")), "unknown to this hub"),
        (Some(format!("Bearer {foreign}")), "unknown to this hub"),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {bootstrap}")), "malformed"),
    ];
    for (auth, why) in &bad {
        for (method, path, body) in ACTIONS
            .iter()
            .copied()
            .chain(READS.iter().map(|p| ("GET", *p, "")))
        {
            let (code, answer) = raw(port, method, path, auth.as_deref(), body).await;
            assert_eq!(code, 401, "{auth:?} {method} {path}: {answer}");
            assert!(answer.contains(why), "{auth:?} {method} {path}: {answer}");
        }
    }
    // Nothing changed: the cluster is still connected and served.
    let clusters = admin_json(port, &viewer, &["clusters", "list"]).await;
    assert_eq!(clusters[0]["state"], "connected");

    // Wrong method, unknown route, bad body: said plainly.
    let admin_token = operator(&hub, "ada", "admin").await;
    let bearer = format!("Bearer {admin_token}");
    assert_eq!(
        raw(port, "GET", "/api/v1/tokens", Some(&bearer), "")
            .await
            .0,
        405
    );
    assert_eq!(
        raw(port, "DELETE", "/api/v1/tenants", Some(&bearer), "")
            .await
            .0,
        405
    );
    assert_eq!(
        raw(port, "GET", "/api/v1/secrets", Some(&bearer), "")
            .await
            .0,
        404
    );
    let (code, answer) = raw(
        port,
        "POST",
        "/api/v1/tokens",
        Some(&bearer),
        "{\"tenant\": 1}",
    )
    .await;
    assert_eq!(code, 400, "{answer}");
    let (code, answer) = raw(
        port,
        "POST",
        "/api/v1/tokens",
        Some(&bearer),
        &"x".repeat(5000),
    )
    .await;
    assert_eq!(code, 413, "{answer}");
    let (code, answer) = raw(
        port,
        "POST",
        "/api/v1/clusters/tenant-a/nowhere/disable",
        Some(&bearer),
        "",
    )
    .await;
    assert_eq!(code, 404, "{answer}");
    assert!(answer.contains("not registered"), "{answer}");
    // The CLI against nothing: a message, not a panic.
    let out = admin(free_port(), &admin_token, &["tenants"]).await;
    assert!(!out.status.success());
    assert_refused(&out, "cannot reach the hub's admin API");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_disables_enables_and_revokes_clusters_and_creates_tokens() {
    let (mut hub, port) = start().await;
    let ada = operator(&hub, "ada", "admin").await;
    let id = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
        .await
        .unwrap();
    s.send(1, true, vec![http_gateway("web", "http", "*.a.example")])
        .await;
    s.verdict().await.unwrap();

    // Disable: the agent's stream is closed with the reason, and it cannot come back.
    let out = cli(
        port,
        &ada,
        "clusters disable --tenant tenant-a --cluster east",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let closed = tokio::time::timeout(Duration::from_secs(10), s.verdict())
        .await
        .expect("the stream of a disabled cluster is closed");
    let err = closed.expect_err("closed with an error");
    assert!(
        err.message().contains("is disabled at this hub"),
        "{}",
        err.message()
    );
    let again = SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east").await;
    assert!(again.is_err(), "a disabled cluster's agent is refused");
    let clusters = admin_json(port, &ada, &["clusters", "list"]).await;
    assert_eq!(clusters[0]["state"], "disabled");
    assert_eq!(clusters[0]["disabledBy"], serde_json::json!(["operator"]));
    // No bootstrap token for a disabled cluster.
    let out = cli(port, &ada, "tokens create --tenant tenant-a --cluster east").await;
    assert_refused(&out, "disabled: enable it first");

    // It stays disabled across a restart of the hub.
    hub.stop().await;
    hub.run().await;
    let clusters = admin_json(port, &ada, &["clusters", "list"]).await;
    assert_eq!(clusters[0]["state"], "disabled");

    // Enable: the agent comes back (its certificate predates the disable, so it enrolls again;
    // here the test issues it a fresh one a second later).
    let out = cli(
        port,
        &ada,
        "clusters enable --tenant tenant-a --cluster east",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        SyncStream::open(mtls_channel(hub.agent_addr, &id).await.unwrap(), "east")
            .await
            .is_err(),
        "a certificate issued before the disable stays refused"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = hub.issue("tenant-a", "east");
    let mut s = SyncStream::open(mtls_channel(hub.agent_addr, &fresh).await.unwrap(), "east")
        .await
        .expect("enabled again");
    s.send(1, true, vec![http_gateway("web", "http", "*.a.example")])
        .await;
    s.verdict().await.unwrap();
    assert_eq!(
        admin_json(port, &ada, &["clusters", "list"]).await[0]["state"],
        "connected"
    );

    // Revoke: the stream closes, the certificate is refused, the cluster stays enabled and a
    // bootstrap token from the API lets its agent enroll again.
    let out = cli(
        port,
        &ada,
        "clusters revoke --tenant tenant-a --cluster east",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = tokio::time::timeout(Duration::from_secs(10), s.verdict())
        .await
        .expect("the stream of a revoked cluster is closed")
        .expect_err("closed with an error");
    assert!(err.message().contains("issued before"), "{}", err.message());
    assert!(
        SyncStream::open(mtls_channel(hub.agent_addr, &fresh).await.unwrap(), "east")
            .await
            .is_err()
    );
    let made = admin_json(
        port,
        &ada,
        &[
            "tokens",
            "create",
            "--tenant",
            "tenant-a",
            "--cluster",
            "east",
            "--ttl-seconds",
            "120",
        ],
    )
    .await;
    let claims = token::verify(
        &TokenKey::load_or_create(&hub.pki()).unwrap(),
        made["token"].as_str().unwrap(),
        fleetgate_hub::fleet::unix_now() as u64,
    )
    .expect("a bootstrap token of this hub");
    assert_eq!(
        (claims.tenant.as_str(), claims.cluster.as_str()),
        ("tenant-a", "east")
    );
    // Out of range and unknown clusters are refused.
    let out = cli(
        port,
        &ada,
        "tokens create --tenant tenant-a --cluster east --ttl-seconds 999999",
    )
    .await;
    assert_refused(&out, "ttlSeconds 999999");
    let out = cli(
        port,
        &ada,
        "tokens create --tenant tenant-a --cluster nowhere",
    )
    .await;
    assert_refused(&out, "not registered");
    hub.stop().await;
}
