//! fleetgate-hub-admit, admission: everything an agent sends is untrusted. Each object is checked
//! on its own against the tenant's policy and converted from the wire type (`fleetgate-proto`)
//! into the hub's model (`fleetgate-hub-model`); an object that fails is rejected alone, with a
//! reason and a message the tenant reads in its status.
//!
//! Where it sits: `sync` (runtime, `fleetgate-hub`) -> **admit** -> `fleet`/`store` (runtime).
//! Pure: the caller passes the tenant's policy and the current hostname owners; nothing here does
//! I/O. It depends on the wire types and the model only: not on the compiler, the xDS
//! translation or the configuration file, so that Cargo keeps the data path in order.

pub mod ai;
#[cfg(test)]
mod ai_tests;
#[cfg(test)]
mod bounds_tests;
pub mod endpoint;
pub mod gateway_fields;
mod grpc;
mod http;
#[cfg(test)]
mod listener_set_tests;
pub mod mcp;
pub mod mcp_auth;
#[cfg(test)]
mod mcp_tests;
pub mod quota;
mod re2;
mod rule_names;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod virtual_key;
#[cfg(test)]
mod virtual_key_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use fleetgate_hub_model as model;
use fleetgate_proto::spoke::v1 as pb;

use crate::model::policy::{Cluster, Limits, Tenant};
use crate::model::{
    AllowedListeners, AllowedRoutes, AppProtocol, Backend, BackendKind, BackendProblem, Condition,
    Gateway, HeaderModifier, HttpRoute, HttpRouteMatch, HttpRouteRule, Kind, L4Protocol, L4Route,
    Listener, ListenerSet, LoadBalancerService, Meta, ObjectKey, ObjectStatus, ParentKind,
    ParentRef, PathMatch, Protocol, RouteParentStatus, ServicePort, ThinVec,
};

pub use endpoint::Reserved;
pub use http::{MAX_REGEX_LEN, check_regex, parse_duration};

/// Gateway API limits (from the CRD schemas) the hub enforces again, since agents are untrusted.
const MAX_LISTENERS: usize = 64;
const MAX_PARENT_REFS: usize = 32;
const MAX_HOSTNAMES: usize = 16;
const MAX_RULES: usize = 16;
const MAX_MATCHES: usize = 64;
const MAX_HEADERS: usize = 16;
const MAX_BACKENDS: usize = 16;
const MAX_FILTERS: usize = 16;
const MAX_WEIGHT: u32 = 1_000_000;
const MAX_PATH_LEN: usize = 1024;
const MAX_HEADER_VALUE_LEN: usize = 4096;
/// The most ports the hub accepts on one LoadBalancer Service.
const MAX_SERVICE_PORTS: usize = 64;

/// Why an object was rejected: a Gateway API condition reason and a message saying what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
}

fn reject<T>(reason: &'static str, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason,
        message: message.into(),
    })
}

/// What the hub knows about the sender and its neighbours when admitting one object.
pub struct Policy<'a> {
    pub tenant: &'a Tenant,
    pub cluster: &'a Cluster,
    pub limits: &'a Limits,
    /// Hostname claims of all tenants: pattern -> owning tenant.
    pub owners: &'a BTreeMap<String, String>,
    /// The hub's and the data plane's own addresses; no endpoint may lead to one.
    pub reserved: &'a Reserved,
}

/// An admitted object, in fleetgate's model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    Gateway(Gateway),
    HttpRoute(HttpRoute),
    TlsRoute(crate::model::TlsRoute),
    Service(LoadBalancerService),
    L4Route(L4Route),
    GrpcRoute(crate::model::GrpcRoute),
    ListenerSet(ListenerSet),
    AiBackend(crate::model::ai::AiBackend),
    VirtualKey(crate::model::ai::VirtualKeyIntent),
}

impl Admitted {
    /// Puts the object into `intent` under `key` (replacing an older version).
    pub fn insert_into(self, key: ObjectKey, intent: &mut crate::model::ClusterIntent) {
        let id = (key.namespace.clone(), key.name.clone());
        match self {
            Admitted::Gateway(o) => {
                intent.gateways.insert(id, o);
            }
            Admitted::HttpRoute(o) => {
                intent.http_routes.insert(id, o);
            }
            Admitted::TlsRoute(o) => {
                intent.tls_routes.insert(id, o);
            }
            Admitted::Service(o) => {
                intent.services.insert(id, o);
            }
            Admitted::L4Route(o) => {
                intent.l4_routes.insert(key, o);
            }
            Admitted::GrpcRoute(o) => {
                intent.grpc_routes.insert(id, o);
            }
            Admitted::ListenerSet(o) => {
                intent.listener_sets.insert(id, o);
            }
            Admitted::AiBackend(o) => {
                intent.ai_backends.insert(id, o);
            }
            Admitted::VirtualKey(o) => {
                intent.virtual_keys.insert(id, o);
            }
        }
    }

    /// Hostnames (exact or wildcard) the object claims for its tenant.
    pub fn hostnames(&self) -> Vec<String> {
        match self {
            Admitted::Gateway(g) => g
                .listeners
                .iter()
                .filter_map(|l| l.hostname.clone())
                .collect(),
            Admitted::HttpRoute(r) => r.hostnames.clone(),
            Admitted::TlsRoute(r) => r.hostnames.clone(),
            Admitted::Service(_)
            | Admitted::L4Route(_)
            | Admitted::AiBackend(_)
            | Admitted::VirtualKey(_) => Vec::new(),
            Admitted::GrpcRoute(r) => r.hostnames.clone(),
            Admitted::ListenerSet(s) => s
                .listeners
                .iter()
                .filter_map(|l| l.hostname.clone())
                .collect(),
        }
    }
}

/// The key of a wire object, if it names a known kind with valid names.
pub fn object_key(r: &pb::ObjectRef) -> Result<ObjectKey, Rejection> {
    let kind = match pb::Kind::try_from(r.kind) {
        Ok(pb::Kind::Gateway) => Kind::Gateway,
        Ok(pb::Kind::HttpRoute) => Kind::HttpRoute,
        Ok(pb::Kind::TlsRoute) => Kind::TlsRoute,
        Ok(pb::Kind::Service) => Kind::Service,
        Ok(pb::Kind::TcpRoute) => Kind::TcpRoute,
        Ok(pb::Kind::UdpRoute) => Kind::UdpRoute,
        Ok(pb::Kind::GrpcRoute) => Kind::GrpcRoute,
        Ok(pb::Kind::ListenerSet) => Kind::ListenerSet,
        Ok(pb::Kind::AiBackend) => Kind::AiBackend,
        Ok(pb::Kind::VirtualKey) => Kind::VirtualKey,
        _ => {
            return reject(
                "UnsupportedValue",
                format!("unknown object kind {}", r.kind),
            );
        }
    };
    check_k8s_name("namespace", &r.namespace, 63)?;
    // Service names are DNS labels; the other kinds' are DNS subdomains.
    check_k8s_name(
        "name",
        &r.name,
        if kind == Kind::Service { 63 } else { 253 },
    )?;
    Ok(ObjectKey {
        kind,
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    })
}

/// Kubernetes object names: DNS subdomains (namespaces: DNS labels).
fn check_k8s_name(what: &str, s: &str, max: usize) -> Result<(), Rejection> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && (max > 63 || !s.contains('.'));
    if ok {
        Ok(())
    } else {
        reject(
            "UnsupportedValue",
            format!("{what} {s:?} is not a valid Kubernetes name"),
        )
    }
}

