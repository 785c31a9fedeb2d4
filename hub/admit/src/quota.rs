//! Quotas per tenant, counted across all clusters of the tenant.
//!
//! Where it sits: the last step of admission, run by `fleet` on one cluster's admitted intent
//! before it is stored. Pure: the caller passes the tenant's quota, what its other clusters
//! already use, and this cluster's intent before and after the update.
//!
//! Which objects stay when a tenant is over quota is deterministic and never evicts what works:
//! objects already accepted and unchanged keep their place (counted first, whatever their age),
//! then accepted objects that changed, then the new ones, each group in order of
//! creationTimestamp, then namespace/name. A new object that does not fit is
//! rejected alone; an accepted object whose new version does not fit keeps serving its previous
//! version. Each rejection names the quota, the limit and what to change.

use std::collections::{BTreeMap, BTreeSet};

use super::Rejection;
use crate::model::ai::{AiBackend, AiUpstream, VirtualKeyIntent};
use crate::model::policy::Quota;
use crate::model::{
    Backend, ClusterIntent, Gateway, GrpcRoute, HttpFilter, HttpRoute, Kind, L4Route, Listener,
    ListenerSet, LoadBalancerService, Meta, ObjectKey, TlsRoute,
};

/// The Gateway API condition reason of a quota rejection.
pub const REASON: &str = "QuotaExceeded";

