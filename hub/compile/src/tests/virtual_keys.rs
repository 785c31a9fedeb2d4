//! Table tests of VirtualKeys (`crate::virtual_keys`): the routes a key opens, its status, the
//! refusals that need the other objects (passthrough backends, the same key twice in a tenant),
//! isolation between namespaces, clusters and tenants, and routes failing closed.

use super::*;
use crate::model::ai::{
    AiAuth, AiBackend, AiBudget, AiProvider, AiTarget, AiTargets, AiUpstream, ProviderKey,
    VirtualKeyIntent,
};

fn backend(ns: &str, name: &str, auth: AiAuth) -> AiBackend {
    AiBackend {
        model_aliases: Default::default(),
        meta: meta(ns, name),
        target: Ok(AiTargets::Provider(AiTarget {
            provider: AiProvider::OpenAi { model: None },
            host: "llm.example".into(),
            port: 443,
            path: None,
            path_prefix: None,
            upstream: AiUpstream::External,
            auth,
        })),
    }
}

fn keyed() -> AiAuth {
    AiAuth::Key(ProviderKey("sk-provider".into()))
}

fn vkey(ns: &str, name: &str, hash: u8, backends: &[&str], created: &str) -> VirtualKeyIntent {
    VirtualKeyIntent {
        meta: Meta {
            creation_timestamp: created.into(),
            ..meta(ns, name)
        },
        sha256: Ok([hash; 32]),
        backends: backends.iter().map(|b| b.to_string()).collect(),
        budget: None,
    }
}

fn cluster(backends: Vec<AiBackend>, keys: Vec<VirtualKeyIntent>) -> ClusterIntent {
    ClusterIntent {
        ai_backends: backends
            .into_iter()
            .map(|b| ((b.meta.namespace.clone(), b.meta.name.clone()), b))
            .collect(),
        virtual_keys: keys
            .into_iter()
            .map(|k| ((k.meta.namespace.clone(), k.meta.name.clone()), k))
            .collect(),
        ..Default::default()
    }
}

fn dp_ai() -> DataPlane {
    DataPlane {
        ai_gateways: vec!["127.0.0.1:18090".parse().unwrap()],
        ..dp()
    }
}

/// The conditions of VirtualKey `ns/name` of cluster `c`, as (type, status, reason).
fn conds(c: &Compiled, k: &ClusterKey, ns: &str, name: &str) -> Vec<(String, bool, String)> {
    c.statuses[k]
        .iter()
        .find(|s| s.key.kind == Kind::VirtualKey && s.key.namespace == ns && s.key.name == name)
        .unwrap_or_else(|| panic!("no status for {ns}/{name}"))
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status, c.reason.clone()))
        .collect()
}

