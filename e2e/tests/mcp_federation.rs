//! MCP federation from a tenant's manifests: a Gateway of class `agentgateway`, an HTTPRoute at
//! `/mcp` and an AgentgatewayBackend whose `spec.mcp.targets` are two MCP servers of the official
//! PyPI `mcp` SDK (one speaking streamable HTTP, one the older HTTP+SSE transport) behind
//! Services of the tenant's cluster, applied to a real kube-apiserver, sent by the agent,
//! admitted and compiled by the hub, served through Envoy and the AI gateway processes the hub
//! programs. The clients are the official SDKs: PyPI `mcp` (both transports) and npm
//! `@modelcontextprotocol/sdk`.
//!
//! Also the attacks of issue 12: a target at the hub refused by admission with a reason the
//! tenant reads; a forged session id, and one issued for another route, refused with a
//! JSON-RPC error (404); tool names crafted to collide after prefixing reach the target that
//! offers them, and without prefixes the first target keeps a name both offer.
//!
//! And issue 12's authorization (`spec.policies.mcp`): JWTs minted here with key pairs the test
//! generates; lists filtered and calls refused by the tenant's rules; no token, and tokens of
//! another tenant (its key, its audience, its issuer), expired, `alg: none`, HS256 signed with
//! the public key, or with a bad signature, answered 401 with a Bearer challenge; manifests
//! the gateway cannot honour refused on the backend's status, naming the field.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, ensure};
use fleetgate_e2e::ai_fleet::{AiFleet, tutorial_gateway, wait_backend_resolved, wait_condition};
use fleetgate_e2e::components::{agents_node_path, agents_python, workspace_dir};
use fleetgate_e2e::fixtures::condition;
use fleetgate_e2e::http::post_json;
use fleetgate_e2e::mcp_server::{McpServer, Transport};
use fleetgate_e2e::ports::free_port_in;
use fleetgate_e2e::{TIMEOUT, eventually};
use serde_json::{Value, json};

const TENANT: &str = "tenant-a";

/// The class, namespaces and Gateway every tenant's manifests of this file start with (the
/// KubeLB tutorial's `agentgateway-proxy`), for the head of a `format!` string.
const HEAD: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: agentgateway}
spec: {controllerName: agentgateway.dev/agentgateway}
---
apiVersion: v1
kind: Namespace
metadata: {name: agentgateway-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: tools}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: agentgateway-proxy, namespace: agentgateway-system}
spec:
  gatewayClassName: agentgateway
  listeners:
  - {name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
---
"#;

/// The tenant's manifests: the Gateway, Services `alpha` (streamable HTTP) and `beta` (SSE) on
/// the node's ports, backend `tools` (both, Conditional prefixes) at `/mcp`, backend `flat`
/// (both, prefixMode Never) at `/flat`, and backend `evil` whose target is `hub`.
fn manifests(alpha_port: u16, beta_port: u16, hub: SocketAddr) -> String {
    let service = |name: &str, port: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: tools}}\nspec:\n  type: NodePort\n  selector: {{app: {name}}}\n  ports:\n  - {{name: http, port: 8080, targetPort: 8080, nodePort: {port}}}\n---\n"
        )
    };
    let backend = |name: &str, extra: &str| {
        format!(
            r#"apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: {name}, namespace: default}}
spec:
  mcp:
    targets:
    - name: alpha
      static: {{host: alpha.tools.svc.cluster.local, port: 8080, path: /mcp, protocol: StreamableHTTP}}
    - name: beta
      static: {{host: beta.tools.svc.cluster.local, port: 8080, path: /sse, protocol: SSE}}
{extra}---
"#
        )
    };
    let route = |name: &str, path: &str| {
        format!(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: agentgateway-proxy, namespace: agentgateway-system}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: {name}}}]
---
"#
        )
    };
    let evil = format!(
        "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayBackend\nmetadata: {{name: evil, namespace: default}}\nspec:\n  mcp:\n    targets:\n    - name: hub\n      static: {{host: \"{}\", port: {}, path: /mcp}}\n---\n",
        hub.ip(),
        hub.port()
    );
    format!(
        r#"{HEAD}{alpha}{beta}{tools}{flat}{evil}{r1}{r2}"#,
        alpha = service("alpha", alpha_port),
        beta = service("beta", beta_port),
        tools = backend("tools", ""),
        flat = backend("flat", "    prefixMode: Never\n"),
        r1 = route("tools", "/mcp"),
        r2 = route("flat", "/flat"),
    )
}

