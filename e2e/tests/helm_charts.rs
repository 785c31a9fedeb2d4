//! The Helm charts of `deploy/charts/` (docs/operations.md), with a real `helm` (built from the
//! Go module proxy by `e2e/setup.sh`) and a real kube-apiserver:
//! - both charts lint and render objects the API server accepts (server-side dry run with strict
//!   field validation); the hub chart's rendered configuration passes `fleetgate-hub check` and
//!   its Envoy bootstrap passes `envoy --mode validate`;
//! - missing or contradictory values fail with a message naming the value to set;
//! - the agent chart grants what `deploy/agent-rbac.yaml` grants, rule for rule;
//! - `helm install` of the agent chart, then the agent run with the installed Deployment's own
//!   arguments, environment and mounted files, as the chart's ServiceAccount (a token from the
//!   TokenRequest API): it enrolls, keeps its identity in its Secret and serves a tenant's route.
//!   So the agent works with exactly what the chart grants. Its metrics port (what the chart's
//!   probes ask) is ready and counts the hub's Acks and the objects it sent.
//!
//! No kubelet runs here: the Deployment's pod is played by a local process, the only part of a
//! real installation this test does not have.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use fleetgate_e2e::fixtures::{class_and_http_gateway, http_route, rule_to};
use fleetgate_e2e::hub::HubCluster;
use fleetgate_e2e::{
    Echo, Envoy, Etcd, Hub, HubTenant, Process, TIMEOUT, TenantCluster, TestDir, eventually,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

const AGENT_CHART: &str = "deploy/charts/fleetgate-agent";
const HUB_CHART: &str = "deploy/charts/fleetgate-hub";
const AGENT_NAMESPACE: &str = "fleetgate-system";

/// `helm <args>`: (success, stdout, stderr).
fn helm(args: &[&str]) -> (bool, String, String) {
    let helm = fleetgate_e2e::components::helm().expect("helm (run e2e/setup.sh)");
    let out = Command::new(helm)
        .args(args)
        .current_dir(fleetgate_e2e::components::workspace_dir())
        // helm keeps caches and plugins under HOME; the test's own folders keep it off the
        // user's.
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("fleetgate-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("fleetgate-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("fleetgate-helm-data"),
        )
        .output()
        .expect("running helm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `helm template` that must succeed; returns the rendered YAML.
fn render(chart: &str, values: &[&str]) -> String {
    let mut args = vec!["template", "t", chart, "--namespace", AGENT_NAMESPACE];
    args.extend_from_slice(values);
    let (ok, out, err) = helm(&args);
    assert!(ok, "helm template {chart} {values:?} failed:\n{err}");
    out
}

/// Values every agent chart render needs.
const AGENT_VALUES: [&str; 6] = [
    "--set",
    "hub.url=https://hub.example.com:9443",
    "--set",
    "hub.caCert=-----BEGIN CERTIFICATE-----",
    "--set",
    "bootstrapToken=token",
];

/// Values every hub chart render needs, plus one tenant.
const HUB_VALUES: [&str; 10] = [
    "--set",
    "dataPlane.address=203.0.113.10",
    "--set",
    "aiGateway.serviceIP=10.0.0.90",
    "--set",
    "config.tenants[0].name=tenant-a",
    "--set",
    "config.tenants[0].hostnames={*.a.example.com}",
    "--set-json",
    r#"config.tenants[0].clusters=[{"name":"east","endpointCidrs":["10.1.0.0/16"]}]"#,
];

/// Values that make the hub chart run three hubs sharing a store on etcd.
const HUB_HA_VALUES: [&str; 6] = [
    "--set",
    "hub.replicas=3",
    "--set",
    "hub.store.etcd.endpoints={http://etcd.fleetgate.svc:2379}",
    "--set",
    "hub.pkiSecret=fleetgate-pki",
];

fn docs(yaml: &str) -> Vec<Value> {
    fleetgate_e2e::apiserver::yaml_documents(yaml).expect("helm renders YAML")
}

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(name_suffix))
        })
        .unwrap_or_else(|| panic!("no {kind} *{name_suffix} rendered"))
}

