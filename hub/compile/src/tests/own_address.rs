//! Table tests of Gateways served on their own address (`super::own_address`): the
//! hostname-less pair serves every host there, only that Gateway's routes are on it, and an
//! address that cannot be allocated is reported on the listener without touching others.

use super::*;
use crate::model::allocate::{self, Allocations};
use crate::model::data_plane::{AddressPool, L4Config, PortRange};
use crate::model::{Certificate, ListenerTls, PrivateKeyPem, TlsMode};

pub(super) fn pools(addresses: &[&str], bind: Option<&str>) -> L4Config {
    L4Config {
        pools: vec![AddressPool {
            name: "p".into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            bind: bind.map(|b| b.parse().unwrap()),
        }],
        port_range: Some(PortRange { from: 80, to: 9000 }),
    }
}

/// Allocates what the fleet wants (as `crate::fleet` does) and compiles.
pub(super) fn compile_own(fi: &FleetIntent, l4: &L4Config) -> Compiled {
    let wanted = crate::l4::wanted_ports(fi);
    let o = allocate::allocate(l4, &BTreeSet::new(), &Allocations::new(), &wanted);
    compile_with_l4(fi, &dp(), l4, &o.allocations, &o.failures)
}

fn own_listener<'a>(c: &'a Compiled, name: &str) -> &'a ListenerSnapshot {
    c.snapshot
        .listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name} in {:?}", listener_names(c)))
}

fn listener_names(c: &Compiled) -> Vec<&str> {
    c.snapshot
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .chain(c.snapshot.tls_listeners.iter().map(|l| l.name.as_str()))
        .collect()
}

/// Tenants of every route of a listener's virtual hosts.
fn tenants(l: &ListenerSnapshot) -> BTreeSet<String> {
    l.virtual_hosts
        .iter()
        .flat_map(|v| &v.routes)
        .filter_map(|r| r.source.as_ref().map(|s| s.cluster.tenant.clone()))
        .collect()
}

fn listener_cond(s: &ObjectStatus, t: &str) -> (bool, String) {
    let c = cond(&s.listeners[0].conditions, t);
    (c.status, c.reason.clone())
}

#[test]
fn the_hostname_less_pair_is_served_for_every_host_on_the_gateways_own_address() {
    let gw = gateway("default", "gw", vec![listener("http", 80)]);
    let r = simple_route("default", "r", vec![parent("default", "gw")], &[]);
    let fi = one(vec![gw], vec![r]);
    for (what, l4, bind) in [
        ("plain pool", pools(&["192.0.2.50"], None), "192.0.2.50:80"),
        (
            "pool with a bind override",
            pools(&["192.0.2.50"], Some("127.0.0.9")),
            "127.0.0.9:80",
        ),
    ] {
        let c = compile_own(&fi, &l4);
        assert_eq!(
            route_cond(&c, "r", "Accepted"),
            (true, "Accepted".into()),
            "{what}"
        );
        let g = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
        assert_eq!(g.addresses, vec!["192.0.2.50".to_string()], "{what}");
        assert_eq!(listener_cond(g, "Programmed"), (true, "Programmed".into()));
        assert_eq!(g.listeners[0].attached_routes, 1);
        let l = own_listener(&c, &format!("own/http/{bind}"));
        assert_eq!(l.bind, bind.parse::<SocketAddr>().unwrap(), "{what}");
        assert_eq!(l.port, 80);
        assert_eq!(l.virtual_hosts.len(), 1, "{what}: no catch-all next to *");
        assert_eq!(l.virtual_hosts[0].domains, vec!["*"]);
        assert_eq!(
            route_names(&l.virtual_hosts[0]),
            vec!["t/a/c/c1/default/r/r0/m0"]
        );
        // The shared port serves only its catch-all: nothing of this Gateway is there.
        let shared = own_listener(&c, "port/80");
        assert_eq!(shared.virtual_hosts.len(), 1);
        assert!(shared.gateways.is_empty(), "{what}");
    }
}