/// Runs an MCP SDK script (`what` names it in a failure) and reads the JSON report it prints.
async fn report(mut cmd: tokio::process::Command, what: &str) -> anyhow::Result<Value> {
    let output = cmd.output().await?;
    ensure!(
        output.status.success(),
        "the {what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `e2e/mcp/<script>` run by the agents' Python with `args`.
fn python(script: &str, args: &[String]) -> anyhow::Result<tokio::process::Command> {
    let mut cmd = tokio::process::Command::new(agents_python()?);
    cmd.arg(workspace_dir().join("e2e/mcp").join(script))
        .args(args);
    Ok(cmd)
}

/// `e2e/mcp/client_check.py` with `args`; its report.
async fn python_client(args: &[String]) -> anyhow::Result<Value> {
    report(python("client_check.py", args)?, "Python MCP client").await
}

/// `e2e/mcp/client_check.cjs` (the TypeScript SDK) calling `call` with `args`; its report.
async fn ts_client(url: &str, call: &str, args: &Value) -> anyhow::Result<Value> {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(workspace_dir().join("e2e/mcp/client_check.cjs"))
        .env("NODE_PATH", agents_node_path()?)
        .env("URL", url)
        .env("CALL", call)
        .env("ARGS", args.to_string());
    report(cmd, "TypeScript MCP client").await
}

/// `e2e/mcp/live_check.py` with `args`; its report.
async fn live_client(args: &[String]) -> anyhow::Result<Value> {
    report(
        python("live_check.py", args)?,
        "Python MCP client of the live tools",
    )
    .await
}

/// What `live_check.py --steps <target>_` must have seen: progress 1..3 of 3 and one log line
/// per step, then the answer.
fn assert_steps_seen(report: &Value, target: &str) {
    let seen = &report["steps"][format!("{target}_")];
    assert_eq!(
        seen["progress"],
        json!([
            [1.0, 3.0, "step 1"],
            [2.0, 3.0, "step 2"],
            [3.0, 3.0, "step 3"]
        ]),
        "{target}: {seen}"
    );
    assert_eq!(
        seen["logs"],
        json!([
            format!("{target} step 1"),
            format!("{target} step 2"),
            format!("{target} step 3")
        ]),
        "{target}: {seen}"
    );
    assert_eq!(seen["text"], json!([format!("{target} did 3 steps")]));
}

/// What `live_check.py --grow <target>_ --new <new>` must have seen.
fn assert_grown(report: &Value, target: &str, new: &str) {
    let g = &report["grow"];
    assert_eq!(
        g["stream_up"], true,
        "the session's own stream carried the probe: {g}"
    );
    assert_eq!(g["grown"], json!([format!("{target} grew {new}")]));
    assert_eq!(g["tools_list_changed"], true, "{g}");
    assert_eq!(g["new_before"], false, "{g}");
    assert_eq!(g["new_after"], true, "the client lists the new tool: {g}");
    assert_eq!(g["call"], json!([format!("{new} grown on {target}")]));
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// A fleet of tenant `TENANT` with `replicas` AI gateways, its node .10 running MCP servers
/// `alpha` (streamable HTTP, with `alpha_extra` tools besides its own) and `beta` (SSE) on
/// NodePorts (both with the live tools when `live`), and the tenant's manifests exposing both
/// federated at `/tools`.
async fn federation(
    replicas: usize,
    alpha_extra: &[&str],
    live: bool,
) -> (AiFleet, McpServer, McpServer) {
    federation_beside(&[], replicas, alpha_extra, live).await
}

/// [`federation`] with `others` (name, hostname pattern, CIDR) as tenants of the same fleet,
/// each with a Gateway address of its own and nothing applied yet.
async fn federation_beside(
    others: &[(&str, &str, &str)],
    replicas: usize,
    alpha_extra: &[&str],
    live: bool,
) -> (AiFleet, McpServer, McpServer) {
    let mut tenants = vec![(TENANT, "*.a.example", "127.0.1.0/24")];
    tenants.extend_from_slice(others);
    let ai = AiFleet::start(&tenants, replicas, tenants.len(), Default::default())
        .await
        .unwrap();
    let fleet = &ai.fleet;
    let t = fleet.tenant(TENANT);
    let node_ip: IpAddr = t.create_node("node-1", 10).await.unwrap();
    let alpha_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let beta_port = free_port_in(node_ip, 30000..=32767).unwrap();
    let (alpha_addr, beta_addr) = (
        SocketAddr::new(node_ip, alpha_port),
        SocketAddr::new(node_ip, beta_port),
    );
    let (alpha, beta) = if live {
        (
            McpServer::start_live(&fleet.dir, "alpha", Transport::StreamableHttp, alpha_addr).await,
            McpServer::start_live(&fleet.dir, "beta", Transport::Sse, beta_addr).await,
        )
    } else {
        (
            McpServer::start(
                &fleet.dir,
                "alpha",
                Transport::StreamableHttp,
                alpha_addr,
                alpha_extra,
            )
            .await,
            McpServer::start(&fleet.dir, "beta", Transport::Sse, beta_addr, &[]).await,
        )
    };
    let (alpha, beta) = (alpha.unwrap(), beta.unwrap());
    t.cluster
        .apply(&manifests(alpha_port, beta_port, fleet.hub.xds_addr()))
        .await
        .unwrap();
    (ai, alpha, beta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sdk_clients_see_one_federated_server_through_envoy_and_two_replicas() {
    // alpha also offers a tool named like beta's after prefixing (`beta_add`): federated as
    // `alpha_beta_add`, it must reach alpha.
    let (ai, alpha, beta) = federation(2, &["beta_add"], false).await;
    let fleet = &ai.fleet;
    let t = fleet.tenant(TENANT);

    // The backend's status names each target and where it leads.
    let tools = wait_backend_resolved(t, "tools").await;
    let resolved = condition(&tools["status"]["conditions"], "ResolvedRefs")
        .cloned()
        .unwrap_or_default();
    assert!(
        resolved["message"].as_str().is_some_and(|m| m.starts_with(
            "2 MCP target(s) of spec.mcp: alpha (StreamableHTTP): host alpha.tools.svc.cluster.local resolved to 1 ready endpoint(s)"
        )),
        "{resolved}"
    );

    // Attack: a target at the hub is refused by admission, the tenant reads why.
    let evil = wait_condition(
        t,
        "AgentgatewayBackend",
        "default",
        "evil",
        "/status/conditions",
        "Accepted",
        "False",
    )
    .await;
    let refused = condition(&evil["status"]["conditions"], "Accepted")
        .cloned()
        .unwrap_or_default();
    let why = refused["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("spec.mcp.targets[0]") && why.contains(&fleet.hub.xds_addr().ip().to_string()),
        "{refused}"
    );

    let gw = tutorial_gateway(t).await;
    let url = format!("http://{gw}/mcp");

    // The Python SDK over streamable HTTP: the merged catalog, a tool on each target (and the
    // crafted `alpha_beta_add`), a resource of beta (SSE), a prompt of alpha.
    let args: Vec<String> = [
        "--url",
        &url,
        "--call",
        "alpha_add={\"a\":2,\"b\":3}",
        "--call",
        "beta_add={\"a\":40,\"b\":2}",
        "--call",
        "beta_whoami",
        "--call",
        "alpha_beta_add",
        "--read",
        "beta+memo://beta/readme",
        "--read",
        "alpha+memo://alpha/notes/fleet",
        "--prompt",
        "alpha_greeting",
        "--prompt",
        "beta_greeting",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let report = eventually(TIMEOUT, || python_client(&args)).await;
    eprintln!("python, streamable HTTP: {report}");
    assert_eq!(report["server"], "fleetgate");
    assert_eq!(report["protocol_version"], "2025-11-25");
    assert_eq!(
        report["tools"],
        json!(strings(&[
            "alpha_add",
            "alpha_alpha_only",
            "alpha_beta_add",
            "alpha_whoami",
            "beta_add",
            "beta_beta_only",
            "beta_whoami"
        ]))
    );
    assert_eq!(
        report["resources"],
        json!(["alpha+memo://alpha/readme", "beta+memo://beta/readme"])
    );
    assert_eq!(
        report["templates"],
        json!([
            "alpha+memo://alpha/notes/{topic}",
            "beta+memo://beta/notes/{topic}"
        ])
    );
    assert_eq!(
        report["prompts"],
        json!(["alpha_greeting", "beta_greeting"])
    );
    assert_eq!(report["calls"]["alpha_add"]["text"], json!(["5"]));
    assert_eq!(report["calls"]["beta_add"]["text"], json!(["42"]));
    assert_eq!(report["calls"]["beta_whoami"]["text"], json!(["I am beta"]));
    assert_eq!(
        report["calls"]["alpha_beta_add"]["text"],
        json!(["beta_add on alpha"]),
        "a name crafted to look like beta's reaches alpha, which offers it"
    );
    assert_eq!(
        report["reads"]["beta+memo://beta/readme"],
        json!({"text": ["readme of beta"], "uris": ["beta+memo://beta/readme"]})
    );
    assert_eq!(
        report["reads"]["alpha+memo://alpha/notes/fleet"]["text"],
        json!(["note fleet of alpha"])
    );
    assert_eq!(
        report["got_prompts"]["alpha_greeting"],
        json!(["Hello tester, from alpha."])
    );
    assert_eq!(
        report["got_prompts"]["beta_greeting"],
        json!(["Hello tester, from beta."])
    );

    // One session, served by both replicas: Envoy spreads the session's requests over them;
    // each opens the session id the other issued (the hub's key) and, for beta, its own SSE
    // connection to the target.
    let replicas_serving = ai
        .gateways
        .iter()
        .filter(|g| g.log().contains("MCP SSE target connected for a session"))
        .count();
    assert_eq!(
        replicas_serving, 2,
        "both replicas served the session's requests to beta"
    );

    // The TypeScript SDK over streamable HTTP.
    let ts = ts_client(&url, "beta_add", &json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    eprintln!("typescript: {ts}");
    assert_eq!(ts["server"], "fleetgate");
    assert_eq!(ts["sessionId"], true);
    assert_eq!(ts["call"]["text"], json!(["3"]));
    assert_eq!(ts["tools"].as_array().map(Vec::len), Some(7));

    // Without prefixes (prefixMode Never) both targets offer `add`: the first target keeps it,
    // beta's own names still reach beta.
    let flat: Vec<String> = [
        "--url",
        &format!("http://{gw}/flat"),
        "--call",
        "whoami",
        "--call",
        "beta_only",
        "--call",
        "add={\"a\":1,\"b\":1}",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let report = eventually(TIMEOUT, || python_client(&flat)).await;
    eprintln!("python, prefixMode Never: {report}");
    assert_eq!(
        report["tools"],
        json!(strings(&[
            "add",
            "alpha_only",
            "beta_add",
            "beta_only",
            "whoami"
        ]))
    );
    assert_eq!(report["calls"]["whoami"]["text"], json!(["I am alpha"]));
    assert_eq!(
        report["calls"]["beta_only"]["text"],
        json!(["only on beta"])
    );

    // Attacks on sessions: a forged id, and a real one of another route, get 404 with a
    // JSON-RPC error, through Envoy.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let accept = ("accept", "application/json, text/event-stream");
    let flat_init = post_json(gw, "x", "/flat", &[accept], &init).await.unwrap();
    assert_eq!(flat_init.status, 200, "{}", flat_init.body);
    let flat_session = flat_init
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let forged = format!("fgmcp1.{}", "ab".repeat(60));
    for (what, session) in [
        ("forged", forged.as_str()),
        ("another route's", &flat_session),
    ] {
        let r = post_json(
            gw,
            "x",
            "/mcp",
            &[accept, ("mcp-session-id", session)],
            &list,
        )
        .await
        .unwrap();
        assert_eq!(r.status, 404, "{what}: {}", r.body);
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"]["code"], -32001, "{what}: {body}");
    }
    let own = post_json(
        gw,
        "x",
        "/flat",
        &[accept, ("mcp-session-id", &flat_session)],
        &list,
    )
    .await
    .unwrap();
    assert_eq!(own.status, 200, "its own route takes it: {}", own.body);
    drop((alpha, beta));
}

/// The older HTTP+SSE transport for clients: the Python SDK's `sse_client` against
/// `<route>/sse`. Its session lives on the replica holding the stream, so one replica here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_over_http_sse_sees_the_same_federation() {
    let (ai, _alpha, _beta) = federation(1, &[], false).await;
    let fleet = &ai.fleet;
    let t = fleet.tenant(TENANT);
    wait_backend_resolved(t, "tools").await;
    let gw = tutorial_gateway(t).await;
    let args: Vec<String> = [
        "--sse-url",
        &format!("http://{gw}/mcp/sse"),
        "--call",
        "alpha_whoami",
        "--call",
        "beta_add={\"a\":20,\"b\":22}",
        "--read",
        "alpha+memo://alpha/readme",
        "--prompt",
        "beta_greeting",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let report = eventually(TIMEOUT, || python_client(&args)).await;
    eprintln!("python, HTTP+SSE: {report}");
    assert_eq!(report["server"], "fleetgate");
    assert_eq!(report["tools"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        report["calls"]["alpha_whoami"]["text"],
        json!(["I am alpha"])
    );
    assert_eq!(report["calls"]["beta_add"]["text"], json!(["42"]));
    assert_eq!(
        report["reads"]["alpha+memo://alpha/readme"]["text"],
        json!(["readme of alpha"])
    );
    assert_eq!(
        report["got_prompts"]["beta_greeting"],
        json!(["Hello tester, from beta."])
    );
}

/// `failureMode` on the gateway alone (configured from its file form, no fleet): a target
/// nobody listens on fails `initialize` with a JSON-RPC error naming it (`FailClosed`), or is
/// left out while the other target serves (`FailOpen`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_fails_the_request_or_is_left_out_as_the_failure_mode_says() {
    use fleetgate_ai_gateway::config::RawConfig;
    use fleetgate_ai_gateway::source::StaticSource;
    use fleetgate_ai_gateway::{Settings, start};
    use fleetgate_e2e::process::TestDir;

    let dir = TestDir::new("mcp_failure_mode").unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let alpha_addr = SocketAddr::new(ip, free_port_in(ip, 20000..=29999).unwrap());
    let _alpha = McpServer::start(&dir, "alpha", Transport::StreamableHttp, alpha_addr, &[])
        .await
        .unwrap();
    let dead = fleetgate_e2e::ports::free_addr().unwrap();
    let route = |name: &str, mode: &str| {
        format!(
            "      {name}:\n        mcp:\n          failureMode: {mode}\n          targets:\n            - {{ name: alpha, host: 127.0.0.1, port: {} }}\n            - {{ name: gone, host: 127.0.0.1, port: {}, protocol: SSE }}\n",
            alpha_addr.port(),
            dead.port()
        )
    };
    let yaml = format!(
        "tenants:\n  {TENANT}:\n    routes:\n{}{}",
        route("closed", "FailClosed"),
        route("open", "FailOpen")
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let headers = |route: &'static str| {
        [
            ("x-fleetgate-tenant", TENANT),
            ("x-fleetgate-route", route),
            ("accept", "application/json, text/event-stream"),
        ]
    };
    let closed = post_json(gw.addr, "x", "/mcp", &headers("closed"), &init)
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&closed.body).unwrap();
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("MCP target gone failed")),
        "{body}"
    );
    assert!(closed.header("mcp-session-id").is_none());

    let open = post_json(gw.addr, "x", "/mcp", &headers("open"), &init)
        .await
        .unwrap();
    assert_eq!(open.status, 200, "{}", open.body);
    let session = open
        .header("mcp-session-id")
        .expect("a session")
        .to_string();
    let mut h = headers("open").to_vec();
    h.push(("mcp-session-id", &session));
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let tools = post_json(gw.addr, "x", "/mcp", &h, &list).await.unwrap();
    let body: Value = serde_json::from_str(&tools.body).unwrap();
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["alpha_add", "alpha_whoami", "alpha_alpha_only"],
        "{body}"
    );
    gw.shutdown().await;
}

/// Notifications and cancellation through Envoy and two replicas (one session, requests spread
/// over both): the progress and log messages of a call on alpha (streamable HTTP) and on beta
/// (SSE) reach the PyPI client's progress and logging callbacks; a call to alpha the client
/// cancels is cancelled on alpha (it records the call's tag), whichever replica the
/// cancellation reaches; the session's own stream (GET) carries alpha's
/// `notifications/tools/list_changed` after a call made alpha grow a tool, and the client then
/// lists and calls the new tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_cancellation_and_the_sessions_stream_reach_through_two_replicas() {
    let (ai, alpha, _beta) = federation(2, &[], true).await;
    let t = ai.fleet.tenant(TENANT);
    wait_backend_resolved(t, "tools").await;
    let gw = tutorial_gateway(t).await;
    let url = format!("http://{gw}/mcp");
    // Served by both replicas before the session that matters begins.
    let probe = strings(&["--url", &url]);
    eventually(TIMEOUT, || python_client(&probe)).await;
    let report = live_client(&strings(&[
        "--url", &url, "--steps", "alpha_", "--steps", "beta_", "--cancel", "alpha_", "--ask",
        "alpha_", "--grow", "alpha_", "--new", "fresh",
    ]))
    .await
    .unwrap();
    eprintln!("live tools through two replicas: {report}");
    assert_steps_seen(&report, "alpha");
    assert_steps_seen(&report, "beta");
    assert_eq!(
        report["cancel"]["alpha_"]["target_saw_cancel"], true,
        "{report}"
    );
    let tag = report["cancel"]["alpha_"]["tag"]
        .as_str()
        .unwrap_or_default();
    assert!(alpha.log().contains(&format!("CANCELLED {tag}")));
    // alpha asks the client to sample during the call; the client's answer, POSTed to either
    // replica, reaches alpha by the id the gateway gave the request.
    assert_eq!(
        report["ask"]["alpha_"],
        json!({"sampled": true, "text": ["alpha heard: model says: what is alpha_?"]}),
        "{report}"
    );
    assert_grown(&report, "alpha", "fresh");
}

/// The same for an SSE target on the gateway alone (one replica, configured from its file
/// form, no fleet): beta's progress and logs, the cancellation of a call to beta, and beta's
/// `tools/list_changed` on the session's own stream. An SSE target's session lives on the
/// replica holding its connection: with several replicas, a cancellation or a notification of
/// it reaches the client only through that replica (docs/ai-gateway.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_targets_notifications_and_cancellation_reach_the_client() {
    use fleetgate_ai_gateway::config::RawConfig;
    use fleetgate_ai_gateway::source::StaticSource;
    use fleetgate_ai_gateway::{Settings, start};
    use fleetgate_e2e::process::TestDir;

    let dir = TestDir::new("mcp_sse_live").unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let alpha_addr = SocketAddr::new(ip, free_port_in(ip, 20000..=29999).unwrap());
    let beta_addr = SocketAddr::new(ip, free_port_in(ip, 20000..=29999).unwrap());
    let _alpha = McpServer::start_live(&dir, "alpha", Transport::StreamableHttp, alpha_addr)
        .await
        .unwrap();
    let beta = McpServer::start_live(&dir, "beta", Transport::Sse, beta_addr)
        .await
        .unwrap();
    let yaml = format!(
        "tenants:\n  {TENANT}:\n    routes:\n      live:\n        mcp:\n          targets:\n            - {{ name: alpha, host: 127.0.0.1, port: {} }}\n            - {{ name: beta, host: 127.0.0.1, port: {}, path: /sse, protocol: SSE }}\n",
        alpha_addr.port(),
        beta_addr.port()
    );
    let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
    let gw = start(
        Settings::new("127.0.0.1:0".parse().unwrap()),
        config,
        Box::new(StaticSource),
    )
    .await
    .unwrap();
    let report = live_client(&strings(&[
        "--url",
        &format!("http://{}/mcp", gw.addr),
        "--header",
        &format!("x-fleetgate-tenant={TENANT}"),
        "--header",
        "x-fleetgate-route=live",
        "--steps",
        "beta_",
        "--cancel",
        "beta_",
        "--ask",
        "beta_",
        "--grow",
        "beta_",
        "--new",
        "sprout",
    ]))
    .await
    .unwrap();
    eprintln!("live tools of an SSE target: {report}");
    assert_steps_seen(&report, "beta");
    assert_eq!(
        report["cancel"]["beta_"]["target_saw_cancel"], true,
        "{report}"
    );
    let tag = report["cancel"]["beta_"]["tag"]
        .as_str()
        .unwrap_or_default();
    assert!(beta.log().contains(&format!("CANCELLED {tag}")));
    // Requests of an SSE target to the client are not forwarded: the client is never asked.
    let ask = &report["ask"]["beta_"];
    assert_eq!(ask["sampled"], false, "{ask}");
    assert!(
        ask["text"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("refused:")),
        "{ask}"
    );
    assert_grown(&report, "beta", "sprout");
    gw.shutdown().await;
}

/// An identity provider of the test: an ES256 key pair it generates, its key set, and the
/// tokens it signs.
struct Idp {
    pair: ring::signature::EcdsaKeyPair,
    kid: &'static str,
    issuer: &'static str,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Idp {
    fn new(kid: &'static str, issuer: &'static str) -> Self {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self { pair, kid, issuer }
    }

    /// The public key set, as a tenant writes it inline.
    fn jwks(&self) -> String {
        use ring::signature::KeyPair;
        let p = self.pair.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "kid": self.kid, "x": b64(&p[1..33]), "y": b64(&p[33..65])}]})
            .to_string()
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn claims(&self, aud: &str, sub: &str) -> Value {
        json!({"iss": self.issuer, "aud": aud, "sub": sub, "iat": unix_now(), "exp": unix_now() + 600})
    }

    fn token(&self, aud: &str, sub: &str) -> String {
        self.sign(
            &json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}),
            &self.claims(aud, sub),
        )
    }
}

