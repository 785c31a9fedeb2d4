//! Table tests of the Ingress claim (which Ingresses are fleetgate's) and of the shape each one
//! stands for (listeners, routes, names, what is dropped, what is refused).

use k8s_openapi::api::networking::v1::IngressClass;
use serde_json::json;

use super::*;
use crate::test_support::gateway;

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn class(name: &str, controller: &str, default: bool) -> IngressClass {
    let mut annotations = serde_json::Map::new();
    if default {
        annotations.insert(DEFAULT_CLASS_ANNOTATION.into(), json!("true"));
    }
    from_json(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"controller": controller},
    }))
}

/// Ingress `name` in `app` with `spec`.
pub(crate) fn ingress(name: &str, spec: serde_json::Value) -> Ingress {
    from_json(json!({
        "metadata": {"name": name, "namespace": "app", "generation": 3,
                     "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": spec,
    }))
}

fn backend(svc: &str) -> serde_json::Value {
    json!({"service": {"name": svc, "port": {"number": 8080}}})
}

#[test]
fn claimed_ingresses_table() {
    let mut annotated = ingress("annotated", json!({"defaultBackend": backend("web")}));
    annotated.metadata.annotations = Some(
        [(CLASS_ANNOTATION.to_string(), "fleetgate".to_string())]
            .into_iter()
            .collect(),
    );
    let ingresses = vec![
        ingress(
            "by-name",
            json!({"ingressClassName": "fleetgate", "defaultBackend": backend("web")}),
        ),
        ingress(
            "by-controller",
            json!({"ingressClassName": "ours", "defaultBackend": backend("web")}),
        ),
        ingress(
            "nginx",
            json!({"ingressClassName": "nginx", "defaultBackend": backend("web")}),
        ),
        ingress("no-class", json!({"defaultBackend": backend("web")})),
        annotated,
        ingress(
            "missing-class",
            json!({"ingressClassName": "gone", "defaultBackend": backend("web")}),
        ),
    ];
    let names = |st: &ClusterState| -> Vec<String> {
        claimed_ingresses(st)
            .iter()
            .map(|i| i.metadata.name.clone().unwrap())
            .collect()
    };
    type Case = (
        &'static str,
        Vec<IngressClass>,
        &'static str,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "the configured name and fleetgate's controller are claimed, nginx's class is not",
            vec![
                class("fleetgate", "example.com/other", false),
                class("ours", CONTROLLER_NAME, false),
                class("nginx", "k8s.io/ingress-nginx", true),
            ],
            "fleetgate",
            vec!["annotated", "by-controller", "by-name"],
        ),
        (
            "Ingresses without a class only when a claimed class is the default",
            vec![
                class("fleetgate", CONTROLLER_NAME, true),
                class("nginx", "k8s.io/ingress-nginx", false),
            ],
            "fleetgate",
            vec!["annotated", "by-name", "no-class"],
        ),
        (
            "a class that does not exist claims nothing",
            vec![class("nginx", "k8s.io/ingress-nginx", false)],
            "fleetgate",
            vec![],
        ),
        (
            "--ingress-class names another class",
            vec![
                class("fleetgate", "example.com/other", false),
                class("nginx", "k8s.io/ingress-nginx", false),
            ],
            "nginx",
            vec!["nginx"],
        ),
    ];
    for (what, classes, configured, want) in cases {
        let st = ClusterState {
            ingresses: ingresses.clone(),
            ingress_classes: classes,
            ingress_class_name: configured.into(),
            ..Default::default()
        };
        assert_eq!(names(&st), want, "{what}");
    }
}

/// (name, protocol, port, hostname, secrets) of a listener.
type ListenerRow<'a> = (&'a str, &'a str, u32, Option<&'a str>, Vec<&'a str>);
/// (name, hostname, listeners, paths) of a route.
type RouteRow<'a> = (
    &'a str,
    Option<&'a str>,
    Vec<&'a str>,
    Vec<(PathKind, &'a str)>,
);

