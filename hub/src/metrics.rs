//! The hub's Prometheus metrics and health endpoints, on the operator's admin port
//! (`adminListen`; never a tenant's: the hub reserves it like its other listeners).
//!
//! Where it sits: beside the data path, reading it. The gauges are set at each scrape from what
//! the fleet, the compile loop and the data-plane streams already publish (this module writes
//! none of that state); the compile loop observes its duration into [`HubMetrics::compile`],
//! the agents' streams each Update's into [`HubMetrics::apply`], the ADS streams report into
//! [`HubMetrics::xds`] (`crate::data_plane`) and enrollment counts into [`HubMetrics::enroll`].
//! Labels are bounded: tenant, kind, state, reason and xDS type, never hostnames, paths or object
//! names. The names are `fleetgate_hub_*`; docs/operations.md ("Metrics") lists them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::ai_config::AiGatewayHealth;
use crate::compile::Snapshot;
use crate::config::Config;
use crate::fleet::Fleet;
use crate::model::{Kind, ObjectStatus};
use crate::sync::FleetStatus;
use crate::xds::XdsHealth;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    tenant: String,
    /// `connected` (an agent stream is open), `disconnected` (registered, no stream) or
    /// `disabled` (`enabled: false` in the configuration).
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ObjectLabels {
    tenant: String,
    kind: &'static str,
    /// `true`, `false`, or `unknown` for an object the hub wrote no Accepted condition for.
    accepted: &'static str,
    /// The Gateway API reason of the Accepted condition (`Accepted`, `NotAllowedByListeners`,
    /// ...); for routes, that of the first parent that refused it.
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabels {
    /// The xDS type URL's last segment, e.g. `envoy.config.listener.v3.Listener` (every type the
    /// hub pushes, 0 when none is refused).
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    /// `listener`, `route_virtual_host`, `cluster`, `secret`, `ai_route`.
    resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

/// Everything the hub exposes, registered once.
pub struct HubMetrics {
    registry: Registry,
    /// Seconds one compile of the fleet took (the compile loop observes it).
    pub compile: Histogram,
    /// Seconds one agent Update took to admit and store (the agents' streams observe it).
    pub apply: Histogram,
    /// ACKs, NACKs, push times and update-to-ACK times of the ADS streams.
    pub xds: crate::data_plane::XdsMetrics,
    /// Enroll and Renew calls by result.
    pub enroll: crate::enroll::EnrollMetrics,
    clusters: Family<ClusterLabels, Gauge>,
    objects: Family<ObjectLabels, Gauge>,
    envoy_nacks: Family<TypeLabels, Gauge>,
    resources: Family<ResourceLabels, Gauge>,
    ai_gateways: Gauge,
    ai_refusals: Family<TenantLabels, Gauge>,
    /// The AI gateways' reported usage ([`crate::ai_config::usage`]), mirrored at each scrape.
    ai_requests: Family<TenantLabels, Counter>,
    ai_input_tokens: Family<TenantLabels, Counter>,
    ai_output_tokens: Family<TenantLabels, Counter>,
    store_bytes: Gauge,
    /// The live heap ([`crate::heap::live_bytes`]); 0 where it is not counted.
    heap_bytes: Gauge,
}

impl Default for HubMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HubMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fleetgate_hub");
        // 1 ms .. ~16 s.
        let compile = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "compile_duration_seconds",
            "Time one compile of the accepted intent into a data-plane snapshot took",
            compile.clone(),
        );
        // 0.1 ms .. ~3 s.
        let apply = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "apply_duration_seconds",
            "Time one agent Update took to admit and store",
            apply.clone(),
        );
        let xds = crate::data_plane::XdsMetrics::default();
        registry.register(
            "xds_acks",
            "Responses an Envoy ACKed, per xDS type",
            xds.acks.clone(),
        );
        registry.register(
            "xds_nacks",
            "Responses an Envoy rejected (NACK), per xDS type",
            xds.nacks.clone(),
        );
        registry.register(
            "xds_push_duration_seconds",
            "Time one ADS stream took to build and send the responses for a new snapshot",
            xds.push.clone(),
        );
        registry.register(
            "update_to_ack_seconds",
            "Time from an agent Update being accepted to every connected Envoy ACKing a configuration that contains it",
            xds.update_to_ack.clone(),
        );
        let enroll = crate::enroll::EnrollMetrics::default();
        // Shown at 0 before the first enrollment.
        for family in [&enroll.enrollments, &enroll.renewals] {
            let _ = family.get_or_create(&crate::enroll::ResultLabels { result: "issued" });
        }
        registry.register(
            "enrollments",
            "Enroll calls (bootstrap token for a certificate) by result",
            enroll.enrollments.clone(),
        );
        registry.register(
            "certificate_renewals",
            "Renew calls (certificate renewal) by result",
            enroll.renewals.clone(),
        );
        let clusters = Family::default();
        registry.register(
            "clusters",
            "Registered tenant clusters by agent connection state",
            clusters.clone(),
        );
        let objects = Family::default();
        registry.register(
            "objects",
            "Tenant objects by kind and whether the hub accepted them (with the Gateway API reason)",
            objects.clone(),
        );
        let envoy_nacks = Family::default();
        registry.register(
            "envoy_nacks",
            "Configurations an Envoy rejected and still stands by, per xDS type (0 for every type the hub pushes)",
            envoy_nacks.clone(),
        );
        let resources = Family::default();
        registry.register(
            "data_plane_resources",
            "Resources in the snapshot the data plane is programmed with",
            resources.clone(),
        );
        let ai_gateways = Gauge::default();
        registry.register(
            "ai_gateways_connected",
            "AI gateway replicas with an open configuration stream",
            ai_gateways.clone(),
        );
        let ai_refusals = Family::default();
        registry.register(
            "ai_gateway_refusals",
            "AI gateway replicas refusing the newest configuration of a tenant (0 for every configured tenant)",
            ai_refusals.clone(),
        );
        let ai_requests = Family::default();
        registry.register(
            "ai_requests",
            "LLM requests the AI gateway replicas reported, summed, since the hub started",
            ai_requests.clone(),
        );
        let ai_input_tokens = Family::default();
        registry.register(
            "ai_input_tokens",
            "LLM input tokens the AI gateway replicas reported, summed, since the hub started",
            ai_input_tokens.clone(),
        );
        let ai_output_tokens = Family::default();
        registry.register(
            "ai_output_tokens",
            "LLM output tokens the AI gateway replicas reported, summed, since the hub started",
            ai_output_tokens.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_bytes",
            "Size of the embedded store file",
            store_bytes.clone(),
        );
        let heap_bytes = Gauge::default();
        registry.register(
            "heap_bytes",
            "Bytes the hub's live allocations hold (RSS also counts what the allocator keeps after a free)",
            heap_bytes.clone(),
        );
        Self {
            registry,
            compile,
            apply,
            xds,
            enroll,
            clusters,
            objects,
            envoy_nacks,
            resources,
            ai_gateways,
            ai_refusals,
            ai_requests,
            ai_input_tokens,
            ai_output_tokens,
            store_bytes,
            heap_bytes,
        }
    }

    /// Exports each tenant's requests, errors and latency from Envoy's stats sink.
    pub fn register_envoy_stats(&mut self, stats: Arc<crate::envoy_stats::EnvoyStats>) {
        self.registry
            .register_collector(Box::new(crate::envoy_stats::TenantTrafficCollector(stats)));
    }

    /// Sets every gauge from `sources` and renders the OpenMetrics text.
    pub fn scrape(&self, sources: &Sources) -> String {
        let config = sources.fleet.config();
        let connected = sources.fleet.connected();
        self.clusters.clear();
        for (tenant, t) in &config.tenants {
            for name in t.clusters.keys() {
                let key = crate::model::ClusterKey {
                    tenant: tenant.clone(),
                    cluster: name.clone(),
                };
                let state =
                    if config.registration(tenant, name) != crate::config::Registration::Active {
                        "disabled"
                    } else if connected.contains(&key) {
                        "connected"
                    } else {
                        "disconnected"
                    };
                self.clusters
                    .get_or_create(&ClusterLabels {
                        tenant: tenant.clone(),
                        state,
                    })
                    .inc();
            }
        }

        self.objects.clear();
        for (labels, n) in object_counts(&sources.statuses.borrow()) {
            self.objects.get_or_create(&labels).set(n);
        }

        // Every type the hub pushes is shown, at 0 when no NACK stands, so that dashboards and
        // alerts see the series before anything goes wrong.
        self.envoy_nacks.clear();
        let short = |type_url: &str| type_url.rsplit('/').next().unwrap_or(type_url).to_string();
        for type_url in crate::xds::resources::PUSH_ORDER {
            self.envoy_nacks
                .get_or_create(&TypeLabels {
                    r#type: short(type_url),
                })
                .set(0);
        }
        for type_url in sources.xds.borrow().nacks.keys() {
            self.envoy_nacks
                .get_or_create(&TypeLabels {
                    r#type: short(type_url),
                })
                .inc();
        }

        let snapshot = sources.snapshots.borrow().clone();
        for (resource, n) in resource_counts(&snapshot) {
            self.resources
                .get_or_create(&ResourceLabels { resource })
                .set(n);
        }

        let ai = sources.ai.borrow();
        self.ai_gateways.set(ai.streams.len() as i64);
        self.ai_refusals.clear();
        for tenant in config.tenants.keys() {
            self.ai_refusals
                .get_or_create(&TenantLabels {
                    tenant: tenant.clone(),
                })
                .set(0);
        }
        for view in ai.streams.values() {
            for tenant in view.refused.keys() {
                self.ai_refusals
                    .get_or_create(&TenantLabels {
                        tenant: tenant.clone(),
                    })
                    .inc();
            }
        }
        drop(ai);

        if let Some(usage) = &sources.ai_usage {
            let per_tenant = usage.lock().unwrap_or_else(|p| p.into_inner()).per_tenant();
            // The book's totals only grow: each counter is moved up to its total.
            let up_to = |family: &Family<TenantLabels, Counter>, tenant: &str, total: u64| {
                let c = family.get_or_create(&TenantLabels {
                    tenant: tenant.to_string(),
                });
                c.inc_by(total.saturating_sub(c.get()));
            };
            for (tenant, c) in per_tenant {
                up_to(&self.ai_requests, &tenant, c.requests);
                up_to(&self.ai_input_tokens, &tenant, c.input_tokens);
                up_to(&self.ai_output_tokens, &tenant, c.output_tokens);
            }
        }

        self.store_bytes.set(
            std::fs::metadata(&sources.store_path)
                .map(|m| m.len() as i64)
                .unwrap_or(0),
        );
        self.heap_bytes
            .set(crate::heap::live_bytes().unwrap_or(0) as i64);

        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// What a scrape reads: the views the hub already publishes.
pub struct Sources {
    pub fleet: Arc<Fleet>,
    pub statuses: watch::Receiver<FleetStatus>,
    pub xds: watch::Receiver<XdsHealth>,
    pub ai: watch::Receiver<AiGatewayHealth>,
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub store_path: PathBuf,
    /// The AI gateways' reported usage; `None`: not exported.
    pub ai_usage: Option<Arc<Mutex<crate::ai_config::usage::UsageBook>>>,
}

/// The Gateway API (or agentgateway / fleetgate) kind name.
fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Gateway => "Gateway",
        Kind::HttpRoute => "HTTPRoute",
        Kind::TlsRoute => "TLSRoute",
        Kind::Service => "Service",
        Kind::TcpRoute => "TCPRoute",
        Kind::UdpRoute => "UDPRoute",
        Kind::GrpcRoute => "GRPCRoute",
        Kind::ListenerSet => "ListenerSet",
        Kind::AiBackend => "AgentgatewayBackend",
        Kind::VirtualKey => "VirtualKey",
    }
}