/// An MCP backend `name` of the tenant with `targets` (YAML lines) and `policies` (YAML under
/// `spec.policies`), exposed at `path` by an HTTPRoute when `path` is set.
fn guarded_backend(name: &str, targets: &str, policies: &str, path: Option<&str>) -> String {
    let mut out = format!(
        "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayBackend\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  mcp:\n    targets:\n{targets}  policies:\n{policies}---\n"
    );
    if let Some(path) = path {
        out.push_str(&format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: agentgateway-proxy, namespace: agentgateway-system}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: {name}}}]\n---\n"
        ));
    }
    out
}

/// `spec.policies.mcp.authentication` trusting `idp`'s key set for `audience`.
fn authentication(idp: &Idp, audience: &str) -> String {
    format!(
        "    mcp:\n      authentication:\n        issuer: {}\n        audiences: [{audience}]\n        jwks:\n          inline: '{}'\n",
        idp.issuer,
        idp.jwks()
    )
}

const TENANT_B: &str = "tenant-b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_authenticated_callers_see_and_call_only_what_their_tenants_rules_allow() {
    let (ai, _alpha, _beta) =
        federation_beside(&[(TENANT_B, "*.b.example", "127.0.2.0/24")], 1, &[], false).await;
    let fleet = &ai.fleet;
    let (a, b) = (fleet.tenant(TENANT), fleet.tenant(TENANT_B));
    let idp_a = Idp::new("a-1", "https://idp.a.example");
    let idp_b = Idp::new("b-1", "https://idp.b.example");

    // Tenant A: backend `guarded` at /guarded. alice may use alpha's tools, everyone the
    // `whoami` tools, alpha's prompts and beta's resources; nothing else is listed or served.
    let targets = "    - name: alpha\n      static: {host: alpha.tools.svc.cluster.local, port: 8080, path: /mcp, protocol: StreamableHTTP}\n    - name: beta\n      static: {host: beta.tools.svc.cluster.local, port: 8080, path: /sse, protocol: SSE}\n";
    let rules = r#"      authorization:
        action: Allow
        policy:
          matchExpressions:
          - 'mcp.tool.name == "whoami"'
          - 'mcp.tool.target == "alpha" && jwt.sub == "alice"'
          - 'mcp.prompt.target == "alpha"'
          - 'has(mcp.resource) && mcp.resource.target == "beta"'
