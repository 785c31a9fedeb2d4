//! A tenant cluster: a real kube-apiserver (no kubelet, no controllers) on the test's shared
//! etcd, with the Gateway API CRDs and the CRDs of `deploy/crds/` (agentgateway's
//! AgentgatewayBackend) installed and fleetgate's agent RBAC applied.
//!
//! Each cluster gets its own `--etcd-prefix=/<name>`, its own CA, an admin user (CN=admin,
//! O=system:masters) the test drives in-process, and an agent user (CN=fleetgate-agent, no
//! groups) whose kubeconfig is what `fleetgate-agent --kubeconfig` receives. Without a kubelet
//! the test plays the node: it creates Node objects and binds backends on their InternalIP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

use crate::etcd::Etcd;
use crate::eventually::try_eventually;
use crate::kubeconfig::{self, Credentials};
use crate::pki::{Ca, Leaf};
use crate::ports::free_port;
use crate::process::Process;

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "e2e";

/// The namespace the agent's RBAC lives in.
pub const AGENT_NAMESPACE: &str = "fleetgate-system";

/// The user name in the agent's client certificate.
pub const AGENT_USER: &str = "fleetgate-agent";

/// Which of `deploy/`'s RBAC for TLS Secrets the agent user gets (besides
/// `deploy/agent-rbac.yaml`, always applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRbac {
    /// `deploy/agent-rbac.yaml` and `deploy/agent-rbac-secrets-cluster.yaml`: list/watch Secrets
    /// cluster-wide, for agents started with the built-in `--secrets cluster` (most tests).
    ClusterWide,
    /// `deploy/agent-rbac.yaml` only, as shipped: list/watch Secrets in `default` only.
    DeployDefault,
}

/// A running tenant API server.
pub struct TenantCluster {
    name: String,
    server: String,
    admin: kube::Client,
    admin_kubeconfig: PathBuf,
    agent_kubeconfig: PathBuf,
    process: Process,
    _cert_dir: tempfile::TempDir,
}

