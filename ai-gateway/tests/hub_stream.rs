//! The gateway's side of the hub's configuration stream (`fleetgate.aigateway.v1`), against an
//! in-process hub stand-in over loopback gRPC: Hello, a full state with one good and one bad
//! tenant, per-tenant Acks, the good tenant served, and a reconnect that reports what is served.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use fleetgate_ai_gateway::source::grpc::HubSource;
use fleetgate_ai_gateway::{Settings, config::Config};
use fleetgate_proto::aigateway::v1 as pb;
use pb::ai_gateway_config_server::{AiGatewayConfig, AiGatewayConfigServer};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// What the stand-in hub saw from the gateway, per connection.
#[derive(Debug)]
enum Seen {
    Hello(pb::Hello),
    Ack(pb::Ack),
}

struct FakeHub {
    seen: mpsc::UnboundedSender<Seen>,
}

fn tenant(name: &str, version: u64, port: u32) -> pb::TenantConfig {
    let backend = pb::Backend {
        kind: Some(pb::backend::Kind::Ai(pb::AiBackend {
            provider: Some(pb::ai_backend::Provider::Openai(pb::OpenAi { model: None })),
            host: "127.0.1.99".into(),
            port,
            path: None,
            path_prefix: None,
            endpoints: vec![],
            tls: false,
        })),
        policies: Some(pb::Policies {
            auth: Some(pb::BackendAuth {
                key: "sk-hub-SECRET".into(),
                passthrough: false,
            }),
            request_timeout_ms: 2000,
            model_aliases: Default::default(),
        }),
    };
    pb::TenantConfig {
        tenant: name.into(),
        version,
        max_concurrency: 4,
        routes: [("r".to_string(), backend)].into(),
        budget: None,
        virtual_keys: vec![],
        mcp_session_keys: vec![],
    }
}

#[tonic::async_trait]
impl AiGatewayConfig for FakeHub {
    type StreamStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::HubMessage, Status>> + Send>>;

    async fn stream(
        &self,
        request: Request<Streaming<pb::GatewayMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = request.into_inner();
        let seen = self.seen.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let Some(Ok(first)) = inbound.next().await else {
                return;
            };
            if let Some(pb::gateway_message::Kind::Hello(h)) = first.kind {
                let _ = seen.send(Seen::Hello(h));
            }
            let update = pb::Update {
                revision: 1,
                full_state: true,
                // b's port is out of range: refused alone.
                tenants: vec![tenant("a", 1, 9), tenant("b", 1, 70000)],
                removed_tenants: vec![],
            };
            let _ = tx
                .send(Ok(pb::HubMessage {
                    kind: Some(pb::hub_message::Kind::Update(update)),
                }))
                .await;
            if let Some(Ok(msg)) = inbound.next().await
                && let Some(pb::gateway_message::Kind::Ack(ack)) = msg.kind
            {
                let _ = seen.send(Seen::Ack(ack));
            }
            // Closing the stream here makes the gateway reconnect.
            drop(tx);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn spend(
        &self,
        _request: Request<pb::SpendRequest>,
    ) -> Result<Response<pb::SpendReply>, Status> {
        Err(Status::unimplemented("this test's hub counts no budgets"))
    }
}

#[tokio::test]
async fn the_gateway_follows_the_hubs_stream_and_acks_per_tenant() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AiGatewayConfigServer::new(FakeHub { seen: seen_tx }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let source = HubSource::new(
        &format!("http://{hub_addr}"),
        "ai-gateway-0",
        Duration::from_millis(200),
    )
    .unwrap();
    let gw = fleetgate_ai_gateway::start(
        Settings::new(SocketAddr::from(([127, 0, 0, 1], 0))),
        Config::default(),
        Box::new(source),
    )
    .await
    .unwrap();

    async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("the gateway talks to the hub")
            .unwrap()
    }
    let Seen::Hello(hello) = next(&mut seen).await else {
        panic!("Hello first")
    };
    assert_eq!(hello.gateway_id, "ai-gateway-0");
    assert!(hello.serving.is_empty(), "a cold start serves nothing");
    let Seen::Ack(ack) = next(&mut seen).await else {
        panic!("then an Ack")
    };
    assert_eq!(ack.revision, 1);
    let verdict = |t: &str| ack.tenants.iter().find(|s| s.tenant == t).unwrap().clone();
    assert!(verdict("a").accepted);
    let b = verdict("b");
    assert!(!b.accepted && b.reason.contains("port"), "{b:?}");

    // After the reconnect, Hello reports what this replica serves.
    let Seen::Hello(hello) = next(&mut seen).await else {
        panic!("Hello after reconnect")
    };
    let serving: Vec<(String, u64)> = hello
        .serving
        .iter()
        .map(|t| (t.tenant.clone(), t.version))
        .collect();
    assert_eq!(serving, [("a".to_string(), 1)]);

    // Tenant a's route is served (its upstream is down: 502), tenant b's is not (404).
    async fn status(addr: SocketAddr, tenant: &str) -> u16 {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let req = hyper::Request::get(format!("http://{addr}/v1/models"))
            .header("x-fleetgate-tenant", tenant)
            .header("x-fleetgate-route", "r")
            .body(http_body_util::Empty::new())
            .unwrap();
        client.request(req).await.unwrap().status().as_u16()
    }
    assert_eq!(status(gw.addr, "a").await, 502);
    assert_eq!(status(gw.addr, "b").await, 404);
    gw.shutdown().await;
}
