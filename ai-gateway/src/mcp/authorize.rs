//! Who calls an MCP route and what they may use (agentgateway's `spec.policies.mcp`
//! `authentication` and `authorization`), between the client's transport ([`super::serve`])
//! and the federation ([`super::federate`]):
//!
//! - [`authenticate`]: the bearer token of every request, checked by [`super::jwt`] against
//!   the backend's own key set. Without a valid one (mode `Strict`), or with an invalid one
//!   (`Optional`), the answer is what MCP's authorization specification asks of a resource
//!   server: HTTP 401, `WWW-Authenticate: Bearer ...` (RFC 6750; `error="invalid_token"` when
//!   a token was presented) and a JSON body saying why.
//! - [`Caller`]: the verified claims and the backend's rule; lists are filtered to what the
//!   caller may use ([`Caller::filter`]) and a call to anything else is refused with a
//!   JSON-RPC error ([`Caller::refusal`]) before it reaches a target.
//!
//! Rules and keys are compiled when the configuration arrives ([`crate::config::mcp_auth`]);
//! here they are only evaluated.

use bytes::Bytes;
use fleetgate_mcp_policy::{Authorization, Item, vars};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::jsonrpc::{self, INVALID_PARAMS};
use super::jwt;
use super::naming::ListKind;
use crate::config::mcp::McpBackend;
use crate::config::mcp_auth::AuthMode;
use crate::{Body, full};

/// The caller of one request: its verified claims (none without authentication or a token)
/// and the rule it is judged by.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub claims: Option<Value>,
    pub authorization: Option<Authorization>,
}

fn item(kind: ListKind) -> Item {
    match kind {
        ListKind::Tools => Item::Tool,
        ListKind::Prompts => Item::Prompt,
        ListKind::Resources | ListKind::ResourceTemplates => Item::Resource,
    }
}

impl Caller {
    /// Whether the caller may use `name` (the target's own name or URI) of `target`.
    pub fn allows(&self, kind: ListKind, target: &str, name: &str) -> bool {
        self.authorization
            .as_ref()
            .is_none_or(|a| a.allows(&vars(item(kind), target, name, self.claims.as_ref())))
    }

    /// `list` (entries of `kind` as `target` named them) without what the caller may not use.
    pub fn filter(&self, kind: ListKind, target: &str, mut list: Vec<Value>) -> Vec<Value> {
        if self.authorization.is_some() {
            list.retain(|e| {
                e.get(kind.key())
                    .and_then(Value::as_str)
                    .is_some_and(|n| self.allows(kind, target, n))
            });
        }
        list
    }

    /// The JSON-RPC error answering a request for `name` (as the client wrote it) the caller
    /// may not use.
    pub fn refusal(id: &Value, kind: ListKind, name: &str) -> Value {
        let what = match item(kind) {
            Item::Tool => "tool",
            Item::Prompt => "prompt",
            Item::Resource => "resource",
        };
        jsonrpc::error(
            id,
            INVALID_PARAMS,
            &format!(
                "{what} {:?} is not permitted for this caller (the backend's authorization rule)",
                name.chars().take(256).collect::<String>()
            ),
        )
    }
}

/// The bearer token of `headers`: `None` without an Authorization header, `Some(Err)` with
/// one that is not `Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let v = headers.get(header::AUTHORIZATION)?;
    let Ok(v) = v.to_str() else {
        return Some(Err(()));
    };
    Some(match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(()),
    })
}

