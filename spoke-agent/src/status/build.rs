//! Status building (pure): the hub's [`ObjectStatus`] + the object as the cluster has it -> the
//! status the agent wants on the object, and the list of writes needed to get there.
//!
//! Where it sits: the last step of the data path, between `sync` (which receives the hub's
//! Status) and the writers in [`super`]. Every condition carries `observedGeneration`; a
//! condition whose `status` did not change keeps its `lastTransitionTime`, so repeated writes
//! do not flap. Only objects whose desired status differs from the current one are written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use fleetgate_proto::spoke::v1::{self as pb, Kind, ObjectStatus, Status};
use gateway_api::gatewayclasses::{
    GatewayClass, GatewayClassStatus, GatewayClassStatusSupportedFeatures,
};
use gateway_api::gateways::{
    Gateway, GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners,
    GatewayStatusListenersSupportedKinds,
};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteStatus, HttpRouteStatusParents,
    HttpRouteStatusParentsParentRef,
};
use gateway_api::listenersets::{
    ListenerSet, ListenerSetStatus, ListenerSetStatusListeners,
    ListenerSetStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::claim::{CONTROLLER_NAME, SentParents, claimed_classes, parent_ref};
use crate::crd::agentgateway::AgentgatewayBackendStatus;
use crate::crd::virtual_key::VirtualKeyStatus;
use crate::crd::{
    AgentgatewayBackend, GATEWAY_GROUP, L4RouteView, grpc_parent_as_http, tls_parent_as_http,
};
use crate::state::ClusterState;

/// One status write: which object and the full status the agent wants on it.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusWrite {
    GatewayClass {
        name: String,
        status: GatewayClassStatus,
    },
    Gateway {
        namespace: String,
        name: String,
        status: GatewayStatus,
    },
    HttpRoute {
        namespace: String,
        name: String,
        status: HttpRouteStatus,
    },
    /// TLSRoute v1 `status.parents` has exactly HTTPRoute's schema.
    TlsRoute {
        namespace: String,
        name: String,
        status: HttpRouteStatus,
    },
    /// A TCPRoute or UDPRoute (`kind` says which); route status has HTTPRoute's schema.
    L4Route {
        kind: Kind,
        namespace: String,
        name: String,
        status: HttpRouteStatus,
    },
    /// GRPCRoute v1 `status.parents` has exactly HTTPRoute's schema.
    GrpcRoute {
        namespace: String,
        name: String,
        status: HttpRouteStatus,
    },
    /// A ListenerSet: conditions and per-listener status.
    ListenerSet {
        namespace: String,
        name: String,
        status: ListenerSetStatus,
    },
    /// A LoadBalancer Service (`super::service`).
    Service {
        namespace: String,
        name: String,
        status: k8s_openapi::api::core::v1::ServiceStatus,
    },
    /// An AgentgatewayBackend: `status.conditions`.
    AiBackend {
        namespace: String,
        name: String,
        status: AgentgatewayBackendStatus,
    },
    /// A VirtualKey: `status.conditions`.
    VirtualKey {
        namespace: String,
        name: String,
        status: VirtualKeyStatus,
    },
    /// A BackendTLSPolicy: `status.ancestors` (`super::backend_tls`).
    BackendTlsPolicy {
        namespace: String,
        name: String,
        status: gateway_api::backendtlspolicies::BackendTlsPolicyStatus,
    },
}

impl StatusWrite {
    /// `Kind namespace/name` for logs.
    pub fn object(&self) -> String {
        match self {
            Self::GatewayClass { name, .. } => format!("GatewayClass {name}"),
            Self::Gateway {
                namespace, name, ..
            } => format!("Gateway {namespace}/{name}"),
            Self::HttpRoute {
                namespace, name, ..
            } => format!("HTTPRoute {namespace}/{name}"),
            Self::TlsRoute {
                namespace, name, ..
            } => format!("TLSRoute {namespace}/{name}"),
            Self::Service {
                namespace, name, ..
            } => format!("Service {namespace}/{name}"),
            Self::L4Route {
                kind,
                namespace,
                name,
                ..
            } => format!("{} {namespace}/{name}", l4_route_kind(*kind)),
            Self::GrpcRoute {
                namespace, name, ..
            } => format!("GRPCRoute {namespace}/{name}"),
            Self::ListenerSet {
                namespace, name, ..
            } => format!("ListenerSet {namespace}/{name}"),
            Self::AiBackend {
                namespace, name, ..
            } => format!("AgentgatewayBackend {namespace}/{name}"),
            Self::VirtualKey {
                namespace, name, ..
            } => format!("VirtualKey {namespace}/{name}"),
            Self::BackendTlsPolicy {
                namespace, name, ..
            } => format!("BackendTLSPolicy {namespace}/{name}"),
        }
    }
}

