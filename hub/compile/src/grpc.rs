//! GRPCRoute in the compiler: a GRPCRoute rule becomes HTTP routes on the request path
//! `/<service>/<method>` (gRPC's wire mapping), ordered by the GRPCRoute precedence rules, and
//! GRPCRoutes and HTTPRoutes never share a hostname on a listener.
//!
//! Part of the compiler (step 7), pure. Called by `super::compile`, which runs the converted
//! route through the same attachment and route building as HTTPRoutes.
//!
//! Gateway API rules implemented here:
//! - method matches: Exact service+method -> exact path `/<service>/<method>`; Exact service
//!   only -> path prefix `/<service>/`; Exact method only and RegularExpression -> the RE2
//!   expression `/(?:<service>)/(?:<method>)`, an unset side being `[^/]+`.
//! - precedence: most characters in a matching service, then in a matching method, then most
//!   header matches; then oldest and namespace/name like every route (hostname specificity is
//!   the virtual host's).
//! - "If a Route (A) of type HTTPRoute or GRPCRoute is attached to a Listener and that listener
//!   already has another Route (B) of the other type attached and the intersection of the
//!   hostnames of A and B is non-empty, then the implementation MUST accept exactly one of these
//!   two routes": the oldest (creationTimestamp), then the first by namespace/name. fleetgate
//!   applies it per data-plane port and hostname (where the two would be merged), across the
//!   tenant's clusters, and reports the loser Accepted=False with reason `Conflicted` (the spec
//!   names no reason).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::attach;
use super::listener;
use super::precedence::{Origin, Precedence};
use crate::model::data_plane::DataPlane;
use crate::model::{
    ClusterIntent, ClusterKey, GrpcMethodMatch, GrpcRoute, HttpRoute, HttpRouteMatch,
    HttpRouteRule, Kind, Protocol, ThinVec, Timeouts,
};

/// The Accepted=False reason of the route that loses an HTTPRoute/GRPCRoute hostname conflict.
pub const CONFLICTED: &str = "Conflicted";

/// The request path match of a GRPCRoute method match; it lives with the model because
/// admission bounds the RE2 size of the same expression.
pub use crate::model::grpc_path_match as path_match;

/// The GRPCRoute as an HTTPRoute: same metadata, parents, hostnames, filters and backends; each
/// match becomes a path match (plus its header matches).
pub fn as_http_route(g: &GrpcRoute) -> HttpRoute {
    HttpRoute {
        meta: g.meta.clone(),
        parent_refs: g.parent_refs.clone(),
        hostnames: g.hostnames.clone(),
        rules: g
            .rules
            .iter()
            .map(|r| HttpRouteRule {
                name: r.name.clone(),
                matches: r
                    .matches
                    .iter()
                    .map(|m| HttpRouteMatch {
                        path: path_match(m.method.as_ref()),
                        headers: m.headers.iter().cloned().collect(),
                        query_params: ThinVec::new(),
                        method: None,
                    })
                    .collect(),
                filters: r.filters.iter().cloned().collect(),
                backends: r.backends.iter().cloned().collect(),
                timeouts: Timeouts::default(),
            })
            .collect(),
    }
}

/// The precedence of match `o.m` of rule `o.rule` of `g`.
pub fn precedence(g: &GrpcRoute, o: Origin<'_>) -> Precedence {
    let m = &g.rules[o.rule].matches[o.m];
    let len = |s: &Option<String>| s.as_deref().map_or(0, |s| s.chars().count());
    let (service, method) = match &m.method {
        None => (0, 0),
        Some(
            GrpcMethodMatch::Exact { service, method }
            | GrpcMethodMatch::RegularExpression { service, method },
        ) => (len(service), len(method)),
    };
    Precedence::grpc(service, method, m.headers.len(), o)
}

/// Who is older, for the HTTPRoute/GRPCRoute conflict: creationTimestamp, namespace, name, then
/// tenant/cluster and kind so that the order is total. The age of a route attachment, one per
/// route object, shared by each of its hostnames' claims (compared by value).
pub type Age = Arc<(String, String, String, String, String, Kind)>;