/// Admits one object. On success the object is in fleetgate's model; on failure the rejection
/// says why, for the tenant's status.
pub fn admit(obj: &pb::Object, policy: &Policy<'_>) -> Result<Admitted, Rejection> {
    let Some(r) = &obj.r#ref else {
        return reject("UnsupportedValue", "object without ref");
    };
    let key = object_key(r)?;
    let meta = Meta {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        generation: obj.generation,
        creation_timestamp: obj.creation_timestamp.chars().take(64).collect(),
    };
    match (&key.kind, &obj.spec) {
        (Kind::Gateway, Some(pb::object::Spec::Gateway(g))) => {
            admit_gateway(meta, g, policy).map(Admitted::Gateway)
        }
        (Kind::HttpRoute, Some(pb::object::Spec::HttpRoute(h))) => {
            admit_http_route(meta, h, policy).map(Admitted::HttpRoute)
        }
        (Kind::TlsRoute, Some(pb::object::Spec::TlsRoute(t))) => {
            tls::admit_tls_route(meta, t, policy).map(Admitted::TlsRoute)
        }
        (Kind::Service, Some(pb::object::Spec::LoadBalancerService(svc))) => {
            admit_service(meta, svc, policy).map(Admitted::Service)
        }
        (Kind::TcpRoute, Some(pb::object::Spec::L4Route(r))) => {
            admit_l4_route(meta, L4Protocol::Tcp, r, policy).map(Admitted::L4Route)
        }
        (Kind::UdpRoute, Some(pb::object::Spec::L4Route(r))) => {
            admit_l4_route(meta, L4Protocol::Udp, r, policy).map(Admitted::L4Route)
        }
        (Kind::GrpcRoute, Some(pb::object::Spec::GrpcRoute(g))) => {
            grpc::admit_grpc_route(meta, g, policy).map(Admitted::GrpcRoute)
        }
        (Kind::ListenerSet, Some(pb::object::Spec::ListenerSet(s))) => {
            admit_listener_set(meta, s, policy).map(Admitted::ListenerSet)
        }
        (Kind::AiBackend, Some(pb::object::Spec::AiBackend(b))) => {
            ai::admit_ai_backend(meta, b, policy).map(Admitted::AiBackend)
        }
        (Kind::VirtualKey, Some(pb::object::Spec::VirtualKey(k))) => {
            virtual_key::admit_virtual_key(meta, k).map(Admitted::VirtualKey)
        }
        _ => reject(
            "UnsupportedValue",
            "the object's spec does not match its kind",
        ),
    }
}

fn admit_gateway(meta: Meta, g: &pb::Gateway, policy: &Policy<'_>) -> Result<Gateway, Rejection> {
    gateway_fields::check(g)?;
    let listeners = admit_listeners("Gateway", &g.listeners, policy)?;
    check_k8s_name("gatewayClassName", &g.gateway_class_name, 253)?;
    let allowed = g.allowed_listeners.clone().unwrap_or_default();
    let allowed_listeners = match allowed.from.as_str() {
        "" | "None" => AllowedListeners::None,
        "Same" => AllowedListeners::Same,
        "All" => AllowedListeners::All,
        "Selector" => {
            for ns in &allowed.namespaces {
                check_k8s_name("allowedListeners namespace", ns, 63)?;
            }
            AllowedListeners::Namespaces(allowed.namespaces.iter().cloned().collect())
        }
        other => {
            return reject(
                "UnsupportedValue",
                format!(
                    "allowedListeners.namespaces.from {other:?} is not None, Same, All or Selector"
                ),
            );
        }
    };
    Ok(Gateway {
        meta,
        class_name: g.gateway_class_name.clone(),
        listeners,
        allowed_listeners,
    })
}

/// A ListenerSet: its listeners get exactly the checks of a Gateway's (hostnames owned by the
/// tenant, certificates); whether its parent Gateway takes it is decided by the compiler.
fn admit_listener_set(
    meta: Meta,
    s: &pb::ListenerSet,
    policy: &Policy<'_>,
) -> Result<ListenerSet, Rejection> {
    check_k8s_name("parentRef namespace", &s.parent_namespace, 63)?;
    check_k8s_name("parentRef name", &s.parent_name, 253)?;
    let listeners = admit_listeners("ListenerSet", &s.listeners, policy)?;
    Ok(ListenerSet {
        meta,
        parent: (s.parent_namespace.clone(), s.parent_name.clone()),
        listeners,
    })
}

