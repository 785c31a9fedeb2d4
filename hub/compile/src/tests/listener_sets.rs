//! Table tests of ListenerSets (Gateway API v1, GEP-1713 and the conformance cases
//! listenerset-allowed-namespaces, listenerset-hostname-conflict, listenerset-route-attachment):
//! which ListenerSets a Gateway takes, routes attaching through them, and conflicts with the
//! parent's listeners.

use super::*;
use crate::model::{AllowedListeners, ListenerSet, ParentKind};

fn ls(ns: &str, name: &str, created: &str, parent: (&str, &str), l: Vec<Listener>) -> ListenerSet {
    ListenerSet {
        meta: Meta {
            creation_timestamp: created.into(),
            ..meta(ns, name)
        },
        parent: (parent.0.into(), parent.1.into()),
        listeners: l,
    }
}

fn allowing(mut gw: Gateway, a: AllowedListeners) -> Gateway {
    gw.allowed_listeners = a;
    gw
}

fn ls_parent(ns: &str, name: &str) -> ParentRef {
    ParentRef {
        kind: ParentKind::ListenerSet,
        ..parent(ns, name)
    }
}

/// One cluster: `gws`, `sets` and `routes`.
fn fleet(gws: Vec<Gateway>, sets: Vec<ListenerSet>, routes: Vec<HttpRoute>) -> FleetIntent {
    let mut f = one(gws, routes);
    let ci = std::sync::Arc::make_mut(f.get_mut(&ck("a", "c1")).unwrap());
    for s in sets {
        ci.listener_sets
            .insert((s.meta.namespace.clone(), s.meta.name.clone()), s);
    }
    f
}

fn infra_gw(a: AllowedListeners) -> Gateway {
    allowing(
        gateway(
            "infra",
            "gw",
            vec![listener("http", 80).host("www.a.example")],
        ),
        a,
    )
}

/// (Accepted status, reason) of a ListenerSet.
fn set_accepted(c: &Compiled, name: &str) -> (bool, String) {
    let s = status(c, &ck("a", "c1"), Kind::ListenerSet, name);
    let a = cond(&s.conditions, "Accepted");
    (a.status, a.reason.clone())
}

#[test]
fn allowed_listeners_table() {
    use AllowedListeners::*;
    let ok = (true, "Accepted".to_string());
    let refused = (false, "NotAllowed".to_string());
    let cases: Vec<(&str, AllowedListeners, &str, (bool, String))> = vec![
        (
            "None (default) refuses the same namespace",
            None,
            "infra",
            refused.clone(),
        ),
        ("Same takes the same namespace", Same, "infra", ok.clone()),
        (
            "Same refuses another namespace",
            Same,
            "team",
            refused.clone(),
        ),
        ("All takes another namespace", All, "team", ok.clone()),
        (
            "Selector takes a selected namespace",
            Namespaces(["team".to_string()].into()),
            "team",
            ok.clone(),
        ),
        (
            "Selector refuses an unselected namespace",
            Namespaces(["other".to_string()].into()),
            "team",
            refused.clone(),
        ),
    ];
    for (what, allowed, ns, want) in cases {
        let c = compile(
            &fleet(
                vec![infra_gw(allowed)],
                vec![ls(
                    ns,
                    "extra",
                    "2026-01-01T00:00:00Z",
                    ("infra", "gw"),
                    vec![listener("alt", 8080).host("alt.a.example")],
                )],
                vec![],
            ),
            &dp(),
        );
        assert_eq!(set_accepted(&c, "extra"), want, "{what}");
        let s = status(&c, &ck("a", "c1"), Kind::ListenerSet, "extra");
        let gw = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
        let programmed = vhost(&c, 8080, "alt.a.example").is_some();
        if want.0 {
            assert_eq!(gw.attached_listener_sets, 1, "{what}");
            assert_eq!(s.listeners.len(), 1, "{what}");
            assert_eq!(s.listeners[0].name, "alt");
            assert!(cond(&s.conditions, "Programmed").status, "{what}");
            // The Gateway's status lists only its own listeners.
            assert_eq!(gw.listeners.len(), 1, "{what}");
            assert_eq!(gw.listeners[0].name, "http");
        } else {
            assert_eq!(gw.attached_listener_sets, 0, "{what}");
            assert!(s.listeners.is_empty(), "{what}");
            let p = cond(&s.conditions, "Programmed");
            assert_eq!(
                (p.status, p.reason.as_str()),
                (false, "NotAllowed"),
                "{what}"
            );
            assert!(
                cond(&s.conditions, "Accepted")
                    .message
                    .contains("spec.allowedListeners"),
                "{what}: the message says what to change"
            );
            assert!(!programmed, "{what}: a refused set adds nothing");
        }
    }
}