/// `now` truncated to whole seconds, as the API server stores it.
pub fn now_seconds() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    Time(k8s_openapi::jiff::Timestamp::from_second(now).expect("current time is in range"))
}

/// The desired conditions: `desired` with `observedGeneration`, keeping the existing
/// `lastTransitionTime` of a condition whose status did not change; conditions of other types
/// already on the object (set by someone else) are kept. Sorted by type.
pub fn merge_conditions(
    existing: &[Condition],
    desired: &[pb::Condition],
    generation: i64,
    now: &Time,
) -> Vec<Condition> {
    let mut out: BTreeMap<String, Condition> = existing
        .iter()
        .map(|c| (c.type_.clone(), c.clone()))
        .collect();
    for d in desired {
        let last_transition_time = match out.get(&d.r#type) {
            Some(old) if old.status == d.status => old.last_transition_time.clone(),
            _ => now.clone(),
        };
        let reason = if d.reason.is_empty() {
            "Pending".to_string()
        } else {
            d.reason.clone()
        };
        out.insert(
            d.r#type.clone(),
            Condition {
                type_: d.r#type.clone(),
                status: d.status.clone(),
                reason,
                message: d.message.clone(),
                observed_generation: Some(generation),
                last_transition_time,
            },
        );
    }
    out.into_values().collect()
}

fn sorted(mut c: Vec<Condition>) -> Vec<Condition> {
    c.sort_by(|a, b| a.type_.cmp(&b.type_));
    c
}

/// GatewayClass of a claimed class, decided by the agent itself: Accepted=True, or
/// Accepted=False/InvalidParameters when it has a `parametersRef` (fleetgate takes no
/// parameters; its Gateways are refused by the hub with the same reason), and
/// `supportedFeatures` from [`super::features::SUPPORTED_FEATURES`].
pub fn gateway_class_status(gc: &GatewayClass, now: &Time) -> GatewayClassStatus {
    let existing = gc.status.clone().unwrap_or_default();
    let message = if gc.spec.controller_name == CONTROLLER_NAME {
        format!("Claimed by {CONTROLLER_NAME}")
    } else {
        format!(
            "Claimed by {CONTROLLER_NAME} (the agent runs with --gateway-class {})",
            gc.metadata.name.as_deref().unwrap_or_default()
        )
    };
    let accepted = match &gc.spec.parameters_ref {
        None => pb::Condition {
            r#type: "Accepted".into(),
            status: "True".into(),
            reason: "Accepted".into(),
            message,
        },
        Some(r) => pb::Condition {
            r#type: "Accepted".into(),
            status: "False".into(),
            reason: "InvalidParameters".into(),
            message: format!(
                "{message}, which takes no parameters: spec.parametersRef ({}) is not supported, and Gateways of this class are not programmed; remove spec.parametersRef",
                crate::claim::parameters_ref(&r.group, &r.kind, &r.name)
            ),
        },
    };
    let generation = gc.metadata.generation.unwrap_or(0);
    GatewayClassStatus {
        conditions: Some(merge_conditions(
            existing.conditions.as_deref().unwrap_or_default(),
            &[accepted],
            generation,
            now,
        )),
        supported_features: Some(
            super::features::SUPPORTED_FEATURES
                .iter()
                .map(|f| GatewayClassStatusSupportedFeatures {
                    name: f.to_string(),
                })
                .collect(),
        ),
    }
}

fn generation_of(hub: &ObjectStatus, object_generation: Option<i64>) -> i64 {
    if hub.observed_generation > 0 {
        hub.observed_generation
    } else {
        object_generation.unwrap_or(0)
    }
}

