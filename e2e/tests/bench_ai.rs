//! The AI gateway side by side with LiteLLM's proxy on one machine (issue 11's benchmark):
//! the same mock OpenAI upstream (`fleetgate-mock-llm`, proven with the OpenAI SDK by
//! `mock_providers.rs`), the same load generator, three targets: the mock directly, fleetgate's
//! AI gateway in front of it, and LiteLLM's proxy in front of it. Throughput at saturation
//! (closed loop), added latency p50/p99 at fixed rates (open loop, measured from each request's
//! scheduled time so a stall is not hidden), non-streamed and streamed, and resident memory.
//!
//! The second benchmark puts Envoy in front, as tenants reach the gateway: a tenant's
//! AgentgatewayBackend applied in a real kube-apiserver, through the agent and the hub, served
//! on the Gateway's own address; it measures what Envoy and the AI gateway together add over
//! calling the mock directly, at fixed rates.
//!
//! Not tests: `scripts/bench-ai.sh` (`make bench-ai`) installs LiteLLM into the cache, builds
//! release binaries and runs them; figures go to docs/benchmarks.md.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleetgate_e2e::Process;
use fleetgate_e2e::TestDir;
use fleetgate_e2e::components::product_binary;
use fleetgate_e2e::ports::free_addr;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

const KEY: &str = "sk-bench-upstream";
/// LiteLLM's proxy refuses to start without a master key; its clients present it.
const LITELLM_MASTER_KEY: &str = "sk-bench-litellm-master-7f3a9c2e41d84b6a";

#[derive(Clone, Copy)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    /// What the client presents.
    auth: Auth,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The upstream's own key (straight to the mock).
    Upstream,
    /// The identity headers Envoy would set, and a client key that is not the upstream's.
    Gateway,
    /// LiteLLM's master key.
    LiteLlm,
    /// The identity headers Envoy would set for the hub-programmed route of
    /// `e2e/ai/tenant-openai-backend.yaml` (tenant-a), and a client key.
    HubRoute,
    /// Only a client key: through Envoy at the tenant's Gateway, which sets the identity.
    Envoy,
}

fn request(t: Target, stream: bool) -> Request<Full<Bytes>> {
    let body = if stream {
        r#"{"model":"mock-gpt","messages":[{"role":"user","content":"hello fleet from the bench"}],"stream":true}"#
    } else {
        r#"{"model":"mock-gpt","messages":[{"role":"user","content":"hello fleet from the bench"}]}"#
    };
    // Origin-form: the connection is to the target itself (uvicorn, under LiteLLM, does not
    // take the absolute form).
    let mut r = Request::post("/v1/chat/completions")
        .header("host", t.addr.to_string())
        .header("content-type", "application/json");
    r = match t.auth {
        Auth::Gateway => r
            .header("x-fleetgate-tenant", "bench")
            .header("x-fleetgate-route", "mock")
            .header("authorization", "Bearer sk-client-not-the-key"),
        Auth::Upstream => r.header("authorization", format!("Bearer {KEY}")),
        Auth::LiteLlm => r.header("authorization", format!("Bearer {LITELLM_MASTER_KEY}")),
        Auth::HubRoute => r
            .header("x-fleetgate-tenant", "tenant-a")
            .header("x-fleetgate-route", "c1/default/llm")
            .header("authorization", "Bearer sk-client-not-the-key"),
        Auth::Envoy => r.header("authorization", "Bearer sk-client-not-the-key"),
    };
    r.body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid request")
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    send
}

/// One request on `send`; `Err` on a non-200 or an empty body.
async fn one(
    send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    t: Target,
    stream: bool,
) -> Result<(), String> {
    let resp = send
        .send_request(request(t, stream))
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != 200 || bytes.is_empty() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    Ok(())
}

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

fn figures(mut lat: Vec<Duration>, errors: usize, elapsed: Duration) -> Figures {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        rps: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    }
}