/// Whether the hub accepted one object, and the reason it gave: the object's own Accepted
/// condition, or for routes their parents' (the first refusal wins; all accepted: accepted).
fn acceptance(status: &ObjectStatus) -> (&'static str, String) {
    if let Some(c) = status.conditions.iter().find(|c| c.type_ == "Accepted") {
        return (if c.status { "true" } else { "false" }, c.reason.clone());
    }
    let mut accepted = None;
    for p in &status.parents {
        if let Some(c) = p.conditions.iter().find(|c| c.type_ == "Accepted") {
            if !c.status {
                return ("false", c.reason.clone());
            }
            accepted = Some(c.reason.clone());
        }
    }
    match accepted {
        Some(reason) => ("true", reason),
        None => ("unknown", String::new()),
    }
}

/// Objects per (tenant, kind, accepted, reason), over every cluster.
fn object_counts(statuses: &FleetStatus) -> BTreeMap<ObjectLabels, i64> {
    let mut out = BTreeMap::new();
    for (cluster, list) in statuses.iter() {
        for s in list.iter() {
            let (accepted, reason) = acceptance(s);
            *out.entry(ObjectLabels {
                tenant: cluster.tenant.clone(),
                kind: kind_label(s.key.kind),
                accepted,
                reason,
            })
            .or_default() += 1;
        }
    }
    out
}