#[test]
fn two_tenants_get_two_addresses_and_neither_sees_the_others_routes() {
    let fi = intent(
        ["a", "b"]
            .into_iter()
            .map(|t| {
                (
                    ck(t, "c1"),
                    vec![gateway("default", "gw", vec![listener("http", 80)])],
                    vec![
                        simple_route("default", "any", vec![parent("default", "gw")], &[]),
                        simple_route(
                            "default",
                            "named",
                            vec![parent("default", "gw")],
                            &[&format!("app.{t}.example")],
                        ),
                    ],
                )
            })
            .collect(),
    );
    let c = compile_own(&fi, &pools(&["192.0.2.50", "192.0.2.51"], None));
    let mut seen = BTreeSet::new();
    for (t, addr) in [("a", "192.0.2.50"), ("b", "192.0.2.51")] {
        let g = status(&c, &ck(t, "c1"), Kind::Gateway, "gw");
        assert_eq!(g.addresses, vec![addr.to_string()]);
        let l = own_listener(&c, &format!("own/http/{addr}:80"));
        assert_eq!(tenants(l), BTreeSet::from([t.to_string()]), "{t}");
        let domains: Vec<&str> = l
            .virtual_hosts
            .iter()
            .flat_map(|v| v.domains.iter().map(String::as_str))
            .collect();
        assert_eq!(domains, vec![&format!("app.{t}.example") as &str, "*"]);
        assert!(seen.insert(l.bind), "two tenants share {}", l.bind);
    }
}

#[test]
fn no_address_is_reported_on_the_listener_and_the_rest_is_untouched() {
    // One address, two tenants wanting port 80: the first (in key order) gets it.
    let fi = intent(
        ["a", "b"]
            .into_iter()
            .map(|t| {
                (
                    ck(t, "c1"),
                    vec![gateway("default", "gw", vec![listener("http", 80)])],
                    vec![simple_route(
                        "default",
                        "r",
                        vec![parent("default", "gw")],
                        &[],
                    )],
                )
            })
            .collect(),
    );
    let c = compile_own(&fi, &pools(&["192.0.2.50"], None));
    assert_eq!(own_listener(&c, "own/http/192.0.2.50:80").bind.port(), 80);
    let a = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert_eq!(a.addresses, vec!["192.0.2.50".to_string()]);
    let b = status(&c, &ck("b", "c1"), Kind::Gateway, "gw");
    assert!(b.addresses.is_empty());
    assert_eq!(
        listener_cond(b, "Accepted"),
        (false, "PortUnavailable".into())
    );
    assert_eq!(
        listener_cond(b, "Programmed"),
        (false, "PoolExhausted".into())
    );
    let msg = &cond(&b.listeners[0].conditions, "Accepted").message;
    assert!(msg.contains("ask the hub operator"), "{msg}");
    assert_eq!(cond(&b.conditions, "Accepted").reason, "ListenersNotValid");
    assert_eq!(
        cond(&b.conditions, "Programmed").reason,
        "AddressNotAssigned"
    );
    let r = status(&c, &ck("b", "c1"), Kind::HttpRoute, "r");
    assert_eq!(
        cond(&r.parents[0].conditions, "Accepted").reason,
        "NoMatchingParent"
    );
    // Tenant b's routes are nowhere.
    for l in &c.snapshot.listeners {
        assert!(!tenants(l).contains("b"), "{}", l.name);
    }

    // A pool without room for the listener's port: NoAddressPool when there is no pool at
    // all, and then the Gateway stays on the shared port as before (the pair is refused).
    let none = compile_own(&fi, &L4Config::default());
    assert_eq!(
        route_cond(&none, "r", "Accepted"),
        (false, "NoMatchingListenerHostname".into())
    );
    assert_eq!(none.snapshot.listeners.len(), dp().listeners.len());
}

#[test]
fn gateways_whose_listeners_all_have_hostnames_stay_on_the_shared_ports() {
    let gw = gateway(
        "default",
        "gw",
        vec![listener("http", 80).host("*.a.example")],
    );
    let r = simple_route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["app.a.example"],
    );
    let fi = one(vec![gw], vec![r]);
    assert!(crate::l4::wanted_ports(&fi).is_empty());
    let with_pools = compile_own(&fi, &pools(&["192.0.2.50"], None));
    let without = compile(&fi, &dp());
    assert_eq!(with_pools, without);
    assert!(vhost(&with_pools, 80, "app.a.example").is_some());
    let g = status(&with_pools, &ck("a", "c1"), Kind::Gateway, "gw");
    assert_eq!(g.addresses, vec!["192.0.2.10".to_string()]);
}

