//! Table tests of the VirtualKey translation: the key becomes its SHA-256 and nothing else, the
//! backends and budget as written, and every problem (Secret missing, bad windows and measures)
//! named and sent instead of dropped.

use std::collections::BTreeMap;

use fleetgate_proto::spoke::v1::{self as pb, Kind, object};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use prost::Message;

use super::*;
use crate::config::EndpointMode;
use crate::resolve::virtual_key::sha256;
use crate::state::ClusterState;
use crate::test_support::meta;

const KEY: &str = "vk-alice-0123456789-only-alice-holds-this";

fn vkey(spec: &str) -> VirtualKey {
    let mut k: VirtualKey = serde_yaml::from_str(&format!(
        "apiVersion: fleetgate.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{name: alice}}\n{spec}"
    ))
    .expect("the key parses");
    k.metadata = meta(Some("team"), "alice");
    k
}

fn state(keys: Vec<VirtualKey>) -> ClusterState {
    ClusterState {
        ai_secrets: vec![Secret {
            metadata: meta(Some("team"), "alice-key"),
            data: Some(BTreeMap::from([(
                "key".to_string(),
                ByteString(format!("{KEY}\n").into_bytes()),
            )])),
            ..Default::default()
        }],
        virtual_keys: keys,
        ..Default::default()
    }
}

fn translate_one(spec: &str) -> (pb::Object, pb::VirtualKey) {
    let st = state(vec![vkey(spec)]);
    let index = Index::new(&st, EndpointMode::Node);
    let objects = virtual_key_objects(&st.virtual_keys, &index);
    assert_eq!(objects.len(), 1);
    let o = objects.into_iter().next().unwrap();
    match o.spec.clone() {
        Some(object::Spec::VirtualKey(k)) => (o, k),
        other => panic!("not a virtual key: {other:?}"),
    }
}

const ALICE: &str = r#"spec:
  secretRef: {name: alice-key}
  backends: [{name: local-llm}, {name: other-llm}]
  budget: {requests: 1000, tokens: 200000, window: 1h}
"#;

#[test]
fn the_key_is_sent_as_its_sha256_with_backends_and_budget() {
    let (o, k) = translate_one(ALICE);
    let r = o.r#ref.as_ref().unwrap();
    assert_eq!(r.kind, Kind::VirtualKey as i32);
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("team", "alice"));
    assert_eq!(
        k,
        pb::VirtualKey {
            sha256: sha256(KEY).to_vec(),
            backends: vec!["local-llm".into(), "other-llm".into()],
            budget: Some(pb::VirtualKeyBudget {
                requests: 1000,
                tokens: 200_000,
                window_seconds: 3600,
            }),
            problem: None,
        }
    );
    // The key itself is nowhere in what is sent, in Debug or on the wire.
    assert!(!format!("{o:?}").contains(KEY));
    let bytes = o.encode_to_vec();
    assert!(
        !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the key is on the wire"
    );
}

#[test]
fn problems_are_named_and_the_key_still_sent() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "missing Secret",
            "spec:\n  secretRef: {name: nope}\n  backends: [{name: local-llm}]\n",
            "spec.secretRef names Secret team/nope, which does not exist; create it",
        ),
        (
            "missing data key",
            "spec:\n  secretRef: {name: alice-key, key: token}\n  backends: [{name: local-llm}]\n",
            "Secret team/alice-key has no key token",
        ),
        (
            "window too short",
            "spec:\n  secretRef: {name: alice-key}\n  backends: [{name: b}]\n  budget: {requests: 1, window: 30s}\n",
            "spec.budget.window \"30s\" is not a duration of 1m to 31d",
        ),
        (
            "window too long",
            "spec:\n  secretRef: {name: alice-key}\n  backends: [{name: b}]\n  budget: {requests: 1, window: 32d}\n",
            "1m to 31d",
        ),
        (
            "requests 0",
            "spec:\n  secretRef: {name: alice-key}\n  backends: [{name: b}]\n  budget: {requests: 0, window: 1h}\n",
            "spec.budget.requests is 0; set it above 0",
        ),
        (
            "nothing limited",
            "spec:\n  secretRef: {name: alice-key}\n  backends: [{name: b}]\n  budget: {window: 1h}\n",
            "neither requests nor tokens",
        ),
    ];
    for (name, spec, want) in cases {
        let (_, k) = translate_one(spec);
        let p = k.problem.unwrap_or_else(|| panic!("{name}: no problem"));
        assert!(p.message.contains(want), "{name}: {}", p.message);
        assert!(k.sha256.is_empty(), "{name}");
        assert!(
            !k.backends.is_empty(),
            "{name}: the backends are still sent"
        );
    }
}

#[test]
fn windows_parse_like_go_durations_with_days() {
    for (s, want) in [
        ("1m", Some(60)),
        ("1h", Some(3600)),
        ("24h", Some(86_400)),
        ("90m", Some(5400)),
        ("1h30m", Some(5400)),
        ("7d", Some(604_800)),
        ("31d", Some(2_678_400)),
        ("744h", Some(2_678_400)),
        ("60s", Some(60)),
        ("59s", None),
        ("0m", None),
        ("31d1s", None),
        ("", None),
        ("1", None),
        ("h", None),
        ("1w", None),
        ("-1h", None),
        ("1.5h", None),
        ("99999999999999999999h", None),
    ] {
        assert_eq!(parse_window(s), want, "{s:?}");
    }
}