/// One accepted object of any kind, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObjectRef<'a> {
    Gateway(&'a Gateway),
    /// Counted like a Gateway: against `gateways`, with its listeners' hostnames and certificates.
    ListenerSet(&'a ListenerSet),
    HttpRoute(&'a HttpRoute),
    TlsRoute(&'a TlsRoute),
    GrpcRoute(&'a GrpcRoute),
    Service(&'a LoadBalancerService),
    L4Route(&'a L4Route),
    /// Counts its endpoints and bytes (no route, no hostname).
    AiBackend(&'a AiBackend),
    /// Counts one virtual key and its bytes.
    VirtualKey(&'a VirtualKeyIntent),
}

impl ObjectRef<'_> {
    pub fn meta(&self) -> &Meta {
        match self {
            ObjectRef::Gateway(o) => &o.meta,
            ObjectRef::ListenerSet(o) => &o.meta,
            ObjectRef::HttpRoute(o) => &o.meta,
            ObjectRef::TlsRoute(o) => &o.meta,
            ObjectRef::GrpcRoute(o) => &o.meta,
            ObjectRef::Service(o) => &o.meta,
            ObjectRef::L4Route(o) => &o.meta,
            ObjectRef::AiBackend(o) => &o.meta,
            ObjectRef::VirtualKey(o) => &o.meta,
        }
    }
}

/// The objects of one map of a cluster's intent (keyed by namespace/name), with their keys.
fn keyed<'a, T>(
    kind: Kind,
    map: &'a BTreeMap<(String, String), T>,
    wrap: fn(&'a T) -> ObjectRef<'a>,
) -> impl Iterator<Item = (ObjectKey, ObjectRef<'a>)> {
    map.iter().map(move |((ns, name), o)| {
        let key = ObjectKey {
            kind,
            namespace: ns.clone(),
            name: name.clone(),
        };
        (key, wrap(o))
    })
}

/// Every object of a cluster's intent, with its key.
pub fn objects(ci: &ClusterIntent) -> Vec<(ObjectKey, ObjectRef<'_>)> {
    keyed(Kind::Gateway, &ci.gateways, ObjectRef::Gateway)
        .chain(keyed(
            Kind::ListenerSet,
            &ci.listener_sets,
            ObjectRef::ListenerSet,
        ))
        .chain(keyed(
            Kind::HttpRoute,
            &ci.http_routes,
            ObjectRef::HttpRoute,
        ))
        .chain(keyed(Kind::TlsRoute, &ci.tls_routes, ObjectRef::TlsRoute))
        .chain(keyed(
            Kind::GrpcRoute,
            &ci.grpc_routes,
            ObjectRef::GrpcRoute,
        ))
        .chain(keyed(Kind::Service, &ci.services, ObjectRef::Service))
        .chain(
            ci.l4_routes
                .iter()
                .map(|(k, o)| (k.clone(), ObjectRef::L4Route(o))),
        )
        .chain(keyed(
            Kind::AiBackend,
            &ci.ai_backends,
            ObjectRef::AiBackend,
        ))
        .chain(keyed(
            Kind::VirtualKey,
            &ci.virtual_keys,
            ObjectRef::VirtualKey,
        ))
        .collect()
}

/// What one object counts against its tenant's quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    pub gateways: u64,
    pub routes: u64,
    pub load_balancers: u64,
    pub hostnames: Vec<String>,
    pub endpoints: u64,
    /// (cluster, namespace, name) of each certificate's Secret.
    pub certificates: Vec<(String, String, String)>,
    pub bytes: u64,
    pub virtual_keys: u64,
}

/// Counts bytes written without keeping them.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_len<T: serde::Serialize>(v: &T) -> u64 {
    let mut n = ByteCount(0);
    // Writing the model's plain data into a counter cannot fail.
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

fn backend_endpoints<'a>(backends: impl IntoIterator<Item = &'a Backend>) -> u64 {
    backends.into_iter().map(|b| b.endpoints.len() as u64).sum()
}

fn mirror_endpoints(filters: &[HttpFilter]) -> u64 {
    filters
        .iter()
        .map(|f| match f {
            HttpFilter::RequestMirror(m) => m.backend.endpoints.len() as u64,
            _ => 0,
        })
        .sum()
}

/// What a Gateway's or ListenerSet's listeners count: one gateway, their hostnames, their
/// certificates' Secrets.
fn listener_cost(cluster: &str, listeners: &[Listener], c: &mut Cost) {
    c.gateways = 1;
    c.hostnames = listeners
        .iter()
        .filter_map(|l| l.hostname.clone())
        .collect();
    c.certificates = listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|t| t.certificates.iter())
        .map(|cert| {
            (
                cluster.to_string(),
                cert.namespace.clone(),
                cert.name.clone(),
            )
        })
        .collect();
}

/// The cost of `o`, an object of cluster `cluster`.
pub fn cost(cluster: &str, o: ObjectRef<'_>) -> Cost {
    let mut c = Cost::default();
    match o {
        ObjectRef::Gateway(g) => {
            listener_cost(cluster, &g.listeners, &mut c);
            c.bytes = json_len(g);
        }
        ObjectRef::ListenerSet(s) => {
            listener_cost(cluster, &s.listeners, &mut c);
            c.bytes = json_len(s);
        }
        ObjectRef::HttpRoute(r) => {
            c.routes = 1;
            c.hostnames = r.hostnames.clone();
            c.endpoints = r
                .rules
                .iter()
                .map(|rule| backend_endpoints(&rule.backends) + mirror_endpoints(&rule.filters))
                .sum();
            c.bytes = json_len(r);
        }
        ObjectRef::GrpcRoute(r) => {
            c.routes = 1;
            c.hostnames = r.hostnames.clone();
            c.endpoints = r
                .rules
                .iter()
                .map(|rule| backend_endpoints(&rule.backends) + mirror_endpoints(&rule.filters))
                .sum();
            c.bytes = json_len(r);
        }
        ObjectRef::TlsRoute(r) => {
            c.routes = 1;
            c.hostnames = r.hostnames.clone();
            c.endpoints = r
                .rules
                .iter()
                .map(|rule| backend_endpoints(&rule.backends))
                .sum();
            c.bytes = json_len(r);
        }
        ObjectRef::L4Route(r) => {
            c.routes = 1;
            c.endpoints = backend_endpoints(&r.backends);
            c.bytes = json_len(r);
        }
        ObjectRef::Service(s) => {
            c.load_balancers = 1;
            c.endpoints = s.ports.iter().map(|p| p.endpoints.len() as u64).sum();
            c.bytes = json_len(s);
        }
        ObjectRef::AiBackend(b) => {
            // Every resolved provider's, for a backend of ai.groups.
            c.endpoints = match &b.target {
                // Every MCP target's, like every provider's.
                Ok(crate::model::ai::AiTargets::Mcp(m)) => m
                    .mcp
                    .targets
                    .iter()
                    .map(|t| match &t.upstream {
                        AiUpstream::Cluster(e) => e.len() as u64,
                        AiUpstream::External => 0,
                    })
                    .sum(),
                Ok(t) => t
                    .resolved()
                    .iter()
                    .map(|t| match &t.upstream {
                        AiUpstream::Cluster(e) => e.len() as u64,
                        AiUpstream::External => 0,
                    })
                    .sum(),
                Err(_) => 0,
            };
            c.bytes = json_len(b);
        }
        ObjectRef::VirtualKey(k) => {
            c.virtual_keys = 1;
            c.bytes = json_len(k);
        }
    }
    c
}

/// What a tenant uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub gateways: u64,
    pub routes: u64,
    pub load_balancers: u64,
    pub hostnames: BTreeSet<String>,
    pub endpoints: u64,
    pub certificates: BTreeSet<(String, String, String)>,
    pub bytes: u64,
    pub virtual_keys: u64,
}

impl Usage {
    /// What the objects of one cluster use.
    pub fn add_cluster(&mut self, cluster: &str, ci: &ClusterIntent) {
        for (_, o) in objects(ci) {
            self.add(&cost(cluster, o));
        }
    }

    pub fn add(&mut self, c: &Cost) {
        self.gateways += c.gateways;
        self.routes += c.routes;
        self.load_balancers += c.load_balancers;
        self.hostnames.extend(c.hostnames.iter().cloned());
        self.endpoints += c.endpoints;
        self.certificates.extend(c.certificates.iter().cloned());
        self.bytes += c.bytes;
        self.virtual_keys += c.virtual_keys;
    }

    /// The first quota that adding `c` would exceed: (config key, limit, what would be used,
    /// what it counts).
    fn exceeded(&self, c: &Cost, q: &Quota) -> Option<(&'static str, u64, u64, &'static str)> {
        let new_hosts = c
            .hostnames
            .iter()
            .filter(|h| !self.hostnames.contains(*h))
            .collect::<BTreeSet<_>>()
            .len() as u64;
        let new_certs = c
            .certificates
            .iter()
            .filter(|x| !self.certificates.contains(*x))
            .collect::<BTreeSet<_>>()
            .len() as u64;
        let checks = [
            (
                "gateways",
                q.gateways,
                self.gateways,
                c.gateways,
                "Gateways",
            ),
            (
                "routes",
                q.routes,
                self.routes,
                c.routes,
                "routes (HTTPRoutes, GRPCRoutes, TLSRoutes, TCPRoutes and UDPRoutes together)",
            ),
            (
                "loadBalancers",
                q.load_balancers,
                self.load_balancers,
                c.load_balancers,
                "Services of type LoadBalancer",
            ),
            (
                "hostnames",
                q.hostnames,
                self.hostnames.len() as u64,
                new_hosts,
                "distinct hostnames",
            ),
            (
                "endpoints",
                q.endpoints,
                self.endpoints,
                c.endpoints,
                "backend endpoints",
            ),
            (
                "certificates",
                q.certificates,
                self.certificates.len() as u64,
                new_certs,
                "distinct certificates",
            ),
            (
                "intentBytes",
                q.intent_bytes,
                self.bytes,
                c.bytes,
                "bytes of accepted intent",
            ),
            (
                "virtualKeys",
                q.virtual_keys,
                self.virtual_keys,
                c.virtual_keys,
                "VirtualKeys",
            ),
        ];
        checks
            .into_iter()
            .find(|(_, limit, used, add, _)| *add > 0 && used.saturating_add(*add) > *limit)
            .map(|(key, limit, used, add, what)| (key, limit, used + add, what))
    }

    /// Whether the usage is within every quota.
    fn within(&self, q: &Quota) -> bool {
        self.gateways <= q.gateways
            && self.routes <= q.routes
            && self.load_balancers <= q.load_balancers
            && self.hostnames.len() as u64 <= q.hostnames
            && self.endpoints <= q.endpoints
            && self.certificates.len() as u64 <= q.certificates
            && self.bytes <= q.intent_bytes
            && self.virtual_keys <= q.virtual_keys
    }
}

fn rejection(
    tenant: &str,
    (key, limit, would_use, what): (&'static str, u64, u64, &'static str),
) -> Rejection {
    Rejection {
        reason: REASON,
        message: format!(
            "quota {key} of tenant {tenant} exceeded: at most {limit} {what} across all its clusters, this object would make it {would_use}; \
             delete objects the tenant no longer needs or ask the hub operator to raise quotas.tenants.{tenant}.{key}; \
             objects accepted earlier keep serving"
        ),
    }
}

fn restore(next: &mut ClusterIntent, key: &ObjectKey, prev: Option<ObjectRef<'_>>) {
    let id = (key.namespace.clone(), key.name.clone());
    match prev {
        Some(ObjectRef::Gateway(o)) => {
            next.gateways.insert(id, o.clone());
        }
        Some(ObjectRef::ListenerSet(o)) => {
            next.listener_sets.insert(id, o.clone());
        }
        Some(ObjectRef::HttpRoute(o)) => {
            next.http_routes.insert(id, o.clone());
        }
        Some(ObjectRef::TlsRoute(o)) => {
            next.tls_routes.insert(id, o.clone());
        }
        Some(ObjectRef::GrpcRoute(o)) => {
            next.grpc_routes.insert(id, o.clone());
        }
        Some(ObjectRef::Service(o)) => {
            next.services.insert(id, o.clone());
        }
        Some(ObjectRef::L4Route(o)) => {
            next.l4_routes.insert(key.clone(), o.clone());
        }
        Some(ObjectRef::AiBackend(o)) => {
            next.ai_backends.insert(id, o.clone());
        }
        Some(ObjectRef::VirtualKey(o)) => {
            next.virtual_keys.insert(id, o.clone());
        }
        None => match key.kind {
            Kind::Gateway => {
                next.gateways.remove(&id);
            }
            Kind::ListenerSet => {
                next.listener_sets.remove(&id);
            }
            Kind::HttpRoute => {
                next.http_routes.remove(&id);
            }
            Kind::TlsRoute => {
                next.tls_routes.remove(&id);
            }
            Kind::GrpcRoute => {
                next.grpc_routes.remove(&id);
            }
            Kind::Service => {
                next.services.remove(&id);
            }
            Kind::TcpRoute | Kind::UdpRoute => {
                next.l4_routes.remove(key);
            }
            Kind::AiBackend => {
                next.ai_backends.remove(&id);
            }
            Kind::VirtualKey => {
                next.virtual_keys.remove(&id);
            }
        },
    }
}

/// Enforces `quota` on one cluster of `tenant`: `others` is what the tenant's other clusters
/// use, `prev` this cluster's accepted intent before the update and `next` after admission.
/// Objects of `next` that do not fit are taken out of it (or put back to their `prev`
/// version); each is returned with its rejection.
pub fn enforce(
    quota: &Quota,
    tenant: &str,
    others: &Usage,
    cluster: &str,
    prev: &ClusterIntent,
    next: &mut ClusterIntent,
) -> Vec<(ObjectKey, Rejection)> {
    let mut total = others.clone();
    total.add_cluster(cluster, next);
    if total.within(quota) {
        return Vec::new();
    }
    let before: BTreeMap<ObjectKey, ObjectRef<'_>> = objects(prev).into_iter().collect();
    // (unchanged / changed / new, no timestamp, timestamp, namespace, name, kind) orders the
    // walk: what is accepted and unchanged is counted first, so that neither a new object nor
    // a grown version of an accepted one can push it out.
    struct Item {
        key: ObjectKey,
        class: u8,
        new: bool,
        timestamp: String,
        changed: bool,
        cost: Cost,
    }
    let mut items: Vec<Item> = objects(next)
        .into_iter()
        .map(|(key, o)| {
            let old = before.get(&key);
            let changed = old.is_some_and(|p| *p != o);
            Item {
                class: match (old, changed) {
                    (None, _) => 2,
                    (Some(_), true) => 1,
                    (Some(_), false) => 0,
                },
                new: old.is_none(),
                changed,
                timestamp: o.meta().creation_timestamp.clone(),
                cost: cost(cluster, o),
                key,
            }
        })
        .collect();
    items.sort_by(|a, b| {
        (
            a.class,
            a.timestamp.is_empty(),
            &a.timestamp,
            &a.key.namespace,
            &a.key.name,
            a.key.kind,
        )
            .cmp(&(
                b.class,
                b.timestamp.is_empty(),
                &b.timestamp,
                &b.key.namespace,
                &b.key.name,
                b.key.kind,
            ))
    });
    let mut used = others.clone();
    let mut rejected = Vec::new();
    for item in &items {
        if !item.new && !item.changed {
            // Accepted and unchanged: never evicted.
            used.add(&item.cost);
            continue;
        }
        match used.exceeded(&item.cost, quota) {
            None => used.add(&item.cost),
            Some(over) => {
                let old = before.get(&item.key).copied();
                if let Some(o) = old {
                    used.add(&cost(cluster, o));
                }
                rejected.push((item.key.clone(), rejection(tenant, over), old));
            }
        }
    }
    rejected
        .into_iter()
        .map(|(key, r, old)| {
            restore(next, &key, old);
            (key, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AllowedRoutes, AppProtocol, Certificate, HeaderModifier, HttpRouteMatch, HttpRouteRule,
        ListenerTls, PathMatch, PrivateKeyPem, Protocol, TlsMode, thin_vec,
    };

    fn meta(name: &str, ts: &str) -> Meta {
        Meta {
            namespace: "default".into(),
            name: name.into(),
            generation: 1,
            creation_timestamp: ts.into(),
        }
    }

    fn route(name: &str, ts: &str, hosts: &[&str], endpoints: usize) -> HttpRoute {
        HttpRoute {
            meta: meta(name, ts),
            parent_refs: vec![],
            hostnames: hosts.iter().map(|h| h.to_string()).collect(),
            rules: vec![HttpRouteRule {
                name: None,
                matches: thin_vec![HttpRouteMatch {
                    path: PathMatch::Prefix("/".into()),
                    headers: Default::default(),
                    query_params: Default::default(),
                    method: None,
                }],
                filters: Default::default(),
                backends: thin_vec![Backend {
                    namespace: "default".into(),
                    name: "svc".into(),
                    port: 80,
                    weight: 1,
                    problem: None,
                    endpoints: (0..endpoints)
                        .map(|i| std::net::SocketAddr::from(([10, 1, 0, 1], 30000 + i as u16)))
                        .collect(),
                    app_protocol: AppProtocol::Http1,
                    request_headers: HeaderModifier::default(),
                    response_headers: HeaderModifier::default(),
                    kind: Default::default(),
                }],
                timeouts: Default::default(),
            }],
        }
    }

    fn gateway(name: &str, ts: &str, certs: &[&str]) -> Gateway {
        Gateway {
            meta: meta(name, ts),
            class_name: "fleetgate".into(),
            allowed_listeners: Default::default(),
            listeners: vec![crate::model::Listener {
                name: "https".into(),
                protocol: Some(Protocol::Https),
                protocol_name: "HTTPS".into(),
                port: 443,
                hostname: None,
                allowed_routes: AllowedRoutes::Same,
                tls: Some(ListenerTls {
                    mode: TlsMode::Terminate,
                    certificates: certs
                        .iter()
                        .map(|c| Certificate {
                            namespace: "default".into(),
                            name: c.to_string(),
                            cert_chain_pem: String::new(),
                            private_key_pem: PrivateKeyPem(String::new()),
                            dns_names: vec![],
                            serial: String::new(),
                        })
                        .collect(),
                    problem: None,
                    options: Vec::new(),
                }),
                allowed_kinds: vec![],
            }],
        }
    }

    fn intent(routes: &[HttpRoute], gateways: &[Gateway]) -> ClusterIntent {
        ClusterIntent {
            http_routes: routes
                .iter()
                .map(|r| ((r.meta.namespace.clone(), r.meta.name.clone()), r.clone()))
                .collect(),
            gateways: gateways
                .iter()
                .map(|g| ((g.meta.namespace.clone(), g.meta.name.clone()), g.clone()))
                .collect(),
            ..Default::default()
        }
    }

    fn names(ci: &ClusterIntent) -> Vec<String> {
        objects(ci)
            .into_iter()
            .map(|(k, _)| k.name.clone())
            .collect()
    }

    const T1: &str = "2026-01-01T00:00:01Z";
    const T2: &str = "2026-01-01T00:00:02Z";
    const T3: &str = "2026-01-01T00:00:03Z";

    /// Every quota: at its limit everything is accepted; one over, the youngest new object is
    /// rejected with a reason naming the quota and its config key.
    #[test]
    fn each_quota_at_limit_and_one_over() {
        type Setter = fn(&mut Quota, u64);
        type Build = fn(&str, &str) -> ClusterIntent;
        // (quota key, set the quota, objects at exactly the limit when the quota is 2)
        let cases: &[(&str, Setter, Build)] = &[
            (
                "routes",
                |q, n| q.routes = n,
                |name, ts| intent(&[route(name, ts, &[], 0)], &[]),
            ),
            (
                "gateways",
                |q, n| q.gateways = n,
                |name, ts| intent(&[], &[gateway(name, ts, &[])]),
            ),
            (
                "hostnames",
                |q, n| q.hostnames = n,
                |name, ts| intent(&[route(name, ts, &[&format!("{name}.a.example")], 0)], &[]),
            ),
            (
                "endpoints",
                |q, n| q.endpoints = n,
                |name, ts| intent(&[route(name, ts, &[], 1)], &[]),
            ),
            (
                "certificates",
                |q, n| q.certificates = n,
                |name, ts| intent(&[], &[gateway(name, ts, &[name])]),
            ),
        ];
        for (key, set, one) in cases {
            let mut quota = Quota::default();
            set(&mut quota, 2);
            let merge = |parts: &[ClusterIntent]| {
                let mut out = ClusterIntent::default();
                for p in parts {
                    out.http_routes.extend(p.http_routes.clone());
                    out.gateways.extend(p.gateways.clone());
                }
                out
            };
            // At the limit: all accepted.
            let mut next = merge(&[one("a1", T1), one("a2", T2)]);
            let got = enforce(
                &quota,
                "t",
                &Usage::default(),
                "c",
                &ClusterIntent::default(),
                &mut next,
            );
            assert!(got.is_empty(), "{key}: {got:?}");
            // One over: the youngest is rejected, the reason names the quota.
            let mut next = merge(&[one("a3", T3), one("a1", T1), one("a2", T2)]);
            let got = enforce(
                &quota,
                "t",
                &Usage::default(),
                "c",
                &ClusterIntent::default(),
                &mut next,
            );
            assert_eq!(got.len(), 1, "{key}: {got:?}");
            assert_eq!(got[0].0.name, "a3", "{key}");
            assert_eq!(got[0].1.reason, REASON);
            let msg = &got[0].1.message;
            assert!(msg.contains(&format!("quota {key} of tenant t")), "{msg}");
            assert!(msg.contains("at most 2"), "{msg}");
            assert!(msg.contains(&format!("quotas.tenants.t.{key}")), "{msg}");
            assert_eq!(names(&next), ["a1", "a2"], "{key}");
        }
    }

    /// A ListenerSet adds listeners like a Gateway, so it counts against `gateways`, and its
    /// listeners' hostnames against `hostnames`.
    #[test]
    fn listener_sets_count_as_gateways() {
        let gw = gateway("g1", T1, &[]);
        let set = |name: &str, ts: &str| crate::model::ListenerSet {
            meta: meta(name, ts),
            parent: ("default".into(), "g1".into()),
            listeners: vec![crate::model::Listener {
                hostname: Some(format!("{name}.a.example")),
                ..gw.listeners[0].clone()
            }],
        };
        let quota = Quota {
            gateways: 2,
            ..Quota::default()
        };
        let mut next = intent(&[], std::slice::from_ref(&gw));
        for s in [set("s2", T2), set("s3", T3)] {
            next.listener_sets
                .insert((s.meta.namespace.clone(), s.meta.name.clone()), s);
        }
        let got = enforce(
            &quota,
            "t",
            &Usage::default(),
            "c",
            &ClusterIntent::default(),
            &mut next,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0.kind, Kind::ListenerSet);
        assert_eq!(got[0].0.name, "s3");
        assert!(got[0].1.message.contains("quota gateways"), "{got:?}");
        assert_eq!(names(&next), ["g1", "s2"]);
        let c = cost("c", ObjectRef::ListenerSet(&set("s2", T2)));
        assert_eq!(
            (c.gateways, c.hostnames),
            (1, vec!["s2.a.example".to_string()])
        );
    }

    #[test]
    fn virtual_keys_quota_keeps_the_oldest_keys() {
        let key = |name: &str, ts: &str| crate::model::ai::VirtualKeyIntent {
            meta: Meta {
                namespace: "team".into(),
                name: name.into(),
                generation: 1,
                creation_timestamp: ts.into(),
            },
            sha256: Ok([1; 32]),
            backends: vec!["llm".into()],
            budget: None,
        };
        let quota = Quota {
            virtual_keys: 2,
            ..Quota::default()
        };
        let mut next = ClusterIntent::default();
        for k in [key("k3", T3), key("k1", T1), key("k2", T2)] {
            next.virtual_keys
                .insert((k.meta.namespace.clone(), k.meta.name.clone()), k);
        }
        let got = enforce(
            &quota,
            "t",
            &Usage::default(),
            "c",
            &ClusterIntent::default(),
            &mut next,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].0.kind, got[0].0.name.as_str()),
            (Kind::VirtualKey, "k3")
        );
        assert!(
            got[0]
                .1
                .message
                .contains("quota virtualKeys of tenant t exceeded: at most 2 VirtualKeys"),
            "{got:?}"
        );
        assert_eq!(
            next.virtual_keys
                .keys()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>(),
            ["k1", "k2"]
        );
    }

    #[test]
    fn intent_bytes_quota() {
        let r = route("a1", T1, &[], 0);
        let size = cost("c", ObjectRef::HttpRoute(&r)).bytes;
        let quota = Quota {
            intent_bytes: size * 2 + 10,
            ..Quota::default()
        };
        let mut next = intent(
            &[
                route("a1", T1, &[], 0),
                route("a2", T2, &[], 0),
                route("a3", T3, &[], 0),
            ],
            &[],
        );
        let got = enforce(
            &quota,
            "t",
            &Usage::default(),
            "c",
            &ClusterIntent::default(),
            &mut next,
        );
        assert_eq!(got.len(), 1);
        assert!(got[0].1.message.contains("quota intentBytes"));
        assert_eq!(names(&next), ["a1", "a2"]);
    }

    #[test]
    fn accepted_objects_keep_their_place_against_older_newcomers() {
        let quota = Quota {
            routes: 2,
            ..Quota::default()
        };
        // r-new is older (creationTimestamp) than the accepted ones but arrives later.
        let prev = intent(&[route("r2", T2, &[], 0), route("r3", T3, &[], 0)], &[]);
        let mut next = intent(
            &[
                route("r2", T2, &[], 0),
                route("r3", T3, &[], 0),
                route("r-new", T1, &[], 0),
            ],
            &[],
        );
        let got = enforce(&quota, "t", &Usage::default(), "c", &prev, &mut next);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.name, "r-new");
        assert_eq!(next, prev);
    }

    #[test]
    fn a_grown_update_keeps_the_previous_version() {
        let quota = Quota {
            hostnames: 2,
            ..Quota::default()
        };
        let prev = intent(
            &[
                route("r1", T1, &["x.a.example"], 0),
                route("r2", T2, &["y.a.example"], 0),
            ],
            &[],
        );
        let mut next = intent(
            &[
                route("r1", T1, &["x.a.example", "z.a.example"], 0),
                route("r2", T2, &["y.a.example"], 0),
            ],
            &[],
        );
        let got = enforce(&quota, "t", &Usage::default(), "c", &prev, &mut next);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.name, "r1");
        assert!(got[0].1.message.contains("quota hostnames"));
        assert_eq!(next, prev, "r1 keeps serving its previous version");
    }

    #[test]
    fn other_clusters_count_and_shared_hostnames_count_once() {
        let quota = Quota {
            routes: 3,
            hostnames: 1,
            ..Quota::default()
        };
        let mut others = Usage::default();
        others.add_cluster(
            "west",
            &intent(
                &[
                    route("w1", T1, &["x.a.example"], 0),
                    route("w2", T1, &["x.a.example"], 0),
                ],
                &[],
            ),
        );
        let mut next = intent(
            &[
                route("e1", T2, &["x.a.example"], 0),
                route("e2", T3, &["x.a.example"], 0),
            ],
            &[],
        );
        let got = enforce(
            &quota,
            "t",
            &others,
            "east",
            &ClusterIntent::default(),
            &mut next,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.name, "e2");
        assert!(got[0].1.message.contains("quota routes"));
        assert_eq!(names(&next), ["e1"]);
    }

    #[test]
    fn ties_break_on_namespace_and_name() {
        let quota = Quota {
            routes: 1,
            ..Quota::default()
        };
        let mut next = intent(&[route("b", T1, &[], 0), route("a", T1, &[], 0)], &[]);
        let got = enforce(
            &quota,
            "t",
            &Usage::default(),
            "c",
            &ClusterIntent::default(),
            &mut next,
        );
        assert_eq!(got[0].0.name, "b");
        assert_eq!(names(&next), ["a"]);
    }
}
