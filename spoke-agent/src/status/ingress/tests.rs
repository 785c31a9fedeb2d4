//! Table tests of Ingress status planning: the Gateway's addresses become
//! `status.loadBalancer.ingress`, the hub's refusals (and the agent's own) become problems.

use fleetgate_proto::spoke::v1::{self as pb, ListenerStatus, ObjectRef, RouteParentStatus};
use k8s_openapi::api::networking::v1::IngressClass;
use serde_json::json;

use super::*;
use crate::claim::CONTROLLER_NAME;
use crate::test_support::{node, service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn state(status: Option<serde_json::Value>) -> ClusterState {
    let mut ing = json!({
        "metadata": {"name": "shop", "namespace": "app"},
        "spec": {"ingressClassName": "fleetgate", "rules": [
            {"host": "shop.a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
    });
    if let Some(s) = status {
        ing["status"] = s;
    }
    let class: IngressClass = from_json(json!({
        "metadata": {"name": "fleetgate"}, "spec": {"controller": CONTROLLER_NAME},
    }));
    ClusterState {
        ingresses: vec![from_json(ing)],
        ingress_classes: vec![class],
        ingress_class_name: "fleetgate".into(),
        services: vec![service(
            "app",
            "web",
            "NodePort",
            &[(Some("http"), 80, Some(30080), IntOrString::Int(80))],
        )],
        nodes: vec![node("n1", Some("127.0.1.1"), None)],
        ..Default::default()
    }
}

fn cond(t: &str, s: &str, reason: &str, message: &str) -> pb::Condition {
    pb::Condition {
        r#type: t.into(),
        status: s.into(),
        reason: reason.into(),
        message: message.into(),
    }
}

fn object(kind: Kind, name: &str) -> ObjectStatus {
    ObjectStatus {
        r#ref: Some(ObjectRef {
            kind: kind as i32,
            namespace: "app".into(),
            name: name.into(),
        }),
        ..Default::default()
    }
}

fn gateway(
    addresses: &[&str],
    conditions: Vec<pb::Condition>,
    listener: Vec<pb::Condition>,
) -> ObjectStatus {
    ObjectStatus {
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        conditions,
        listeners: vec![ListenerStatus {
            name: "http-0".into(),
            conditions: listener,
            ..Default::default()
        }],
        ..object(Kind::Gateway, "shop.ingress")
    }
}

fn route(conditions: Vec<pb::Condition>) -> ObjectStatus {
    ObjectStatus {
        parents: vec![RouteParentStatus {
            parent_ref: None,
            conditions,
        }],
        ..object(Kind::HttpRoute, "shop.ingress.0")
    }
}

fn ok() -> pb::Condition {
    cond("Accepted", "True", "Accepted", "")
}

fn ips(r: &IngressReport) -> Option<Vec<String>> {
    r.load_balancer.as_ref().map(|lb| {
        lb.ingress
            .iter()
            .flatten()
            .map(|i| i.ip.clone().or(i.hostname.clone()).unwrap())
            .collect()
    })
}

#[test]
fn plan_table() {
    type Case = (
        &'static str,
        Option<Vec<ObjectStatus>>,
        Option<Vec<&'static str>>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "no word from the hub yet: nothing written",
            None,
            None,
            vec![],
        ),
        (
            "served: the Gateway's address",
            Some(vec![
                gateway(&["127.0.0.5"], vec![ok()], vec![ok()]),
                route(vec![ok()]),
            ]),
            Some(vec!["127.0.0.5"]),
            vec![],
        ),
        (
            "a host another tenant owns: the hub's rejection is reported, no address",
            Some(vec![
                gateway(
                    &[],
                    vec![cond(
                        "Accepted",
                        "False",
                        "NotAllowedHostname",
                        "hostname \"shop.a.example\" is claimed by another tenant",
                    )],
                    vec![],
                ),
                route(vec![cond(
                    "Accepted",
                    "False",
                    "NotAllowedHostname",
                    "hostname \"shop.a.example\" is claimed by another tenant",
                )]),
            ]),
            Some(vec![]),
            vec![
                "NotAllowedHostname: hostname \"shop.a.example\" is claimed by another tenant",
                "rules for shop.a.example: NotAllowedHostname",
            ],
        ),
        (
            "a listener certificate problem; the route's ResolvedRefs is the agent's to tell",
            Some(vec![
                gateway(
                    &["127.0.0.5"],
                    vec![ok()],
                    vec![cond(
                        "ResolvedRefs",
                        "False",
                        "InvalidCertificateRef",
                        "Secret app/gone not found",
                    )],
                ),
                route(vec![
                    ok(),
                    cond(
                        "ResolvedRefs",
                        "False",
                        "BackendNotFound",
                        "Service app/web not found",
                    ),
                ]),
            ]),
            Some(vec!["127.0.0.5"]),
            vec!["listener HTTP shop.a.example: InvalidCertificateRef: Secret app/gone not found"],
        ),
    ];
    for (what, hub, want_ips, want_problems) in cases {
        let hub = hub.map(|objects| Status {
            traceparent: String::new(),
            objects,
        });
        let reports = plan(&state(None), hub.as_ref(), EndpointMode::Node);
        assert_eq!(reports.len(), 1, "{what}");
        let r = &reports[0];
        assert_eq!(
            ips(r),
            want_ips.map(|v| v.into_iter().map(String::from).collect()),
            "{what}"
        );
        assert_eq!(
            r.problems.len(),
            want_problems.len(),
            "{what}: {:?}",
            r.problems
        );
        for (got, want) in r.problems.iter().zip(&want_problems) {
            assert!(got.contains(want), "{what}: {got} lacks {want}");
        }
        // The Ingress has no status yet: only an address is worth a write.
        assert_eq!(
            r.needs_write(),
            ips(r).is_some_and(|i| !i.is_empty()),
            "{what}"
        );
    }
}

#[test]
fn refused_by_the_agent_empties_the_address_and_says_why() {
    let mut st = state(Some(
        json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.5"}]}}),
    ));
    st.gateways.push(crate::test_support::gateway(
        "app",
        "shop.ingress",
        "x",
        &[],
    ));
    let r = &plan(&st, None, EndpointMode::Node)[0];
    assert_eq!(ips(r), Some(vec![]));
    assert!(
        r.problems[0].contains("Gateway app/shop.ingress already exists"),
        "{:?}",
        r.problems
    );
    assert!(r.needs_write());
}

#[test]
fn an_address_already_written_is_not_written_again() {
    let hub = Status {
        traceparent: String::new(),
        objects: vec![gateway(&["127.0.0.5"], vec![ok()], vec![ok()])],
    };
    let st = state(Some(
        json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.5"}]}}),
    ));
    assert!(!plan(&st, Some(&hub), EndpointMode::Node)[0].needs_write());
    let st = state(Some(
        json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}),
    ));
    assert!(plan(&st, Some(&hub), EndpointMode::Node)[0].needs_write());
    // `loadBalancer: {}` and `ingress: []` both mean no address.
    let none = Status {
        traceparent: String::new(),
        objects: vec![gateway(&[], vec![ok()], vec![ok()])],
    };
    let st = state(Some(json!({"loadBalancer": {}})));
    assert!(!plan(&st, Some(&none), EndpointMode::Node)[0].needs_write());
}

