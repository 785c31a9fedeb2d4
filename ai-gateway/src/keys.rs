//! Keys: the virtual keys a tenant hands its own users (fleetgate.dev VirtualKey), checked after
//! the route is known (listen -> identify -> route -> **keys** -> limit -> budget -> provider).
//!
//! A route that no virtual key of its tenant names is open: `Ok(None)`, and the request goes on
//! as before. A route that some key names serves only requests presenting one of the keys that
//! open it, as `Authorization: Bearer <key>` or `x-api-key: <key>`: `Ok(Some(key))`, whose id
//! budgets are counted against. Anything else is 401 `invalid_api_key` (OpenAI's shape, or
//! Anthropic's `authentication_error` for a Messages API client), saying whether the key was
//! missing or is not valid for this route, never repeating what was presented.
//!
//! The configuration holds only SHA-256 hashes. A presented key is normalised like the agent
//! normalises the Secret's value (trimmed, a leading `Bearer ` stripped), hashed, looked up by
//! hash, and the hash found compared again in constant time. The key itself never goes further:
//! `auth` takes the client's `Authorization` and `x-api-key` off every upstream request and puts
//! the backend's own key on, and a key may not open a `passthrough` route (configuration
//! validation refuses it; the hub refuses such a VirtualKey first).
//!
//! Pure: no I/O; the tables are built once per configuration swap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::config::VirtualKeyConfig;
use crate::config::model::Budget;
use crate::errors::ApiError;

/// The header an Anthropic-style client presents its key in.
pub const X_API_KEY: &str = "x-api-key";
/// The most candidate keys one request may present (repeated headers); more are ignored.
const MAX_PRESENTED: usize = 4;

/// One tenant's virtual keys, by hash.
#[derive(Debug, Default)]
pub struct VirtualKeys {
    by_hash: HashMap<[u8; 32], Arc<Key>>,
    /// Routes some key names: those serve only requests with a key.
    guarded: HashSet<String>,
}

/// One virtual key.
#[derive(Debug)]
pub struct Key {
    /// `<cluster>/<namespace>/<name>` of the VirtualKey: what budgets count against.
    pub id: Arc<str>,
    sha256: [u8; 32],
    routes: HashSet<String>,
    /// The key's own budget, counted by the hub.
    pub budget: Option<Budget>,
}

/// A presented key as the agent normalises a Secret's value: trimmed, and a leading `Bearer `
/// (any case) stripped.
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

/// SHA-256 of a key.
pub fn sha256(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key.as_bytes()).as_ref());
    out
}

/// The keys a request presents: the token of each `Authorization: Bearer` and each
/// `x-api-key`, normalised, non-empty (at most [`MAX_PRESENTED`]).
pub fn presented(headers: &HeaderMap) -> Vec<&str> {
    let bearer = headers.get_all(AUTHORIZATION).iter().filter_map(|v| {
        let v = v.to_str().ok()?.trim();
        let scheme = v.get(..6)?;
        let rest = &v[6..];
        (scheme.eq_ignore_ascii_case("bearer") && rest.starts_with(char::is_whitespace))
            .then(|| rest.trim())
    });
    let api_key = headers
        .get_all(X_API_KEY)
        .iter()
        .filter_map(|v| v.to_str().ok().map(normalise));
    bearer
        .chain(api_key)
        .filter(|k| !k.is_empty())
        .take(MAX_PRESENTED)
        .collect()
}

impl VirtualKeys {
    /// The table of one tenant's validated keys.
    pub fn compile(keys: &BTreeMap<String, VirtualKeyConfig>) -> Self {
        let mut out = Self::default();
        for (id, k) in keys {
            out.guarded.extend(k.routes.iter().cloned());
            out.by_hash.insert(
                k.sha256,
                Arc::new(Key {
                    id: id.as_str().into(),
                    sha256: k.sha256,
                    routes: k.routes.iter().cloned().collect(),
                    budget: k.budget,
                }),
            );
        }
        out
    }

    /// Whether `route` serves only requests with a key.
    pub fn guards(&self, route: &str) -> bool {
        self.guarded.contains(route)
    }