/// The snapshot's size by resource type.
fn resource_counts(s: &Snapshot) -> [(&'static str, i64); 5] {
    let virtual_hosts: usize = s
        .listeners
        .iter()
        .map(|l| l.virtual_hosts.len())
        .sum::<usize>();
    let listeners = s.listeners.len() + s.tls_listeners.len() + s.l4_listeners.len();
    let ai_routes: usize = s.ai.tenants.values().map(|t| t.routes.len()).sum();
    [
        ("listener", listeners as i64),
        ("route_virtual_host", virtual_hosts as i64),
        ("cluster", s.clusters.len() as i64),
        ("secret", s.secrets.len() as i64),
        ("ai_route", ai_routes as i64),
    ]
}

/// Serves `/metrics`, `/healthz` and `/readyz` (ready: the hub's other servers are up, since
/// this one starts after them) on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<HubMetrics>,
    sources: Arc<Sources>,
    api: Arc<crate::admin::api::AdminApi>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let endpoints = fleetgate_observe::Endpoints {
        metrics: Box::new(move || metrics.scrape(&sources)),
        ready: Box::new(|| Ok(())),
        app: Some(Box::new(move |req| {
            let api = api.clone();
            Box::pin(async move { crate::admin::serve(&api, req).await })
        })),
    };
    fleetgate_observe::serve(listener, Arc::new(endpoints), shutdown).await
}

