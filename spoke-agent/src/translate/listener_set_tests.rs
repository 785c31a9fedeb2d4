//! Table tests of ListenerSet translation: which ListenerSets are sent, their listeners, the
//! parent Gateway's `allowedListeners`, and routes whose parentRef is a ListenerSet.

use fleetgate_proto::spoke::v1::{Kind, Object, object};
use gateway_api::listenersets::ListenerSet;
use k8s_openapi::api::core::v1::Namespace;
use serde_json::json;

use super::*;
use crate::claim::CONTROLLER_NAME;
use crate::test_support::*;

fn listener_set(ns: &str, name: &str, parent: serde_json::Value) -> ListenerSet {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
        "metadata": {"namespace": ns, "name": name, "generation": 4,
                     "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {
            "parentRef": parent,
            "listeners": [
                {"name": "alt", "protocol": "HTTP", "port": 8081, "hostname": "alt.a.example"},
                {"name": "team", "protocol": "HTTP", "port": 8081, "hostname": "team.a.example",
                 "allowedRoutes": {"namespaces": {"from": "Selector",
                                                  "selector": {"matchLabels": {"tier": "web"}}},
                                   "kinds": [{"kind": "HTTPRoute"}]}}
            ]
        }
    }))
    .unwrap()
}

fn state() -> ClusterState {
    let mut gw = gateway(
        "infra",
        "gw",
        "fleetgate",
        &[("http", "HTTP", 8080, Some("*.a.example"))],
    );
    gw.spec.allowed_listeners =
        serde_json::from_value(json!({"namespaces": {"from": "Same"}})).ok();
    let labelled: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "app", "labels": {"tier": "web"}}}))
            .unwrap();
    ClusterState {
        gateway_classes: vec![
            gateway_class("fleetgate", CONTROLLER_NAME),
            gateway_class("other", "example.com/other"),
        ],
        gateways: vec![
            gw,
            gateway("infra", "foreign", "other", &[("http", "HTTP", 80, None)]),
        ],
        namespaces: vec![labelled],
        listener_sets: vec![
            listener_set("infra", "mine", json!({"name": "gw"})),
            listener_set("team", "cross", json!({"name": "gw", "namespace": "infra"})),
            listener_set("infra", "foreign", json!({"name": "foreign"})),
            listener_set(
                "infra",
                "odd-kind",
                json!({"name": "gw", "kind": "Service", "group": ""}),
            ),
        ],
        ..Default::default()
    }
}

fn kind_and_name(o: &Object) -> (i32, String) {
    let r = o.r#ref.as_ref().unwrap();
    (r.kind, format!("{}/{}", r.namespace, r.name))
}

#[test]
fn listener_sets_of_sent_gateways_are_sent_with_their_listeners() {
    let out = translate(&state(), EndpointMode::Node);
    let got: Vec<(i32, String)> = out.iter().map(kind_and_name).collect();
    assert_eq!(
        got,
        vec![
            (Kind::Gateway as i32, "infra/gw".to_string()),
            (Kind::ListenerSet as i32, "infra/mine".to_string()),
            (Kind::ListenerSet as i32, "team/cross".to_string()),
        ],
        "only ListenerSets whose parentRef names a sent Gateway, after the Gateways"
    );
    let object::Spec::Gateway(g) = out[0].spec.as_ref().unwrap() else {
        panic!()
    };
    assert_eq!(
        g.allowed_listeners,
        Some(pb::AllowedListeners {
            from: "Same".into(),
            namespaces: vec![],
        })
    );
    let object::Spec::ListenerSet(s) = out[1].spec.as_ref().unwrap() else {
        panic!()
    };
    assert_eq!(out[1].generation, 4);
    assert_eq!(out[1].creation_timestamp, "2026-01-02T03:04:05Z");
    assert_eq!(
        (s.parent_namespace.as_str(), s.parent_name.as_str()),
        ("infra", "gw"),
        "the parent's namespace defaults to the ListenerSet's"
    );
    let l: Vec<(&str, &str, u32, &str, &str)> = s
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.protocol.as_str(),
                l.port,
                l.hostname.as_str(),
                l.allowed_routes.as_ref().unwrap().from.as_str(),
            )
        })
        .collect();
    assert_eq!(
        l,
        vec![
            ("alt", "HTTP", 8081, "alt.a.example", "Same"),
            ("team", "HTTP", 8081, "team.a.example", "Selector"),
        ]
    );
    let team = s.listeners[1].allowed_routes.as_ref().unwrap();
    assert_eq!(
        team.namespaces,
        ["app"],
        "the selector is resolved by the agent"
    );
    assert_eq!(team.kinds[0].group, GATEWAY_GROUP);
}

