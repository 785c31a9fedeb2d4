//! The Kubernetes kinds and constants the agent reads that the `gateway-api` crate does not give
//! it, and the views that read one kind through another with the same schema.
//!
//! Where it sits: below everything else in the agent — the sources (`watch`, `manifests`) read
//! these kinds into [`crate::state::ClusterState`], `translate`/`l4route` turn them into intent
//! and `status` writes their status. The `gateway-api` crate 0.22 has no v1 TCPRoute/UDPRoute,
//! so [`TcpRoute`] and [`UdpRoute`] declare only the fields fleetgate reads; parentRefs,
//! backendRefs and status have the same schema as HTTPRoute's and reuse its types.
//! [`agentgateway`] declares agentgateway's AgentgatewayBackend, [`virtual_key`] fleetgate's own
//! VirtualKey. No logic.

pub mod agentgateway;
pub mod virtual_key;

use fleetgate_proto::spoke::v1::Kind;
use gateway_api::grpcroutes::GrpcRouteParentRefs;
use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRulesBackendRefs, HttpRouteSpec, HttpRouteStatus,
};
use gateway_api::tlsroutes::TlsRouteParentRefs;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

pub use agentgateway::{AGENTGATEWAY_BACKEND_KIND, AGENTGATEWAY_GROUP, AgentgatewayBackend};
pub use virtual_key::VirtualKey;

/// The Gateway API group of Gateway, the default of a parentRef.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// One rule: only its backendRefs matter on L4.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_refs: Option<Vec<HttpRouteRulesBackendRefs>>,
}

/// `spec` of a TCPRoute v1.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "TCPRoute",
    root = "TcpRoute",
    plural = "tcproutes",
    namespaced,
    status = "HttpRouteStatus",
    schema = "disabled",
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct TcpRouteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_refs: Option<Vec<HttpRouteParentRefs>>,
    #[serde(default)]
    pub rules: Vec<L4RouteRule>,
}

/// `spec` of a UDPRoute v1.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "UDPRoute",
    root = "UdpRoute",
    plural = "udproutes",
    namespaced,
    status = "HttpRouteStatus",
    schema = "disabled",
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct UdpRouteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_refs: Option<Vec<HttpRouteParentRefs>>,
    #[serde(default)]
    pub rules: Vec<L4RouteRule>,
}

/// The parts of a TCPRoute or UDPRoute translation and status need.
pub struct L4RouteView<'a> {
    pub kind: Kind,
    pub metadata: &'a ObjectMeta,
    pub parent_refs: &'a [HttpRouteParentRefs],
    pub rules: &'a [L4RouteRule],
    pub status: Option<&'a HttpRouteStatus>,
}

impl<'a> L4RouteView<'a> {
    pub fn tcp(r: &'a TcpRoute) -> Self {
        Self {
            kind: Kind::TcpRoute,
            metadata: &r.metadata,
            parent_refs: r.spec.parent_refs.as_deref().unwrap_or_default(),
            rules: &r.spec.rules,
            status: r.status.as_ref(),
        }
    }

    pub fn udp(r: &'a UdpRoute) -> Self {
        Self {
            kind: Kind::UdpRoute,
            metadata: &r.metadata,
            parent_refs: r.spec.parent_refs.as_deref().unwrap_or_default(),
            rules: &r.spec.rules,
            status: r.status.as_ref(),
        }
    }

    /// The route as an HTTPRoute with the same metadata, parentRefs and status: the status
    /// builder of HTTPRoutes (`crate::status::build::route_status`) applies unchanged, since
    /// route status has one schema for every route kind.
    pub fn as_http_route(&self) -> HttpRoute {
        HttpRoute {
            metadata: self.metadata.clone(),
            spec: HttpRouteSpec {
                parent_refs: Some(self.parent_refs.to_vec()),
                ..Default::default()
            },
            status: self.status.cloned(),
        }
    }
}

/// Re-reads a value as another type with the same JSON schema (GRPCRoute and HTTPRoute share
/// parentRefs, backendRefs and header-modifier filters; ListenerSet listeners are Gateway
/// listeners).
pub fn same_schema<A: Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Option<B> {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// A GRPCRoute parentRef seen as an HTTPRoute one.
pub fn grpc_parent_as_http(p: &GrpcRouteParentRefs) -> HttpRouteParentRefs {
    HttpRouteParentRefs {
        group: p.group.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        port: p.port,
        section_name: p.section_name.clone(),
    }
}

/// A TLSRoute's parentRef in the HTTPRoute type (TLSRoute v1 uses the same schema).
pub fn tls_parent_as_http(p: &TlsRouteParentRefs) -> HttpRouteParentRefs {
    HttpRouteParentRefs {
        group: p.group.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        port: p.port,
        section_name: p.section_name.clone(),
    }
}