#[test]
fn both_charts_lint_and_missing_values_fail_with_what_to_set() {
    let (ok, out, err) = helm(&[&["lint", AGENT_CHART][..], &AGENT_VALUES[..]].concat());
    assert!(ok, "helm lint {AGENT_CHART}:\n{out}{err}");
    let (ok, out, err) = helm(&[&["lint", HUB_CHART][..], &HUB_VALUES[..]].concat());
    assert!(ok, "helm lint {HUB_CHART}:\n{out}{err}");

    // Each required value, left out, is named in the error.
    for (chart, values, drop, says) in [
        (
            AGENT_CHART,
            &AGENT_VALUES[..],
            "hub.url=",
            "hub.url is required",
        ),
        (AGENT_CHART, &AGENT_VALUES[..], "hub.caCert=", "hub.caCert"),
        (
            AGENT_CHART,
            &AGENT_VALUES[..],
            "bootstrapToken=",
            "bootstrapToken",
        ),
        (
            HUB_CHART,
            &HUB_VALUES[..],
            "dataPlane.address=",
            "dataPlane.address is required",
        ),
        (
            HUB_CHART,
            &HUB_VALUES[..],
            "aiGateway.serviceIP=",
            "aiGateway.serviceIP is required",
        ),
    ] {
        let mut kept = Vec::new();
        let mut i = 0;
        while i < values.len() {
            if !values[i + 1].starts_with(drop) {
                kept.extend_from_slice(&values[i..i + 2]);
            }
            i += 2;
        }
        let (ok, _, err) = helm(&[&["template", "t", chart][..], &kept[..]].concat());
        assert!(!ok, "{chart} rendered without {drop}");
        assert!(err.contains(says), "{chart} without {drop}: {err}");
    }
    // Contradictory values.
    for (chart, extra, says) in [
        (
            AGENT_CHART,
            "hub.url=http://hub:9443",
            "must start with https://",
        ),
        (
            AGENT_CHART,
            "secrets.mode=everything",
            "secrets.mode \"everything\" is not one of",
        ),
        (
            AGENT_CHART,
            "networkPolicy.enabled=true",
            "networkPolicy.apiServerCidrs",
        ),
        (
            HUB_CHART,
            "config.agentListen=0.0.0.0:1",
            "config.agentListen is set by the chart",
        ),
        (
            HUB_CHART,
            "hub.replicas=3",
            "hub.replicas > 1 needs hub.store.etcd.endpoints",
        ),
        (
            HUB_CHART,
            "hub.store.etcd.endpoints={http://etcd:2379}",
            "hub.store.etcd needs hub.pkiSecret",
        ),
        (
            HUB_CHART,
            "hub.store.etcd.endpoints={https://etcd:2379},hub.pkiSecret=pki",
            "must start with http://",
        ),
    ] {
        let base: &[&str] = if chart == AGENT_CHART {
            &AGENT_VALUES
        } else {
            &HUB_VALUES
        };
        let (ok, _, err) =
            helm(&[&["template", "t", chart][..], base, &["--set", extra][..]].concat());
        assert!(!ok, "{chart} rendered with {extra}");
        assert!(err.contains(says), "{chart} with {extra}: {err}");
    }
}

/// The rules of the Role/ClusterRole `name_suffix` of `kind` in `docs`.
fn rules(docs: &[Value], kind: &str, name_suffix: &str) -> Value {
    find(docs, kind, name_suffix)["rules"].clone()
}

