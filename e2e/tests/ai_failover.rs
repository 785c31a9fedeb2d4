//! `ai.groups` priority failover through the AI gateway, driven by the OpenAI SDK against the
//! mock OpenAI APIs proven by `mock_providers.rs`: a 429 with Retry-After, a 5xx on a stream and
//! a provider nobody listens on each move the request to the next provider, the client sees only
//! the answer; an ejected provider is skipped for its Retry-After and used again after it.

use std::net::SocketAddr;

use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use fleetgate_ai_gateway::{Running, Settings};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::mock_llm::{Fault, MockLlm};
use fleetgate_e2e::ports::free_addr;
use serde_json::{Value, json};

const TENANT: &str = "tenant-a";
const KEY: &str = "sk-backend-key";

async fn gateway(groups: &[&[SocketAddr]]) -> Running {
    let mut yaml = format!(
        "version: 1\ntenants:\n  {TENANT}:\n    routes:\n      c1/default/llm:\n        ai:\n          groups:\n"
    );
    for g in groups {
        yaml.push_str("          - providers:\n");
        for a in *g {
            yaml.push_str(&format!(
                "            - {{ openai: {{ model: mock-gpt }}, host: \"{}\", port: {} }}\n",
                a.ip(),
                a.port()
            ));
        }
    }
    yaml.push_str(&format!("        policies: {{ auth: {{ key: {KEY} }} }}\n"));
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap()
}

async fn steps(gw: &Running, steps: &str) -> Value {
    let output = tokio::process::Command::new(ai_python().unwrap())
        .arg(workspace_dir().join("e2e/ai/failover_check.py"))
        .env("GATEWAY_URL", format!("http://{}", gw.addr))
        .env("TENANT", TENANT)
        .env("ROUTE", "c1/default/llm")
        .env("STEPS", steps)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_hands_the_request_to_the_next_and_is_skipped_for_its_retry_after() {
    let ip = "127.0.0.1".parse().unwrap();
    let first = MockLlm::start("first", ip, KEY).await.unwrap();
    let second = MockLlm::start("second", ip, KEY).await.unwrap();
    let gw = gateway(&[&[first.addr()], &[second.addr()]]).await;

    // 1: the first provider answers 429 (Retry-After: 2): the second answers instead.
    // 2: within those 2 s the first is not asked. 3: after them it is again.
    // 4: a stream whose first try gets a 503: the second streams it.
    first.fail_request(
        1,
        Fault {
            status: 429,
            retry_after: Some(2),
        },
    );
    first.fail_request(
        3,
        Fault {
            status: 503,
            retry_after: Some(1),
        },
    );
    let seen = steps(&gw, "plain,plain,sleep2.5,plain,stream").await;
    assert_eq!(
        seen,
        json!([
            "second heard: hello fleet",
            "second heard: hello fleet",
            "first heard: hello fleet",
            "second heard: hello fleet"
        ])
    );
    assert_eq!(
        first.seen().len(),
        3,
        "the 429, the request after the ejection, the 503"
    );
    assert_eq!(second.seen().len(), 3);
    assert!(
        first
            .seen()
            .iter()
            .chain(second.seen().iter())
            .all(|r| r.key_ok)
    );
    let usage = gw.usage.route_totals(TENANT, "c1/default/llm");
    assert_eq!(
        usage.errors, 2,
        "the two failed tries are counted: {usage:?}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_nobody_listens_on_fails_over_and_the_last_answer_is_the_clients() {
    let ip = "127.0.0.1".parse().unwrap();
    let dead = free_addr().unwrap();
    let up = MockLlm::start("up", ip, KEY).await.unwrap();
    let gw = gateway(&[&[dead, up.addr()]]).await;
    let seen = steps(&gw, "plain,plain").await;
    assert_eq!(
        seen,
        json!(["up heard: hello fleet", "up heard: hello fleet"])
    );

    // Every provider fails: the client gets the last one's error, in OpenAI's shape.
    let only = MockLlm::start("only", ip, KEY).await.unwrap();
    only.fail_request(
        1,
        Fault {
            status: 500,
            retry_after: None,
        },
    );
    let gw2 = gateway(&[&[dead], &[only.addr()]]).await;
    assert_eq!(steps(&gw2, "plain").await, json!(["status 500"]));
    gw.shutdown().await;
    gw2.shutdown().await;
}
