//! The agent gateway end to end: a tenant applies the KubeLB tutorial's agentgateway resources
//! unchanged, and the official OpenAI SDK pointed at the Gateway's address gets answers from a
//! real llama.cpp server behind the tenant's Service, through Envoy and fleetgate's AI gateway,
//! with the key from the tenant's Secret that the client never held.
//!
//! Real components: kube-apiserver + etcd (the tenant clusters), the agent, the hub, Envoy, the
//! AI gateway process programmed by the hub, llama.cpp's server on a generated tiny model
//! (`e2e/setup.sh ai`), and the `openai` SDK from the setup's virtualenv.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::ai_fleet::{AiFleet, programmed_address, wait_condition};
use fleetgate_e2e::components::{ai_python, workspace_dir};
use fleetgate_e2e::fixtures::condition;
use fleetgate_e2e::mock_llm::{MockLlm, Vendor};
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::{LlamaServer, TIMEOUT, eventually};
use serde_json::{Value, json};

const LLAMA_KEY: &str = "sk-llama-key-from-the-tenants-secret";

/// The tutorial's resources, as a tenant writes them (the Gateway in its own namespace, the
/// backend, Secret and route in `default`, llama.cpp's Service in `llm`).
fn tutorial_yaml(node_port: u16) -> String {
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
---
apiVersion: v1
kind: Namespace
metadata:
  name: llm
---
apiVersion: v1
kind: Service
metadata:
  name: llama-cpp
  namespace: llm
spec:
  type: NodePort
  selector:
    app: llama-cpp
  ports:
  - name: http
    port: 8080
    targetPort: 8080
    nodePort: {node_port}
---
apiVersion: v1
kind: Secret
metadata:
  name: llm-secret
  namespace: default
type: Opaque
stringData:
  Authorization: "Bearer {LLAMA_KEY}"
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: local-llm
  namespace: default
spec:
  ai:
    provider:
      openai:
        model: gemma-4-12b-it
      host: llama-cpp.llm.svc.cluster.local
      port: 8080
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
      name: local-llm
"#
    )
}

const CLAUDE_KEY: &str = "sk-anthropic-key-from-the-tenants-secret";

/// A second Gateway whose route leads to an Anthropic backend in the tenant's cluster.
fn claude_yaml(node_port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: claude-proxy
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
---
apiVersion: v1
kind: Service
metadata:
  name: mock-claude
  namespace: llm
spec:
  type: NodePort
  selector:
    app: mock-claude
  ports:
  - name: http
    port: 8080
    targetPort: 8080
    nodePort: {node_port}
---
apiVersion: v1
kind: Secret
metadata:
  name: claude-secret
  namespace: default
type: Opaque
stringData:
  Authorization: "Bearer {CLAUDE_KEY}"
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: claude
  namespace: default
spec:
  ai:
    provider:
      anthropic:
        model: mock-claude
      host: mock-claude.llm.svc.cluster.local
      port: 8080
  policies:
    auth:
      secretRef:
        name: claude-secret
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: claude
  namespace: default
spec:
  parentRefs:
  - name: claude-proxy
    namespace: agentgateway-system
  rules:
  - backendRefs:
    - group: agentgateway.dev
      kind: AgentgatewayBackend
      name: claude
"#
    )
}