/// The listeners of a Gateway or a ListenerSet (`what`).
fn admit_listeners(
    what: &str,
    raw: &[pb::Listener],
    policy: &Policy<'_>,
) -> Result<Vec<Listener>, Rejection> {
    if raw.is_empty() || raw.len() > MAX_LISTENERS {
        return reject(
            "ListenersNotValid",
            format!("a {what} needs 1 to {MAX_LISTENERS} listeners"),
        );
    }
    let mut names = BTreeSet::new();
    let mut listeners = Vec::with_capacity(raw.len());
    for l in raw {
        check_section_name(&l.name)?;
        if !names.insert(l.name.as_str()) {
            return reject(
                "ListenersNotValid",
                format!("listener name {:?} is used twice", l.name),
            );
        }
        let port = u16::try_from(l.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or(Rejection {
                reason: "ListenersNotValid",
                message: format!("listener {:?}: port {} is not 1-65535", l.name, l.port),
            })?;
        let hostname = if l.hostname.is_empty() {
            None
        } else {
            let h = check_hostname(&l.hostname)?;
            check_owned(&h, policy)?;
            Some(h)
        };
        let protocol = match l.protocol.as_str() {
            "HTTP" => Some(Protocol::Http),
            "HTTPS" => Some(Protocol::Https),
            "TLS" => Some(Protocol::Tls),
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        };
        let allowed = l.allowed_routes.clone().unwrap_or_default();
        let allowed_routes = match allowed.from.as_str() {
            "" | "Same" => AllowedRoutes::Same,
            "All" => AllowedRoutes::All,
            "Selector" => {
                for ns in &allowed.namespaces {
                    check_k8s_name("namespace", ns, 63)?;
                }
                AllowedRoutes::Namespaces(allowed.namespaces.iter().cloned().collect())
            }
            other => {
                return reject(
                    "ListenersNotValid",
                    format!(
                        "listener {:?}: allowedRoutes.namespaces.from {other:?} is not Same, All or Selector",
                        l.name
                    ),
                );
            }
        };
        if allowed.kinds.len() > 8 {
            return reject(
                "ListenersNotValid",
                format!(
                    "listener {:?}: allowedRoutes.kinds lists {} kinds; at most 8 are allowed",
                    l.name,
                    allowed.kinds.len()
                ),
            );
        }
        let mut allowed_kinds = Vec::new();
        for k in &allowed.kinds {
            if k.group.len() > 253 || k.kind.is_empty() || k.kind.len() > 63 {
                return reject(
                    "ListenersNotValid",
                    format!(
                        "listener {:?}: allowedRoutes.kinds entries need a kind of 1-63 characters and a group of at most 253",
                        l.name
                    ),
                );
            }
            allowed_kinds.push(crate::model::RouteGroupKind {
                group: k.group.clone(),
                kind: k.kind.clone(),
            });
        }
        let tls = tls::admit_listener_tls(&l.name, &l.protocol, l.tls.as_ref(), policy)?;
        listeners.push(Listener {
            name: l.name.clone(),
            protocol,
            protocol_name: l.protocol.chars().take(64).collect(),
            port,
            hostname,
            allowed_routes,
            tls,
            allowed_kinds,
        });
    }
    Ok(listeners)
}

fn admit_http_route(
    meta: Meta,
    h: &pb::HttpRoute,
    policy: &Policy<'_>,
) -> Result<HttpRoute, Rejection> {
    if h.parent_refs.len() > MAX_PARENT_REFS {
        return reject(
            "UnsupportedValue",
            format!("at most {MAX_PARENT_REFS} parentRefs"),
        );
    }
    if h.hostnames.len() > MAX_HOSTNAMES {
        return reject(
            "UnsupportedValue",
            format!("at most {MAX_HOSTNAMES} hostnames"),
        );
    }
    if h.rules.len() > MAX_RULES {
        return reject("UnsupportedValue", format!("at most {MAX_RULES} rules"));
    }
    let parent_refs = admit_parent_refs(&h.parent_refs)?;
    let hostnames = admit_route_hostnames(&h.hostnames, policy)?;
    let mut rules = Vec::with_capacity(h.rules.len());
    for (i, r) in h.rules.iter().enumerate() {
        rules.push(admit_rule(i, r, policy)?);
    }
    rule_names::check_unique(rules.iter().map(|r| r.name.as_deref()))?;
    Ok(HttpRoute {
        meta,
        parent_refs,
        hostnames,
        rules,
    })
}

/// A route's hostnames (any route kind): valid, lower-cased, owned by the tenant.
fn admit_route_hostnames(raw: &[String], policy: &Policy<'_>) -> Result<Vec<String>, Rejection> {
    let mut hostnames = Vec::with_capacity(raw.len());
    for r in raw {
        let host = check_hostname(r)?;
        check_owned(&host, policy)?;
        hostnames.push(host);
    }
    Ok(hostnames)
}

fn admit_rule(
    i: usize,
    r: &pb::HttpRouteRule,
    policy: &Policy<'_>,
) -> Result<HttpRouteRule, Rejection> {
    let at = |what: &str| format!("rules[{i}].{what}");
    if r.matches.len() > MAX_MATCHES
        || r.backends.len() > MAX_BACKENDS
        || r.filters.len() > MAX_FILTERS
    {
        return reject(
            "UnsupportedValue",
            format!(
                "{}: at most {MAX_MATCHES} matches, {MAX_BACKENDS} backendRefs and {MAX_FILTERS} filters",
                at("")
            ),
        );
    }
    let name = rule_names::admit_rule_name(i, &r.name)?;
    // Sized exactly: a growing Vec keeps room for four of these large elements, which was
    // most of the admitted intent's memory at 10,000 routes (docs/benchmarks.md, eighth round).
    let mut matches = ThinVec::with_capacity(r.matches.len().max(1));
    for (mi, m) in r.matches.iter().enumerate() {
        matches.push(http::admit_match(&at(&format!("matches[{mi}]")), m)?);
    }
    if matches.is_empty() {
        matches.push(HttpRouteMatch {
            path: PathMatch::Prefix("/".into()),
            headers: ThinVec::new(),
            query_params: ThinVec::new(),
            method: None,
        });
    }
    let mut filters = ThinVec::with_capacity(r.filters.len());
    for (fi, f) in r.filters.iter().enumerate() {
        filters.push(http::admit_filter(
            &at(&format!("filters[{fi}]")),
            f,
            policy,
        )?);
    }
    http::check_filter_set(&format!("rules[{i}]"), &filters, &matches)?;
    let timeouts = http::admit_timeouts(&format!("rules[{i}]"), r.timeouts.as_ref())?;
    let mut backends = ThinVec::with_capacity(r.backends.len());
    for b in &r.backends {
        backends.push(admit_backend_ref(b, policy, true)?);
    }
    Ok(HttpRouteRule {
        name,
        matches,
        filters,
        backends,
        timeouts,
    })
}

/// A route's parentRefs (any route kind).
fn admit_parent_refs(refs: &[pb::ParentRef]) -> Result<Vec<ParentRef>, Rejection> {
    if refs.len() > MAX_PARENT_REFS {
        return reject(
            "UnsupportedValue",
            format!("at most {MAX_PARENT_REFS} parentRefs"),
        );
    }
    let mut out = Vec::with_capacity(refs.len());
    for p in refs {
        check_k8s_name("parentRef namespace", &p.namespace, 63)?;
        check_k8s_name("parentRef name", &p.name, 253)?;
        if !p.section_name.is_empty() {
            check_section_name(&p.section_name)?;
        }
        out.push(ParentRef {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            section_name: (!p.section_name.is_empty()).then(|| p.section_name.clone()),
            port: u16::try_from(p.port).ok().filter(|p| *p != 0),
            kind: parent_kind(p)?,
        });
    }
    Ok(out)
}

/// What a parentRef names: a Gateway (group and kind may be left empty) or a ListenerSet.
pub fn parent_kind(p: &pb::ParentRef) -> Result<ParentKind, Rejection> {
    if !p.group.is_empty() && p.group != crate::model::GATEWAY_GROUP {
        return reject(
            "UnsupportedValue",
            format!(
                "parentRef group {:?} is not served; use gateway.networking.k8s.io",
                p.group.chars().take(253).collect::<String>()
            ),
        );
    }
    match p.kind.as_str() {
        "" | "Gateway" => Ok(ParentKind::Gateway),
        "ListenerSet" => Ok(ParentKind::ListenerSet),
        other => reject(
            "UnsupportedValue",
            format!(
                "parentRef kind {:?} is not served; use Gateway or ListenerSet",
                other.chars().take(63).collect::<String>()
            ),
        ),
    }
}

/// A TCPRoute or UDPRoute: parentRefs and backends checked like an HTTPRoute's.
fn admit_l4_route(
    meta: Meta,
    protocol: L4Protocol,
    r: &pb::L4Route,
    policy: &Policy<'_>,
) -> Result<L4Route, Rejection> {
    let parent_refs = admit_parent_refs(&r.parent_refs)?;
    if r.backends.len() > MAX_BACKENDS {
        return reject(
            "UnsupportedValue",
            format!("at most {MAX_BACKENDS} backendRefs"),
        );
    }
    let mut backends = Vec::with_capacity(r.backends.len());
    for b in &r.backends {
        backends.push(admit_backend(b, policy)?);
    }
    Ok(L4Route {
        meta,
        protocol,
        parent_refs,
        backends,
    })
}

fn admit_service(
    meta: Meta,
    svc: &pb::LoadBalancerService,
    policy: &Policy<'_>,
) -> Result<LoadBalancerService, Rejection> {
    if svc.ports.is_empty() || svc.ports.len() > MAX_SERVICE_PORTS {
        return reject(
            "UnsupportedValue",
            format!("a LoadBalancer Service needs 1 to {MAX_SERVICE_PORTS} ports"),
        );
    }
    let mut ports: Vec<ServicePort> = Vec::with_capacity(svc.ports.len());
    for p in &svc.ports {
        if !p.name.is_empty() {
            check_k8s_name("port name", &p.name, 63)?;
        }
        let protocol = match p.protocol.as_str() {
            "TCP" | "" => L4Protocol::Tcp,
            "UDP" => L4Protocol::Udp,
            other => {
                return reject(
                    "UnsupportedProtocol",
                    format!(
                        "port {}: protocol {:?} is not supported; fleetgate load-balances TCP and UDP",
                        p.port,
                        other.chars().take(16).collect::<String>()
                    ),
                );
            }
        };
        let port = u16::try_from(p.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or(Rejection {
                reason: "UnsupportedValue",
                message: format!("port {} is not 1-65535", p.port),
            })?;
        if ports
            .iter()
            .any(|q| q.port == port && q.protocol == protocol)
        {
            return reject(
                "UnsupportedValue",
                format!("port {port}/{} is listed twice", protocol.as_str()),
            );
        }
        if p.endpoints.len() > policy.limits.max_endpoints_per_backend {
            return reject(
                "UnsupportedValue",
                format!(
                    "port {port}: {} endpoints, the limit is {}",
                    p.endpoints.len(),
                    policy.limits.max_endpoints_per_backend
                ),
            );
        }
        let mut endpoints = Vec::new();
        for e in p.endpoints.iter().filter(|e| e.ready) {
            endpoints.push(check_endpoint(e, policy)?);
        }
        endpoints.sort();
        endpoints.dedup();
        let problem = p.problem.as_ref().map(|pr| BackendProblem {
            reason: match pr.reason.as_str() {
                r @ ("BackendNotFound" | "UnsupportedProtocol") => r.to_string(),
                _ => "BackendNotFound".to_string(),
            },
            message: pr.message.chars().take(512).collect(),
        });
        ports.push(ServicePort {
            name: p.name.clone(),
            protocol,
            port,
            problem,
            endpoints,
        });
    }
    ports.sort_by_key(|p| (p.port, p.protocol));
    Ok(LoadBalancerService { meta, ports })
}

/// A backendRef where only Services are served (GRPCRoute, TLSRoute, TCPRoute, UDPRoute, and
/// RequestMirror): one naming an AgentgatewayBackend gets the problem InvalidKind.
fn admit_backend(b: &pb::Backend, policy: &Policy<'_>) -> Result<Backend, Rejection> {
    admit_backend_ref(b, policy, false)
}

/// What a backendRef names: a Service (`""` or `Service`) or, where `ai_allowed` (an HTTPRoute
/// rule), an AgentgatewayBackend. Any other kind is the problem InvalidKind: its share of
/// traffic gets 500.
fn backend_kind(b: &pb::Backend, ai_allowed: bool) -> (BackendKind, Option<BackendProblem>) {
    let invalid = |message: String| {
        Some(BackendProblem {
            reason: "InvalidKind".to_string(),
            message,
        })
    };
    match b.kind.as_str() {
        "" | "Service" => (BackendKind::Service, None),
        crate::model::AI_BACKEND_KIND if ai_allowed => (BackendKind::AiBackend, None),
        crate::model::AI_BACKEND_KIND => (
            BackendKind::Service,
            invalid(format!(
                "backendRef {}: an {} is served only as a backendRef of an HTTPRoute rule",
                b.name,
                crate::model::AI_BACKEND_KIND
            )),
        ),
        other => (
            BackendKind::Service,
            invalid(format!(
                "backendRef {}: kind {:?} is not served; use a Service{}",
                b.name,
                other.chars().take(63).collect::<String>(),
                if ai_allowed {
                    " or an AgentgatewayBackend (group agentgateway.dev)"
                } else {
                    ""
                }
            )),
        ),
    }
}

fn admit_backend_ref(
    b: &pb::Backend,
    policy: &Policy<'_>,
    ai_allowed: bool,
) -> Result<Backend, Rejection> {
    check_k8s_name("backendRef namespace", &b.namespace, 63)?;
    check_k8s_name("backendRef name", &b.name, 253)?;
    let (kind, kind_problem) = backend_kind(b, ai_allowed);
    if b.weight > MAX_WEIGHT {
        return reject(
            "UnsupportedValue",
            format!("backendRef {}: weight above {MAX_WEIGHT}", b.name),
        );
    }
    if b.endpoints.len() > policy.limits.max_endpoints_per_backend {
        return reject(
            "UnsupportedValue",
            format!(
                "backendRef {}: {} endpoints, the limit is {}",
                b.name,
                b.endpoints.len(),
                policy.limits.max_endpoints_per_backend
            ),
        );
    }
    let mut endpoints = ThinVec::with_capacity(b.endpoints.len());
    // An AgentgatewayBackend's endpoints are its own (`ai`), never the backendRef's; a kind
    // that is not served has none.
    if kind == BackendKind::Service && kind_problem.is_none() {
        for e in b.endpoints.iter().filter(|e| e.ready) {
            endpoints.push(check_endpoint(e, policy)?);
        }
    }
    endpoints.sort();
    endpoints.dedup();
    endpoints.shrink_to_fit();
    let problem = b.problem.as_ref().map(|p| BackendProblem {
        reason: match p.reason.as_str() {
            r @ ("BackendNotFound" | "RefNotPermitted" | "InvalidKind" | "UnsupportedProtocol") => {
                r.to_string()
            }
            _ => "BackendNotFound".to_string(),
        },
        message: p.message.chars().take(512).collect(),
    });
    let problem = problem.or(kind_problem).map(Box::new);
    let app_protocol = match b.app_protocol.as_str() {
        "kubernetes.io/h2c" => AppProtocol::H2c,
        "kubernetes.io/ws" => AppProtocol::WebSocket,
        "agentgateway.dev/a2a" => AppProtocol::A2a,
        _ => AppProtocol::Http1,
    };
    let mut request_headers = HeaderModifier::default();
    let mut response_headers = HeaderModifier::default();
    if b.filters.len() > MAX_FILTERS {
        return reject(
            "UnsupportedValue",
            format!("backendRef {}: at most {MAX_FILTERS} filters", b.name),
        );
    }
    for f in &b.filters {
        let (target, m) = match &f.kind {
            Some(pb::http_filter::Kind::RequestHeaderModifier(m)) => (&mut request_headers, m),
            Some(pb::http_filter::Kind::ResponseHeaderModifier(m)) => (&mut response_headers, m),
            _ => {
                return reject(
                    "UnsupportedValue",
                    format!(
                        "backendRef {}: only RequestHeaderModifier and ResponseHeaderModifier filters are supported on a backendRef; move the others to the rule",
                        b.name
                    ),
                );
            }
        };
        let hm = http::admit_header_modifier(m)?;
        target.set.extend(hm.set);
        target.add.extend(hm.add);
        target.remove.extend(hm.remove);
    }
    Ok(Backend {
        namespace: b.namespace.clone(),
        name: b.name.clone(),
        port: u16::try_from(b.port).unwrap_or(0),
        weight: b.weight,
        problem,
        endpoints,
        app_protocol,
        request_headers,
        response_headers,
        kind,
    })
}

fn check_endpoint(e: &pb::Endpoint, policy: &Policy<'_>) -> Result<SocketAddr, Rejection> {
    let ip: IpAddr = e.address.parse().map_err(|_| Rejection {
        reason: "UnsupportedValue",
        message: format!(
            "endpoint {:?} is not an IP address; the agent resolves names, the hub does not",
            e.address.chars().take(64).collect::<String>()
        ),
    })?;
    let port = u16::try_from(e.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(Rejection {
            reason: "UnsupportedValue",
            message: format!("endpoint {ip}: port {} is not 1-65535", e.port),
        })?;
    endpoint::check(ip, port, policy.cluster, policy.reserved)
}

/// Listener, rule and section names: DNS labels.
fn check_section_name(s: &str) -> Result<(), Rejection> {
    check_k8s_name("section name", s, 63)
}

/// A hostname or `*.` wildcard, lower-cased.
fn check_hostname(raw: &str) -> Result<String, Rejection> {
    let h = raw.to_ascii_lowercase();
    if crate::model::policy::is_hostname_pattern(&h) && h.contains('.') {
        Ok(h)
    } else {
        reject(
            "UnsupportedValue",
            format!(
                "hostname {:?} is not a fully qualified hostname or *.wildcard",
                raw.chars().take(253).collect::<String>()
            ),
        )
    }
}

fn check_path(p: &str) -> Result<(), Rejection> {
    if !p.starts_with('/')
        || p.len() > MAX_PATH_LEN
        || p.bytes()
            .any(|b| b.is_ascii_control() || b == b'?' || b == b'#' || b == b' ')
        || p.contains("//")
    {
        return reject(
            "UnsupportedValue",
            format!(
                "path {:?} must start with '/', have no '?', '#', '//', spaces or control characters, and be at most {MAX_PATH_LEN} bytes",
                p.chars().take(64).collect::<String>()
            ),
        );
    }
    Ok(())
}

/// An HTTP header name (RFC 9110 token, lower-cased) and value (no CR, LF or NUL).
fn check_header(name: &str, value: &str) -> Result<(String, String), Rejection> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || name.len() > 256 || !name.bytes().all(token) {
        return reject(
            "UnsupportedValue",
            format!(
                "header name {:?} is not a valid HTTP token",
                name.chars().take(64).collect::<String>()
            ),
        );
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with(':') || lower == "host" {
        return reject(
            "UnsupportedValue",
            format!("header {name:?} cannot be matched or modified"),
        );
    }
    if value.len() > MAX_HEADER_VALUE_LEN
        || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
    {
        return reject(
            "UnsupportedValue",
            format!(
                "header {name:?}: the value has CR, LF or NUL, or is over {MAX_HEADER_VALUE_LEN} bytes"
            ),
        );
    }
    Ok((lower, value.to_string()))
}

/// Whether hostname pattern `h` is inside pattern `p` (both lower-case, exact or `*.` wildcard).
pub fn pattern_covers(p: &str, h: &str) -> bool {
    match (p.strip_prefix("*."), h.strip_prefix("*.")) {
        (None, None) => p == h,
        (None, Some(_)) => false,
        (Some(ps), None) => h.ends_with(&format!(".{ps}")),
        (Some(ps), Some(hs)) => hs == ps || hs.ends_with(&format!(".{ps}")),
    }
}

/// Whether two hostname patterns can match a common hostname.
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    pattern_covers(a, b) || pattern_covers(b, a)
}

/// The first claim (in name order) of a tenant other than `tenant` that overlaps pattern `h`.
/// Only the claim equal to an exact hostname and the wildcards above it can overlap it: those
/// are looked up, one per label (a scan of every claim of the fleet per hostname made admitting
/// 1,000 tenants' routes quadratic). A wildcard can also overlap the claims below it: then
/// every claim is compared.
fn conflicting_claim<'a>(
    h: &str,
    tenant: &str,
    owners: &'a BTreeMap<String, String>,
) -> Option<&'a str> {
    if h.starts_with("*.") {
        return owners
            .iter()
            .find(|(claim, owner)| *owner != tenant && patterns_overlap(claim, h))
            .map(|(claim, _)| claim.as_str());
    }
    let others = |claim: &str| {
        owners
            .get_key_value(claim)
            .filter(|(_, owner)| *owner != tenant)
            .map(|(claim, _)| claim.as_str())
    };
    let mut found = others(h);
    let mut rest = h;
    while let Some((_, parent)) = rest.split_once('.') {
        if let Some(claim) = others(&format!("*.{parent}")) {
            found = Some(found.map_or(claim, |f| f.min(claim)));
        }
        rest = parent;
    }
    found
}

