//! AI usage, counted once per response and shown where operators look: the official OpenAI SDK
//! sends chat completions (plain and streamed, and one llama.cpp refuses) through Envoy and an
//! AI gateway replica to a real llama.cpp server until the tenant's request budget is spent; the
//! AI gateway's `/metrics` then counts exactly the tokens the SDK received in `usage` (and, for
//! llama.cpp's streams, which carry no usage, the token chunks the SDK received), the requests
//! by status class, the upstream error, the time to first token of the streams and the budget
//! refusal; and every query of
//! `deploy/grafana/ai-usage.json` names metrics and labels that scrape exposes.
//!
//! Real components: kube-apiserver + etcd (the tenant cluster), the agent, the hub, Envoy, the
//! AI gateway process programmed by the hub, llama.cpp's server on a generated tiny model
//! (`e2e/setup.sh ai`), and the `openai` SDK from the setup's virtualenv.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::ai_fleet::{AiFleet, programmed_address, wait_backend_resolved};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::grafana::{AI_USAGE, Exposed, check, queries, query_parts};
use fleetgate_e2e::http::post_json;
use fleetgate_e2e::objects::tenant_openai_backend;
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::{LlamaServer, TIMEOUT, eventually};
use serde_json::{Value, json};

const LLAMA_KEY: &str = "sk-llama-key-from-the-tenants-secret";
/// The backend's `openai.model` (e2e/ai/tenant-openai-backend.yaml): the model label.
const MODEL: &str = "mock-gpt";
const PLAIN: u64 = 3;
const STREAMS: u64 = 2;
/// One probe request (waiting for the route), then the script's plain and streamed ones and the
/// one llama.cpp refuses; the script's last request is refused by the budget.
const BUDGET: u64 = 1 + PLAIN + STREAMS + 1;

async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, text) = fleetgate_e2e::http::get(addr, "metrics", "/metrics", &[]).await?;
    ensure!(status == 200, "/metrics on {addr}: {status}");
    Ok(text)
}

