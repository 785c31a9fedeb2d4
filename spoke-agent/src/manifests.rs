//! Manifests: the same kinds as `watch` (GatewayClass, Gateway, HTTPRoute, Service,
//! EndpointSlice, Node, agentgateway's AgentgatewayBackend, fleetgate's VirtualKey, Ingress,
//! IngressClass, ...), read
//! from a folder of multi-document YAML files instead of a cluster. Of the Secrets, TLS ones are
//! read as certificates, and any Secret an AgentgatewayBackend or a VirtualKey names is read for
//! its key (the others are dropped once the whole folder is read).
//!
//! Where it sits: the first step of the data path in `--manifests` mode, publishing the same
//! [`ClusterState`] snapshots as `watch`. The folder (and its subfolders) is polled every 500 ms;
//! a file whose modification time or size changed is parsed again. A file that does not parse
//! is reported on stderr with its name and the reason and skipped; its last good contents are
//! kept. Objects without a namespace go to `default`; objects without a generation get 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::referencegrants::ReferenceGrant;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{debug, error, info};

use crate::claim::referenced_secrets;
use crate::crd::{AgentgatewayBackend, TcpRoute, UdpRoute, VirtualKey};
use crate::state::ClusterState;

/// How often the folder is scanned.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Why the manifests folder cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// The folder does not exist or cannot be listed.
    #[error("cannot read manifests folder {path}: {source}", path = .path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Parses one file: every document of a kind the agent reads, defaults applied; other kinds
/// are skipped. Any document that does not parse makes the whole file an error.
pub fn parse_file(text: &str) -> Result<ClusterState, String> {
    let mut out = ClusterState::default();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            serde_yaml::Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        add_value(value, &mut out).map_err(|e| format!("document {}: {e}", i + 1))?;
    }
    Ok(out)
}