#[test]
fn listener_isolation_holds_on_an_own_address() {
    // `foo.a.example` belongs to the more specific listener; the hostname-less one takes the rest.
    let gw = gateway(
        "default",
        "gw",
        vec![
            listener("any", 80),
            listener("foo", 80).host("foo.a.example"),
        ],
    );
    let on = |s: &str| ParentRef {
        section_name: Some(s.into()),
        ..parent("default", "gw")
    };
    let fi = one(
        vec![gw],
        vec![
            simple_route("default", "wide", vec![on("any")], &[]),
            simple_route("default", "foo", vec![on("foo")], &[]),
        ],
    );
    let c = compile_own(&fi, &pools(&["192.0.2.50"], None));
    let l = own_listener(&c, "own/http/192.0.2.50:80");
    let by_domain: Vec<(&str, Vec<&str>)> = l
        .virtual_hosts
        .iter()
        .map(|v| (v.domains[0].as_str(), route_names(v)))
        .collect();
    assert_eq!(
        by_domain,
        vec![
            ("foo.a.example", vec!["t/a/c/c1/default/foo/r0/m0"]),
            ("*", vec!["t/a/c/c1/default/wide/r0/m0"]),
        ]
    );
}

fn cert() -> Certificate {
    Certificate {
        namespace: "default".into(),
        name: "tls".into(),
        cert_chain_pem: "CHAIN".into(),
        private_key_pem: PrivateKeyPem("KEY".into()),
        dns_names: vec!["*.a.example".into()],
        serial: "01".into(),
    }
}

fn https(name: &str, host: Option<&str>) -> Listener {
    let mut l = listener(name, 443).proto(Some(Protocol::Https), "HTTPS");
    l.hostname = host.map(str::to_string);
    l.tls = Some(ListenerTls {
        mode: TlsMode::Terminate,
        certificates: vec![cert()],
        problem: None,
        options: Vec::new(),
    });
    l
}

#[test]
fn https_without_hostname_gets_a_chain_without_server_names_on_the_own_address() {
    let gw = gateway(
        "default",
        "gw",
        vec![https("any", None), https("app", Some("app.a.example"))],
    );
    let fi = one(
        vec![gw],
        vec![
            simple_route("default", "r", vec![parent("default", "gw")], &[]),
            simple_route(
                "default",
                "app",
                vec![parent("default", "gw")],
                &["app.a.example"],
            ),
        ],
    );
    let c = compile_own(&fi, &pools(&["192.0.2.50"], None));
    let g = status(&c, &ck("a", "c1"), Kind::Gateway, "gw");
    assert_eq!(g.addresses, vec!["192.0.2.50".to_string()]);
    assert_eq!(
        c.snapshot.tls_listeners.len(),
        1,
        "{:?}",
        listener_names(&c)
    );
    let t = &c.snapshot.tls_listeners[0];
    assert_eq!(t.name, "own/https/192.0.2.50:443");
    assert_eq!(t.bind, "192.0.2.50:443".parse::<SocketAddr>().unwrap());
    let chains: Vec<(&str, &[String])> = t
        .chains
        .iter()
        .map(|ch| (ch.name.as_str(), ch.server_names.as_slice()))
        .collect();
    assert_eq!(
        chains,
        vec![
            ("own/https/192.0.2.50:443/default", &[][..]),
            (
                "own/https/192.0.2.50:443/sni/app.a.example",
                &["app.a.example".to_string()][..]
            ),
        ]
    );
    let TlsChainAction::Terminate { secrets, http } = &t.chains[0].action else {
        panic!("terminating chain expected")
    };
    assert_eq!(secrets, &vec!["t/a/c/c1/default/tls/secret".to_string()]);
    assert_eq!(http.virtual_hosts.last().unwrap().domains, vec!["*"]);
    assert_eq!(c.snapshot.secrets.len(), 1);
}

