//! The agent side of the agent gateway (issue 11), on a real kube-apiserver: the KubeLB AI
//! gateway tutorial's resources apply unchanged with fleetgate's AgentgatewayBackend CRD
//! (`deploy/crds/`), and the agent, started with `--gateway-class agentgateway`, sends them to
//! the hub resolved: the backend's cluster-local host as the Service's endpoints, the key read
//! from the backend's Secret (and re-sent when it rotates), the HTTPRoute's backendRef as an
//! `AgentgatewayBackend` reference; the status it is given lands on the backend.
//!
//! `tutorial_resources_apply_unchanged_and_reach_the_hub_resolved` listens on the wire with a
//! [`RecordingHub`] (the product hub keeps what it receives to itself);
//! `the_product_hub_answers_for_the_tutorials_gateway` runs the whole fleet with the product hub.
//! Needs the product binaries: `cargo build --bins` first.

use anyhow::{Context, ensure};
use fleetgate_e2e::apiserver::SecretRbac;
use fleetgate_e2e::fixtures::condition;
use fleetgate_e2e::fleet::FleetOptions;
use fleetgate_e2e::recording_hub::{Intent, RecordingHub};
use fleetgate_e2e::secrets::Secrets;
use fleetgate_e2e::{Agent, Etcd, Fleet, TIMEOUT, TenantCluster, TestDir, eventually};
use fleetgate_proto::spoke::v1::{
    self as pb, Kind, ObjectRef, ObjectStatus, Status, ai_backend, object,
};
use serde_json::Value;

const NS: &str = "agentgateway-system";
const KEY: &str = "sk-tutorial-llm-key-held-by-the-hub-only";
const ROTATED: &str = "sk-rotated-llm-key-held-by-the-hub-only";

/// What the tutorial assumes is installed: its namespaces, and the GatewayClass `agentgateway`
/// (agentgateway's chart installs it; with fleetgate, deploy/gatewayclass-agentgateway.yaml).
const SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: agentgateway-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: llm}
"#;

/// The KubeLB AI gateway tutorial's resources, as a tenant applies them. The llama.cpp Service is
/// of type NodePort, which is how fleetgate's default endpoint mode reaches a Service.
fn tutorial(key: &str) -> String {
    format!(
        r#"
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
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: local-llm
  namespace: agentgateway-system
spec:
  ai:
    provider:
      host: llama-cpp.llm.svc.cluster.local
      port: 8080
      openai:
        model: gemma-4-12b-it
  policies:
    auth:
      secretRef:
        name: llm-secret
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: local-llm
  namespace: agentgateway-system
spec:
  parentRefs:
    - name: agentgateway-proxy
      namespace: agentgateway-system
  rules:
    - backendRefs:
        - name: local-llm
          namespace: agentgateway-system
          group: agentgateway.dev
          kind: AgentgatewayBackend
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
---
{}"#,
        secret(key)
    )
}

/// The Secret `llm-secret` as `kubectl create secret generic llm-secret
/// --from-literal=Authorization="Bearer <key>"` makes it.
fn secret(key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: llm-secret\n  namespace: {NS}\ntype: Opaque\nstringData:\n  Authorization: Bearer {key}\n"
    )
}

fn get<'a>(intent: &'a Intent, kind: Kind, ns: &str, name: &str) -> Result<&'a pb::Object, String> {
    intent
        .get(&(kind as i32, ns.to_string(), name.to_string()))
        .ok_or_else(|| format!("no {kind:?} {ns}/{name} in {:?}", intent.keys()))
}

fn ai_backend(intent: &Intent) -> Result<pb::AiBackend, String> {
    match &get(intent, Kind::AiBackend, NS, "local-llm")?.spec {
        Some(object::Spec::AiBackend(b)) => Ok(b.clone()),
        other => Err(format!("not an AI backend: {other:?}")),
    }
}

