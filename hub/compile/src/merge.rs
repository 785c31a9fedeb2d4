//! Several clusters of one tenant serving one hostname: their routes are merged.
//!
//! Part of the compiler (step 7), pure; runs on the routes of one virtual host, already in
//! Gateway API precedence order (`super::precedence`, whose key is cluster-aware). A route whose
//! match (path, headers, query parameters, method) equals that of an earlier route of the same
//! tenant from ANOTHER cluster does not shadow it: both forward, so the later route's backends
//! are added to the earlier one's, with their weights as written (two clusters each with one
//! backend of weight 1 share the traffic 50/50). The earlier route (the older HTTPRoute, then
//! namespace/name, then cluster name) keeps its filters, timeouts and mirrors (an earlier route
//! without timeouts that gains a share to the AI gateway takes the later route's, which has none
//! unless its rule set them: LLM streams are not cut by the data plane's default). Routes that do not
//! forward (redirects, 500 for a rule without valid backends) are not merged: precedence
//! decides as within one cluster. Routes of one cluster with equal matches are never merged
//! either: the Gateway API lets precedence pick one of them.

use std::collections::{BTreeMap, BTreeSet};

use super::snapshot::{PathMatch, Route, RouteAction};
use crate::model::ai::AI_GATEWAY_CLUSTER;
use crate::model::{ThinVec, ValueMatch};

/// What makes two routes match the same requests.
type MatchKey = (
    String,
    PathMatch,
    ThinVec<(String, ValueMatch)>,
    ThinVec<(String, ValueMatch)>,
    Option<String>,
);

/// The routes of one virtual host (in precedence order) with equal forwarding matches of one
/// tenant's clusters merged into the first of them.
pub fn merge_clusters(routes: impl ExactSizeIterator<Item = Route>) -> Vec<Route> {
    // At most one per route; a growing Vec kept room for four (a `Route` is large), which was
    // the largest part of the compiled fleet's memory (docs/benchmarks.md, eighth round).
    let mut out: Vec<Route> = Vec::with_capacity(routes.len());
    // Match -> (index in `out` of the first forwarding route, clusters merged into it).
    let mut firsts: BTreeMap<MatchKey, (usize, BTreeSet<String>)> = BTreeMap::new();
    for r in routes {
        let (Some(src), RouteAction::Forward(fw)) = (&r.source, &r.action) else {
            out.push(r);
            continue;
        };
        let key = (
            src.cluster.tenant.clone(),
            r.path.clone(),
            r.headers.clone(),
            r.query_params.clone(),
            r.method.clone(),
        );
        match firsts.get_mut(&key) {
            Some((i, merged)) if !merged.contains(&src.cluster.cluster) => {
                merged.insert(src.cluster.cluster.clone());
                if let RouteAction::Forward(first) = &mut out[*i].action {
                    first.clusters.extend(fw.clusters.iter().cloned());
                    // A rule without timeouts that now also reaches the AI gateway gets none
                    // either way (`super::ai`): the default would cut long LLM streams.
                    if first.timeout.is_none()
                        && fw.clusters.iter().any(|w| w.cluster == AI_GATEWAY_CLUSTER)
                    {
                        first.timeout = fw.timeout;
                    }
                }
            }
            Some(_) => out.push(r),
            None => {
                firsts.insert(
                    key,
                    (out.len(), BTreeSet::from([src.cluster.cluster.clone()])),
                );
                out.push(r);
            }
        }
    }
    out
}
