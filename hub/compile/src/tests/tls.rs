//! Table tests of TLS data-plane ports: HTTPS termination per SNI hostname, listener checks
//! against the port's protocol, certificate problems in the listener status.

use super::*;
use crate::model::data_plane::DataPlaneProtocol;
use crate::model::{Certificate, ListenerTls, PrivateKeyPem, TlsMode, TlsRoute, TlsRouteRule};

fn tls_dp() -> DataPlane {
    DataPlane {
        address: "192.0.2.10".parse().unwrap(),
        ai_gateways: Vec::new(),
        listeners: vec![
            DataPlaneListener {
                port: 80,
                bind: "127.0.0.1:18080".parse().unwrap(),
                protocol: DataPlaneProtocol::Http,
            },
            DataPlaneListener {
                port: 443,
                bind: "127.0.0.1:18443".parse().unwrap(),
                protocol: DataPlaneProtocol::Tls,
            },
        ],
    }
}

fn cert(name: &str, serial: &str) -> Certificate {
    Certificate {
        namespace: "default".into(),
        name: name.into(),
        cert_chain_pem: format!("CHAIN {serial}"),
        private_key_pem: PrivateKeyPem(format!("KEY {serial}")),
        dns_names: vec!["*.a.example".into()],
        serial: serial.into(),
    }
}

fn https(
    name: &str,
    host: Option<&str>,
    certs: Vec<Certificate>,
    problem: Option<&str>,
) -> Listener {
    let mut l = listener(name, 443).proto(Some(Protocol::Https), "HTTPS");
    l.hostname = host.map(str::to_string);
    l.tls = Some(ListenerTls {
        mode: TlsMode::Terminate,
        certificates: certs,
        problem: problem.map(|r| BackendProblem {
            reason: r.into(),
            message: "Secret default/gone not found".into(),
        }),
        options: Vec::new(),
    });
    l
}

fn listener_condition<'a>(s: &'a ObjectStatus, l: &str, t: &str) -> &'a Condition {
    s.listeners
        .iter()
        .find(|x| x.name == l)
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap()
}

#[test]
fn https_listener_gets_a_chain_per_hostname_with_its_secret_and_routes() {
    let gw = gateway(
        "default",
        "web",
        vec![
            https(
                "https",
                Some("app.a.example"),
                vec![cert("app-tls", "01")],
                None,
            ),
            listener("http", 80).host("app.a.example"),
        ],
    );
    let r = simple_route("default", "app", vec![parent("default", "web")], &[]);
    let out = compile(&one(vec![gw], vec![r]), &tls_dp());
    let snap = &out.snapshot;
    assert_eq!(snap.tls_listeners.len(), 1);
    let l = &snap.tls_listeners[0];
    assert_eq!((l.name.as_str(), l.port), ("port/443", 443));
    assert_eq!(l.chains.len(), 1);
    let c = &l.chains[0];
    assert_eq!(c.name, "port/443/sni/app.a.example");
    assert_eq!(c.server_names, vec!["app.a.example"]);
    let TlsChainAction::Terminate { secrets, http } = &c.action else {
        panic!("terminate expected")
    };
    assert_eq!(
        secrets,
        &vec!["t/a/c/c1/default/app-tls/secret".to_string()]
    );
    let domains: Vec<&str> = http
        .virtual_hosts
        .iter()
        .map(|v| v.domains[0].as_str())
        .collect();
    assert_eq!(domains, vec!["app.a.example", "*"]);
    assert_eq!(http.name, c.name);
    // The secret is in the snapshot, once, with the material.
    assert_eq!(snap.secrets.len(), 1);
    assert_eq!(snap.secrets[0].name, secrets[0]);
    assert_eq!(snap.secrets[0].cert_chain_pem, "CHAIN 01");
    // Plain HTTP on port 80 still serves the same route.
    assert_eq!(snap.listeners.len(), 1);
    assert_eq!(snap.listeners[0].port, 80);
    let st = &out.statuses[&ck("a", "c1")][0];
    for t in ["Accepted", "Programmed", "ResolvedRefs"] {
        assert!(listener_condition(st, "https", t).status, "{t}");
    }
    assert_eq!(st.listeners[0].attached_routes, 1);
}

