//! The compiler's memo (`compile::memo`): a compile that reuses kept cluster parts must equal a
//! fresh compile of the same intent, whatever changed since the memo's last compile; and it
//! rebuilds only the parts whose inputs changed, including the inputs that come from other
//! clusters (listener conflicts, HTTPRoute/GRPCRoute hostname winners).

use super::*;

/// Compiles each step with one memo kept across steps and compares it with a fresh compile;
/// returns how many cluster parts each step built.
fn built_per_step(dp: &DataPlane, steps: &[FleetIntent]) -> Vec<usize> {
    let mut memo = Memo::default();
    steps
        .iter()
        .enumerate()
        .map(|(i, fi)| {
            let incremental = memo.compile(fi, dp);
            assert_eq!(incremental, compile(fi, dp), "step {i}");
            memo.last_built()
        })
        .collect()
}

fn created(mut m: Meta, at: &str) -> Meta {
    m.creation_timestamp = at.into();
    m
}

fn web() -> Gateway {
    gateway(
        "default",
        "gw",
        vec![listener("web", 80).host("*.a.example")],
    )
}

#[test]
fn one_changed_cluster_is_recompiled_alone_and_merged_hosts_follow() {
    let shop = |path: &str| {
        route(
            "default",
            "shop",
            vec![parent("default", "gw")],
            &["shop.a.example"],
            vec![rule(
                vec![prefix(path)],
                vec![backend("svc", 1, &["127.0.1.1:8080"])],
            )],
        )
    };
    let b_gw = gateway(
        "default",
        "gw",
        vec![listener("web", 80).host("*.b.example")],
    );
    let b_route = |host: &str| simple_route("default", "r", vec![parent("default", "gw")], &[host]);
    let fleet = |c1_path: &str, with_c2: bool, b_host: &str| {
        let mut clusters = vec![(ck("a", "c1"), vec![web()], vec![shop(c1_path)])];
        if with_c2 {
            // The same hostname and match from a second cluster: merged into one route.
            clusters.push((ck("a", "c2"), vec![web()], vec![shop("/")]));
        }
        clusters.push((ck("b", "c1"), vec![b_gw.clone()], vec![b_route(b_host)]));
        intent(clusters)
    };
    let steps = [
        fleet("/", true, "x.b.example"),
        fleet("/", true, "y.b.example"),
        fleet("/v2", true, "y.b.example"),
        fleet("/v2", false, "y.b.example"),
        fleet("/v2", true, "y.b.example"),
        fleet("/v2", true, "y.b.example"),
        fleet("/", true, "y.b.example"),
    ];
    assert_eq!(built_per_step(&dp(), &steps), vec![3, 1, 1, 0, 1, 0, 1]);

    // The merged host really is one route with both clusters' backends at the last step.
    let c = compile(&steps[6], &dp());
    let vh = vhost(&c, 80, "shop.a.example").expect("shop served");
    assert_eq!(vh.routes.len(), 1);
    let RouteAction::Forward(fw) = &vh.routes[0].action else {
        panic!("forwarding route expected: {:?}", vh.routes[0].action)
    };
    assert_eq!(fw.clusters.len(), 2);
}

#[test]
fn a_grpc_route_becoming_older_rebuilds_the_http_route_of_another_cluster() {
    let grpc = |at: &str| {
        grpc_route(
            "g",
            at,
            &["h.a.example"],
            vec![grpc_rule(
                vec![grpc_match(Some("pkg.Svc"), None, false, 0)],
                vec![backend("grpc", 1, &["127.0.1.2:9000"])],
            )],
        )
    };
    let mut http = simple_route(
        "default",
        "r",
        vec![parent("default", "gw")],
        &["h.a.example"],
    );
    http.meta = created(http.meta, "2026-01-02T00:00:00Z");
    let fleet = |grpc_at: &str| {
        let mut fi = intent(vec![
            (ck("a", "c1"), vec![web()], vec![]),
            (ck("a", "c2"), vec![web()], vec![http.clone()]),
        ]);
        let g = grpc(grpc_at);
        std::sync::Arc::make_mut(fi.get_mut(&ck("a", "c1")).unwrap())
            .grpc_routes
            .insert((g.meta.namespace.clone(), g.meta.name.clone()), g);
        fi
    };
    let steps = [fleet("2026-01-03T00:00:00Z"), fleet("2026-01-01T00:00:00Z")];
    // Step 2 changes c1 only, but c2's HTTPRoute now loses the hostname: c2 is rebuilt too.
    assert_eq!(built_per_step(&dp(), &steps), vec![2, 2]);
    let accepted = |fi: &FleetIntent| {
        let c = compile(fi, &dp());
        let s = status(&c, &ck("a", "c2"), Kind::HttpRoute, "r");
        let a = cond(&s.parents[0].conditions, "Accepted");
        (a.status, a.reason.clone())
    };
    assert_eq!(accepted(&steps[0]), (true, "Accepted".into()));
    assert_eq!(accepted(&steps[1]), (false, grpc::CONFLICTED.into()));
}

