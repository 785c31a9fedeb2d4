//! Watch: kube-rs reflectors over the tenant cluster (GatewayClass, Gateway, HTTPRoute v1,
//! TLSRoute v1, GRPCRoute v1, ReferenceGrant v1, Service, EndpointSlice, Node, Namespace,
//! Secrets of type `kubernetes.io/tls`; TCPRoute, UDPRoute and ListenerSet v1 when served) that
//! publish a
//! [`ClusterState`] snapshot.
//!
//! Secrets: the watch is filtered server-side to `type=kubernetes.io/tls`, so no other Secret
//! (service-account tokens, application credentials) ever reaches the agent; of those, only the
//! ones a claimed Gateway's certificateRefs name are sent to the hub (`translate`).
//!
//! Where it sits: the first step of the data path in cluster mode (the other source is
//! [`crate::manifests`]). The first snapshot is published only once every reflector has listed
//! its kind, so the hub never receives a partial full state; later snapshots follow every change
//! (coalesced over [`COALESCE`]) and are sent only when they differ.

pub mod reflect;

use std::sync::Arc;
use std::time::Duration;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::referencegrants::ReferenceGrant;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Api, Client};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::l4route::{TcpRoute, UdpRoute};
use crate::state::ClusterState;

/// How long after a change the snapshot is taken, so a burst of changes (an `apply` of many
/// objects) becomes one update instead of hundreds. Short, since it adds to every change's
/// time to the data plane.
pub const COALESCE: Duration = Duration::from_millis(20);
/// Whether the API server serves TCPRoute, UDPRoute and ListenerSet in
/// gateway.networking.k8s.io/v1.
async fn serves_optional_kinds(client: &Client) -> (bool, bool, bool) {
    match client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
    {
        Ok(list) => {
            let has = |n: &str| list.resources.iter().any(|r| r.name == n);
            let out = (has("tcproutes"), has("udproutes"), has("listenersets"));
            if !out.0 || !out.1 {
                info!(
                    "TCPRoute/UDPRoute v1 not served by this cluster (install the Gateway API 1.6 CRDs to use them)"
                );
            }
            if !out.2 {
                info!(
                    "ListenerSet v1 not served by this cluster (install the Gateway API 1.5+ CRDs to use it)"
                );
            }
            out
        }
        Err(e) => {
            warn!(
                "cannot discover gateway.networking.k8s.io/v1 resources ({e}); not watching TCPRoutes/UDPRoutes/ListenerSets"
            );
            (false, false, false)
        }
    }
}

/// Runs the reflectors and publishes snapshots into `tx` until every receiver is gone.
pub async fn run(client: Client, tx: watch::Sender<ClusterState>) {
    let changed = Arc::new(Notify::new());
    let classes = reflect::spawn(Api::<GatewayClass>::all(client.clone()), changed.clone());
    let gateways = reflect::spawn(Api::<Gateway>::all(client.clone()), changed.clone());
    let routes = reflect::spawn(Api::<HttpRoute>::all(client.clone()), changed.clone());
    let services = reflect::spawn(Api::<Service>::all(client.clone()), changed.clone());
    let slices = reflect::spawn(Api::<EndpointSlice>::all(client.clone()), changed.clone());
    let nodes = reflect::spawn(Api::<Node>::all(client.clone()), changed.clone());
    let secrets = reflect::spawn_with(
        Api::<Secret>::all(client.clone()),
        kube::runtime::watcher::Config::default().fields("type=kubernetes.io/tls"),
        changed.clone(),
    );
    let grants = reflect::spawn(Api::<ReferenceGrant>::all(client.clone()), changed.clone());
    let tls_routes = reflect::spawn(Api::<TlsRoute>::all(client.clone()), changed.clone());
    // TCPRoute/UDPRoute v1 only when the API server serves them (Gateway API >= 1.6 CRDs), so
    // that an older installation does not block the first snapshot.
    let (serves_tcp, serves_udp, serves_listener_sets) = serves_optional_kinds(&client).await;
    let tcp_routes =
        serves_tcp.then(|| reflect::spawn(Api::<TcpRoute>::all(client.clone()), changed.clone()));
    let udp_routes =
        serves_udp.then(|| reflect::spawn(Api::<UdpRoute>::all(client.clone()), changed.clone()));
    let namespaces = reflect::spawn(Api::<Namespace>::all(client.clone()), changed.clone());
    let grpc_routes = reflect::spawn(Api::<GrpcRoute>::all(client.clone()), changed.clone());
    let listener_sets = serves_listener_sets
        .then(|| reflect::spawn(Api::<ListenerSet>::all(client.clone()), changed.clone()));

    let ready = async {
        let _ = classes.wait_until_ready().await;
        let _ = gateways.wait_until_ready().await;
        let _ = routes.wait_until_ready().await;
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        let _ = nodes.wait_until_ready().await;
        let _ = secrets.wait_until_ready().await;
        let _ = grants.wait_until_ready().await;
        let _ = tls_routes.wait_until_ready().await;
        if let Some(s) = &tcp_routes {
            let _ = s.wait_until_ready().await;
        }
        if let Some(s) = &udp_routes {
            let _ = s.wait_until_ready().await;
        }
        let _ = namespaces.wait_until_ready().await;
        let _ = grpc_routes.wait_until_ready().await;
        if let Some(s) = &listener_sets {
            let _ = s.wait_until_ready().await;
        }
    };
    tokio::pin!(ready);
    loop {
        tokio::select! {
            _ = &mut ready => break,
            _ = tokio::time::sleep(Duration::from_secs(10)) => warn!(
                "still waiting for the initial list of GatewayClasses, Gateways, HTTPRoutes, TLSRoutes, GRPCRoutes, ReferenceGrants, Services, EndpointSlices, Nodes and TLS Secrets (are the Gateway API CRDs installed and the RBAC in deploy/agent-rbac.yaml applied?)"
            ),
        }
    }
    info!("cluster watch ready");
    let snapshot = || {
        let mut s = ClusterState {
            gateway_classes: reflect::objects(&classes),
            gateways: reflect::objects(&gateways),
            http_routes: reflect::objects(&routes),
            services: reflect::objects(&services),
            endpoint_slices: reflect::objects(&slices),
            nodes: reflect::objects(&nodes),
            secrets: reflect::objects(&secrets),
            reference_grants: reflect::objects(&grants),
            tls_routes: reflect::objects(&tls_routes),
            tcp_routes: tcp_routes
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
            udp_routes: udp_routes
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
            namespaces: reflect::objects(&namespaces),
            grpc_routes: reflect::objects(&grpc_routes),
            listener_sets: listener_sets
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
        };
        s.normalize();
        s
    };
    tx.send_replace(snapshot());
    loop {
        tokio::select! {
            _ = changed.notified() => {}
            _ = tx.closed() => return,
        }
        tokio::time::sleep(COALESCE).await;
        let next = snapshot();
        tx.send_if_modified(|cur| {
            if *cur == next {
                false
            } else {
                *cur = next;
                true
            }
        });
    }
}