/// Whether the listener status is the one of the Terminate-mode TLS case (its message says so).
fn l_is_terminate_tls(st: &ObjectStatus) -> bool {
    listener_condition(st, "l", "Accepted")
        .message
        .contains("tls.mode Terminate")
}

#[test]
fn tls_listener_checks_table() {
    // (listener, Accepted, Programmed, ResolvedRefs reason or "", reason of the first False)
    let cases: Vec<(Listener, bool, bool, &str, &str)> = vec![
        (
            https("l", Some("x.a.example"), vec![cert("c", "01")], None),
            true,
            true,
            "ResolvedRefs",
            "",
        ),
        (
            https(
                "l",
                Some("x.a.example"),
                vec![],
                Some("InvalidCertificateRef"),
            ),
            true,
            false,
            "InvalidCertificateRef",
            "Invalid",
        ),
        (
            https("l", Some("x.a.example"), vec![], Some("RefNotPermitted")),
            true,
            false,
            "RefNotPermitted",
            "Invalid",
        ),
        (
            https("l", None, vec![cert("c", "01")], None),
            false,
            false,
            "ResolvedRefs",
            "UnsupportedValue",
        ),
        (
            {
                let mut l = https("l", Some("x.a.example"), vec![cert("c", "01")], None);
                l.port = 80;
                l
            },
            false,
            false,
            "ResolvedRefs",
            "UnsupportedProtocol",
        ),
        (
            listener("l", 443).host("x.a.example"),
            false,
            false,
            "ResolvedRefs",
            "UnsupportedProtocol",
        ),
        // Upstream `TLSRouteListenerTerminateNotSupported`: protocol TLS in Terminate mode is
        // listed, refused alone.
        (
            {
                // On a port the data plane does not publish (the suite's 8443): the mode is
                // what is refused.
                let mut l = passthrough("l", "terminate.a.example");
                l.tls.as_mut().unwrap().mode = TlsMode::Terminate;
                l.port = 8443;
                l
            },
            false,
            false,
            "ResolvedRefs",
            "UnsupportedValue",
        ),
    ];
    for (i, (l, accepted, programmed, resolved, reason)) in cases.into_iter().enumerate() {
        let out = compile(
            &one(vec![gateway("default", "web", vec![l])], vec![]),
            &tls_dp(),
        );
        let st = &out.statuses[&ck("a", "c1")][0];
        let a = listener_condition(st, "l", "Accepted");
        let p = listener_condition(st, "l", "Programmed");
        let r = listener_condition(st, "l", "ResolvedRefs");
        assert_eq!((a.status, p.status), (accepted, programmed), "case {i}");
        assert_eq!(r.reason, resolved, "case {i}");
        if !accepted {
            assert_eq!(a.reason, reason, "case {i}: {}", a.message);
        } else if !programmed {
            assert_eq!(p.reason, reason, "case {i}");
        }
        if reason == "UnsupportedValue" && l_is_terminate_tls(st) {
            // A refused Terminate-mode TLS listener serves no kind.
            assert!(st.listeners[0].supported_kinds.is_empty(), "case {i}");
        }
        if !programmed {
            assert!(out.snapshot.tls_listeners.is_empty(), "case {i}");
            assert!(out.snapshot.secrets.is_empty(), "case {i}");
        }
    }
}