/// One cluster's HTTPRoute and GRPCRoute attachments: per (data-plane port, hostname) its
/// oldest route. The compiler's memo keeps them per cluster; [`Conflicts`] keeps what their
/// union adds to them.
pub type Claims = BTreeMap<(u16, String), Age>;

/// The winner of every (data-plane port, hostname) that routes of more than one cluster attach
/// to; a key of one cluster only is won by that cluster's own claim ([`Conflicts::for_cluster`]).
/// Keeping the contested keys only (few: a tenant's clusters rarely share a hostname) spares a
/// second copy of every claim of the fleet (about 50 MiB at 100,000 routes).
#[derive(Debug, Default)]
pub struct Conflicts {
    contested: Claims,
}

/// [`Conflicts`] as one cluster sees them: the fleet's contested keys, and its own claims for
/// the others.
#[derive(Debug, Clone, Copy)]
pub struct ClusterConflicts<'a> {
    fleet: &'a Conflicts,
    own: &'a Claims,
}

/// The oldest HTTPRoute or GRPCRoute attachment of cluster `ck` per (port, hostname); `ci` is
/// the cluster's intent with its ListenerSets merged in (`merged`).
pub fn claims(
    ck: &ClusterKey,
    ci: &ClusterIntent,
    merged: &super::listener_set::Merged<'_>,
    dp: &DataPlane,
) -> Claims {
    let mut oldest = Claims::new();
    let valid: BTreeMap<&(String, String), Vec<bool>> = ci
        .gateways
        .iter()
        .map(|(k, gw)| {
            let v = gw
                .listeners
                .iter()
                .map(|l| {
                    listener::check(l, dp).is_ok()
                        && matches!(l.protocol, Some(Protocol::Http | Protocol::Https))
                })
                .collect();
            (k, v)
        })
        .collect();
    let routes = ci
        .http_routes
        .values()
        .map(|r| (Kind::HttpRoute, &r.meta, &r.parent_refs, &r.hostnames))
        .chain(
            ci.grpc_routes
                .values()
                .map(|r| (Kind::GrpcRoute, &r.meta, &r.parent_refs, &r.hostnames)),
        );
    for (kind, meta, parents, hostnames) in routes {
        let age: Age = Arc::new((
            meta.creation_timestamp.clone(),
            meta.namespace.clone(),
            meta.name.clone(),
            ck.tenant.clone(),
            ck.cluster.clone(),
            kind,
        ));
        for p in parents {
            let (gkey, gw, scope) = merged.parent(ck, ci, p);
            let v = valid.get(&gkey).map(Vec::as_slice).unwrap_or_default();
            let route_kind = match kind {
                Kind::GrpcRoute => "GRPCRoute",
                _ => "HTTPRoute",
            };
            let Ok(atts) = attach::attach(route_kind, &meta.namespace, hostnames, p, gw, scope, v)
            else {
                continue;
            };
            let gw = gw.expect("attach succeeds only with a gateway");
            for att in atts {
                let port = gw.listeners[att.listener].port;
                for h in att.hostnames {
                    let e = oldest.entry((port, h)).or_insert_with(|| age.clone());
                    if age < *e {
                        *e = age.clone();
                    }
                }
            }
        }
    }
    oldest
}

impl Conflicts {
    /// The union of the clusters' claims (each cluster's once): the oldest attachment per
    /// (port, hostname) that more than one of them claims.
    pub fn from_claims<'a>(all: impl IntoIterator<Item = &'a Claims>) -> Self {
        use std::collections::hash_map::Entry;
        // Per key, the oldest claim and whether a second cluster claims it; keys borrowed.
        let mut seen: HashMap<&(u16, String), (&Age, bool)> = HashMap::new();
        for claims in all {
            for (k, age) in claims {
                match seen.entry(k) {
                    Entry::Occupied(e) => {
                        let (oldest, contested) = e.into_mut();
                        *contested = true;
                        if age < *oldest {
                            *oldest = age;
                        }
                    }
                    Entry::Vacant(e) => {
                        e.insert((age, false));
                    }
                }
            }
        }
        let contested = seen
            .into_iter()
            .filter(|(_, (_, contested))| *contested)
            .map(|(k, (age, _))| (k.clone(), Arc::clone(age)))
            .collect();
        Self { contested }
    }

    /// The oldest attachment of `key` when routes of more than one cluster attach to it.
    fn contested_winner(&self, key: &(u16, String)) -> Option<&Age> {
        self.contested.get(key)
    }

    /// The conflicts as the cluster whose claims are `own` sees them.
    pub fn for_cluster<'a>(&'a self, own: &'a Claims) -> ClusterConflicts<'a> {
        ClusterConflicts { fleet: self, own }
    }
}

