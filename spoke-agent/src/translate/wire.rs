//! Resolved references -> wire types: the agent's [`crate::resolve`] results become the
//! `fleetgate.spoke.v1` backends, endpoints and certificates the hub gets.
//!
//! Where it sits: the one place in the agent where resolve's types meet the proto; called by
//! every translation (`translate`, `translate::grpc`, `translate::filters`, `l4route`, `l4`).
//! Pure.

use fleetgate_proto::spoke::v1 as pb;
use gateway_api::httproutes::HttpRouteRulesBackendRefs;

use super::filters::backend_filters;
use crate::resolve::certificate::Certificate;
use crate::resolve::{Backend, Endpoint, Index, Problem, resolve_backend};

/// A resolution problem as the hub gets it (reason spelled as the Gateway API does).
pub fn wire_problem(p: Problem) -> pb::BackendProblem {
    pb::BackendProblem {
        reason: p.reason.as_str().to_string(),
        message: p.message,
    }
}

/// One endpoint as the hub gets it.
pub fn wire_endpoint(e: Endpoint) -> pb::Endpoint {
    pb::Endpoint {
        address: e.address,
        port: e.port,
        ready: e.ready,
    }
}

/// A resolved backend as the hub gets it, without filters.
pub fn wire_backend(b: Backend) -> pb::Backend {
    pb::Backend {
        namespace: b.namespace,
        name: b.name,
        port: b.port,
        weight: b.weight,
        problem: b.problem.map(wire_problem),
        endpoints: b.endpoints.into_iter().map(wire_endpoint).collect(),
        app_protocol: b.app_protocol,
        filters: Vec::new(),
        kind: b.kind,
    }
}

/// A resolved certificateRef as the hub gets it.
pub fn wire_certificate(c: Certificate) -> pb::Certificate {
    pb::Certificate {
        namespace: c.namespace,
        name: c.name,
        cert_chain_pem: c.cert_chain_pem,
        private_key_pem: c.private_key_pem,
        problem: c.problem.map(wire_problem),
    }
}

/// One backendRef of an HTTPRoute in `route_ns`, resolved, with its filters (only HTTPRoute
/// backendRefs carry filters).
pub fn http_backend(
    route_ns: &str,
    r: &HttpRouteRulesBackendRefs,
    index: &Index<'_>,
) -> pb::Backend {
    let mut backend = wire_backend(resolve_backend(route_ns, r, index));
    backend.filters = backend_filters(&backend.namespace.clone(), r);
    backend
}
