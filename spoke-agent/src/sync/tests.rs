//! The Sync client against an in-process tonic hub on loopback (plaintext; the TLS endpoint is
//! covered separately): full state on connect, deltas, Status hand-off, Nack handling and
//! reconnect with a fresh full state.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleetgate_proto::spoke::v1::spoke_service_server::{SpokeService, SpokeServiceServer};
use fleetgate_proto::spoke::v1::{Ack, HubMessage, Kind, Nack, ObjectRef, ObjectStatus};
use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};

use super::*;

/// What the fake hub answers to update `revision` of stream `stream`.
type Script = Arc<dyn Fn(usize, &Update) -> Vec<Result<HubMessage, tonic::Status>> + Send + Sync>;

struct Hub {
    seen: mpsc::UnboundedSender<(usize, AgentMessage)>,
    script: Script,
    streams: AtomicUsize,
}

#[tonic::async_trait]
impl SpokeService for Hub {
    type SyncStream = Pin<Box<dyn Stream<Item = Result<HubMessage, tonic::Status>> + Send>>;

    async fn sync(
        &self,
        req: tonic::Request<tonic::Streaming<AgentMessage>>,
    ) -> Result<tonic::Response<Self::SyncStream>, tonic::Status> {
        let n = self.streams.fetch_add(1, Ordering::SeqCst);
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let (seen, script) = (self.seen.clone(), self.script.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = inbound.next().await {
                let _ = seen.send((n, m.clone()));
                if let Some(agent_message::Kind::Update(u)) = &m.kind {
                    for reply in script(n, u) {
                        let _ = tx.send(reply);
                    }
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            UnboundedReceiverStream::new(rx),
        )))
    }
}

async fn start_hub(script: Script) -> (SocketAddr, mpsc::UnboundedReceiver<(usize, AgentMessage)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, rx) = mpsc::unbounded_channel();
    let hub = Hub {
        seen,
        script,
        streams: AtomicUsize::new(0),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SpokeServiceServer::new(hub))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (addr, rx)
}

fn ack_and_status(_: usize, u: &Update) -> Vec<Result<HubMessage, tonic::Status>> {
    vec![
        Ok(HubMessage {
            kind: Some(hub_message::Kind::Ack(Ack {
                traceparent: String::new(),
                revision: u.revision,
            })),
        }),
        Ok(HubMessage {
            kind: Some(hub_message::Kind::Status(Status {
                traceparent: String::new(),
                objects: vec![ObjectStatus {
                    observed_generation: i64::try_from(u.revision).unwrap(),
                    ..Default::default()
                }],
            })),
        }),
    ]
}

fn obj(name: &str, generation: i64) -> Object {
    Object {
        r#ref: Some(ObjectRef {
            kind: Kind::Gateway as i32,
            namespace: "ns".into(),
            name: name.into(),
        }),
        generation,
        ..Default::default()
    }
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<(usize, AgentMessage)>,
) -> (usize, agent_message::Kind) {
    let (n, m) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("hub got a message in time")
        .expect("hub alive");
    (n, m.kind.expect("message has a kind"))
}

async fn next_update(rx: &mut mpsc::UnboundedReceiver<(usize, AgentMessage)>) -> (usize, Update) {
    match next(rx).await {
        (n, agent_message::Kind::Update(u)) => (n, u),
        other => panic!("expected an Update, got {other:?}"),
    }
}

fn names(u: &Update) -> (Vec<String>, Vec<String>) {
    (
        u.upserts
            .iter()
            .map(|o| o.r#ref.clone().unwrap().name)
            .collect(),
        u.deletes.iter().map(|r| r.name.clone()).collect(),
    )
}

fn hello() -> Hello {
    Hello {
        cluster: "east".into(),
        agent_version: "test".into(),
    }
}

fn connector(
    addr: SocketAddr,
) -> impl FnMut() -> Pin<Box<dyn Future<Output = Result<Channel, SyncError>> + Send>> {
    move || {
        Box::pin(async move {
            Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .map_err(SyncError::Connect)
        })
    }
}

#[tokio::test]
async fn full_state_then_deltas_and_status() {
    let (addr, mut seen) = start_hub(Arc::new(ack_and_status)).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1), obj("b", 1)]);
    let (status_tx, mut status_rx) = watch::channel(None);
    tokio::spawn(Syncer::new(intent_rx, status_tx, hello()).run(connector(addr)));

    let (n, first) = next(&mut seen).await;
    let agent_message::Kind::Hello(h) = first else {
        panic!("Hello first")
    };
    assert_eq!((n, h.cluster.as_str()), (0, "east"));
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, u.full_state), (1, true));
    assert_eq!(names(&u), (vec!["a".into(), "b".into()], vec![]));

    tokio::time::timeout(Duration::from_secs(10), status_rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status_rx.borrow().as_ref().unwrap().objects[0].observed_generation,
        1
    );

    intent_tx.send_replace(vec![obj("a", 2), obj("c", 1)]);
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, u.full_state), (2, false));
    assert_eq!(names(&u), (vec!["a".into(), "c".into()], vec!["b".into()]));

    // An unchanged intent sends nothing; the next real change is revision 3.
    intent_tx.send_replace(vec![obj("a", 2), obj("c", 1)]);
    intent_tx.send_replace(vec![obj("c", 1)]);
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, names(&u)), (3, (vec![], vec!["a".into()])));
}

