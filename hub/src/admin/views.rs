//! What the admin API shows, computed from the hub's state: pure functions over a [`FleetState`]
//! the API reads once per request, table-tested below.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use crate::ai_config::AiGatewayHealth;
use crate::allocate::{AllocError, Allocations, Owner, PortKey};
use crate::config::{Config, Registration};
use crate::data_plane::{EnvoyView, Envoys};
use crate::model::{ClusterKey, Condition, ObjectStatus};
use crate::xds::XdsHealth;

/// The hub's state as one request sees it.
pub struct FleetState {
    /// The running configuration (the operator's overrides included).
    pub config: Arc<Config>,
    /// Clusters the configuration file disables (`enabled: false`).
    pub file_disabled: BTreeSet<ClusterKey>,
    /// Clusters an operator disabled.
    pub operator_disabled: BTreeSet<ClusterKey>,
    pub connected: BTreeSet<ClusterKey>,
    /// Disconnected longer than the grace period (`crate::grace`).
    pub withdrawn: BTreeSet<ClusterKey>,
    /// Every object's status as its tenant sees it (`sync::FleetStatus`).
    pub statuses: BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>,
    /// Hostname (or wildcard) -> owning tenant.
    pub owners: BTreeMap<String, String>,
    pub allocations: Allocations,
    pub allocation_failures: BTreeMap<PortKey, AllocError>,
    /// Configurations Envoys rejected and still stand by.
    pub xds: XdsHealth,
    /// What each AI gateway replica serves and refuses.
    pub ai: AiGatewayHealth,
    /// The Envoys connected to the ADS server.
    pub envoys: Envoys,
}

/// The data plane as the hub sees it, for `GET /api/v1/data-plane`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPlane {
    /// Every Envoy with an open ADS stream, by node id: connected since, the version of each
    /// xDS type it last ACKed, its last NACK.
    pub envoys: Vec<EnvoyView>,
    /// Every AI gateway replica with an open configuration stream.
    pub ai_gateways: Vec<AiGatewayRow>,
    /// Every Envoy rejection still standing, by xDS type.
    pub envoy_rejections: Vec<EnvoyRejectionRow>,
}

/// One AI gateway replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AiGatewayRow {
    pub id: String,
    /// Tenant -> the configuration version it serves.
    pub serving: BTreeMap<String, u64>,
    /// Tenant versions it refused, with its reason.
    pub refused: Vec<RefusedRow>,
}

/// One tenant version a gateway refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRow {
    pub tenant: String,
    pub version: u64,
    pub reason: String,
}

/// One configuration an Envoy rejected (NACK) and still stands by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyRejectionRow {
    #[serde(rename = "type")]
    pub type_url: String,
    pub node: String,
    pub version: String,
    pub message: String,
    /// The tenant objects blamed, as `<tenant>/<cluster>/<kind>/<namespace>/<name>`.
    pub blamed: Vec<String>,
}

/// One tenant, for `GET /api/v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRow {
    pub name: String,
    pub clusters: usize,
    pub connected: usize,
    /// The hostname patterns the tenant may claim (hub configuration).
    pub allowed_hostnames: Vec<String>,
    /// The hostnames it holds now.
    pub owned_hostnames: Vec<String>,
    pub objects: usize,
    /// Objects with a condition that is not as it should be ([`ObjectRow::problems`]).
    pub with_problems: usize,
}

/// Where a cluster stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// An agent stream is open.
    Connected,
    /// No agent stream; the data plane still serves its last intent (grace period).
    Disconnected,
    /// No agent stream for longer than the grace period: out of the data plane.
    Withdrawn,
    /// Disabled by the configuration file or an operator: out of the data plane, refused.
    Disabled,
}

/// One cluster, for `GET /api/v1/clusters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRow {
    pub tenant: String,
    pub cluster: String,
    pub state: ClusterState,
    /// Who disabled it: `configuration` and/or `operator`.
    pub disabled_by: Vec<&'static str>,
    pub objects: usize,
    pub with_problems: usize,
}

/// A condition that says something is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `Gateway/default/web` or, on a route, the parent it concerns.
    pub on: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
}

/// One object of a tenant, for `GET /api/v1/tenants/<tenant>/objects`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRow {
    pub cluster: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Conditions `Accepted`, `ResolvedRefs` or `Programmed` that are False, on the object, its
    /// listeners or its parents: what the tenant reads in `kubectl describe`.
    pub problems: Vec<Problem>,
    pub status: ObjectStatus,
}