/// Gateway `status.conditions`, `status.addresses` and `status.listeners` from the hub.
pub fn gateway_status(gw: &Gateway, hub: &ObjectStatus, now: &Time) -> GatewayStatus {
    let existing = gw.status.clone().unwrap_or_default();
    let generation = generation_of(hub, gw.metadata.generation);
    let old_listeners = existing.listeners.clone().unwrap_or_default();
    let listeners = hub
        .listeners
        .iter()
        .map(|l| {
            let old = old_listeners.iter().find(|o| o.name == l.name);
            GatewayStatusListeners {
                name: l.name.clone(),
                attached_routes: i32::try_from(l.attached_routes).unwrap_or(i32::MAX),
                conditions: merge_conditions(
                    old.map(|o| o.conditions.as_slice()).unwrap_or_default(),
                    &l.conditions,
                    generation,
                    now,
                ),
                supported_kinds: Some(supported_kinds(gw, l)),
            }
        })
        .collect();
    GatewayStatus {
        conditions: Some(merge_conditions(
            existing.conditions.as_deref().unwrap_or_default(),
            &hub.conditions,
            generation,
            now,
        )),
        addresses: Some(
            hub.addresses
                .iter()
                .map(|a| GatewayStatusAddresses {
                    r#type: Some("IPAddress".to_string()),
                    value: a.clone(),
                })
                .collect(),
        ),
        listeners: Some(listeners),
        // Written for Gateways that take ListenerSets (or have taken some), so that a cluster
        // whose CRDs predate the field is not patched for nothing.
        attached_listener_sets: (gw.spec.allowed_listeners.is_some()
            || hub.attached_listener_sets > 0)
            .then(|| i32::try_from(hub.attached_listener_sets).unwrap_or(i32::MAX))
            .or(existing.attached_listener_sets),
    }
}

/// AgentgatewayBackend `status.conditions` from the hub (conditions of other types, set by
/// someone else, are kept).
pub fn ai_backend_status(
    b: &AgentgatewayBackend,
    hub: &ObjectStatus,
    now: &Time,
) -> AgentgatewayBackendStatus {
    let existing = b.status.clone().unwrap_or_default();
    let generation = generation_of(hub, b.metadata.generation);
    AgentgatewayBackendStatus {
        conditions: Some(merge_conditions(
            existing.conditions.as_deref().unwrap_or_default(),
            &hub.conditions,
            generation,
            now,
        )),
    }
}

/// VirtualKey `status.conditions` from the hub (conditions of other types are kept).
pub fn virtual_key_status(
    k: &crate::crd::VirtualKey,
    hub: &ObjectStatus,
    now: &Time,
) -> VirtualKeyStatus {
    let existing = k.status.clone().unwrap_or_default();
    let generation = generation_of(hub, k.metadata.generation);
    VirtualKeyStatus {
        conditions: Some(merge_conditions(
            existing.conditions.as_deref().unwrap_or_default(),
            &hub.conditions,
            generation,
            now,
        )),
    }
}

fn norm_key(s: &VirtualKeyStatus) -> VirtualKeyStatus {
    let mut s = s.clone();
    s.conditions = s.conditions.map(sorted);
    s
}

fn norm_ai(s: &AgentgatewayBackendStatus) -> AgentgatewayBackendStatus {
    let mut s = s.clone();
    s.conditions = s.conditions.map(sorted);
    s
}