#[test]
fn gateway_allowed_listeners_table() {
    /// (case, spec.allowedListeners, the (from, namespaces) sent)
    type Case<'a> = (
        &'a str,
        Option<serde_json::Value>,
        Option<(&'a str, Vec<&'a str>)>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("unset", None, None),
        (
            "None",
            Some(json!({"namespaces": {"from": "None"}})),
            Some(("None", vec![])),
        ),
        (
            "All",
            Some(json!({"namespaces": {"from": "All"}})),
            Some(("All", vec![])),
        ),
        (
            "Selector resolved now",
            Some(json!({"namespaces": {"from": "Selector",
                                       "selector": {"matchLabels": {"tier": "web"}}}})),
            Some(("Selector", vec!["app"])),
        ),
        (
            "Selector without a selector selects nothing",
            Some(json!({"namespaces": {"from": "Selector"}})),
            Some(("Selector", vec![])),
        ),
    ];
    for (what, allowed, want) in cases {
        let mut st = state();
        st.gateways[0].spec.allowed_listeners = allowed.map(|v| serde_json::from_value(v).unwrap());
        let out = translate(&st, EndpointMode::Node);
        let object::Spec::Gateway(g) = out[0].spec.as_ref().unwrap() else {
            panic!()
        };
        let got = g.allowed_listeners.as_ref().map(|a| {
            (
                a.from.as_str(),
                a.namespaces.iter().map(String::as_str).collect(),
            )
        });
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn listener_sets_route_parents_are_sent_with_their_kind() {
    let ls_ref = |ns: Option<&str>, name: &str, section: Option<&str>| {
        gateway_api::httproutes::HttpRouteParentRefs {
            group: Some(GATEWAY_GROUP.into()),
            kind: Some("ListenerSet".into()),
            namespace: ns.map(str::to_string),
            name: name.into(),
            section_name: section.map(str::to_string),
            ..Default::default()
        }
    };
    let cases: Vec<(&str, gateway_api::httproutes::HttpRouteParentRefs, bool)> = vec![
        (
            "a sent ListenerSet",
            ls_ref(Some("infra"), "mine", Some("alt")),
            true,
        ),
        (
            "namespace defaulted to the route's",
            ls_ref(None, "mine", None),
            true,
        ),
        (
            "a ListenerSet of a foreign Gateway",
            ls_ref(Some("infra"), "foreign", None),
            false,
        ),
        (
            "a ListenerSet whose parentRef is not a Gateway",
            ls_ref(Some("infra"), "odd-kind", None),
            false,
        ),
        (
            "no such ListenerSet",
            ls_ref(Some("infra"), "nope", None),
            false,
        ),
    ];
    for (what, pref, sent) in cases {
        let mut st = state();
        st.http_routes = vec![http_route("infra", "r", vec![pref], &[], vec![])];
        let out = translate(&st, EndpointMode::Node);
        let route = out
            .iter()
            .find(|o| o.r#ref.as_ref().unwrap().kind == Kind::HttpRoute as i32);
        assert_eq!(route.is_some(), sent, "{what}");
        if let Some(o) = route {
            let object::Spec::HttpRoute(r) = o.spec.as_ref().unwrap() else {
                panic!()
            };
            let p = &r.parent_refs[0];
            assert_eq!(
                (p.group.as_str(), p.kind.as_str(), p.namespace.as_str()),
                (GATEWAY_GROUP, "ListenerSet", "infra"),
                "{what}"
            );
        }
    }
}