/// The backend's condition `type_` once it carries `status` and the backend's generation.
async fn wait_backend_condition(cluster: &TenantCluster, type_: &str, status: &str) -> Value {
    eventually(TIMEOUT, || async {
        let b = cluster
            .get_json("AgentgatewayBackend", NS, "local-llm")
            .await?
            .context("the backend is gone")?;
        let c = condition(&b["status"]["conditions"], type_)
            .with_context(|| format!("no {type_} condition: {}", b["status"]))?;
        ensure!(c["status"] == status, "{type_}: {c}");
        ensure!(
            c["observedGeneration"] == b["metadata"]["generation"],
            "{type_} observedGeneration {} != generation {}",
            c["observedGeneration"],
            b["metadata"]["generation"]
        );
        Ok(c.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_resources_apply_unchanged_and_reach_the_hub_resolved() {
    let dir = TestDir::new("agent_gateway_intent").expect("test folder");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let cluster = TenantCluster::start("tenant-a", &etcd)
        .await
        .expect("kube-apiserver starts with the CRDs");
    cluster.apply(SETUP).await.expect("namespaces");
    assert!(
        cluster
            .apply_repo_file("deploy/gatewayclass-agentgateway.yaml")
            .await
            .expect("the GatewayClass applies")
    );

    // The tutorial applies unchanged, and the API server kept what it was given.
    cluster
        .apply(&tutorial(KEY))
        .await
        .expect("the tutorial's resources apply to the real API server");
    let stored = cluster
        .get_json("AgentgatewayBackend", NS, "local-llm")
        .await
        .unwrap()
        .expect("the backend exists");
    let provider = &stored["spec"]["ai"]["provider"];
    assert_eq!(provider["host"], "llama-cpp.llm.svc.cluster.local");
    assert_eq!(provider["port"], 8080);
    assert_eq!(provider["openai"]["model"], "gemma-4-12b-it");
    assert_eq!(
        stored["spec"]["policies"]["auth"]["secretRef"]["name"],
        "llm-secret"
    );
    // The CRD validates like agentgateway's (CEL), and keeps fields fleetgate does not read for
    // the agent to report rather than pruning them.
    for (bad, want) in [
        (
            "ai: {provider: {openai: {}}}\n  static: {host: h, port: 80}",
            "exactly one of the fields in [ai static",
        ),
        (
            "ai: {provider: {host: h, openai: {}}}",
            "both host and port must be set together",
        ),
        (
            "ai: {provider: {openai: {}, anthropic: {}}}",
            "exactly one of the fields in [openai",
        ),
        (
            "ai: {provider: {openai: {}}}\n  policies: {auth: {key: k, passthrough: {}}}",
            "at most one of the fields in [key secretRef",
        ),
    ] {
        let yaml = format!(
            "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayBackend\nmetadata: {{name: bad, namespace: {NS}}}\nspec:\n  {bad}\n"
        );
        let err = cluster.apply(&yaml).await.expect_err(bad);
        assert!(format!("{err:#}").contains(want), "{bad}: {err:#}");
    }
    cluster
        .apply(&format!(
            "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayBackend\nmetadata: {{name: tools, namespace: {NS}}}\nspec:\n  mcp:\n    targets: [{{name: t, static: {{host: llama-cpp.llm.svc.cluster.local, port: 8080, path: /mcp}}}}, {{name: gone, static: {{host: mcp.example.com, port: 443, protocol: SSE}}}}]\n    sessionRouting: Stateless\n"
        ))
        .await
        .expect("an MCP backend applies");
    let tools = cluster
        .get_json("AgentgatewayBackend", NS, "tools")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tools["spec"]["mcp"]["targets"][0]["static"]["path"], "/mcp");

    // The node the llama.cpp Service is reached on (node mode: InternalIP x nodePort).
    cluster.create_node("node-1", "127.0.1.1").await.unwrap();
    let svc = cluster
        .get_json("Service", "llm", "llama-cpp")
        .await
        .unwrap()
        .unwrap();
    let node_port = u32::try_from(svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap()).unwrap();

    let hub = RecordingHub::start()
        .await
        .expect("the recording hub starts");
    let identity = hub
        .issue_agent_identity(&dir, "tenant-a", "c1")
        .expect("identity");
    let _agent = Agent::start_against(
        &dir,
        &hub.url(),
        &identity,
        "tenant-a",
        "c1",
        cluster.agent_kubeconfig(),
        &["--gateway-class".to_string(), "agentgateway".to_string()],
    )
    .expect("the agent starts");

    // What the hub receives: the Gateway of class agentgateway, the route's backendRef as a
    // reference to the AI backend, the backend with its host resolved and its key read.
    let backend = hub
        .wait_for(TIMEOUT, |intent| {
            let gw = get(intent, Kind::Gateway, NS, "agentgateway-proxy")?;
            let Some(object::Spec::Gateway(gw)) = &gw.spec else {
                return Err("not a Gateway".into());
            };
            let l = gw.listeners.first().ok_or("no listener")?;
            let from = l.allowed_routes.as_ref().map(|a| a.from.as_str());
            if (
                gw.gateway_class_name.as_str(),
                l.port,
                l.protocol.as_str(),
                l.hostname.as_str(),
                from,
            ) != ("agentgateway", 8080, "HTTP", "", Some("All"))
            {
                return Err(format!("Gateway {gw:?}"));
            }
            let route = get(intent, Kind::HttpRoute, NS, "local-llm")?;
            let Some(object::Spec::HttpRoute(route)) = &route.spec else {
                return Err("not an HTTPRoute".into());
            };
            let b = route
                .rules
                .first()
                .and_then(|r| r.backends.first())
                .ok_or("no backend")?;
            if (
                b.kind.as_str(),
                b.namespace.as_str(),
                b.name.as_str(),
                b.endpoints.len(),
            ) != ("AgentgatewayBackend", NS, "local-llm", 0)
                || b.problem.is_some()
            {
                return Err(format!("route backend {b:?}"));
            }
            let ai = ai_backend(intent)?;
            if ai.auth.as_ref().map(|a| a.key.as_str()) != Some(KEY) {
                return Err(format!("AI backend without the key yet: {ai:?}"));
            }
            Ok(ai)
        })
        .await
        .expect("the agent sends the tutorial's intent");
    assert_eq!(
        backend.provider,
        Some(ai_backend::Provider::Openai(pb::OpenAiProvider {
            model: Some("gemma-4-12b-it".into())
        }))
    );
    assert_eq!(
        (backend.host.as_str(), backend.port),
        ("llama-cpp.llm.svc.cluster.local", 8080)
    );
    assert_eq!(
        backend.endpoints,
        vec![pb::Endpoint {
            address: "127.0.1.1".into(),
            port: node_port,
            ready: true
        }]
    );
    assert_eq!(backend.problem, None);
    // The MCP backend: its Service target resolved to the node's port like the LLM's host,
    // the external one left for the hub's egress allowlist, the modes as written.
    assert_eq!(ai_intent_problem(&hub.intent(), "tools"), None);
    let tools = match &get(&hub.intent(), Kind::AiBackend, NS, "tools")
        .expect("the MCP backend is sent")
        .spec
    {
        Some(object::Spec::AiBackend(b)) => b.mcp.clone().expect("sent as an MCP backend"),
        other => panic!("not an AI backend: {other:?}"),
    };
    assert_eq!(tools.session_routing, "Stateless");
    assert_eq!(
        tools.targets[0].endpoints,
        vec![pb::Endpoint {
            address: "127.0.1.1".into(),
            port: node_port,
            ready: true
        }]
    );
    assert_eq!(tools.targets[0].path.as_deref(), Some("/mcp"));
    assert!(tools.targets[1].endpoints.is_empty());
    assert_eq!(tools.targets[1].protocol, "SSE");

    // The agent accepted the GatewayClass it was told to claim.
    eventually(TIMEOUT, || async {
        let gc = cluster
            .get_json("GatewayClass", "", "agentgateway")
            .await?
            .context("GatewayClass gone")?;
        let accepted = condition(&gc["status"]["conditions"], "Accepted")
            .with_context(|| format!("no Accepted condition: {}", gc["status"]))?;
        ensure!(accepted["status"] == "True", "{accepted}");
        ensure!(
            accepted["message"]
                .as_str()
                .is_some_and(|m| m.contains("--gateway-class agentgateway")),
            "{accepted}"
        );
        Ok(())
    })
    .await;

    // The hub's verdict lands on the backend's status, with observedGeneration.
    let generation = stored["metadata"]["generation"].as_i64().unwrap();
    let cond = |t: &str, s: &str, r: &str, m: &str| pb::Condition {
        r#type: t.into(),
        status: s.into(),
        reason: r.into(),
        message: m.into(),
    };
    hub.push_status(Status {
        traceparent: String::new(),
        objects: vec![ObjectStatus {
            r#ref: Some(ObjectRef {
                kind: Kind::AiBackend as i32,
                namespace: NS.into(),
                name: "local-llm".into(),
            }),
            observed_generation: generation,
            conditions: vec![
                cond("Accepted", "True", "Accepted", "served by the AI gateway"),
                cond("ResolvedRefs", "True", "ResolvedRefs", ""),
            ],
            ..Default::default()
        }],
    });
    let accepted = wait_backend_condition(&cluster, "Accepted", "True").await;
    assert_eq!(accepted["message"], "served by the AI gateway");
    wait_backend_condition(&cluster, "ResolvedRefs", "True").await;

    // A rotated key is sent again; a Service that goes away is reported, naming it.
    cluster.apply(&secret(ROTATED)).await.expect("rotate");
    hub.wait_for(TIMEOUT, |intent| {
        let ai = ai_backend(intent)?;
        (ai.auth.as_ref().map(|a| a.key.as_str()) == Some(ROTATED))
            .then_some(())
            .ok_or_else(|| "the old key still".to_string())
    })
    .await
    .expect("the rotated key reaches the hub");
    cluster.delete("Service", "llm", "llama-cpp").await.unwrap();
    let gone = hub
        .wait_for(TIMEOUT, |intent| {
            ai_intent_problem(intent, "local-llm").ok_or_else(|| "no problem yet".to_string())
        })
        .await
        .expect("a missing Service is reported");
    assert_eq!(gone.reason, "BackendNotFound");
    assert!(
        gone.message.contains(
            "spec.ai.provider.host llama-cpp.llm.svc.cluster.local: Service llm/llama-cpp not found"
        ),
        "{}",
        gone.message
    );

    // Neither key ever reached a log (the agent logs at debug level here).
    let mut secrets = Secrets::new();
    secrets.add("the tutorial's key", KEY);
    secrets.add("the rotated key", ROTATED);
    secrets.assert_not_in_logs(dir.path());
}

fn ai_intent_problem(intent: &Intent, name: &str) -> Option<pb::BackendProblem> {
    match &get(intent, Kind::AiBackend, NS, name).ok()?.spec {
        Some(object::Spec::AiBackend(b)) => b.problem.clone(),
        _ => None,
    }
}

/// On the RBAC of deploy/ as shipped (`--secrets namespaces=default`), a backend's key Secret in
/// another namespace is explained on the backend (what to add) and never watched, while one in
/// `default` is read by name through the Role there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_secrets_follow_the_agents_secrets_mode() {
    let dir = TestDir::new("agent_gateway_secrets_mode").expect("test folder");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let cluster = TenantCluster::start_with_rbac("tenant-a", &etcd, SecretRbac::DeployDefault)
        .await
        .expect("kube-apiserver starts with the shipped RBAC");
    cluster.apply(SETUP).await.expect("namespaces");
    cluster
        .apply(&tutorial(KEY))
        .await
        .expect("the tutorial applies");
    let in_default = tutorial(ROTATED)
        .split("---")
        .filter(|d| d.contains("kind: AgentgatewayBackend") || d.contains("kind: Secret"))
        .map(|d| d.replace(&format!("namespace: {NS}"), "namespace: default"))
        .collect::<Vec<_>>()
        .join("---");
    cluster
        .apply(&in_default)
        .await
        .expect("a backend in default");
    let hub = RecordingHub::start()
        .await
        .expect("the recording hub starts");
    let identity = hub
        .issue_agent_identity(&dir, "tenant-a", "c1")
        .expect("identity");
    let mut agent = Agent::start_against(
        &dir,
        &hub.url(),
        &identity,
        "tenant-a",
        "c1",
        cluster.agent_kubeconfig(),
        &["--secrets".to_string(), "namespaces=default".to_string()],
    )
    .expect("the agent starts");
    let (outside, inside) = hub
        .wait_for(TIMEOUT, |intent| {
            let outside = ai_intent_problem(intent, "local-llm").ok_or("no problem yet")?;
            let inside = match &get(intent, Kind::AiBackend, "default", "local-llm")?.spec {
                Some(object::Spec::AiBackend(b)) => b.clone(),
                other => return Err(format!("{other:?}")),
            };
            Ok((outside, inside))
        })
        .await
        .expect("both backends are sent");
    assert_eq!(outside.reason, "BackendNotFound");
    assert!(
        outside.message.contains(
            "Secret agentgateway-system/llm-secret, in namespace agentgateway-system, where the agent may not read Secrets (it runs with --secrets namespaces=default): add agentgateway-system to --secrets"
        ),
        "{}",
        outside.message
    );
    assert_eq!(inside.auth.map(|a| a.key), Some(ROTATED.to_string()));
    let log = agent.process().log();
    assert!(
        !log.contains("forbidden") && !log.contains("watch failed"),
        "the agent never asks for what its RBAC refuses:\n{log}"
    );
    let mut secrets = Secrets::new();
    secrets.add("the key in agentgateway-system", KEY);
    secrets.add("the key in default", ROTATED);
    secrets.assert_not_in_logs(dir.path());
}

