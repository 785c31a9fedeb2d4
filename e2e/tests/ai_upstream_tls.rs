//! TLS from the AI gateway to an external provider: a backend with `tls` is reached over HTTPS,
//! its certificate verified for the backend's host against the system's roots plus the
//! operator's (`--upstream-ca`). A provider whose certificate the gateway cannot trust, or that
//! was issued for another name, gets no request (and so never the key): the client gets a 502
//! saying why.
//!
//! The provider is the mock OpenAI API (proven with the official SDK by `mock_providers.rs`)
//! serving HTTPS on loopback as `localhost`, with a certificate from a CA the test creates.

use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use fleetgate_ai_gateway::{Running, Settings};
use fleetgate_e2e::http::post_json;
use fleetgate_e2e::mock_llm::MockLlm;
use fleetgate_e2e::pki::{Ca, Leaf};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

const KEY: &str = "sk-provider-over-tls";

/// A gateway serving one route to `localhost:<port>` over TLS, trusting `roots` besides the
/// system's.
async fn gateway(port: u16, roots: Vec<CertificateDer<'static>>) -> Running {
    let yaml = format!(
        "version: 1\ntenants:\n  t:\n    routes:\n      r:\n        ai:\n          provider: {{ openai: {{}}, host: localhost, port: {port}, tls: true }}\n        policies: {{ auth: {{ key: {KEY} }} }}\n"
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap());
    settings.upstream_roots = roots;
    fleetgate_ai_gateway::start(settings, config, Box::new(StaticSource))
        .await
        .unwrap()
}

async fn chat(gw: &Running) -> (u16, Value) {
    let r = post_json(
        gw.addr,
        "ai",
        "/v1/chat/completions",
        &[
            ("x-fleetgate-tenant", "t"),
            ("x-fleetgate-route", "r"),
            ("authorization", "Bearer sk-client-not-the-key"),
        ],
        &json!({"model": "m", "messages": [{"role": "user", "content": "hello fleet"}]}),
    )
    .await
    .unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

fn roots(ca: &Ca) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_reached_over_tls_and_verified_for_their_host() {
    let ca = Ca::new("provider-ca").unwrap();
    let good = ca
        .issue(&Leaf::server("localhost", &["localhost"]))
        .unwrap();
    let provider = MockLlm::start_tls_at("tls", "127.0.0.1:0".parse().unwrap(), KEY, &good)
        .await
        .unwrap();
    let port = provider.addr().port();

    // Trusted through --upstream-ca: the answer, and the key reached the provider over TLS.
    let trusting = gateway(port, roots(&ca)).await;
    let (status, body) = chat(&trusting).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "tls heard: hello fleet"
    );
    assert!(provider.seen().iter().all(|r| r.key_ok));
    assert_eq!(provider.seen().len(), 1);

    // Not trusted (the system's roots only): 502 saying why, and the provider saw nothing.
    let untrusting = gateway(port, Vec::new()).await;
    let (status, body) = chat(&untrusting).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("TLS to the provider failed") && message.contains("certificate"),
        "{message}"
    );
    assert_eq!(
        provider.seen().len(),
        1,
        "no request without a trusted TLS session"
    );

    // Trusted CA, but a certificate for another name: refused the same way.
    let other = ca
        .issue(&Leaf::server("other.example", &["other.example"]))
        .unwrap();
    let impostor = MockLlm::start_tls_at("impostor", "127.0.0.1:0".parse().unwrap(), KEY, &other)
        .await
        .unwrap();
    let misnamed = gateway(impostor.addr().port(), roots(&ca)).await;
    let (status, body) = chat(&misnamed).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("TLS to the provider failed"), "{message}");
    assert!(impostor.seen().is_empty());
}

#[test]
fn tls_to_endpoints_is_refused_with_what_to_write() {
    let yaml = "tenants:\n  t:\n    routes:\n      r:\n        ai:\n          provider: { openai: {}, host: llm.example, port: 443, tls: true, endpoints: ['127.0.1.1:443'] }\n";
    let err = RawConfig::from_yaml(yaml)
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "tenants.t.routes.r.ai.provider.tls: TLS to a backend's endpoints is not supported"
        ),
        "{err}"
    );
}