fn check_owned(h: &str, policy: &Policy<'_>) -> Result<(), Rejection> {
    let tenant = &policy.tenant.name;
    if !policy.tenant.hostnames.iter().any(|p| pattern_covers(p, h)) {
        return reject(
            "HostnameNotAllowed",
            format!(
                "hostname {h:?} is not allowed for tenant {tenant}; it may use {}; ask the hub operator to add it",
                policy.tenant.hostnames.join(", ")
            ),
        );
    }
    if let Some(claim) = conflicting_claim(h, tenant, policy.owners) {
        return reject(
            "HostnameConflict",
            format!(
                "hostname {h:?} overlaps {claim:?}, which another tenant already serves; use another hostname"
            ),
        );
    }
    Ok(())
}

/// The status of a rejected object: Accepted=False with the rejection, on the object (Gateway) or
/// on every parent (HTTPRoute).
pub fn rejected_status(key: &ObjectKey, obj: &pb::Object, rejection: &Rejection) -> ObjectStatus {
    let accepted = Condition::new("Accepted", false, rejection.reason, &rejection.message);
    let mut status = ObjectStatus {
        key: key.clone(),
        observed_generation: obj.generation,
        conditions: vec![],
        addresses: vec![],
        listeners: vec![],
        parents: vec![],
        load_balancer: vec![],
        attached_listener_sets: 0,
    };
    let parent_refs = match (&key.kind, &obj.spec) {
        (Kind::HttpRoute, Some(pb::object::Spec::HttpRoute(h))) => Some(&h.parent_refs),
        (Kind::TlsRoute, Some(pb::object::Spec::TlsRoute(t))) => Some(&t.parent_refs),
        (Kind::GrpcRoute, Some(pb::object::Spec::GrpcRoute(g))) => Some(&g.parent_refs),
        (Kind::TcpRoute | Kind::UdpRoute, Some(pb::object::Spec::L4Route(r))) => {
            Some(&r.parent_refs)
        }
        _ => None,
    };
    match parent_refs {
        Some(parent_refs) => {
            status.parents = parent_refs
                .iter()
                .take(MAX_PARENT_REFS)
                .map(|p| RouteParentStatus {
                    parent_ref: ParentRef {
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                        section_name: (!p.section_name.is_empty()).then(|| p.section_name.clone()),
                        port: u16::try_from(p.port).ok().filter(|p| *p != 0),
                        kind: parent_kind(p).unwrap_or_default(),
                    },
                    conditions: vec![
                        accepted.clone(),
                        Condition::new("ResolvedRefs", true, "ResolvedRefs", ""),
                    ],
                })
                .collect();
        }
        None if key.kind == Kind::AiBackend => {
            status.conditions = vec![accepted, ai_resolved_refs(rejection)];
        }
        None if key.kind == Kind::VirtualKey => {
            status.conditions = vec![
                accepted,
                Condition::new(
                    "ResolvedRefs",
                    true,
                    "ResolvedRefs",
                    "the key's references are not what was rejected; see Accepted",
                ),
            ];
        }
        // A Gateway that asks for an address fleetgate cannot give: accepted, not programmed
        // (Gateway API: AddressNotUsable is a Programmed reason).
        None if key.kind == Kind::Gateway
            && rejection.reason == gateway_fields::ADDRESS_NOT_USABLE =>
        {
            status.conditions = vec![
                Condition::new(
                    "Accepted",
                    true,
                    "Accepted",
                    "accepted, but not programmed: see Programmed",
                ),
                Condition::new("Programmed", false, rejection.reason, &rejection.message),
            ];
        }
        None => {
            status.conditions = vec![
                accepted,
                Condition::new("Programmed", false, "Invalid", &rejection.message),
            ];
        }
    }
    status
}