impl std::fmt::Debug for TenantCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantCluster")
            .field("name", &self.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl TenantCluster {
    /// Starts the API server, waits for `/readyz`, installs the Gateway API CRDs, the CRDs of
    /// `deploy/crds/` and the agent RBAC (`deploy/agent-rbac.yaml`, when it exists, with the
    /// cluster-wide Secret variant).
    pub async fn start(name: &str, etcd: &Etcd) -> anyhow::Result<Self> {
        Self::start_with_rbac(name, etcd, SecretRbac::ClusterWide).await
    }

    /// Like [`TenantCluster::start`], with `secrets` deciding which Secret RBAC the agent gets.
    pub async fn start_with_rbac(
        name: &str,
        etcd: &Etcd,
        secrets: SecretRbac,
    ) -> anyhow::Result<Self> {
        let cluster = Self::start_bare(name, etcd).await?;
        cluster.install_gateway_api_crds().await?;
        cluster.install_deploy_crds().await?;
        if cluster.install_agent_rbac().await? && secrets == SecretRbac::ClusterWide {
            cluster
                .apply_repo_file("deploy/agent-rbac-secrets-cluster.yaml")
                .await?;
        }
        Ok(cluster)
    }

    /// Applies a file of the repository, if it exists; returns whether it did.
    pub async fn apply_repo_file(&self, file: &str) -> anyhow::Result<bool> {
        let Some(path) = crate::components::repo_file(file) else {
            return Ok(false);
        };
        self.apply(&crate::components::read(&path)?)
            .await
            .with_context(|| format!("applying {}", path.display()))?;
        Ok(true)
    }

    /// Starts the API server and waits for `/readyz` and the `default` namespace; nothing
    /// installed.
    pub async fn start_bare(name: &str, etcd: &Etcd) -> anyhow::Result<Self> {
        let dir = etcd.dir().clone();
        let files = dir.subdir(&format!("{name}-pki"))?;
        let cert_dir = tempfile::Builder::new()
            .prefix("fleetgate-kas-")
            .tempdir()
            .context("creating apiserver cert dir")?;

        let ca = Ca::new(&format!("{name}-ca"))?;
        let ca_cert = files.join("ca.crt");
        ca.write_cert(&ca_cert)?;
        let (serving_crt, serving_key) = ca
            .issue(&Leaf::server(
                "kube-apiserver",
                &[
                    "127.0.0.1",
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                ],
            ))?
            .write(&files, "apiserver")?;
        let (admin_crt, admin_key) = ca
            .issue(&Leaf::client("admin", &["system:masters"]))?
            .write(&files, "admin")?;
        let (agent_crt, agent_key) = ca
            .issue(&Leaf::client(AGENT_USER, &[]))?
            .write(&files, "agent")?;
        let (sa_private, sa_public) = crate::pki::key_pair_pem()?;
        let sa_key = files.join("service-account.key");
        let sa_pub = files.join("service-account.pub");
        std::fs::write(&sa_key, sa_private)?;
        std::fs::write(&sa_pub, sa_public)?;

        // A free port can be taken by another test between the pick and the server's bind.
        for attempt in 1.. {
            let port = free_port()?;
            let server = format!("https://127.0.0.1:{port}");
            let admin_kubeconfig = dir.write(
                &format!("{name}-admin.kubeconfig"),
                kubeconfig::render(
                    name,
                    &server,
                    "admin",
                    &Credentials {
                        ca_cert: ca_cert.clone(),
                        client_cert: admin_crt.clone(),
                        client_key: admin_key.clone(),
                    },
                ),
            )?;
            let agent_kubeconfig = dir.write(
                &format!("{name}-agent.kubeconfig"),
                kubeconfig::render(
                    name,
                    &server,
                    AGENT_USER,
                    &Credentials {
                        ca_cert: ca_cert.clone(),
                        client_cert: agent_crt.clone(),
                        client_key: agent_key.clone(),
                    },
                ),
            )?;

            let p = |p: &Path| p.display().to_string();
            let args = vec![
                format!("--etcd-servers={}", etcd.url()),
                format!("--etcd-prefix=/{name}"),
                format!("--cert-dir={}", cert_dir.path().display()),
                format!("--tls-cert-file={}", p(&serving_crt)),
                format!("--tls-private-key-file={}", p(&serving_key)),
                format!("--client-ca-file={}", p(&ca_cert)),
                format!("--secure-port={port}"),
                "--bind-address=127.0.0.1".to_string(),
                "--advertise-address=127.0.0.1".to_string(),
                "--service-cluster-ip-range=10.0.0.0/16".to_string(),
                "--authorization-mode=RBAC".to_string(),
                "--disable-admission-plugins=ServiceAccount".to_string(),
                format!("--service-account-issuer={server}"),
                format!("--service-account-key-file={}", p(&sa_pub)),
                format!("--service-account-signing-key-file={}", p(&sa_key)),
                "--allow-privileged=true".to_string(),
                // Fewer moving parts on a two-core machine.
                "--enable-priority-and-fairness=false".to_string(),
                "--endpoint-reconciler-type=none".to_string(),
                "--v=1".to_string(),
            ];
            let mut process = Process::spawn(
                &dir,
                &format!("kube-apiserver-{name}"),
                crate::components::kube_apiserver()?,
                args,
            )?;
            let admin = kubeconfig::client(&admin_kubeconfig).await?;
            let ready = try_eventually(Duration::from_secs(90), || {
                let running = process.ensure_running();
                let admin = admin.clone();
                async move {
                    running?;
                    let req = hyper::Request::get("/readyz").body(Vec::new())?;
                    let body = admin.request_text(req).await.context("GET /readyz")?;
                    anyhow::ensure!(body.trim() == "ok", "/readyz: {body}");
                    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin);
                    ns.get("default")
                        .await
                        .context("namespace default not there yet")?;
                    Ok(())
                }
            })
            .await;
            if let Err(e) = ready {
                // The port was free when picked and taken by another test's process before the
                // server bound it: start again on another port.
                if attempt < 3 && process.log().contains("address already in use") {
                    eprintln!(
                        "kube-apiserver {name}: port {port} was taken before it bound; retrying on another"
                    );
                    continue;
                }
                bail!(
                    "kube-apiserver {name} did not become ready: {e:#}\nlast log lines:\n{}",
                    process.log_tail(30)
                );
            }
            return Ok(Self {
                name: name.to_string(),
                server,
                admin,
                admin_kubeconfig,
                agent_kubeconfig,
                process,
                _cert_dir: cert_dir,
            });
        }
        unreachable!("the loop returns or bails")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The in-process admin client (system:masters).
    pub fn admin(&self) -> kube::Client {
        self.admin.clone()
    }

    /// The admin kubeconfig file (handy with kubectl when a test failed).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The agent's kubeconfig file, for `fleetgate-agent --kubeconfig`.
    pub fn agent_kubeconfig(&self) -> &Path {
        &self.agent_kubeconfig
    }

    /// A client acting as the agent user.
    pub async fn agent_client(&self) -> anyhow::Result<kube::Client> {
        kubeconfig::client(&self.agent_kubeconfig).await
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Installs every `CustomResourceDefinition` in `FLEETGATE_GATEWAY_CRDS` and waits until
    /// each is Established and served.
    pub async fn install_gateway_api_crds(&self) -> anyhow::Result<()> {
        let dir = crate::components::gateway_crds()?;
        let probe = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
        self.install_crds_of(&dir, &probe)
            .await
            .context("waiting for the Gateway API CRDs")
    }

    /// Installs the CRDs of `deploy/crds/` (agentgateway.dev's AgentgatewayBackend, fleetgate.dev's
    /// VirtualKey), as an operator installs them into a tenant cluster, and waits until they are
    /// served.
    pub async fn install_deploy_crds(&self) -> anyhow::Result<()> {
        let dir = crate::components::workspace_dir().join("deploy/crds");
        let probe = GroupVersionKind::gvk("agentgateway.dev", "v1alpha1", "AgentgatewayBackend");
        self.install_crds_of(&dir, &probe)
            .await
            .context("waiting for the CRDs of deploy/crds")
    }

    /// Server-side applies every CRD of the `*.yaml` files of `dir` and waits until each is
    /// Established and `probe` is in discovery.
    async fn install_crds_of(&self, dir: &Path, probe: &GroupVersionKind) -> anyhow::Result<()> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let api: Api<CustomResourceDefinition> = Api::all(self.admin.clone());
        let mut names = Vec::new();
        for file in files {
            let text = crate::components::read(&file)?;
            for doc in yaml_documents(&text)
                .with_context(|| format!("parsing {}", file.display()))?
                .into_iter()
                .filter(|d| d["kind"] == "CustomResourceDefinition")
            {
                let crd: CustomResourceDefinition = serde_json::from_value(doc)
                    .with_context(|| format!("a CRD in {}", file.display()))?;
                let name = crd.metadata.name.clone().context("CRD without a name")?;
                api.patch(&name, &ssa(), &Patch::Apply(&crd))
                    .await
                    .with_context(|| format!("applying CRD {name}"))?;
                names.push(name);
            }
        }
        anyhow::ensure!(!names.is_empty(), "no CRDs found in {}", dir.display());
        try_eventually(Duration::from_secs(60), || {
            let api = api.clone();
            let names = names.clone();
            let admin = self.admin.clone();
            async move {
                for name in &names {
                    let crd = api.get(name).await?;
                    let established = crd
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c.type_ == "Established" && c.status == "True")
                        });
                    anyhow::ensure!(established, "CRD {name} not Established yet");
                }
                // Established is not yet "in discovery": apply() needs the latter.
                kube::discovery::pinned_kind(&admin, probe)
                    .await
                    .with_context(|| format!("{} not in discovery yet", probe.kind))?;
                Ok(())
            }
        })
        .await
    }

    /// Creates the `fleetgate-system` namespace and applies `deploy/agent-rbac.yaml` if the file
    /// exists; returns whether it did.
    pub async fn install_agent_rbac(&self) -> anyhow::Result<bool> {
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {AGENT_NAMESPACE}\n"
        ))
        .await?;
        self.apply_repo_file("deploy/agent-rbac.yaml").await
    }

    /// Server-side applies every document of a multi-document YAML (field manager `e2e`,
    /// forced); namespaced objects without a namespace go to `default`.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<Vec<DynamicObject>> {
        self.apply_each(yaml, &ssa(), true)
            .await?
            .into_iter()
            .map(|(what, r)| r.with_context(|| format!("applying {what}")))
            .collect()
    }

    /// Server-side applies every document as a dry run with strict field validation: the API
    /// server checks each object against its schema (an unknown or misspelt field fails) and
    /// admission, and stores nothing. Returns every failure, one line per object.
    pub async fn dry_run_apply(&self, yaml: &str) -> anyhow::Result<()> {
        let params = PatchParams {
            dry_run: true,
            field_validation: Some(kube::api::ValidationDirective::Strict),
            ..ssa()
        };
        let failures: Vec<String> = self
            .apply_each(yaml, &params, false)
            .await?
            .into_iter()
            .filter_map(|(what, r)| r.err().map(|e| format!("{what}: {e}")))
            .collect();
        anyhow::ensure!(failures.is_empty(), "{}", failures.join("\n"));
        Ok(())
    }

    /// Applies every document with `params` (with `stop_at_error`, none after the first the API
    /// server refuses), each answer with `Kind name`; fails only when a document is not an
    /// object or its kind is not served.
    async fn apply_each(
        &self,
        yaml: &str,
        params: &PatchParams,
        stop_at_error: bool,
    ) -> anyhow::Result<Vec<(String, Result<DynamicObject, kube::Error>)>> {
        let mut out = Vec::new();
        for doc in yaml_documents(yaml)? {
            let obj: DynamicObject =
                serde_json::from_value(doc.clone()).context("not a Kubernetes object")?;
            let types = obj
                .types
                .clone()
                .context("object without apiVersion/kind")?;
            let name = obj.metadata.name.clone().context("object without a name")?;
            let gvk = GroupVersionKind::try_from(&types)?;
            let (api, _) = self
                .api_for(&gvk, obj.metadata.namespace.as_deref())
                .await
                .with_context(|| format!("{} {name}: kind not served", types.kind))?;
            let answer = api.patch(&name, params, &Patch::Apply(&doc)).await;
            let refused = answer.is_err();
            out.push((format!("{} {name}", types.kind), answer));
            if refused && stop_at_error {
                break;
            }
        }
        Ok(out)
    }

    /// Server-side applies the `status` of every document (for kinds whose status is a
    /// subresource, e.g. Node addresses).
    pub async fn apply_status(&self, yaml: &str) -> anyhow::Result<()> {
        for doc in yaml_documents(yaml)? {
            let obj: DynamicObject = serde_json::from_value(doc.clone())?;
            let types = obj
                .types
                .clone()
                .context("object without apiVersion/kind")?;
            let name = obj.metadata.name.clone().context("object without a name")?;
            let gvk = GroupVersionKind::try_from(&types)?;
            let (api, _) = self
                .api_for(&gvk, obj.metadata.namespace.as_deref())
                .await?;
            api.patch_status(&name, &ssa(), &Patch::Apply(&doc))
                .await
                .with_context(|| format!("applying status of {} {name}", types.kind))?;
        }
        Ok(())
    }

    /// Deletes an object; `namespace` is ignored for cluster-scoped kinds. Missing is fine.
    pub async fn delete(&self, kind: &str, namespace: &str, name: &str) -> anyhow::Result<()> {
        let gvk = self.resolve_kind(kind).await?;
        let (api, _) = self.api_for(&gvk, Some(namespace)).await?;
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting {kind} {namespace}/{name}")),
        }
    }

    /// An object as JSON, or `None` if it does not exist.
    pub async fn get_json(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        let gvk = self.resolve_kind(kind).await?;
        let (api, _) = self.api_for(&gvk, Some(namespace)).await?;
        let obj = api
            .get_opt(name)
            .await
            .with_context(|| format!("getting {kind} {namespace}/{name}"))?;
        Ok(obj.map(|o| serde_json::to_value(o).expect("objects serialize")))
    }

    /// Creates (or updates) a Node whose status has `internal_ip` as InternalIP and Ready=True,
    /// the way a kubelet would report it.
    pub async fn create_node(&self, name: &str, internal_ip: &str) -> anyhow::Result<()> {
        self.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n"
        ))
        .await?;
        let status = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": internal_ip},
                    {"type": "Hostname", "address": name},
                ],
                "conditions": [{
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "node played by the e2e harness",
                    "lastHeartbeatTime": now_rfc3339(),
                    "lastTransitionTime": now_rfc3339(),
                }],
            },
        });
        let nodes: Api<Node> = Api::all(self.admin.clone());
        nodes
            .patch_status(name, &ssa(), &Patch::Apply(&status))
            .await
            .with_context(|| format!("setting status of Node {name}"))?;
        Ok(())
    }

    /// Creates (or updates) an EndpointSlice for `service` in `namespace` with ready
    /// `addresses` on one TCP `port` named `port_name` (empty: unnamed). The API server refuses
    /// loopback addresses here (CVE-2021-25737), unlike in Node status.
    pub async fn create_endpoint_slice(
        &self,
        namespace: &str,
        service: &str,
        port_name: &str,
        port: u16,
        addresses: &[&str],
    ) -> anyhow::Result<()> {
        let endpoints: Vec<Value> = addresses
            .iter()
            .map(|a| serde_json::json!({"addresses": [a], "conditions": {"ready": true}}))
            .collect();
        let slice = serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{service}-e2e"),
                "namespace": namespace,
                "labels": {
                    "kubernetes.io/service-name": service,
                    "endpointslice.kubernetes.io/managed-by": "e2e.fleetgate.dev",
                },
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        });
        self.apply(&serde_json::to_string(&slice)?).await?;
        Ok(())
    }

    /// Maps a kind name to its group/version: well-known kinds from a table, others through
    /// full discovery.
    async fn resolve_kind(&self, kind: &str) -> anyhow::Result<GroupVersionKind> {
        if let Some((group, version)) = well_known_kind(kind) {
            return Ok(GroupVersionKind::gvk(group, version, kind));
        }
        let discovery = kube::Discovery::new(self.admin.clone())
            .run()
            .await
            .context("running discovery")?;
        for group in discovery.groups() {
            for (ar, _) in group.recommended_resources() {
                if ar.kind == kind {
                    return Ok(GroupVersionKind::gvk(&ar.group, &ar.version, &ar.kind));
                }
            }
        }
        bail!("kind {kind} is not served by {}", self.name)
    }

    async fn api_for(
        &self,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
    ) -> anyhow::Result<(Api<DynamicObject>, ApiCapabilities)> {
        let (ar, caps): (ApiResource, ApiCapabilities) =
            kube::discovery::pinned_kind(&self.admin, gvk)
                .await
                .with_context(|| {
                    format!("discovering {}/{} {}", gvk.group, gvk.version, gvk.kind)
                })?;
        let api = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                self.admin.clone(),
                namespace.filter(|n| !n.is_empty()).unwrap_or("default"),
                &ar,
            ),
            Scope::Cluster => Api::all_with(self.admin.clone(), &ar),
        };
        Ok((api, caps))
    }
}

