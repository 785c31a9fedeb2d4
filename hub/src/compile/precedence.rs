//! Gateway API precedence between the rules merged into one virtual host.
//!
//! Part of the compiler (step 7). Rules of every HTTPRoute attached for a hostname — possibly
//! from several clusters of the tenant — are merged and ordered by [`Precedence`]; the data plane
//! takes the first match, so the order is the Gateway API's:
//! exact path > longest prefix > more header matches > oldest creationTimestamp >
//! namespace/name alphabetical (then tenant/cluster, so ties across clusters are deterministic)
//! > rule order > match order.

use std::cmp::Reverse;

use super::snapshot::PathMatch;
use crate::model;

/// Sort key of one match of one rule; smaller sorts first (wins). Also unique per match, so a
/// map keyed by it deduplicates a route attached twice to the same hostname.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precedence {
    exactness: u8,
    path_len: Reverse<usize>,
    headers: Reverse<usize>,
    /// RFC 3339 in UTC as written by the API server (`...Z`), so it orders as text.
    created: String,
    namespace: String,
    name: String,
    tenant: String,
    cluster: String,
    rule: usize,
    m: usize,
}

/// Where a match comes from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub tenant: &'a str,
    pub cluster: &'a str,
    pub meta: &'a model::Meta,
    pub rule: usize,
    pub m: usize,
}

impl Precedence {
    pub fn new(path: &PathMatch, headers: usize, o: Origin<'_>) -> Self {
        let (exactness, len) = match path {
            PathMatch::Exact(p) => (0, p.len()),
            PathMatch::Prefix(p) => (1, p.len()),
        };
        Self {
            exactness,
            path_len: Reverse(len),
            headers: Reverse(headers),
            created: o.meta.creation_timestamp.clone(),
            namespace: o.meta.namespace.clone(),
            name: o.meta.name.clone(),
            tenant: o.tenant.to_string(),
            cluster: o.cluster.to_string(),
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