#[test]
fn a_listener_set_of_a_missing_or_invalid_gateway_is_parent_not_accepted() {
    let invalid = allowing(
        gateway(
            "infra",
            "bad",
            // Port 9999 is not published by the data plane.
            vec![listener("http", 9999).host("bad.a.example")],
        ),
        AllowedListeners::All,
    );
    let set = |name: &str, parent: &str| {
        ls(
            "infra",
            name,
            "2026-01-01T00:00:00Z",
            ("infra", parent),
            vec![listener("alt", 8080).host(&format!("{name}.a.example"))],
        )
    };
    let c = compile(
        &fleet(
            vec![infra_gw(AllowedListeners::All), invalid],
            vec![set("orphan", "nope"), set("child", "bad")],
            vec![],
        ),
        &dp(),
    );
    for name in ["orphan", "child"] {
        assert_eq!(
            set_accepted(&c, name),
            (false, "ParentNotAccepted".to_string()),
            "{name}"
        );
        assert!(vhost(&c, 8080, &format!("{name}.a.example")).is_none());
    }
}

#[test]
fn routes_attach_to_a_listener_set_only_through_a_listener_set_parent() {
    let set = || {
        ls(
            "infra",
            "extra",
            "2026-01-01T00:00:00Z",
            ("infra", "gw"),
            vec![
                listener("alt", 8080).host("alt.a.example"),
                // The same name as the Gateway's own listener: names are per object.
                listener("http", 8080).host("two.a.example"),
            ],
        )
    };
    let with_section = |p: ParentRef, s: &str| ParentRef {
        section_name: Some(s.into()),
        ..p
    };
    // (case, parentRef, route hostnames, Accepted, reason, (port, host) served)
    type Case<'a> = (
        &'a str,
        ParentRef,
        &'a [&'a str],
        bool,
        &'a str,
        Option<(u16, &'a str)>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "the ListenerSet, no sectionName: its listeners",
            ls_parent("infra", "extra"),
            &["alt.a.example"],
            true,
            "Accepted",
            Some((8080, "alt.a.example")),
        ),
        (
            "the ListenerSet's listener by name",
            with_section(ls_parent("infra", "extra"), "http"),
            &["two.a.example"],
            true,
            "Accepted",
            Some((8080, "two.a.example")),
        ),
        (
            "the Gateway does not reach the ListenerSet's listeners",
            parent("infra", "gw"),
            &["alt.a.example"],
            false,
            "NoMatchingListenerHostname",
            None,
        ),
        (
            "the Gateway's own listener named like a ListenerSet one",
            with_section(parent("infra", "gw"), "http"),
            &["www.a.example"],
            true,
            "Accepted",
            Some((80, "www.a.example")),
        ),
        (
            "a ListenerSet listener name that does not exist",
            with_section(ls_parent("infra", "extra"), "nope"),
            &["alt.a.example"],
            false,
            "NoMatchingParent",
            None,
        ),
        (
            "a ListenerSet that does not exist",
            ls_parent("infra", "nope"),
            &["alt.a.example"],
            false,
            "NoMatchingParent",
            None,
        ),
    ];
    for (what, pref, hosts, accepted, reason, served) in cases {
        let c = compile(
            &fleet(
                vec![infra_gw(AllowedListeners::Same)],
                vec![set()],
                vec![simple_route("infra", "r", vec![pref.clone()], hosts)],
            ),
            &dp(),
        );
        let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "r");
        assert_eq!(
            s.parents[0].parent_ref, pref,
            "{what}: status names the parent as written"
        );
        let a = cond(&s.parents[0].conditions, "Accepted");
        assert_eq!(
            (a.status, a.reason.as_str()),
            (accepted, reason),
            "{what}: {}",
            a.message
        );
        if let Some((port, host)) = served {
            let vh = vhost(&c, port, host).unwrap_or_else(|| panic!("{what}: not served"));
            assert_eq!(route_names(vh).len(), 1, "{what}");
        }
        // attachedRoutes is counted on the listener the route attached to.
        let set_status = status(&c, &ck("a", "c1"), Kind::ListenerSet, "extra");
        let gw_status = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
        let on_set: u32 = set_status.listeners.iter().map(|l| l.attached_routes).sum();
        let on_gw: u32 = gw_status.listeners.iter().map(|l| l.attached_routes).sum();
        let want = match (accepted, pref.kind) {
            (false, _) => (0, 0),
            (true, ParentKind::ListenerSet) => (1, 0),
            (true, ParentKind::Gateway) => (0, 1),
        };
        assert_eq!((on_set, on_gw), want, "{what}");
    }
}

