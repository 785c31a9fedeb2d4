//! Service status building (pure): the hub's status of a LoadBalancer Service -> the Service's
//! `status.loadBalancer.ingress[{ip, ports[{port, protocol}]}]` and `status.conditions`.
//!
//! Where it sits: the last step of the data path, called by [`super::build::plan`]; the writer
//! in [`super`] applies the result with server-side apply on `services/status`. The ports in
//! `ingress` are the ports the hub allocated on the address, which may differ from the Service
//! ports: clients connect to `ip:port` exactly as written there.

use fleetgate_proto::spoke::v1::ObjectStatus;
use k8s_openapi::api::core::v1::{
    Event, EventSource, LoadBalancerIngress, LoadBalancerStatus, ObjectReference, PortStatus,
    Service, ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::build::merge_conditions;

/// The status the agent wants on `svc`, from the hub's `hub` status.
pub fn service_status(svc: &Service, hub: &ObjectStatus, now: &Time) -> ServiceStatus {
    let existing = svc.status.clone().unwrap_or_default();
    let generation = if hub.observed_generation > 0 {
        hub.observed_generation
    } else {
        svc.metadata.generation.unwrap_or(0)
    };
    let ingress: Vec<LoadBalancerIngress> = hub
        .load_balancer_ingress
        .iter()
        .map(|i| LoadBalancerIngress {
            ip: Some(i.ip.clone()),
            ports: Some(
                i.ports
                    .iter()
                    .map(|p| PortStatus {
                        port: i32::try_from(p.port).unwrap_or(0),
                        protocol: p.protocol.clone(),
                        error: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        })
        .collect();
    ServiceStatus {
        conditions: Some(merge_conditions(
            existing.conditions.as_deref().unwrap_or_default(),
            &hub.conditions,
            generation,
            now,
        )),
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(ingress),
        }),
    }
}

/// `s` in a form where equal intent compares equal: conditions sorted, ipMode (defaulted by the
/// API server) and empty lists ignored.
pub fn normalized(s: &ServiceStatus) -> ServiceStatus {
    let mut s = s.clone();
    let mut conditions = s.conditions.take().unwrap_or_default();
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    s.conditions = Some(conditions);
    let mut ingress = s
        .load_balancer
        .take()
        .and_then(|l| l.ingress)
        .unwrap_or_default();
    for i in &mut ingress {
        i.ip_mode = None;
    }
    s.load_balancer = Some(LoadBalancerStatus {
        ingress: Some(ingress),
    });
    s
}

/// The Programmed=False message of a status, if any: what the agent logs for the tenant.
pub fn not_programmed(s: &ServiceStatus) -> Option<String> {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Programmed" && c.status == "False")
        .map(|c| format!("{}: {}", c.reason, c.message))
}

/// A Warning Event on the Service saying why it has no address (Programmed=False), for
/// `kubectl describe service`; `None` when the Service is programmed.
pub fn warning_event(namespace: &str, name: &str, s: &ServiceStatus) -> Option<Event> {
    let c = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Programmed" && c.status == "False")?;
    Some(condition_event(("v1", "Service"), namespace, name, c))
}

/// A Warning Event on object `namespace/name` of `(apiVersion, kind)` carrying condition `c`'s
/// reason and message, from the agent (`FIELD_MANAGER`), dated at the condition's transition.
pub fn condition_event(
    (api_version, kind): (&str, &str),
    namespace: &str,
    name: &str,
    c: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition,
) -> Event {
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
            namespace: Some(namespace.to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        },
        reason: Some(c.reason.clone()),
        message: Some(c.message.clone()),
        type_: Some("Warning".to_string()),
        source: Some(EventSource {
            component: Some(crate::FIELD_MANAGER.to_string()),
            host: None,
        }),
        first_timestamp: Some(c.last_transition_time.clone()),
        last_timestamp: Some(c.last_transition_time.clone()),
        count: Some(1),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_proto::spoke::v1::{self as pb, Kind, ObjectRef};

    fn hub(ingress: &[(&str, &[(u32, &str)])], programmed: (&str, &str)) -> ObjectStatus {
        ObjectStatus {
            r#ref: Some(ObjectRef {
                kind: Kind::Service as i32,
                namespace: "app".into(),
                name: "db".into(),
            }),
            observed_generation: 2,
            conditions: vec![pb::Condition {
                r#type: "Programmed".into(),
                status: programmed.0.into(),
                reason: programmed.1.into(),
                message: "m".into(),
            }],
            load_balancer_ingress: ingress
                .iter()
                .map(|(ip, ports)| pb::LoadBalancerIngress {
                    ip: ip.to_string(),
                    ports: ports
                        .iter()
                        .map(|(port, proto)| pb::LoadBalancerPort {
                            port: *port,
                            protocol: proto.to_string(),
                            service_port: 5432,
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    #[test]
    fn ingress_and_conditions_from_the_hub() {
        let svc = Service::default();
        let st = service_status(
            &svc,
            &hub(
                &[("127.0.0.1", &[(20000, "TCP"), (20000, "UDP")])],
                ("True", "Programmed"),
            ),
            &now(),
        );
        let ingress = st.load_balancer.clone().unwrap().ingress.unwrap();
        assert_eq!(ingress[0].ip.as_deref(), Some("127.0.0.1"));
        let ports: Vec<(i32, String)> = ingress[0]
            .ports
            .iter()
            .flatten()
            .map(|p| (p.port, p.protocol.clone()))
            .collect();
        assert_eq!(ports, vec![(20000, "TCP".into()), (20000, "UDP".into())]);
        let c = &st.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.observed_generation),
            ("Programmed", Some(2))
        );
        assert_eq!(not_programmed(&st), None);

        let exhausted = service_status(&svc, &hub(&[], ("False", "PoolExhausted")), &now());
        assert_eq!(
            exhausted.load_balancer.unwrap().ingress,
            Some(vec![]),
            "no address: ingress is emptied"
        );
        let with_conditions = service_status(&svc, &hub(&[], ("False", "PoolExhausted")), &now());
        assert_eq!(
            not_programmed(&with_conditions).as_deref(),
            Some("PoolExhausted: m")
        );
    }

    #[test]
    fn api_server_defaults_do_not_cause_rewrites() {
        let desired = service_status(
            &Service::default(),
            &hub(&[("127.0.0.1", &[(20000, "TCP")])], ("True", "Programmed")),
            &now(),
        );
        let mut stored = desired.clone();
        stored
            .load_balancer
            .as_mut()
            .unwrap()
            .ingress
            .as_mut()
            .unwrap()[0]
            .ip_mode = Some("VIP".into());
        assert_eq!(normalized(&stored), normalized(&desired));
        let mut moved = desired.clone();
        moved
            .load_balancer
            .as_mut()
            .unwrap()
            .ingress
            .as_mut()
            .unwrap()[0]
            .ip = Some("127.0.0.2".into());
        assert_ne!(normalized(&moved), normalized(&desired));
    }
}