#[test]
fn each_tenant_hostname_gets_its_own_chain_and_only_its_routes() {
    let gw_a = gateway(
        "default",
        "web",
        vec![https(
            "https",
            Some("*.a.example"),
            vec![cert("a-tls", "0a")],
            None,
        )],
    );
    let gw_b = gateway(
        "default",
        "web",
        vec![https(
            "https",
            Some("app.b.example"),
            vec![cert("b-tls", "0b")],
            None,
        )],
    );
    let ra = simple_route(
        "default",
        "app",
        vec![parent("default", "web")],
        &["x.a.example"],
    );
    let rb = simple_route("default", "app", vec![parent("default", "web")], &[]);
    let out = compile(
        &intent(vec![
            (ck("a", "c1"), vec![gw_a], vec![ra]),
            (ck("b", "c1"), vec![gw_b], vec![rb]),
        ]),
        &tls_dp(),
    );
    let l = &out.snapshot.tls_listeners[0];
    let got: Vec<(Vec<String>, Vec<String>, Vec<String>)> = l
        .chains
        .iter()
        .map(|c| {
            let TlsChainAction::Terminate { secrets, http } = &c.action else {
                panic!("terminate expected")
            };
            (
                c.server_names.clone(),
                secrets.clone(),
                http.virtual_hosts
                    .iter()
                    .flat_map(|v| v.domains.clone())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                vec!["*.a.example".to_string()],
                vec!["t/a/c/c1/default/a-tls/secret".to_string()],
                vec!["x.a.example".to_string(), "*".to_string()]
            ),
            (
                vec!["app.b.example".to_string()],
                vec!["t/b/c/c1/default/b-tls/secret".to_string()],
                vec!["app.b.example".to_string(), "*".to_string()]
            ),
        ]
    );
    assert_eq!(out.snapshot.secrets.len(), 2);
    assert_eq!(l.gateways.len(), 2);
}

/// Gateway API `GatewayHTTPSListenerDetectMisdirectedRequests` on a shared TLS port: on a
/// connection whose SNI chose a chain, a Host that chain does not serve gets 421 (another
/// tenant's host, a host of a more specific chain, a host nobody serves); the chain's own hosts
/// are served.
#[test]
fn hosts_a_chain_does_not_serve_get_421_on_it() {
    let gw_a = gateway(
        "default",
        "web",
        vec![
            https("wild", Some("*.a.example"), vec![cert("a", "0a")], None),
            https("app", Some("app.a.example"), vec![cert("a", "0a")], None),
        ],
    );
    let gw_b = gateway(
        "default",
        "web",
        vec![https(
            "b",
            Some("app.b.example"),
            vec![cert("b", "0b")],
            None,
        )],
    );
    // Without hostnames: the wildcard chain's virtual host `*.a.example`.
    let ra = route(
        "default",
        "wild",
        vec![ParentRef {
            section_name: Some("wild".into()),
            ..parent("default", "web")
        }],
        &[],
        vec![rule(vec![prefix("/")], vec![backend("w", 1, &[])])],
    );
    let rapp = route(
        "default",
        "app",
        vec![ParentRef {
            section_name: Some("app".into()),
            ..parent("default", "web")
        }],
        &[],
        vec![rule(vec![prefix("/")], vec![backend("app", 1, &[])])],
    );
    let rb = simple_route("default", "b", vec![parent("default", "web")], &[]);
    let out = compile(
        &intent(vec![
            (ck("a", "c1"), vec![gw_a], vec![ra, rapp]),
            (ck("b", "c1"), vec![gw_b], vec![rb]),
        ]),
        &tls_dp(),
    );
    let l = &out.snapshot.tls_listeners[0];
    let chain = |sni: &str| {
        let c = l
            .chains
            .iter()
            .find(|c| c.server_names == vec![sni.to_string()])
            .unwrap_or_else(|| panic!("no chain {sni}"));
        let TlsChainAction::Terminate { http, .. } = &c.action else {
            panic!("terminate expected")
        };
        http.virtual_hosts.clone()
    };
    let wild_cluster = "t/a/c/c1/default/w/backend/80";
    let app_cluster = "t/a/c/c1/default/app/backend/80";
    // (SNI, Host, answer)
    let cases = [
        ("*.a.example", "x.a.example", wild_cluster),
        ("*.a.example", "app.a.example", "421"),
        ("*.a.example", "nobody.a.example", wild_cluster),
        ("*.a.example", "a.example", "421"),
        ("*.a.example", "app.b.example", "421"),
        ("app.a.example", "app.a.example", app_cluster),
        ("app.a.example", "x.a.example", "421"),
        ("app.b.example", "app.a.example", "421"),
        ("app.b.example", "x.a.example", "421"),
    ];
    for (sni, host, want) in cases {
        assert_eq!(
            envoy_answer(&chain(sni), host),
            want,
            "SNI {sni}, Host {host}"
        );
    }
    let b = chain("app.b.example");
    assert!(envoy_answer(&b, "app.b.example").starts_with("t/b/"));
}