/// Scrapes `m` until it holds every line of `want` (or fails after 10 s with the last scrape).
async fn scrape_until(m: &crate::metrics::AgentMetrics, want: &[&str]) {
    let start = std::time::Instant::now();
    loop {
        let text = m.scrape(&[], None);
        if want.iter().all(|w| text.lines().any(|l| l == *w)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "wanted {want:?} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sync_state_and_watch_lag_follow_the_stream() {
    let (addr, mut seen) = start_hub(Arc::new(ack_and_status)).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    let metrics = Arc::new(crate::metrics::AgentMetrics::new());
    let events = crate::lag::EventClock::default();
    let syncer = Syncer::new(intent_rx, status_tx, hello())
        .with_metrics(metrics.clone())
        .with_event_clock(events.clone());
    tokio::spawn(syncer.run(connector(addr)));
    next(&mut seen).await; // Hello
    next_update(&mut seen).await;
    scrape_until(
        &metrics,
        &[
            r#"fleetgate_agent_sync_state{state="synced"} 1"#,
            r#"fleetgate_agent_sync_state{state="syncing"} 0"#,
            // Nothing was marked by a watch: nothing measured.
            "fleetgate_agent_watch_lag_seconds_count 0",
        ],
    )
    .await;
    // A watch event, and the Update that carries it: measured once the hub Acks it.
    events.mark(std::time::Instant::now());
    events.published(true);
    let carried = events.take_state();
    events.to_intent(carried);
    intent_tx.send_replace(vec![obj("a", 2)]);
    let (_, u) = next_update(&mut seen).await;
    assert_eq!(u.revision, 2);
    scrape_until(
        &metrics,
        &[
            "fleetgate_agent_watch_lag_seconds_count 1",
            r#"fleetgate_agent_sync_state{state="synced"} 1"#,
        ],
    )
    .await;
}

#[tokio::test]
async fn nack_makes_the_next_update_a_full_state() {
    let script: Script = Arc::new(|n, u: &Update| {
        if u.revision == 2 {
            vec![Ok(HubMessage {
                kind: Some(hub_message::Kind::Nack(Nack {
                    revision: 2,
                    message: "too big".into(),
                    ..Default::default()
                })),
            })]
        } else {
            ack_and_status(n, u)
        }
    });
    let (addr, mut seen) = start_hub(script).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    tokio::spawn(Syncer::new(intent_rx, status_tx, hello()).run(connector(addr)));
    next(&mut seen).await;
    next_update(&mut seen).await;

    intent_tx.send_replace(vec![obj("a", 1), obj("b", 1)]);
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, u.full_state), (2, false));
    // Let the Nack arrive before the next change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    intent_tx.send_replace(vec![obj("a", 1), obj("b", 1), obj("c", 1)]);
    let (n, u) = next_update(&mut seen).await;
    assert_eq!((n, u.revision, u.full_state), (0, 3, true));
    assert_eq!(names(&u).0, ["a", "b", "c"]);
}

#[tokio::test]
async fn rate_limit_nack_resends_the_full_state_after_the_wait_without_a_change() {
    let script: Script = Arc::new(|n, u: &Update| {
        if u.revision == 2 {
            vec![Ok(HubMessage {
                kind: Some(hub_message::Kind::Nack(Nack {
                    revision: 2,
                    message: "rate limit: 1 updates/s (burst 1) for this cluster, retry after 200ms; nothing of this update was applied".into(),
                    // A hub that predates Nack.retry_after_ms: the wait is in the message only.
                    ..Default::default()
                })),
            })]
        } else {
            ack_and_status(n, u)
        }
    });
    let (addr, mut seen) = start_hub(script).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    tokio::spawn(Syncer::new(intent_rx, status_tx, hello()).run(connector(addr)));
    next(&mut seen).await;
    next_update(&mut seen).await;

    intent_tx.send_replace(vec![obj("a", 1), obj("b", 1)]);
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, u.full_state), (2, false));
    // No further change: after the wait the agent sends its whole state on its own, on the
    // same stream.
    let (n, u) = next_update(&mut seen).await;
    assert_eq!((n, u.revision, u.full_state), (0, 3, true));
    assert_eq!(names(&u).0, ["a", "b"]);
}