/// The ResolvedRefs condition of a rejected AgentgatewayBackend: False when the rejection is
/// about where the backend leads (its endpoints, its external host, its Service), True when its
/// references are not what is wrong.
fn ai_resolved_refs(rejection: &Rejection) -> Condition {
    match rejection.reason {
        "EndpointNotAllowed" | ai::EGRESS_NOT_ALLOWED | "BackendNotFound" | "RefNotPermitted" => {
            Condition::new("ResolvedRefs", false, rejection.reason, &rejection.message)
        }
        _ => Condition::new(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "the backend's references are not what was rejected; see Accepted",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::Fixture;
    use super::*;
    use crate::model::HttpFilter;

    fn route(hostnames: &[&str], endpoints: &[(&str, u32)]) -> pb::Object {
        pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: pb::Kind::HttpRoute as i32,
                namespace: "default".into(),
                name: "web".into(),
            }),
            generation: 3,
            creation_timestamp: "2026-01-01T00:00:00Z".into(),
            spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
                parent_refs: vec![pb::ParentRef {
                    namespace: "default".into(),
                    name: "gw".into(),
                    ..Default::default()
                }],
                hostnames: hostnames.iter().map(|s| s.to_string()).collect(),
                rules: vec![pb::HttpRouteRule {
                    backends: vec![pb::Backend {
                        namespace: "default".into(),
                        name: "svc".into(),
                        port: 80,
                        weight: 1,
                        problem: None,
                        app_protocol: String::new(),
                        filters: vec![],
                        endpoints: endpoints
                            .iter()
                            .map(|(a, p)| pb::Endpoint {
                                address: a.to_string(),
                                port: *p,
                                ready: true,
                            })
                            .collect(),
                        kind: String::new(),
                    }],
                    ..Default::default()
                }],
            })),
        }
    }

    #[test]
    fn admits_owned_hostnames_and_endpoints_in_cidr() {
        let f = Fixture::new();
        let got = admit(
            &route(&["App.A.example"], &[("10.1.2.3", 30080)]),
            &f.policy(),
        )
        .unwrap();
        let Admitted::HttpRoute(r) = got else {
            panic!()
        };
        assert_eq!(r.hostnames, vec!["app.a.example"]);
        assert_eq!(r.rules[0].matches[0].path, PathMatch::Prefix("/".into()));
        assert_eq!(
            r.rules[0].backends[0].endpoints,
            vec!["10.1.2.3:30080".parse().unwrap()]
        );
    }

    #[test]
    fn rejections_name_what_to_change() {
        let f = Fixture::new();
        // (route hostnames, endpoints, expected reason, words the message must contain)
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, u32)], &'a str, &'a str);
        let cases: &[Case] = &[
            (
                &["app.b.example"],
                &[],
                "HostnameNotAllowed",
                "not allowed for tenant a",
            ),
            (&["a.example"], &[], "HostnameNotAllowed", "*.a.example"),
            (&["*.example"], &[], "HostnameNotAllowed", "not allowed"),
            (
                &["x.a.example"],
                &[("10.2.0.1", 80)],
                "EndpointNotAllowed",
                "outside the networks",
            ),
            (
                &["x.a.example"],
                &[("127.0.0.1", 80)],
                "EndpointNotAllowed",
                "outside",
            ),
            (
                &["x.a.example"],
                &[("169.254.169.254", 80)],
                "EndpointNotAllowed",
                "outside",
            ),
            (
                &["x.a.example"],
                &[("10.1.0.9", 7443)],
                "EndpointNotAllowed",
                "the hub",
            ),
            (
                &["x.a.example"],
                &[("db.default.svc", 80)],
                "UnsupportedValue",
                "not an IP",
            ),
            (
                &["x.a.example"],
                &[("10.1.0.1", 0)],
                "UnsupportedValue",
                "port",
            ),
            (
                &["bad host"],
                &[],
                "UnsupportedValue",
                "not a fully qualified",
            ),
        ];
        for (hosts, eps, reason, msg) in cases {
            let err = admit(&route(hosts, eps), &f.policy()).unwrap_err();
            assert_eq!(err.reason, *reason, "{hosts:?} {eps:?}: {}", err.message);
            assert!(
                err.message.contains(msg),
                "{hosts:?} {eps:?}: {}",
                err.message
            );
        }
    }

    #[test]
    fn special_addresses_need_explicit_permission() {
        let mut f = Fixture::new();
        f.cluster.endpoint_cidrs = vec!["127.0.1.0/24".parse().unwrap()];
        assert_eq!(
            admit(&route(&["x.a.example"], &[("127.0.1.5", 80)]), &f.policy())
                .unwrap_err()
                .reason,
            "EndpointNotAllowed"
        );
        f.cluster.allow_special_addresses = true;
        assert!(admit(&route(&["x.a.example"], &[("127.0.1.5", 80)]), &f.policy()).is_ok());
    }

    #[test]
    fn another_tenants_claim_wins() {
        let mut f = Fixture::new();
        f.tenant.hostnames.push("*.b.example".into());
        f.owners.insert("shop.example".into(), "c".into());
        for h in [
            "x.b.example",
            "*.b.example",
            "*.y.b.example",
            "shop.example",
        ] {
            let err = admit(&route(&[h], &[]), &f.policy()).unwrap_err();
            assert_eq!(err.reason, "HostnameConflict", "{h}");
        }
        // Its own claims are no conflict.
        f.owners.insert("*.a.example".into(), "a".into());
        assert!(admit(&route(&["x.a.example"], &[]), &f.policy()).is_ok());
    }

    #[test]
    fn hostile_strings_are_refused() {
        let f = Fixture::new();
        let mut o = route(&["x.a.example"], &[]);
        if let Some(pb::object::Spec::HttpRoute(h)) = &mut o.spec {
            h.rules[0].matches.push(pb::HttpRouteMatch {
                path: Some(pb::PathMatch {
                    r#type: pb::path_match::Type::Exact as i32,
                    value: "/a\r\nX-Evil: 1".into(),
                }),
                ..Default::default()
            });
        }
        assert_eq!(
            admit(&o, &f.policy()).unwrap_err().reason,
            "UnsupportedValue"
        );
        let mut o = route(&["x.a.example"], &[]);
        o.r#ref.as_mut().unwrap().name = "../../etc".into();
        assert_eq!(
            admit(&o, &f.policy()).unwrap_err().reason,
            "UnsupportedValue"
        );
        let mut o = route(&["x.a.example"], &[]);
        o.spec = Some(pb::object::Spec::Gateway(pb::Gateway::default()));
        assert!(admit(&o, &f.policy()).is_err());
    }

    /// (protocol, port, endpoints (address, port)).
    type PortSpec<'a> = (&'a str, u32, &'a [(&'a str, u32)]);

    fn lb_service(ports: &[PortSpec<'_>]) -> pb::Object {
        pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: pb::Kind::Service as i32,
                namespace: "default".into(),
                name: "db".into(),
            }),
            generation: 1,
            creation_timestamp: String::new(),
            spec: Some(pb::object::Spec::LoadBalancerService(
                pb::LoadBalancerService {
                    ports: ports
                        .iter()
                        .map(|(proto, port, eps)| pb::ServicePort {
                            name: String::new(),
                            protocol: proto.to_string(),
                            port: *port,
                            endpoints: eps
                                .iter()
                                .map(|(a, p)| pb::Endpoint {
                                    address: a.to_string(),
                                    port: *p,
                                    ready: true,
                                })
                                .collect(),
                            problem: None,
                        })
                        .collect(),
                },
            )),
        }
    }

    #[test]
    fn load_balancer_services_table() {
        let f = Fixture::new();
        let ok = admit(
            &lb_service(&[("UDP", 53, &[]), ("TCP", 53, &[("10.1.0.5", 30053)])]),
            &f.policy(),
        )
        .unwrap();
        let Admitted::Service(s) = ok else { panic!() };
        assert_eq!(
            s.ports
                .iter()
                .map(|p| (p.port, p.protocol))
                .collect::<Vec<_>>(),
            vec![(53, L4Protocol::Tcp), (53, L4Protocol::Udp)]
        );
        assert_eq!(
            s.ports[0].endpoints,
            vec!["10.1.0.5:30053".parse().unwrap()]
        );
        type Case<'a> = (&'a [PortSpec<'a>], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[], "UnsupportedValue", "1 to"),
            (&[("SCTP", 80, &[])], "UnsupportedProtocol", "TCP and UDP"),
            (&[("TCP", 0, &[])], "UnsupportedValue", "1-65535"),
            (&[("TCP", 70000, &[])], "UnsupportedValue", "1-65535"),
            (
                &[("TCP", 80, &[]), ("TCP", 80, &[])],
                "UnsupportedValue",
                "twice",
            ),
            (
                &[("TCP", 80, &[("10.2.0.1", 80)])],
                "EndpointNotAllowed",
                "outside",
            ),
            (
                &[("UDP", 80, &[("10.1.0.9", 7443)])],
                "EndpointNotAllowed",
                "the hub",
            ),
        ];
        for (ports, reason, words) in cases {
            let err = admit(&lb_service(ports), &f.policy()).unwrap_err();
            assert_eq!(err.reason, *reason, "{ports:?}: {}", err.message);
            assert!(err.message.contains(words), "{ports:?}: {}", err.message);
        }
        let mut dotted = lb_service(&[("TCP", 80, &[])]);
        dotted.r#ref.as_mut().unwrap().name = "a.b".into();
        assert_eq!(
            admit(&dotted, &f.policy()).unwrap_err().reason,
            "UnsupportedValue"
        );
    }

    #[test]
    fn l4_routes_are_checked_like_http_routes() {
        let f = Fixture::new();
        let route = |kind: pb::Kind, parent: &str, endpoint: &str| pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: kind as i32,
                namespace: "default".into(),
                name: "db".into(),
            }),
            generation: 1,
            creation_timestamp: String::new(),
            spec: Some(pb::object::Spec::L4Route(pb::L4Route {
                parent_refs: vec![pb::ParentRef {
                    namespace: "default".into(),
                    name: parent.into(),
                    ..Default::default()
                }],
                backends: vec![pb::Backend {
                    namespace: "default".into(),
                    name: "db".into(),
                    port: 5432,
                    weight: 1,
                    problem: None,
                    endpoints: vec![pb::Endpoint {
                        address: endpoint.into(),
                        port: 30432,
                        ready: true,
                    }],
                    ..Default::default()
                }],
            })),
        };
        let Admitted::L4Route(r) =
            admit(&route(pb::Kind::UdpRoute, "gw", "10.1.0.5"), &f.policy()).unwrap()
        else {
            panic!("L4 route expected")
        };
        assert_eq!(r.protocol, L4Protocol::Udp);
        assert_eq!(
            r.backends[0].endpoints,
            vec!["10.1.0.5:30432".parse().unwrap()]
        );
        for (obj, reason) in [
            (
                route(pb::Kind::TcpRoute, "Bad_Name", "10.1.0.5"),
                "UnsupportedValue",
            ),
            (
                route(pb::Kind::TcpRoute, "gw", "10.9.0.5"),
                "EndpointNotAllowed",
            ),
        ] {
            let err = admit(&obj, &f.policy()).unwrap_err();
            assert_eq!(err.reason, reason, "{}", err.message);
            let st = rejected_status(
                &object_key(obj.r#ref.as_ref().unwrap()).unwrap(),
                &obj,
                &err,
            );
            assert_eq!(
                st.parents.len(),
                1,
                "rejections show on the route's parents"
            );
        }
        // A route spec under a Service kind is refused.
        let mut wrong = route(pb::Kind::Service, "gw", "10.1.0.5");
        wrong.r#ref.as_mut().unwrap().kind = pb::Kind::Service as i32;
        assert!(admit(&wrong, &f.policy()).is_err());
    }

    /// Found by the isolation property test: the data plane bound to 0.0.0.0:18080 was reachable
    /// as the endpoint 127.0.0.1:18080 of a cluster allowed loopback.
    #[test]
    fn listeners_bound_to_all_interfaces_are_refused_on_loopback() {
        let mut f = Fixture::new();
        f.cluster
            .endpoint_cidrs
            .push("127.0.0.0/8".parse().unwrap());
        f.cluster.allow_special_addresses = true;
        f.reserved
            .listeners
            .insert("0.0.0.0:18080".parse().unwrap());
        for (ip, port, refused) in [
            ("127.0.0.1", 18080, true),
            ("127.0.0.53", 18080, true),
            ("127.0.0.1", 18081, false),
            ("10.1.2.3", 18080, false),
            ("10.1.0.9", 7443, true),
        ] {
            let got = admit(&route(&["x.a.example"], &[(ip, port)]), &f.policy());
            match got {
                Err(e) if refused => {
                    assert_eq!(e.reason, "EndpointNotAllowed");
                    assert!(
                        e.message.contains("the hub or the data plane"),
                        "{}",
                        e.message
                    );
                }
                Ok(_) if !refused => {}
                other => panic!("{ip}:{port}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_rejected_grpc_route_shows_the_rejection_on_its_parents() {
        let obj = pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: pb::Kind::GrpcRoute as i32,
                namespace: "default".into(),
                name: "g".into(),
            }),
            generation: 2,
            creation_timestamp: String::new(),
            spec: Some(pb::object::Spec::GrpcRoute(pb::GrpcRoute {
                parent_refs: vec![pb::ParentRef {
                    namespace: "default".into(),
                    name: "gw".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
        };
        let rejection = Rejection {
            reason: quota::REASON,
            message: "over".into(),
        };
        let st = rejected_status(
            &object_key(obj.r#ref.as_ref().unwrap()).unwrap(),
            &obj,
            &rejection,
        );
        assert_eq!(st.parents.len(), 1);
        assert_eq!(st.parents[0].conditions[0].reason, quota::REASON);
        assert!(st.conditions.is_empty());
    }

    #[test]
    fn pattern_overlap_table() {
        for (a, b, want) in [
            ("a.example", "a.example", true),
            ("a.example", "b.example", false),
            ("*.example", "a.example", true),
            ("*.example", "example", false),
            ("*.example", "*.a.example", true),
            ("*.a.example", "*.b.example", false),
            ("*.a.example", "x.a.example", true),
            ("*.a.example", "xa.example", false),
        ] {
            assert_eq!(patterns_overlap(a, b), want, "{a} {b}");
            assert_eq!(patterns_overlap(b, a), want, "{b} {a}");
        }
    }

    /// The route of [`route`] with its only rule changed by `f`.
    fn with_rule(f: impl FnOnce(&mut pb::HttpRouteRule)) -> pb::Object {
        let mut o = route(&["x.a.example"], &[("10.1.2.3", 30080)]);
        if let Some(pb::object::Spec::HttpRoute(h)) = &mut o.spec {
            f(&mut h.rules[0]);
        }
        o
    }

    fn path(t: pb::path_match::Type, v: &str) -> pb::HttpRouteMatch {
        pb::HttpRouteMatch {
            path: Some(pb::PathMatch {
                r#type: t as i32,
                value: v.into(),
            }),
            ..Default::default()
        }
    }

    fn filter(kind: pb::http_filter::Kind) -> pb::HttpFilter {
        pb::HttpFilter { kind: Some(kind) }
    }

    fn redirect(path: Option<(pb::path_modifier::Type, &str)>, code: u32) -> pb::HttpFilter {
        filter(pb::http_filter::Kind::RequestRedirect(
            pb::RequestRedirect {
                path: path.map(|(t, v)| pb::PathModifier {
                    r#type: t as i32,
                    value: v.into(),
                }),
                status_code: code,
                ..Default::default()
            },
        ))
    }

    #[test]
    fn hostile_http_route_features_are_refused_with_guidance() {
        use pb::path_match::Type as P;
        use pb::path_modifier::Type as M;
        let f = Fixture::new();
        let long_regex = format!("/{}", "a".repeat(MAX_REGEX_LEN));
        type Edit = Box<dyn FnOnce(&mut pb::HttpRouteRule)>;
        // (what, edit of the rule, words the message must contain)
        let cases: Vec<(&str, Edit, &str, &str)> = vec![
            (
                "regex that does not compile",
                Box::new(|r| r.matches.push(path(P::RegularExpression, "/(a"))),
                "does not compile",
                "UnsupportedValue",
            ),
            (
                "regex too long",
                Box::new(move |r| r.matches.push(path(P::RegularExpression, &long_regex))),
                "must be 1 to",
                "UnsupportedValue",
            ),
            (
                "regex with look-behind (not RE2)",
                Box::new(|r| r.matches.push(path(P::RegularExpression, "(?<=a)b"))),
                "RE2",
                "UnsupportedValue",
            ),
            (
                "header regex that does not compile",
                Box::new(|r| {
                    r.matches.push(pb::HttpRouteMatch {
                        headers: vec![pb::HeaderMatch {
                            name: "x-a".into(),
                            value: "[".into(),
                            regular_expression: true,
                        }],
                        ..Default::default()
                    })
                }),
                "headers[x-a]",
                "UnsupportedValue",
            ),
            (
                "query parameter with CR LF",
                Box::new(|r| {
                    r.matches.push(pb::HttpRouteMatch {
                        query_params: vec![pb::QueryParamMatch {
                            name: "q".into(),
                            value: "a\r\nb".into(),
                            regular_expression: false,
                        }],
                        ..Default::default()
                    })
                }),
                "CR, LF",
                "UnsupportedValue",
            ),
            (
                "unknown method",
                Box::new(|r| {
                    r.matches.push(pb::HttpRouteMatch {
                        method: "BREW".into(),
                        ..Default::default()
                    })
                }),
                "is not one of GET",
                "UnsupportedValue",
            ),
            (
                "redirect path with a query",
                Box::new(|r| {
                    r.filters
                        .push(redirect(Some((M::ReplaceFullPath, "/a?b")), 0))
                }),
                "must start with '/'",
                "UnsupportedValue",
            ),
            (
                "redirect status code",
                Box::new(|r| r.filters.push(redirect(None, 304))),
                "statusCode 304",
                "UnsupportedValue",
            ),
            (
                "ReplacePrefixMatch on an exact match",
                Box::new(|r| {
                    r.matches.push(path(P::Exact, "/x"));
                    r.filters
                        .push(redirect(Some((M::ReplacePrefixMatch, "/y")), 0));
                }),
                "every match of the rule to be a PathPrefix",
                "UnsupportedValue",
            ),
            (
                "redirect and rewrite together",
                Box::new(|r| {
                    r.filters.push(redirect(None, 0));
                    r.filters
                        .push(filter(pb::http_filter::Kind::UrlRewrite(pb::UrlRewrite {
                            hostname: "b.a.example".into(),
                            path: None,
                        })));
                }),
                "cannot be used together",
                "UnsupportedValue",
            ),
            (
                "the same filter twice",
                Box::new(|r| {
                    for _ in 0..2 {
                        r.filters
                            .push(filter(pb::http_filter::Kind::ResponseHeaderModifier(
                                pb::HeaderModifier::default(),
                            )));
                    }
                }),
                "used twice",
                "UnsupportedValue",
            ),
            (
                "rewrite to a wildcard host",
                Box::new(|r| {
                    r.filters
                        .push(filter(pb::http_filter::Kind::UrlRewrite(pb::UrlRewrite {
                            hostname: "*.a.example".into(),
                            path: None,
                        })))
                }),
                "is not a hostname",
                "UnsupportedValue",
            ),
            (
                "mirror fraction above one",
                Box::new(|r| {
                    r.filters.push(filter(pb::http_filter::Kind::RequestMirror(
                        pb::RequestMirror {
                            backend: Some(pb::Backend {
                                namespace: "default".into(),
                                name: "m".into(),
                                port: 80,
                                ..Default::default()
                            }),
                            numerator: 3,
                            denominator: 2,
                        },
                    )))
                }),
                "fraction 3/2",
                "UnsupportedValue",
            ),
            (
                "mirror to an endpoint outside the cluster",
                Box::new(|r| {
                    r.filters.push(filter(pb::http_filter::Kind::RequestMirror(
                        pb::RequestMirror {
                            backend: Some(pb::Backend {
                                namespace: "default".into(),
                                name: "m".into(),
                                port: 80,
                                endpoints: vec![pb::Endpoint {
                                    address: "169.254.169.254".into(),
                                    port: 80,
                                    ready: true,
                                }],
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )))
                }),
                "outside the networks",
                "EndpointNotAllowed",
            ),
            (
                "CORS origin with a path",
                Box::new(|r| {
                    r.filters.push(filter(pb::http_filter::Kind::Cors(pb::Cors {
                        allow_origins: vec!["https://a.example/x".into()],
                        ..Default::default()
                    })))
                }),
                "allowOrigins",
                "UnsupportedValue",
            ),
            (
                "wildcard CORS origin too long for the data plane",
                Box::new(|r| {
                    r.filters.push(filter(pb::http_filter::Kind::Cors(pb::Cors {
                        // Valid labels, but a regex above the RE2 limit.
                        allow_origins: vec![format!(
                            "https://*.{}a.example",
                            "abcdefghi.".repeat(10)
                        )],
                        ..Default::default()
                    })))
                }),
                "allowOrigins",
                "UnsupportedValue",
            ),
            (
                "prefix stripped by a regex too long for the data plane",
                Box::new(|r| {
                    r.matches
                        .push(path(P::PathPrefix, &format!("/{}", "p".repeat(120))));
                    r.filters
                        .push(redirect(Some((M::ReplacePrefixMatch, "/")), 0));
                }),
                "too long for the data plane",
                "UnsupportedValue",
            ),
            (
                "bad duration",
                Box::new(|r| {
                    r.timeouts = Some(pb::HttpRouteTimeouts {
                        request: "10 seconds".into(),
                        backend_request: String::new(),
                    })
                }),
                "timeouts.request",
                "UnsupportedValue",
            ),
            (
                "backendRequest longer than request",
                Box::new(|r| {
                    r.timeouts = Some(pb::HttpRouteTimeouts {
                        request: "1s".into(),
                        backend_request: "2s".into(),
                    })
                }),
                "must not be longer than request",
                "UnsupportedValue",
            ),
            (
                "redirect filter on a backendRef",
                Box::new(|r| r.backends[0].filters.push(redirect(None, 0))),
                "only RequestHeaderModifier and ResponseHeaderModifier",
                "UnsupportedValue",
            ),
        ];
        for (what, edit, words, reason) in cases {
            let err = admit(&with_rule(edit), &f.policy()).unwrap_err();
            assert_eq!(err.reason, reason, "{what}: {}", err.message);
            assert!(err.message.contains(words), "{what}: {}", err.message);
        }
    }

    /// A filter the agent marks unsupported is admitted (its rule answers 500 and the route is
    /// reported by the compiler), with the message located and bounded; two of them in one rule
    /// are not "a filter used twice".
    #[test]
    fn unsupported_filters_are_admitted_with_a_bounded_located_message() {
        let f = Fixture::new();
        let unsupported = |message: String| {
            filter(pb::http_filter::Kind::Unsupported(pb::UnsupportedFilter {
                r#type: "ExtensionRef".into(),
                message,
            }))
        };
        let o = with_rule(|r| {
            r.filters.push(unsupported(
                "filter ExtensionRef x/Y \"z\" is not supported".into(),
            ));
            r.filters.push(unsupported("m".repeat(5_000)));
        });
        let Admitted::HttpRoute(route) = admit(&o, &f.policy()).unwrap() else {
            panic!()
        };
        let msgs: Vec<&str> = route.rules[0]
            .filters
            .iter()
            .map(|f| match f {
                HttpFilter::Unsupported(u) => {
                    assert_eq!(u.filter, "ExtensionRef");
                    u.message.as_str()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            msgs[0],
            "rules[0].filters[0]: filter ExtensionRef x/Y \"z\" is not supported"
        );
        assert!(msgs[1].starts_with("rules[0].filters[1]: mmm") && msgs[1].len() < 600);
    }

    #[test]
    fn http_route_features_are_admitted_into_the_model() {
        use crate::model::{Redirect, Timeouts, ValueMatch};
        use pb::path_match::Type as P;
        let f = Fixture::new();
        let o = with_rule(|r| {
            r.matches.push(pb::HttpRouteMatch {
                method: "POST".into(),
                headers: vec![pb::HeaderMatch {
                    name: "X-Re".into(),
                    value: "^a+$".into(),
                    regular_expression: true,
                }],
                query_params: vec![pb::QueryParamMatch {
                    name: "Animal".into(),
                    value: "whale".into(),
                    regular_expression: false,
                }],
                ..path(P::RegularExpression, "/v[0-9]+/.*")
            });
            r.filters.push(redirect(None, 0));
            r.timeouts = Some(pb::HttpRouteTimeouts {
                request: "1m".into(),
                backend_request: "500ms".into(),
            });
            r.backends[0].app_protocol = "kubernetes.io/h2c".into();
        });
        let Admitted::HttpRoute(route) = admit(&o, &f.policy()).unwrap() else {
            panic!()
        };
        let rule = &route.rules[0];
        let m = &rule.matches[0];
        assert_eq!(m.path, PathMatch::RegularExpression("/v[0-9]+/.*".into()));
        assert_eq!(
            m.headers,
            vec![(
                "x-re".to_string(),
                ValueMatch::RegularExpression("^a+$".into())
            )]
        );
        assert_eq!(
            m.query_params,
            vec![("Animal".to_string(), ValueMatch::Exact("whale".into()))]
        );
        assert_eq!(m.method.as_deref(), Some("POST"));
        assert_eq!(
            rule.filters,
            vec![HttpFilter::RequestRedirect(Redirect {
                scheme: None,
                hostname: None,
                path: None,
                port: None,
                status_code: 302
            })]
        );
        assert_eq!(
            rule.timeouts,
            Timeouts {
                request: Some(std::time::Duration::from_secs(60)),
                backend_request: Some(std::time::Duration::from_millis(500)),
            }
        );
        assert_eq!(rule.backends[0].app_protocol, AppProtocol::H2c);
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    /// The definition `conflicting_claim` must agree with: every claim compared.
    fn scan<'a>(h: &str, tenant: &str, owners: &'a BTreeMap<String, String>) -> Option<&'a str> {
        owners
            .iter()
            .find(|(claim, owner)| *owner != tenant && patterns_overlap(claim, h))
            .map(|(claim, _)| claim.as_str())
    }

    #[test]
    fn a_conflicting_claim_is_the_one_every_claim_compared_finds() {
        let owners: BTreeMap<String, String> = [
            ("app.a.example", "a"),
            ("*.a.example", "a"),
            ("*.b.example", "b"),
            ("x.y.b.example", "b"),
            ("*.y.b.example", "c"),
            ("*.example", "d"),
            ("c.example", "c"),
            ("*", "e"),
            ("deep.sub.c.example", "c"),
        ]
        .into_iter()
        .map(|(c, t)| (c.to_string(), t.to_string()))
        .collect();
        let hosts = [
            "app.a.example",
            "new.a.example",
            "x.y.b.example",
            "z.y.b.example",
            "c.example",
            "sub.c.example",
            "other.org",
            "example",
            "*",
            "*.a.example",
            "*.c.example",
            "*.y.b.example",
            "*.org",
        ];
        let mut conflicts = 0;
        for tenant in ["a", "b", "c", "d", "e", "f"] {
            for h in hosts {
                let want = scan(h, tenant, &owners);
                assert_eq!(conflicting_claim(h, tenant, &owners), want, "{tenant} {h}");
                conflicts += usize::from(want.is_some());
            }
        }
        // The cases are not all free or all taken.
        assert!(conflicts > 10 && conflicts < 70, "{conflicts}");
    }
}