"#;
    let a_manifests = format!(
        "{}{}{}",
        guarded_backend(
            "guarded",
            targets,
            &format!("{}{rules}", authentication(&idp_a, "tools-a")),
            Some("/guarded"),
        ),
        // Bad manifests: an expression outside the CEL subset, and a remote key set.
        guarded_backend(
            "badrule",
            targets,
            "    mcp:\n      authorization:\n        policy:\n          matchExpressions: ['request.path == \"/admin\"']\n",
            None,
        ),
        guarded_backend(
            "remotekeys",
            targets,
            "    mcp:\n      authentication:\n        issuer: https://idp.a.example\n        jwks: {url: 'http://169.254.169.254/keys'}\n",
            None,
        ),
    );
    a.cluster.apply(&a_manifests).await.unwrap();

    // Tenant B: its own MCP server and backend at /mcp, trusting only its own key set.
    let b_ip: IpAddr = b.create_node("node-1", 10).await.unwrap();
    let gamma_port = free_port_in(b_ip, 30000..=32767).unwrap();
    let _gamma = McpServer::start(
        &fleet.dir,
        "gamma",
        Transport::StreamableHttp,
        SocketAddr::new(b_ip, gamma_port),
        &[],
    )
    .await
    .unwrap();
    let b_manifests = format!(
        r#"{HEAD}apiVersion: v1
kind: Service
metadata: {{name: gamma, namespace: tools}}
spec:
  type: NodePort
  selector: {{app: gamma}}
  ports:
  - {{name: http, port: 8080, targetPort: 8080, nodePort: {gamma_port}}}
---
{}"#,
        guarded_backend(
            "tools",
            "    - name: gamma\n      static: {host: gamma.tools.svc.cluster.local, port: 8080, path: /mcp, protocol: StreamableHTTP}\n",
            &authentication(&idp_b, "tools-b"),
            Some("/mcp"),
        )
    );
    b.cluster.apply(&b_manifests).await.unwrap();

    // Manifests fleetgate cannot honour are refused on the backend's status, naming the field.
    for (name, want) in [
        (
            "badrule",
            "spec.policies.mcp.authorization.policy.matchExpressions[0] is not an expression fleetgate evaluates: unknown variable request",
        ),
        (
            "remotekeys",
            "spec.policies.mcp.authentication.jwks.url is not supported",
        ),
    ] {
        let o = wait_condition(
            a,
            "AgentgatewayBackend",
            "default",
            name,
            "/status/conditions",
            "Accepted",
            "False",
        )
        .await;
        let c = condition(&o["status"]["conditions"], "Accepted")
            .cloned()
            .unwrap_or_default();
        assert!(
            c["message"].as_str().is_some_and(|m| m.contains(want)),
            "{name}: {c}"
        );
    }
    for (t, name) in [(a, "guarded"), (b, "tools")] {
        wait_backend_resolved(t, name).await;
    }
    let gw_a = tutorial_gateway(a).await;
    let gw_b = tutorial_gateway(b).await;

    // The Python SDK with alice's token: the lists hold what the rules allow, a call to beta's
    // `add` is refused with a JSON-RPC error.
    let as_user = |sub: &str, calls: &[&str]| -> Vec<String> {
        let mut args = vec![
            "--url".to_string(),
            format!("http://{gw_a}/guarded"),
            "--header".to_string(),
            format!("Authorization=Bearer {}", idp_a.token("tools-a", sub)),
        ];
        for c in calls {
            args.push("--call".into());
            args.push((*c).to_string());
        }
        args
    };
    let alice = as_user(
        "alice",
        &[
            "alpha_add={\"a\":2,\"b\":3}",
            "beta_add={\"a\":1,\"b\":1}",
            "beta_whoami",
        ],
    );
    let report = eventually(TIMEOUT, || python_client(&alice)).await;
    eprintln!("python, alice: {report}");
    assert_eq!(
        report["tools"],
        json!(strings(&[
            "alpha_add",
            "alpha_alpha_only",
            "alpha_whoami",
            "beta_whoami"
        ]))
    );
    assert_eq!(report["prompts"], json!(["alpha_greeting"]));
    assert_eq!(report["resources"], json!(["beta+memo://beta/readme"]));
    assert_eq!(
        report["templates"],
        json!(["beta+memo://beta/notes/{topic}"])
    );
    assert_eq!(report["calls"]["alpha_add"]["text"], json!(["5"]));
    assert_eq!(report["calls"]["beta_whoami"]["text"], json!(["I am beta"]));
    let refused = &report["calls"]["beta_add"]["rpc_error"];
    assert_eq!(refused["code"], -32602, "{report}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("not permitted")),
        "{refused}"
    );

    // bob: only the `whoami` tools; alpha's `add` is refused to him.
    let bob = as_user("bob", &["alpha_add={\"a\":2,\"b\":3}", "alpha_whoami"]);
    let report = eventually(TIMEOUT, || python_client(&bob)).await;
    eprintln!("python, bob: {report}");
    assert_eq!(
        report["tools"],
        json!(strings(&["alpha_whoami", "beta_whoami"]))
    );
    assert_eq!(report["calls"]["alpha_add"]["rpc_error"]["code"], -32602);
    assert_eq!(
        report["calls"]["alpha_whoami"]["text"],
        json!(["I am alpha"])
    );

    // Attacks on authentication, through Envoy: each answered 401 with a Bearer challenge and a
    // JSON body; tenant A's own token passes.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let accept = ("accept", "application/json, text/event-stream");
    let header = |alg: &str| json!({"alg": alg, "kid": "a-1"});
    let public_as_secret = {
        let input = format!(
            "{}.{}",
            b64(header("HS256").to_string().as_bytes()),
            b64(idp_a.claims("tools-a", "alice").to_string().as_bytes())
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, idp_a.jwks().as_bytes());
        format!(
            "{input}.{}",
            b64(ring::hmac::sign(&key, input.as_bytes()).as_ref())
        )
    };
    let good = idp_a.token("tools-a", "alice");
    let bad_signature = {
        let (rest, sig) = good.rsplit_once('.').unwrap();
        let mut s: Vec<u8> = sig.bytes().collect();
        s[5] = if s[5] == b'A' { b'B' } else { b'A' };
        format!("{rest}.{}", String::from_utf8(s).unwrap())
    };
    let mut expired = idp_a.claims("tools-a", "alice");
    expired["exp"] = json!(unix_now() - 3600);
    let mut other_issuer = idp_a.claims("tools-a", "alice");
    other_issuer["iss"] = json!("https://idp.b.example");
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no token", None, 401),
        (
            "tenant B's token",
            Some(idp_b.token("tools-b", "alice")),
            401,
        ),
        (
            "tenant B's key, tenant A's claims",
            Some(idp_b.sign(&header("ES256"), &idp_a.claims("tools-a", "alice"))),
            401,
        ),
        (
            "A's key, issued for tenant B's audience",
            Some(idp_a.token("tools-b", "alice")),
            401,
        ),
        (
            "A's key, another issuer",
            Some(idp_a.sign(&header("ES256"), &other_issuer)),
            401,
        ),
        ("expired", Some(idp_a.sign(&header("ES256"), &expired)), 401),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                b64(header("none").to_string().as_bytes()),
                b64(idp_a.claims("tools-a", "alice").to_string().as_bytes())
            )),
            401,
        ),
        (
            "HS256 with the public key as secret",
            Some(public_as_secret),
            401,
        ),
        ("bad signature", Some(bad_signature), 401),
        ("tenant A's own token", Some(good.clone()), 200),
    ];
    for (what, token, want) in cases {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![accept];
        if let Some(a) = &auth {
            h.push(("authorization", a.as_str()));
        }
        let r = post_json(gw_a, "x", "/guarded", &h, &init).await.unwrap();
        assert_eq!(r.status, want, "{what}: {}", r.body);
        if want == 401 {
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with("Bearer realm="),
                "{what}: {challenge}"
            );
            assert_eq!(
                challenge.contains("error=\"invalid_token\""),
                auth.is_some(),
                "{what}: {challenge}"
            );
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert!(body["error_description"].is_string(), "{what}: {body}");
        }
    }

    // One tenant's keys never open another's route: B's token serves on B's route, A's does not.
    let on_b = |token: &str| {
        let auth = format!("Bearer {token}");
        let init = init.clone();
        async move {
            post_json(
                gw_b,
                "x",
                "/mcp",
                &[accept, ("authorization", auth.as_str())],
                &init,
            )
            .await
        }
    };
    let b_own = eventually(TIMEOUT, || {
        let f = on_b(&idp_b.token("tools-b", "carol"));
        async move {
            let r = f.await?;
            ensure!(r.status == 200, "{} {}", r.status, r.body);
            Ok(r)
        }
    })
    .await;
    assert_eq!(b_own.status, 200);
    let a_on_b = on_b(&good).await.unwrap();
    assert_eq!(a_on_b.status, 401, "{}", a_on_b.body);
}

