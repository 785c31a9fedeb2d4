//! Status: writes the hub's statuses onto the tenant's objects.
//!
//! Where it sits: the end of the data path (hub -> agent -> tenant cluster). [`build`] decides
//! (purely) what each object's status should be and which objects need a write; [`run_writer`]
//! re-plans whenever the cluster snapshot or the hub's Status changes (and every 30 s, to retry
//! failed writes) and hands the writes to a [`Sink`]: server-side apply of the `/status`
//! subresource (field manager `fleetgate-agent`, force) for a cluster, one log line per object
//! change for a manifests folder. LoadBalancer Services get `status.loadBalancer` and
//! `status.conditions` ([`service`]); one that got no address is also logged as a warning.

pub mod backend_tls;
pub mod build;
pub mod features;
pub mod ingress;
pub mod mcp_pins;
pub mod service;

use std::collections::BTreeMap;
use std::time::Duration;

use fleetgate_proto::spoke::v1::Status;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::FIELD_MANAGER;
use crate::crd::{AgentgatewayBackend, TcpRoute, UdpRoute, VirtualKey};
use crate::state::ClusterState;
pub use build::{StatusWrite, plan};

/// Where statuses go.
pub enum Sink {
    /// Server-side apply on the tenant cluster.
    Kube(Client),
    /// Manifests mode: one log line per object whose status changed.
    Log { last: BTreeMap<String, String> },
}

/// A status write the API server refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot write status of {object}: {source}")]
pub struct StatusError {
    /// `Kind namespace/name` of the object.
    pub object: String,
    /// The API error.
    pub source: kube::Error,
}

impl Sink {
    /// A sink for manifests mode.
    pub fn log() -> Self {
        Self::Log {
            last: BTreeMap::new(),
        }
    }

    async fn write(&mut self, w: StatusWrite) -> Result<(), StatusError> {
        match self {
            Self::Log { last } => {
                let object = w.object();
                let line = build::summary(&w);
                if last.get(&object) != Some(&line) {
                    info!(target: "fleetgate_agent::status", "status {object}: {line}");
                    last.insert(object, line);
                }
                Ok(())
            }
            Self::Kube(client) => {
                let object = w.object();
                if let StatusWrite::Service {
                    namespace,
                    name,
                    status,
                } = &w
                    && let Some(why) = service::not_programmed(status)
                {
                    warn!("Service {namespace}/{name} has no load balancer address: {why}");
                    if let Some(event) = service::warning_event(namespace, name, status) {
                        // Best effort: the status condition is the record; the Event
                        // makes it visible in `kubectl describe service`.
                        if let Err(e) = Api::<Event>::namespaced(client.clone(), namespace)
                            .create(&PostParams::default(), &event)
                            .await
                        {
                            warn!("cannot create an Event for Service {namespace}/{name}: {e}");
                        }
                    }
                }
                if let StatusWrite::AiBackend {
                    namespace,
                    name,
                    status,
                } = &w
                    && let Some(event) = mcp_pins::withheld_event(namespace, name, status)
                {
                    // Best effort, as for Services: the condition is the record.
                    if let Err(e) = Api::<Event>::namespaced(client.clone(), namespace)
                        .create(&PostParams::default(), &event)
                        .await
                    {
                        warn!(
                            "cannot create an Event for AgentgatewayBackend {namespace}/{name}: {e}"
                        );
                    }
                }
                let res = apply_status(client, &w).await;
                res.map_err(|source| StatusError {
                    object: object.clone(),
                    source,
                })?;
                info!("wrote status of {object}");
                Ok(())
            }
        }
    }
}

