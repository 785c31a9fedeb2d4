//! TCPRoute and UDPRoute (gateway.networking.k8s.io/v1): the pure translation into
//! `fleetgate.spoke.v1` `L4Route` objects (the kube types are in [`crate::crd`]).
//!
//! Where it sits: translated next to [`crate::translate`]. A route is sent when one of its
//! parentRefs points to a sent Gateway (only those parentRefs are sent); the backendRefs of all
//! its rules are resolved like HTTP backends, with the Service port's protocol required to be
//! TCP (TCPRoute) or UDP (UDPRoute).

use fleetgate_proto::spoke::v1::{self as pb, Kind, Object, object};

use crate::claim::{SentParents, claimed_classes, sent_gateways, sent_parent_refs};
use crate::config::EndpointMode;
use crate::crd::L4RouteView;
#[cfg(test)]
use crate::crd::{TcpRoute, UdpRoute};
use crate::resolve::{Index, resolve_backend_of};
use crate::state::ClusterState;
use crate::translate::{object_header, wire_backend};

/// Every TCPRoute and UDPRoute with a parentRef to a sent Gateway, sorted by kind, then
/// namespace/name.
pub fn translate_l4_routes(state: &ClusterState, mode: EndpointMode) -> Vec<Object> {
    let claimed = claimed_classes(state);
    // TCP and UDP listeners are not served in ListenerSets: only Gateways are parents here.
    let sent = SentParents {
        gateways: sent_gateways(state, &claimed),
        listener_sets: Default::default(),
    };
    let index = Index::new(state, mode);
    let views = state
        .tcp_routes
        .iter()
        .map(L4RouteView::tcp)
        .chain(state.udp_routes.iter().map(L4RouteView::udp));
    let mut out: Vec<Object> = views
        .filter_map(|v| route_object(&v, &sent, &index))
        .collect();
    out.sort_by_key(|o| {
        o.r#ref
            .as_ref()
            .map(|r| (r.kind, r.namespace.clone(), r.name.clone()))
    });
    out
}

fn route_object(v: &L4RouteView<'_>, sent: &SentParents, index: &Index<'_>) -> Option<Object> {
    let ns = v.metadata.namespace.clone()?;
    let parent_refs = sent_parent_refs(&ns, v.parent_refs, sent);
    if parent_refs.is_empty() {
        return None;
    }
    let (route_kind, protocol) = match v.kind {
        Kind::UdpRoute => ("UDPRoute", "UDP"),
        _ => ("TCPRoute", "TCP"),
    };
    let backends = v
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter().flatten())
        .map(|b| wire_backend(resolve_backend_of(&ns, b, index, route_kind, protocol)))
        .collect();
    let mut o = object_header(v.kind, v.metadata)?;
    o.spec = Some(object::Spec::L4Route(pb::L4Route {
        parent_refs,
        backends,
    }));
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::node;

    fn state() -> ClusterState {
        let objs: Vec<serde_json::Value> = vec![
            serde_json::json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": "fleetgate"},
                "spec": {"controllerName": "fleetgate.dev/hub"},
            }),
            serde_json::json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": "gw", "namespace": "app"},
                "spec": {"gatewayClassName": "fleetgate", "listeners": [
                    {"name": "tcp", "protocol": "TCP", "port": 9000},
                    {"name": "udp", "protocol": "UDP", "port": 9001},
                ]},
            }),
        ];
        let tcp: TcpRoute = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "TCPRoute",
            "metadata": {"name": "db", "namespace": "app"},
            "spec": {
                "parentRefs": [{"name": "gw", "sectionName": "tcp"}, {"name": "elsewhere"}],
                "rules": [{"backendRefs": [{"name": "db", "port": 5432}, {"name": "dns", "port": 53}]}],
            },
        }))
        .unwrap();
        let udp: UdpRoute = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "UDPRoute",
            "metadata": {"name": "dns", "namespace": "app"},
            "spec": {
                "parentRefs": [{"name": "gw", "sectionName": "udp"}],
                "rules": [{"backendRefs": [{"name": "dns", "port": 53}]}],
            },
        }))
        .unwrap();
        let orphan: UdpRoute = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "UDPRoute",
            "metadata": {"name": "orphan", "namespace": "app"},
            "spec": {"parentRefs": [{"name": "not-ours"}], "rules": []},
        }))
        .unwrap();
        let services = vec![
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "db", "namespace": "app"},
                "spec": {"type": "NodePort", "ports": [{"port": 5432, "protocol": "TCP", "nodePort": 30432}]},
            }))
            .unwrap(),
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "dns", "namespace": "app"},
                "spec": {"type": "NodePort", "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30053}]},
            }))
            .unwrap(),
        ];
        ClusterState {
            gateway_classes: vec![serde_json::from_value(objs[0].clone()).unwrap()],
            gateways: vec![serde_json::from_value(objs[1].clone()).unwrap()],
            tcp_routes: vec![tcp],
            udp_routes: vec![udp, orphan],
            services,
            nodes: vec![node("n1", Some("127.0.1.1"), None)],
            ..Default::default()
        }
    }

    #[test]
    fn routes_to_sent_gateways_are_translated_with_protocol_checked_backends() {
        let objs = translate_l4_routes(&state(), EndpointMode::Node);
        let names: Vec<(i32, String)> = objs
            .iter()
            .map(|o| {
                let r = o.r#ref.as_ref().unwrap();
                (r.kind, r.name.clone())
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (Kind::TcpRoute as i32, "db".to_string()),
                (Kind::UdpRoute as i32, "dns".to_string())
            ]
        );
        let Some(object::Spec::L4Route(tcp)) = &objs[0].spec else {
            panic!("L4Route expected")
        };
        assert_eq!(tcp.parent_refs.len(), 1, "only parentRefs to sent Gateways");
        assert_eq!(tcp.parent_refs[0].section_name, "tcp");
        assert_eq!(tcp.backends[0].endpoints[0].port, 30432);
        let problem = tcp.backends[1].problem.as_ref().unwrap();
        assert_eq!(problem.reason, "UnsupportedProtocol");
        assert!(
            problem.message.contains("TCPRoute backends must be TCP"),
            "{}",
            problem.message
        );
        let Some(object::Spec::L4Route(udp)) = &objs[1].spec else {
            panic!("L4Route expected")
        };
        assert!(udp.backends[0].problem.is_none());
        assert_eq!(udp.backends[0].endpoints[0].port, 30053);
    }
}