/// The session id's key id (`fgmcp2.<hex id>.<sealed>`).
fn key_id(session: &str) -> &str {
    session.split('.').nth(1).unwrap_or_default()
}

/// Lines a gateway logged on applying a configuration from the hub.
fn publications(gw: &fleetgate_e2e::ai_gateway::AiGateway) -> usize {
    gw.log()
        .matches("AI gateway configuration published")
        .count()
}

/// One client session across a hub restart and a key rotation (issue 12: keys the hub
/// distributes and rotates): the secret ring is stored (sealed) by the hub, so the restarted
/// hub sends the gateways the same keys and the session goes on; after a rotation new sessions
/// are sealed under a new key id while the old session still opens (the previous key is kept
/// for the grace period), on both replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_survives_a_hub_restart_and_a_key_rotation() {
    let (mut ai, alpha, beta) = federation(2, &[], false).await;
    let t = ai.fleet.tenant(TENANT);
    let gw = tutorial_gateway(t).await;
    let accept = ("accept", "application/json, text/event-stream");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let new_session = || async {
        let r = post_json(gw, "x", "/mcp", &[accept], &init).await?;
        ensure!(r.status == 200, "initialize: {} {}", r.status, r.body);
        r.header("mcp-session-id")
            .map(str::to_string)
            .context("a session id")
    };
    let call = |session: String| async move {
        let add = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "alpha_add", "arguments": {"a": 2, "b": 3}}});
        let r = post_json(
            gw,
            "x",
            "/mcp",
            &[accept, ("mcp-session-id", &session)],
            &add,
        )
        .await?;
        ensure!(r.status == 200, "tools/call: {} {}", r.status, r.body);
        // JSON, or an event stream (a routed call streams the target's notifications) whose
        // last message is the answer.
        let body: Value = serde_json::from_str(&r.body).or_else(|_| {
            r.body
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|m| m.get("id").is_some())
                .context("an answer on the event stream")
        })?;
        ensure!(
            body["result"]["content"][0]["text"] == "5",
            "tools/call: {body}"
        );
        Ok(body)
    };
    let session = eventually(TIMEOUT, new_session).await;
    call(session.clone()).await.unwrap();

    // Hub restart: once both replicas applied the restarted hub's full state, the session still
    // opens (on both: Envoy alternates them) and new sessions use the same key.
    let before: Vec<usize> = ai.gateways.iter().map(publications).collect();
    ai.fleet.hub.kill();
    ai.fleet.hub.start_again().await.unwrap();
    eventually(TIMEOUT, || async {
        let now: Vec<usize> = ai.gateways.iter().map(publications).collect();
        ensure!(
            now.iter().zip(&before).all(|(n, b)| n > b),
            "replicas not yet configured by the restarted hub: {before:?} -> {now:?}"
        );
        Ok(())
    })
    .await;
    for _ in 0..4 {
        call(session.clone())
            .await
            .expect("the session survives a hub restart");
    }
    let fresh = new_session().await.unwrap();
    assert_eq!(
        key_id(&fresh),
        key_id(&session),
        "the same key after the restart"
    );

    // Rotation every 20s with a grace of 20s: once new sessions carry another key id, the old
    // session still opens (its key is the previous one of the ring).
    ai.fleet.hub.kill();
    ai.fleet
        .hub
        .set_config_key(
            "mcpSessionKeys",
            json!({"rotateEvery": "20s", "grace": "20s"}),
        )
        .unwrap();
    ai.fleet.hub.start_again().await.unwrap();
    let rotated = eventually(std::time::Duration::from_secs(60), || async {
        let s = new_session().await?;
        ensure!(key_id(&s) != key_id(&session), "not rotated yet: {s:.12}");
        Ok(s)
    })
    .await;
    for _ in 0..4 {
        call(session.clone())
            .await
            .expect("a session under the previous key opens during the grace");
    }
    call(rotated).await.unwrap();

    // A session id under a key id the ring does not hold is refused like a forged one.
    let unknown = format!("fgmcp2.ffff.{}", "ab".repeat(60));
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let r = post_json(
        gw,
        "x",
        "/mcp",
        &[accept, ("mcp-session-id", &unknown)],
        &list,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
    drop((alpha, beta));
}