#[test]
fn an_older_gateway_leaving_rebuilds_the_conflicted_listener_of_another_cluster() {
    use model::TlsMode::{Passthrough, Terminate};
    let new = gateway(
        "default",
        "new",
        vec![tls_listener("pass", Passthrough, "s.a.example")],
    );
    let mut old = gateway(
        "default",
        "old",
        vec![tls_listener("term", Terminate, "s.a.example")],
    );
    old.meta = created(old.meta, "2025-01-01T00:00:00Z");
    let fleet = |with_old: bool| {
        intent(vec![
            (ck("a", "c1"), vec![new.clone()], vec![]),
            (
                ck("a", "c2"),
                if with_old { vec![old.clone()] } else { vec![] },
                vec![],
            ),
        ])
    };
    let steps = [fleet(true), fleet(false), fleet(true)];
    assert_eq!(built_per_step(&dp_tls(), &steps), vec![2, 2, 2]);
    let conflicted =
        |fi: &FleetIntent| listener_states(&compile(fi, &dp_tls()), &ck("a", "c1"), "new")[0].1;
    assert!(conflicted(&steps[0]));
    assert!(!conflicted(&steps[1]));
}

#[test]
fn a_changed_data_plane_rebuilds_everything() {
    let fi = intent(vec![
        (
            ck("a", "c1"),
            vec![web()],
            vec![simple_route(
                "default",
                "r",
                vec![parent("default", "gw")],
                &["r.a.example"],
            )],
        ),
        (ck("a", "c2"), vec![web()], vec![]),
    ]);
    let mut memo = Memo::default();
    assert_eq!(memo.compile(&fi, &dp()), compile(&fi, &dp()));
    assert_eq!(memo.compile(&fi, &dp()), compile(&fi, &dp()));
    assert_eq!(memo.last_built(), 0);
    let mut other = dp();
    other.listeners.retain(|l| l.port != 80);
    assert_eq!(memo.compile(&fi, &other), compile(&fi, &other));
    assert_eq!(memo.last_built(), 2);
}