/// The value of the sample `series` (name and labels exactly as exposed), if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs e2e/ai/usage_check.py against the Gateway at `gateway`.
async fn sdk(gateway: SocketAddr) -> anyhow::Result<Value> {
    let output = tokio::process::Command::new(ai_python()?)
        .arg(workspace_dir().join("e2e/ai/usage_check.py"))
        .env("GATEWAY_URL", format!("http://{gateway}"))
        .env("PLAIN", PLAIN.to_string())
        .env("STREAMS", STREAMS.to_string())
        .output()
        .await?;
    ensure!(
        output.status.success(),
        "SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn every_ai_usage_query_asks_the_ai_gateway() {
    let path = workspace_dir().join("deploy/grafana").join(AI_USAGE);
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let all = queries(&dashboard);
    assert!(all.len() >= 10, "{all:?}");
    for (where_, expr) in all {
        let (metrics, _) = query_parts(&expr);
        assert!(
            !metrics.is_empty() && metrics.iter().all(|m| m.starts_with("fleetgate_ai_")),
            "{where_}: {expr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_gateway_metrics_count_what_the_openai_sdk_received() {
    let quotas = json!({ "tenants": {
        "tenant-a": { "aiBudget": { "requests": BUDGET, "window": "744h" } },
    }});
    let hub_admin = fleetgate_e2e::ports::free_addr().unwrap();
    let ai = AiFleet::start(
        &[("tenant-a", "*.a.example", "127.0.1.0/24")],
        1,
        1,
        [
            ("quotas".to_string(), quotas),
            ("adminListen".to_string(), hub_admin.to_string().into()),
        ]
        .into_iter()
        .collect(),
    )
    .await
    .unwrap();
    let fleet = &ai.fleet;
    let metrics = ai.gateways[0].metrics_addr();

    // tenant-a's node runs llama.cpp where kube-proxy would forward the Service's nodePort.
    let a = fleet.tenant("tenant-a");
    let node_ip: IpAddr = a.create_node("node-1", 10).await.unwrap();
    let node_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let llama = LlamaServer::start_at(&fleet.dir, SocketAddr::new(node_ip, node_port), LLAMA_KEY)
        .await
        .unwrap();
    a.cluster
        .apply(&tenant_openai_backend(node_port, LLAMA_KEY))
        .await
        .unwrap();
    wait_backend_resolved(a, "llm").await;
    let gateway = SocketAddr::new(programmed_address(a, "default", "ai").await, 8080);

    // One probe until the whole path answers (earlier attempts end at Envoy or the gateway's
    // 404, before the budget and before usage is counted).
    let probe = eventually(TIMEOUT, || async {
        let r = post_json(
            gateway,
            "ai",
            "/v1/chat/completions",
            &[],
            &json!({"model": "any", "messages": [{"role": "user", "content": "probe"}], "max_tokens": 4}),
        )
        .await?;
        ensure!(r.status == 200, "{} {}", r.status, r.body);
        Ok(serde_json::from_str::<Value>(&r.body)?)
    })
    .await;
    let seen = sdk(gateway).await.unwrap();
    eprintln!("SDK saw: {seen:#}");
    assert_eq!(
        seen["refused_status"], 429,
        "the spent budget refused: {seen}"
    );
    assert_eq!(
        seen["upstream_error_status"], 500,
        "llama-cpp-python answers a request it cannot validate with 500: {seen}"
    );

    // What the client received: the probe's and the plain answers' usage, and the streams'
    // usage (or, where llama.cpp reports none, their token chunks).
    let mut input = probe["usage"]["prompt_tokens"].as_u64().unwrap();
    let mut output = probe["usage"]["completion_tokens"].as_u64().unwrap();
    for p in seen["plain"].as_array().unwrap() {
        assert_eq!(p["model"], MODEL);
        input += p["prompt_tokens"].as_u64().unwrap();
        output += p["completion_tokens"].as_u64().unwrap();
    }
    for s in seen["streams"].as_array().unwrap() {
        match s["usage"].as_object() {
            Some(u) => {
                input += u["prompt_tokens"].as_u64().unwrap();
                output += u["completion_tokens"].as_u64().unwrap();
            }
            None => output += s["token_chunks"].as_u64().unwrap(),
        }
    }
    assert!(input > 0 && output > 0, "{seen}");

    let labels = format!(r#"tenant="tenant-a",backend="openai",model="{MODEL}""#);
    let requests = format!(r#"fleetgate_ai_requests_total{{{labels},status="2xx"}}"#);
    // A stream is counted when its body ends, just after the client read its last event.
    let text = eventually(TIMEOUT, || async {
        let text = scrape(metrics).await?;
        ensure!(
            sample(&text, &requests) == Some((BUDGET - 1) as f64),
            "{requests} is not {} yet:\n{text}",
            BUDGET - 1
        );
        Ok(text)
    })
    .await;
    eprintln!("AI gateway metrics:\n{text}");
    let at = |series: String| {
        sample(&text, &series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert_eq!(
        at(format!("fleetgate_ai_input_tokens_total{{{labels}}}")),
        input as f64,
        "input tokens counted = the SDK's prompt_tokens"
    );
    assert_eq!(
        at(format!("fleetgate_ai_output_tokens_total{{{labels}}}")),
        output as f64,
        "output tokens counted = the SDK's completion_tokens (+ streamed token chunks)"
    );
    assert_eq!(
        at(r#"fleetgate_ai_budget_refusals_total{tenant="tenant-a",reason="spent"}"#.into()),
        1.0
    );
    assert_eq!(
        at(
            r#"fleetgate_ai_time_to_first_token_seconds_count{tenant="tenant-a",backend="openai"}"#
                .into()
        ),
        STREAMS as f64
    );
    assert_eq!(
        at(
            r#"fleetgate_ai_request_duration_seconds_count{tenant="tenant-a",backend="openai"}"#
                .into()
        ),
        BUDGET as f64
    );
    assert_eq!(
        at(format!(
            r#"fleetgate_ai_requests_total{{{labels},status="5xx"}}"#
        )),
        1.0,
        "llama.cpp's 500, and not the budget refusal (no LLM response)"
    );
    assert_eq!(
        at(r#"fleetgate_ai_upstream_errors_total{tenant="tenant-a",backend="openai",reason="status_5xx"}"#.into()),
        1.0
    );
    assert!(!text.contains(r#"status="4xx""#), "{text}");

    // The AI usage dashboard asks only for what that scrape exposes.
    let mut exposed = Exposed::default();
    exposed.add(&text);
    let path = workspace_dir().join("deploy/grafana").join(AI_USAGE);
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let checked = check(AI_USAGE, &dashboard, &exposed);
    assert!(checked >= 10, "only {checked} queries in {AI_USAGE}");

    // The hub: the replica's report summed, the budget spent, on the admin API and /metrics.
    let token = fleet.hub.create_operator_token("ada", "viewer").unwrap();
    let auth = format!("Bearer {token}");
    let view = eventually(TIMEOUT, || async {
        let (status, body) = fleetgate_e2e::http::get(
            hub_admin,
            "hub",
            "/api/v1/tenants/tenant-a/ai-usage",
            &[("authorization", auth.as_str())],
        )
        .await?;
        ensure!(status == 200, "{status} {body}");
        let v: Value = serde_json::from_str(&body)?;
        ensure!(
            v["total"]["requests"] == BUDGET,
            "the hub has not got the whole report yet: {v}"
        );
        Ok(v)
    })
    .await;
    eprintln!("the hub's view: {view:#}");
    assert_eq!(view["total"]["inputTokens"], input, "{view}");
    assert_eq!(view["total"]["outputTokens"], output, "{view}");
    assert_eq!(view["usage"][0]["backend"], "openai");
    assert_eq!(view["usage"][0]["model"], MODEL);
    let budget = &view["budgets"][0];
    assert_eq!(budget["scope"], "tenant", "{view}");
    assert_eq!(budget["requests"]["limit"], BUDGET);
    assert_eq!(budget["requests"]["left"], 0, "spent: {view}");
    let hub_text = scrape(hub_admin).await.unwrap();
    assert_eq!(
        sample(
            &hub_text,
            r#"fleetgate_hub_ai_requests_total{tenant="tenant-a"}"#
        ),
        Some(BUDGET as f64),
        "{hub_text}"
    );
    assert_eq!(
        sample(
            &hub_text,
            r#"fleetgate_hub_ai_input_tokens_total{tenant="tenant-a"}"#
        ),
        Some(input as f64),
        "{hub_text}"
    );
    assert_eq!(
        sample(
            &hub_text,
            r#"fleetgate_hub_ai_output_tokens_total{tenant="tenant-a"}"#
        ),
        Some(output as f64)
    );
    drop(llama);
}
