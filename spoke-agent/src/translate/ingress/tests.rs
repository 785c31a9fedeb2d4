//! Table tests of the Ingress translation: the intent an Ingress becomes (the same Gateway and
//! HTTPRoute objects a tenant would send), and every bad input carried to the hub as a problem.

use fleetgate_proto::spoke::v1::{Kind, Object, object, path_match};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;
use crate::claim::CONTROLLER_NAME;
use crate::config::EndpointMode;
use crate::test_support::{node, service};

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn ingress(name: &str, class: &str, spec: serde_json::Value) -> Ingress {
    let mut spec = spec;
    spec["ingressClassName"] = json!(class);
    from_json(json!({
        "metadata": {"name": name, "namespace": "app", "generation": 3,
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": spec,
    }))
}

fn port_number(svc: &str, n: i32) -> serde_json::Value {
    json!({"service": {"name": svc, "port": {"number": n}}})
}

fn port_name(svc: &str, n: &str) -> serde_json::Value {
    json!({"service": {"name": svc, "port": {"name": n}}})
}

fn state(ingresses: Vec<Ingress>) -> ClusterState {
    let secret: Secret = from_json(json!({
        "metadata": {"name": "shop-tls", "namespace": "app"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Q1JU", "tls.key": "S0VZ"},
    }));
    let class: IngressClass = from_json(json!({
        "metadata": {"name": "fleetgate"}, "spec": {"controller": CONTROLLER_NAME},
    }));
    ClusterState {
        ingresses,
        ingress_classes: vec![class],
        ingress_class_name: "fleetgate".into(),
        services: vec![
            service(
                "app",
                "web",
                "NodePort",
                &[(Some("http"), 8080, Some(30080), IntOrString::Int(8080))],
            ),
            service(
                "app",
                "api",
                "NodePort",
                &[(Some("grpc"), 9090, Some(30090), IntOrString::Int(9090))],
            ),
        ],
        nodes: vec![node("n1", Some("127.0.1.1"), None)],
        secrets: vec![secret],
        ..Default::default()
    }
}

fn translate(st: &ClusterState) -> Vec<Object> {
    let index = Index::new(st, EndpointMode::Node);
    translate_ingresses(st, &index)
}

fn gateway_of(o: &Object) -> &pb::Gateway {
    match &o.spec {
        Some(object::Spec::Gateway(g)) => g,
        other => panic!("not a Gateway: {other:?}"),
    }
}

fn route_of(o: &Object) -> &pb::HttpRoute {
    match &o.spec {
        Some(object::Spec::HttpRoute(r)) => r,
        other => panic!("not an HTTPRoute: {other:?}"),
    }
}

/// (kind, path, backend name, backend port, endpoints, problem reason) of every rule.
type RuleRow = (i32, String, String, u32, usize, String);

fn rows(r: &pb::HttpRoute) -> Vec<RuleRow> {
    r.rules
        .iter()
        .map(|rule| {
            let p = rule.matches[0].path.clone().unwrap();
            let b = &rule.backends[0];
            (
                p.r#type,
                p.value,
                b.name.clone(),
                b.port,
                b.endpoints.len(),
                b.problem
                    .as_ref()
                    .map(|p| p.reason.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

const PREFIX: i32 = path_match::Type::PathPrefix as i32;
const EXACT: i32 = path_match::Type::Exact as i32;

#[test]
fn hosts_paths_default_backend_and_tls_become_a_gateway_and_routes() {
    let ing = ingress(
        "shop",
        "fleetgate",
        json!({
            "defaultBackend": port_number("web", 8080),
            "tls": [{"hosts": ["shop.a.example"], "secretName": "shop-tls"}],
            "rules": [
                {"host": "shop.a.example", "http": {"paths": [
                    {"path": "/api", "pathType": "Prefix", "backend": port_name("api", "grpc")},
                    {"path": "/login", "pathType": "Exact", "backend": port_number("web", 8080)}]}},
                {"host": "blog.a.example", "http": {"paths": [
                    {"path": "/", "pathType": "ImplementationSpecific", "backend": port_name("web", "http")}]}},
            ],
        }),
    );
    let out = translate(&state(vec![ing]));
    assert_eq!(out.len(), 3, "one Gateway, one HTTPRoute per host");
    let g = &out[0];
    let r = g.r#ref.as_ref().unwrap();
    assert_eq!(
        (r.kind, r.namespace.as_str(), r.name.as_str()),
        (Kind::Gateway as i32, "app", "shop.ingress")
    );
    assert_eq!(
        (g.generation, g.creation_timestamp.as_str()),
        (3, "2024-01-01T00:00:00Z")
    );
    let gw = gateway_of(g);
    assert_eq!(gw.gateway_class_name, "fleetgate");
    let listeners: Vec<(&str, &str, u32, &str)> = gw
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.protocol.as_str(),
                l.port,
                l.hostname.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listeners,
        vec![
            ("http-0", "HTTP", 80, "shop.a.example"),
            ("https-0", "HTTPS", 443, "shop.a.example"),
            ("http-1", "HTTP", 80, "blog.a.example"),
        ]
    );
    let tls = gw.listeners[1].tls.as_ref().unwrap();
    assert_eq!(tls.mode, "Terminate");
    assert_eq!(tls.certificates.len(), 1);
    assert_eq!(tls.certificates[0].cert_chain_pem, b"CRT");
    assert_eq!(tls.certificates[0].problem, None);

    let shop = route_of(&out[1]);
    assert_eq!(out[1].r#ref.as_ref().unwrap().name, "shop.ingress.0");
    assert_eq!(shop.hostnames, vec!["shop.a.example"]);
    let parents: Vec<(&str, &str, &str)> = shop
        .parent_refs
        .iter()
        .map(|p| {
            (
                p.namespace.as_str(),
                p.name.as_str(),
                p.section_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        parents,
        vec![
            ("app", "shop.ingress", "http-0"),
            ("app", "shop.ingress", "https-0")
        ]
    );
    let row = |k: i32, p: &str, b: &str, port: u32, eps: usize| {
        (k, p.to_string(), b.to_string(), port, eps, String::new())
    };
    assert_eq!(
        rows(shop),
        vec![
            // The port name is looked up in the Service; node mode: one node x nodePort.
            row(PREFIX, "/api", "api", 9090, 1),
            row(EXACT, "/login", "web", 8080, 1),
            // The defaultBackend last, as the least specific match.
            row(PREFIX, "/", "web", 8080, 1),
        ]
    );
    let blog = route_of(&out[2]);
    assert_eq!(
        rows(blog),
        vec![row(PREFIX, "/", "web", 8080, 1)],
        "a path / already there: no second catch-all for the defaultBackend"
    );
    assert_eq!(blog.parent_refs.len(), 1);
}

#[test]
fn bad_inputs_are_carried_to_the_hub_as_problems() {
    let cases: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        (
            "unknown Service",
            port_number("nope", 80),
            "BackendNotFound",
            "Service app/nope not found",
        ),
        (
            "Service port number not found",
            port_number("web", 81),
            "BackendNotFound",
            "Service app/web has no port 81",
        ),
        (
            "Service port name not found",
            port_name("web", "admin"),
            "BackendNotFound",
            "Service app/web has no port named \"admin\"",
        ),
        (
            "port name of an unknown Service",
            port_name("nope", "http"),
            "BackendNotFound",
            "Service app/nope not found",
        ),
        (
            "resource backend",
            json!({"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "b"}}),
            "InvalidKind",
            "Ingress backend resource Bucket.example.com b is not supported",
        ),
    ];
    for (what, b, reason, message) in cases {
        let ing = ingress(
            "bad",
            "fleetgate",
            json!({"rules": [{"host": "bad.a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": b}]}}]}),
        );
        let out = translate(&state(vec![ing]));
        let backend = &route_of(&out[1]).rules[0].backends[0];
        let p = backend
            .problem
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no problem"));
        assert_eq!(p.reason, reason, "{what}");
        assert!(p.message.contains(message), "{what}: {}", p.message);
        assert!(backend.endpoints.is_empty(), "{what}");
    }
}

#[test]
fn a_missing_secret_is_an_invalid_certificate_ref() {
    let ing = ingress(
        "tls",
        "fleetgate",
        json!({
            "tls": [{"hosts": ["t.a.example"], "secretName": "gone"}],
            "rules": [{"host": "t.a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": port_number("web", 8080)}]}}],
        }),
    );
    let out = translate(&state(vec![ing]));
    let https = &gateway_of(&out[0]).listeners[1];
    let cert = &https.tls.as_ref().unwrap().certificates[0];
    assert_eq!(cert.name, "gone");
    let p = cert.problem.as_ref().expect("a problem");
    assert_eq!(p.reason, "InvalidCertificateRef");
    assert!(cert.private_key_pem.is_empty());
}

#[test]
fn other_classes_and_refused_ingresses_send_nothing() {
    let plain = |name: &str, class: &str| {
        ingress(
            name,
            class,
            json!({"rules": [{"host": "x.a.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": port_number("web", 8080)}]}}]}),
        )
    };
    let mut st = state(vec![
        plain("nginx-one", "nginx"),
        ingress(
            "empty",
            "fleetgate",
            json!({"rules": [{"host": "e.a.example"}]}),
        ),
    ]);
    assert!(translate(&st).is_empty());
    // A tenant Gateway already named like the Ingress's: the Ingress is refused, the Gateway
    // keeps its name.
    st.ingresses.push(plain("web", "fleetgate"));
    st.gateways
        .push(crate::test_support::gateway("app", "web.ingress", "x", &[]));
    assert!(translate(&st).is_empty());
    st.gateways.clear();
    assert_eq!(translate(&st).len(), 2);
}

#[test]
fn pod_mode_resolves_a_named_port_to_the_endpoint_slice_port() {
    let ing = ingress(
        "pods",
        "fleetgate",
        json!({"defaultBackend": port_name("web", "http")}),
    );
    let mut st = state(vec![ing]);
    st.endpoint_slices = vec![crate::test_support::endpoint_slice(
        "app",
        "web-1",
        "web",
        &[(Some("http"), 8080)],
        &[("127.0.1.20", Some(true))],
    )];
    let index = Index::new(&st, EndpointMode::Pod);
    let out = translate_ingresses(&st, &index);
    let r = route_of(&out[1]);
    assert!(r.hostnames.is_empty());
    assert_eq!(r.parent_refs[0].section_name, "http");
    let eps = &r.rules[0].backends[0].endpoints;
    assert_eq!(
        eps.iter()
            .map(|e| (e.address.as_str(), e.port))
            .collect::<Vec<_>>(),
        vec![("127.0.1.20", 8080)]
    );
}