#[test]
fn the_agent_chart_grants_what_deploy_agent_rbac_yaml_grants() {
    let read = |f: &str| {
        docs(
            &std::fs::read_to_string(fleetgate_e2e::components::workspace_dir().join(f))
                .expect("reading the deploy file"),
        )
    };
    let file = read("deploy/agent-rbac.yaml");
    let chart = docs(&render(AGENT_CHART, &AGENT_VALUES));
    // The main ClusterRole, the identity Role and the TLS Secrets Role of `default`.
    assert_eq!(
        rules(&chart, "ClusterRole", "fleetgate-agent"),
        rules(&file, "ClusterRole", "fleetgate-agent"),
        "the chart's ClusterRole differs from deploy/agent-rbac.yaml's"
    );
    assert_eq!(
        rules(&chart, "Role", "-identity"),
        rules(&file, "Role", "-identity")
    );
    assert_eq!(
        rules(&chart, "Role", "-tls-secrets"),
        rules(&file, "Role", "-tls-secrets")
    );
    // secrets.mode cluster: the cluster-wide Secret grant of deploy/agent-rbac-secrets-cluster.yaml.
    let cluster_file = read("deploy/agent-rbac-secrets-cluster.yaml");
    let cluster_chart = docs(&render(
        AGENT_CHART,
        &[&AGENT_VALUES[..], &["--set", "secrets.mode=cluster"][..]].concat(),
    ));
    assert_eq!(
        rules(&cluster_chart, "ClusterRole", "-tls-secrets"),
        rules(&cluster_file, "ClusterRole", "-tls-secrets")
    );
    assert!(
        !cluster_chart.iter().any(|d| d["kind"] == "Role"
            && d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-tls-secrets"))),
        "mode cluster renders no per-namespace Secret Role"
    );
    // Every binding names the chart's ServiceAccount, nothing else.
    for d in chart
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
    {
        assert_eq!(
            d["subjects"],
            json!([{"kind": "ServiceAccount", "name": "fleetgate-agent", "namespace": AGENT_NAMESPACE}]),
            "{}",
            d["metadata"]["name"]
        );
    }
}

/// A bare API server with the Gateway API CRDs and the CRDs of deploy/crds, and the namespaces
/// the rendered objects go to.
async fn cluster(name: &str, etcd: &Etcd) -> TenantCluster {
    let cluster = TenantCluster::start_bare(name, etcd)
        .await
        .expect("apiserver");
    cluster
        .install_gateway_api_crds()
        .await
        .expect("Gateway API CRDs");
    cluster.install_deploy_crds().await.expect("deploy CRDs");
    cluster
}

#[tokio::test]
async fn rendered_charts_pass_a_server_side_dry_run_and_the_products_own_checks() {
    let dir = TestDir::new("helm-dry-run").unwrap();
    let etcd = Etcd::start(&dir).await.unwrap();
    let cluster = cluster("helm-dry-run", &etcd).await;
    cluster
        .apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {AGENT_NAMESPACE}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n"
        ))
        .await
        .unwrap();

    for values in [
        AGENT_VALUES.to_vec(),
        [
            &AGENT_VALUES[..],
            &[
                "--set-json",
                r#"secrets.namespaces=["default","shop"]"#,
                "--set",
                "networkPolicy.enabled=true",
                "--set",
                "networkPolicy.apiServerCidrs={10.0.0.1/32}",
                "--set",
                "networkPolicy.hubCidrs={203.0.113.5/32}",
                "--set",
                "gatewayClasses={agentgateway}",
            ][..],
        ]
        .concat(),
        [&AGENT_VALUES[..], &["--set", "secrets.mode=label"][..]].concat(),
    ] {
        let yaml = render(AGENT_CHART, &values);
        cluster
            .dry_run_apply(&yaml)
            .await
            .unwrap_or_else(|e| panic!("agent chart with {values:?}:\n{e}"));
    }

    // Three hubs on etcd: no volume, the CA from a Secret, a PodDisruptionBudget, and a
    // configuration the hub accepts.
    let ha = render(HUB_CHART, &[&HUB_VALUES[..], &HUB_HA_VALUES[..]].concat());
    cluster
        .dry_run_apply(&ha)
        .await
        .unwrap_or_else(|e| panic!("hub chart with three replicas on etcd:\n{e}"));
    let ha = docs(&ha);
    let set = find(&ha, "StatefulSet", "");
    assert_eq!(set["spec"]["replicas"], 3);
    assert!(set["spec"]["volumeClaimTemplates"].is_null(), "{set}");
    assert_eq!(
        set["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"],
        "fleetgate-pki"
    );
    find(&ha, "PodDisruptionBudget", "-hub");
    let ha_yaml = find(&ha, "ConfigMap", "-config")["data"]["hub.yaml"]
        .as_str()
        .expect("hub.yaml in the ConfigMap")
        .to_string();
    let ha_config: Value = serde_yaml::from_str(&ha_yaml).unwrap();
    assert_eq!(
        ha_config["storeEtcd"]["endpoints"][0],
        "http://etcd.fleetgate.svc:2379"
    );
    assert!(ha_config["storePath"].is_null(), "{ha_yaml}");

    let yaml = render(HUB_CHART, &HUB_VALUES);
    cluster
        .dry_run_apply(&yaml)
        .await
        .unwrap_or_else(|e| panic!("hub chart:\n{e}"));
    let rendered = docs(&yaml);

    // The hub's configuration: what the hub itself accepts.
    let hub_yaml = find(&rendered, "ConfigMap", "-config")["data"]["hub.yaml"]
        .as_str()
        .expect("hub.yaml in the ConfigMap")
        .to_string();
    let config = dir.write("hub.yaml", &hub_yaml).unwrap();
    let check = |path: &Path| {
        Command::new(fleetgate_e2e::components::product_binary("fleetgate-hub").unwrap())
            .args(["check", "--config"])
            .arg(path)
            .output()
            .unwrap()
    };
    for (config, what) in [
        (config, "one hub"),
        (
            dir.write("hub-ha.yaml", &ha_yaml).unwrap(),
            "three hubs on etcd",
        ),
    ] {
        let out = check(&config);
        assert!(
            out.status.success(),
            "fleetgate-hub check refused the chart's configuration for {what}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And a tenant mistake in the values is caught by the same check, with what to change.
    let bad = dir
        .write(
            "hub-bad.yaml",
            hub_yaml.replace("name: tenant-a", "name: Tenant_A"),
        )
        .unwrap();
    let out = check(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use a DNS label"), "{err}");

    // Envoy's bootstrap: what Envoy itself accepts.
    let bootstrap = find(&rendered, "ConfigMap", "-envoy")["data"]["envoy.yaml"]
        .as_str()
        .expect("envoy.yaml in the ConfigMap")
        .to_string();
    let bootstrap = dir.write("envoy.yaml", &bootstrap).unwrap();
    let out = Command::new(fleetgate_e2e::components::envoy().unwrap())
        .args(["--mode", "validate", "--service-node", "envoy-0", "-c"])
        .arg(&bootstrap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "envoy --mode validate refused the chart's bootstrap:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The AI gateway is reachable only from Envoy.
    let policy = find(&rendered, "NetworkPolicy", "-ai-gateway");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "fleetgate-envoy"
    );
}

/// A kubeconfig that authenticates with a bearer `token` (a ServiceAccount's).
fn token_kubeconfig(server: &str, ca: &Path, token: &str) -> String {
    serde_yaml::to_string(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa@c", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "sa@c",
    }))
    .expect("JSON renders as YAML")
}

