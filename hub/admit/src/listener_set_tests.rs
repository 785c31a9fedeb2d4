//! Admission of ListenerSets and of the parentRefs that name them: a ListenerSet's listeners get
//! exactly the checks of a Gateway's, and a parentRef of another kind is refused with guidance.

use super::test_support::Fixture;
use super::*;

fn listener(name: &str, hostname: &str) -> pb::Listener {
    pb::Listener {
        name: name.into(),
        protocol: "HTTP".into(),
        port: 8080,
        hostname: hostname.into(),
        ..Default::default()
    }
}

fn listener_set(listeners: Vec<pb::Listener>) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::ListenerSet as i32,
            namespace: "team".into(),
            name: "extra".into(),
        }),
        generation: 2,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::ListenerSet(pb::ListenerSet {
            parent_namespace: "infra".into(),
            parent_name: "gw".into(),
            listeners,
        })),
    }
}

#[test]
fn listener_sets_are_checked_like_gateway_listeners() {
    let f = Fixture::new();
    let Admitted::ListenerSet(s) = admit(
        &listener_set(vec![listener("alt", "Alt.A.example")]),
        &f.policy(),
    )
    .unwrap() else {
        panic!("not a ListenerSet")
    };
    assert_eq!(s.parent, ("infra".to_string(), "gw".to_string()));
    assert_eq!(s.listeners[0].hostname.as_deref(), Some("alt.a.example"));
    assert_eq!(s.listeners[0].allowed_routes, AllowedRoutes::Same);
    assert_eq!(
        Admitted::ListenerSet(s).hostnames(),
        vec!["alt.a.example".to_string()]
    );

    let cases: Vec<(&str, pb::Object, &str)> = vec![
        (
            "another tenant's hostname",
            listener_set(vec![listener("alt", "x.b.example")]),
            "x.b.example",
        ),
        (
            "a hostname the tenant was not given",
            listener_set(vec![listener("alt", "evil.example")]),
            "evil.example",
        ),
        ("no listener", listener_set(vec![]), "1 to 64 listeners"),
        (
            "a listener name twice",
            listener_set(vec![listener("a", ""), listener("a", "")]),
            "used twice",
        ),
        (
            "a parent without a name",
            {
                let mut o = listener_set(vec![listener("a", "")]);
                if let Some(pb::object::Spec::ListenerSet(s)) = &mut o.spec {
                    s.parent_name.clear();
                }
                o
            },
            "parentRef name",
        ),
    ];
    for (what, obj, needle) in cases {
        let e = admit(&obj, &f.policy()).expect_err(what);
        assert!(e.message.contains(needle), "{what}: {}", e.message);
    }
}

#[test]
fn gateway_allowed_listeners_are_admitted() {
    let f = Fixture::new();
    let gw = |from: &str, namespaces: &[&str]| pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::Gateway as i32,
            namespace: "infra".into(),
            name: "gw".into(),
        }),
        generation: 1,
        creation_timestamp: String::new(),
        spec: Some(pb::object::Spec::Gateway(pb::Gateway {
            gateway_class_name: "fleetgate".into(),
            listeners: vec![listener("http", "")],
            allowed_listeners: (!from.is_empty()).then(|| pb::AllowedListeners {
                from: from.into(),
                namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            }),
            ..Default::default()
        })),
    };
    let cases: Vec<(&str, pb::Object, AllowedListeners)> = vec![
        ("unset", gw("", &[]), AllowedListeners::None),
        ("None", gw("None", &[]), AllowedListeners::None),
        ("Same", gw("Same", &[]), AllowedListeners::Same),
        ("All", gw("All", &[]), AllowedListeners::All),
        (
            "Selector",
            gw("Selector", &["team"]),
            AllowedListeners::Namespaces(["team".to_string()].into()),
        ),
    ];
    for (what, obj, want) in cases {
        let Admitted::Gateway(g) = admit(&obj, &f.policy()).unwrap() else {
            panic!("{what}")
        };
        assert_eq!(g.allowed_listeners, want, "{what}");
    }
    let e = admit(&gw("Everyone", &[]), &f.policy()).unwrap_err();
    assert!(
        e.message.contains("None, Same, All or Selector"),
        "{}",
        e.message
    );
    let e = admit(&gw("Selector", &["Not A Namespace"]), &f.policy()).unwrap_err();
    assert_eq!(e.reason, "UnsupportedValue");
}

#[test]
fn parent_ref_kinds_table() {
    let p = |group: &str, kind: &str| pb::ParentRef {
        namespace: "infra".into(),
        name: "x".into(),
        group: group.into(),
        kind: kind.into(),
        ..Default::default()
    };
    let cases: Vec<(pb::ParentRef, Result<ParentKind, &str>)> = vec![
        (p("", ""), Ok(ParentKind::Gateway)),
        (
            p("gateway.networking.k8s.io", "Gateway"),
            Ok(ParentKind::Gateway),
        ),
        (
            p("gateway.networking.k8s.io", "ListenerSet"),
            Ok(ParentKind::ListenerSet),
        ),
        (
            p("gateway.networking.k8s.io", "Service"),
            Err("Gateway or ListenerSet"),
        ),
        (
            p("example.com", "Gateway"),
            Err("gateway.networking.k8s.io"),
        ),
    ];
    for (pref, want) in cases {
        match (parent_kind(&pref), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{pref:?}"),
            (Err(e), Err(needle)) => assert!(e.message.contains(needle), "{}", e.message),
            (got, want) => panic!("{pref:?}: got {got:?}, want {want:?}"),
        }
    }
}