/// The upstream `HTTPRouteHTTPSListenerDetectMisdirectedRequests` shape on a Gateway's own
/// address: a listener without hostname, an exact one, a wildcard and an exact one under the
/// wildcard. A Host served by another chain gets 421; on the chain without server names a host
/// no listener names is 404 (or that chain's own route).
#[test]
fn misdirected_requests_get_421_on_own_address_https_chains() {
    let gw = gateway(
        "default",
        "gw",
        vec![
            https("https", None),
            https("second", Some("second.a.example")),
            https("wild", Some("*.w.a.example")),
            https("fourth", Some("fourth.w.a.example")),
        ],
    );
    let on = |section: &str| {
        vec![ParentRef {
            section_name: Some(section.into()),
            ..parent("default", "gw")
        }]
    };
    let r = |name: &str, section: &str, hosts: &[&str]| {
        route(
            "default",
            name,
            on(section),
            hosts,
            vec![rule(vec![prefix("/")], vec![backend(name, 1, &[])])],
        )
    };
    let fi = one(
        vec![gw],
        vec![
            r("r1", "https", &["first.a.example"]),
            r("r2", "second", &[]),
            r("r3", "wild", &[]),
            r("r4", "fourth", &[]),
        ],
    );
    let c = compile_own(&fi, &pools(&["192.0.2.50"], None));
    let t = &c.snapshot.tls_listeners[0];
    let chain = |sni: Option<&str>| {
        let ch = t
            .chains
            .iter()
            .find(|ch| ch.server_names.first().map(String::as_str) == sni)
            .unwrap_or_else(|| panic!("no chain {sni:?}"));
        let TlsChainAction::Terminate { http, .. } = &ch.action else {
            panic!("terminate expected")
        };
        http.virtual_hosts.clone()
    };
    let to = |r: &str| format!("t/a/c/c1/default/{r}/backend/80");
    // (SNI chain, Host, answer); `None`: the chain without server names (any other SNI).
    let cases: Vec<(Option<&str>, &str, String)> = vec![
        (None, "first.a.example", to("r1")),
        (None, "second.a.example", "421".into()),
        (None, "unknown.a.example", "404".into()),
        (None, "third.w.a.example", "421".into()),
        (Some("second.a.example"), "second.a.example", to("r2")),
        (Some("second.a.example"), "first.a.example", "421".into()),
        (Some("second.a.example"), "unknown.a.example", "421".into()),
        (Some("*.w.a.example"), "third.w.a.example", to("r3")),
        (Some("*.w.a.example"), "fifth.w.a.example", to("r3")),
        (Some("*.w.a.example"), "fourth.w.a.example", "421".into()),
        (Some("*.w.a.example"), "second.a.example", "421".into()),
        (Some("fourth.w.a.example"), "fourth.w.a.example", to("r4")),
        (
            Some("fourth.w.a.example"),
            "fifth.w.a.example",
            "421".into(),
        ),
    ];
    for (sni, host, want) in cases {
        assert_eq!(
            envoy_answer(&chain(sni), host),
            want,
            "SNI {sni:?}, Host {host}"
        );
    }
}

#[test]
fn http_listener_ports_are_allocated_like_tcp_ones() {
    let mut gw = gateway(
        "default",
        "gw",
        vec![listener("http", 80), https("https", None)],
    );
    gw.listeners
        .push(listener("db", 5432).proto(Some(Protocol::Tcp), "TCP"));
    let fi = one(vec![gw], vec![]);
    let wanted = crate::l4::wanted_ports(&fi);
    let ports: Vec<(u16, allocate::Owner)> =
        wanted.iter().map(|k| (k.port, k.service.owner)).collect();
    assert_eq!(
        ports,
        vec![
            (80, allocate::Owner::Gateway),
            (443, allocate::Owner::Gateway),
            (5432, allocate::Owner::Gateway)
        ]
    );
    // Exactly the listener's own port, all on one address: the second address has room for
    // everything, the first has 443 taken by a Service.
    let l4 = pools(&["192.0.2.50", "192.0.2.51"], None);
    let svc = allocate::PortKey {
        service: allocate::ServiceKey {
            owner: allocate::Owner::Service,
            cluster: ck("b", "c1"),
            namespace: "default".into(),
            name: "svc".into(),
        },
        port: 443,
        protocol: crate::model::L4Protocol::Tcp,
    };
    let first = allocate::allocate(
        &l4,
        &BTreeSet::new(),
        &Allocations::new(),
        &BTreeSet::from([svc.clone()]),
    );
    assert_eq!(first.allocations[&svc].to_string(), "192.0.2.50:443");
    let mut all = wanted.clone();
    all.insert(svc);
    let o = allocate::allocate(&l4, &BTreeSet::new(), &first.allocations, &all);
    for k in &wanted {
        assert_eq!(
            o.allocations[k],
            SocketAddr::new("192.0.2.51".parse().unwrap(), k.port)
        );
    }
    // Outside l4PortRange there is no address: PoolExhausted, never another port.
    let narrow = L4Config {
        port_range: Some(PortRange {
            from: 443,
            to: 9000,
        }),
        ..pools(&["192.0.2.50"], None)
    };
    let o = allocate::allocate(&narrow, &BTreeSet::new(), &Allocations::new(), &wanted);
    let failed: Vec<u16> = o.failures.keys().map(|k| k.port).collect();
    assert_eq!(failed, vec![80]);
}

