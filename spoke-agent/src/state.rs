//! The agent's view of one tenant cluster: plain lists of the objects the agent cares about.
//!
//! Where it sits: the output of the sources (`watch` for a live cluster, `manifests` for a folder
//! of YAML), published through a `tokio::sync::watch` channel, and the only input of the pure
//! `translate` step and of the `status` writer.

use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::referencegrants::ReferenceGrant;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::config::SecretAccess;
use crate::crd::{AgentgatewayBackend, TcpRoute, UdpRoute, VirtualKey};

/// One consistent snapshot of the cluster, as the sources last saw it.
#[derive(Clone, Default, PartialEq)]
pub struct ClusterState {
    pub gateway_classes: Vec<GatewayClass>,
    pub gateways: Vec<Gateway>,
    pub http_routes: Vec<HttpRoute>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
    /// Secrets of type `kubernetes.io/tls` only (the watch filters on the type); only those a
    /// claimed Gateway's certificateRefs name are ever sent. Holds private keys: never log it.
    pub secrets: Vec<Secret>,
    /// Which TLS Secrets the source reads (`--secrets`; a manifests folder reads every one), so
    /// that a certificateRef to a Secret outside it is explained rather than called missing.
    pub secret_access: SecretAccess,
    pub reference_grants: Vec<ReferenceGrant>,
    pub tls_routes: Vec<TlsRoute>,
    /// TCPRoutes and UDPRoutes v1 (empty when the API server does not serve them).
    pub tcp_routes: Vec<TcpRoute>,
    pub udp_routes: Vec<UdpRoute>,
    /// Namespaces (for `allowedRoutes.namespaces.from: Selector`; only names and labels are used).
    pub namespaces: Vec<Namespace>,
    pub grpc_routes: Vec<GrpcRoute>,
    /// ListenerSets v1 (empty when the API server does not serve them).
    pub listener_sets: Vec<ListenerSet>,
    /// agentgateway.dev/v1alpha1 AgentgatewayBackends (empty when the API server does not serve
    /// them: deploy/crds/agentgateway.dev_agentgatewaybackends.yaml not installed).
    pub ai_backends: Vec<AgentgatewayBackend>,
    /// Secrets (of any type) that an AgentgatewayBackend's `policies.auth.secretRef` or a
    /// VirtualKey's `secretRef` names in its own namespace, and only those
    /// ([`crate::claim::referenced_ai_secrets`], [`crate::claim::referenced_key_secrets`]): the
    /// watch reads each by name. Holds provider and virtual keys: never log it.
    pub ai_secrets: Vec<Secret>,
    /// fleetgate.dev/v1alpha1 VirtualKeys (empty when the API server does not serve them or
    /// AgentgatewayBackends are not watched). The Secrets they name are in `ai_secrets`.
    pub virtual_keys: Vec<VirtualKey>,
    /// GatewayClass names the agent claims besides those of its controllerName
    /// (`--gateway-class`), set by the source from the configuration.
    pub claimed_class_names: Vec<String>,
    /// networking.k8s.io/v1 Ingresses (empty when the agent's RBAC does not allow reading them).
    pub ingresses: Vec<Ingress>,
    /// networking.k8s.io/v1 IngressClasses.
    pub ingress_classes: Vec<IngressClass>,
    /// gateway.networking.k8s.io/v1 BackendTLSPolicies (empty when the API server does not serve
    /// them or the agent's RBAC does not allow reading them): not implemented, so the agent
    /// says so on each (`status::backend_tls`).
    pub backend_tls_policies: Vec<BackendTlsPolicy>,
    /// The IngressClass name the agent claims besides those whose `spec.controller` is
    /// fleetgate.dev/hub (`--ingress-class`), set by the source from the configuration.
    pub ingress_class_name: String,
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
        self.secrets.sort_by_key(key);
        self.reference_grants.sort_by_key(key);
        self.tls_routes.sort_by_key(key);
        self.tcp_routes.sort_by_key(key);
        self.udp_routes.sort_by_key(key);
        self.namespaces.sort_by_key(key);
        self.grpc_routes.sort_by_key(key);
        self.listener_sets.sort_by_key(key);
        self.ai_backends.sort_by_key(key);
        self.ai_secrets.sort_by_key(key);
        self.virtual_keys.sort_by_key(key);
        self.ingresses.sort_by_key(key);
        self.ingress_classes.sort_by_key(key);
        self.backend_tls_policies.sort_by_key(key);
        self.claimed_class_names.sort();
        self.claimed_class_names.dedup();
    }
}

impl std::fmt::Debug for ClusterState {
    /// Counts only: the state holds Secrets (private keys), which must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterState")
            .field("gateway_classes", &self.gateway_classes.len())
            .field("gateways", &self.gateways.len())
            .field("http_routes", &self.http_routes.len())
            .field("services", &self.services.len())
            .field("endpoint_slices", &self.endpoint_slices.len())
            .field("nodes", &self.nodes.len())
            .field("secrets", &self.secrets.len())
            .field("secret_access", &self.secret_access)
            .field("reference_grants", &self.reference_grants.len())
            .field("tls_routes", &self.tls_routes.len())
            .field("tcp_routes", &self.tcp_routes.len())
            .field("udp_routes", &self.udp_routes.len())
            .field("namespaces", &self.namespaces.len())
            .field("grpc_routes", &self.grpc_routes.len())
            .field("listener_sets", &self.listener_sets.len())
            .field("ai_backends", &self.ai_backends.len())
            .field("ai_secrets", &self.ai_secrets.len())
            .field("virtual_keys", &self.virtual_keys.len())
            .field("claimed_class_names", &self.claimed_class_names)
            .field("ingresses", &self.ingresses.len())
            .field("ingress_classes", &self.ingress_classes.len())
            .field("ingress_class_name", &self.ingress_class_name)
            .finish()
    }
}
