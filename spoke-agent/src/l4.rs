//! Translate, L4 (pure): Services of type LoadBalancer -> `fleetgate.spoke.v1`
//! `LoadBalancerService` objects, each port resolved to endpoints like an HTTP backend.
//!
//! Where it sits: next to [`crate::translate`], between the sources and `sync`. A Service is
//! sent when [`crate::claim::is_claimed`]: its type is LoadBalancer and its
//! `spec.loadBalancerClass` is [`LOAD_BALANCER_CLASS`] — or, when the agent runs with
//! `--all-load-balancers`, whatever its class. Ports of protocols other than TCP and UDP are left out with a log line (the hub would
//! refuse the whole Service); their endpoints come from [`crate::resolve`].

use fleetgate_proto::spoke::v1::{self as pb, Kind, Object, object};
use k8s_openapi::api::core::v1::Service;
use tracing::warn;

pub use crate::claim::{LOAD_BALANCER_CLASS, is_claimed};
use crate::config::EndpointMode;
use crate::resolve::{Index, service_port_endpoints};
use crate::state::ClusterState;
use crate::translate::{object_header, wire_endpoint, wire_problem};

/// Every claimed Service as a `LoadBalancerService`, sorted by namespace/name.
pub fn translate_services(
    state: &ClusterState,
    mode: EndpointMode,
    all_load_balancers: bool,
) -> Vec<Object> {
    let index = Index::new(state, mode);
    let mut out: Vec<Object> = state
        .services
        .iter()
        .filter(|s| is_claimed(s, all_load_balancers))
        .filter_map(|s| service_object(s, &index))
        .collect();
    out.sort_by_key(|o| {
        o.r#ref
            .as_ref()
            .map(|r| (r.namespace.clone(), r.name.clone()))
    });
    out
}