/// One L4 allocation (or a port without one), for `GET /api/v1/allocations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationRow {
    pub tenant: String,
    pub cluster: String,
    /// `Service` or `Gateway`.
    pub owner: &'static str,
    pub namespace: String,
    pub name: String,
    pub port: u16,
    pub protocol: &'static str,
    /// `address:port` clients use; None when it has none ([`AllocationRow::error`] says why).
    pub address: Option<String>,
    pub error: Option<String>,
}

const WATCHED: [&str; 3] = ["Accepted", "ResolvedRefs", "Programmed"];

fn bad(c: &Condition) -> bool {
    !c.status && WATCHED.contains(&c.type_.as_str())
}

fn problem(on: String, c: &Condition) -> Problem {
    Problem {
        on,
        type_: c.type_.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
    }
}

/// Whether one object's status has a problem ([`problems`] without building them).
pub fn has_problem(s: &ObjectStatus) -> bool {
    s.conditions.iter().any(bad)
        || s.listeners.iter().any(|l| l.conditions.iter().any(bad))
        || s.parents.iter().any(|p| p.conditions.iter().any(bad))
}

/// The problems of one object's status.
pub fn problems(s: &ObjectStatus) -> Vec<Problem> {
    let this = format!("{:?}/{}/{}", s.key.kind, s.key.namespace, s.key.name);
    let mut out: Vec<Problem> = s
        .conditions
        .iter()
        .filter(|c| bad(c))
        .map(|c| problem(this.clone(), c))
        .collect();
    for l in &s.listeners {
        out.extend(
            l.conditions
                .iter()
                .filter(|c| bad(c))
                .map(|c| problem(format!("{this} listener {}", l.name), c)),
        );
    }
    for p in &s.parents {
        let parent = format!("{this} on {}/{}", p.parent_ref.namespace, p.parent_ref.name);
        out.extend(
            p.conditions
                .iter()
                .filter(|c| bad(c))
                .map(|c| problem(parent.clone(), c)),
        );
    }
    out
}

fn clusters_of<'a>(
    state: &'a FleetState,
    tenant: &'a str,
) -> impl Iterator<Item = ClusterKey> + 'a {
    state
        .config
        .tenants
        .get(tenant)
        .into_iter()
        .flat_map(move |t| {
            t.clusters.keys().map(move |c| ClusterKey {
                tenant: tenant.to_string(),
                cluster: c.clone(),
            })
        })
}

fn counts(state: &FleetState, key: &ClusterKey) -> (usize, usize) {
    state.statuses.get(key).map_or((0, 0), |list| {
        let bad = list.iter().filter(|s| has_problem(s)).count();
        (list.len(), bad)
    })
}

/// Every tenant of the configuration, by name.
pub fn tenants(state: &FleetState) -> Vec<TenantRow> {
    let mut owned: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (host, tenant) in &state.owners {
        owned.entry(tenant.as_str()).or_default().push(host.clone());
    }
    state
        .config
        .tenants
        .values()
        .map(|t| {
            let keys: Vec<ClusterKey> = clusters_of(state, &t.name).collect();
            let (objects, with_problems) = keys
                .iter()
                .map(|k| counts(state, k))
                .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
            TenantRow {
                name: t.name.clone(),
                clusters: keys.len(),
                connected: keys.iter().filter(|k| state.connected.contains(k)).count(),
                allowed_hostnames: t.hostnames.clone(),
                owned_hostnames: owned.remove(t.name.as_str()).unwrap_or_default(),
                objects,
                with_problems,
            }
        })
        .collect()
}

/// Every cluster of the configuration, by tenant then name.
pub fn clusters(state: &FleetState) -> Vec<ClusterRow> {
    state
        .config
        .tenants
        .keys()
        .flat_map(|t| clusters_of(state, t))
        .map(|key| {
            let mut disabled_by = Vec::new();
            if state.file_disabled.contains(&key) {
                disabled_by.push("configuration");
            }
            if state.operator_disabled.contains(&key) {
                disabled_by.push("operator");
            }
            let st =
                if state.config.registration(&key.tenant, &key.cluster) == Registration::Disabled {
                    ClusterState::Disabled
                } else if state.connected.contains(&key) {
                    ClusterState::Connected
                } else if state.withdrawn.contains(&key) {
                    ClusterState::Withdrawn
                } else {
                    ClusterState::Disconnected
                };
            let (objects, with_problems) = counts(state, &key);
            ClusterRow {
                tenant: key.tenant,
                cluster: key.cluster,
                state: st,
                disabled_by,
                objects,
                with_problems,
            }
        })
        .collect()
}

