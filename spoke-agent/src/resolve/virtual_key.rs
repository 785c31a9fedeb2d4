//! Resolve a VirtualKey's `spec.secretRef` into the SHA-256 of the key it holds. The key never
//! leaves this module: only its hash goes on, into `translate::virtual_key`.
//!
//! The key is read from the Secret of the VirtualKey's own namespace (data key `key` unless
//! `secretRef.key` says otherwise), as text: surrounding whitespace (a trailing newline from
//! `echo`) is trimmed and a leading `Bearer ` (any case) is stripped, the same normalisation the
//! AI gateway applies to what a client presents (`Authorization: Bearer <key>` or
//! `x-api-key: <key>`). A key must then be 1..=[`MAX_KEY_LEN`] visible ASCII characters, since a
//! client sends it in a header.
//!
//! Where it sits: inside step 2 (resolve), called by `translate::virtual_key`. Pure.

use ring::digest::{SHA256, digest};

use super::ai::unreadable_secret;
use super::{Index, Problem, Reason};
use crate::crd::virtual_key::{DEFAULT_KEY_SECRET_KEY, KeySecretRef};

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 4096;

/// The key as a client presents it: trimmed, a leading `Bearer ` (any case) stripped.
pub fn normalise(raw: &str) -> &str {
    let v = raw.trim();
    match v.get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => {
            let rest = &v[6..];
            if rest.starts_with(char::is_whitespace) {
                rest.trim()
            } else {
                v
            }
        }
        _ => v,
    }
}

/// SHA-256 of a normalised key.
pub fn sha256(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key.as_bytes()).as_ref());
    out
}

/// The hash of the key `r` names for a VirtualKey of `namespace`, or why there is none (the
/// message names the Secret and data key, never the key).
pub fn key_hash(namespace: &str, r: &KeySecretRef, index: &Index<'_>) -> Result<[u8; 32], Problem> {
    let not_found = |message: String| Problem {
        reason: Reason::BackendNotFound,
        message,
    };
    let name = r.name.as_str();
    if name.is_empty() {
        return Err(Problem {
            reason: Reason::UnsupportedValue,
            message: "spec.secretRef.name is empty; name the Secret holding the key".into(),
        });
    }
    let Some(secret) = index.ai_secrets.get(&(namespace, name)) else {
        return Err(not_found(unreadable_secret(
            "spec.secretRef",
            index.secret_access,
            namespace,
            name,
        )));
    };
    let data_key = r.key.as_deref().unwrap_or(DEFAULT_KEY_SECRET_KEY);
    let Some(value) = secret
        .data
        .as_ref()
        .and_then(|d| d.get(data_key))
        .map(|v| v.0.as_slice())
    else {
        return Err(not_found(format!(
            "Secret {namespace}/{name} has no key {data_key}; put the virtual key under {data_key}{}",
            if r.key.is_none() {
                " or name the data key holding it in spec.secretRef.key"
            } else {
                ""
            }
        )));
    };
    let Ok(text) = std::str::from_utf8(value) else {
        return Err(not_found(format!(
            "key {data_key} of Secret {namespace}/{name} is not text; store the virtual key as text"
        )));
    };
    let key = normalise(text);
    if key.is_empty() {
        return Err(not_found(format!(
            "key {data_key} of Secret {namespace}/{name} is empty; store the virtual key there"
        )));
    }
    if key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Problem {
            reason: Reason::UnsupportedValue,
            message: format!(
                "key {data_key} of Secret {namespace}/{name} is longer than {MAX_KEY_LEN} bytes or holds spaces, control or non-ASCII characters, which a client cannot send in a header; store a key of visible ASCII characters (the key is not shown)"
            ),
        });
    }
    Ok(sha256(key))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    use super::*;
    use crate::config::{EndpointMode, SecretAccess};
    use crate::state::ClusterState;
    use crate::test_support::meta;

    fn secret(ns: &str, name: &str, data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: meta(Some(ns), name),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn hex(h: [u8; 32]) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn keys_are_normalised_like_the_gateway_reads_them() {
        for (raw, want) in [
            ("vk-alice", "vk-alice"),
            ("vk-alice\n", "vk-alice"),
            ("  vk-alice \r\n", "vk-alice"),
            ("Bearer vk-alice", "vk-alice"),
            ("bearer   vk-alice\n", "vk-alice"),
            ("BEARER\tvk-alice", "vk-alice"),
            ("Bearervk-alice", "Bearervk-alice"),
            ("Bearer", "Bearer"),
            ("", ""),
        ] {
            assert_eq!(normalise(raw), want, "{raw:?}");
        }
        // The well-known SHA-256 of "abc".
        assert_eq!(
            hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn key_hash_table() {
        let state = ClusterState {
            ai_secrets: vec![
                secret("team", "alice-key", &[("key", b"vk-alice\n")]),
                secret("team", "named", &[("token", b"Bearer vk-alice")]),
                secret("team", "empty", &[("key", b" \n")]),
                secret("team", "binary", &[("key", &[0xff, 0xfe])]),
                secret("team", "spaces", &[("key", b"two words")]),
                secret("other", "theirs", &[("key", b"vk-other")]),
            ],
            ..Default::default()
        };
        let index = Index::new(&state, EndpointMode::Node);
        let r = |name: &str, key: Option<&str>| KeySecretRef {
            name: name.into(),
            key: key.map(String::from),
        };
        let alice = sha256("vk-alice");
        assert_eq!(key_hash("team", &r("alice-key", None), &index), Ok(alice));
        assert_eq!(
            key_hash("team", &r("named", Some("token")), &index),
            Ok(alice)
        );
        let cases: &[(&str, KeySecretRef, Reason, &str)] = &[
            (
                "team",
                r("missing", None),
                Reason::BackendNotFound,
                "spec.secretRef names Secret team/missing, which does not exist; create it",
            ),
            // Another namespace's Secret is never read: a key names Secrets of its own.
            (
                "team",
                r("theirs", None),
                Reason::BackendNotFound,
                "Secret team/theirs, which does not exist",
            ),
            (
                "team",
                r("named", None),
                Reason::BackendNotFound,
                "has no key key; put the virtual key under key or name the data key",
            ),
            (
                "team",
                r("empty", None),
                Reason::BackendNotFound,
                "is empty",
            ),
            (
                "team",
                r("binary", None),
                Reason::BackendNotFound,
                "not text",
            ),
            (
                "team",
                r("spaces", None),
                Reason::UnsupportedValue,
                "cannot send in a header",
            ),
            (
                "team",
                r("", None),
                Reason::UnsupportedValue,
                "name is empty",
            ),
        ];
        for (ns, r, reason, want) in cases {
            let p = key_hash(ns, r, &index).unwrap_err();
            assert_eq!(p.reason, *reason, "{}", r.name);
            assert!(p.message.contains(want), "{}: {}", r.name, p.message);
            assert!(!p.message.contains("vk-"), "never the key: {}", p.message);
        }
        // A mode that may not read the namespace says what to change.
        let narrowed = ClusterState {
            secret_access: SecretAccess::Namespaces(vec!["default".into()]),
            ..Default::default()
        };
        let index = Index::new(&narrowed, EndpointMode::Node);
        let p = key_hash("team", &r("alice-key", None), &index).unwrap_err();
        assert!(p.message.contains("add team to --secrets"), "{}", p.message);
    }
}
