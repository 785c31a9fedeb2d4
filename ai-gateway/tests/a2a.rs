//! A2A routes over real loopback HTTP, against a small agent written here that records what it
//! receives: the card rewritten for the URL the client used (`x-forwarded-proto`, Host, the
//! route's prefix) with nothing naming the agent; JSON-RPC calls sent to the path the agent's
//! card names, with the backend's key and none of the client's credentials or identity
//! headers; a stream passed on event by event (the agent sends its second event only after the
//! client has read the first: a buffering gateway would hang); errors as JSON-RPC errors; the
//! telemetry and the card summary per tenant and route.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fleetgate_ai_gateway::Settings;
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What the agent received: method, path and headers of each request.
type Seen = Arc<Mutex<Vec<(String, String, Vec<(String, String)>)>>>;

/// Channels the stream's second event waits on.
type Gate = Arc<tokio::sync::Mutex<mpsc::Receiver<()>>>;

/// An agent: its card at `/.well-known/agent-card.json` (URLs naming its own address, JSON-RPC
/// at `/rpc`), `tasks/get` answered as a completed task, `message/stream` as two SSE events
/// with the second sent only when `gate` fires.
async fn agent(seen: Seen, gate: Gate) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    let gate = gate.clone();
                    async move {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
                            .collect();
                        let path = req.uri().path().to_string();
                        seen.lock().unwrap().push((
                            req.method().to_string(),
                            path.clone(),
                            headers,
                        ));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let json_resp = |v: Value| {
                            let mut r = hyper::Response::new(
                                Full::new(Bytes::from(v.to_string()))
                                    .map_err(|never| match never {})
                                    .boxed(),
                            );
                            r.headers_mut()
                                .insert("content-type", "application/json".parse().unwrap());
                            r
                        };
                        if path == "/.well-known/agent-card.json" {
                            let me = format!("http://{addr}/rpc");
                            return Ok::<_, Infallible>(json_resp(json!({
                                "name": "lock-step agent",
                                "description": format!("at {addr}"),
                                "url": me,
                                "preferredTransport": "JSONRPC",
                                "supportedInterfaces": [{"url": me, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
                                "capabilities": {"streaming": true},
                                "skills": [{"id": "step", "name": "Step"}]
                            })));
                        }
                        let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        match call["method"].as_str() {
                            Some("message/stream") => {
                                let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                                tokio::spawn(async move {
                                    let event = |state: &str| {
                                        Frame::data(Bytes::from(format!(
                                            "data: {}\n\n",
                                            json!({"jsonrpc": "2.0", "id": 1, "result": {"kind": "status-update", "taskId": "task-1", "status": {"state": state}}})
                                        )))
                                    };
                                    let _ = tx.send(Ok(event("working"))).await;
                                    gate.lock().await.recv().await;
                                    let _ = tx.send(Ok(event("completed"))).await;
                                });
                                let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
                                let mut r = hyper::Response::new(StreamBody::new(stream).boxed());
                                r.headers_mut()
                                    .insert("content-type", "text/event-stream".parse().unwrap());
                                Ok(r)
                            }
                            _ => Ok(json_resp(json!({
                                "jsonrpc": "2.0", "id": call["id"],
                                "result": {"kind": "task", "id": "task-1", "status": {"state": "completed"}}
                            }))),
                        }
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

fn client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>()
}

fn request(gw: SocketAddr, method: &str, path: &str, body: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method(method)
        .uri(format!("http://{gw}{path}"))
        .header("host", "agents.a.example")
        .header("x-forwarded-proto", "https")
        .header("authorization", "Bearer client-own-key")
        .header("cookie", "session=client")
        .header("x-fleetgate-tenant", "t")
        .header("x-fleetgate-route", "c1/default/agent")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn json_of(resp: hyper::Response<hyper::body::Incoming>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_a2a_route_rewrites_the_card_proxies_calls_and_streams_event_by_event() {
    let seen: Seen = Arc::default();
    let (open, gate) = mpsc::channel(1);
    let agent = agent(seen.clone(), Arc::new(tokio::sync::Mutex::new(gate))).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        r#"
tenants:
  t:
    routes:
      c1/default/agent:
        a2a: {{ host: agent.team.svc.cluster.local, port: 9999, endpoints: ["{agent}"] }}
        policies: {{ auth: {{ key: agent-key }} }}
      c1/default/gone:
        a2a: {{ host: gone.team.svc.cluster.local, port: 9999, endpoints: ["{dead}"] }}
      c1/default/keyed:
        a2a: {{ host: agent.team.svc.cluster.local, port: 9999, endpoints: ["{agent}"] }}
    virtualKeys:
      c1/default/alice:
        sha256: "{sha}"
        routes: [c1/default/keyed]
"#,
        sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = fleetgate_ai_gateway::start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let http = client();

    // The card, for the URL the client used.
    let (status, card) = json_of(
        http.request(request(
            gw.addr,
            "GET",
            "/agents/step/.well-known/agent-card.json",
            "",
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{card}");
    let want = "https://agents.a.example/agents/step";
    assert_eq!(card["url"], want);
    assert_eq!(card["supportedInterfaces"][0]["url"], want);
    assert!(!card.to_string().contains(&agent.to_string()), "{card}");
    assert!(card.get("description").is_none(), "{card}");

    // A call goes to the card's JSON-RPC path with the backend's key only.
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tasks/get","params":{"id":"task-1"}}"#;
    let (status, answer) = json_of(
        http.request(request(gw.addr, "POST", "/agents/step", call))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["status"]["state"], "completed");
    {
        let seen = seen.lock().unwrap();
        let (method, path, headers) = seen.last().unwrap();
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/rpc"));
        let header = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(header("authorization"), ["Bearer agent-key"]);
        assert_eq!(header("host"), ["agent.team.svc.cluster.local:9999"]);
        assert!(header("cookie").is_empty());
        assert!(
            headers.iter().all(|(k, _)| !k.starts_with("x-fleetgate-")),
            "{headers:?}"
        );
    }

    // A stream: the first event reaches the client before the agent sends the second.
    let stream_call = r#"{"jsonrpc":"2.0","id":1,"method":"message/stream","params":{}}"#;
    let resp = http
        .request(request(gw.addr, "POST", "/agents/step", stream_call))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    while !text.contains("working") {
        let frame = body.frame().await.expect("the first event").unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(!text.contains("completed"), "{text}");
    open.send(()).await.unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    text.push_str(&String::from_utf8_lossy(&rest));
    assert!(text.contains("completed"), "{text}");

    // Errors are JSON-RPC errors.
    let (status, e) = json_of(
        http.request(request(gw.addr, "POST", "/agents/step", "{not json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (400, json!(-32700)),
        "{e}"
    );
    let mut gone = request(gw.addr, "POST", "/x", call);
    gone.headers_mut()
        .insert("x-fleetgate-route", "c1/default/gone".parse().unwrap());
    let (status, e) = json_of(http.request(gone).await.unwrap()).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["jsonrpc"], "2.0");
    assert_eq!(e["error"]["code"], -32603);
    let (status, e) = json_of(
        http.request(request(gw.addr, "DELETE", "/agents/step", ""))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (404, json!(-32601)),
        "{e}"
    );

    // Telemetry per tenant, route and method; the card's skills for the catalog.
    let telemetry = &gw.a2a.telemetry;
    let get = telemetry.totals("t", "c1/default/agent", "tasks/get");
    assert_eq!((get.calls, get.errors), (1, 0));
    assert_eq!(get.states, [("completed", 1)].into());
    let stream = telemetry.totals("t", "c1/default/agent", "message/stream");
    assert_eq!((stream.calls, stream.streamed, stream.events), (1, 1, 2));
    assert_eq!(stream.states, [("completed", 1), ("working", 1)].into());
    assert_eq!(telemetry.totals("t", "c1/default/agent", "card").calls, 1);
    assert_eq!(telemetry.totals("t", "c1/default/agent", "other").errors, 1);
    let agents = telemetry.agents("t");
    assert_eq!(agents["c1/default/agent"].name, "lock-step agent");
    assert_eq!(agents["c1/default/agent"].skills[0].id, "step");
    gw.shutdown().await;
}