/// Names of the tools a fresh session on `path` lists.
async fn listed_tools(gw: SocketAddr, path: &str) -> anyhow::Result<Vec<String>> {
    let accept = ("accept", "application/json, text/event-stream");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let r = post_json(gw, "x", path, &[accept], &init).await?;
    ensure!(r.status == 200, "initialize: {} {}", r.status, r.body);
    let session = r
        .header("mcp-session-id")
        .context("a session id")?
        .to_string();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = post_json(
        gw,
        "x",
        path,
        &[accept, ("mcp-session-id", &session)],
        &list,
    )
    .await?;
    ensure!(r.status == 200, "tools/list: {} {}", r.status, r.body);
    let body: Value = serde_json::from_str(&r.body)?;
    let mut names: Vec<String> = body["result"]["tools"]
        .as_array()
        .context("a tool list")?
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// `mcp.targets[].selector` (issue 12): the agent resolves the label selector over the tenant
/// cluster's Services (namespaces by label, Services by label, each port whose appProtocol is
/// agentgateway's MCP one a target named `<service>-<port name>`); the target is served, and
/// labelling another Service adds its tools without touching the backend. `static.backendRef`
/// names a Service of the backend's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_target_is_served_and_a_newly_labelled_service_adds_its_tools() {
    let (ai, alpha, beta) = federation(1, &[], false).await;
    let t = ai.fleet.tenant(TENANT);
    let service = |name: &str, port: u16, app: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: tools, labels: {{mcp: \"yes\"}}}}\nspec:\n  type: NodePort\n  selector: {{app: {name}}}\n  ports:\n  - {{name: http, port: 8080, targetPort: 8080, nodePort: {port}, appProtocol: {app}}}\n---\n"
        )
    };
    let node_port = |s: &McpServer| s.addr.port();
    // alpha's Service gets the label and the MCP appProtocol; a backend selecting Services so
    // labelled in namespaces labelled team=tools, at /picked; a backend whose target is
    // `backendRef: {name: alpha}` in namespace tools, at /by-ref.
    t.cluster
        .apply(&format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: tools, labels: {{team: tools}}}}