/// Runs e2e/ai/tutorial_check.py against `gateway` (the Gateway's address and port);
/// `upstream` is the model server behind it, which must refuse the client's key.
async fn openai_sdk(
    gateway: SocketAddr,
    upstream: SocketAddr,
    forged_tenant: Option<&str>,
) -> anyhow::Result<Value> {
    let mut cmd = tokio::process::Command::new(ai_python()?);
    cmd.arg(workspace_dir().join("e2e/ai/tutorial_check.py"))
        .env("GATEWAY_URL", format!("http://{gateway}"))
        .env("LLAMA_URL", format!("http://{upstream}"));
    if let Some(t) = forged_tenant {
        cmd.env("FORGED_TENANT", t);
    }
    let output = cmd.output().await?;
    ensure!(
        output.status.success(),
        "SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tutorials_agentgateway_resources_serve_the_openai_sdk_from_llama_cpp() {
    // Own addresses for hostname-less Gateways, and one AI gateway replica.
    let ai = AiFleet::start(
        &[
            ("tenant-a", "*.a.example", "127.0.1.0/24"),
            ("tenant-b", "*.b.example", "127.0.2.0/24"),
        ],
        1,
        2,
        Default::default(),
    )
    .await
    .unwrap();
    let fleet = &ai.fleet;

    // tenant-a's node runs llama.cpp where kube-proxy would forward the Service's nodePort.
    let a = fleet.tenant("tenant-a");
    let node_ip: IpAddr = a.create_node("node-1", 10).await.unwrap();
    let node_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let llama = LlamaServer::start_at(&fleet.dir, SocketAddr::new(node_ip, node_port), LLAMA_KEY)
        .await
        .unwrap();
    a.cluster.apply(&tutorial_yaml(node_port)).await.unwrap();

    // True status on all three objects in the tenant's cluster.
    let address = programmed_address(a, "agentgateway-system", "agentgateway-proxy").await;
    assert!(
        ai.own_addresses.contains(&address),
        "the Gateway is served on its own address"
    );
    for type_ in ["Accepted", "ResolvedRefs"] {
        wait_condition(
            a,
            "HTTPRoute",
            "default",
            "llm",
            "/status/parents/0/conditions",
            type_,
            "True",
        )
        .await;
    }
    wait_condition(
        a,
        "AgentgatewayBackend",
        "default",
        "local-llm",
        "/status/conditions",
        "Accepted",
        "True",
    )
    .await;

    // The OpenAI SDK at the Gateway's address: plain and streamed, with a key llama.cpp refuses.
    let gateway = SocketAddr::new(address, 8080);
    let seen = eventually(TIMEOUT, || openai_sdk(gateway, llama.addr(), None)).await;
    eprintln!("SDK saw: {seen:#}");
    assert_eq!(
        seen["direct_status"], 401,
        "llama.cpp refuses the client's key"
    );
    let plain = &seen["plain"];
    assert_eq!(
        plain["model"], "gemma-4-12b-it",
        "the backend's openai.model replaced the client's model on the way to llama.cpp"
    );
    let content = plain["content"].as_str().unwrap_or_default();
    assert!(!content.is_empty(), "{plain}");
    assert!(
        plain["completion_tokens"].as_u64().unwrap_or(0) > 0,
        "{plain}"
    );
    assert_eq!(
        seen["stream"]["content"], plain["content"],
        "temperature 0: the streamed answer is the plain one"
    );
    assert!(seen["stream"]["chunks"].as_u64().unwrap_or(0) > 1, "{seen}");

    // A client's own identity headers are overwritten by Envoy: naming tenant-b changes nothing.
    let forged = openai_sdk(gateway, llama.addr(), Some("tenant-b"))
        .await
        .unwrap();
    assert_eq!(forged["plain"]["content"], plain["content"]);

    // The same tenant's Anthropic backend (the mock Messages API proven by mock_providers.rs, on
    // its node behind Service mock-claude): the OpenAI SDK at that Gateway gets Anthropic's
    // answer translated, with the key from the Secret in x-api-key.
    let claude_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let claude = MockLlm::start_at(
        "mock",
        SocketAddr::new(node_ip, claude_port),
        CLAUDE_KEY,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    a.cluster.apply(&claude_yaml(claude_port)).await.unwrap();
    let caddress = programmed_address(a, "agentgateway-system", "claude-proxy").await;
    assert_ne!(caddress, address, "each Gateway has its own address");
    let translated = eventually(TIMEOUT, || {
        openai_sdk(SocketAddr::new(caddress, 8080), claude.addr(), None)
    })
    .await;
    eprintln!("SDK saw through the Anthropic backend: {translated:#}");
    assert_eq!(translated["direct_status"], 401);
    assert_eq!(translated["plain"]["content"], "mock heard: hello fleet");
    assert_eq!(translated["plain"]["model"], "mock-claude");
    assert_eq!(translated["stream"]["content"], "mock heard: hello fleet");
    assert!(
        claude
            .seen()
            .iter()
            .all(|r| r.vendor == Vendor::Anthropic || r.path == "/v1/chat/completions"),
        "only the direct check used the OpenAI path"
    );
    assert!(
        claude
            .seen()
            .iter()
            .filter(|r| r.vendor == Vendor::Anthropic)
            .all(|r| r.key_ok && r.headers.iter().any(|(k, _)| k == "x-api-key"))
    );

    // tenant-b points a backend at tenant-a's llama.cpp node: refused, with a reason.
    let b = fleet.tenant("tenant-b");
    b.cluster
        .apply(&format!(
            r#"
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: steal
  namespace: default
spec:
  ai:
    provider:
      openai: {{}}
      host: "{node_ip}"
      port: {node_port}
"#
        ))
        .await
        .unwrap();
    let refused = wait_condition(
        b,
        "AgentgatewayBackend",
        "default",
        "steal",
        "/status/conditions",
        "Accepted",
        "False",
    )
    .await;
    eprintln!("tenant-b's backend: {}", refused["status"]);
    let accepted = condition(&refused["status"]["conditions"], "Accepted").cloned();
    assert_eq!(
        accepted.as_ref().map(|c| c["reason"].clone()),
        Some(json!("EgressNotAllowed")),
        "{accepted:?}"
    );

    // The key was in tenant-a's Secret, the hub's store and the AI gateway's memory; never in a log.
    let mut secrets = Secrets::new();
    secrets.add("llm-secret key", LLAMA_KEY);
    secrets.add("claude-secret key", CLAUDE_KEY);
    fleet.assert_no_secrets_in_logs(secrets);
}
