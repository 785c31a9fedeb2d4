//! Status: writes the hub's statuses onto the tenant's objects.
//!
//! Where it sits: the end of the data path (hub -> agent -> tenant cluster). [`build`] decides
//! (purely) what each object's status should be and which objects need a write; [`run_writer`]
//! re-plans whenever the cluster snapshot or the hub's Status changes (and every 30 s, to retry
//! failed writes) and hands the writes to a [`Sink`]: server-side apply of the `/status`
//! subresource (field manager `fleetgate-agent`, force) for a cluster, one log line per object
//! change for a manifests folder. LoadBalancer Services get `status.loadBalancer` and
//! `status.conditions` ([`service`]); one that got no address is also logged as a warning.

pub mod build;
pub mod features;
pub mod service;

use std::collections::BTreeMap;
use std::time::Duration;

use fleetgate_proto::spoke::v1::Status;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Event, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::FIELD_MANAGER;
use crate::crd::{TcpRoute, UdpRoute};
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
                let pp = PatchParams::apply(FIELD_MANAGER).force();
                let res = match &w {
                    StatusWrite::GatewayClass { name, status } => {
                        let body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                            "metadata": {"name": name},
                            "status": {
                                "conditions": status.conditions,
                                "supportedFeatures": status.supported_features,
                            },
                        });
                        Api::<GatewayClass>::all(client.clone())
                            .patch_status(name, &pp, &Patch::Apply(body))
                            .await
                            .map(drop)
                    }
                    StatusWrite::Gateway {
                        namespace,
                        name,
                        status,
                    } => {
                        let mut body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {
                                "conditions": status.conditions,
                                "addresses": status.addresses,
                                "listeners": status.listeners,
                            },
                        });
                        if let Some(n) = status.attached_listener_sets {
                            body["status"]["attachedListenerSets"] = json!(n);
                        }
                        Api::<Gateway>::namespaced(client.clone(), namespace)
                            .patch_status(name, &pp, &Patch::Apply(body))
                            .await
                            .map(drop)
                    }
                    StatusWrite::L4Route {
                        kind,
                        namespace,
                        name,
                        status,
                    } => {
                        let body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1",
                            "kind": build::l4_route_kind(*kind),
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {"parents": status.parents},
                        });
                        let patch = Patch::Apply(body);
                        if *kind == fleetgate_proto::spoke::v1::Kind::UdpRoute {
                            Api::<UdpRoute>::namespaced(client.clone(), namespace)
                                .patch_status(name, &pp, &patch)
                                .await
                                .map(drop)
                        } else {
                            Api::<TcpRoute>::namespaced(client.clone(), namespace)
                                .patch_status(name, &pp, &patch)
                                .await
                                .map(drop)
                        }
                    }
                    StatusWrite::Service {
                        namespace,
                        name,
                        status,
                    } => {
                        if let Some(why) = service::not_programmed(status) {
                            warn!("Service {namespace}/{name} has no load balancer address: {why}");
                            if let Some(event) = service::warning_event(namespace, name, status) {
                                // Best effort: the status condition is the record; the Event
                                // makes it visible in `kubectl describe service`.
                                if let Err(e) = Api::<Event>::namespaced(client.clone(), namespace)
                                    .create(&PostParams::default(), &event)
                                    .await
                                {
                                    warn!(
                                        "cannot create an Event for Service {namespace}/{name}: {e}"
                                    );
                                }
                            }
                        }
                        let body = json!({
                            "apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {
                                "conditions": status.conditions,
                                "loadBalancer": status.load_balancer,
                            },
                        });
                        Api::<Service>::namespaced(client.clone(), namespace)
                            .patch_status(name, &pp, &Patch::Apply(body))
                            .await
                            .map(drop)
                    }
                    StatusWrite::ListenerSet {
                        namespace,
                        name,
                        status,
                    } => {
                        let body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {
                                "conditions": status.conditions,
                                "listeners": status.listeners,
                            },
                        });
                        Api::<gateway_api::listenersets::ListenerSet>::namespaced(
                            client.clone(),
                            namespace,
                        )
                        .patch_status(name, &pp, &Patch::Apply(body))
                        .await
                        .map(drop)
                    }
                    StatusWrite::HttpRoute {
                        namespace,
                        name,
                        status,
                    } => {
                        let body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {"parents": status.parents},
                        });
                        Api::<HttpRoute>::namespaced(client.clone(), namespace)
                            .patch_status(name, &pp, &Patch::Apply(body))
                            .await
                            .map(drop)
                    }
                    StatusWrite::TlsRoute {
                        namespace,
                        name,
                        status,
                    } => {
                        let body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {"parents": status.parents},
                        });
                        Api::<gateway_api::tlsroutes::TlsRoute>::namespaced(
                            client.clone(),
                            namespace,
                        )
                        .patch_status(name, &pp, &Patch::Apply(body))
                        .await
                        .map(drop)
                    }
                    StatusWrite::GrpcRoute {
                        namespace,
                        name,
                        status,
                    } => {
                        let body = json!({
                            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
                            "metadata": {"name": name, "namespace": namespace},
                            "status": {"parents": status.parents},
                        });
                        Api::<gateway_api::grpcroutes::GrpcRoute>::namespaced(
                            client.clone(),
                            namespace,
                        )
                        .patch_status(name, &pp, &Patch::Apply(body))
                        .await
                        .map(drop)
                    }
                };
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

/// Keeps the tenant's objects' status in line with the hub's, until the state channel closes.
pub async fn run_writer(
    mut state: watch::Receiver<ClusterState>,
    mut hub: watch::Receiver<Option<Status>>,
    mut sink: Sink,
) {
    let mut resync = tokio::time::interval(Duration::from_secs(30));
    loop {
        let writes = {
            let st = state.borrow_and_update();
            let hs = hub.borrow_and_update();
            plan(&st, hs.as_ref(), &build::now_seconds())
        };
        for w in writes {
            if let Err(e) = sink.write(w).await {
                warn!("{e}");
            }
        }
        tokio::select! {
            r = state.changed() => if r.is_err() { return },
            r = hub.changed() => if r.is_err() { return },
            _ = resync.tick() => {}
        }
    }
}