/// An agent whose RBAC predates AI backends (no rule for agentgatewaybackends) where the CRD is
/// installed says so and sends the rest of the cluster's intent, instead of waiting for ever for
/// a list it may not make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_rbac_for_ai_backends_still_sends_the_rest() {
    let dir = TestDir::new("agent_gateway_old_rbac").expect("test folder");
    let etcd = Etcd::start(&dir).await.expect("etcd starts");
    let cluster = TenantCluster::start("tenant-a", &etcd)
        .await
        .expect("kube-apiserver starts with the CRDs");
    let rbac = std::fs::read_to_string(
        fleetgate_e2e::components::workspace_dir().join("deploy/agent-rbac.yaml"),
    )
    .unwrap();
    let old_rules = "  - apiGroups: [\"agentgateway.dev\"]\n    resources: [\"agentgatewaybackends\"]\n    verbs: [\"get\", \"list\", \"watch\"]\n  - apiGroups: [\"agentgateway.dev\"]\n    resources: [\"agentgatewaybackends/status\"]\n    verbs: [\"patch\", \"update\"]\n";
    assert!(
        rbac.contains(old_rules),
        "deploy/agent-rbac.yaml changed shape"
    );
    cluster
        .apply(&rbac.replace(old_rules, ""))
        .await
        .expect("the RBAC without AI backends");
    cluster.apply(SETUP).await.expect("namespaces");
    cluster
        .apply_repo_file("deploy/gatewayclass-agentgateway.yaml")
        .await
        .expect("the GatewayClass applies");
    cluster
        .apply(&tutorial(KEY))
        .await
        .expect("the tutorial applies");
    let hub = RecordingHub::start()
        .await
        .expect("the recording hub starts");
    let identity = hub
        .issue_agent_identity(&dir, "tenant-a", "c1")
        .expect("identity");
    let mut agent = Agent::start_against(
        &dir,
        &hub.url(),
        &identity,
        "tenant-a",
        "c1",
        cluster.agent_kubeconfig(),
        &["--gateway-class".to_string(), "agentgateway".to_string()],
    )
    .expect("the agent starts");
    hub.wait_for(TIMEOUT, |intent| {
        get(intent, Kind::Gateway, NS, "agentgateway-proxy")?;
        Ok(())
    })
    .await
    .expect("the Gateway is sent");
    assert!(
        get(&hub.intent(), Kind::AiBackend, NS, "local-llm").is_err(),
        "no AI backend without the RBAC to read it"
    );
    let log = agent.process().log();
    assert!(
        log.contains("does not allow list on agentgatewaybackends.agentgateway.dev"),
        "{log}"
    );
}

