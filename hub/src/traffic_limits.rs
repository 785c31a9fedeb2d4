//! Each tenant's data-plane limits, attached to the compiled snapshot.
//!
//! Where it sits: between compile (step 7) and publish (step 8), called by `run::compile_view`.
//! Pure: every virtual host of a tenant's hostname gets the tenant's request-rate limit
//! (`quotas.*.requestsPerSecond`), every L4 listener of a tenant's Service or Gateway TCP
//! listener, and every TLS passthrough chain (one SNI hostname of the tenant), its connection
//! limit (`quotas.*.connectionsPerListener`); `xds::tenant_limits` turns
//! them into Envoy filters. Every tenant's AI routes get its AI budget (`quotas.*.aiBudget`),
//! which the hub's ledger (`ai_config::budget`) enforces. A virtual host belongs to the tenant of its routes (a hostname has
//! one owner); the 404 catch-all belongs to nobody and is not limited.

use std::sync::Arc;

use crate::compile::{Snapshot, TlsChainAction, VirtualHost};
use crate::quotas::Quotas;

/// Virtual hosts are shared with the compiler's memo (`Arc`): one is copied only when its limit
/// changes, which with the default (no request-rate limit) is never. Without any request-rate
/// quota no virtual host's tenant is looked up (this runs over every hostname of the fleet
/// for every change).
fn limit_virtual_hosts(hosts: &mut [Arc<VirtualHost>], quotas: &Quotas) {
    let any_rate = quotas.defaults.request_rate.is_some()
        || quotas.tenants.values().any(|q| q.request_rate.is_some());
    if !any_rate {
        for vh in hosts.iter_mut().filter(|vh| vh.rate_limit.is_some()) {
            Arc::make_mut(vh).rate_limit = None;
        }
        return;
    }
    for vh in hosts {
        let tenant = vh
            .routes
            .iter()
            .find_map(|r| r.source.as_ref())
            .map(|s| s.cluster.tenant.as_str());
        let limit = tenant.and_then(|t| quotas.of(t).request_rate);
        if vh.rate_limit != limit {
            Arc::make_mut(vh).rate_limit = limit;
        }
    }
}