fn service_object(svc: &Service, index: &Index<'_>) -> Option<Object> {
    let m = &svc.metadata;
    let (namespace, name) = (m.namespace.clone()?, m.name.clone()?);
    let mut ports = Vec::new();
    for p in svc.spec.as_ref()?.ports.iter().flatten() {
        let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".to_string());
        if protocol != "TCP" && protocol != "UDP" {
            warn!(service = %format!("{namespace}/{name}"), port = p.port, %protocol, "leaving out a port: fleetgate load-balances TCP and UDP only");
            continue;
        }
        let (endpoints, problem) = match service_port_endpoints(svc, p, index) {
            Ok(e) => (e.into_iter().map(wire_endpoint).collect(), None),
            Err(problem) => (Vec::new(), Some(wire_problem(problem))),
        };
        ports.push(pb::ServicePort {
            name: p.name.clone().unwrap_or_default(),
            protocol,
            port: u32::try_from(p.port).unwrap_or(0),
            endpoints,
            problem,
        });
    }
    if ports.is_empty() {
        return None;
    }
    let mut o = object_header(Kind::Service, m)?;
    o.spec = Some(object::Spec::LoadBalancerService(pb::LoadBalancerService {
        ports,
    }));
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::node;

    fn lb(name: &str, class: Option<&str>, type_: &str, ports: &[(&str, i32, i32)]) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "app", "name": name},
            "spec": {
                "type": type_,
                "loadBalancerClass": class,
                "ports": ports.iter().map(|(proto, port, node_port)| serde_json::json!({
                    "name": format!("{}-{port}", proto.to_lowercase()),
                    "protocol": proto, "port": port, "nodePort": node_port,
                })).collect::<Vec<_>>(),
            }
        }))
        .unwrap()
    }

    fn state() -> ClusterState {
        ClusterState {
            services: vec![
                lb(
                    "dns",
                    Some(LOAD_BALANCER_CLASS),
                    "LoadBalancer",
                    &[("UDP", 53, 30053), ("TCP", 53, 30054), ("SCTP", 99, 30099)],
                ),
                lb(
                    "other-class",
                    Some("example.com/lb"),
                    "LoadBalancer",
                    &[("TCP", 80, 30080)],
                ),
                lb("no-class", None, "LoadBalancer", &[("TCP", 81, 30081)]),
                lb(
                    "nodeport",
                    Some(LOAD_BALANCER_CLASS),
                    "NodePort",
                    &[("TCP", 82, 30082)],
                ),
                lb(
                    "sctp-only",
                    Some(LOAD_BALANCER_CLASS),
                    "LoadBalancer",
                    &[("SCTP", 83, 30083)],
                ),
            ],
            nodes: vec![node("n1", Some("127.0.1.1"), None)],
            ..Default::default()
        }
    }

    fn names(objs: &[Object]) -> Vec<String> {
        objs.iter()
            .map(|o| o.r#ref.as_ref().unwrap().name.clone())
            .collect()
    }

    #[test]
    fn which_services_are_sent() {
        assert_eq!(
            names(&translate_services(&state(), EndpointMode::Node, false)),
            vec!["dns"]
        );
        assert_eq!(
            names(&translate_services(&state(), EndpointMode::Node, true)),
            vec!["dns", "no-class", "other-class"]
        );
    }

    #[test]
    fn ports_resolve_to_node_addresses_and_keep_their_protocol() {
        let objs = translate_services(&state(), EndpointMode::Node, false);
        let Some(object::Spec::LoadBalancerService(s)) = &objs[0].spec else {
            panic!("service expected")
        };
        type Port = (String, u32, Vec<(String, u32)>);
        let got: Vec<Port> = s
            .ports
            .iter()
            .map(|p| {
                (
                    p.protocol.clone(),
                    p.port,
                    p.endpoints
                        .iter()
                        .map(|e| (e.address.clone(), e.port))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("UDP".into(), 53, vec![("127.0.1.1".into(), 30053)]),
                ("TCP".into(), 53, vec![("127.0.1.1".into(), 30054)]),
            ]
        );
        assert_eq!(objs[0].r#ref.as_ref().unwrap().kind, Kind::Service as i32);
    }

    #[test]
    fn pod_mode_uses_the_ready_endpoint_slice_addresses() {
        let mut st = state();
        st.endpoint_slices = vec![crate::test_support::endpoint_slice(
            "app",
            "dns-1",
            "dns",
            &[(Some("udp-53"), 5353), (Some("tcp-53"), 5354)],
            &[("127.0.1.20", Some(true)), ("127.0.1.21", Some(false))],
        )];
        let objs = translate_services(&st, EndpointMode::Pod, false);
        let Some(object::Spec::LoadBalancerService(s)) = &objs[0].spec else {
            panic!("service expected")
        };
        let eps: Vec<Vec<(String, u32)>> = s
            .ports
            .iter()
            .map(|p| {
                p.endpoints
                    .iter()
                    .map(|e| (e.address.clone(), e.port))
                    .collect()
            })
            .collect();
        assert_eq!(
            eps,
            vec![
                vec![("127.0.1.20".to_string(), 5353)],
                vec![("127.0.1.20".to_string(), 5354)]
            ]
        );
    }

    #[test]
    fn a_port_without_node_port_carries_a_problem() {
        let mut st = state();
        st.services = vec![lb(
            "db",
            Some(LOAD_BALANCER_CLASS),
            "LoadBalancer",
            &[("TCP", 5432, 0)],
        )];
        if let Some(spec) = st.services[0].spec.as_mut() {
            spec.ports.as_mut().unwrap()[0].node_port = None;
        }
        let objs = translate_services(&st, EndpointMode::Node, false);
        let Some(object::Spec::LoadBalancerService(s)) = &objs[0].spec else {
            panic!("service expected")
        };
        let problem = s.ports[0].problem.as_ref().unwrap();
        assert_eq!(problem.reason, "BackendNotFound");
        assert!(problem.message.contains("nodePort"), "{}", problem.message);
        assert!(s.ports[0].endpoints.is_empty());
    }
}