/// The objects of `tenant` (None: no such tenant), by cluster then kind, namespace and name;
/// `query` keeps those whose kind, namespace or name contains it (case-insensitive).
pub fn objects(state: &FleetState, tenant: &str, query: Option<&str>) -> Option<Vec<ObjectRow>> {
    state.config.tenants.get(tenant)?;
    let query = query.map(str::to_lowercase);
    let mut rows: Vec<ObjectRow> = clusters_of(state, tenant)
        .flat_map(|key| {
            let list = state.statuses.get(&key).cloned().unwrap_or_default();
            list.iter()
                .map(|s| ObjectRow {
                    cluster: key.cluster.clone(),
                    kind: format!("{:?}", s.key.kind),
                    namespace: s.key.namespace.clone(),
                    name: s.key.name.clone(),
                    problems: problems(s),
                    status: s.clone(),
                })
                .collect::<Vec<_>>()
        })
        .filter(|r| {
            query.as_deref().is_none_or(|q| {
                [&r.kind, &r.namespace, &r.name]
                    .iter()
                    .any(|f| f.to_lowercase().contains(q))
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.cluster, &a.kind, &a.namespace, &a.name).cmp(&(
            &b.cluster,
            &b.kind,
            &b.namespace,
            &b.name,
        ))
    });
    Some(rows)
}

/// The connected Envoys, the AI gateways and the Envoy rejections still standing.
pub fn data_plane(state: &FleetState) -> DataPlane {
    let mut envoys: Vec<EnvoyView> = state.envoys.values().cloned().collect();
    envoys.sort_by(|a, b| (&a.node, a.connected_since).cmp(&(&b.node, b.connected_since)));
    DataPlane {
        envoys,
        ai_gateways: state
            .ai
            .streams
            .values()
            .map(|g| AiGatewayRow {
                id: g.gateway_id.clone(),
                serving: g.serving.clone(),
                refused: g
                    .refused
                    .iter()
                    .map(|(tenant, r)| RefusedRow {
                        tenant: tenant.clone(),
                        version: r.version,
                        reason: r.reason.clone(),
                    })
                    .collect(),
            })
            .collect(),
        envoy_rejections: state
            .xds
            .nacks
            .iter()
            .map(|(type_url, n)| EnvoyRejectionRow {
                type_url: type_url.clone(),
                node: n.node.clone(),
                version: n.version.clone(),
                message: n.message.clone(),
                blamed: n
                    .sources
                    .iter()
                    .map(|s| {
                        format!(
                            "{}/{}/{:?}/{}/{}",
                            s.cluster.tenant,
                            s.cluster.cluster,
                            s.object.kind,
                            s.object.namespace,
                            s.object.name
                        )
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Every L4 allocation, and every port that has none with why.
pub fn allocations(state: &FleetState) -> Vec<AllocationRow> {
    let row = |k: &PortKey, address: Option<String>, error: Option<String>| AllocationRow {
        tenant: k.service.cluster.tenant.clone(),
        cluster: k.service.cluster.cluster.clone(),
        owner: match k.service.owner {
            Owner::Service => "Service",
            Owner::Gateway => "Gateway",
        },
        namespace: k.service.namespace.clone(),
        name: k.service.name.clone(),
        port: k.port,
        protocol: k.protocol.as_str(),
        address,
        error,
    };
    let mut rows: Vec<AllocationRow> = state
        .allocations
        .iter()
        .map(|(k, a)| row(k, Some(a.to_string()), None))
        .chain(
            state
                .allocation_failures
                .iter()
                .map(|(k, e)| row(k, None, Some(e.to_string()))),
        )
        .collect();
    rows.sort_by(|a, b| {
        (&a.tenant, &a.cluster, &a.namespace, &a.name, a.port).cmp(&(
            &b.tenant,
            &b.cluster,
            &b.namespace,
            &b.name,
            b.port,
        ))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocate::ServiceKey;
    use crate::config::RawConfig;
    use crate::model::{Kind, L4Protocol, ObjectKey, ParentRef, RouteParentStatus};

    fn key(t: &str, c: &str) -> ClusterKey {
        ClusterKey {
            tenant: t.into(),
            cluster: c.into(),
        }
    }

    fn status(kind: Kind, name: &str, conditions: Vec<Condition>) -> ObjectStatus {
        ObjectStatus {
            key: ObjectKey {
                kind,
                namespace: "default".into(),
                name: name.into(),
            },
            observed_generation: 1,
            conditions,
            addresses: vec![],
            listeners: vec![],
            parents: vec![],
            load_balancer: vec![],
            attached_listener_sets: 0,
        }
    }

    fn state() -> FleetState {
        let raw: RawConfig = serde_yaml::from_str(
            r#"
agentListen: 127.0.0.1:7443
xdsListen: 127.0.0.1:18000
pkiDir: /nonexistent/pki
storePath: /nonexistent/hub.redb
dataPlane:
  address: 127.0.0.1
  listeners: [{port: 80, bind: "127.0.0.1:18080"}]
tenants:
- name: a
  hostnames: ['*.a.example']
  clusters:
  - {name: east, endpointCidrs: [127.0.1.0/24]}
  - {name: west, endpointCidrs: [127.0.1.0/24]}
  - {name: off, endpointCidrs: [127.0.1.0/24], enabled: false}
- name: b
  hostnames: ['*.b.example']
  clusters: [{name: c1, endpointCidrs: [127.0.2.0/24]}]
"#,
        )
        .unwrap();
        let mut config = raw.validate().unwrap();
        let file_disabled = config.identity.disabled_clusters.clone();
        // What `Fleet` runs with after an operator disabled b/c1.
        config.identity.disabled_clusters.insert(key("b", "c1"));
        let mut route = status(Kind::HttpRoute, "api", vec![]);
        route.parents = vec![RouteParentStatus {
            parent_ref: ParentRef {
                namespace: "default".into(),
                name: "web".into(),
                section_name: None,
                port: None,
                kind: Default::default(),
            },
            conditions: vec![
                Condition::new("Accepted", false, "NotAllowedByListeners", "no listener"),
                Condition::new("ResolvedRefs", true, "ResolvedRefs", ""),
            ],
        }];
        let web = status(
            Kind::Gateway,
            "web",
            vec![Condition::new("Accepted", true, "Accepted", "")],
        );
        let port = PortKey {
            service: ServiceKey {
                owner: Owner::Service,
                cluster: key("a", "east"),
                namespace: "default".into(),
                name: "db".into(),
            },
            port: 5432,
            protocol: L4Protocol::Tcp,
        };
        let mut full = port.clone();
        full.service.name = "cache".into();
        FleetState {
            config: Arc::new(config),
            file_disabled,
            operator_disabled: [key("b", "c1")].into(),
            connected: [key("a", "east")].into(),
            withdrawn: [key("a", "west")].into(),
            statuses: [(key("a", "east"), Arc::new(vec![web, route]))].into(),
            owners: [
                ("api.a.example".to_string(), "a".to_string()),
                ("x.b.example".to_string(), "b".to_string()),
            ]
            .into(),
            allocations: [(port, "127.0.0.1:30000".parse().unwrap())].into(),
            allocation_failures: [(full, AllocError::NoPools)].into(),
            xds: XdsHealth {
                nacks: [(
                    "type.googleapis.com/envoy.config.cluster.v3.Cluster".to_string(),
                    crate::xds::Nack {
                        node: "envoy-0".into(),
                        version: "7".into(),
                        message: "bad cluster".into(),
                        sources: [crate::model::SourceObject {
                            cluster: key("a", "east"),
                            object: ObjectKey {
                                kind: Kind::HttpRoute,
                                namespace: "default".into(),
                                name: "api".into(),
                            },
                        }]
                        .into(),
                    },
                )]
                .into(),
            },
            ai: AiGatewayHealth {
                streams: [(
                    1,
                    crate::ai_config::GatewayView {
                        gateway_id: "gw-1".into(),
                        serving: [("a".to_string(), 3)].into(),
                        refused: [(
                            "b".to_string(),
                            crate::ai_config::Refusal {
                                version: 2,
                                reason: "port 0".into(),
                                sources: Default::default(),
                            },
                        )]
                        .into(),
                    },
                )]
                .into(),
            },
            envoys: [
                (
                    9,
                    EnvoyView {
                        node: "envoy-1".into(),
                        connected_since: 1_700_000_100,
                        acked: [(
                            "envoy.config.cluster.v3.Cluster".to_string(),
                            "abc".to_string(),
                        )]
                        .into(),
                        last_ack_at: Some(1_700_000_150),
                        last_nack: Some(crate::data_plane::NackView {
                            type_url: "envoy.config.cluster.v3.Cluster".into(),
                            version: "7".into(),
                            message: "bad cluster".into(),
                            at: 1_700_000_200,
                        }),
                    },
                ),
                (
                    3,
                    EnvoyView {
                        node: "envoy-0".into(),
                        connected_since: 1_700_000_000,
                        acked: Default::default(),
                        last_ack_at: None,
                        last_nack: None,
                    },
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn the_data_plane_shows_gateways_and_standing_rejections() {
        let d = data_plane(&state());
        // Every connected Envoy, by node id, with what it ACKed and its last NACK.
        let nodes: Vec<&str> = d.envoys.iter().map(|e| e.node.as_str()).collect();
        assert_eq!(nodes, vec!["envoy-0", "envoy-1"]);
        assert_eq!(d.envoys[1].acked["envoy.config.cluster.v3.Cluster"], "abc");
        assert_eq!(
            d.envoys[1].last_nack.as_ref().map(|n| n.message.as_str()),
            Some("bad cluster")
        );
        assert_eq!(d.ai_gateways.len(), 1);
        assert_eq!(d.ai_gateways[0].id, "gw-1");
        assert_eq!(d.ai_gateways[0].serving, [("a".to_string(), 3)].into());
        assert_eq!(
            d.ai_gateways[0].refused,
            vec![RefusedRow {
                tenant: "b".into(),
                version: 2,
                reason: "port 0".into()
            }]
        );
        assert_eq!(d.envoy_rejections.len(), 1);
        assert_eq!(d.envoy_rejections[0].message, "bad cluster");
        assert_eq!(
            d.envoy_rejections[0].blamed,
            vec!["a/east/HttpRoute/default/api".to_string()]
        );
    }

    #[test]
    fn tenants_count_clusters_connections_objects_and_problems() {
        let rows = tenants(&state());
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert_eq!(
            (
                a.name.as_str(),
                a.clusters,
                a.connected,
                a.objects,
                a.with_problems
            ),
            ("a", 3, 1, 2, 1)
        );
        assert_eq!(a.owned_hostnames, vec!["api.a.example".to_string()]);
        assert_eq!(a.allowed_hostnames, vec!["*.a.example".to_string()]);
        assert_eq!(rows[1].owned_hostnames, vec!["x.b.example".to_string()]);
    }

    #[test]
    fn each_cluster_says_where_it_stands_and_who_disabled_it() {
        let rows = clusters(&state());
        let got: Vec<(&str, &str, ClusterState, Vec<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.tenant.as_str(),
                    r.cluster.as_str(),
                    r.state,
                    r.disabled_by.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", "east", ClusterState::Connected, vec![]),
                ("a", "off", ClusterState::Disabled, vec!["configuration"]),
                ("a", "west", ClusterState::Withdrawn, vec![]),
                ("b", "c1", ClusterState::Disabled, vec!["operator"]),
            ]
        );
    }

    #[test]
    fn objects_carry_their_problems_and_filter_by_query() {
        let s = state();
        let rows = objects(&s, "a", None).unwrap();
        assert_eq!(rows.len(), 2);
        let route = rows.iter().find(|r| r.name == "api").unwrap();
        assert_eq!(
            route.problems,
            vec![Problem {
                on: "HttpRoute/default/api on default/web".into(),
                type_: "Accepted".into(),
                reason: "NotAllowedByListeners".into(),
                message: "no listener".into(),
            }]
        );
        assert!(
            rows.iter()
                .find(|r| r.name == "web")
                .unwrap()
                .problems
                .is_empty()
        );
        assert_eq!(objects(&s, "a", Some("HTTPROUTE")).unwrap().len(), 1);
        assert_eq!(objects(&s, "a", Some("nothing")).unwrap().len(), 0);
        assert!(objects(&s, "b", None).unwrap().is_empty());
        assert!(objects(&s, "nobody", None).is_none());
    }

    #[test]
    fn allocations_list_addresses_and_ports_without_one() {
        let rows = allocations(&state());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "cache");
        assert_eq!(rows[0].address, None);
        assert!(
            rows[0]
                .error
                .as_deref()
                .unwrap()
                .contains("no address pool")
        );
        assert_eq!(rows[1].address.as_deref(), Some("127.0.0.1:30000"));
        assert_eq!((rows[1].protocol, rows[1].owner), ("TCP", "Service"));
    }
}
