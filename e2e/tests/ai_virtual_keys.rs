//! Virtual keys end to end: a tenant applies an AgentgatewayBackend (its provider key in a
//! Secret), an HTTPRoute to it, and a fleetgate.dev VirtualKey whose Secret holds the key it
//! hands its user. Through Envoy at the tenant's Gateway: no key and a wrong key get 401 in
//! OpenAI's shape, the right key gets the provider's answer, and the provider saw the backend's
//! key, never the virtual key. The VirtualKey shows Accepted=True in the tenant cluster; one whose
//! Secret is missing shows ResolvedRefs=False saying which Secret. The key's own budget is
//! counted by the hub (429 once spent). No log holds either key.
//!
//! Real components: kube-apiserver + etcd (the tenant cluster, with deploy/crds and the agent
//! RBAC of deploy/), the agent, the hub, Envoy, one AI gateway process programmed by the hub, and
//! the mock OpenAI API (proven against the official SDK by `mock_providers.rs`) on the tenant's
//! node. All on 127.0.0.0/8.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::ensure;
use fleetgate_e2e::ai_fleet::{AiFleet, programmed_address};
use fleetgate_e2e::fixtures::condition;
use fleetgate_e2e::http::{Response, post_json};
use fleetgate_e2e::mock_llm::MockLlm;
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::{TIMEOUT, eventually};
use serde_json::{Value, json};

/// The provider key: only the gateway may present it.
const PROVIDER_KEY: &str = "sk-provider-e2e-3b8d1f";
/// The key the tenant hands its user alice.
const VIRTUAL_KEY: &str = "vk-alice-e2e-9c41a7d2e06b";
/// alice's own request budget (the tenant has none).
const ALICE_REQUESTS: u64 = 3;

fn yaml(node_port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: agentgateway
spec:
  controllerName: agentgateway.dev/agentgateway
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ai
  namespace: default
spec:
  gatewayClassName: agentgateway
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
---
apiVersion: v1
kind: Service
metadata:
  name: mock
  namespace: default
spec:
  type: NodePort
  selector:
    app: mock
  ports:
  - name: http
    port: 8080
    targetPort: 8080
    nodePort: {node_port}
---
apiVersion: v1
kind: Secret
metadata:
  name: provider
  namespace: default
type: Opaque
stringData:
  Authorization: "Bearer {PROVIDER_KEY}"
---
apiVersion: v1
kind: Secret
metadata:
  name: alice-key
  namespace: default
type: Opaque
stringData:
  key: "{VIRTUAL_KEY}\n"
---
apiVersion: fleetgate.dev/v1alpha1
kind: VirtualKey
metadata:
  name: alice
  namespace: default
spec:
  secretRef: {{name: alice-key}}
  backends: [{{name: llm}}]
  budget: {{requests: {ALICE_REQUESTS}, window: 744h}}
---
apiVersion: fleetgate.dev/v1alpha1
kind: VirtualKey
metadata:
  name: bob
  namespace: default
spec:
  secretRef: {{name: bob-key}}
  backends: [{{name: llm}}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: llm
  namespace: default
spec:
  ai:
    provider:
      openai:
        model: mock-gpt
      host: mock.default.svc.cluster.local
      port: 8080
  policies:
    auth:
      secretRef:
        name: provider
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llm
  namespace: default
spec:
  parentRefs:
  - name: ai
  rules:
  - backendRefs:
    - group: agentgateway.dev
      kind: AgentgatewayBackend
      name: llm
"#
    )
}