impl ClusterConflicts<'_> {
    /// The oldest attachment of `key` in the whole fleet.
    pub fn winner(&self, key: &(u16, String)) -> Option<&Age> {
        self.fleet
            .contested_winner(key)
            .or_else(|| self.own.get(key))
    }

    /// The oldest attachment of `key` in the whole fleet when it is another cluster's: what
    /// the cluster's compiled part depends on besides its own intent.
    pub fn foreign_winner(&self, key: &(u16, String)) -> Option<&Age> {
        self.fleet
            .contested_winner(key)
            .filter(|w| self.own.get(key) != Some(*w))
    }

    /// When a route of `kind` attached on `port` for `hostnames` loses a conflict with an older
    /// route of the other kind: the message for its status.
    pub fn loser(&self, port: u16, hostnames: &[String], kind: Kind) -> Option<String> {
        hostnames.iter().find_map(|h| {
            let (_, ns, name, _, _, k) = &**self.winner(&(port, h.clone()))?;
            (*k != kind).then(|| {
                let (this, other) = match kind {
                    Kind::GrpcRoute => ("GRPCRoute", "HTTPRoute"),
                    _ => ("HTTPRoute", "GRPCRoute"),
                };
                format!(
                    "hostname {h} on port {port} is already served by {other} {ns}/{name}, which is older; an {this} and a {other} cannot share a hostname on a listener: use another hostname or merge the routes"
                )
            })
        })
    }
}

