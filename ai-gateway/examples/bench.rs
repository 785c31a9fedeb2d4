//! A first benchmark of the AI gateway: a minimal OpenAI-shaped upstream in this process, then
//! the same closed-loop load straight at it and through the gateway (also in this process, on
//! loopback). Prints throughput and p50/p99 latency of both, and the difference: what the gateway
//! adds. Non-streamed chat completions, then streamed ones (10 content chunks + a usage chunk
//! the gateway hides, since the client does not ask for it).
//!
//! `cargo run --release -p fleetgate-ai-gateway --example bench -- [SECONDS] [CONCURRENCY...]`
//!
//! Client, gateway and upstream share the machine's cores, so absolute figures understate a
//! dedicated host; the comparison is what matters.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleetgate_ai_gateway::Settings;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}"#;

fn sse() -> Bytes {
    let mut s = String::new();
    for i in 0..10 {
        s.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"mock\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    s.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"mock\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":10,\"total_tokens\":19}}\n\ndata: [DONE]\n\n");
    Bytes::from(s)
}

async fn mock_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stream_body = sse();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = tcp.set_nodelay(true);
            let stream_body = stream_body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let stream_body = stream_body.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let streamed = memchr(&body, b"\"stream\":true");
                        let (ct, bytes) = if streamed {
                            ("text/event-stream", stream_body)
                        } else {
                            ("application/json", Bytes::from_static(CHAT.as_bytes()))
                        };
                        let mut resp = Response::new(Full::new(bytes));
                        resp.headers_mut()
                            .insert("content-type", ct.parse().unwrap());
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

fn memchr(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Measured {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(addr: SocketAddr, stream: bool, concurrency: usize, secs: u64) -> Measured {
    let body = if stream {
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#
    } else {
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        tasks.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let req = Request::post(format!("http://{addr}/v1/chat/completions"))
                    .header("content-type", "application/json")
                    .header("authorization", "Bearer sk-client")
                    .header("x-fleetgate-tenant", "bench")
                    .header("x-fleetgate-route", "mock")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap();
                let t = Instant::now();
                let resp = send.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                assert!(!bytes.is_empty());
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Measured {
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(5);
    let mut concurrency: Vec<usize> = args.map(|s| s.parse().unwrap()).collect();
    if concurrency.is_empty() {
        concurrency = vec![1, 32];
    }
    let upstream = mock_upstream().await;
    let yaml = format!(
        "tenants:\n  bench:\n    maxConcurrency: 100000\n    routes:\n      mock:\n        ai:\n          provider: {{ openai: {{}}, host: \"{}\", port: {} }}\n        policies: {{ auth: {{ key: sk-backend }} }}\n",
        upstream.ip(),
        upstream.port()
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let usage = Arc::clone(&gw.usage);
    for stream in [false, true] {
        for &c in &concurrency {
            // Warm-up: connections, pools, caches.
            load(gw.addr, stream, c, 1).await;
            let direct = load(upstream, stream, c, secs).await;
            let through = load(gw.addr, stream, c, secs).await;
            println!(
                "BENCH ai-gateway {} c={c}: direct {:.0} req/s p50 {:.0} us p99 {:.0} us | through gateway {:.0} req/s p50 {:.0} us p99 {:.0} us | added p50 {:.0} us p99 {:.0} us",
                if stream { "streamed" } else { "plain" },
                direct.rps,
                us(direct.p50),
                us(direct.p99),
                through.rps,
                us(through.p50),
                us(through.p99),
                us(through.p50) - us(direct.p50),
                us(through.p99) - us(direct.p99),
            );
        }
    }
    let totals = usage.route_totals("bench", "mock");
    println!(
        "BENCH usage counted: {} requests, {} prompt + {} completion tokens",
        totals.requests, totals.prompt_tokens, totals.completion_tokens
    );
    gw.shutdown().await;
}