/// Closed loop: `c` connections, each sends its next request when the answer is read.
async fn saturate(t: Target, stream: bool, c: usize, secs: u64) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            tokio::spawn(async move {
                let mut send = connect(t.addr).await;
                let (mut lat, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let at = Instant::now();
                    match one(&mut send, t, stream).await {
                        Ok(()) => lat.push(at.elapsed()),
                        Err(_) => {
                            errors += 1;
                            send = connect(t.addr).await;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        lat.extend(l);
        errors += e;
    }
    figures(lat, errors, start.elapsed())
}

/// Open loop at `rate` requests/s over `conns` connections; latency from the scheduled time.
async fn fixed_rate(t: Target, stream: bool, rate: u64, conns: u64, secs: u64) -> Figures {
    let total = rate * secs;
    let start = Instant::now() + Duration::from_millis(50);
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            tokio::spawn(async move {
                let mut send = connect(t.addr).await;
                let (mut lat, mut errors) = (Vec::new(), 0);
                let mut k = i;
                while k < total {
                    let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    match one(&mut send, t, stream).await {
                        Ok(()) => lat.push(due.elapsed()),
                        Err(_) => {
                            errors += 1;
                            send = connect(t.addr).await;
                        }
                    }
                    k += conns;
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        lat.extend(l);
        errors += e;
    }
    figures(lat, errors, start.elapsed())
}

/// Resident memory of `pid` and its children, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let own = |p: u32| -> f64 {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
            / 1024.0
    };
    let children: f64 = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .map(rss_mib)
        .sum();
    own(pid) + children
}

async fn wait_ready(t: Target) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(t.addr).await {
            drop(tcp);
            let mut send = connect(t.addr).await;
            if one(&mut send, t, false).await.is_ok() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{} never answered", t.name);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with `make bench-ai`"]
async fn ai_gateway_and_litellm_in_front_of_one_mock() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let litellm = std::env::var("FLEETGATE_LITELLM")
        .expect("FLEETGATE_LITELLM: the litellm executable (scripts/bench-ai.sh sets it)");
    let dir = TestDir::new("bench_ai").expect("test dir");

    let mock_addr = free_addr().expect("port");
    let _mock = Process::spawn(
        &dir,
        "mock-llm",
        product_binary("fleetgate-mock-llm").expect("cargo build --bins"),
        [
            "--listen".to_string(),
            mock_addr.to_string(),
            "--key".into(),
            KEY.into(),
        ],
    )
    .expect("mock");

    let gw_addr = free_addr().expect("port");
    let config = dir
        .write(
            "ai-gateway.yaml",
            format!(
                "version: 1\ntenants:\n  bench:\n    maxConcurrency: 100000\n    routes:\n      mock:\n        ai:\n          provider: {{ openai: {{}}, host: \"{}\", port: {} }}\n        policies: {{ auth: {{ key: {KEY} }} }}\n",
                mock_addr.ip(),
                mock_addr.port()
            ),
        )
        .expect("config");
    let gw = Process::spawn_with_env(
        &dir,
        "ai-gateway",
        product_binary("fleetgate-ai-gateway").expect("cargo build --bins"),
        [
            "--listen".to_string(),
            gw_addr.to_string(),
            "--config".into(),
            config.display().to_string(),
        ],
        [("RUST_LOG", "warn")],
    )
    .expect("gateway");

    let ll_addr = free_addr().expect("port");
    let ll_config = dir
        .write(
            "litellm.yaml",
            format!(
                "model_list:\n  - model_name: mock-gpt\n    litellm_params:\n      model: openai/mock-gpt\n      api_base: http://{mock_addr}/v1\n      api_key: {KEY}\nlitellm_settings:\n  telemetry: false\n  set_verbose: false\n"
            ),
        )
        .expect("config");
    let ll = Process::spawn_with_env(
        &dir,
        "litellm",
        &litellm,
        [
            "--config".to_string(),
            ll_config.display().to_string(),
            "--host".into(),
            ll_addr.ip().to_string(),
            "--port".into(),
            ll_addr.port().to_string(),
            "--num_workers".into(),
            "1".into(),
        ],
        // No network at start (the model cost map is bundled), no telemetry, quiet logs.
        [
            ("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
            ("LITELLM_LOG", "ERROR"),
            ("LITELLM_TELEMETRY", "False"),
            ("LITELLM_MASTER_KEY", LITELLM_MASTER_KEY),
        ],
    )
    .expect("litellm");

    let targets = [
        Target {
            name: "direct",
            addr: mock_addr,
            auth: Auth::Upstream,
        },
        Target {
            name: "fleetgate",
            addr: gw_addr,
            auth: Auth::Gateway,
        },
        Target {
            name: "litellm",
            addr: ll_addr,
            auth: Auth::LiteLlm,
        },
    ];
    for t in targets {
        wait_ready(t).await;
    }
    let idle = (
        rss_mib(gw.pid().unwrap_or(0)),
        rss_mib(ll.pid().unwrap_or(0)),
    );

    for stream in [false, true] {
        let shape = if stream { "streamed" } else { "plain" };
        let mut sat = Vec::new();
        for t in targets {
            saturate(t, stream, 8, 1).await; // warm-up
            let f = saturate(t, stream, 32, secs).await;
            println!(
                "BENCH ai-vs-litellm {shape} saturation c=32 {}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms errors {}",
                t.name,
                f.rps,
                ms(f.p50),
                ms(f.p99),
                f.errors
            );
            sat.push(f.rps);
        }
        println!(
            "BENCH ai-vs-litellm {shape} saturation ratio fleetgate/litellm {:.1}x",
            sat[1] / sat[2].max(1.0)
        );
        for rate in [100, 500, 1000] {
            let direct = fixed_rate(targets[0], stream, rate, 64, secs).await;
            for t in &targets[1..] {
                let f = fixed_rate(*t, stream, rate, 64, secs).await;
                println!(
                    "BENCH ai-vs-litellm {shape} rate={rate}/s {}: p50 {:.2} ms p99 {:.2} ms (direct p50 {:.2} p99 {:.2}) added p50 {:.2} ms p99 {:.2} ms errors {}",
                    t.name,
                    ms(f.p50),
                    ms(f.p99),
                    ms(direct.p50),
                    ms(direct.p99),
                    ms(f.p50) - ms(direct.p50),
                    ms(f.p99) - ms(direct.p99),
                    f.errors
                );
            }
        }
    }
    println!(
        "BENCH ai-vs-litellm memory MiB: fleetgate idle {:.0} after {:.0}; litellm idle {:.0} after {:.0}",
        idle.0,
        rss_mib(gw.pid().unwrap_or(0)),
        idle.1,
        rss_mib(ll.pid().unwrap_or(0)),
    );
}

/// A tenant's mock provider on its node and its AI route applied; returns the mock's address and
/// the Gateway's own address once Programmed.
async fn tenant_route(
    fleet: &fleetgate_e2e::Fleet,
    tenant: &str,
) -> (SocketAddr, std::net::IpAddr, Process) {
    use fleetgate_e2e::fixtures::tenant_openai_backend;
    let t = fleet.tenant(tenant);
    let node_ip = t.create_node("node-1", 10).await.expect("node");
    let node_port = fleetgate_e2e::ports::free_port_in(node_ip, 30000..=32767).expect("port");
    let mock_addr = SocketAddr::new(node_ip, node_port);
    let mock = Process::spawn(
        &fleet.dir,
        &format!("mock-llm-{tenant}"),
        product_binary("fleetgate-mock-llm").expect("cargo build --bins"),
        [
            "--listen".to_string(),
            mock_addr.to_string(),
            "--key".into(),
            KEY.into(),
        ],
    )
    .expect("mock");
    t.cluster
        .apply(&tenant_openai_backend(node_port, KEY))
        .await
        .expect("apply");
    let address = fleetgate_e2e::ai_fleet::programmed_address(t, "default", "ai").await;
    (mock_addr, address, mock)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with `make bench-ai`"]
async fn envoy_and_the_ai_gateway_together_at_fixed_rates() {
    use fleetgate_e2e::ai_fleet::AiFleet;
    use serde_json::json;

    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // The load is one tenant's at a time: its per-replica concurrency is not what is measured.
    // tenant-b has a budget it never spends: each of its requests is reserved with the hub.
    let quotas = json!({ "tenants": {
        "tenant-a": { "aiMaxConcurrency": 100000 },
        "tenant-b": { "aiMaxConcurrency": 100000,
                      "aiBudget": { "requests": 1_000_000_000_000u64, "window": "744h" } },
    }});
    let ai = AiFleet::start(
        &[
            ("tenant-a", "*.a.example", "127.0.1.0/24"),
            ("tenant-b", "*.b.example", "127.0.2.0/24"),
        ],
        1,
        2,
        [("quotas".to_string(), quotas)].into_iter().collect(),
    )
    .await
    .expect("fleet");
    let fleet = &ai.fleet;
    let gw_addr = ai.gateways[0].addr();
    let (mock_a, address_a, _mock_a) = tenant_route(fleet, "tenant-a").await;
    let (_, address_b, _mock_b) = tenant_route(fleet, "tenant-b").await;
    let targets = [
        Target {
            name: "direct",
            addr: mock_a,
            auth: Auth::Upstream,
        },
        Target {
            name: "ai-gateway",
            addr: gw_addr,
            auth: Auth::HubRoute,
        },
        Target {
            name: "envoy+ai-gateway",
            addr: SocketAddr::new(address_a, 8080),
            auth: Auth::Envoy,
        },
        Target {
            name: "envoy+ai-gateway+budget",
            addr: SocketAddr::new(address_b, 8080),
            auth: Auth::Envoy,
        },
    ];
    for t in targets {
        wait_ready(t).await;
        saturate(t, false, 8, 1).await; // warm-up
    }
    for stream in [false, true] {
        let shape = if stream { "streamed" } else { "plain" };
        for rate in [100, 500, 1000] {
            for t in &targets[1..] {
                // The direct baseline right before each target: this machine's latency drifts
                // by more than what is measured between runs a minute apart.
                let direct = fixed_rate(targets[0], stream, rate, 64, secs).await;
                let f = fixed_rate(*t, stream, rate, 64, secs).await;
                println!(
                    "BENCH envoy-ai {shape} rate={rate}/s {}: p50 {:.2} ms p99 {:.2} ms (direct p50 {:.2} p99 {:.2}) added p50 {:.2} ms p99 {:.2} ms errors {}",
                    t.name,
                    ms(f.p50),
                    ms(f.p99),
                    ms(direct.p50),
                    ms(direct.p99),
                    ms(f.p50) - ms(direct.p50),
                    ms(f.p99) - ms(direct.p99),
                    f.errors
                );
            }
        }
    }
}