/// Sets the limits of every tenant's virtual hosts and L4 listeners in `snapshot`.
pub fn apply(snapshot: &mut Snapshot, quotas: &Quotas) {
    for l in &mut snapshot.listeners {
        limit_virtual_hosts(&mut l.virtual_hosts, quotas);
    }
    for l in &mut snapshot.tls_listeners {
        for c in &mut l.chains {
            match &mut c.action {
                TlsChainAction::Terminate { http, .. } => {
                    limit_virtual_hosts(&mut http.virtual_hosts, quotas);
                }
                TlsChainAction::Passthrough {
                    source,
                    max_connections,
                    ..
                } => {
                    *max_connections = quotas.of(&source.cluster.tenant).connections_per_listener;
                }
            }
        }
    }
    for l in &mut snapshot.l4_listeners {
        l.max_connections = quotas.of(&l.source.cluster.tenant).connections_per_listener;
    }
    for (tenant, ai) in &mut snapshot.ai.tenants {
        ai.budget = quotas.of(tenant).ai_budget;
        ai.max_concurrency = quotas.of(tenant).ai_max_concurrency;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{
        Forward, L4ListenerSnapshot, ListenerSnapshot, PathMatch, Route, RouteAction, SourceObject,
        WeightedCluster,
    };
    use crate::model::{ClusterKey, HeaderModifier, Kind, L4Protocol, ObjectKey};
    use crate::quotas::{Quota, RequestRate};

    fn src(tenant: &str) -> SourceObject {
        SourceObject {
            cluster: ClusterKey {
                tenant: tenant.into(),
                cluster: "c1".into(),
            },
            object: ObjectKey {
                kind: Kind::HttpRoute,
                namespace: "default".into(),
                name: "r".into(),
            },
        }
    }

    fn vh(name: &str, source: Option<SourceObject>) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            domains: vec![name.into()],
            routes: vec![Route {
                name: name.into(),
                path: PathMatch::Prefix("/".into()),
                headers: Default::default(),
                query_params: Default::default(),
                method: None,
                request_headers: HeaderModifier::default(),
                response_headers: HeaderModifier::default(),
                cors: None,
                action: RouteAction::Forward(Forward::to(vec![WeightedCluster::new("c", 1)])),
                source: source.map(Arc::new),
            }],
            rate_limit: None,
        }
    }

    #[test]
    fn each_tenant_gets_its_own_limits_and_the_catch_all_none() {
        let rate = RequestRate {
            per_second: 5,
            burst: 10,
        };
        let budget = crate::quotas::AiBudget {
            requests: Some(10),
            tokens: None,
            window_seconds: 60,
        };
        let quotas = Quotas {
            defaults: Quota::default(),
            tenants: [(
                "a".to_string(),
                Quota {
                    request_rate: Some(rate),
                    connections_per_listener: Some(3),
                    ai_budget: Some(budget),
                    ai_max_concurrency: Some(4),
                    ..Quota::default()
                },
            )]
            .into(),
        };
        let mut s = Snapshot {
            listeners: vec![ListenerSnapshot {
                name: "port/80".into(),
                port: 80,
                bind: "127.0.0.1:18080".parse().unwrap(),
                virtual_hosts: vec![
                    Arc::new(vh("a.example", Some(src("a")))),
                    Arc::new(vh("b.example", Some(src("b")))),
                    Arc::new(vh("*", None)),
                ],
                gateways: Default::default(),
            }],
            l4_listeners: ["a", "b"]
                .iter()
                .map(|t| L4ListenerSnapshot {
                    name: format!("l4/{t}"),
                    protocol: L4Protocol::Tcp,
                    bind: "127.0.0.1:20000".parse().unwrap(),
                    upstreams: vec![crate::compile::snapshot::L4Upstream {
                        cluster: "c".into(),
                        weight: 1,
                    }],
                    source: src(t),
                    max_connections: None,
                })
                .collect(),
            tls_listeners: vec![crate::compile::TlsListenerSnapshot {
                name: "port/443".into(),
                port: 443,
                bind: "127.0.0.1:18443".parse().unwrap(),
                chains: vec![crate::compile::TlsChain {
                    name: "port/443/sni/db.a.example".into(),
                    server_names: vec!["db.a.example".into()],
                    action: TlsChainAction::Passthrough {
                        clusters: vec![],
                        source: src("a"),
                        max_connections: None,
                    },
                }],
                gateways: Default::default(),
            }],
            ..Default::default()
        };
        for t in ["a", "b"] {
            s.ai.tenants.insert(t.into(), Default::default());
        }
        apply(&mut s, &quotas);
        assert_eq!(s.ai.tenants["a"].budget, Some(budget));
        assert_eq!(s.ai.tenants["b"].budget, None);
        assert_eq!(s.ai.tenants["a"].max_concurrency, Some(4));
        assert_eq!(s.ai.tenants["b"].max_concurrency, None);
        assert!(matches!(
            s.tls_listeners[0].chains[0].action,
            TlsChainAction::Passthrough {
                max_connections: Some(3),
                ..
            }
        ));
        let got: Vec<_> = s.listeners[0]
            .virtual_hosts
            .iter()
            .map(|v| v.rate_limit)
            .collect();
        assert_eq!(got, [Some(rate), None, None]);
        let got: Vec<_> = s.l4_listeners.iter().map(|l| l.max_connections).collect();
        assert_eq!(got, [Some(3), Quota::default().connections_per_listener]);
    }

    #[test]
    fn without_request_rate_quotas_no_virtual_host_keeps_a_limit() {
        let rate = RequestRate {
            per_second: 5,
            burst: 10,
        };
        let limited = VirtualHost {
            rate_limit: Some(rate),
            ..vh("a.example", Some(src("a")))
        };
        let shared = Arc::new(vh("b.example", Some(src("b"))));
        let mut hosts = vec![Arc::new(limited), shared.clone()];
        limit_virtual_hosts(&mut hosts, &Quotas::default());
        assert_eq!(hosts[0].rate_limit, None);
        assert!(Arc::ptr_eq(&hosts[1], &shared), "unchanged, so not copied");
    }
}