#[test]
fn listener_set_listeners_admit_routes_from_their_own_namespace_by_default() {
    let c = compile(
        &fleet(
            vec![infra_gw(AllowedListeners::All)],
            vec![ls(
                "team",
                "extra",
                "2026-01-01T00:00:00Z",
                ("infra", "gw"),
                vec![listener("alt", 8080).host("alt.a.example")],
            )],
            vec![
                simple_route("team", "mine", vec![ls_parent("team", "extra")], &[]),
                simple_route("infra", "theirs", vec![ls_parent("team", "extra")], &[]),
            ],
        ),
        &dp(),
    );
    assert_eq!(
        route_cond(&c, "mine", "Accepted"),
        (true, "Accepted".into())
    );
    let s = status(&c, &ck("a", "c1"), Kind::HttpRoute, "theirs");
    let a = cond(&s.parents[0].conditions, "Accepted");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (false, "NotAllowedByListeners")
    );
    assert!(
        a.message.contains("ListenerSet team/extra"),
        "{}",
        a.message
    );
}

#[test]
fn conflicts_with_the_parent_go_to_the_gateway_then_the_oldest_set() {
    // (listener, Conflicted, reason, Programmed)
    let ok = |n: &str| (n.to_string(), false, "NoConflicts".to_string(), true);
    let cf = |n: &str, r: &str| (n.to_string(), true, r.to_string(), false);
    let gw = allowing(
        gateway(
            "infra",
            "gw",
            vec![listener("http", 80).host("www.a.example")],
        ),
        AllowedListeners::Same,
    );
    let older = ls(
        "infra",
        "older",
        "2026-01-01T00:00:00Z",
        ("infra", "gw"),
        vec![
            // Same port, protocol and hostname as the Gateway's listener: the Gateway wins.
            listener("dup", 80).host("www.a.example"),
            listener("mine", 80).host("shared.a.example"),
        ],
    );
    let younger = ls(
        "infra",
        "a-younger",
        "2026-02-01T00:00:00Z",
        ("infra", "gw"),
        vec![
            // Same as the older set's: the older set wins although "a-younger" sorts first.
            listener("same", 80).host("shared.a.example"),
            listener("free", 8080).host("free.a.example"),
        ],
    );
    let c = compile(&fleet(vec![gw], vec![older, younger], vec![]), &dp());
    assert_eq!(listener_states(&c, &ck("a", "c1"), "gw"), vec![ok("http")]);
    let states = |name: &str| -> Vec<ListenerState> {
        status(&c, &ck("a", "c1"), Kind::ListenerSet, name)
            .listeners
            .iter()
            .map(|l| {
                let cf = cond(&l.conditions, "Conflicted");
                let prog = cond(&l.conditions, "Programmed");
                (l.name.clone(), cf.status, cf.reason.clone(), prog.status)
            })
            .collect()
    };
    assert_eq!(
        states("older"),
        vec![cf("dup", "HostnameConflict"), ok("mine")]
    );
    let young = states("a-younger");
    assert_eq!(young, vec![cf("same", "HostnameConflict"), ok("free")]);
    let msg = &cond(
        &status(&c, &ck("a", "c1"), Kind::ListenerSet, "a-younger").listeners[0].conditions,
        "Conflicted",
    )
    .message;
    assert!(msg.contains("ListenerSet infra/older"), "{msg}");
    // Both sets keep at least one programmed listener: both are attached.
    assert_eq!(
        status(&c, &ck("a", "c1"), Kind::Gateway, "gw").attached_listener_sets,
        2
    );
}