fn ssa() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Group and version of the kinds tests use most, so `delete`/`get_json` need no discovery.
fn well_known_kind(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Gateway" | "GatewayClass" | "HTTPRoute" | "GRPCRoute" | "ReferenceGrant"
        | "ListenerSet" | "TLSRoute" | "BackendTLSPolicy" => ("gateway.networking.k8s.io", "v1"),
        "Service" | "Node" | "Namespace" | "ConfigMap" | "Secret" | "Pod" | "ServiceAccount" => {
            ("", "v1")
        }
        "EndpointSlice" => ("discovery.k8s.io", "v1"),
        "Ingress" | "IngressClass" => ("networking.k8s.io", "v1"),
        "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding" => {
            ("rbac.authorization.k8s.io", "v1")
        }
        "CustomResourceDefinition" => ("apiextensions.k8s.io", "v1"),
        "AgentgatewayBackend" => ("agentgateway.dev", "v1alpha1"),
        "VirtualKey" => ("fleetgate.dev", "v1alpha1"),
        _ => return None,
    })
}

/// The non-empty documents of a multi-document YAML, as JSON values.
pub fn yaml_documents(yaml: &str) -> anyhow::Result<Vec<Value>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(yaml) {
        let v = Value::deserialize(de).context("invalid YAML document")?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_skips_empty_documents() {
        let docs = yaml_documents(
            "---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\nkind: Node\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["name"], "a");
        assert_eq!(docs[1]["kind"], "Node");
    }

    #[test]
    fn well_known_kinds_map_to_their_groups() {
        for (kind, want) in [
            ("HTTPRoute", Some(("gateway.networking.k8s.io", "v1"))),
            ("Service", Some(("", "v1"))),
            ("EndpointSlice", Some(("discovery.k8s.io", "v1"))),
            (
                "AgentgatewayBackend",
                Some(("agentgateway.dev", "v1alpha1")),
            ),
            ("Widget", None),
        ] {
            assert_eq!(well_known_kind(kind), want, "{kind}");
        }
    }
}