#[test]
fn a_rotated_certificate_changes_only_the_secret() {
    let build = |serial: &str| {
        let gw = gateway(
            "default",
            "web",
            vec![https(
                "https",
                Some("app.a.example"),
                vec![cert("app-tls", serial)],
                None,
            )],
        );
        compile(&one(vec![gw], vec![]), &tls_dp()).snapshot
    };
    let (old, new) = (build("01"), build("02"));
    assert_eq!(old.tls_listeners, new.tls_listeners);
    assert_ne!(old.secrets, new.secrets);
    assert_eq!(old.secrets[0].name, new.secrets[0].name);
}

fn passthrough(name: &str, host: &str) -> Listener {
    let mut l = listener(name, 443)
        .proto(Some(Protocol::Tls), "TLS")
        .host(host);
    l.tls = Some(ListenerTls {
        mode: TlsMode::Passthrough,
        certificates: vec![],
        problem: None,
        options: Vec::new(),
    });
    l
}

fn tls_route(name: &str, hosts: &[&str], backends: Vec<Backend>) -> TlsRoute {
    TlsRoute {
        meta: meta("default", name),
        parent_refs: vec![parent("default", "web")],
        hostnames: hosts.iter().map(|h| h.to_string()).collect(),
        rules: vec![TlsRouteRule {
            name: None,
            backends,
        }],
    }
}

#[test]
fn tls_routes_pass_through_by_sni_next_to_https() {
    let gw = gateway(
        "default",
        "web",
        vec![
            passthrough("tls", "*.db.a.example"),
            https(
                "https",
                Some("app.a.example"),
                vec![cert("app-tls", "01")],
                None,
            ),
        ],
    );
    let mut fleet = one(
        vec![gw],
        vec![simple_route(
            "default",
            "app",
            vec![parent("default", "web")],
            &[],
        )],
    );
    let ci = std::sync::Arc::make_mut(fleet.get_mut(&ck("a", "c1")).unwrap());
    for r in [
        tls_route(
            "pg",
            &["pg.db.a.example"],
            vec![backend("pg", 1, &["127.0.1.1:5432"])],
        ),
        // Not under the listener's hostname: not accepted.
        tls_route(
            "other",
            &["x.a.example"],
            vec![backend("x", 1, &["127.0.1.1:1"])],
        ),
        tls_route("broken", &["gone.db.a.example"], vec![missing("gone", 1)]),
    ] {
        ci.tls_routes
            .insert((r.meta.namespace.clone(), r.meta.name.clone()), r);
    }
    let out = compile(&fleet, &tls_dp());
    let l = &out.snapshot.tls_listeners[0];
    let got: Vec<(String, &str, Vec<String>)> = l
        .chains
        .iter()
        .map(|c| match &c.action {
            TlsChainAction::Terminate { .. } => (c.server_names[0].clone(), "terminate", vec![]),
            TlsChainAction::Passthrough { clusters, .. } => (
                c.server_names[0].clone(),
                "passthrough",
                clusters.iter().map(|w| w.cluster.clone()).collect(),
            ),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("app.a.example".into(), "terminate", vec![]),
            // No valid backend: the chain exists (the hostname is the tenant's) and closes.
            ("gone.db.a.example".into(), "passthrough", vec![]),
            (
                "pg.db.a.example".into(),
                "passthrough",
                vec!["t/a/c/c1/default/pg/tls/r0/b0".to_string()]
            ),
        ]
    );
    assert!(
        out.snapshot
            .clusters
            .iter()
            .any(|c| c.name == "t/a/c/c1/default/pg/tls/r0/b0")
    );
    let statuses = &out.statuses[&ck("a", "c1")];
    let route = |name: &str| {
        statuses
            .iter()
            .find(|s| s.key.kind == Kind::TlsRoute && s.key.name == name)
            .unwrap()
    };
    let cond = |s: &ObjectStatus, t: &str| {
        s.parents[0]
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
            .clone()
    };
    assert!(cond(route("pg"), "Accepted").status);
    assert_eq!(
        cond(route("other"), "Accepted").reason,
        "NoMatchingListenerHostname"
    );
    assert_eq!(
        cond(route("broken"), "ResolvedRefs").reason,
        "BackendNotFound"
    );
    // Two TLSRoutes on the TLS listener, one HTTPRoute on the HTTPS one.
    let gw = &statuses[0];
    let attached: Vec<(&str, u32)> = gw
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.attached_routes))
        .collect();
    assert_eq!(attached, vec![("tls", 2), ("https", 1)]);
    // An HTTPRoute never attaches to a TLS listener, a TLSRoute never to an HTTPS one.
    let only_tls = gateway("default", "web", vec![passthrough("tls", "*.db.a.example")]);
    let out = compile(
        &one(
            vec![only_tls],
            vec![simple_route(
                "default",
                "app",
                vec![parent("default", "web")],
                &["x.db.a.example"],
            )],
        ),
        &tls_dp(),
    );
    let s = out.statuses[&ck("a", "c1")]
        .iter()
        .find(|s| s.key.kind == Kind::HttpRoute)
        .unwrap();
    assert!(!cond(s, "Accepted").status);
}