#[test]
fn tcp_listeners_in_a_listener_set_are_refused_with_guidance() {
    let c = compile(
        &fleet(
            vec![infra_gw(AllowedListeners::Same)],
            vec![ls(
                "infra",
                "raw",
                "2026-01-01T00:00:00Z",
                ("infra", "gw"),
                vec![listener("tcp", 9000).proto(Some(Protocol::Tcp), "TCP")],
            )],
            vec![],
        ),
        &dp(),
    );
    assert_eq!(
        set_accepted(&c, "raw"),
        (false, "ListenersNotValid".to_string())
    );
    let s = status(&c, &ck("a", "c1"), Kind::ListenerSet, "raw");
    let a = cond(&s.listeners[0].conditions, "Accepted");
    assert_eq!(
        (a.status, a.reason.as_str()),
        (false, "UnsupportedProtocol")
    );
    assert!(a.message.contains("put this listener on the Gateway"));
    assert_eq!(
        status(&c, &ck("a", "c1"), Kind::Gateway, "gw").attached_listener_sets,
        0
    );
}

#[test]
fn only_clusters_with_listener_sets_are_copied() {
    let mut f = fleet(
        vec![infra_gw(AllowedListeners::All)],
        vec![ls(
            "infra",
            "extra",
            "2026-01-01T00:00:00Z",
            ("infra", "gw"),
            vec![listener("alt", 8080)],
        )],
        vec![],
    );
    f.insert(ck("a", "c2"), Default::default());
    let m = listener_set::merge(&f, |_| true);
    assert!(m.copied(&ck("a", "c1")));
    assert!(!m.copied(&ck("a", "c2")));
    let merged: Vec<usize> = m.iter().map(|(_, ci)| ci.gateways.len()).collect();
    assert_eq!(merged, vec![1, 0]);
    let (_, c1) = m.iter().next().unwrap();
    assert_eq!(
        c1.gateways[&("infra".to_string(), "gw".to_string())]
            .listeners
            .len(),
        2
    );
}

#[test]
fn an_https_listener_set_terminates_with_its_own_certificate() {
    use crate::model::data_plane::DataPlaneProtocol;
    use crate::model::{Certificate, ListenerTls, PrivateKeyPem, TlsMode};
    let mut dp = dp();
    dp.listeners.push(DataPlaneListener {
        port: 443,
        bind: "127.0.0.1:18443".parse().unwrap(),
        protocol: DataPlaneProtocol::Tls,
    });
    let https = |name: &str, host: &str, problem: Option<&str>| {
        let mut l = listener(name, 443)
            .host(host)
            .proto(Some(Protocol::Https), "HTTPS");
        l.tls = Some(ListenerTls {
            mode: TlsMode::Terminate,
            certificates: vec![Certificate {
                namespace: "team".into(),
                name: "team-tls".into(),
                cert_chain_pem: "CHAIN".into(),
                private_key_pem: PrivateKeyPem("KEY".into()),
                dns_names: vec!["*.a.example".into()],
                serial: "01".into(),
            }],
            problem: problem.map(|r| BackendProblem {
                reason: r.into(),
                message: "Secret team/gone not found".into(),
            }),
            options: Vec::new(),
        });
        l
    };
    let c = compile(
        &fleet(
            vec![infra_gw(AllowedListeners::All)],
            vec![ls(
                "team",
                "secure",
                "2026-01-01T00:00:00Z",
                ("infra", "gw"),
                vec![
                    https("tls", "secure.a.example", None),
                    https("broken", "broken.a.example", Some("InvalidCertificateRef")),
                ],
            )],
            vec![simple_route(
                "team",
                "r",
                vec![ls_parent("team", "secure")],
                &[],
            )],
        ),
        &dp,
    );
    let l = &c.snapshot.tls_listeners[0];
    let names: Vec<&str> = l.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["port/443/sni/secure.a.example"]);
    let TlsChainAction::Terminate { secrets, http } = &l.chains[0].action else {
        panic!("terminate expected")
    };
    assert_eq!(secrets, &vec!["t/a/c/c1/team/team-tls/secret".to_string()]);
    assert_eq!(http.virtual_hosts[0].domains, vec!["secure.a.example"]);
    let s = status(&c, &ck("a", "c1"), Kind::ListenerSet, "secure");
    assert!(cond(&s.conditions, "Accepted").status);
    assert_eq!(s.listeners[0].attached_routes, 1);
    let broken = cond(&s.listeners[1].conditions, "ResolvedRefs");
    assert_eq!(
        (broken.status, broken.reason.as_str()),
        (false, "InvalidCertificateRef")
    );
    assert!(!cond(&s.listeners[1].conditions, "Programmed").status);
}

