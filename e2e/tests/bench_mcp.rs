//! Benchmark (ignored by default): an MCP `tools/call` through the AI gateway's federation
//! against the same call straight to the server (a PyPI `mcp` SDK server speaking streamable
//! HTTP), open loop at fixed rates, latency measured from each request's scheduled time; the
//! added p50/p99 is what the gateway costs (parse, open the sealed session id, one upstream
//! POST, read its event stream, answer).
//!
//! `BENCH_SECONDS=5 cargo test -p fleetgate-e2e --test bench_mcp -- --ignored --nocapture`

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use fleetgate_ai_gateway::{Settings, start};
use fleetgate_e2e::mcp_server::{McpServer, Transport};
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::process::TestDir;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};

/// Where a request goes: the address, the path, and the headers of its session.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    path: &'static str,
    headers: Vec<(String, String)>,
}

fn request(t: &Target, body: &Value) -> Request<Full<Bytes>> {
    let mut b = Request::post(t.path)
        .header("host", t.addr.to_string())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in &t.headers {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

/// Initializes a session at `t`; returns `t` with its session headers.
async fn session(mut t: Target) -> Target {
    let mut send = connect(t.addr).await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    let resp = send.send_request(request(&t, &init)).await.unwrap();
    let id = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_string();
    let _ = resp.into_body().collect().await;
    t.headers.push(("mcp-session-id".into(), id));
    t.headers
        .push(("mcp-protocol-version".into(), "2025-11-25".into()));
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    send.ready().await.unwrap();
    let resp = send.send_request(request(&t, &initialized)).await.unwrap();
    let _ = resp.into_body().collect().await;
    t
}

/// Open loop at `rate` calls/s over `conns` connections for `secs`; p50, p99 and errors.
async fn fixed_rate(t: &Target, rate: u64, conns: u64, secs: u64) -> (Duration, Duration, usize) {
    let total = rate * secs;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut send = connect(t.addr).await;
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut k = c;
            while k < total {
                let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let call = json!({"jsonrpc": "2.0", "id": k, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
                if send.ready().await.is_err() {
                    send = connect(t.addr).await;
                }
                match send.send_request(request(&t, &call)).await {
                    Ok(r) if r.status() == 200 => {
                        let body = r.into_body().collect().await.map(|b| b.to_bytes());
                        if body.is_ok_and(|b| String::from_utf8_lossy(&b).contains("\"3\"")) {
                            lat.push(due.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
                k += conns;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (at(0.5), at(0.99), errors)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn tools_call_through_the_gateway_against_the_server_directly() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = TestDir::new("bench_mcp").unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let addr = SocketAddr::new(ip, free_port_in(ip, 20000..=29999).unwrap());
    let _server = McpServer::start(&dir, "alpha", Transport::StreamableHttp, addr, &[])
        .await
        .unwrap();
    let yaml = format!(
        "tenants:\n  t:\n    routes:\n      tools:\n        mcp:\n          targets:\n            - {{ name: alpha, host: 127.0.0.1, port: {} }}\n",
        addr.port()
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let direct = session(Target {
        addr,
        path: "/mcp",
        headers: Vec::new(),
    })
    .await;
    let through = session(Target {
        addr: gw.addr,
        path: "/mcp",
        headers: vec![
            ("x-fleetgate-tenant".into(), "t".into()),
            ("x-fleetgate-route".into(), "tools".into()),
        ],
    })
    .await;
    fixed_rate(&direct, 50, 4, 1).await; // warm-up
    fixed_rate(&through, 50, 4, 1).await;
    for rate in [50, 100, 200] {
        let (d50, d99, de) = fixed_rate(&direct, rate, 16, secs).await;
        let (g50, g99, ge) = fixed_rate(&through, rate, 16, secs).await;
        println!(
            "BENCH mcp tools/call rate={rate}/s: through the gateway p50 {:.2} ms p99 {:.2} ms (direct p50 {:.2} p99 {:.2}) added p50 {:.2} ms p99 {:.2} ms errors {} / {}",
            ms(g50),
            ms(g99),
            ms(d50),
            ms(d99),
            ms(g50) - ms(d50),
            ms(g99) - ms(d99),
            ge,
            de
        );
    }
    gw.shutdown().await;
}
