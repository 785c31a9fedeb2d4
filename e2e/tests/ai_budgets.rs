//! AI budgets across two AI gateway replicas: the hub counts every tenant's requests and tokens
//! (`quotas.*.aiBudget`), and two replicas together never let a tenant past its request budget,
//! even when a burst of requests is spread over both at once. A spent budget is a 429 in
//! OpenAI's shape with Retry-After, also through Envoy; another tenant is not touched by it.
//! Tokens are counted from the responses' usage and refuse the tenant once spent.
//!
//! Real components: kube-apiserver + etcd (the tenant clusters), the agents, the hub, Envoy, two
//! AI gateway processes programmed by the hub, and the mock OpenAI API (proven against the
//! official SDK by `mock_providers.rs`) on each tenant's node.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::ensure;
use fleetgate_e2e::ai_fleet::{AiFleet, programmed_address};
use fleetgate_e2e::fixtures::tenant_openai_backend;
use fleetgate_e2e::http::{Response, post_json};
use fleetgate_e2e::mock_llm::MockLlm;
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::{FleetTenant, TIMEOUT, eventually};
use serde_json::{Value, json};

const KEY: &str = "sk-provider-key";
const ROUTE: &str = "c1/default/llm";
/// tenant-a's request budget.
const REQUESTS: u64 = 8;
/// tenant-b's token budget.
const TOKENS: u64 = 100;

fn chat() -> Value {
    json!({"model": "any", "messages": [{"role": "user", "content": "count my tokens please"}]})
}

/// A chat completion straight to an AI gateway replica, with the identity headers Envoy sets.
async fn direct(replica: SocketAddr, tenant: &str) -> anyhow::Result<Response> {
    post_json(
        replica,
        "ai",
        "/v1/chat/completions",
        &[("x-fleetgate-tenant", tenant), ("x-fleetgate-route", ROUTE)],
        &chat(),
    )
    .await
}

/// Starts the tenant's mock provider on its node and applies its resources; returns the
/// Gateway's own address once it is Programmed.
async fn tenant_ai(t: &FleetTenant) -> (IpAddr, MockLlm) {
    let node_ip: IpAddr = t.create_node("node-1", 10).await.unwrap();
    let port = free_port_in(node_ip, 30000..=32767).unwrap();
    let mock = MockLlm::start_at("mock", SocketAddr::new(node_ip, port), KEY, Duration::ZERO)
        .await
        .unwrap();
    t.cluster
        .apply(&tenant_openai_backend(port, KEY))
        .await
        .unwrap();
    let address = programmed_address(t, "default", "ai").await;
    (address, mock)
}

/// Sends until the replica serves the tenant's route (the hub's config has arrived); returns
/// the first answer. Requests before that get 404 and spend nothing.
async fn first_answer(replica: SocketAddr, tenant: &str) -> Response {
    eventually(TIMEOUT, || async {
        let r = direct(replica, tenant).await?;
        ensure!(r.status == 200, "{}: {} {}", replica, r.status, r.body);
        Ok(r)
    })
    .await
}

fn total_tokens(r: &Response) -> u64 {
    serde_json::from_str::<Value>(&r.body).unwrap()["usage"]["total_tokens"]
        .as_u64()
        .unwrap_or_else(|| panic!("no usage in {}", r.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_let_a_tenant_past_its_budget() {
    // A window of 31 days: the test never straddles two windows.
    let quotas = json!({ "tenants": {
        "tenant-a": { "aiBudget": { "requests": REQUESTS, "window": "744h" } },
        "tenant-b": { "aiBudget": { "tokens": TOKENS, "window": "744h" } },
    }});
    let ai = AiFleet::start(
        &[
            ("tenant-a", "*.a.example", "127.0.1.0/24"),
            ("tenant-b", "*.b.example", "127.0.2.0/24"),
        ],
        2,
        2,
        [("quotas".to_string(), quotas)].into_iter().collect(),
    )
    .await
    .unwrap();
    let fleet = &ai.fleet;
    let (gw1, gw2) = (ai.gateways[0].addr(), ai.gateways[1].addr());
    let a = fleet.tenant("tenant-a");
    let b = fleet.tenant("tenant-b");
    let (a_address, a_mock) = tenant_ai(a).await;
    let (_, _b_mock) = tenant_ai(b).await;

    // One answer from each replica: two of tenant-a's requests are spent.
    first_answer(gw1, "tenant-a").await;
    first_answer(gw2, "tenant-a").await;

    // A burst of twice what is left, spread over both replicas at once: exactly what is left
    // gets through, the rest is refused in OpenAI's shape with Retry-After.
    let left = REQUESTS - 2;
    let burst = (0..2 * left).map(|i| direct(if i % 2 == 0 { gw1 } else { gw2 }, "tenant-a"));
    let answers: Vec<Response> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ok = answers.iter().filter(|r| r.status == 200).count() as u64;
    let refused: Vec<&Response> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        (ok, refused.len() as u64),
        (left, left),
        "{:?}",
        answers
            .iter()
            .map(|r| (r.status, &r.body))
            .collect::<Vec<_>>()
    );
    let refusal: Value = serde_json::from_str(&refused[0].body).unwrap();
    assert_eq!(refusal["error"]["type"], "insufficient_quota", "{refusal}");
    assert_eq!(refusal["error"]["code"], "budget_exceeded", "{refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!(
                "the request budget of tenant tenant-a ({REQUESTS} requests per 2678400 s) is spent"
            )),
        "{refusal}"
    );
    let retry_after: u64 = refused[0]
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After on a spent budget");
    assert!((1..=2_678_400).contains(&retry_after), "{retry_after}");
    assert_eq!(
        a_mock.seen().len() as u64,
        REQUESTS,
        "the provider saw exactly the budget's requests"
    );

    // Through Envoy, at the tenant's Gateway: the same 429, with Retry-After.
    let via_envoy = post_json(
        SocketAddr::new(a_address, 8080),
        "anything",
        "/v1/chat/completions",
        &[],
        &chat(),
    )
    .await
    .unwrap();
    assert_eq!(via_envoy.status, 429, "{}", via_envoy.body);
    assert!(via_envoy.header("retry-after").is_some());

    // tenant-b is untouched by tenant-a's spent budget, and its own token budget refuses it
    // once the responses' usage has used it up: the reservation that let the last request
    // through saw fewer than TOKENS tokens, so at most one request's tokens overshoot (the
    // one whose report was still on its way to the hub).
    let first = first_answer(gw1, "tenant-b").await;
    let per_request = total_tokens(&first);
    assert!(per_request > 0);
    let mut used = per_request;
    let mut served = 1;
    let refused = loop {
        let r = direct(if served % 2 == 0 { gw1 } else { gw2 }, "tenant-b")
            .await
            .unwrap();
        if r.status != 200 {
            break r;
        }
        used += total_tokens(&r);
        served += 1;
        assert!(served <= 100, "tenant-b was never refused");
    };
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body.contains(&format!(
            "the token budget of tenant tenant-b ({TOKENS} tokens per 2678400 s) is spent"
        )),
        "{}",
        refused.body
    );
    let needed = TOKENS.div_ceil(per_request);
    assert!(
        (needed..=needed + 1).contains(&served),
        "{served} requests of {per_request} tokens served for a budget of {TOKENS} ({used} used)"
    );
}