async fn chat(gateway: SocketAddr, headers: &[(&str, &str)]) -> anyhow::Result<Response> {
    post_json(
        gateway,
        "anything",
        "/v1/chat/completions",
        headers,
        &json!({"model": "any", "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await
}

/// The conditions of VirtualKey `name`, once the agent has written them.
async fn key_conditions(cluster: &fleetgate_e2e::FleetTenant, name: &str) -> Value {
    eventually(TIMEOUT, || async {
        let k = cluster
            .cluster
            .get_json("VirtualKey", "default", name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no VirtualKey {name}"))?;
        let conditions = k["status"]["conditions"].clone();
        ensure!(
            condition(&conditions, "Accepted").is_some(),
            "no status on {name} yet: {}",
            k["status"]
        );
        Ok(conditions)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_virtual_key_opens_the_route_and_the_provider_never_sees_it() {
    let ai = AiFleet::start(
        &[("tenant-a", "*.a.example", "127.0.1.0/24")],
        1,
        1,
        Default::default(),
    )
    .await
    .unwrap();
    let fleet = &ai.fleet;
    let t = fleet.tenant("tenant-a");
    let node_ip: IpAddr = t.create_node("node-1", 10).await.unwrap();
    let port = free_port_in(node_ip, 30000..=32767).unwrap();
    let mock = MockLlm::start_at(
        "mock",
        SocketAddr::new(node_ip, port),
        PROVIDER_KEY,
        Duration::ZERO,
    )
    .await
    .unwrap();
    t.cluster.apply(&yaml(port)).await.unwrap();
    let gateway = programmed_address(t, "default", "ai").await;
    let gateway = SocketAddr::new(gateway, 8080);
    let bearer = format!("Bearer {VIRTUAL_KEY}");

    // Once the hub has programmed Envoy and the AI gateway with the key, a request without
    // one is refused: 401 in OpenAI's shape.
    let missing = eventually(TIMEOUT, || async {
        let r = chat(gateway, &[]).await?;
        ensure!(r.status == 401, "{} {}", r.status, r.body);
        Ok(r)
    })
    .await;
    let body: Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    let before = mock.seen().len();

    // The right key is served.
    let served = chat(gateway, &[("authorization", &bearer)]).await.unwrap();
    assert_eq!(served.status, 200, "{}", served.body);
    let answer: Value = serde_json::from_str(&served.body).unwrap();
    assert_eq!(answer["object"], "chat.completion", "{answer}");

    // A wrong key: 401, never repeating the key presented.
    let wrong = chat(gateway, &[("authorization", "Bearer vk-alice-guess-000")])
        .await
        .unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(!wrong.body.contains("vk-alice-guess-000"), "{}", wrong.body);
    // As x-api-key (Anthropic's header), the key opens the route too.
    let api_key = chat(gateway, &[("x-api-key", VIRTUAL_KEY)]).await.unwrap();
    assert_eq!(api_key.status, 200, "{}", api_key.body);

    // The provider saw the two keyed requests, none of the refused ones, with the backend's
    // key on each, and never the virtual key (not even on a request that reached the route
    // before its key did).
    let seen = mock.seen();
    assert_eq!(seen.len() - before, 2, "{seen:?}");
    for s in &seen {
        assert!(
            s.key_ok,
            "the provider key was not presented: {:?}",
            s.headers
        );
        assert!(
            s.headers.iter().all(|(_, v)| !v.contains(VIRTUAL_KEY)),
            "the virtual key reached the provider: {:?}",
            s.headers
        );
    }

    // alice's own budget (3 requests) is counted by the hub: one more is served, then 429.
    let third = chat(gateway, &[("x-api-key", VIRTUAL_KEY)]).await.unwrap();
    assert_eq!(third.status, 200, "{}", third.body);
    let spent = chat(gateway, &[("authorization", &bearer)]).await.unwrap();
    assert_eq!(spent.status, 429, "{}", spent.body);
    let body: Value = serde_json::from_str(&spent.body).unwrap();
    assert_eq!(body["error"]["type"], "insufficient_quota", "{body}");
    assert_eq!(mock.seen().len() - before, ALICE_REQUESTS as usize);

    // Status in the tenant's cluster: alice accepted and resolved; bob's Secret is missing.
    let alice = key_conditions(t, "alice").await;
    let accepted = condition(&alice, "Accepted").unwrap();
    assert_eq!(accepted["status"], "True", "{alice}");
    assert_eq!(condition(&alice, "ResolvedRefs").unwrap()["status"], "True");
    let bob = eventually(TIMEOUT, || async {
        let c = key_conditions(t, "bob").await;
        let refs = condition(&c, "ResolvedRefs").cloned().unwrap_or_default();
        ensure!(refs["status"] == "False", "bob: {c}");
        Ok(refs)
    })
    .await;
    assert_eq!(bob["reason"], "BackendNotFound", "{bob}");
    assert!(
        bob["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Secret default/bob-key"),
        "{bob}"
    );

    let mut secrets = Secrets::new();
    secrets.add("the provider key", PROVIDER_KEY);
    secrets.add("the virtual key", VIRTUAL_KEY);
    fleet.assert_no_secrets_in_logs(secrets);
}
