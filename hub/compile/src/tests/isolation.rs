//! Table tests of listener isolation (Gateway API `GatewayHTTPListenerIsolation`, after the
//! upstream conformance case `gateway-http-listener-isolation*`) and of parentRef `port`
//! (`HTTPRouteParentRefPort`): a request is served only by the routes of the most specific
//! listener matching its Host, never by a less specific listener's routes on the same port.

use super::*;

/// The routes (object names) serving each virtual host of data-plane port 80, by domain.
fn served(c: &Compiled) -> BTreeMap<String, BTreeSet<String>> {
    let l = c
        .snapshot
        .listeners
        .iter()
        .find(|l| l.port == 80)
        .expect("port 80 is served");
    l.virtual_hosts
        .iter()
        .map(|v| {
            let routes = v
                .routes
                .iter()
                .filter_map(|r| r.source.as_ref().map(|s| s.object.name.clone()))
                .collect();
            (v.domains.join(","), routes)
        })
        .collect()
}

/// The listeners of the upstream case, under the tenant's own domain.
fn isolation_gateway() -> Gateway {
    gateway(
        "default",
        "gw",
        vec![
            listener("empty", 80),
            listener("wild", 80).host("*.a.example"),
            listener("wild-foo", 80).host("*.foo.a.example"),
            listener("abc-foo", 80).host("abc.foo.a.example"),
        ],
    )
}

/// A route on listener `section` with one rule `PathPrefix /<section>`.
fn on_listener(section: &str, hosts: &[&str]) -> HttpRoute {
    route(
        "default",
        section,
        vec![ParentRef {
            section_name: Some(section.into()),
            ..parent("default", "gw")
        }],
        hosts,
        vec![rule(
            vec![prefix(&format!("/{section}"))],
            vec![backend("svc", 1, &["127.0.1.1:8080"])],
        )],
    )
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn hostnames_only_on_listeners_are_isolated() {
    let routes = ["wild", "wild-foo", "abc-foo"]
        .iter()
        .map(|s| on_listener(s, &[]))
        .collect();
    let c = compile(&one(vec![isolation_gateway()], routes), &dp());
    let got = served(&c);
    let want: BTreeMap<String, BTreeSet<String>> = [
        ("*.a.example", set(&["wild"])),
        ("*.foo.a.example", set(&["wild-foo"])),
        ("abc.foo.a.example", set(&["abc-foo"])),
    ]
    .into_iter()
    .map(|(d, r)| (d.to_string(), r))
    .chain(
        got.keys()
            .filter(|d| d.as_str() == "*")
            .map(|d| (d.clone(), set(&[]))),
    )
    .collect();
    assert_eq!(got, want);
}

#[test]
fn route_hostnames_intersecting_a_more_specific_listener_are_isolated() {
    let hosts = [
        "bar.com",
        "*.a.example",
        "*.foo.a.example",
        "abc.foo.a.example",
    ];
    let routes = ["empty", "wild", "wild-foo", "abc-foo"]
        .iter()
        .map(|s| on_listener(s, &hosts))
        .collect();
    let c = compile(&one(vec![isolation_gateway()], routes), &dp());
    for name in ["empty", "wild", "wild-foo", "abc-foo"] {
        assert_eq!(route_cond(&c, name, "Accepted"), (true, "Accepted".into()));
    }
    let got = served(&c);
    // Each domain is served by the routes of the most specific listener matching it only.
    for (domain, routes) in [
        ("bar.com", set(&["empty"])),
        ("*.a.example", set(&["wild"])),
        ("*.foo.a.example", set(&["wild-foo"])),
        ("abc.foo.a.example", set(&["abc-foo"])),
    ] {
        assert_eq!(got.get(domain), Some(&routes), "{domain}: {got:?}");
    }
}

#[test]
fn parent_ref_port_table() {
    // Listeners on data-plane ports 80 and 8080; (sectionName, port) -> (Accepted, reason,
    // served on 80, served on 8080).
    let gw = || {
        gateway(
            "default",
            "gw",
            vec![
                listener("http", 80).host("*.a.example"),
                listener("alt", 8080).host("*.a.example"),
            ],
        )
    };
    type Case = (
        Option<&'static str>,
        Option<u16>,
        bool,
        &'static str,
        bool,
        bool,
    );
    let cases: [Case; 7] = [
        (None, None, true, "Accepted", true, true),
        (None, Some(80), true, "Accepted", true, false),
        (None, Some(8080), true, "Accepted", false, true),
        (None, Some(9090), false, "NoMatchingParent", false, false),
        (Some("http"), Some(80), true, "Accepted", true, false),
        // Both must match: the section is on 80, not 8080.
        (
            Some("http"),
            Some(8080),
            false,
            "NoMatchingParent",
            false,
            false,
        ),
        (Some("alt"), None, true, "Accepted", false, true),
    ];
    for (section, port, ok, reason, on_80, on_8080) in cases {
        let p = ParentRef {
            section_name: section.map(str::to_string),
            port,
            ..parent("default", "gw")
        };
        let c = compile(
            &one(
                vec![gw()],
                vec![simple_route("default", "r", vec![p], &["x.a.example"])],
            ),
            &dp(),
        );
        let what = format!("{section:?} {port:?}");
        assert_eq!(
            route_cond(&c, "r", "Accepted"),
            (ok, reason.into()),
            "{what}"
        );
        assert_eq!(vhost(&c, 80, "x.a.example").is_some(), on_80, "{what}");
        assert_eq!(vhost(&c, 8080, "x.a.example").is_some(), on_8080, "{what}");
        let attached: Vec<u32> = status(&c, &ck("a", "c1"), Kind::Gateway, "gw")
            .listeners
            .iter()
            .map(|l| l.attached_routes)
            .collect();
        assert_eq!(
            attached,
            vec![u32::from(on_80), u32::from(on_8080)],
            "{what}"
        );
    }
}