/// Upstream `GatewayWithAttachedRoutes` ("AttachedRoutes set even when Gateway has unresolved
/// refs"): a route attaches to, and is counted on, an accepted HTTPS listener whose
/// certificateRef did not resolve, but nothing is served through that listener.
#[test]
fn routes_count_on_a_listener_with_unresolved_refs_but_are_not_served_there() {
    let gw = gateway(
        "default",
        "web",
        vec![
            https(
                "tls",
                Some("app.a.example"),
                vec![],
                Some("InvalidCertificateRef"),
            ),
            listener("http", 80).host("app.a.example"),
        ],
    );
    let tls_only = ParentRef {
        section_name: Some("tls".into()),
        ..parent("default", "web")
    };
    let r = simple_route("default", "r", vec![tls_only], &[]);
    let out = compile(&one(vec![gw], vec![r]), &tls_dp());
    let st = &out.statuses[&ck("a", "c1")][0];
    assert_eq!(st.listeners[0].attached_routes, 1);
    assert_eq!(st.listeners[1].attached_routes, 0);
    assert!(!listener_condition(st, "tls", "Programmed").status);
    assert!(!listener_condition(st, "tls", "ResolvedRefs").status);
    assert!(route_cond(&out, "r", "Accepted").0);
    // Nothing is served: no TLS listener, and the route is not on port 80 either.
    assert!(out.snapshot.tls_listeners.is_empty());
    assert!(vhost(&out, 80, "app.a.example").is_none());
}