/// The object a write goes to (its API resource, namespace and name) and the `status` it sets.
fn target(w: &StatusWrite) -> (ApiResource, Option<&str>, &str, serde_json::Value) {
    fn of<K: Resource<DynamicType = ()>>() -> ApiResource {
        ApiResource::erase::<K>(&())
    }
    match w {
        StatusWrite::GatewayClass { name, status } => (
            of::<GatewayClass>(),
            None,
            name,
            json!({
                "conditions": status.conditions,
                "supportedFeatures": status.supported_features,
            }),
        ),
        StatusWrite::Gateway {
            namespace,
            name,
            status,
        } => {
            let mut body = json!({
                "conditions": status.conditions,
                "addresses": status.addresses,
                "listeners": status.listeners,
            });
            if let Some(n) = status.attached_listener_sets {
                body["attachedListenerSets"] = json!(n);
            }
            (of::<Gateway>(), Some(namespace), name, body)
        }
        StatusWrite::L4Route {
            kind,
            namespace,
            name,
            status,
        } => {
            let resource = if *kind == fleetgate_proto::spoke::v1::Kind::UdpRoute {
                of::<UdpRoute>()
            } else {
                of::<TcpRoute>()
            };
            let body = json!({"parents": status.parents});
            (resource, Some(namespace), name, body)
        }
        StatusWrite::Service {
            namespace,
            name,
            status,
        } => (
            of::<Service>(),
            Some(namespace),
            name,
            json!({
                "conditions": status.conditions,
                "loadBalancer": status.load_balancer,
            }),
        ),
        StatusWrite::ListenerSet {
            namespace,
            name,
            status,
        } => (
            of::<ListenerSet>(),
            Some(namespace),
            name,
            json!({
                "conditions": status.conditions,
                "listeners": status.listeners,
            }),
        ),
        StatusWrite::HttpRoute {
            namespace,
            name,
            status,
        } => (
            of::<HttpRoute>(),
            Some(namespace),
            name,
            json!({"parents": status.parents}),
        ),
        StatusWrite::TlsRoute {
            namespace,
            name,
            status,
        } => (
            of::<TlsRoute>(),
            Some(namespace),
            name,
            json!({"parents": status.parents}),
        ),
        StatusWrite::GrpcRoute {
            namespace,
            name,
            status,
        } => (
            of::<GrpcRoute>(),
            Some(namespace),
            name,
            json!({"parents": status.parents}),
        ),
        StatusWrite::AiBackend {
            namespace,
            name,
            status,
        } => (
            of::<AgentgatewayBackend>(),
            Some(namespace),
            name,
            json!({"conditions": status.conditions}),
        ),
        StatusWrite::VirtualKey {
            namespace,
            name,
            status,
        } => (
            of::<VirtualKey>(),
            Some(namespace),
            name,
            json!({"conditions": status.conditions}),
        ),
        StatusWrite::BackendTlsPolicy {
            namespace,
            name,
            status,
        } => (
            of::<gateway_api::backendtlspolicies::BackendTlsPolicy>(),
            Some(namespace),
            name,
            json!({"ancestors": status.ancestors}),
        ),
    }
}

/// The server-side apply body of a write: apiVersion, kind, name (and namespace) and `status`.
fn apply_body(w: &StatusWrite) -> (ApiResource, Option<&str>, &str, serde_json::Value) {
    let (resource, namespace, name, status) = target(w);
    let mut metadata = json!({"name": name});
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    let body = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "status": status,
    });
    (resource, namespace, name, body)
}

/// One status write: server-side apply of the `/status` subresource, field manager
/// [`FIELD_MANAGER`], forced.
async fn apply_status(client: &Client, w: &StatusWrite) -> Result<(), kube::Error> {
    let (resource, namespace, name, body) = apply_body(w);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &pp, &Patch::Apply(body))
        .await
        .map(drop)
}

/// The `agent.status.write` span of `writes` status writes, in the trace of the hub's change
/// whose first Status they come from (docs/operations.md, "Traces"; a malformed context starts
/// a fresh trace). Nothing when traces are off.
fn write_span(traceparent: &str, writes: usize) -> fleetgate_observe::trace::Span {
    use fleetgate_observe::trace::{self, Attribute, Kind, Start};
    if !trace::enabled() {
        return trace::Span::default();
    }
    let parent = trace::parse_traceparent(traceparent);
    trace::span(
        "agent.status.write",
        Kind::Internal,
        Start {
            parent: parent.as_ref(),
            ..Default::default()
        },
        || vec![Attribute::new("fleetgate.writes", writes as i64)],
    )
}