#[test]
fn shape_of_hosts_paths_tls_and_default_backend() {
    let ing = ingress(
        "shop",
        json!({
            "defaultBackend": backend("fallback"),
            "tls": [{"hosts": ["b.a.example"], "secretName": "b-tls"},
                    {"hosts": ["*.a.example"], "secretName": "wild-tls"},
                    {"hosts": ["only-tls.a.example"], "secretName": "o-tls"}],
            "rules": [
                {"host": "b.a.example", "http": {"paths": [
                    {"path": "/api", "pathType": "Prefix", "backend": backend("api")},
                    {"path": "/exact", "pathType": "Exact", "backend": backend("api")}]}},
                {"host": "c.x.example", "http": {"paths": [
                    {"path": "/x", "pathType": "ImplementationSpecific", "backend": backend("x")}]}},
                {"host": "b.a.example", "http": {"paths": [
                    {"pathType": "Prefix", "backend": backend("root")}]}},
            ],
        }),
    );
    let s = shape(&ing, &ClusterState::default()).unwrap();
    assert_eq!(s.gateway, "shop.ingress");
    let listeners: Vec<ListenerRow<'_>> = s
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.protocol,
                l.port,
                l.hostname.as_deref(),
                l.secrets.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        listeners,
        vec![
            ("http-0", "HTTP", 80, Some("b.a.example"), vec![]),
            (
                "https-0",
                "HTTPS",
                443,
                Some("b.a.example"),
                vec!["b-tls", "wild-tls"]
            ),
            ("http-1", "HTTP", 80, Some("c.x.example"), vec![]),
            // Hosts listed only in spec.tls are served (to the defaultBackend) too.
            ("http-2", "HTTP", 80, Some("*.a.example"), vec![]),
            (
                "https-2",
                "HTTPS",
                443,
                Some("*.a.example"),
                vec!["wild-tls"]
            ),
            ("http-3", "HTTP", 80, Some("only-tls.a.example"), vec![]),
            (
                "https-3",
                "HTTPS",
                443,
                Some("only-tls.a.example"),
                vec!["wild-tls", "o-tls"]
            ),
        ]
    );
    let routes: Vec<RouteRow<'_>> = s
        .routes
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.hostname.as_deref(),
                r.listeners.iter().map(String::as_str).collect(),
                r.paths.iter().map(|p| (p.kind, p.value.as_str())).collect(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            (
                "shop.ingress.0",
                Some("b.a.example"),
                vec!["http-0", "https-0"],
                vec![
                    (PathKind::Prefix, "/api"),
                    (PathKind::Exact, "/exact"),
                    (PathKind::Prefix, "/")
                ]
            ),
            (
                "shop.ingress.1",
                Some("c.x.example"),
                vec!["http-1"],
                // ImplementationSpecific is served as Prefix.
                vec![(PathKind::Prefix, "/x")]
            ),
            (
                "shop.ingress.2",
                Some("*.a.example"),
                vec!["http-2", "https-2"],
                vec![]
            ),
            (
                "shop.ingress.3",
                Some("only-tls.a.example"),
                vec!["http-3", "https-3"],
                vec![]
            ),
        ]
    );
    assert!(s.routes.iter().all(|r| r.default_backend.is_some()));
    assert!(s.dropped.is_empty(), "{:?}", s.dropped);
}

#[test]
fn rules_without_host_and_a_lone_default_backend_use_the_hostname_less_listener() {
    for (what, spec, paths) in [
        (
            "rules without host",
            json!({"rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("web")}]}}]}),
            1,
        ),
        (
            "only a defaultBackend",
            json!({"defaultBackend": backend("web")}),
            0,
        ),
    ] {
        let s = shape(&ingress("plain", spec), &ClusterState::default()).unwrap();
        assert_eq!(s.listeners.len(), 1, "{what}");
        assert_eq!(
            (
                s.listeners[0].name.as_str(),
                s.listeners[0].hostname.as_deref()
            ),
            ("http", None),
            "{what}"
        );
        assert_eq!(s.routes[0].name, "plain.ingress.any", "{what}");
        assert_eq!(s.routes[0].hostname, None, "{what}");
        assert_eq!(s.routes[0].paths.len(), paths, "{what}");
    }
}

#[test]
fn what_cannot_be_served_is_dropped_or_refused_with_what_to_change() {
    let taken_gw = ClusterState {
        gateways: vec![gateway("app", "web.ingress", "fleetgate", &[])],
        ..Default::default()
    };
    let web = || {
        json!({"rules": [{"host": "w.a.example", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend("web")}]}}]})
    };
    let refused: Vec<(&str, Ingress, ClusterState, &str)> = vec![
        (
            "nothing to serve",
            ingress("empty", json!({"rules": [{"host": "e.a.example"}]})),
            ClusterState::default(),
            "no rule with paths and no defaultBackend",
        ),
        (
            "the Gateway name is taken",
            ingress("web", web()),
            taken_gw,
            "Gateway app/web.ingress already exists",
        ),
        (
            "name too long",
            ingress(&"n".repeat(250), web()),
            ClusterState::default(),
            "at most 253 characters",
        ),
    ];
    for (what, ing, st, want) in refused {
        let err = shape(&ing, &st).unwrap_err().to_string();
        assert!(err.contains(want), "{what}: {err}");
    }
    let s = shape(
        &ingress(
            "partial",
            json!({
                "tls": [{"secretName": "no-hosts"}, {"hosts": ["w.a.example"]}],
                "rules": [
                    {"host": "w.a.example", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("web")}]}},
                    {"host": "idle.a.example"},
                ],
            }),
        ),
        &ClusterState::default(),
    )
    .unwrap();
    let dropped = s.dropped.join(" | ");
    for want in [
        "rule for host idle.a.example has no paths",
        "secretName \"no-hosts\" lists no hosts",
        "spec.tls entry for w.a.example has no secretName",
    ] {
        assert!(dropped.contains(want), "{want}: {dropped}");
    }
    // The host is still served in plaintext; no HTTPS listener without a certificate.
    assert_eq!(s.listeners.len(), 1);
    assert_eq!(s.listeners[0].protocol, "HTTP");
}

#[test]
fn tls_host_patterns() {
    for (pattern, host, want) in [
        ("a.example", "a.example", true),
        ("*.a.example", "x.a.example", true),
        ("*.a.example", "x.y.a.example", false),
        ("*.a.example", "a.example", false),
        ("b.example", "a.example", false),
    ] {
        assert_eq!(tls_covers(pattern, host), want, "{pattern} {host}");
    }
}
