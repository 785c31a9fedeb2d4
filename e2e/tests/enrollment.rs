//! Enrollment end to end on real components: agents started with nothing but a bootstrap token
//! enroll, keep their identity in a Secret of their cluster, renew it, and serve traffic; a
//! replayed token is refused with a clear message; a cluster removed from the hub's config is cut
//! off (stream closed, reconnects refused, its routes gone from Envoy) while another tenant
//! keeps being served.
//!
//! Needs the product binaries: `cargo build --bins` first.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fleetgate_e2e::agent::IDENTITY_SECRET;
use fleetgate_e2e::apiserver::AGENT_NAMESPACE;
use fleetgate_e2e::fixtures::{
    TENANT_A, TENANT_B, class_and_http_gateway, simple_http_route, wait_served,
};
use fleetgate_e2e::fleet::CLUSTER;
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::{Agent, Echo, Fleet, FleetTenant, TIMEOUT, eventually};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;

/// GatewayClass `fleetgate`, Gateway `web` (HTTP :80 for `host`), HTTPRoute `app` -> Service
/// `echo` with an echo backend named `<tenant>-echo` on a node of the tenant's range.
async fn deploy_app(t: &FleetTenant, host: &str) -> Echo {
    let ip = t.create_node("node-1", 10).await.expect("node");
    let echo = t
        .node_port_backend("echo", ip, &format!("{}-echo", t.name))
        .await
        .expect("NodePort Service and echo backend");
    t.cluster
        .apply(&format!(
            "{}---\n{}",
            class_and_http_gateway(Some(host)),
            simple_http_route("app", host, "echo")
        ))
        .await
        .expect("apply Gateway and HTTPRoute");
    echo
}

/// The agent identity Secret of a tenant's cluster, once it exists.
async fn identity_secret(t: &FleetTenant) -> Secret {
    let api: Api<Secret> = Api::namespaced(t.cluster.admin(), AGENT_NAMESPACE);
    eventually(TIMEOUT, || async {
        api.get_opt(IDENTITY_SECRET)
            .await?
            .context("the agent has not stored its identity Secret yet")
    })
    .await
}

fn secret_bytes(secret: &Secret, key: &str) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("the Secret has no data.{key}"))
        .0
        .clone()
}