/// What the kubelet would give the chart's agent container: its arguments with every mounted
/// path moved under `root` (ConfigMap and Secret volumes written there) and its environment
/// (plain values and secretKeyRefs resolved).
async fn container_of(
    client: &kube::Client,
    deployment: &Deployment,
    root: &Path,
) -> anyhow::Result<(Vec<String>, BTreeMap<String, String>)> {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .context("Deployment without a pod template")?;
    let container = pod.containers.first().context("no container")?;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == m.name)
            .with_context(|| format!("volume {} not declared", m.name))?;
        let local = root.join(m.mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&local)?;
        if let Some(cm) = &volume.config_map {
            let cm = configmaps.get(&cm.name).await?;
            for (k, v) in cm.data.unwrap_or_default() {
                std::fs::write(local.join(k), v)?;
            }
        } else {
            anyhow::bail!("volume {} is neither a ConfigMap nor a Secret", m.name);
        }
        mounts.push((m.mount_path.clone(), local));
    }
    let args = container
        .args
        .iter()
        .flatten()
        .map(|a| {
            mounts.iter().fold(a.clone(), |a, (path, local)| {
                a.replace(path.as_str(), &local.display().to_string())
            })
        })
        .collect();
    let mut env = BTreeMap::new();
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                let r = from
                    .secret_key_ref
                    .as_ref()
                    .with_context(|| format!("env {}: only secretKeyRef is resolved", e.name))?;
                let s = secrets.get(&r.name).await?;
                let bytes = s
                    .data
                    .unwrap_or_default()
                    .remove(&r.key)
                    .with_context(|| format!("Secret {} has no key {}", r.name, r.key))?;
                String::from_utf8(bytes.0)?
            }
            (None, None) => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    Ok((args, env))
}