/// With the product hub: the agent claims the tutorial's Gateway through `--gateway-class`
/// (passed by the harness), accepts the GatewayClass, and the hub's verdict on the Gateway comes
/// back onto it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_hub_answers_for_the_tutorials_gateway() {
    let fleet = Fleet::start_with_options(
        &[("tenant-a", "*.a.example", "127.0.1.0/24")],
        FleetOptions {
            agent_args: vec!["--gateway-class".into(), "agentgateway".into()],
            ..FleetOptions::default()
        },
    )
    .await
    .expect("fleet starts");
    let t = fleet.tenant("tenant-a");
    t.cluster.apply(SETUP).await.expect("namespaces");
    t.cluster
        .apply_repo_file("deploy/gatewayclass-agentgateway.yaml")
        .await
        .expect("the GatewayClass applies");
    t.cluster
        .apply(&tutorial(KEY))
        .await
        .expect("the tutorial applies");
    eventually(TIMEOUT, || async {
        let gc = t
            .cluster
            .get_json("GatewayClass", "", "agentgateway")
            .await?
            .context("GatewayClass gone")?;
        let accepted = condition(&gc["status"]["conditions"], "Accepted")
            .with_context(|| format!("no Accepted condition: {}", gc["status"]))?;
        ensure!(accepted["status"] == "True", "{accepted}");
        let gw = t
            .cluster
            .get_json("Gateway", NS, "agentgateway-proxy")
            .await?
            .context("Gateway gone")?;
        let hub_said = condition(&gw["status"]["conditions"], "Accepted")
            .with_context(|| format!("no status from the hub yet: {}", gw["status"]))?;
        ensure!(
            hub_said["observedGeneration"] == gw["metadata"]["generation"],
            "{hub_said}"
        );
        Ok(())
    })
    .await;
    let mut secrets = Secrets::new();
    secrets.add("the tutorial's key", KEY);
    fleet.assert_no_secrets_in_logs(secrets);
}
