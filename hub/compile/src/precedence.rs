//! Gateway API precedence between the rules merged into one virtual host.
//!
//! Part of the compiler (step 7). Rules of every HTTPRoute attached for a hostname — possibly
//! from several clusters of the tenant — are merged and ordered by [`Precedence`]; the data plane
//! takes the first match, so the order is the Gateway API's:
//! exact path > regular expression (longest first) > longest prefix > method match > more header
//! matches > more query parameter matches > oldest creationTimestamp > namespace/name alphabetical
//! (then tenant/cluster, so ties across clusters are deterministic) > rule order > match order.
//!
//! Regular expressions are implementation-specific in Gateway API; fleetgate places them between
//! exact and prefix matches (as Envoy Gateway does), so a regex route is not shadowed by a
//! `PathPrefix /` route of the same hostname.

use std::cmp::Reverse;
use std::sync::Arc;

use super::snapshot::{PathMatch, Route};
use crate::model;

/// Sort key of one match of one rule; smaller sorts first (wins). Also unique per match, so a
/// map keyed by it deduplicates a route attached twice to the same hostname.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precedence {
    specificity: Specificity,
    /// Shared by every match of the object (a key is kept per match and hostname until the
    /// next change of its cluster).
    object: Arc<ObjectOrder>,
    rule: usize,
    m: usize,
}

/// How equally specific matches of different objects are ordered: oldest first, then by
/// namespace and name, then by tenant and cluster (fields in that order).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectOrder {
    /// RFC 3339 in UTC as written by the API server (`...Z`), so it orders as text.
    created: String,
    namespace: String,
    name: String,
    tenant: String,
    cluster: String,
}

impl ObjectOrder {
    /// The order of the object `meta` of `tenant`'s `cluster`.
    pub fn new(tenant: &str, cluster: &str, meta: &model::Meta) -> Arc<Self> {
        Arc::new(Self {
            created: meta.creation_timestamp.clone(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
        })
    }
}

/// How specific a match is, by route kind. HTTPRoute and GRPCRoute rules are never merged for
/// one hostname of one listener (`super::grpc` rejects the later route), so the order between
/// the two variants only keeps the key total.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Http {
        exactness: u8,
        path_len: Reverse<usize>,
        /// `false` (has a method match) sorts first.
        any_method: bool,
        headers: Reverse<usize>,
        query_params: Reverse<usize>,
    },
    /// GRPCRoute (Gateway API): most characters in a matching service, then in a matching
    /// method, then most header matches.
    Grpc {
        service_len: Reverse<usize>,
        method_len: Reverse<usize>,
        headers: Reverse<usize>,
    },
}

/// Where a match comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub object: &'a Arc<ObjectOrder>,
    pub rule: usize,
    pub m: usize,
}

impl Precedence {
    pub fn new(r: &Route, o: Origin<'_>) -> Self {
        let (exactness, len) = match &r.path {
            PathMatch::Exact(p) => (0, p.len()),
            PathMatch::RegularExpression(p) => (1, p.len()),
            PathMatch::Prefix(p) => (2, p.len()),
        };
        Self::with(
            Specificity::Http {
                exactness,
                path_len: Reverse(len),
                any_method: r.method.is_none(),
                headers: Reverse(r.headers.len()),
                query_params: Reverse(r.query_params.len()),
            },
            o,
        )
    }

    /// A GRPCRoute match: `service_len` and `method_len` characters of service and method
    /// names (or expressions) it matches, with `headers` header matches.
    pub fn grpc(service_len: usize, method_len: usize, headers: usize, o: Origin<'_>) -> Self {
        Self::with(
            Specificity::Grpc {
                service_len: Reverse(service_len),
                method_len: Reverse(method_len),
                headers: Reverse(headers),
            },
            o,
        )
    }

    fn with(specificity: Specificity, o: Origin<'_>) -> Self {
        Self {
            specificity,
            object: Arc::clone(o.object),
            rule: o.rule,
            m: o.m,
        }
    }
}

/// The model's path match in data-plane form: a prefix loses its trailing `/` (Gateway API
/// ignores it: `/foo/` matches like `/foo`), except the root `/`.
pub fn normalize(path: &model::PathMatch) -> PathMatch {
    match path {
        model::PathMatch::Exact(p) => PathMatch::Exact(p.clone()),
        model::PathMatch::RegularExpression(p) => PathMatch::RegularExpression(p.clone()),
        model::PathMatch::Prefix(p) => {
            let trimmed = p.trim_end_matches('/');
            if trimmed.is_empty() {
                PathMatch::Prefix("/".to_string())
            } else {
                PathMatch::Prefix(trimmed.to_string())
            }
        }
    }
}