/// Converts for the compile tests.
#[cfg(test)]
pub fn method(service: Option<&str>, method: Option<&str>, regex: bool) -> GrpcMethodMatch {
    let (service, method) = (service.map(String::from), method.map(String::from));
    if regex {
        GrpcMethodMatch::RegularExpression { service, method }
    } else {
        GrpcMethodMatch::Exact { service, method }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PathMatch;

    #[test]
    fn only_keys_of_several_clusters_are_kept_and_each_cluster_wins_its_own() {
        let age = |at: &str, cluster: &str, kind| -> Age {
            Arc::new((
                at.into(),
                "default".into(),
                "r".into(),
                "a".into(),
                cluster.into(),
                kind,
            ))
        };
        let (c1_http, c2_grpc) = (
            age("2026-01-02T00:00:00Z", "c1", Kind::HttpRoute),
            age("2026-01-01T00:00:00Z", "c2", Kind::GrpcRoute),
        );
        let shared = (80, "shared.a.example".to_string());
        let only_c1 = (80, "one.a.example".to_string());
        let c1: Claims = [
            (shared.clone(), c1_http.clone()),
            (only_c1.clone(), c1_http.clone()),
        ]
        .into();
        let c2: Claims = [(shared.clone(), c2_grpc.clone())].into();
        let fleet = Conflicts::from_claims([&c1, &c2]);
        assert_eq!(fleet.contested.len(), 1, "{fleet:?}");
        let (v1, v2) = (fleet.for_cluster(&c1), fleet.for_cluster(&c2));
        // The older GRPCRoute of c2 wins the shared hostname for both clusters.
        assert_eq!(v1.winner(&shared), Some(&c2_grpc));
        assert_eq!(v1.foreign_winner(&shared), Some(&c2_grpc));
        assert_eq!(v2.winner(&shared), Some(&c2_grpc));
        assert_eq!(v2.foreign_winner(&shared), None);
        assert!(
            v1.loser(80, &["shared.a.example".into()], Kind::HttpRoute)
                .is_some()
        );
        assert!(
            v2.loser(80, &["shared.a.example".into()], Kind::GrpcRoute)
                .is_none()
        );
        // A hostname of c1 alone: its own claim.
        assert_eq!(v1.winner(&only_c1), Some(&c1_http));
        assert_eq!(v1.foreign_winner(&only_c1), None);
    }

    #[test]
    fn path_match_table() {
        use PathMatch::*;
        let table: &[(Option<GrpcMethodMatch>, PathMatch)] = &[
            (None, Prefix("/".into())),
            (
                Some(method(Some("echo.v1.Echo"), Some("Say"), false)),
                Exact("/echo.v1.Echo/Say".into()),
            ),
            (
                Some(method(Some(".echo.v1.Echo"), Some("Say"), false)),
                Exact("/echo.v1.Echo/Say".into()),
            ),
            (
                Some(method(Some("echo.v1.Echo"), None, false)),
                Prefix("/echo.v1.Echo/".into()),
            ),
            (
                Some(method(None, Some("Say"), false)),
                RegularExpression("/[^/]+/Say".into()),
            ),
            (
                Some(method(Some("echo\\.v[0-9]+\\.Echo"), None, true)),
                RegularExpression("/(?:echo\\.v[0-9]+\\.Echo)/(?:[^/]+)".into()),
            ),
            (
                Some(method(None, Some("S(ay|ing)"), true)),
                RegularExpression("/(?:[^/]+)/(?:S(ay|ing))".into()),
            ),
        ];
        for (m, want) in table {
            assert_eq!(path_match(m.as_ref()), *want, "{m:?}");
        }
    }

    #[test]
    fn derived_regexes_match_grpc_paths() {
        let cases: &[(GrpcMethodMatch, &str, bool)] = &[
            (method(None, Some("Say"), false), "/echo.v1.Echo/Say", true),
            (
                method(None, Some("Say"), false),
                "/echo.v1.Echo/SayMore",
                false,
            ),
            (method(None, Some("Say"), false), "/a/b/Say", false),
            (method(Some("e.*"), None, true), "/echo.v1.Echo/Say", true),
            (method(Some("e.*"), None, true), "/other.Echo/Say", false),
            (
                method(Some("echo"), Some("Say|Sing"), true),
                "/echo/Sing",
                true,
            ),
            (
                method(Some("echo"), Some("Say|Sing"), true),
                "/echo/Shout",
                false,
            ),
        ];
        for (m, path, want) in cases {
            let PathMatch::RegularExpression(re) = path_match(Some(m)) else {
                panic!("regex expected for {m:?}")
            };
            // Envoy's safe_regex matches the whole path.
            let re = regex::Regex::new(&format!("^(?:{re})$")).unwrap();
            assert_eq!(re.is_match(path), *want, "{m:?} {path}");
        }
    }

    #[test]
    fn as_http_route_keeps_everything_but_the_matches() {
        let g = GrpcRoute {
            meta: crate::model::Meta {
                namespace: "ns".into(),
                name: "g".into(),
                generation: 1,
                creation_timestamp: String::new(),
            },
            parent_refs: vec![],
            hostnames: vec!["grpc.a.example".into()],
            rules: vec![crate::model::GrpcRouteRule {
                name: Some("r".into()),
                matches: vec![crate::model::GrpcRouteMatch {
                    method: Some(method(Some("s"), Some("M"), false)),
                    headers: vec![("x-a".into(), crate::model::ValueMatch::Exact("1".into()))],
                }],
                filters: vec![],
                backends: vec![],
            }],
        };
        let h = as_http_route(&g);
        assert_eq!(h.hostnames, g.hostnames);
        assert_eq!(h.rules[0].name.as_deref(), Some("r"));
        assert_eq!(h.rules[0].matches[0].path, PathMatch::Exact("/s/M".into()));
        assert_eq!(h.rules[0].matches[0].headers, g.rules[0].matches[0].headers);
    }
}