#[tokio::test]
async fn a_nack_with_retry_after_ms_waits_that_long_then_resends_the_full_state() {
    const WAIT: Duration = Duration::from_millis(400);
    let script: Script = Arc::new(|n, u: &Update| {
        if u.revision == 2 {
            vec![Ok(HubMessage {
                kind: Some(hub_message::Kind::Nack(Nack {
                    revision: 2,
                    // Nothing in the text to parse: the typed fields alone say to wait.
                    message: "slow down".into(),
                    reason: fleetgate_proto::spoke::v1::nack::Reason::RateLimited as i32,
                    retry_after_ms: WAIT.as_millis() as u32,
                })),
            })]
        } else {
            ack_and_status(n, u)
        }
    });
    let (addr, mut seen) = start_hub(script).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    tokio::spawn(Syncer::new(intent_rx, status_tx, hello()).run(connector(addr)));
    next(&mut seen).await;
    next_update(&mut seen).await;

    intent_tx.send_replace(vec![obj("a", 1), obj("b", 1)]);
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, u.full_state), (2, false));
    // The hub answers revision 2 after the agent sent it: the wait counts from no earlier.
    let sent_at = tokio::time::Instant::now();
    let (n, u) = next_update(&mut seen).await;
    let waited = sent_at.elapsed();
    assert_eq!((n, u.revision, u.full_state), (0, 3, true));
    assert_eq!(names(&u).0, ["a", "b"]);
    // The wait plus at most as much jitter.
    assert!(waited >= WAIT, "{waited:?}");
    assert!(waited < 2 * WAIT + Duration::from_secs(2), "{waited:?}");
}

#[test]
fn the_typed_retry_after_wins_over_the_message_and_is_capped() {
    let nack = |message: &str, ms: u32| Nack {
        revision: 1,
        message: message.into(),
        reason: 0,
        retry_after_ms: ms,
    };
    assert_eq!(
        nack_retry_after(&nack("slow down", 250)),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        nack_retry_after(&nack("rate limit: 1 updates/s, retry after 5ms", 250)),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        nack_retry_after(&nack("slow down", u32::MAX)),
        Some(Duration::from_secs(60))
    );
    // A hub that predates the field: the message's wait.
    assert_eq!(
        nack_retry_after(&nack("rate limit: 1 updates/s, retry after 5ms", 0)),
        Some(Duration::from_millis(5))
    );
    assert_eq!(nack_retry_after(&nack("too big", 0)), None);
}

#[tokio::test]
async fn stream_error_reconnects_and_resends_full_state() {
    let script: Script = Arc::new(|n, u: &Update| {
        if n == 0 && u.revision == 2 {
            vec![Err(tonic::Status::unavailable("hub restarting"))]
        } else {
            ack_and_status(n, u)
        }
    });
    let (addr, mut seen) = start_hub(script).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    tokio::spawn(Syncer::new(intent_rx, status_tx, hello()).run(connector(addr)));
    next(&mut seen).await;
    next_update(&mut seen).await;
    intent_tx.send_replace(vec![obj("a", 1), obj("b", 1)]);
    assert_eq!(next_update(&mut seen).await.1.revision, 2);

    let (n, first) = next(&mut seen).await;
    assert!(
        matches!(first, agent_message::Kind::Hello(_)),
        "new stream starts with Hello"
    );
    assert_eq!(n, 1);
    let (n, u) = next_update(&mut seen).await;
    assert_eq!((n, u.revision, u.full_state), (1, 1, true));
    assert_eq!(names(&u).0, ["a", "b"]);
}