    /// The key a request to `route` presents: `Ok(None)` on an open route, the key when one
    /// opens the route, else the 401 to answer.
    pub fn check(&self, headers: &HeaderMap, route: &str) -> Result<Option<Arc<Key>>, ApiError> {
        if !self.guards(route) {
            return Ok(None);
        }
        let presented = presented(headers);
        if presented.is_empty() {
            return Err(ApiError::missing_key(route));
        }
        for candidate in presented {
            let hash = sha256(candidate);
            if let Some(k) = self.by_hash.get(&hash)
                && bool::from(k.sha256.ct_eq(&hash))
                && k.routes.contains(route)
            {
                return Ok(Some(k.clone()));
            }
        }
        Err(ApiError::invalid_key(route))
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    const ALICE: &str = "vk-alice-0123456789abcdef";
    const BOB: &str = "vk-bob-fedcba9876543210";

    fn keys() -> VirtualKeys {
        let k = |key: &str, routes: &[&str]| VirtualKeyConfig {
            sha256: sha256(key),
            routes: routes.iter().map(|r| r.to_string()).collect(),
            budget: None,
        };
        VirtualKeys::compile(&BTreeMap::from([
            (
                "c1/team/alice".to_string(),
                k(ALICE, &["c1/team/chat", "c1/team/embed"]),
            ),
            ("c1/team/bob".to_string(), k(BOB, &["c1/team/embed"])),
        ]))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// The key id a check found, or the status and code it answered.
    type Verdict = Result<Option<String>, (u16, String)>;
    /// (case, headers, route, verdict).
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str, Verdict);

    fn id(r: Result<Option<Arc<Key>>, ApiError>) -> Verdict {
        r.map(|k| k.map(|k| k.id.to_string()))
            .map_err(|e| (e.status.as_u16(), e.code.to_string()))
    }

    #[test]
    fn a_route_opens_to_its_keys_only() {
        let t = keys();
        let bearer = |k: &str| format!("Bearer {k}");
        let alice = Ok(Some("c1/team/alice".to_string()));
        let bob = Ok(Some("c1/team/bob".to_string()));
        let denied = Err((401, "invalid_api_key".to_string()));
        let cases: Vec<Case<'_>> = vec![
            ("open route, no key", vec![], "c1/team/open", Ok(None)),
            (
                "open route, any key",
                vec![("authorization", bearer("whatever"))],
                "c1/team/open",
                Ok(None),
            ),
            (
                "bearer",
                vec![("authorization", bearer(ALICE))],
                "c1/team/chat",
                alice.clone(),
            ),
            (
                "bearer, lower case and spaces",
                vec![("authorization", format!("bearer   {ALICE} "))],
                "c1/team/chat",
                alice.clone(),
            ),
            (
                "x-api-key",
                vec![("x-api-key", ALICE.to_string())],
                "c1/team/chat",
                alice.clone(),
            ),
            (
                "x-api-key with Bearer",
                vec![("x-api-key", bearer(ALICE))],
                "c1/team/chat",
                alice.clone(),
            ),
            (
                "bob on his route",
                vec![("x-api-key", BOB.to_string())],
                "c1/team/embed",
                bob,
            ),
            (
                "bob elsewhere",
                vec![("x-api-key", BOB.to_string())],
                "c1/team/chat",
                denied.clone(),
            ),
            ("no key", vec![], "c1/team/chat", denied.clone()),
            (
                "wrong key",
                vec![("authorization", bearer("vk-guess"))],
                "c1/team/chat",
                denied.clone(),
            ),
            (
                "basic auth",
                vec![("authorization", format!("Basic {ALICE}"))],
                "c1/team/chat",
                denied.clone(),
            ),
            (
                "no scheme",
                vec![("authorization", ALICE.to_string())],
                "c1/team/chat",
                denied.clone(),
            ),
            (
                "empty bearer",
                vec![("authorization", "Bearer ".to_string())],
                "c1/team/chat",
                denied.clone(),
            ),
            (
                "prefix of the key",
                vec![("x-api-key", ALICE[..10].to_string())],
                "c1/team/chat",
                denied.clone(),
            ),
            (
                "a wrong then a right key",
                vec![
                    ("authorization", bearer("vk-guess")),
                    ("x-api-key", ALICE.to_string()),
                ],
                "c1/team/chat",
                alice,
            ),
        ];
        for (name, hs, route, want) in cases {
            let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let got = id(t.check(&headers(&hs), route));
            match (&got, &want) {
                (Err((s, c)), Err(_)) => {
                    assert_eq!((*s, c.as_str()), (401, "invalid_api_key"), "{name}")
                }
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn refusals_say_missing_or_invalid_and_never_repeat_the_key() {
        let t = keys();
        let missing = t.check(&HeaderMap::new(), "c1/team/chat").unwrap_err();
        assert!(
            missing.message.contains("Authorization: Bearer"),
            "{}",
            missing.message
        );
        assert_eq!(missing.kind, "authentication_error");
        let guess = "vk-guess-SECRET-ish";
        let wrong = t
            .check(
                &headers(&[("authorization", &format!("Bearer {guess}"))]),
                "c1/team/chat",
            )
            .unwrap_err();
        assert!(
            wrong.message.contains("not valid for route"),
            "{}",
            wrong.message
        );
        assert!(!format!("{wrong:?} {}", wrong.body()).contains(guess));
        assert!(
            !format!("{t:?}").contains(ALICE),
            "only hashes in the table"
        );
    }

    #[test]
    fn keys_are_normalised_like_the_agent_reads_them() {
        for (raw, want) in [
            ("vk\n", "vk"),
            (" Bearer vk ", "vk"),
            ("BEARER\tvk", "vk"),
            ("Bearervk", "Bearervk"),
        ] {
            assert_eq!(normalise(raw), want, "{raw:?}");
        }
        assert_eq!(
            sha256("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