/// ListenerSet `status.conditions` and `status.listeners` from the hub.
pub fn listener_set_status(ls: &ListenerSet, hub: &ObjectStatus, now: &Time) -> ListenerSetStatus {
    let existing = ls.status.clone().unwrap_or_default();
    let generation = generation_of(hub, ls.metadata.generation);
    let old_listeners = existing.listeners.clone().unwrap_or_default();
    let listeners = hub
        .listeners
        .iter()
        .map(|l| {
            let old = old_listeners.iter().find(|o| o.name == l.name);
            ListenerSetStatusListeners {
                name: l.name.clone(),
                attached_routes: i32::try_from(l.attached_routes).unwrap_or(i32::MAX),
                conditions: merge_conditions(
                    old.map(|o| o.conditions.as_slice()).unwrap_or_default(),
                    &l.conditions,
                    generation,
                    now,
                ),
                supported_kinds: Some(
                    l.supported_kinds
                        .iter()
                        .map(|k| ListenerSetStatusListenersSupportedKinds {
                            group: Some(k.group.clone()),
                            kind: k.kind.clone(),
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    ListenerSetStatus {
        conditions: Some(merge_conditions(
            existing.conditions.as_deref().unwrap_or_default(),
            &hub.conditions,
            generation,
            now,
        )),
        listeners: Some(listeners),
    }
}

fn norm_ls(s: &ListenerSetStatus) -> ListenerSetStatus {
    let mut s = s.clone();
    s.conditions = s.conditions.map(sorted);
    for l in s.listeners.iter_mut().flatten() {
        l.conditions = sorted(std::mem::take(&mut l.conditions));
    }
    s
}

fn status_parent_ref(p: &HttpRouteParentRefs) -> HttpRouteStatusParentsParentRef {
    HttpRouteStatusParentsParentRef {
        group: p.group.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        port: p.port,
        section_name: p.section_name.clone(),
    }
}

/// HTTPRoute `status.parents`: one entry per parent the hub reported, with the parentRef as the
/// tenant wrote it; entries of other controllers are kept as they are.
pub fn route_status(route: &HttpRoute, hub: &ObjectStatus, now: &Time) -> HttpRouteStatus {
    let existing = route.status.clone().unwrap_or_default();
    let ns = route.metadata.namespace.clone().unwrap_or_default();
    let generation = generation_of(hub, route.metadata.generation);
    let spec_refs = route.spec.parent_refs.as_deref().unwrap_or_default();
    let mut parents: Vec<HttpRouteStatusParents> = existing
        .parents
        .iter()
        .filter(|p| p.controller_name != CONTROLLER_NAME)
        .cloned()
        .collect();
    for hp in &hub.parents {
        let Some(want) = &hp.parent_ref else { continue };
        // A hub that predates ListenerSets sends no group and kind: its parents are Gateways.
        let want = &pb::ParentRef {
            group: GATEWAY_GROUP.to_string(),
            kind: if want.kind.is_empty() {
                "Gateway".to_string()
            } else {
                want.kind.clone()
            },
            ..want.clone()
        };
        let parent_ref = spec_refs
            .iter()
            .find(|s| parent_ref(&ns, s).as_ref() == Some(want))
            .map(status_parent_ref)
            .unwrap_or_else(|| HttpRouteStatusParentsParentRef {
                group: Some(GATEWAY_GROUP.to_string()),
                kind: Some(want.kind.clone()),
                name: want.name.clone(),
                namespace: Some(want.namespace.clone()),
                port: (want.port > 0).then(|| i32::try_from(want.port).unwrap_or(0)),
                section_name: (!want.section_name.is_empty()).then(|| want.section_name.clone()),
            });
        let old = existing
            .parents
            .iter()
            .find(|p| p.controller_name == CONTROLLER_NAME && p.parent_ref == parent_ref);
        parents.push(HttpRouteStatusParents {
            conditions: merge_conditions(
                old.map(|o| o.conditions.as_slice()).unwrap_or_default(),
                &hp.conditions,
                generation,
                now,
            ),
            controller_name: CONTROLLER_NAME.to_string(),
            parent_ref,
        });
    }
    HttpRouteStatus { parents }
}

/// A listener's `supportedKinds`: what the hub computed (the intersection of
/// `allowedRoutes.kinds` with what it serves), or, from a hub that does not send them, the kind
/// of the listener's protocol. A listener the hub refused (`Accepted=False`) keeps the hub's
/// list, also when empty (a TLS listener in Terminate mode serves no kind: upstream
/// `TLSRouteListenerTerminateNotSupported`).
fn supported_kinds(
    gw: &Gateway,
    l: &pb::ListenerStatus,
) -> Vec<GatewayStatusListenersSupportedKinds> {
    let hub_says_none = l.conditions.iter().any(|c| {
        (c.r#type == "ResolvedRefs" && c.reason == "InvalidRouteKinds")
            || (c.r#type == "Accepted" && c.status == "False")
    });
    if l.supported_kinds.is_empty() && !hub_says_none {
        return route_kinds_of(gw, &l.name)
            .iter()
            .map(|k| GatewayStatusListenersSupportedKinds {
                group: Some(GATEWAY_GROUP.to_string()),
                kind: k.to_string(),
            })
            .collect();
    }
    l.supported_kinds
        .iter()
        .map(|k| GatewayStatusListenersSupportedKinds {
            group: Some(k.group.clone()),
            kind: k.kind.clone(),
        })
        .collect()
}

/// The route kinds a listener takes by its protocol; none for a protocol fleetgate does not
/// serve (Gateway API: such a listener's `supportedKinds` is empty).
fn route_kinds_of(gw: &Gateway, listener: &str) -> &'static [&'static str] {
    match gw.spec.listeners.iter().find(|l| l.name == listener) {
        Some(l) if l.protocol == "HTTP" || l.protocol == "HTTPS" => &["HTTPRoute", "GRPCRoute"],
        Some(l) if l.protocol == "TLS" => &["TLSRoute"],
        Some(l) if l.protocol == "TCP" => &["TCPRoute"],
        Some(l) if l.protocol == "UDP" => &["UDPRoute"],
        _ => &[],
    }
}

/// A GRPCRoute seen through the HTTPRoute type for its status: GRPCRoute v1's parentRefs and
/// status.parents have HTTPRoute's schema, so the same status building applies.
pub fn grpc_route_as_http(r: &gateway_api::grpcroutes::GrpcRoute) -> HttpRoute {
    HttpRoute {
        metadata: r.metadata.clone(),
        spec: gateway_api::httproutes::HttpRouteSpec {
            parent_refs: r
                .spec
                .parent_refs
                .as_ref()
                .map(|ps| ps.iter().map(grpc_parent_as_http).collect()),
            ..Default::default()
        },
        status: r.status.as_ref().and_then(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
        }),
    }
}

/// A TLSRoute seen through the HTTPRoute type for its status: TLSRoute v1's parentRefs and
/// status.parents have HTTPRoute's schema, so the same status building applies.
pub fn tls_route_as_http(r: &gateway_api::tlsroutes::TlsRoute) -> HttpRoute {
    HttpRoute {
        metadata: r.metadata.clone(),
        spec: gateway_api::httproutes::HttpRouteSpec {
            parent_refs: r
                .spec
                .parent_refs
                .as_ref()
                .map(|ps| ps.iter().map(tls_parent_as_http).collect()),
            ..Default::default()
        },
        status: r.status.as_ref().and_then(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
        }),
    }
}

/// Normalises a status for comparison: conditions sorted by type.
fn norm_gw(s: &GatewayStatus) -> GatewayStatus {
    let mut s = s.clone();
    s.conditions = s.conditions.map(sorted);
    for l in s.listeners.iter_mut().flatten() {
        l.conditions = sorted(std::mem::take(&mut l.conditions));
    }
    s
}

fn norm_route(s: &HttpRouteStatus) -> HttpRouteStatus {
    let mut s = s.clone();
    for p in &mut s.parents {
        p.conditions = sorted(std::mem::take(&mut p.conditions));
    }
    s
}

fn norm_gc(s: &GatewayClassStatus) -> GatewayClassStatus {
    let mut s = s.clone();
    s.conditions = s.conditions.map(sorted);
    s
}

type StatusKey = (i32, String, String);

/// The writes that bring every claimed GatewayClass and every Gateway/HTTPRoute the hub reported
/// to their desired status; objects already there are left out.
pub fn plan(state: &ClusterState, hub: Option<&Status>, now: &Time) -> Vec<StatusWrite> {
    let mut out = Vec::new();
    let claimed = claimed_classes(state);
    for gc in &state.gateway_classes {
        let Some(name) = gc.metadata.name.clone().filter(|n| claimed.contains(n)) else {
            continue;
        };
        let status = gateway_class_status(gc, now);
        if gc.status.as_ref().map(norm_gc) != Some(norm_gc(&status)) {
            out.push(StatusWrite::GatewayClass { name, status });
        }
    }
    // BackendTLSPolicies need no word from the hub: fleetgate does not implement them.
    out.extend(super::backend_tls::policy_writes(state, &claimed, now));
    let Some(hub) = hub else { return out };
    let by_key: BTreeMap<StatusKey, &ObjectStatus> = hub
        .objects
        .iter()
        .filter_map(|o| {
            o.r#ref
                .as_ref()
                .map(|r| ((r.kind, r.namespace.clone(), r.name.clone()), o))
        })
        .collect();
    let find = |kind: Kind, m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        let (ns, name) = (m.namespace.clone()?, m.name.clone()?);
        let s = by_key.get(&(kind as i32, ns.clone(), name.clone()))?;
        Some((ns, name, *s))
    };
    for gw in &state.gateways {
        let Some((namespace, name, hs)) = find(Kind::Gateway, &gw.metadata) else {
            continue;
        };
        if !claimed.contains(&gw.spec.gateway_class_name) {
            continue;
        }
        let status = gateway_status(gw, hs, now);
        if gw.status.as_ref().map(norm_gw) != Some(norm_gw(&status)) {
            out.push(StatusWrite::Gateway {
                namespace,
                name,
                status,
            });
        }
    }
    let sent = SentParents::of(state, &claimed);
    for ls in &state.listener_sets {
        let Some((namespace, name, hs)) = find(Kind::ListenerSet, &ls.metadata) else {
            continue;
        };
        if !sent
            .listener_sets
            .contains(&(namespace.clone(), name.clone()))
        {
            continue;
        }
        let status = listener_set_status(ls, hs, now);
        if ls.status.as_ref().map(norm_ls) != Some(norm_ls(&status)) {
            out.push(StatusWrite::ListenerSet {
                namespace,
                name,
                status,
            });
        }
    }
    // HTTPRoute, TLSRoute and GRPCRoute status share HTTPRoute's schema: all three are planned
    // through the HTTPRoute type.
    type Write = fn(String, String, HttpRouteStatus) -> StatusWrite;
    let l7: [(Kind, Vec<Cow<'_, HttpRoute>>, Write); 3] = [
        (
            Kind::HttpRoute,
            state.http_routes.iter().map(Cow::Borrowed).collect(),
            |namespace, name, status| StatusWrite::HttpRoute {
                namespace,
                name,
                status,
            },
        ),
        (
            Kind::TlsRoute,
            state
                .tls_routes
                .iter()
                .map(|r| Cow::Owned(tls_route_as_http(r)))
                .collect(),
            |namespace, name, status| StatusWrite::TlsRoute {
                namespace,
                name,
                status,
            },
        ),
        (
            Kind::GrpcRoute,
            state
                .grpc_routes
                .iter()
                .map(|r| Cow::Owned(grpc_route_as_http(r)))
                .collect(),
            |namespace, name, status| StatusWrite::GrpcRoute {
                namespace,
                name,
                status,
            },
        ),
    ];
    for (kind, routes, write) in l7 {
        for r in routes {
            let Some((namespace, name, hs)) = find(kind, &r.metadata) else {
                continue;
            };
            let status = route_status(&r, hs, now);
            if r.status.as_ref().map(norm_route) != Some(norm_route(&status)) {
                out.push(write(namespace, name, status));
            }
        }
    }
    let l4_views = state
        .tcp_routes
        .iter()
        .map(L4RouteView::tcp)
        .chain(state.udp_routes.iter().map(L4RouteView::udp));
    for v in l4_views {
        let Some((namespace, name, hs)) = find(v.kind, v.metadata) else {
            continue;
        };
        let as_http = v.as_http_route();
        let status = route_status(&as_http, hs, now);
        if v.status.map(norm_route) != Some(norm_route(&status)) {
            out.push(StatusWrite::L4Route {
                kind: v.kind,
                namespace,
                name,
                status,
            });
        }
    }
    for b in &state.ai_backends {
        let Some((namespace, name, hs)) = find(Kind::AiBackend, &b.metadata) else {
            continue;
        };
        let status = ai_backend_status(b, hs, now);
        if b.status.as_ref().map(norm_ai) != Some(norm_ai(&status)) {
            out.push(StatusWrite::AiBackend {
                namespace,
                name,
                status,
            });
        }
    }
    for k in &state.virtual_keys {
        let Some((namespace, name, hs)) = find(Kind::VirtualKey, &k.metadata) else {
            continue;
        };
        let status = virtual_key_status(k, hs, now);
        if k.status.as_ref().map(norm_key) != Some(norm_key(&status)) {
            out.push(StatusWrite::VirtualKey {
                namespace,
                name,
                status,
            });
        }
    }
    for svc in &state.services {
        let Some((namespace, name, hs)) = find(Kind::Service, &svc.metadata) else {
            continue;
        };
        let status = super::service::service_status(svc, hs, now);
        if svc.status.as_ref().map(super::service::normalized)
            != Some(super::service::normalized(&status))
        {
            out.push(StatusWrite::Service {
                namespace,
                name,
                status,
            });
        }
    }
    out
}

/// `TCPRoute` or `UDPRoute`.
pub fn l4_route_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::UdpRoute => "UDPRoute",
        _ => "TCPRoute",
    }
}

/// One line describing a write without timestamps, for the manifests-mode log.
pub fn summary(w: &StatusWrite) -> String {
    fn conds(c: &[Condition]) -> String {
        c.iter()
            .map(|c| {
                format!(
                    "{}={}({}{})",
                    c.type_,
                    c.status,
                    c.reason,
                    if c.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.message)
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
    match w {
        StatusWrite::GatewayClass { status, .. } => {
            conds(status.conditions.as_deref().unwrap_or_default())
        }
        StatusWrite::AiBackend { status, .. } => {
            conds(status.conditions.as_deref().unwrap_or_default())
        }
        StatusWrite::VirtualKey { status, .. } => {
            conds(status.conditions.as_deref().unwrap_or_default())
        }
        StatusWrite::BackendTlsPolicy { status, .. } => status
            .ancestors
            .iter()
            .map(|a| format!("{}: {}", a.ancestor_ref.name, conds(&a.conditions)))
            .collect::<Vec<_>>()
            .join("; "),
        StatusWrite::Gateway { status, .. } => {
            let addrs: Vec<&str> = status
                .addresses
                .iter()
                .flatten()
                .map(|a| a.value.as_str())
                .collect();
            let listeners: Vec<String> = status
                .listeners
                .iter()
                .flatten()
                .map(|l| {
                    format!(
                        "[{} attachedRoutes={} {}]",
                        l.name,
                        l.attached_routes,
                        conds(&l.conditions)
                    )
                })
                .collect();
            format!(
                "{} addresses=[{}] listeners={}",
                conds(status.conditions.as_deref().unwrap_or_default()),
                addrs.join(","),
                listeners.join("")
            )
        }
        StatusWrite::ListenerSet { status, .. } => {
            let listeners: Vec<String> = status
                .listeners
                .iter()
                .flatten()
                .map(|l| {
                    format!(
                        "[{} attachedRoutes={} {}]",
                        l.name,
                        l.attached_routes,
                        conds(&l.conditions)
                    )
                })
                .collect();
            format!(
                "{} listeners={}",
                conds(status.conditions.as_deref().unwrap_or_default()),
                listeners.join("")
            )
        }
        StatusWrite::Service { status, .. } => {
            let ingress: Vec<String> = status
                .load_balancer
                .iter()
                .flat_map(|l| l.ingress.iter().flatten())
                .flat_map(|i| {
                    i.ports.iter().flatten().map(move |p| {
                        format!(
                            "{}:{}/{}",
                            i.ip.as_deref().unwrap_or(""),
                            p.port,
                            p.protocol
                        )
                    })
                })
                .collect();
            format!(
                "{} ingress=[{}]",
                conds(status.conditions.as_deref().unwrap_or_default()),
                ingress.join(",")
            )
        }
        StatusWrite::HttpRoute { status, .. }
        | StatusWrite::TlsRoute { status, .. }
        | StatusWrite::GrpcRoute { status, .. }
        | StatusWrite::L4Route { status, .. } => status
            .parents
            .iter()
            .filter(|p| p.controller_name == CONTROLLER_NAME)
            .map(|p| {
                let ns = p
                    .parent_ref
                    .namespace
                    .as_deref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default();
                let sec = p
                    .parent_ref
                    .section_name
                    .as_deref()
                    .map(|s| format!("#{s}"))
                    .unwrap_or_default();
                format!(
                    "[parent {ns}{}{sec}: {}]",
                    p.parent_ref.name,
                    conds(&p.conditions)
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests;