/// Upstream `TLSRouteHostnameIntersection`, `TLSRouteInvalidBackendRefNonexistent`,
/// `TLSRouteInvalidBackendRefUnknownKind`, `TLSRouteInvalidNoMatchingListener`: their Gateways
/// have TLS passthrough listeners without hostname. With address pools such a Gateway is
/// served on its own address: a hostname-less TLSRoute passes every SNI through (a chain
/// without server names), a named one gets its SNI chain, and each address carries only its
/// own Gateway's (tenant's) backends.
#[test]
fn hostname_less_passthrough_is_served_on_the_gateways_own_address_only() {
    use super::own_address::{compile_own, pools};
    let hostless = |name: &str| {
        let mut l = passthrough(name, "x.example");
        l.hostname = None;
        l
    };
    let fleet = intent(
        ["a", "b"]
            .into_iter()
            .map(|t| {
                (
                    ck(t, "c1"),
                    vec![gateway("default", "web", vec![hostless("tls")])],
                    vec![],
                )
            })
            .collect(),
    );
    let mut fleet = fleet;
    for t in ["a", "b"] {
        let ci = std::sync::Arc::make_mut(fleet.get_mut(&ck(t, "c1")).unwrap());
        let mut routes = vec![tls_route(
            "any",
            &[],
            vec![backend("be", 1, &["127.0.1.1:8443"])],
        )];
        if t == "a" {
            routes.push(tls_route(
                "named",
                &["db.a.example"],
                vec![backend("db", 1, &["127.0.1.2:5432"])],
            ));
            routes.push(tls_route(
                "broken",
                &["gone.a.example"],
                vec![missing("gone", 1)],
            ));
        }
        for r in routes {
            ci.tls_routes
                .insert((r.meta.namespace.clone(), r.meta.name.clone()), r);
        }
    }
    let out = compile_own(&fleet, &pools(&["192.0.2.50", "192.0.2.51"], None));
    let mut seen = BTreeMap::new();
    for t in ["a", "b"] {
        let k = ck(t, "c1");
        let g = status(&out, &k, Kind::Gateway, "web");
        assert_eq!(g.addresses.len(), 1, "{t}: {g:?}");
        for c in ["Accepted", "Programmed"] {
            assert!(cond(&g.conditions, c).status, "{t} {c}: {g:?}");
            assert!(listener_condition(g, "tls", c).status, "{t} {c}");
        }
        let want = if t == "a" { 3 } else { 1 };
        assert_eq!(g.listeners[0].attached_routes, want, "{t}");
        let any = out.statuses[&k]
            .iter()
            .find(|s| s.key.kind == Kind::TlsRoute && s.key.name == "any")
            .unwrap();
        assert!(cond(&any.parents[0].conditions, "Accepted").status, "{t}");
        seen.insert(t, g.addresses[0].clone());
    }
    assert_ne!(seen["a"], seen["b"], "one address per Gateway");
    assert_eq!(out.snapshot.tls_listeners.len(), 2);
    for l in &out.snapshot.tls_listeners {
        let t = if l.bind.ip().to_string() == seen["a"] {
            "a"
        } else {
            "b"
        };
        assert_eq!(l.name, format!("own/tls/{}", l.bind));
        assert_eq!(l.port, 443);
        let mut got = Vec::new();
        for c in &l.chains {
            let TlsChainAction::Passthrough { clusters, .. } = &c.action else {
                panic!("passthrough expected")
            };
            // Only this tenant's backends are reachable on its address.
            for wc in clusters {
                assert!(
                    wc.cluster.starts_with(&format!("t/{t}/")),
                    "{t}: {}",
                    wc.cluster
                );
            }
            got.push((c.name.clone(), c.server_names.clone(), clusters.len()));
        }
        let b = l.bind;
        let mut want = vec![(format!("own/tls/{b}/default"), vec![], 1)];
        if t == "a" {
            want.push((
                format!("own/tls/{b}/sni/db.a.example"),
                vec!["db.a.example".to_string()],
                1,
            ));
            // The unresolved backend: the chain exists and connects nowhere.
            want.push((
                format!("own/tls/{b}/sni/gone.a.example"),
                vec!["gone.a.example".to_string()],
                0,
            ));
        }
        want.sort();
        got.sort();
        assert_eq!(got, want, "{t}");
    }
    // Without address pools nothing changes: the hostname-less TLS listener is refused.
    let shared = compile(&fleet, &tls_dp());
    let g = status(&shared, &ck("a", "c1"), Kind::Gateway, "web");
    assert_eq!(
        listener_condition(g, "tls", "Accepted").reason,
        "UnsupportedValue"
    );
}

/// On an own address a passthrough listener sits next to an HTTPS one on another port (all on
/// the Gateway's one address); a TLS listener in Terminate mode is refused alone there too.
#[test]
fn own_address_passthrough_next_to_https_and_a_refused_terminate_listener() {
    use super::own_address::{compile_own, pools};
    let mut hostless = passthrough("tls", "x.example");
    hostless.hostname = None;
    let mut term = passthrough("term", "t.a.example");
    term.port = 9443;
    term.tls.as_mut().unwrap().mode = TlsMode::Terminate;
    let mut h = https("https", None, vec![cert("c", "01")], None);
    h.port = 8443;
    let gw = gateway("default", "web", vec![hostless, h, term]);
    let out = compile_own(&one(vec![gw], vec![]), &pools(&["192.0.2.50"], None));
    let g = status(&out, &ck("a", "c1"), Kind::Gateway, "web");
    assert!(listener_condition(g, "tls", "Programmed").status, "{g:?}");
    assert!(listener_condition(g, "https", "Programmed").status, "{g:?}");
    assert_eq!(
        listener_condition(g, "term", "Accepted").reason,
        "UnsupportedValue"
    );
    assert_eq!(g.addresses, vec!["192.0.2.50".to_string()]);
    let a = cond(&g.conditions, "Accepted");
    assert_eq!((a.status, a.reason.as_str()), (true, "ListenersNotValid"));
    // No TLSRoute yet: no passthrough listener (Envoy refuses one without chains); the HTTPS
    // one is there.
    let names: Vec<&str> = out
        .snapshot
        .tls_listeners
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, vec!["own/https/192.0.2.50:8443"]);
}