---
{alpha}apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: picked, namespace: default}}
spec:
  mcp:
    targets:
    - name: picked
      selector:
        namespaces: {{matchLabels: {{team: tools}}}}
        services: {{matchLabels: {{mcp: "yes"}}}}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: by-ref, namespace: tools}}
spec:
  mcp:
    targets:
    - name: alpha
      static: {{backendRef: {{name: alpha}}, port: 8080, path: /mcp, protocol: StreamableHTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: picked, namespace: default}}
spec:
  parentRefs: [{{name: agentgateway-proxy, namespace: agentgateway-system}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /picked}}}}]
    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: picked}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: by-ref, namespace: tools}}
spec:
  parentRefs: [{{name: agentgateway-proxy, namespace: agentgateway-system}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /by-ref}}}}]
    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: by-ref}}]
---
"#,
            alpha = service("alpha", node_port(&alpha), "agentgateway.dev/mcp"),
        ))
        .await
        .unwrap();
    let gw = tutorial_gateway(t).await;

    // One target (alpha's port `http`): no prefixes (Conditional).
    let alone = eventually(TIMEOUT, || async {
        let names = listed_tools(gw, "/picked").await?;
        ensure!(names.iter().any(|n| n == "alpha_only"), "{names:?}");
        Ok(names)
    })
    .await;
    assert_eq!(alone, ["add", "alpha_only", "whoami"]);
    let by_ref = eventually(TIMEOUT, || listed_tools(gw, "/by-ref")).await;
    assert_eq!(
        by_ref,
        ["add", "alpha_only", "whoami"],
        "backendRef serves alpha"
    );

    // beta's Service is labelled too (SSE appProtocol): its tools join, prefixed by the
    // selected targets' names.
    t.cluster
        .apply(&service(
            "beta",
            node_port(&beta),
            "agentgateway.dev/mcp-sse",
        ))
        .await
        .unwrap();
    let both = eventually(TIMEOUT, || async {
        let names = listed_tools(gw, "/picked").await?;
        ensure!(
            names.iter().any(|n| n.starts_with("beta-http_")),
            "{names:?}"
        );
        Ok(names)
    })
    .await;
    assert_eq!(
        both,
        [
            "alpha-http_add",
            "alpha-http_alpha_only",
            "alpha-http_whoami",
            "beta-http_add",
            "beta-http_beta_only",
            "beta-http_whoami",
        ]
    );
    drop((alpha, beta));
}