fn message(c: &Compiled, k: &ClusterKey, name: &str, type_: &str) -> String {
    c.statuses[k]
        .iter()
        .find(|s| s.key.kind == Kind::VirtualKey && s.key.name == name)
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn ok(reason_refs: &str, refs: bool) -> Vec<(String, bool, String)> {
    vec![
        ("Accepted".into(), true, "Accepted".into()),
        ("ResolvedRefs".into(), refs, reason_refs.into()),
    ]
}

#[test]
fn a_key_opens_the_routes_of_its_backends_and_says_which_are_missing() {
    let mut alice = vkey(
        "team",
        "alice",
        1,
        &["local-llm", "gone"],
        "2026-01-01T00:00:00Z",
    );
    alice.budget = Some(AiBudget {
        requests: Some(10),
        tokens: None,
        window_seconds: 60,
    });
    let bob = vkey("team", "bob", 2, &["local-llm"], "2026-01-01T00:00:00Z");
    let fi: FleetIntent = [(
        ck("a", "c1"),
        cluster(
            vec![
                backend("team", "local-llm", keyed()),
                backend("team", "open", keyed()),
            ],
            vec![alice, bob],
        ),
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp_ai());
    let t = &c.snapshot.ai.tenants["a"];
    let a = &t.virtual_keys["c1/team/alice"];
    assert_eq!(a.sha256, [1; 32]);
    assert_eq!(a.routes, vec!["c1/team/local-llm"]);
    assert_eq!(a.budget.unwrap().requests, Some(10));
    assert_eq!(a.source.object.kind, Kind::VirtualKey);
    assert_eq!(
        t.virtual_keys["c1/team/bob"].routes,
        vec!["c1/team/local-llm"]
    );
    // Both routes stay served: one guarded by keys, one open.
    assert!(t.routes.contains_key("c1/team/local-llm"));
    assert!(t.routes.contains_key("c1/team/open"));
    let k = ck("a", "c1");
    assert_eq!(conds(&c, &k, "team", "alice"), ok("BackendNotFound", false));
    let m = message(&c, &k, "alice", "ResolvedRefs");
    assert!(m.contains("gone") && m.contains("team"), "{m}");
    assert_eq!(conds(&c, &k, "team", "bob"), ok("ResolvedRefs", true));
}

#[test]
fn a_key_never_opens_another_namespaces_clusters_or_tenants_backend() {
    // The key in namespace `other` names `local-llm`, which exists only in `team`, in c1, and in
    // tenant b's cluster.
    let fi: FleetIntent = [
        (
            ck("a", "c1"),
            cluster(
                vec![backend("team", "local-llm", keyed())],
                vec![vkey("other", "k", 1, &["local-llm"], "t")],
            ),
        ),
        (
            ck("a", "c2"),
            cluster(vec![], vec![vkey("team", "k", 2, &["local-llm"], "t")]),
        ),
        (
            ck("b", "c9"),
            cluster(vec![backend("team", "local-llm", keyed())], vec![]),
        ),
    ]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp_ai());
    assert!(c.snapshot.ai.tenants["a"].virtual_keys.is_empty());
    assert!(c.snapshot.ai.tenants["b"].virtual_keys.is_empty());
    // The route named from another namespace or cluster keeps serving, without keys: neither
    // key names it (route ids carry cluster and namespace).
    assert!(
        c.snapshot.ai.tenants["a"]
            .routes
            .contains_key("c1/team/local-llm")
    );
    assert!(
        c.snapshot.ai.tenants["b"]
            .routes
            .contains_key("c9/team/local-llm")
    );
    assert_eq!(
        conds(&c, &ck("a", "c1"), "other", "k"),
        ok("BackendNotFound", false)
    );
    assert_eq!(
        conds(&c, &ck("a", "c2"), "team", "k"),
        ok("BackendNotFound", false)
    );
}

#[test]
fn a_key_to_a_passthrough_backend_is_refused_and_the_route_fails_closed() {
    let fi: FleetIntent = [(
        ck("a", "c1"),
        cluster(
            vec![
                backend("team", "pass", AiAuth::Passthrough),
                backend("team", "local-llm", keyed()),
            ],
            vec![vkey("team", "k", 1, &["pass", "local-llm"], "t")],
        ),
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp_ai());
    let k = ck("a", "c1");
    assert_eq!(
        conds(&c, &k, "team", "k")[0],
        ("Accepted".into(), false, "UnsupportedValue".into())
    );
    let m = message(&c, &k, "k", "Accepted");
    assert!(m.contains("pass") && m.contains("passthrough"), "{m}");
    let t = &c.snapshot.ai.tenants["a"];
    assert!(t.virtual_keys.is_empty());
    // Both routes the refused key names are withheld rather than served without a key.
    assert!(
        t.routes.is_empty(),
        "{:?}",
        t.routes.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_same_key_twice_in_a_tenant_refuses_the_later_one_whatever_the_order_of_clusters() {
    let first = vkey("team", "first", 5, &["local-llm"], "2026-01-01T00:00:00Z");
    let later = vkey("team", "later", 5, &["local-llm"], "2026-02-01T00:00:00Z");
    // `later` lives in the cluster that sorts first.
    let fi: FleetIntent = [
        (
            ck("a", "a-cluster"),
            cluster(vec![backend("team", "local-llm", keyed())], vec![later]),
        ),
        (
            ck("a", "b-cluster"),
            cluster(vec![backend("team", "local-llm", keyed())], vec![first]),
        ),
        // Another tenant may use the same key: tenants never see each other's keys.
        (
            ck("b", "c1"),
            cluster(
                vec![backend("team", "local-llm", keyed())],
                vec![vkey(
                    "team",
                    "same",
                    5,
                    &["local-llm"],
                    "2026-03-01T00:00:00Z",
                )],
            ),
        ),
    ]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp_ai());
    let t = &c.snapshot.ai.tenants["a"];
    assert_eq!(
        t.virtual_keys.keys().collect::<Vec<_>>(),
        vec!["b-cluster/team/first"]
    );
    let k = ck("a", "a-cluster");
    assert_eq!(
        conds(&c, &k, "team", "later")[0],
        ("Accepted".into(), false, "Conflicted".into())
    );
    let m = message(&c, &k, "later", "Accepted");
    assert!(m.contains("b-cluster/team/first"), "{m}");
    // later's route is not guarded by an accepted key: withheld.
    assert!(!t.routes.contains_key("a-cluster/team/local-llm"));
    assert!(t.routes.contains_key("b-cluster/team/local-llm"));
    assert_eq!(c.snapshot.ai.tenants["b"].virtual_keys.len(), 1);
    // Deterministic: compiling again gives the same.
    assert_eq!(compile(&fi, &dp_ai()), c);
}

#[test]
fn an_unresolved_key_reports_resolved_refs_false_and_its_route_fails_closed() {
    let mut missing = vkey("team", "k", 1, &["local-llm"], "t");
    missing.sha256 = Err(BackendProblem {
        reason: "BackendNotFound".into(),
        message: "spec.secretRef names Secret team/alice-key, which does not exist; create it"
            .into(),
    });
    let mut bad_budget = vkey("team", "b", 2, &["open"], "t");
    bad_budget.sha256 = Err(BackendProblem {
        reason: "UnsupportedValue".into(),
        message: "spec.budget.window \"5s\" is not a duration of 1m to 31d".into(),
    });
    let fi: FleetIntent = [(
        ck("a", "c1"),
        cluster(
            vec![
                backend("team", "local-llm", keyed()),
                backend("team", "open", keyed()),
                backend("team", "third", keyed()),
            ],
            vec![missing, bad_budget],
        ),
    )]
    .map(|(k, ci)| (k, std::sync::Arc::new(ci)))
    .into();
    let c = compile(&fi, &dp_ai());
    let k = ck("a", "c1");
    assert_eq!(conds(&c, &k, "team", "k"), ok("BackendNotFound", false));
    // A problem with the spec itself is Accepted=False, its references fine.
    assert_eq!(
        conds(&c, &k, "team", "b"),
        vec![
            ("Accepted".into(), false, "UnsupportedValue".into()),
            ("ResolvedRefs".into(), true, "ResolvedRefs".into()),
        ]
    );
    assert!(message(&c, &k, "b", "Accepted").contains("spec.budget.window"));
    assert!(message(&c, &k, "k", "ResolvedRefs").contains("alice-key"));
    let t = &c.snapshot.ai.tenants["a"];
    assert!(t.virtual_keys.is_empty());
    assert_eq!(t.routes.keys().collect::<Vec<_>>(), vec!["c1/team/third"]);
}
