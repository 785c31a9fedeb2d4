//! `ai.groups` priority failover through the AI gateway, driven by the OpenAI SDK against the
//! mock OpenAI APIs proven by `mock_providers.rs`: a 429 with Retry-After, a 5xx on a stream and
//! a provider nobody listens on each move the request to the next provider, the client sees only
//! the answer; an ejected provider is skipped for its Retry-After and used again after it.
//!
//! The first tests configure the gateway from its file form; the last one from a tenant's
//! cluster: an AgentgatewayBackend with `spec.ai.groups` applied to a real kube-apiserver, sent
//! by the agent, admitted and compiled by the hub, served through Envoy and the AI gateway
//! process the hub programs.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_ai_gateway::config::RawConfig;
use fleetgate_ai_gateway::source::StaticSource;
use fleetgate_ai_gateway::{Running, Settings};
use fleetgate_e2e::ai_fleet::{AiFleet, tutorial_gateway, wait_condition};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::fixtures::condition;
use fleetgate_e2e::mock_llm::{Fault, MockLlm};
use fleetgate_e2e::ports::{free_addr, free_port_in};
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::{TIMEOUT, eventually};
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

const A_KEY: &str = "sk-provider-a-from-the-backends-secret";
const B_KEY: &str = "sk-provider-b-from-its-own-secret";

/// A tenant's failover backend: provider `a` (group 0) and `b` (group 1), each a mock OpenAI
/// server behind a NodePort Service of the tenant's cluster; `a` uses the backend's key
/// (`spec.policies.auth`), `b` its own (`providers[].policies.auth`).
fn failover_yaml(a_port: u16, b_port: u16) -> String {
    let service = |name: &str, port: u16| {
        format!(
            r#"
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: llm
spec:
  type: NodePort
  selector:
    app: {name}
  ports:
  - name: http
    port: 8080
    targetPort: 8080
    nodePort: {port}
---"#
        )
    };
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: agentgateway
spec:
  controllerName: agentgateway.dev/agentgateway
---
apiVersion: v1
kind: Namespace
metadata:
  name: agentgateway-system
---
apiVersion: v1
kind: Namespace
metadata:
  name: llm
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: agentgateway-proxy
  namespace: agentgateway-system
spec:
  gatewayClassName: agentgateway
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: All
---{a}{b}
apiVersion: v1
kind: Secret
metadata:
  name: llm-secret
  namespace: default
type: Opaque
stringData:
  Authorization: "Bearer {A_KEY}"
---
apiVersion: v1
kind: Secret
metadata:
  name: b-secret
  namespace: default
type: Opaque
stringData:
  Authorization: "Bearer {B_KEY}"
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: failover
  namespace: default
spec:
  ai:
    groups:
    - providers:
      - name: a
        host: mock-a.llm.svc.cluster.local
        port: 8080
        openai:
          model: mock-gpt
    - providers:
      - name: b
        host: mock-b.llm.svc.cluster.local
        port: 8080
        openai:
          model: mock-gpt
        policies:
          auth:
            secretRef:
              name: b-secret
  policies:
    auth:
      secretRef:
        name: llm-secret
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llm
  namespace: default
spec:
  parentRefs:
  - name: agentgateway-proxy
    namespace: agentgateway-system
  rules:
  - backendRefs:
    - group: agentgateway.dev
      kind: AgentgatewayBackend
      name: failover
"#,
        a = service("mock-a", a_port),
        b = service("mock-b", b_port),
    )
}

/// `e2e/ai/failover_check.py` against the tenant's Gateway. The identity headers it sends are
/// a forgery here: Envoy overwrites them with the tenant's and the route's.
async fn sdk_steps(gateway: SocketAddr, steps: &str) -> anyhow::Result<Value> {
    let output = tokio::process::Command::new(ai_python()?)
        .arg(workspace_dir().join("e2e/ai/failover_check.py"))
        .env("GATEWAY_URL", format!("http://{gateway}"))
        .env("TENANT", "forged-tenant")
        .env("ROUTE", "forged/route")
        .env("STEPS", steps)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_failover_groups_serve_from_the_second_provider_when_the_first_answers_429() {
    let ai = AiFleet::start(
        &[("tenant-a", "*.a.example", "127.0.1.0/24")],
        1,
        1,
        Default::default(),
    )
    .await
    .unwrap();
    let fleet = &ai.fleet;

    // Both mock providers run on the tenant's node, where kube-proxy would forward their
    // Services' nodePorts.
    let t = fleet.tenant("tenant-a");
    let node_ip: IpAddr = t.create_node("node-1", 10).await.unwrap();
    let a_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let a = MockLlm::start_at(
        "a",
        SocketAddr::new(node_ip, a_port),
        A_KEY,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    let b_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let b = MockLlm::start_at(
        "b",
        SocketAddr::new(node_ip, b_port),
        B_KEY,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    t.cluster
        .apply(&failover_yaml(a_port, b_port))
        .await
        .unwrap();

    // The backend's status says both providers resolved.
    let backend = wait_condition(
        t,
        "AgentgatewayBackend",
        "default",
        "failover",
        "/status/conditions",
        "ResolvedRefs",
        "True",
    )
    .await;
    let backend = condition(&backend["status"]["conditions"], "ResolvedRefs")
        .cloned()
        .unwrap_or_default();
    let message = backend["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("2 of 2 providers of spec.ai.groups resolved: groups[0].providers[0] (a): host mock-a.llm.svc.cluster.local resolved to 1 ready endpoint(s)"),
        "{message}"
    );
    let gw = tutorial_gateway(t).await;

    // The first group serves while it answers.
    let first = eventually(TIMEOUT, || async {
        let seen = sdk_steps(gw, "plain").await?;
        ensure!(seen == json!(["a heard: hello fleet"]), "{seen}");
        Ok(seen)
    })
    .await;
    eprintln!("before the fault: {first}");
    let a_before = a.seen().len();

    // a answers 429 with Retry-After: the client still gets 200, from b; while a is ejected,
    // the next request goes straight to b.
    a.fail_next(
        1,
        Fault {
            status: 429,
            retry_after: Some(30),
        },
    );
    let seen = sdk_steps(gw, "plain,stream,responses,responses_stream")
        .await
        .unwrap();
    assert_eq!(
        seen,
        json!([
            "b heard: hello fleet",
            "b heard: hello fleet",
            "b heard: hello fleet",
            "b heard: hello fleet"
        ]),
        "the 429 never reached the client; OpenAI's Responses API through Envoy too"
    );
    assert_eq!(
        a.seen().len(),
        a_before + 1,
        "a was asked once (the 429), then skipped for its Retry-After"
    );
    assert_eq!(b.seen().len(), 4);
    assert_eq!(
        b.seen()
            .iter()
            .filter(|r| r.path == "/v1/responses")
            .count(),
        2,
        "plain and streamed Responses reached b"
    );
    assert!(
        a.seen().iter().chain(b.seen().iter()).all(|r| r.key_ok),
        "each provider got its own key, never the client's"
    );
    assert!(
        b.seen().iter().all(|r| r.model == "mock-gpt"),
        "b's openai.model replaced the client's"
    );

    let mut secrets = Secrets::new();
    secrets.add("provider a key", A_KEY);
    secrets.add("provider b key", B_KEY);
    fleet.assert_no_secrets_in_logs(secrets);
}