/// Keeps the tenant's objects' status in line with the hub's, until the state channel closes.
pub async fn run_writer(
    mut state: watch::Receiver<ClusterState>,
    mut hub: watch::Receiver<Option<Status>>,
    mut sink: Sink,
) {
    let mut resync = tokio::time::interval(Duration::from_secs(30));
    // The hub's trace context of the last change it acknowledged (`Status.traceparent`), until
    // a status write joins it: the first Status after an Ack may come before the compile that
    // changes any status.
    let (mut seen, mut pending) = (String::new(), None::<String>);
    loop {
        let (writes, traceparent) = {
            let st = state.borrow_and_update();
            let hs = hub.borrow_and_update();
            let traceparent = hs.as_ref().map(|s| s.traceparent.clone());
            (
                plan(&st, hs.as_ref(), &build::now_seconds()),
                traceparent.unwrap_or_default(),
            )
        };
        if !traceparent.is_empty() && traceparent != seen {
            seen = traceparent.clone();
            pending = Some(traceparent);
        }
        let mut span = match pending.take_if(|_| !writes.is_empty()) {
            Some(tp) => write_span(&tp, writes.len()),
            None => fleetgate_observe::trace::Span::default(),
        };
        for w in writes {
            if let Err(e) = sink.write(w).await {
                span.fail(&e.to_string());
                warn!("{e}");
            }
        }
        span.end();
        tokio::select! {
            r = state.changed() => if r.is_err() { return },
            r = hub.changed() => if r.is_err() { return },
            _ = resync.tick() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use fleetgate_proto::spoke::v1::Kind;

    use super::*;

    /// Every kind's write goes to its own resource with the apiVersion and kind it had when each
    /// kind had its own copy of the write.
    #[test]
    fn every_write_targets_its_resource() {
        let (ns, name) = ("app".to_string(), "x".to_string());
        let route = || gateway_api::httproutes::HttpRouteStatus { parents: vec![] };
        let cases = [
            (
                StatusWrite::GatewayClass {
                    name: name.clone(),
                    status: Default::default(),
                },
                (
                    "gateway.networking.k8s.io/v1",
                    "GatewayClass",
                    "gatewayclasses",
                ),
            ),
            (
                StatusWrite::Gateway {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: Default::default(),
                },
                ("gateway.networking.k8s.io/v1", "Gateway", "gateways"),
            ),
            (
                StatusWrite::HttpRoute {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: route(),
                },
                ("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
            ),
            (
                StatusWrite::TlsRoute {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: route(),
                },
                ("gateway.networking.k8s.io/v1", "TLSRoute", "tlsroutes"),
            ),
            (
                StatusWrite::GrpcRoute {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: route(),
                },
                ("gateway.networking.k8s.io/v1", "GRPCRoute", "grpcroutes"),
            ),
            (
                StatusWrite::L4Route {
                    kind: Kind::TcpRoute,
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: route(),
                },
                ("gateway.networking.k8s.io/v1", "TCPRoute", "tcproutes"),
            ),
            (
                StatusWrite::L4Route {
                    kind: Kind::UdpRoute,
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: route(),
                },
                ("gateway.networking.k8s.io/v1", "UDPRoute", "udproutes"),
            ),
            (
                StatusWrite::ListenerSet {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: Default::default(),
                },
                (
                    "gateway.networking.k8s.io/v1",
                    "ListenerSet",
                    "listenersets",
                ),
            ),
            (
                StatusWrite::Service {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: Default::default(),
                },
                ("v1", "Service", "services"),
            ),
            (
                StatusWrite::AiBackend {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: Default::default(),
                },
                (
                    "agentgateway.dev/v1alpha1",
                    "AgentgatewayBackend",
                    "agentgatewaybackends",
                ),
            ),
            (
                StatusWrite::VirtualKey {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: Default::default(),
                },
                ("fleetgate.dev/v1alpha1", "VirtualKey", "virtualkeys"),
            ),
            (
                StatusWrite::BackendTlsPolicy {
                    namespace: ns.clone(),
                    name: name.clone(),
                    status: Default::default(),
                },
                (
                    "gateway.networking.k8s.io/v1",
                    "BackendTLSPolicy",
                    "backendtlspolicies",
                ),
            ),
        ];
        for (w, (api_version, kind, plural)) in cases {
            let (resource, namespace, n, body) = apply_body(&w);
            assert_eq!(resource.plural, plural, "{kind}");
            assert_eq!(body["apiVersion"], api_version, "{kind}");
            assert_eq!(body["kind"], kind, "{kind}");
            assert_eq!(body["metadata"]["name"], "x", "{kind}");
            assert_eq!(n, "x");
            if kind == "GatewayClass" {
                assert_eq!(namespace, None);
                assert!(body["metadata"].get("namespace").is_none());
            } else {
                assert_eq!(namespace, Some("app"), "{kind}");
                assert_eq!(body["metadata"]["namespace"], "app", "{kind}");
            }
            assert!(body["status"].is_object(), "{kind}");
        }
    }
}