/// (SPIFFE URI, notBefore) of a PEM certificate.
fn certificate(pem: &[u8]) -> (String, i64) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let uri = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .find_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .unwrap();
    (uri, cert.validity().not_before.timestamp())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_enroll_with_a_token_a_replay_is_refused_and_a_removed_cluster_is_cut_off() {
    let mut fleet = Fleet::start_enrolled(&[TENANT_A, TENANT_B], serde_json::Map::new())
        .await
        .expect("fleet with enrolling agents starts");
    let _a = deploy_app(fleet.tenant("tenant-a"), "app.a.example").await;
    let _b = deploy_app(fleet.tenant("tenant-b"), "app.b.example").await;
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;
    wait_served(&fleet, "app.b.example", "/", "tenant-b-echo").await;

    // The identity lives in the agent's Secret: certificate for this cluster, the key, the
    // hub CA, and only a fingerprint of the token.
    let token = fleet
        .tenant("tenant-a")
        .agent
        .bootstrap_token()
        .unwrap()
        .to_string();
    let secret = identity_secret(fleet.tenant("tenant-a")).await;
    assert_eq!(
        secret.type_.as_deref(),
        Some("fleetgate.dev/agent-identity")
    );
    let (uri, _) = certificate(&secret_bytes(&secret, "tls.crt"));
    assert_eq!(uri, "spiffe://fleetgate/tenant/tenant-a/cluster/c1");
    assert!(
        String::from_utf8(secret_bytes(&secret, "tls.key"))
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert_eq!(
        secret_bytes(&secret, "ca.crt"),
        std::fs::read(fleet.hub.pki_dir().join("ca.crt")).unwrap()
    );
    for k in secret.data.as_ref().unwrap().keys() {
        let v = secret_bytes(&secret, k);
        assert!(
            !String::from_utf8_lossy(&v).contains(&token),
            "data.{k} holds the token: {v:?}"
        );
    }

    // A second agent with the same token (its own empty state) is refused and exits non-zero.
    let state = fleet.dir.subdir("replay-state").unwrap();
    let kubeconfig = fleet
        .tenant("tenant-a")
        .cluster
        .agent_kubeconfig()
        .to_path_buf();
    let mut replay = Agent::start_enrolling(
        &fleet.dir,
        &fleet.hub,
        "tenant-a-replay",
        "tenant-a",
        CLUSTER,
        &kubeconfig,
        &token,
        Some(&state),
    )
    .unwrap();
    let status = replay.wait_exit(TIMEOUT).await.unwrap();
    assert!(
        !status.success(),
        "the replaying agent exited with {status}"
    );
    let log = replay.process().log();
    assert!(
        log.contains(
            "bootstrap token already used: create a new one with `fleetgate-hub token create --tenant tenant-a --cluster c1`"
        ),
        "{log}"
    );
    // ... and nothing of the first agent's traffic was disturbed.
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;

    // tenant-a's cluster is removed from the hub's config.
    let mut tenants = fleet.hub.tenants().to_vec();
    tenants
        .iter_mut()
        .find(|t| t.name == "tenant-a")
        .unwrap()
        .clusters
        .retain(|c| c.name != CLUSTER);
    let removed_at = Instant::now();
    fleet.hub.rewrite_config(&tenants).unwrap();
    // Within 60 s: tenant-a's routes are gone from Envoy, while tenant-b answers 200 all along.
    let refusal = "cluster tenant-a/c1 is not registered at this hub";
    loop {
        let (b_status, b_body) = fleet.get("app.b.example", "/").await.unwrap();
        assert_eq!(
            (b_status, b_body.as_str()),
            (200, "tenant-b-echo"),
            "tenant-b must keep being served"
        );
        let (a_status, _) = fleet.get("app.a.example", "/").await.unwrap();
        let agent_log = fleet.tenant_mut("tenant-a").agent.process().log();
        // The stream was closed with the reason, and the reconnects are refused too.
        if a_status == 404 && agent_log.matches(refusal).count() >= 2 {
            break;
        }
        assert!(
            removed_at.elapsed() < Duration::from_secs(60),
            "60 s after the removal: app.a.example answers {a_status}; agent log:\n{}",
            fleet.tenant_mut("tenant-a").agent.process().log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "removed cluster cut off after {} ms",
        removed_at.elapsed().as_millis()
    );
    fleet.hub.process().ensure_running().unwrap();

    // Tokens and keys are secrets: no log (hub, agents, the replaying agent, Envoy, API
    // servers; all at debug level) shows the bootstrap tokens, the agents' own keys (kept in
    // their clusters' Secrets) or any key file of the hub.
    let mut secrets = Secrets::new();
    for t in &fleet.tenants {
        let key = secret_bytes(&identity_secret(t).await, "tls.key");
        secrets.add_key_pem(
            &format!("{}'s agent key", t.name),
            &String::from_utf8(key).unwrap(),
        );
    }
    drop(replay);
    fleet.assert_no_secrets_in_logs(secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_agent_renews_its_certificate_and_reuses_it_after_a_restart() {
    // Certificates live 2 minutes: renewed half-way, about half a minute after enrollment
    // (notBefore is backdated a minute for clock skew).
    let extra = json!({"identity": {"certificateLifetime": "2m"}});
    let mut fleet = Fleet::start_enrolled(&[TENANT_A], extra.as_object().unwrap().clone())
        .await
        .expect("fleet starts");
    let _a = deploy_app(fleet.tenant("tenant-a"), "app.a.example").await;
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;
    let first_secret = identity_secret(fleet.tenant("tenant-a")).await;
    let first = certificate(&secret_bytes(&first_secret, "tls.crt"));
    let first_key = String::from_utf8(secret_bytes(&first_secret, "tls.key")).unwrap();

    // Renewed: a new certificate in the Secret, the stream reopened with it.
    let renewed = eventually(Duration::from_secs(120), || async {
        let s = identity_secret(fleet.tenant("tenant-a")).await;
        let c = certificate(&secret_bytes(&s, "tls.crt"));
        ensure!(c.1 > first.1, "not renewed yet (notBefore {})", c.1);
        Ok((c, String::from_utf8(secret_bytes(&s, "tls.key")).unwrap()))
    })
    .await;
    let (renewed, renewed_key) = renewed;
    assert_eq!(renewed.0, first.0);
    let log = fleet.tenant_mut("tenant-a").agent.process().log();
    assert!(
        log.contains("reconnecting with the renewed certificate"),
        "{log}"
    );
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;

    // Restarted with the same token: the stored identity is reused, not re-enrolled (the token
    // is spent, so enrolling again would fail).
    let agent = &mut fleet.tenant_mut("tenant-a").agent;
    agent.restart().unwrap();
    eventually(TIMEOUT, || {
        let log = agent.process().log();
        async move {
            let restarted = log.rsplit("=== e2e: starting").next().unwrap_or_default();
            ensure!(
                restarted.contains("reusing the stored agent identity")
                    && restarted.contains("sent full state"),
                "restarted agent has not reconnected yet"
            );
            Ok(())
        }
    })
    .await;
    fleet.ensure_running().unwrap();
    wait_served(&fleet, "app.a.example", "/", "tenant-a-echo").await;
    // Neither key of the agent (before and after renewal) nor its token is in any log.
    let mut secrets = Secrets::new();
    for (what, key) in [("first", &first_key), ("renewed", &renewed_key)] {
        secrets.add_key_pem(&format!("the agent's {what} key"), key);
    }
    fleet.assert_no_secrets_in_logs(secrets);
}