/// A fixed pseudo-random walk over a fleet of 3 tenants x 2 clusters: every step changes one
/// thing (a path, a hostname shared with the tenant's other cluster, a GRPCRoute, a deleted
/// route, a Gateway listener's hostname, a whole cluster) and the memo's compile must equal a
/// fresh one at every step.
#[test]
fn random_walk_of_changes_compiles_like_a_fresh_compile() {
    let tenants = ["a", "b", "c"];
    let mut fi: FleetIntent = BTreeMap::new();
    for t in tenants {
        for c in ["c1", "c2"] {
            let gw = gateway(
                "default",
                "gw",
                vec![listener("web", 80).host(&format!("*.{t}.example"))],
            );
            let routes = (0..3)
                .map(|r| {
                    simple_route(
                        "default",
                        &format!("r{r}"),
                        vec![parent("default", "gw")],
                        &[&format!("r{r}.{c}.{t}.example")],
                    )
                })
                .collect();
            fi.extend(intent(vec![(ck(t, c), vec![gw], routes)]));
        }
    }
    let mut memo = Memo::default();
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut rebuilt_some_not_all = false;
    for step in 0..200 {
        let t = tenants[next(3) as usize];
        let c = ["c1", "c2"][next(2) as usize];
        let key = ck(t, c);
        let r = format!("r{}", next(3));
        let what = next(7);
        let ci = std::sync::Arc::make_mut(fi.entry(key.clone()).or_default());
        match what {
            0 => {
                let route = route(
                    "default",
                    &r,
                    vec![parent("default", "gw")],
                    &[&format!("{r}.{c}.{t}.example")],
                    vec![rule(
                        vec![prefix(&format!("/s{step}"))],
                        vec![backend("svc", 1, &["127.0.1.1:8080"])],
                    )],
                );
                ci.http_routes.insert(("default".into(), r), route);
            }
            1 => {
                // The hostname of the tenant's other cluster: merged with it.
                let route = simple_route(
                    "default",
                    &r,
                    vec![parent("default", "gw")],
                    &[&format!("shared.{t}.example")],
                );
                ci.http_routes.insert(("default".into(), r), route);
            }
            2 => {
                let g = grpc_route(
                    &r,
                    &format!("2026-01-{:02}T00:00:00Z", 1 + next(28)),
                    &[&format!("shared.{t}.example")],
                    vec![grpc_rule(
                        vec![grpc_match(Some("pkg.Svc"), None, false, 0)],
                        vec![backend("grpc", 1, &["127.0.1.2:9000"])],
                    )],
                );
                ci.grpc_routes.insert(("default".into(), r), g);
            }
            3 => {
                ci.http_routes.remove(&("default".to_string(), r.clone()));
                ci.grpc_routes.remove(&("default".to_string(), r));
            }
            4 => {
                let host = if next(2) == 0 {
                    format!("*.{t}.example")
                } else {
                    format!("shared.{t}.example")
                };
                ci.gateways.insert(
                    ("default".into(), "gw".into()),
                    gateway("default", "gw", vec![listener("web", 80).host(&host)]),
                );
            }
            5 => {
                fi.remove(&key);
            }
            _ => {
                // A Gateway with a conflicting second listener, or back to one.
                let listeners = if next(2) == 0 {
                    vec![listener("web", 80).host(&format!("*.{t}.example"))]
                } else {
                    vec![
                        listener("web", 80).host(&format!("*.{t}.example")),
                        listener("dup", 80).host(&format!("*.{t}.example")),
                    ]
                };
                ci.gateways.insert(
                    ("default".into(), "gw".into()),
                    gateway("default", "gw", listeners),
                );
            }
        }
        let incremental = memo.compile(&fi, &dp());
        assert_eq!(
            incremental,
            compile(&fi, &dp()),
            "step {step}: change {what} in {key}"
        );
        let built = memo.last_built();
        rebuilt_some_not_all |= built > 0 && built < fi.len();
    }
    assert!(rebuilt_some_not_all, "the walk never reused a part");
}

#[test]
fn revisions_skip_the_comparison_and_a_new_revision_is_compared_by_value() {
    let fleet = |path: &str| {
        intent(vec![
            (
                ck("a", "c1"),
                vec![web()],
                vec![route(
                    "default",
                    "r",
                    vec![parent("default", "gw")],
                    &["r.a.example"],
                    vec![rule(
                        vec![prefix(path)],
                        vec![backend("svc", 1, &["127.0.1.1:8080"])],
                    )],
                )],
            ),
            (ck("a", "c2"), vec![web()], vec![]),
        ])
    };
    let revs = |c1: u64| Revisions::from([(ck("a", "c1"), c1), (ck("a", "c2"), 7)]);
    let mut memo = Memo::default();
    let mut step = |fi: &FleetIntent, r: &Revisions| {
        assert_eq!(memo.compile_revised(fi, r, &dp()), compile(fi, &dp()));
        memo.last_built()
    };
    assert_eq!(step(&fleet("/a"), &revs(1)), 2);
    // Same revisions: nothing rebuilt.
    assert_eq!(step(&fleet("/a"), &revs(1)), 0);
    // A new revision with equal intent (an agent resending its state): compared, reused.
    assert_eq!(step(&fleet("/a"), &revs(2)), 0);
    // A new revision with changed intent: rebuilt.
    assert_eq!(step(&fleet("/b"), &revs(3)), 1);
    // No revision at all: compared by value.
    assert_eq!(step(&fleet("/c"), &Revisions::new()), 1);
}
