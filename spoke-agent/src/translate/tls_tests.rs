//! Table tests of `translate` for TLS: HTTPS listeners carry their resolved certificates, TLS
//! listeners their mode, TLSRoutes go out with resolved backends, and only referenced Secrets
//! ever leave the cluster.

use fleetgate_proto::spoke::v1::{Kind, Object, object};
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;
use crate::claim::CONTROLLER_NAME;
use crate::test_support::*;

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn state() -> ClusterState {
    let gw: Gateway = from_json(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra", "generation": 1},
        "spec": {"gatewayClassName": "fleetgate", "listeners": [
            {"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "app.a.example",
             "tls": {"certificateRefs": [{"name": "app-tls"}, {"name": "gone"}]}},
            {"name": "tls", "protocol": "TLS", "port": 443, "hostname": "*.db.a.example",
             "tls": {"mode": "Passthrough"}},
        ]},
    }));
    let secret = |name: &str, key: &str| -> Secret {
        from_json(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "infra"},
            "type": "kubernetes.io/tls",
            // "CRT" and the key, base64.
            "data": {"tls.crt": "Q1JU", "tls.key": key},
        }))
    };
    let route: TlsRoute = from_json(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
        "metadata": {"name": "pg", "namespace": "infra", "generation": 2},
        "spec": {
            "parentRefs": [{"name": "gw", "sectionName": "tls"}, {"name": "elsewhere"}],
            "hostnames": ["pg.db.a.example"],
            "rules": [{"backendRefs": [
                {"name": "pg", "port": 5432},
                {"name": "pg", "namespace": "other", "port": 5432},
            ]}],
        },
    }));
    ClusterState {
        gateway_classes: vec![gateway_class("fleetgate", CONTROLLER_NAME)],
        gateways: vec![gw],
        secrets: vec![
            secret("app-tls", "S0VZ"),
            secret("unrelated-tls", "T1RIRVI="),
        ],
        tls_routes: vec![route],
        services: vec![service(
            "infra",
            "pg",
            "NodePort",
            &[(None, 5432, Some(30432), IntOrString::Int(5432))],
        )],
        nodes: vec![node("n1", Some("127.0.1.1"), None)],
        ..Default::default()
    }
}

fn find(objs: &[Object], kind: Kind) -> &Object {
    objs.iter()
        .find(|o| o.r#ref.as_ref().unwrap().kind == kind as i32)
        .unwrap()
}

#[test]
fn https_listeners_carry_resolved_certificates_and_nothing_else_leaves() {
    let out = translate(&state(), EndpointMode::Node);
    let Some(object::Spec::Gateway(g)) = &find(&out, Kind::Gateway).spec else {
        panic!("gateway expected")
    };
    let https = g.listeners[0].tls.as_ref().unwrap();
    assert_eq!(https.mode, "Terminate");
    type Row<'a> = (&'a str, &'a [u8], &'a [u8], Option<&'a str>);
    let got: Vec<Row<'_>> = https
        .certificates
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.cert_chain_pem.as_slice(),
                c.private_key_pem.as_slice(),
                c.problem.as_ref().map(|p| p.reason.as_str()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("app-tls", &b"CRT"[..], &b"KEY"[..], None),
            ("gone", &b""[..], &b""[..], Some("InvalidCertificateRef")),
        ]
    );
    let tls = g.listeners[1].tls.as_ref().unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.certificates.len()),
        ("Passthrough", 0)
    );
    // The unreferenced Secret's key is nowhere in what is sent.
    let bytes = format!("{out:?}");
    assert!(!bytes.contains("OTHER"), "{bytes}");
    let all_keys: Vec<&[u8]> = out
        .iter()
        .filter_map(|o| match &o.spec {
            Some(object::Spec::Gateway(g)) => Some(g),
            _ => None,
        })
        .flat_map(|g| g.listeners.iter().filter_map(|l| l.tls.as_ref()))
        .flat_map(|t| t.certificates.iter().map(|c| c.private_key_pem.as_slice()))
        .collect();
    assert!(!all_keys.contains(&&b"OTHER"[..]));
}

#[test]
fn tls_routes_are_sent_with_resolved_backends() {
    let out = translate(&state(), EndpointMode::Node);
    let o = find(&out, Kind::TlsRoute);
    assert_eq!(o.generation, 2);
    let Some(object::Spec::TlsRoute(r)) = &o.spec else {
        panic!("tls route expected")
    };
    // Only the parentRef to a sent Gateway.
    assert_eq!(r.parent_refs.len(), 1);
    assert_eq!(
        (
            r.parent_refs[0].name.as_str(),
            r.parent_refs[0].section_name.as_str()
        ),
        ("gw", "tls")
    );
    assert_eq!(r.hostnames, vec!["pg.db.a.example"]);
    let b = &r.rules[0].backends;
    assert_eq!(b[0].endpoints.len(), 1);
    assert_eq!(b[0].endpoints[0].port, 30432);
    assert_eq!(
        b[1].problem.as_ref().map(|p| p.reason.as_str()),
        Some("RefNotPermitted")
    );
}