/// Sums the samples of `metric` for tenant `TENANT` on every replica's `/metrics`.
async fn scraped(ai: &AiFleet, metric: &str) -> anyhow::Result<f64> {
    let mut sum = 0.0;
    for g in &ai.gateways {
        let (status, text) =
            fleetgate_e2e::http::get(g.metrics_addr(), "metrics", "/metrics", &[]).await?;
        ensure!(status == 200, "/metrics answered {status}");
        let prefix = format!("{metric}{{tenant=\"{TENANT}\"}} ");
        sum += text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(sum)
}

/// The tool pinning of issue 12 (the "rug pull"): alpha's tools are pinned when first seen
/// (the backend says so); mid-session alpha changes the definition of `add` (its tool
/// `rugpull`); the session's next tools/list lacks `alpha_add` on whichever replica answers,
/// a call of it is refused with a JSON-RPC error saying it is withheld, the backend's status
/// on the real kube-apiserver names the target, the tool and the new hash, a Warning Event is
/// on the backend, both replicas' metrics count the change; after the hub and both replicas
/// restart the tool is still withheld (the pins are in the hub's store); annotating the
/// backend with the new hash brings the tool back, and calls with its new schema work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_tool_definition_is_withheld_until_the_tenant_accepts_it() {
    let (mut ai, alpha, beta) = federation(2, &["rugpull"], false).await;
    let t = ai.tenant(TENANT);
    let gw = tutorial_gateway(t).await;
    let url = format!("http://{gw}/mcp");
    let session = |calls: &[&str], relist: bool| {
        let mut a = strings(&["--url", &url]);
        if relist {
            a.push("--relist".into());
        }
        for c in calls {
            a.push("--call".into());
            a.push((*c).to_string());
        }
        a
    };

    // First sight: served, pinned by the hub, said on the backend.
    let first = session(&["alpha_add={\"a\":2,\"b\":3}"], false);
    let report = eventually(TIMEOUT, || python_client(&first)).await;
    assert!(
        report["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("alpha_add"))),
        "{report}"
    );
    assert_eq!(report["calls"]["alpha_add"]["text"], json!(["5"]));
    let pinned = wait_condition(
        t,
        "AgentgatewayBackend",
        "default",
        "tools",
        "/status/conditions",
        "ToolsPinned",
        "True",
    )
    .await;
    eprintln!(
        "pinned: {}",
        condition(&pinned["status"]["conditions"], "ToolsPinned").unwrap()
    );

    // The rug pull, mid-session: the session's next tools/list lacks the changed tool.
    let pull = session(&["alpha_rugpull"], true);
    let report = python_client(&pull).await.unwrap();
    eprintln!("rug pull: {report}");
    assert_eq!(
        report["calls"]["alpha_rugpull"]["text"],
        json!(["add changed"])
    );
    assert!(
        report["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("alpha_add"))),
        "before: {report}"
    );
    let after = report["tools_after"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!after.contains(&json!("alpha_add")), "after: {report}");
    assert!(
        after.contains(&json!("beta_add")) && after.contains(&json!("alpha_whoami")),
        "the other tools stay: {report}"
    );

    // The backend says why, naming the target, the tool, the new hash and how to accept it.
    let withheld = wait_condition(
        t,
        "AgentgatewayBackend",
        "default",
        "tools",
        "/status/conditions",
        "ToolsPinned",
        "False",
    )
    .await;
    let c = condition(&withheld["status"]["conditions"], "ToolsPinned")
        .cloned()
        .unwrap();
    eprintln!("withheld: {c}");
    assert_eq!(c["reason"], "ToolDefinitionChanged");
    let message = c["message"].as_str().unwrap_or_default().to_string();
    let marker = "target alpha changed tool add (new definition sha256 ";
    let at = message.find(marker).expect("the condition names the tool") + marker.len();
    let hash = message[at..at + 64].to_string();
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{message}");
    let accept = format!("alpha_add={hash}");
    assert!(
        message.contains(&format!("fleetgate.dev/mcp-accept-tools: \"{accept}\"")),
        "{message}"
    );

    // A call is refused on every replica (Envoy spreads the sessions' requests over both)
    // once the hub has sent them the change.
    let call = session(&["alpha_add={\"a\":2,\"b\":3}"], false);
    for _ in 0..3 {
        let refused = eventually(TIMEOUT, || async {
            let r = python_client(&call).await?;
            let e = r["calls"]["alpha_add"]["rpc_error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            ensure!(e.contains("withheld pending the tenant's approval"), "{r}");
            Ok(e)
        })
        .await;
        assert!(refused.contains(&accept), "{refused}");
    }

    // A Warning Event on the backend.
    let event = eventually(TIMEOUT, || async {
        let events = kube::Api::<k8s_openapi::api::core::v1::Event>::namespaced(
            t.cluster.admin(),
            "default",
        )
        .list(&Default::default())
        .await?;
        events
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.kind.as_deref() == Some("AgentgatewayBackend")
                    && e.involved_object.name.as_deref() == Some("tools")
                    && e.reason.as_deref() == Some("ToolDefinitionChanged")
                    && e.type_.as_deref() == Some("Warning")
            })
            .context("no ToolDefinitionChanged event on AgentgatewayBackend tools yet")
    })
    .await;
    assert!(
        event.message.as_deref().is_some_and(|m| m.contains(&hash)),
        "{event:?}"
    );

    // The gateways' metrics.
    let changes = scraped(&ai, "fleetgate_ai_mcp_tool_changes_total")
        .await
        .unwrap();
    let withheld_now = scraped(&ai, "fleetgate_ai_mcp_tools_withheld")
        .await
        .unwrap();
    eprintln!("changes {changes}, withheld {withheld_now}");
    assert!(changes > 0.0 && withheld_now > 0.0);

    // The pins hold across a restart of the hub and of both replicas (nothing in memory is
    // left): the hub's store brings them back, and the changed tool stays withheld.
    ai.fleet.hub.kill();
    ai.fleet.hub.start_again().await.unwrap();
    for g in &mut ai.gateways {
        g.process().restart().unwrap();
    }
    let t = ai.tenant(TENANT);
    let relisted = session(&["alpha_add={\"a\":2,\"b\":3}"], false);
    let report = eventually(TIMEOUT, || async {
        let r = python_client(&relisted).await?;
        ensure!(
                r["tools"].as_array().is_some_and(
                    |t| t.contains(&json!("beta_add")) && !t.contains(&json!("alpha_add"))
                ),
                "{r}"
            );
        ensure!(
            r["calls"]["alpha_add"]["rpc_error"]["message"]
                .as_str()
                .is_some_and(|e| e.contains("withheld pending the tenant's approval")),
            "{r}"
        );
        Ok(r)
    })
    .await;
    eprintln!("after restarts: {report}");

    // The tenant accepts the new definition: the tool is back, pinned to it.
    t.cluster
        .apply(&format!(
            r#"apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: tools
  namespace: default
  annotations: {{fleetgate.dev/mcp-accept-tools: "{accept}"}}
spec:
  mcp:
    targets:
    - name: alpha
      static: {{host: alpha.tools.svc.cluster.local, port: 8080, path: /mcp, protocol: StreamableHTTP}}
    - name: beta
      static: {{host: beta.tools.svc.cluster.local, port: 8080, path: /sse, protocol: SSE}}
"#
        ))
        .await
        .unwrap();
    wait_condition(
        t,
        "AgentgatewayBackend",
        "default",
        "tools",
        "/status/conditions",
        "ToolsPinned",
        "True",
    )
    .await;
    let back = session(&["alpha_add={\"a\":40,\"b\":2,\"note\":\"\"}"], false);
    let report = eventually(TIMEOUT, || async {
        let r = python_client(&back).await?;
        ensure!(
            r["tools"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("alpha_add"))),
            "{r}"
        );
        ensure!(r["calls"]["alpha_add"]["text"] == json!(["42"]), "{r}");
        Ok(r)
    })
    .await;
    eprintln!("accepted: {report}");
    drop((alpha, beta));
}
