//! A2A end to end (issue 12): a tenant applies agentgateway's `AgentgatewayBackend`
//! `spec.a2a{host, port}` and an HTTPRoute to it in its cluster; the agent, the hub, Envoy and
//! the hub-programmed AI gateway serve it; the official A2A SDK (PyPI `a2a-sdk`) is both the
//! agent (`e2e/a2a/echo_agent.py`, on the tenant's node) and the client
//! (`e2e/a2a/client_check.py`, at the Gateway's address).
//!
//! Proves: the card fetched through the gateway points at the gateway (the route's URL) and
//! never names the agent's address, also for a card that lies about it; a message gets a task,
//! a streamed message's SSE events arrive through Envoy and the gateway, the task is read back,
//! with the v1.0 SDK and v0.3 JSON-RPC alike; the agent's key reaches it from the tenant's
//! Secret and never a log; another tenant's `a2a` target at this tenant's node or at the hub is
//! refused with the reason on that tenant's object.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::a2a_agent::{A2aAgent, agents_python};
use fleetgate_e2e::ai_fleet::{AiFleet, tutorial_gateway, wait_backend_resolved, wait_condition};
use fleetgate_e2e::components::workspace_dir;
use fleetgate_e2e::fixtures::condition;
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::{TIMEOUT, eventually};
use serde_json::{Value, json};

const AGENT_KEY: &str = "agent-key-only-the-gateway-presents-0123";

/// Where a lying agent's card says it is: an address the client must never learn.
const LIE: &str = "http://10.9.9.9:7443/";

fn manifests(echo_port: u16, liar_port: u16, open_port: u16) -> String {
    let service = |name: &str, port: u16| {
        format!(
            r#"
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: agents
spec:
  type: NodePort
  selector:
    app: {name}
  ports:
  - name: a2a
    port: 9999
    targetPort: 9999
    nodePort: {port}
    appProtocol: agentgateway.dev/a2a
---"#
        )
    };
    let backend = |name: &str| {
        format!(
            r#"
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: {name}
  namespace: default
spec:
  a2a:
    host: {name}.agents.svc.cluster.local
    port: 9999
  policies:
    auth:
      secretRef:
        name: agent-secret
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
  name: agents
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
---{echo_svc}{liar_svc}{open_svc}
apiVersion: v1
kind: Secret
metadata:
  name: agent-secret
  namespace: default
type: Opaque
stringData:
  Authorization: "Bearer {AGENT_KEY}"
---{echo}{liar}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: agents
  namespace: default
spec:
  parentRefs:
  - name: agentgateway-proxy
    namespace: agentgateway-system
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /agents/echo}}
    backendRefs:
    - group: agentgateway.dev
      kind: AgentgatewayBackend
      name: echo
  - matches:
    - path: {{type: PathPrefix, value: /agents/liar}}
    backendRefs:
    - group: agentgateway.dev
      kind: AgentgatewayBackend
      name: liar
  - matches:
    - path: {{type: PathPrefix, value: /agents/open}}
    backendRefs:
    - name: open
      namespace: agents
      port: 9999
---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata:
  name: routes-to-agents
  namespace: agents
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: default
  to:
  - group: ""
    kind: Service
"#,
        echo_svc = service("echo", echo_port),
        liar_svc = service("liar", liar_port),
        open_svc = service("open", open_port),
        echo = backend("echo"),
        liar = backend("liar"),
    )
}