/// Upstream `TLSRouteInvalidNoMatchingListener`: a TLSRoute whose parent has only HTTP or
/// HTTPS listeners is `Accepted=False/NotAllowedByListeners` (the listeners do not take the
/// kind); a sectionName that names no listener stays `NoMatchingParent`.
#[test]
fn tls_routes_on_http_or_https_only_gateways_are_not_allowed_by_listeners() {
    for (what, l, section, want) in [
        ("http", listener("http", 80), None, "NotAllowedByListeners"),
        (
            "https",
            https("https", Some("x.a.example"), vec![cert("c", "01")], None),
            None,
            "NotAllowedByListeners",
        ),
        (
            "section",
            listener("http", 80),
            Some("nope"),
            "NoMatchingParent",
        ),
    ] {
        let mut fleet = one(vec![gateway("default", "web", vec![l])], vec![]);
        let mut r = tls_route(
            "r",
            &["tls.a.example"],
            vec![backend("b", 1, &["127.0.1.1:443"])],
        );
        r.parent_refs[0].section_name = section.map(str::to_string);
        std::sync::Arc::make_mut(fleet.get_mut(&ck("a", "c1")).unwrap())
            .tls_routes
            .insert(("default".into(), "r".into()), r);
        let out = compile(&fleet, &tls_dp());
        let st = out.statuses[&ck("a", "c1")]
            .iter()
            .find(|s| s.key.kind == Kind::TlsRoute)
            .unwrap();
        let a = cond(&st.parents[0].conditions, "Accepted");
        assert_eq!(
            (a.status, a.reason.as_str()),
            (false, want),
            "{what}: {}",
            a.message
        );
        let g = status(&out, &ck("a", "c1"), Kind::Gateway, "web");
        assert_eq!(g.listeners[0].attached_routes, 0, "{what}");
    }
}

/// Listener `tls.options`: fleetgate implements none, so the listener is refused alone
/// (Accepted=False/UnsupportedValue, naming the keys and saying to remove them) rather than
/// served without them; the Gateway's other listener is served.
#[test]
fn a_listener_with_tls_options_is_refused_alone() {
    let mut with_options = https("opts", Some("opts.a.example"), vec![cert("a", "0a")], None);
    with_options.tls.as_mut().unwrap().options = vec!["example.com/min-version".into()];
    let gw = gateway(
        "default",
        "web",
        vec![
            with_options,
            https("app", Some("app.a.example"), vec![cert("a", "0a")], None),
        ],
    );
    let out = compile(&one(vec![gw], vec![]), &tls_dp());
    let st = status(&out, &ck("a", "c1"), Kind::Gateway, "web");
    let refused = listener_condition(st, "opts", "Accepted");
    assert_eq!(
        (refused.status, refused.reason.as_str()),
        (false, "UnsupportedValue")
    );
    assert!(
        refused.message.contains("\"example.com/min-version\"")
            && refused.message.contains("remove tls.options"),
        "{}",
        refused.message
    );
    assert!(listener_condition(st, "app", "Accepted").status);
    assert!(listener_condition(st, "app", "Programmed").status);
    let sni: Vec<&Vec<String>> = out.snapshot.tls_listeners[0]
        .chains
        .iter()
        .map(|c| &c.server_names)
        .collect();
    assert_eq!(sni, vec![&vec!["app.a.example".to_string()]]);
    let g = cond(&st.conditions, "Accepted");
    assert_eq!((g.status, g.reason.as_str()), (true, "ListenersNotValid"));
}
