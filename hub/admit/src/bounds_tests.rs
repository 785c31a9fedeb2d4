//! Every count bound admission enforces, at its limit and one past it: the Gateway API schema
//! sizes (listeners, parentRefs, hostnames, rules, matches, header and query matches, backendRefs,
//! filters, allowedRoutes kinds, certificateRefs, CORS lists), the Service port count and
//! `limits.maxEndpointsPerBackend`. At the limit the object is admitted; one past it, it is
//! rejected with the reason and a message that names the limit. The limits are written out (not
//! taken from the constants), so raising one past the schema's value fails here too.

use super::test_support::Fixture;
use super::*;

fn object(kind: pb::Kind, spec: pb::object::Spec) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: kind as i32,
            namespace: "default".into(),
            name: "bounded".into(),
        }),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(spec),
    }
}

fn parent(i: usize) -> pb::ParentRef {
    pb::ParentRef {
        namespace: "default".into(),
        name: format!("gw-{i}"),
        ..Default::default()
    }
}

fn hostname(i: usize) -> String {
    format!("h{i}.a.example")
}

fn backend(i: usize) -> pb::Backend {
    pb::Backend {
        namespace: "default".into(),
        name: format!("svc-{i}"),
        port: 80,
        weight: 1,
        ..Default::default()
    }
}

fn endpoints(n: usize) -> Vec<pb::Endpoint> {
    (0..n)
        .map(|i| pb::Endpoint {
            address: format!("10.1.{}.{}", i / 250, 1 + i % 250),
            port: 30080,
            ready: true,
        })
        .collect()
}

fn mirror(i: usize) -> pb::HttpFilter {
    pb::HttpFilter {
        kind: Some(pb::http_filter::Kind::RequestMirror(pb::RequestMirror {
            backend: Some(backend(i)),
            ..Default::default()
        })),
    }
}

fn header_modifier() -> pb::HttpFilter {
    pb::HttpFilter {
        kind: Some(pb::http_filter::Kind::RequestHeaderModifier(
            pb::HeaderModifier::default(),
        )),
    }
}

fn header_match(i: usize) -> pb::HeaderMatch {
    pb::HeaderMatch {
        name: format!("x-h{i}"),
        value: "v".into(),
        ..Default::default()
    }
}

/// An HTTPRoute on one Gateway for `h0.a.example` with one rule, changed by `f`.
fn http_route(f: impl FnOnce(&mut pb::HttpRoute)) -> pb::Object {
    let mut h = pb::HttpRoute {
        parent_refs: vec![parent(0)],
        hostnames: vec![hostname(0)],
        rules: vec![pb::HttpRouteRule::default()],
    };
    f(&mut h);
    object(pb::Kind::HttpRoute, pb::object::Spec::HttpRoute(h))
}

fn http_rule(f: impl FnOnce(&mut pb::HttpRouteRule)) -> pb::Object {
    http_route(|h| f(&mut h.rules[0]))
}

fn grpc_route(f: impl FnOnce(&mut pb::GrpcRoute)) -> pb::Object {
    let mut g = pb::GrpcRoute {
        parent_refs: vec![parent(0)],
        hostnames: vec![hostname(0)],
        rules: vec![pb::GrpcRouteRule::default()],
    };
    f(&mut g);
    object(pb::Kind::GrpcRoute, pb::object::Spec::GrpcRoute(g))
}

fn grpc_rule(f: impl FnOnce(&mut pb::GrpcRouteRule)) -> pb::Object {
    grpc_route(|g| f(&mut g.rules[0]))
}

fn tls_route(f: impl FnOnce(&mut pb::TlsRoute)) -> pb::Object {
    let mut t = pb::TlsRoute {
        parent_refs: vec![parent(0)],
        hostnames: vec![hostname(0)],
        rules: vec![pb::TlsRouteRule {
            name: String::new(),
            backends: vec![backend(0)],
        }],
    };
    f(&mut t);
    object(pb::Kind::TlsRoute, pb::object::Spec::TlsRoute(t))
}

fn tcp_route(f: impl FnOnce(&mut pb::L4Route)) -> pb::Object {
    let mut r = pb::L4Route {
        parent_refs: vec![parent(0)],
        backends: vec![backend(0)],
    };
    f(&mut r);
    object(pb::Kind::TcpRoute, pb::object::Spec::L4Route(r))
}

fn listeners(n: usize) -> Vec<pb::Listener> {
    (0..n)
        .map(|i| pb::Listener {
            name: format!("l{i}"),
            protocol: "HTTP".into(),
            port: 8000 + i as u32,
            ..Default::default()
        })
        .collect()
}