/// `text` without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `e2e/a2a/client_check.py` at `url` with `steps`; `hidden` must appear in no answer.
async fn client(url: &str, steps: &str, hidden: &[String]) -> anyhow::Result<Value> {
    let output = tokio::process::Command::new(agents_python()?)
        .arg(workspace_dir().join("e2e/a2a/client_check.py"))
        .env("GATEWAY_URL", url)
        .env("HIDDEN", hidden.join(","))
        .env("TENANT", "tenant-b")
        .env("ROUTE", "c1/default/liar")
        .env("STEPS", steps)
        .output()
        .await?;
    ensure!(
        output.status.success(),
        "A2A client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_a2a_sdk_reaches_a_tenants_agent_through_envoy_and_the_gateway() {
    let ai = AiFleet::start(
        &[
            ("tenant-a", "*.a.example", "127.0.1.0/24"),
            ("tenant-b", "*.b.example", "127.0.2.0/24"),
        ],
        1,
        1,
        Default::default(),
    )
    .await
    .unwrap();
    let fleet = &ai.fleet;
    let t = fleet.tenant("tenant-a");
    let node_ip: IpAddr = t.create_node("node-1", 10).await.unwrap();
    let echo_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let liar_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let open_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let echo = A2aAgent::start(
        &fleet.dir,
        "echo",
        SocketAddr::new(node_ip, echo_port),
        AGENT_KEY,
        None,
    )
    .await
    .unwrap();
    let liar = A2aAgent::start(
        &fleet.dir,
        "liar",
        SocketAddr::new(node_ip, liar_port),
        AGENT_KEY,
        Some(LIE),
    )
    .await
    .unwrap();
    // An agent without a key of its own, reached through a Service of appProtocol
    // agentgateway.dev/a2a instead of an AgentgatewayBackend.
    let open = A2aAgent::start(
        &fleet.dir,
        "open",
        SocketAddr::new(node_ip, open_port),
        "",
        None,
    )
    .await
    .unwrap();
    t.cluster
        .apply(&manifests(echo_port, liar_port, open_port))
        .await
        .unwrap();
    for name in ["echo", "liar"] {
        wait_backend_resolved(t, name).await;
    }
    let gw = tutorial_gateway(t).await;

    // What a client must never learn: where the agents run, and where the liar claims to.
    let hidden: Vec<String> = vec![
        node_ip.to_string(),
        echo_port.to_string(),
        liar_port.to_string(),
        open_port.to_string(),
        "svc.cluster.local".into(),
        "10.9.9.9".into(),
    ];
    let url = format!("http://{gw}/agents/echo");
    let seen = eventually(TIMEOUT, || async {
        client(&url, "card,v03,sdk_send,sdk_stream,sdk_get", &hidden).await
    })
    .await;
    eprintln!("through the gateway: {seen}");

    // The card (both well-known paths) points at the route's URL on the Gateway, and nothing in
    // it names the agent's node, port or Service.
    for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"] {
        let c = &seen["card"][path];
        assert_eq!(c["status"], 200, "{path}: {c}");
        let urls = c["urls"].as_array().cloned().unwrap_or_default();
        assert!(!urls.is_empty(), "{path}: {c}");
        assert!(urls.iter().all(|u| *u == json!(url)), "{path}: {c}");
        assert_eq!(c["leaks"], json!([]), "{path}");
        assert_eq!(c["skills"], json!(["echo"]), "{path}");
    }
    // The v1.0 SDK: a message gets a completed task with the agent's answer; a streamed message
    // arrives as the agent's events, in order; the task reads back by id.
    assert_eq!(
        seen["sdk_send"],
        json!({"events": 1, "task": true, "state": 3, "text": "echo: hello fleet"})
    );
    assert_eq!(
        seen["sdk_stream"],
        json!({
            "kinds": ["task", "status_update", "artifact_update", "artifact_update", "status_update"],
            "text": "echo: streamed hello"
        })
    );
    assert_eq!(
        seen["sdk_get"],
        json!({"same_task": true, "state": 3, "text": "echo: streamed hello"})
    );
    // v0.3 JSON-RPC by hand: message/send, message/stream as SSE, tasks/get.
    assert_eq!(
        seen["v03"]["send"],
        json!({"status": 200, "kind": "task", "state": "completed", "text": "echo: v03 hello"})
    );
    assert!(
        seen["v03"]["stream_content_type"]
            .as_str()
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        seen["v03"]
    );
    assert_eq!(
        seen["v03"]["stream_kinds"],
        json!([
            "task",
            "status-update",
            "artifact-update",
            "artifact-update",
            "status-update"
        ])
    );
    assert_eq!(
        seen["v03"]["get"],
        json!({"same_task": true, "state": "completed"})
    );

    // The lying agent's card: its claimed address reaches the client nowhere, its interfaces
    // are the gateway's, and calls still reach the agent where the hub resolved it.
    let liar_url = format!("http://{gw}/agents/liar");
    let lied = client(&liar_url, "card,sdk_send", &hidden).await.unwrap();
    let c = &lied["card"]["/.well-known/agent-card.json"];
    assert_eq!(c["leaks"], json!([]), "{c}");
    let urls = c["urls"].as_array().cloned().unwrap_or_default();
    assert!(
        !urls.is_empty() && urls.iter().all(|u| *u == json!(liar_url)),
        "{c}"
    );
    assert_eq!(lied["sdk_send"]["text"], "echo: hello fleet");

    // A backendRef to a Service whose port has appProtocol agentgateway.dev/a2a: the same card
    // rewriting and calls, streamed too.
    let open_url = format!("http://{gw}/agents/open");
    let via_service = eventually(TIMEOUT, || async {
        client(&open_url, "card,sdk_send,sdk_stream", &hidden).await
    })
    .await;
    let c = &via_service["card"]["/.well-known/agent-card.json"];
    assert_eq!(c["leaks"], json!([]), "{c}");
    let urls = c["urls"].as_array().cloned().unwrap_or_default();
    assert!(
        !urls.is_empty() && urls.iter().all(|u| *u == json!(open_url)),
        "{c}"
    );
    assert_eq!(via_service["sdk_send"]["text"], "echo: hello fleet");
    assert_eq!(via_service["sdk_stream"]["text"], "echo: streamed hello");

    // Method and task telemetry: each call is logged with its method and task id.
    let log = strip_ansi(&ai.gateways[0].log());
    let calls: Vec<&str> = log.lines().filter(|l| l.contains("A2A call")).collect();
    assert!(
        calls
            .iter()
            .any(|l| l.contains("method=message/send") && l.contains("state=\"completed\"")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|l| l.contains("method=GetTask") && l.contains("task=\"")),
        "{calls:?}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("A2A stream ended") && l.contains("method=message/stream")),
        "no stream logged"
    );
    // The agents refuse every call without their key (401), which the client never held: the
    // answers above came with the key the gateway read from the tenant's Secret.
    drop((echo, liar, open));

    // tenant-b points a2a backends at tenant-a's agent and at the hub: refused, with a reason
    // on tenant-b's object.
    let b = fleet.tenant("tenant-b");
    let hub = fleet.hub.xds_addr();
    b.cluster
        .apply(&format!(
            r#"
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: steal
  namespace: default
spec:
  a2a:
    host: "{node_ip}"
    port: {echo_port}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: hub
  namespace: default
spec:
  a2a:
    host: "{hub_ip}"
    port: {hub_port}
"#,
            hub_ip = hub.ip(),
            hub_port = hub.port(),
        ))
        .await
        .unwrap();
    for (name, names) in [
        ("steal", node_ip.to_string()),
        ("hub", hub.ip().to_string()),
    ] {
        let refused = wait_condition(
            b,
            "AgentgatewayBackend",
            "default",
            name,
            "/status/conditions",
            "Accepted",
            "False",
        )
        .await;
        let accepted = condition(&refused["status"]["conditions"], "Accepted")
            .cloned()
            .unwrap_or_default();
        eprintln!("tenant-b's {name}: {accepted}");
        assert!(
            matches!(
                accepted["reason"].as_str(),
                Some("EgressNotAllowed" | "EndpointNotAllowed")
            ),
            "{accepted}"
        );
        let message = accepted["message"].as_str().unwrap_or_default();
        assert!(message.contains(&names), "{message}");
    }

    let mut secrets = Secrets::new();
    secrets.add("the agent's key", AGENT_KEY);
    fleet.assert_no_secrets_in_logs(secrets);
}