#[tokio::test]
async fn unreachable_hub_is_retried_and_shutdown_stops_the_client() {
    // Nothing listens here (bound then dropped).
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (intent_tx, intent_rx) = watch::channel(vec![]);
    let (status_tx, _status_rx) = watch::channel(None);
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let mut inner = connector(addr);
    let run = tokio::spawn(Syncer::new(intent_rx, status_tx, hello()).run(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        inner()
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(attempts.load(Ordering::SeqCst) >= 2, "retried");
    drop(intent_tx);
    tokio::time::timeout(Duration::from_secs(12), run)
        .await
        .expect("the client stops once the intent source is gone")
        .unwrap();
}

#[test]
fn backoff_table() {
    let ms = |a| backoff_ceiling(a).as_millis();
    assert_eq!(
        [0, 1, 2, 3, 4, 5, 6, 7, 40].map(ms),
        [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
    );
    let mut rng = rand::rng();
    for a in 0..10 {
        for _ in 0..50 {
            assert!(full_jitter(backoff_ceiling(a), &mut rng) <= backoff_ceiling(a));
        }
    }
    assert_eq!(full_jitter(Duration::ZERO, &mut rng), Duration::ZERO);
}

/// The real TLS endpoint against a tonic hub requiring client certificates from the same CA.
#[tokio::test]
async fn mtls_endpoint_talks_to_a_hub_that_requires_client_certificates() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf = |sans: Vec<rcgen::SanType>| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = sans;
        (
            p.signed_by(&key, &issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    let (hub_crt, hub_key) = leaf(vec![rcgen::SanType::DnsName(
        "fleetgate-hub".try_into().unwrap(),
    )]);
    let (agent_crt, agent_key) = leaf(vec![rcgen::SanType::URI(
        "spiffe://fleetgate/tenant/t/cluster/east"
            .try_into()
            .unwrap(),
    )]);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let hub = Hub {
        seen: seen_tx,
        script: Arc::new(ack_and_status),
        streams: AtomicUsize::new(0),
    };
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(&hub_crt, &hub_key))
        .client_ca_root(Certificate::from_pem(ca_cert.pem()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(SpokeServiceServer::new(hub))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let identity = |cert: &str, key: &str| Identity {
        ca_pem: ca_cert.pem().into_bytes(),
        cert_pem: cert.as_bytes().to_vec(),
        key_pem: key.as_bytes().to_vec(),
        spiffe: crate::identity::parse_spiffe("spiffe://fleetgate/tenant/t/cluster/east").unwrap(),
    };
    let hub_url = format!("https://{addr}");
    let good = tls_endpoint(&hub_url, &identity(&agent_crt, &agent_key), "fleetgate-hub").unwrap();
    let (_intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    let mut syncer = Syncer::new(intent_rx, status_tx, hello());
    let channel = good.connect().await.expect("mTLS handshake");
    tokio::spawn(async move { syncer.session(channel).await });
    assert!(matches!(
        next(&mut seen).await.1,
        agent_message::Kind::Hello(_)
    ));
    assert_eq!(next_update(&mut seen).await.1.revision, 1);

    // A hub whose certificate does not carry the expected name is refused.
    let wrong_name =
        tls_endpoint(&hub_url, &identity(&agent_crt, &agent_key), "other-hub").unwrap();
    assert!(wrong_name.connect().await.is_err());
}

#[test]
fn rate_limit_nacks_say_when_to_retry() {
    for (message, want) in [
        (
            "rate limit: 20 updates/s (burst 100) for this cluster, retry after 50ms; nothing of this update was applied",
            Some(Duration::from_millis(50)),
        ),
        (
            "rate limit: 1 updates/s, retry after 999999ms",
            Some(Duration::from_secs(60)),
        ),
        ("rate limit: retry after soon", None),
        ("expected revision 3; reconnect and send full state", None),
        ("the update would leave 5 objects, retry after 5ms", None),
    ] {
        assert_eq!(retry_after(message), want, "{message}");
    }
}

/// A throwaway identity for the renewal watch (the plaintext test hub ignores it).
fn any_identity() -> Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names = vec![rcgen::SanType::URI(
        "spiffe://fleetgate/tenant/t/cluster/east"
            .try_into()
            .unwrap(),
    )];
    let cert = p.self_signed(&key).unwrap();
    Identity::from_pem(
        cert.pem().into_bytes(),
        cert.pem().into_bytes(),
        key.serialize_pem().into_bytes(),
        std::path::Path::new("test"),
    )
    .unwrap()
}

#[tokio::test]
async fn a_renewed_identity_reopens_the_stream_with_the_full_state() {
    let (addr, mut seen) = start_hub(Arc::new(ack_and_status)).await;
    let (intent_tx, intent_rx) = watch::channel(vec![obj("a", 1)]);
    let (status_tx, _status_rx) = watch::channel(None);
    let (identity_tx, identity_rx) = watch::channel(any_identity());
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let mut inner = connector(addr);
    tokio::spawn(
        Syncer::new(intent_rx, status_tx, hello())
            .reconnect_when_renewed(identity_rx)
            .run(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                inner()
            }),
    );
    next(&mut seen).await;
    next_update(&mut seen).await;
    intent_tx.send_replace(vec![obj("a", 1), obj("b", 1)]);
    assert_eq!(next_update(&mut seen).await.1.revision, 2);

    identity_tx.send_replace(any_identity());
    let (n, first) = next(&mut seen).await;
    assert!(matches!(first, agent_message::Kind::Hello(_)));
    assert_eq!(n, 1, "a second stream");
    let (_, u) = next_update(&mut seen).await;
    assert_eq!((u.revision, u.full_state), (1, true));
    assert_eq!(names(&u).0, ["a", "b"], "no intent lost");
    // Reconnected at once (no backoff) and exactly once.
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}