#[test]
fn the_warning_event_names_the_ingress() {
    let now = crate::status::build::now_seconds();
    let e = warning_event("app", "shop", &["a".into(), "b".into()], &now);
    assert_eq!(e.involved_object.kind.as_deref(), Some("Ingress"));
    assert_eq!(
        e.involved_object.api_version.as_deref(),
        Some("networking.k8s.io/v1")
    );
    assert_eq!(e.involved_object.name.as_deref(), Some("shop"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.message.as_deref(), Some("a; b"));
}

/// The hub's route condition names only the first unresolved backend; the agent reports every
/// one, with the path it is written at.
#[test]
fn every_unresolved_backend_is_reported_by_the_agent() {
    let mut st = state(None);
    st.ingresses = vec![from_json(json!({
        "metadata": {"name": "shop", "namespace": "app"},
        "spec": {
            "ingressClassName": "fleetgate",
            "defaultBackend": {"service": {"name": "gone", "port": {"number": 80}}},
            "rules": [{"host": "shop.a.example", "http": {"paths": [
                {"path": "/a", "pathType": "Prefix",
                 "backend": {"service": {"name": "missing", "port": {"number": 80}}}},
                {"path": "/b", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"name": "nope"}}}},
                {"path": "/c", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]},
    }))];
    let r = &plan(&st, None, EndpointMode::Node)[0];
    assert_eq!(
        r.problems,
        vec![
            "path /a of shop.a.example: BackendNotFound: Service app/missing not found".to_string(),
            "path /b of shop.a.example: BackendNotFound: Service app/web has no port named \"nope\"; name one of its ports in the Ingress backend (service.port.name or service.port.number)".to_string(),
            "defaultBackend: BackendNotFound: Service app/gone not found".to_string(),
        ]
    );
}