#[tokio::test]
async fn the_agent_serves_a_route_with_exactly_what_its_chart_grants() {
    let dir = TestDir::new("helm-agent").unwrap();
    let etcd = Etcd::start(&dir).await.unwrap();
    // A cluster with the CRDs and nothing else: no deploy/agent-rbac.yaml, no other grants.
    let cluster = cluster("tenant-a", &etcd).await;
    let hub = Hub::start(
        &dir,
        &[HubTenant {
            name: "tenant-a".into(),
            hostnames: vec!["*.a.example".into()],
            clusters: vec![HubCluster {
                name: "east".into(),
                endpoint_cidrs: vec!["127.0.1.0/24".into()],
            }],
        }],
    )
    .await
    .unwrap();
    let mut envoy = Envoy::start(&dir, 0, hub.xds_addr()).await.unwrap();

    let ca = hub.pki_dir().join("ca.crt");
    let token = hub.create_token("tenant-a", "east").unwrap();
    let kubeconfig = cluster.admin_kubeconfig().display().to_string();
    let (ok, out, err) = helm(&[
        "install",
        "fleetgate-agent",
        AGENT_CHART,
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        AGENT_NAMESPACE,
        "--create-namespace",
        "--set",
        &format!("hub.url={}", hub.agent_url()),
        "--set-file",
        &format!("hub.caCert={}", ca.display()),
        "--set",
        &format!("bootstrapToken={token}"),
    ]);
    assert!(ok, "helm install:\n{out}{err}");

    // The pod the kubelet would run: the installed Deployment's container, as its ServiceAccount.
    let admin = cluster.admin();
    let deployment = Api::<Deployment>::namespaced(admin.clone(), AGENT_NAMESPACE)
        .get("fleetgate-agent")
        .await
        .expect("the chart's Deployment");
    let root = dir.subdir("agent-pod").unwrap();
    let (mut args, env) = container_of(&admin, &deployment, &root).await.unwrap();
    let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}});
    let answer: Value = Api::<ServiceAccount>::namespaced(admin.clone(), AGENT_NAMESPACE)
        .create_subresource("token", "fleetgate-agent", &PostParams::default(), &request)
        .await
        .expect("a token of the chart's ServiceAccount");
    let sa_token = answer["status"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let apiserver_ca: PathBuf = root.join("apiserver-ca.crt");
    let admin_config: Value =
        serde_yaml::from_str(&std::fs::read_to_string(cluster.admin_kubeconfig()).unwrap())
            .unwrap();
    std::fs::copy(
        admin_config["clusters"][0]["cluster"]["certificate-authority"]
            .as_str()
            .expect("the admin kubeconfig names its CA file"),
        &apiserver_ca,
    )
    .unwrap();
    let sa_kubeconfig = dir
        .write(
            "agent-sa.kubeconfig",
            token_kubeconfig(cluster.server(), &apiserver_ca, &sa_token),
        )
        .unwrap();
    // In a pod the client finds the API server and the token itself; here they are a file.
    args.extend([
        "--kubeconfig".to_string(),
        sa_kubeconfig.display().to_string(),
    ]);
    // The pod's metrics port (0.0.0.0 in its own network namespace) is a free loopback port here.
    let metrics = fleetgate_e2e::ports::free_addr().unwrap();
    let metrics_args = args
        .iter_mut()
        .filter(|a| a.starts_with("--metrics-listen="))
        .map(|a| *a = format!("--metrics-listen={metrics}"))
        .count();
    assert_eq!(
        metrics_args, 1,
        "the chart starts the agent with --metrics-listen"
    );
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.push((
        "RUST_LOG".into(),
        fleetgate_e2e::components::product_log_level(),
    ));
    let agent = Process::spawn_with_env(
        &dir,
        "fleetgate-agent-chart",
        fleetgate_e2e::components::product_binary("fleetgate-agent").unwrap(),
        args,
        env,
    )
    .unwrap();

    // A tenant's route: Node, NodePort Service and its backend, Gateway, HTTPRoute.
    let ip = "127.0.1.10";
    cluster.create_node("node-1", ip).await.unwrap();
    let node_port = fleetgate_e2e::ports::free_port_in(ip.parse().unwrap(), 30000..=32767).unwrap();
    cluster
        .apply(&fleetgate_e2e::objects::http_service(
            "default", "echo", node_port,
        ))
        .await
        .unwrap();
    let _echo = Echo::start_at("chart-app", format!("{ip}:{node_port}").parse().unwrap())
        .await
        .unwrap();
    cluster
        .apply(&class_and_http_gateway(Some("app.a.example")))
        .await
        .unwrap();
    cluster
        .apply(&http_route(
            "default",
            "app",
            &["{name: web}"],
            &["app.a.example"],
            &rule_to(Some("/"), &[("echo", 1)]),
        ))
        .await
        .unwrap();
    envoy.wait_live(TIMEOUT).await.unwrap();
    let data_plane = hub.data_plane_addr();
    eventually(TIMEOUT, || async {
        let (status, body) =
            fleetgate_e2e::http::get(data_plane, "app.a.example", "/", &[]).await?;
        ensure!(status == 200 && body == "chart-app", "{status} {body:?}");
        Ok(())
    })
    .await;

    // It enrolled and keeps its identity in the Secret the chart's Role names, and the tenant
    // sees the hub's status: every write went through the chart's grants.
    let identity = Api::<Secret>::namespaced(admin.clone(), AGENT_NAMESPACE)
        .get("fleetgate-agent-identity")
        .await
        .expect("the identity Secret");
    assert!(identity.data.unwrap_or_default().contains_key("tls.crt"));
    eventually(TIMEOUT, || async {
        let gw = cluster
            .get_json("Gateway", "default", "web")
            .await?
            .context("Gateway missing")?;
        let programmed =
            fleetgate_e2e::fixtures::condition(&gw["status"]["conditions"], "Programmed")
                .context("no Programmed condition yet")?;
        ensure!(programmed["status"] == "True", "{programmed}");
        Ok(())
    })
    .await;
    // The probes' endpoints and the metrics answer, with the hub's verdicts counted.
    eventually(TIMEOUT, || async {
        let (status, body) = fleetgate_e2e::http::get(metrics, "agent", "/readyz", &[]).await?;
        ensure!(status == 200, "/readyz: {status} {body}");
        let (status, text) = fleetgate_e2e::http::get(metrics, "agent", "/metrics", &[]).await?;
        ensure!(status == 200, "/metrics: {status}");
        for want in [
            "fleetgate_agent_hub_connected 1",
            r#"fleetgate_agent_objects{kind="Gateway"} 1"#,
            r#"fleetgate_agent_objects{kind="HTTPRoute"} 1"#,
        ] {
            ensure!(text.contains(want), "no {want} in\n{text}");
        }
        ensure!(
            text.contains(r#"fleetgate_agent_updates_total{result="ack"}"#),
            "no Ack counted:\n{text}"
        );
        ensure!(
            !text.contains("app.a.example"),
            "a hostname in the metrics:\n{text}"
        );
        Ok(())
    })
    .await;
    let (status, _) = fleetgate_e2e::http::get(metrics, "agent", "/healthz", &[])
        .await
        .unwrap();
    assert_eq!(status, 200);

    let log = agent.log();
    for denied in ["forbidden", "does not allow"] {
        assert!(
            !log.to_lowercase().contains(denied),
            "the agent was denied something the chart should grant:\n{}",
            agent.log_tail(40)
        );
    }
}