/// 401 as MCP's authorization specification (RFC 6750, RFC 9728) asks: a challenge naming
/// the scheme, `error="invalid_token"` when a token was presented, and a JSON body.
fn unauthorized(presented: bool, why: &str) -> Response<Body> {
    let body = if presented {
        json!({"error": "invalid_token", "error_description": why})
    } else {
        json!({"error": "unauthorized", "error_description": why})
    };
    let mut r = Response::new(full(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let challenge = if presented {
        format!("Bearer realm=\"mcp\", error=\"invalid_token\", error_description=\"{why}\"")
    } else {
        "Bearer realm=\"mcp\"".to_string()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The caller of a request with `headers` to `backend` at `now` (seconds since the epoch), or
/// the 401 to answer it with.
pub fn authenticate(
    backend: &McpBackend,
    headers: &HeaderMap,
    now: u64,
) -> Result<Caller, Box<Response<Body>>> {
    let mut caller = Caller {
        claims: None,
        authorization: backend.authorization.clone(),
    };
    let Some(auth) = &backend.authentication else {
        return Ok(caller);
    };
    let verified = match bearer(headers) {
        None => None,
        Some(Err(())) => Some(Err(None)),
        Some(Ok(token)) => Some(jwt::verify(auth, token, now).map_err(Some)),
    };
    match (auth.mode, verified) {
        (_, Some(Ok(claims))) => caller.claims = Some(claims),
        (AuthMode::Permissive, _) | (AuthMode::Optional, None) => {}
        (AuthMode::Strict, None) => {
            return Err(Box::new(unauthorized(
                false,
                "this MCP endpoint requires a bearer token (Authorization: Bearer <JWT>)",
            )));
        }
        (_, Some(Err(e))) => {
            let why = e.map_or(
                "the Authorization header is not Bearer <JWT>".to_string(),
                |e| e.to_string(),
            );
            return Err(Box::new(unauthorized(true, &why)));
        }
    }
    Ok(caller)
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use crate::config::model::BackendKind;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn enc(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    /// A backend of `mode` trusting a fresh key, allowing `add` to alice and `whoami` to all;
    /// the key to sign with.
    fn backend(mode: &str) -> (McpBackend, EcdsaKeyPair) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let p = pair.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": enc(&p[1..33]), "y": enc(&p[33..65])}]});
        let yaml = format!(
            r#"
tenants:
  a:
    routes:
      tools:
        mcp:
          targets: [{{ name: alpha, host: 127.0.0.1, port: 9001 }}]
          authentication:
            issuer: https://idp.a.example
            audiences: [tools-a]
            jwks: '{jwks}'
            mode: {mode}
          authorization:
            matchExpressions:
              - 'mcp.tool.name == "add" && jwt.sub == "alice"'
              - 'mcp.tool.name == "whoami"'
"#
        );
        let config = RawConfig::from_yaml(&yaml).unwrap().validate().unwrap();
        let BackendKind::Mcp(m) = config.tenants["a"].routes["tools"].kind.clone() else {
            panic!("an MCP backend")
        };
        (m, pair)
    }

    fn token(pair: &EcdsaKeyPair, sub: &str) -> String {
        let claims = json!({"iss": "https://idp.a.example", "aud": "tools-a", "sub": sub, "exp": now() + 300});
        let input = format!(
            "{}.{}",
            enc(br#"{"alg":"ES256"}"#),
            enc(claims.to_string().as_bytes())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", enc(sig.as_ref()))
    }

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn the_modes_answer_a_missing_or_bad_token_as_agentgateway_does() {
        let (strict, key) = backend("Strict");
        let good = format!("Bearer {}", token(&key, "alice"));
        let cases = [
            ("Strict", None, Some(false)),
            ("Strict", Some("Bearer x.y.z"), Some(true)),
            ("Strict", Some("Basic dXNlcjpwdw=="), Some(true)),
            ("Strict", Some(good.as_str()), None),
            ("Optional", None, None),
            ("Optional", Some("Bearer x.y.z"), Some(true)),
            ("Permissive", Some("Bearer x.y.z"), None),
            ("Permissive", None, None),
        ];
        for (mode, auth, want_401) in cases {
            let mut b = strict.clone();
            b.authentication.as_mut().unwrap().mode = match mode {
                "Strict" => AuthMode::Strict,
                "Optional" => AuthMode::Optional,
                _ => AuthMode::Permissive,
            };
            match (authenticate(&b, &headers(auth), now()), want_401) {
                (Ok(c), None) => assert_eq!(
                    c.claims.is_some(),
                    auth == Some(good.as_str()),
                    "{mode} {auth:?}"
                ),
                (Err(r), Some(presented)) => {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{mode} {auth:?}");
                    let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
                    assert!(challenge.starts_with("Bearer realm=\"mcp\""), "{challenge}");
                    assert_eq!(
                        challenge.contains("error=\"invalid_token\""),
                        presented,
                        "{challenge}"
                    );
                    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
                }
                (Ok(_), Some(_)) => panic!("{mode} {auth:?}: a 401 expected"),
                (Err(r), None) => panic!("{mode} {auth:?}: let through expected, got {r:?}"),
            }
        }
    }

    #[test]
    fn lists_are_filtered_and_calls_judged_by_the_claims() {
        let (b, key) = backend("Strict");
        let caller = |sub: &str| {
            authenticate(
                &b,
                &headers(Some(&format!("Bearer {}", token(&key, sub)))),
                now(),
            )
            .unwrap()
        };
        let list = vec![
            json!({"name": "add"}),
            json!({"name": "whoami"}),
            json!({"name": "secret"}),
            json!({"title": "no name"}),
        ];
        let names = |c: &Caller| -> Vec<String> {
            c.filter(ListKind::Tools, "alpha", list.clone())
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&caller("alice")), ["add", "whoami"]);
        assert_eq!(names(&caller("bob")), ["whoami"]);
        assert!(!caller("bob").allows(ListKind::Tools, "alpha", "add"));
        assert!(!caller("alice").allows(ListKind::Prompts, "alpha", "add"));
        // Without a rule everything passes.
        let open = Caller::default();
        assert_eq!(open.filter(ListKind::Tools, "alpha", list.clone()).len(), 4);
        let refusal = Caller::refusal(&json!(7), ListKind::Tools, "alpha_add");
        assert_eq!(refusal["error"]["code"], INVALID_PARAMS);
        assert_eq!(refusal["id"], 7);
    }

    #[test]
    fn bad_policies_in_the_file_form_name_the_field() {
        let base = r#"
tenants:
  a:
    routes:
      tools:
        mcp:
          targets: [{ name: alpha, host: 127.0.0.1, port: 9001 }]
          EXTRA
"#;
        let cases = [
            (
                "authorization: { matchExpressions: ['request.path == \"/\"'] }",
                "tenants.a.routes.tools.mcp.authorization: authorization.policy.matchExpressions[0] is not an expression fleetgate evaluates: unknown variable request",
            ),
            (
                "authorization: { action: Audit, matchExpressions: ['true'] }",
                "authorization.action \"Audit\"",
            ),
            (
                "authentication: { issuer: x, jwks: '{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}' }",
                "tenants.a.routes.tools.mcp.authentication.jwks: jwks.keys[0] is a symmetric (oct) key",
            ),
            (
                "authentication: { issuer: x, jwks: '{\"keys\":[]}', mode: Lenient }",
                "mcp.authentication.mode: \"Lenient\"",
            ),
            (
                "authentication: { issuer: '', jwks: '{}' }",
                "mcp.authentication.issuer: is required",
            ),
        ];
        for (extra, want) in cases {
            let err = RawConfig::from_yaml(&base.replace("EXTRA", extra))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }
}