fn add_value(value: serde_yaml::Value, out: &mut ClusterState) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let kind = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let gw_api = matches!(
        api_version.as_str(),
        "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1"
    );
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "List") => {
            let items = value
                .get("items")
                .and_then(|v| v.as_sequence())
                .cloned()
                .unwrap_or_default();
            for item in items {
                add_value(item, out)?;
            }
        }
        (_, "GatewayClass") if gw_api => {
            out.gateway_classes
                .push(typed(value, &kind, false, |o: &mut GatewayClass| {
                    &mut o.metadata
                })?)
        }
        (_, "Gateway") if gw_api => {
            out.gateways
                .push(typed(value, &kind, true, |o: &mut Gateway| {
                    &mut o.metadata
                })?)
        }
        (_, "HTTPRoute") if gw_api => {
            out.http_routes
                .push(typed(value, &kind, true, |o: &mut HttpRoute| {
                    &mut o.metadata
                })?)
        }
        (_, "ReferenceGrant") if gw_api => {
            out.reference_grants
                .push(typed(value, &kind, true, |o: &mut ReferenceGrant| {
                    &mut o.metadata
                })?)
        }
        ("gateway.networking.k8s.io/v1", "GRPCRoute") => {
            out.grpc_routes
                .push(typed(value, &kind, true, |o: &mut GrpcRoute| {
                    &mut o.metadata
                })?)
        }
        ("gateway.networking.k8s.io/v1", "BackendTLSPolicy") => {
            out.backend_tls_policies.push(typed(
                value,
                &kind,
                true,
                |o: &mut gateway_api::backendtlspolicies::BackendTlsPolicy| &mut o.metadata,
            )?)
        }
        ("gateway.networking.k8s.io/v1", "ListenerSet") => {
            out.listener_sets
                .push(typed(value, &kind, true, |o: &mut ListenerSet| {
                    &mut o.metadata
                })?)
        }
        ("gateway.networking.k8s.io/v1", "TLSRoute") => {
            out.tls_routes
                .push(typed(value, &kind, true, |o: &mut TlsRoute| {
                    &mut o.metadata
                })?)
        }
        ("v1", "Secret") => {
            // stringData folded into data, as the API server does. TLS Secrets are certificate
            // candidates; every Secret is an AI key candidate until the folder is read whole
            // ([`Folder::scan`] keeps only those an AgentgatewayBackend names).
            let mut secret: Secret = typed(value, &kind, true, |o: &mut Secret| &mut o.metadata)?;
            for (k, v) in secret.string_data.take().unwrap_or_default() {
                secret
                    .data
                    .get_or_insert_with(Default::default)
                    .insert(k, k8s_openapi::ByteString(v.into_bytes()));
            }
            if secret.type_.as_deref() == Some(crate::resolve::certificate::TLS_SECRET_TYPE) {
                out.secrets.push(secret.clone());
            }
            out.ai_secrets.push(secret);
        }
        ("fleetgate.dev/v1alpha1", "VirtualKey") => {
            out.virtual_keys
                .push(typed(value, &kind, true, |o: &mut VirtualKey| {
                    &mut o.metadata
                })?)
        }
        ("agentgateway.dev/v1alpha1", "AgentgatewayBackend") => {
            out.ai_backends
                .push(typed(value, &kind, true, |o: &mut AgentgatewayBackend| {
                    &mut o.metadata
                })?)
        }
        ("gateway.networking.k8s.io/v1", "TCPRoute") => {
            out.tcp_routes
                .push(typed(value, &kind, true, |o: &mut TcpRoute| {
                    &mut o.metadata
                })?)
        }
        ("gateway.networking.k8s.io/v1", "UDPRoute") => {
            out.udp_routes
                .push(typed(value, &kind, true, |o: &mut UdpRoute| {
                    &mut o.metadata
                })?)
        }
        ("v1", "Service") => out
            .services
            .push(typed(value, &kind, true, |o: &mut Service| {
                &mut o.metadata
            })?),
        ("v1", "Namespace") => {
            out.namespaces
                .push(typed(value, &kind, false, |o: &mut Namespace| {
                    &mut o.metadata
                })?)
        }
        ("v1", "Node") => out
            .nodes
            .push(typed(value, &kind, false, |o: &mut Node| &mut o.metadata)?),
        ("networking.k8s.io/v1", "Ingress") => {
            out.ingresses
                .push(typed(value, &kind, true, |o: &mut Ingress| {
                    &mut o.metadata
                })?)
        }
        ("networking.k8s.io/v1", "IngressClass") => {
            out.ingress_classes
                .push(typed(value, &kind, false, |o: &mut IngressClass| {
                    &mut o.metadata
                })?)
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            out.endpoint_slices
                .push(typed(value, &kind, true, |o: &mut EndpointSlice| {
                    &mut o.metadata
                })?)
        }
        ("", _) | (_, "") => return Err("apiVersion and kind are required".into()),
        _ => debug!(
            api_version,
            kind, "ignoring a manifest of a kind the agent does not read"
        ),
    }
    Ok(())
}

fn typed<K: DeserializeOwned>(
    value: serde_yaml::Value,
    kind: &str,
    namespaced: bool,
    meta: impl Fn(&mut K) -> &mut ObjectMeta,
) -> Result<K, String> {
    let mut obj: K = serde_yaml::from_value(value).map_err(|e| format!("{kind}: {e}"))?;
    let m = meta(&mut obj);
    let Some(name) = m.name.clone() else {
        return Err(format!("{kind} without metadata.name"));
    };
    if namespaced && m.namespace.is_none() {
        m.namespace = Some("default".to_string());
    }
    if !namespaced {
        m.namespace = None;
    }
    m.generation.get_or_insert(1);
    debug!(kind, name, "read manifest");
    Ok(obj)
}

/// One file as last seen: its change signature and its last good contents.
#[derive(Debug)]
struct FileEntry {
    signature: (SystemTime, u64),
    contents: ClusterState,
}

/// Files of `dir` (recursively) that may hold manifests, sorted.
fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The folder's state across scans.
#[derive(Debug, Default)]
pub struct Folder {
    files: BTreeMap<PathBuf, FileEntry>,
}

