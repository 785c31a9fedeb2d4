//! The agent's view of one tenant cluster: plain lists of the objects the agent cares about.
//!
//! Where it sits: the output of the sources (`watch` for a live cluster, `manifests` for a folder
//! of YAML), published through a `tokio::sync::watch` channel, and the only input of the pure
//! `translate` step and of the `status` writer.

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::l4route::{TcpRoute, UdpRoute};

/// One consistent snapshot of the cluster, as the sources last saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    pub gateway_classes: Vec<GatewayClass>,
    pub gateways: Vec<Gateway>,
    pub http_routes: Vec<HttpRoute>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
    /// TCPRoutes and UDPRoutes v1 (empty when the API server does not serve them).
    pub tcp_routes: Vec<TcpRoute>,
    pub udp_routes: Vec<UdpRoute>,
}

impl ClusterState {
    /// Sorts every list by namespace/name so that equal clusters give equal snapshots.
    pub fn normalize(&mut self) {
        fn key<K: kube::Resource>(k: &K) -> (String, String) {
            let m = k.meta();
            (
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
            )
        }
        self.gateway_classes.sort_by_key(key);
        self.gateways.sort_by_key(key);
        self.http_routes.sort_by_key(key);
        self.services.sort_by_key(key);
        self.endpoint_slices.sort_by_key(key);
        self.nodes.sort_by_key(key);
        self.tcp_routes.sort_by_key(key);
        self.udp_routes.sort_by_key(key);
    }
}