/// Binds the admin port if the configuration has one.
pub async fn bind(
    config: &Config,
) -> Result<Option<(tokio::net::TcpListener, SocketAddr)>, std::io::Error> {
    match config.admin_listen {
        None => Ok(None),
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await?;
            Ok(Some((l, addr)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterKey, Condition, ObjectKey, ParentRef, RouteParentStatus};

    fn status(kind: Kind, name: &str) -> ObjectStatus {
        ObjectStatus {
            key: ObjectKey {
                kind,
                namespace: "default".into(),
                name: name.into(),
            },
            observed_generation: 1,
            conditions: vec![],
            addresses: vec![],
            listeners: vec![],
            parents: vec![],
            load_balancer: vec![],
            attached_listener_sets: 0,
        }
    }

    fn parent(accepted: bool, reason: &str) -> RouteParentStatus {
        RouteParentStatus {
            parent_ref: ParentRef {
                namespace: "default".into(),
                name: "web".into(),
                section_name: None,
                port: None,
                kind: Default::default(),
            },
            conditions: vec![Condition::new("Accepted", accepted, reason, "")],
        }
    }

    #[test]
    fn objects_are_counted_by_tenant_kind_and_acceptance_without_their_names() {
        let mut gw = status(Kind::Gateway, "web");
        gw.conditions
            .push(Condition::new("Accepted", true, "Accepted", ""));
        let mut refused = status(Kind::HttpRoute, "hijack.b.example");
        refused.parents.push(parent(true, "Accepted"));
        refused.parents.push(parent(false, "NotAllowedByListeners"));
        let unknown = status(Kind::TlsRoute, "t");
        let key = ClusterKey {
            tenant: "tenant-a".into(),
            cluster: "east".into(),
        };
        let statuses: FleetStatus = Arc::new(
            [(key, Arc::new(vec![gw, refused, unknown]))]
                .into_iter()
                .collect(),
        );
        let counts = object_counts(&statuses);
        let get = |kind: &str, accepted: &str, reason: &str| {
            counts
                .iter()
                .find(|(l, _)| l.kind == kind && l.accepted == accepted && l.reason == reason)
                .map(|(_, n)| *n)
        };
        assert_eq!(get("Gateway", "true", "Accepted"), Some(1));
        assert_eq!(get("HTTPRoute", "false", "NotAllowedByListeners"), Some(1));
        assert_eq!(get("TLSRoute", "unknown", ""), Some(1));
        // No label carries an object's name.
        assert!(counts.keys().all(|l| !format!("{l:?}").contains("hijack")));
    }
}