impl Folder {
    /// Re-reads changed files, forgets deleted ones and returns the combined snapshot.
    pub fn scan(&mut self, dir: &Path) -> Result<ClusterState, ManifestsError> {
        let paths = list_files(dir).map_err(|source| ManifestsError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        self.files.retain(|p, _| paths.contains(p));
        for path in paths {
            let Ok(md) = std::fs::metadata(&path) else {
                continue;
            };
            let signature = (md.modified().unwrap_or(SystemTime::UNIX_EPOCH), md.len());
            if self
                .files
                .get(&path)
                .is_some_and(|f| f.signature == signature)
            {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_file(&t));
            match parsed {
                Ok(contents) => {
                    info!(file = %path.display(), "read manifests");
                    self.files.insert(
                        path,
                        FileEntry {
                            signature,
                            contents,
                        },
                    );
                }
                Err(reason) => {
                    error!(file = %path.display(), "skipping manifest file {}: {reason} (its last good contents, if any, are kept)", path.display());
                    match self.files.get_mut(&path) {
                        Some(f) => f.signature = signature,
                        None => {
                            self.files.insert(
                                path,
                                FileEntry {
                                    signature,
                                    contents: ClusterState::default(),
                                },
                            );
                        }
                    }
                }
            }
        }
        let mut all = ClusterState::default();
        for f in self.files.values() {
            let c = f.contents.clone();
            all.gateway_classes.extend(c.gateway_classes);
            all.gateways.extend(c.gateways);
            all.http_routes.extend(c.http_routes);
            all.services.extend(c.services);
            all.endpoint_slices.extend(c.endpoint_slices);
            all.nodes.extend(c.nodes);
            all.secrets.extend(c.secrets);
            all.reference_grants.extend(c.reference_grants);
            all.tls_routes.extend(c.tls_routes);
            all.grpc_routes.extend(c.grpc_routes);
            all.listener_sets.extend(c.listener_sets);
            all.tcp_routes.extend(c.tcp_routes);
            all.udp_routes.extend(c.udp_routes);
            all.namespaces.extend(c.namespaces);
            all.ai_backends.extend(c.ai_backends);
            all.ai_secrets.extend(c.ai_secrets);
            all.virtual_keys.extend(c.virtual_keys);
            all.ingresses.extend(c.ingresses);
            all.ingress_classes.extend(c.ingress_classes);
        }
        keep_referenced_ai_secrets(&mut all);
        all.normalize();
        Ok(all)
    }
}

/// Drops the Secrets no AgentgatewayBackend or VirtualKey names from `state.ai_secrets`.
pub fn keep_referenced_ai_secrets(state: &mut ClusterState) {
    let wanted = referenced_secrets(&state.ai_backends, &state.virtual_keys);
    state.ai_secrets.retain(|s| {
        let m = &s.metadata;
        m.namespace
            .clone()
            .zip(m.name.clone())
            .is_some_and(|k| wanted.contains(&k))
    });
}

/// Checks that `dir` can be listed (called once before the agent starts).
pub fn check_folder(dir: &Path) -> Result<(), ManifestsError> {
    list_files(dir)
        .map(drop)
        .map_err(|source| ManifestsError::Folder {
            path: dir.to_path_buf(),
            source,
        })
}

/// Scans `dir` every [`POLL_INTERVAL`] and publishes snapshots until every receiver is gone;
/// `claimed_class_names` (`--gateway-class`) and `ingress_class_name` (`--ingress-class`) go
/// into every snapshot.
pub async fn run(
    dir: PathBuf,
    claimed_class_names: Vec<String>,
    ingress_class_name: String,
    tx: watch::Sender<ClusterState>,
) {
    let mut folder = Folder::default();
    let mut first = true;
    loop {
        let scanned = folder.scan(&dir).map(|mut s| {
            s.claimed_class_names = claimed_class_names.clone();
            s.ingress_class_name = ingress_class_name.clone();
            s.normalize();
            s
        });
        match scanned {
            Ok(next) if first => {
                tx.send_replace(next);
                first = false;
            }
            Ok(next) => {
                tx.send_if_modified(|cur| {
                    if *cur == next {
                        false
                    } else {
                        *cur = next;
                        true
                    }
                });
            }
            Err(e) => error!("{e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: fleetgate}
spec: {controllerName: fleetgate.dev/hub}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: fleetgate
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
# a comment-only document
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: app, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [127.0.1.10]}]
"#;

    /// `--manifests` reads Ingresses and IngressClasses like the cluster watch, and they are
    /// translated into a Gateway and an HTTPRoute.
    #[test]
    fn ingresses_are_read_and_translated() {
        let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: fleetgate, namespace: ignored}
spec: {controller: fleetgate.dev/hub}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: fleetgate
  rules:
  - host: shop.a.example
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"#;
        let mut s = parse_file(&format!("{GOOD}---{yaml}")).unwrap();
        s.ingress_class_name = "fleetgate".into();
        s.normalize();
        assert_eq!(s.ingress_classes[0].metadata.namespace, None);
        assert_eq!(
            s.ingresses[0].metadata.namespace.as_deref(),
            Some("default")
        );
        let refs: Vec<(i32, String)> = crate::run::intent_with(&s, crate::EndpointMode::Pod, false)
            .into_iter()
            .filter_map(|o| o.r#ref)
            .filter(|r| r.name.starts_with("shop."))
            .map(|r| (r.kind, r.name))
            .collect();
        use fleetgate_proto::spoke::v1::Kind;
        assert_eq!(
            refs,
            vec![
                (Kind::Gateway as i32, "shop.ingress".to_string()),
                (Kind::HttpRoute as i32, "shop.ingress.0".to_string()),
            ]
        );
    }

    #[test]
    fn parse_file_table() {
        let s = parse_file(GOOD).unwrap();
        assert_eq!(s.gateway_classes.len(), 1);
        assert_eq!(s.gateway_classes[0].metadata.namespace, None);
        assert_eq!(s.gateways[0].metadata.namespace.as_deref(), Some("default"));
        assert_eq!(s.gateways[0].metadata.generation, Some(1));
        assert_eq!(s.services[0].metadata.namespace.as_deref(), Some("app"));
        assert_eq!(s.endpoint_slices.len(), 1);
        assert!(s.http_routes.is_empty() && s.nodes.is_empty());

        let bad: &[(&str, &str)] = &[
            (
                "kind: Gateway\nmetadata: {name: x}\n",
                "apiVersion and kind are required",
            ),
            (
                "apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\n",
                "without metadata.name",
            ),
            (
                "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {listeners: 3}\n",
                "Gateway",
            ),
            ("a: [\n", "document 1"),
            (
                "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {}\n",
                "Node without metadata.name",
            ),
        ];
        for (text, want) in bad {
            let err = parse_file(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: n1}\n";
        assert_eq!(parse_file(list).unwrap().nodes.len(), 1);
    }

    #[test]
    fn ai_backends_are_read_with_the_secrets_they_name_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("llm.yaml"),
            r#"apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: local-llm}
spec:
  ai:
    provider:
      host: llama-cpp.llm.svc.cluster.local
      port: 8080
      openai: {model: gemma-4-12b-it}
  policies:
    auth:
      secretRef: {name: llm-secret}
"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("secrets.yaml"),
            r#"apiVersion: v1
kind: Secret
metadata: {name: llm-secret}
type: Opaque
stringData: {Authorization: Bearer sk-from-the-folder}
---
apiVersion: v1
kind: Secret
metadata: {name: db-password}
type: Opaque
stringData: {password: hunter2}
---
apiVersion: v1
kind: Secret
metadata: {name: llm-secret, namespace: other}
stringData: {Authorization: not-this-one}
"#,
        )
        .unwrap();
        let s = Folder::default().scan(dir.path()).unwrap();
        assert_eq!(s.ai_backends.len(), 1);
        assert_eq!(
            s.ai_backends[0].metadata.namespace.as_deref(),
            Some("default")
        );
        let names: Vec<_> = s
            .ai_secrets
            .iter()
            .map(|x| (x.metadata.namespace.clone(), x.metadata.name.clone()))
            .collect();
        assert_eq!(names, [(Some("default".into()), Some("llm-secret".into()))]);
        assert_eq!(
            s.ai_secrets[0].data.as_ref().unwrap()["Authorization"].0,
            b"Bearer sk-from-the-folder"
        );
        assert!(s.secrets.is_empty(), "Opaque Secrets are not certificates");
        assert!(!format!("{s:?}").contains("sk-from-the-folder"));
    }

    #[test]
    fn virtual_keys_are_read_with_the_secrets_they_name_and_no_other() {
        let text = r#"apiVersion: fleetgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: alice}
spec:
  secretRef: {name: alice-key}
  backends: [{name: local-llm}]
---
apiVersion: v1
kind: Secret
metadata: {name: alice-key}
type: Opaque
stringData: {key: vk-alice}
---
apiVersion: v1
kind: Secret
metadata: {name: db-password}
type: Opaque
stringData: {password: hunter2}
"#;
        let mut s = parse_file(text).unwrap();
        keep_referenced_ai_secrets(&mut s);
        assert_eq!(s.virtual_keys.len(), 1);
        assert_eq!(
            s.virtual_keys[0].metadata.namespace.as_deref(),
            Some("default")
        );
        let names: Vec<_> = s
            .ai_secrets
            .iter()
            .filter_map(|x| x.metadata.name.clone())
            .collect();
        assert_eq!(names, ["alice-key"]);
    }

    #[test]
    fn tls_secrets_grants_and_tls_routes_are_read_other_secrets_are_not() {
        let text = r#"apiVersion: v1
kind: Secret
metadata: {name: app-tls}
type: kubernetes.io/tls
stringData: {tls.crt: CRT, tls.key: KEY}
---
apiVersion: v1
kind: Secret
metadata: {name: db-password}
type: Opaque
stringData: {password: hunter2}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: pg}
spec:
  parentRefs: [{name: gw}]
  hostnames: [pg.a.example]
  rules: [{backendRefs: [{name: pg, port: 5432}]}]
"#;
        let mut s = parse_file(text).unwrap();
        keep_referenced_ai_secrets(&mut s);
        assert!(s.ai_secrets.is_empty(), "no AgentgatewayBackend names them");
        assert_eq!(s.secrets.len(), 1);
        let data = s.secrets[0].data.as_ref().unwrap();
        assert_eq!(data["tls.crt"].0, b"CRT");
        assert_eq!(data["tls.key"].0, b"KEY");
        assert_eq!(s.secrets[0].metadata.namespace.as_deref(), Some("default"));
        assert_eq!(s.reference_grants.len(), 1);
        assert_eq!(s.tls_routes.len(), 1);
        assert!(!format!("{s:?}").contains("KEY"));
    }