/// Upstream `ListenerSetHostnameConflict` and `ListenerSetProtocolConflict`: a ListenerSet
/// listener that loses a conflict is `Accepted=False`, `Programmed=False` and
/// `Conflicted=True`, all with the conflict's reason (a TCP listener on the Gateway's HTTP
/// port is a `ProtocolConflict`, not "TCP is not served in a ListenerSet"); a ListenerSet
/// left without a valid listener is `Accepted=False`, `Programmed=False`, both
/// `ListenersNotValid`; the Gateway's own listener keeps `Accepted=True`.
#[test]
fn listener_set_listeners_that_lose_a_conflict_are_not_accepted_table() {
    let gw = allowing(
        gateway(
            "infra",
            "gw",
            vec![listener("gateway-listener", 80).host("www.a.example")],
        ),
        AllowedListeners::Same,
    );
    let mixed = ls(
        "infra",
        "mixed",
        "2026-01-01T00:00:00Z",
        ("infra", "gw"),
        vec![
            listener("mine", 80).host("mine.a.example"),
            listener("dup", 80).host("www.a.example"),
        ],
    );
    let only_tcp = ls(
        "infra",
        "only-tcp",
        "2026-01-02T00:00:00Z",
        ("infra", "gw"),
        vec![listener("tcp", 80).proto(Some(Protocol::Tcp), "TCP")],
    );
    // A TCP listener that loses to the Gateway's HTTP listener does not take its HTTP
    // sibling down with it.
    let tcp_and_http = ls(
        "infra",
        "tcp-and-http",
        "2026-01-03T00:00:00Z",
        ("infra", "gw"),
        vec![
            listener("h", 80).host("h.a.example"),
            listener("tcp", 80).proto(Some(Protocol::Tcp), "TCP"),
        ],
    );
    let c = compile(
        &fleet(vec![gw], vec![mixed, only_tcp, tcp_and_http], vec![]),
        &dp(),
    );
    let cs = |set: &str, l: &str| -> Vec<(String, bool, String)> {
        let s = status(&c, &ck("a", "c1"), Kind::ListenerSet, set);
        let l = s.listeners.iter().find(|x| x.name == l).unwrap();
        ["Accepted", "Programmed", "Conflicted"]
            .iter()
            .map(|t| {
                let x = cond(&l.conditions, t);
                (t.to_string(), x.status, x.reason.clone())
            })
            .collect()
    };
    let lost = |r: &str| {
        vec![
            ("Accepted".to_string(), false, r.to_string()),
            ("Programmed".to_string(), false, r.to_string()),
            ("Conflicted".to_string(), true, r.to_string()),
        ]
    };
    assert_eq!(cs("mixed", "dup"), lost("HostnameConflict"));
    assert_eq!(cs("only-tcp", "tcp"), lost("ProtocolConflict"));
    assert!(
        cs("mixed", "mine")[0].1,
        "the other listener stays accepted"
    );
    assert_eq!(cs("tcp-and-http", "tcp"), lost("ProtocolConflict"));
    assert_eq!(
        cs("tcp-and-http", "h")[2],
        ("Conflicted".to_string(), false, "NoConflicts".to_string())
    );
    assert_eq!(
        set_accepted(&c, "tcp-and-http"),
        (true, "Accepted".to_string())
    );
    assert_eq!(set_accepted(&c, "mixed"), (true, "Accepted".to_string()));
    let s = status(&c, &ck("a", "c1"), Kind::ListenerSet, "only-tcp");
    for t in ["Accepted", "Programmed"] {
        let x = cond(&s.conditions, t);
        assert_eq!(
            (x.status, x.reason.as_str()),
            (false, "ListenersNotValid"),
            "{t}"
        );
    }
    let g = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert!(cond(&g.listeners[0].conditions, "Accepted").status);
    assert_eq!(g.attached_listener_sets, 2);
}
