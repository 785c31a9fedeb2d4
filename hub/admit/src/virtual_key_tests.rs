//! Table tests of VirtualKey admission (`super::virtual_key`), hostile input included: hashes of
//! the wrong size, names that try to leave the namespace, too many backends, budgets that limit
//! nothing or windows out of range, and a rejected key's status.

use fleetgate_proto::spoke::v1 as pb;

use super::test_support::Fixture;
use super::*;
use crate::model::ai::{AiBudget, VirtualKeyIntent};

fn key_object(k: pb::VirtualKey) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::VirtualKey as i32,
            namespace: "team".into(),
            name: "alice".into(),
        }),
        generation: 3,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::VirtualKey(k)),
    }
}

fn alice() -> pb::VirtualKey {
    pb::VirtualKey {
        sha256: vec![7; 32],
        backends: vec!["local-llm".into()],
        budget: Some(pb::VirtualKeyBudget {
            requests: 1000,
            tokens: 0,
            window_seconds: 3600,
        }),
        problem: None,
    }
}

fn admit_key(k: pb::VirtualKey) -> Result<VirtualKeyIntent, Rejection> {
    let f = Fixture::new();
    match admit(&key_object(k), &f.policy())? {
        Admitted::VirtualKey(k) => Ok(k),
        other => panic!("not a key: {other:?}"),
    }
}

#[test]
fn a_key_is_admitted_with_its_hash_backends_and_budget() {
    let mut k = alice();
    k.backends = vec!["local-llm".into(), "other".into(), "local-llm".into()];
    let got = admit_key(k).unwrap();
    assert_eq!(got.sha256, Ok([7; 32]));
    assert_eq!(
        got.backends,
        vec!["local-llm", "other"],
        "deduplicated, in order"
    );
    assert_eq!(
        got.budget,
        Some(AiBudget {
            requests: Some(1000),
            tokens: None,
            window_seconds: 3600
        })
    );
    assert_eq!(got.meta.namespace, "team");
    assert_eq!(got.meta.generation, 3);
}

#[test]
fn the_agents_problem_is_kept_and_hostile_keys_are_refused() {
    let mut unresolved = alice();
    unresolved.sha256 = vec![];
    unresolved.problem = Some(pb::BackendProblem {
        reason: "BackendNotFound".into(),
        message: "spec.secretRef names Secret team/alice-key, which does not exist; create it"
            .into(),
    });
    let got = admit_key(unresolved).unwrap();
    assert_eq!(got.sha256.unwrap_err().reason, "BackendNotFound");

    type Change = Box<dyn Fn(&mut pb::VirtualKey)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        ("short hash", Box::new(|k| k.sha256 = vec![1; 31]), "32"),
        ("long hash", Box::new(|k| k.sha256 = vec![1; 64]), "32"),
        ("no hash", Box::new(|k| k.sha256 = vec![]), "32"),
        ("no backends", Box::new(|k| k.backends.clear()), "1 to 16"),
        (
            "17 backends",
            Box::new(|k| k.backends = (0..17).map(|i| format!("b{i}")).collect()),
            "1 to 16",
        ),
        (
            "another namespace",
            Box::new(|k| k.backends = vec!["other-ns/local-llm".into()]),
            "own namespace",
        ),
        (
            "a path",
            Box::new(|k| k.backends = vec!["../local-llm".into()]),
            "not a valid Kubernetes name",
        ),
        (
            "empty name",
            Box::new(|k| k.backends = vec![String::new()]),
            "not a valid",
        ),
        (
            "window 0",
            Box::new(|k| k.budget.as_mut().unwrap().window_seconds = 0),
            "1m to 31d",
        ),
        (
            "window 59 s",
            Box::new(|k| k.budget.as_mut().unwrap().window_seconds = 59),
            "1m to 31d",
        ),
        (
            "window 32 days",
            Box::new(|k| k.budget.as_mut().unwrap().window_seconds = 32 * 86_400),
            "1m to 31d",
        ),
        (
            "a budget of nothing",
            Box::new(|k| k.budget.as_mut().unwrap().requests = 0),
            "limits nothing",
        ),
    ];
    for (name, change, want) in cases {
        let mut k = alice();
        change(&mut k);
        let e = admit_key(k).unwrap_err();
        assert_eq!(e.reason, "UnsupportedValue", "{name}");
        assert!(e.message.contains(want), "{name}: {}", e.message);
    }
    // The edges are allowed.
    for window in [60, 31 * 86_400] {
        let mut k = alice();
        k.budget.as_mut().unwrap().window_seconds = window;
        assert!(admit_key(k).is_ok(), "{window}");
    }
    let mut k = alice();
    k.backends = (0..16).map(|i| format!("b{i}")).collect();
    assert!(admit_key(k).is_ok());
}

#[test]
fn a_rejected_key_says_why_in_accepted_and_its_spec_must_match_its_kind() {
    let mut k = alice();
    k.sha256 = vec![0; 5];
    let obj = key_object(k);
    let f = Fixture::new();
    let e = admit(&obj, &f.policy()).unwrap_err();
    let key = object_key(obj.r#ref.as_ref().unwrap()).unwrap();
    assert_eq!(key.kind, Kind::VirtualKey);
    let s = rejected_status(&key, &obj, &e);
    assert_eq!(s.conditions[0].type_, "Accepted");
    assert!(!s.conditions[0].status);
    assert_eq!(s.conditions[1].type_, "ResolvedRefs");
    assert_eq!(s.observed_generation, 3);

    let mut wrong = key_object(alice());
    wrong.spec = Some(pb::object::Spec::AiBackend(Default::default()));
    assert!(admit(&wrong, &f.policy()).is_err());
}