    #[test]
    fn listener_sets_are_read_with_the_default_namespace() {
        let text = r#"apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: extra}
spec:
  parentRef: {name: gw}
  listeners: [{name: alt, protocol: HTTP, port: 8080, hostname: alt.a.example}]
"#;
        let s = parse_file(text).unwrap();
        assert_eq!(s.listener_sets.len(), 1);
        let ls = &s.listener_sets[0];
        assert_eq!(ls.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(ls.spec.listeners[0].port, 8080);
        assert_eq!(
            crate::claim::listener_set_parent(ls),
            Some(("default".to_string(), "gw".to_string()))
        );
    }

    /// Every kind a file holds reaches the folder's snapshot (TCPRoutes, UDPRoutes and
    /// Namespaces were once read from files and then left out of it).
    #[test]
    fn the_folder_snapshot_has_every_kind_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("l4.yaml"),
            "apiVersion: gateway.networking.k8s.io/v1\nkind: TCPRoute\nmetadata: {name: db}\nspec: {rules: []}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: UDPRoute\nmetadata: {name: dns}\nspec: {rules: []}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {env: prod}}\n",
        )
        .unwrap();
        let s = Folder::default().scan(dir.path()).unwrap();
        assert_eq!(
            (s.tcp_routes.len(), s.udp_routes.len(), s.namespaces.len()),
            (1, 1, 1)
        );
    }

    #[test]
    fn folder_keeps_last_good_contents_of_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = Folder::default();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, GOOD).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml [").unwrap();
        assert_eq!(folder.scan(dir.path()).unwrap().gateways.len(), 1);

        // Broken edit (different size): skipped, last good kept.
        std::fs::write(&a, "apiVersion: v1\nkind: Service\nmetadata: [\n").unwrap();
        assert_eq!(folder.scan(dir.path()).unwrap().gateways.len(), 1);

        // A new broken file alone contributes nothing.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.yml"), "kind: [\n").unwrap();
        assert_eq!(folder.scan(dir.path()).unwrap().gateways.len(), 1);

        // Fixed: new contents replace the old.
        std::fs::write(&a, "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n").unwrap();
        let s = folder.scan(dir.path()).unwrap();
        assert_eq!((s.gateways.len(), s.nodes.len()), (0, 1));

        // Deleted: gone.
        std::fs::remove_file(&a).unwrap();
        assert_eq!(folder.scan(dir.path()).unwrap(), ClusterState::default());
        assert!(folder.scan(&dir.path().join("missing")).is_err());
    }
}