/// The Envoy side (`fleetgate_hub_xds::resources`, unchanged: own-address listeners are ordinary
/// listener snapshots): the listener binds the allocation, its RDS holds only the Gateway's
/// virtual hosts, and an HTTPS listener without hostname is a chain without server names.
#[test]
fn envoy_listeners_bind_the_own_address_and_route_only_that_gateway() {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    use envoy_types::pb::envoy::config::listener::v3::{Listener as EnvoyListener, filter};
    use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, http_connection_manager::RouteSpecifier,
    };
    use fleetgate_hub_xds::resources::{self, LISTENER_TYPE, ROUTE_TYPE};
    use prost::Message;

    let fi = intent(vec![
        (
            ck("a", "c1"),
            vec![gateway(
                "default",
                "gw",
                vec![listener("http", 80), https("https", None)],
            )],
            vec![simple_route(
                "default",
                "r",
                vec![parent("default", "gw")],
                &[],
            )],
        ),
        (
            ck("b", "c1"),
            vec![gateway(
                "default",
                "gw",
                vec![listener("http", 80).host("app.b.example")],
            )],
            vec![simple_route(
                "default",
                "r",
                vec![parent("default", "gw")],
                &[],
            )],
        ),
    ]);
    let c = compile_own(&fi, &pools(&["192.0.2.50"], Some("127.0.0.9")));
    let res = resources::build(&c.snapshot);
    let listeners: BTreeMap<String, EnvoyListener> = res
        .of(LISTENER_TYPE)
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                EnvoyListener::decode(&*r.any.value).unwrap(),
            )
        })
        .collect();
    let routes: BTreeMap<String, RouteConfiguration> = res
        .of(ROUTE_TYPE)
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                RouteConfiguration::decode(&*r.any.value).unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = listeners.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "own/http/127.0.0.9:80",
            "own/https/127.0.0.9:443",
            "port/80",
            "port/8080"
        ]
    );
    let bound = |l: &EnvoyListener| {
        let Some(address::Address::SocketAddress(sa)) =
            l.address.as_ref().and_then(|a| a.address.as_ref())
        else {
            panic!("no socket address")
        };
        let Some(socket_address::PortSpecifier::PortValue(p)) = sa.port_specifier else {
            panic!("no port")
        };
        format!("{}:{p}", sa.address)
    };
    let rds = |l: &EnvoyListener, chain: usize| {
        let Some(filter::ConfigType::TypedConfig(any)) = l.filter_chains[chain]
            .filters
            .last()
            .unwrap()
            .config_type
            .clone()
        else {
            panic!("typed config expected")
        };
        let hcm = HttpConnectionManager::decode(&*any.value).unwrap();
        let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier else {
            panic!("RDS expected")
        };
        rds.route_config_name
    };
    let http = &listeners["own/http/127.0.0.9:80"];
    assert_eq!(bound(http), "127.0.0.9:80");
    let rc = &routes[&rds(http, 0)];
    let vhosts: Vec<(Vec<String>, Vec<String>)> = rc
        .virtual_hosts
        .iter()
        .map(|v| {
            (
                v.domains.clone(),
                v.routes.iter().map(|r| r.name.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        vhosts,
        vec![(
            vec!["*".to_string()],
            vec!["t/a/c/c1/default/r/r0/m0".to_string()]
        )]
    );
    // Tenant b's hostname stays on the shared port (its one table, or its per-hostname tables
    // when every hostname there is exact), never on a's address.
    let shared: Vec<_> = routes
        .iter()
        .filter(|(name, _)| *name == "port/80" || name.starts_with("port/80/routes/"))
        .flat_map(|(_, rc)| &rc.virtual_hosts)
        .collect();
    assert!(
        shared
            .iter()
            .any(|v| v.domains == vec!["app.b.example".to_string()])
    );
    assert!(
        !shared
            .iter()
            .flat_map(|v| &v.routes)
            .any(|r| r.name.starts_with("t/a/"))
    );
    let tls = &listeners["own/https/127.0.0.9:443"];
    assert_eq!(bound(tls), "127.0.0.9:443");
    assert_eq!(tls.filter_chains.len(), 1);
    let chain = &tls.filter_chains[0];
    assert!(
        chain
            .filter_chain_match
            .as_ref()
            .is_none_or(|m| m.server_names.is_empty()),
        "the default chain matches any SNI"
    );
    assert!(chain.transport_socket.is_some(), "TLS is terminated");
    let rc = &routes[&rds(tls, 0)];
    assert_eq!(rc.virtual_hosts.len(), 1);
    assert_eq!(rc.virtual_hosts[0].domains, vec!["*".to_string()]);
}