fn gateway(f: impl FnOnce(&mut pb::Gateway)) -> pb::Object {
    let mut g = pb::Gateway {
        gateway_class_name: "fleetgate".into(),
        listeners: listeners(1),
        ..Default::default()
    };
    f(&mut g);
    object(pb::Kind::Gateway, pb::object::Spec::Gateway(g))
}

fn service(ports: Vec<pb::ServicePort>) -> pb::Object {
    object(
        pb::Kind::Service,
        pb::object::Spec::LoadBalancerService(pb::LoadBalancerService { ports }),
    )
}

fn service_port(port: u32, endpoint_count: usize) -> pb::ServicePort {
    pb::ServicePort {
        protocol: "TCP".into(),
        port,
        endpoints: endpoints(endpoint_count),
        ..Default::default()
    }
}

/// One bound: the object with `n` of the counted items.
struct Bound {
    what: &'static str,
    limit: usize,
    build: fn(usize) -> pb::Object,
    reason: &'static str,
    /// Words the rejection's message must contain (the limit, named).
    words: &'static str,
}

fn bounds() -> Vec<Bound> {
    vec![
        // HTTPRoute
        Bound {
            what: "HTTPRoute parentRefs",
            limit: 32,
            build: |n| http_route(|h| h.parent_refs = (0..n).map(parent).collect()),
            reason: "UnsupportedValue",
            words: "at most 32 parentRefs",
        },
        Bound {
            what: "HTTPRoute hostnames",
            limit: 16,
            build: |n| http_route(|h| h.hostnames = (0..n).map(hostname).collect()),
            reason: "UnsupportedValue",
            words: "at most 16 hostnames",
        },
        Bound {
            what: "HTTPRoute rules",
            limit: 16,
            build: |n| http_route(|h| h.rules = vec![pb::HttpRouteRule::default(); n]),
            reason: "UnsupportedValue",
            words: "at most 16 rules",
        },
        Bound {
            what: "HTTPRoute matches per rule",
            limit: 64,
            build: |n| {
                http_rule(|r| {
                    r.matches = (0..n)
                        .map(|i| pb::HttpRouteMatch {
                            path: Some(pb::PathMatch {
                                r#type: pb::path_match::Type::PathPrefix as i32,
                                value: format!("/p{i}"),
                            }),
                            ..Default::default()
                        })
                        .collect()
                })
            },
            reason: "UnsupportedValue",
            words: "at most 64 matches",
        },
        Bound {
            what: "HTTPRoute backendRefs per rule",
            limit: 16,
            build: |n| http_rule(|r| r.backends = (0..n).map(backend).collect()),
            reason: "UnsupportedValue",
            words: "16 backendRefs",
        },
        Bound {
            what: "HTTPRoute filters per rule",
            limit: 16,
            build: |n| http_rule(|r| r.filters = (0..n).map(mirror).collect()),
            reason: "UnsupportedValue",
            words: "16 filters",
        },
        Bound {
            what: "HTTPRoute header matches per match",
            limit: 16,
            build: |n| {
                http_rule(|r| {
                    r.matches = vec![pb::HttpRouteMatch {
                        headers: (0..n).map(header_match).collect(),
                        ..Default::default()
                    }]
                })
            },
            reason: "UnsupportedValue",
            words: "at most 16 header",
        },
        Bound {
            what: "HTTPRoute query parameter matches per match",
            limit: 16,
            build: |n| {
                http_rule(|r| {
                    r.matches = vec![pb::HttpRouteMatch {
                        query_params: (0..n)
                            .map(|i| pb::QueryParamMatch {
                                name: format!("q{i}"),
                                value: "v".into(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }]
                })
            },
            reason: "UnsupportedValue",
            words: "16 query parameter",
        },
        Bound {
            what: "HTTPRoute filters per backendRef",
            limit: 16,
            build: |n| {
                http_rule(|r| {
                    let mut b = backend(0);
                    b.filters = (0..n).map(|_| header_modifier()).collect();
                    r.backends = vec![b];
                })
            },
            reason: "UnsupportedValue",
            words: "at most 16 filters",
        },
        Bound {
            what: "HTTPRoute CORS allowMethods",
            limit: 64,
            build: |n| {
                http_rule(|r| {
                    r.filters = vec![pb::HttpFilter {
                        kind: Some(pb::http_filter::Kind::Cors(pb::Cors {
                            allow_methods: (0..n).map(|i| format!("M{i}")).collect(),
                            ..Default::default()
                        })),
                    }]
                })
            },
            reason: "UnsupportedValue",
            words: "at most 64 entries",
        },
        Bound {
            what: "maxEndpointsPerBackend (default 1000) on a backendRef",
            limit: 1000,
            build: |n| {
                http_rule(|r| {
                    let mut b = backend(0);
                    b.endpoints = endpoints(n);
                    r.backends = vec![b];
                })
            },
            reason: "UnsupportedValue",
            words: "1001 endpoints, the limit is 1000",
        },
        Bound {
            what: "maxEndpointsPerBackend (default 1000) on a RequestMirror backend",
            limit: 1000,
            build: |n| {
                http_rule(|r| {
                    let mut b = backend(0);
                    b.endpoints = endpoints(n);
                    r.filters = vec![pb::HttpFilter {
                        kind: Some(pb::http_filter::Kind::RequestMirror(pb::RequestMirror {
                            backend: Some(b),
                            ..Default::default()
                        })),
                    }];
                })
            },
            reason: "UnsupportedValue",
            words: "1001 endpoints, the limit is 1000",
        },
        // GRPCRoute
        Bound {
            what: "GRPCRoute parentRefs",
            limit: 32,
            build: |n| grpc_route(|g| g.parent_refs = (0..n).map(parent).collect()),
            reason: "UnsupportedValue",
            words: "32 parentRefs",
        },
        Bound {
            what: "GRPCRoute hostnames",
            limit: 16,
            build: |n| grpc_route(|g| g.hostnames = (0..n).map(hostname).collect()),
            reason: "UnsupportedValue",
            words: "16 hostnames",
        },
        Bound {
            what: "GRPCRoute rules",
            limit: 16,
            build: |n| grpc_route(|g| g.rules = vec![pb::GrpcRouteRule::default(); n]),
            reason: "UnsupportedValue",
            words: "16 rules",
        },
        Bound {
            what: "GRPCRoute matches per rule",
            limit: 64,
            build: |n| {
                grpc_rule(|r| {
                    r.matches = (0..n)
                        .map(|i| pb::GrpcRouteMatch {
                            method: Some(pb::GrpcMethodMatch {
                                r#type: pb::grpc_method_match::Type::Exact as i32,
                                service: format!("pkg.S{i}"),
                                method: String::new(),
                            }),
                            headers: vec![],
                        })
                        .collect()
                })
            },
            reason: "UnsupportedValue",
            words: "at most 64 matches",
        },
        Bound {
            what: "GRPCRoute backendRefs per rule",
            limit: 16,
            build: |n| grpc_rule(|r| r.backends = (0..n).map(backend).collect()),
            reason: "UnsupportedValue",
            words: "16 backendRefs",
        },
        Bound {
            what: "GRPCRoute filters per rule",
            limit: 16,
            build: |n| grpc_rule(|r| r.filters = (0..n).map(mirror).collect()),
            reason: "UnsupportedValue",
            words: "16 filters",
        },
        Bound {
            what: "GRPCRoute header matches per match",
            limit: 16,
            build: |n| {
                grpc_rule(|r| {
                    r.matches = vec![pb::GrpcRouteMatch {
                        method: None,
                        headers: (0..n).map(header_match).collect(),
                    }]
                })
            },
            reason: "UnsupportedValue",
            words: "at most 16 header matches",
        },
        // TLSRoute
        Bound {
            what: "TLSRoute parentRefs",
            limit: 32,
            build: |n| tls_route(|t| t.parent_refs = (0..n).map(parent).collect()),
            reason: "UnsupportedValue",
            words: "32 parentRefs",
        },
        Bound {
            what: "TLSRoute hostnames",
            limit: 16,
            build: |n| tls_route(|t| t.hostnames = (0..n).map(hostname).collect()),
            reason: "UnsupportedValue",
            words: "16 hostnames",
        },
        Bound {
            what: "TLSRoute rules",
            limit: 16,
            build: |n| {
                tls_route(|t| {
                    t.rules = (0..n)
                        .map(|i| pb::TlsRouteRule {
                            name: String::new(),
                            backends: vec![backend(i)],
                        })
                        .collect()
                })
            },
            reason: "UnsupportedValue",
            words: "16 rules",
        },
        Bound {
            what: "TLSRoute backendRefs per rule",
            limit: 16,
            build: |n| tls_route(|t| t.rules[0].backends = (0..n).map(backend).collect()),
            reason: "UnsupportedValue",
            words: "at most 16 backendRefs",
        },
        // TCPRoute / UDPRoute
        Bound {
            what: "TCPRoute parentRefs",
            limit: 32,
            build: |n| tcp_route(|r| r.parent_refs = (0..n).map(parent).collect()),
            reason: "UnsupportedValue",
            words: "at most 32 parentRefs",
        },
        Bound {
            what: "TCPRoute backendRefs",
            limit: 16,
            build: |n| tcp_route(|r| r.backends = (0..n).map(backend).collect()),
            reason: "UnsupportedValue",
            words: "at most 16 backendRefs",
        },
        // Gateway and ListenerSet
        Bound {
            what: "Gateway listeners",
            limit: 64,
            build: |n| gateway(|g| g.listeners = listeners(n)),
            reason: "ListenersNotValid",
            words: "1 to 64 listeners",
        },
        Bound {
            what: "ListenerSet listeners",
            limit: 64,
            build: |n| {
                object(
                    pb::Kind::ListenerSet,
                    pb::object::Spec::ListenerSet(pb::ListenerSet {
                        parent_namespace: "default".into(),
                        parent_name: "gw".into(),
                        listeners: listeners(n),
                    }),
                )
            },
            reason: "ListenersNotValid",
            words: "1 to 64 listeners",
        },
        Bound {
            what: "Gateway listener allowedRoutes.kinds",
            limit: 8,
            build: |n| {
                gateway(|g| {
                    g.listeners[0].allowed_routes = Some(pb::AllowedRoutes {
                        kinds: (0..n)
                            .map(|i| pb::RouteGroupKind {
                                group: "gateway.networking.k8s.io".into(),
                                kind: format!("Kind{i}"),
                            })
                            .collect(),
                        ..Default::default()
                    })
                })
            },
            reason: "ListenersNotValid",
            words: "at most 8 are allowed",
        },
        Bound {
            what: "Gateway listener certificateRefs",
            limit: 8,
            build: |n| {
                gateway(|g| {
                    g.listeners[0].protocol = "HTTPS".into();
                    g.listeners[0].tls = Some(pb::ListenerTls {
                        mode: String::new(),
                        // Unresolved refs: the count is checked before any material is.
                        certificates: (0..n)
                            .map(|i| pb::Certificate {
                                namespace: "default".into(),
                                name: format!("cert-{i}"),
                                problem: Some(pb::BackendProblem {
                                    reason: "InvalidCertificateRef".into(),
                                    message: "missing".into(),
                                }),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    });
                })
            },
            reason: "ListenersNotValid",
            words: "at most 8 certificateRefs",
        },
        // LoadBalancer Service
        Bound {
            what: "Service ports",
            limit: 64,
            build: |n| service((0..n).map(|i| service_port(1000 + i as u32, 0)).collect()),
            reason: "UnsupportedValue",
            words: "1 to 64 ports",
        },
        Bound {
            what: "maxEndpointsPerBackend (default 1000) on a Service port",
            limit: 1000,
            build: |n| service(vec![service_port(80, n)]),
            reason: "UnsupportedValue",
            words: "1001 endpoints, the limit is 1000",
        },
    ]
}

#[test]
fn every_count_bound_admits_its_limit_and_rejects_one_more_with_the_reason() {
    let f = Fixture::new();
    assert_eq!(
        f.limits.max_endpoints_per_backend, 1000,
        "docs/limits.md promises a default of 1000"
    );
    let mut failures = Vec::new();
    for b in bounds() {
        if let Err(e) = admit(&(b.build)(b.limit), &f.policy()) {
            failures.push(format!("{}: {} must be admitted: {e:?}", b.what, b.limit));
        }
        match admit(&(b.build)(b.limit + 1), &f.policy()) {
            Ok(_) => failures.push(format!("{}: {} must be rejected", b.what, b.limit + 1)),
            Err(e) if e.reason != b.reason || !e.message.contains(b.words) => {
                failures.push(format!(
                    "{}: {} must be rejected with {} saying {:?}, got {e:?}",
                    b.what,
                    b.limit + 1,
                    b.reason,
                    b.words
                ))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `maxEndpointsPerBackend` comes from the operator's config, not a constant.
#[test]
fn max_endpoints_per_backend_follows_the_configured_limit() {
    let mut f = Fixture::new();
    f.limits.max_endpoints_per_backend = 3;
    let with = |n: usize| {
        http_rule(|r| {
            let mut b = backend(0);
            b.endpoints = endpoints(n);
            r.backends = vec![b];
        })
    };
    assert!(admit(&with(3), &f.policy()).is_ok());
    let err = admit(&with(4), &f.policy()).unwrap_err();
    assert_eq!(err.reason, "UnsupportedValue");
    assert!(
        err.message.contains("4 endpoints, the limit is 3"),
        "{}",
        err.message
    );
}
