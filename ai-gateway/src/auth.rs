//! Auth: the provider's credentials go on, the client's come off. Runs as the provider builds
//! the upstream request (listen -> identify -> route -> provider -> **auth** -> usage -> errors).
//!
//! - Every client credential is removed (`Authorization`, `x-api-key`, `api-key`,
//!   `x-goog-api-key`, cookies, `Proxy-Authorization`): the client never authenticates to the
//!   provider, and its key (a dummy, or a virtual key of the tenant, `crate::keys`) never leaves
//!   the gateway.
//! - The identity headers Envoy set (`x-fleetgate-*`) and hop-by-hop headers are removed too.
//! - The backend's key is injected in the provider's scheme: `Authorization: Bearer <key>` for
//!   OpenAI-compatible providers (`x-api-key` for Anthropic and `x-goog-api-key` for Gemini come
//!   with those providers). The header value is marked sensitive (hpack never indexes it).
//! - A backend with `passthrough` auth gets the client's own `Authorization` instead (and only
//!   that header: the client's other credential headers stay off).

use hyper::HeaderMap;
use hyper::header::{self, HeaderValue};

use crate::config::{BackendAuth, Provider};

/// Headers that never go upstream as the client sent them.
const DROPPED: &[&str] = &[
    // Credentials of the client.
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    // The client's OpenAI account headers are meaningless with the backend's key.
    "openai-organization",
    "openai-project",
    // Hop-by-hop (RFC 9110 7.6.1) and recomputed ones.
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    // Forwarded-for chains stay inside the data plane.
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-envoy-external-address",
    "x-request-id",
];

/// Header names a `Connection` header lists: hop-by-hop too (RFC 9110 7.6.1).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The client's headers that may go upstream.
pub fn upstream_headers(client: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(client);
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        let n = name.as_str();
        if DROPPED.contains(&n)
            || n.starts_with("x-fleetgate-")
            || n.starts_with("x-envoy-")
            || listed.iter().any(|l| l == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Puts the backend's credential on the upstream request as `Authorization: Bearer` (A2A
/// agents; the scheme of OpenAI-compatible providers); with `passthrough`, the client's own.
pub fn inject_bearer(auth: Option<&BackendAuth>, client: &HeaderMap, headers: &mut HeaderMap) {
    inject(&Provider::OpenAi { model: None }, auth, client, headers);
}

/// Puts the backend's credential on the upstream request, in the provider's scheme; with
/// `passthrough`, the client's own `Authorization` (from `client`, the headers as received).
pub fn inject(
    provider: &Provider,
    auth: Option<&BackendAuth>,
    client: &HeaderMap,
    headers: &mut HeaderMap,
) {
    let key = match auth {
        None => return,
        Some(BackendAuth::Passthrough) => {
            // Exactly the client's header(s); none when the client sent none.
            for value in client.get_all(header::AUTHORIZATION) {
                let mut value = value.clone();
                value.set_sensitive(true);
                headers.append(header::AUTHORIZATION, value);
            }
            return;
        }
        Some(BackendAuth::Key(key)) => key,
    };
    match provider {
        Provider::OpenAi { .. } => {
            // Validation guarantees printable ASCII, so this cannot fail; if it ever did, the
            // request goes without a key and the provider answers 401.
            if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", key.expose())) {
                value.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, value);
            }
        }
        Provider::Anthropic { .. } => {
            if let Ok(mut value) = HeaderValue::from_str(key.expose()) {
                value.set_sensitive(true);
                headers.insert("x-api-key", value);
            }
            headers.remove(header::AUTHORIZATION);
        }
        Provider::Gemini { .. } => {
            if let Ok(mut value) = HeaderValue::from_str(key.expose()) {
                value.set_sensitive(true);
                headers.insert("x-goog-api-key", value);
            }
            headers.remove(header::AUTHORIZATION);
        }
    }
}

/// The Messages API version sent to Anthropic backends when the client names none.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Response headers that do not go back to the client as the upstream sent them.
pub fn downstream_headers(upstream: &HeaderMap, body_rewritten: bool) -> HeaderMap {
    let listed = connection_listed(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        let hop = matches!(
            n,
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
        );
        if hop
            || listed.iter().any(|l| l == n)
            || (body_rewritten && name == header::CONTENT_LENGTH)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use hyper::header::HeaderName;

    #[test]
    fn client_credentials_and_identity_never_go_upstream() {
        let mut client = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer sk-client-dummy"),
            ("x-api-key", "client"),
            ("cookie", "session=1"),
            ("x-fleetgate-tenant", "a"),
            ("x-fleetgate-route", "r"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("host", "gateway"),
            ("content-type", "application/json"),
            ("accept", "text/event-stream"),
            ("x-stainless-lang", "python"),
        ] {
            client.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let mut up = upstream_headers(&client);
        let kept: Vec<&str> = up.keys().map(HeaderName::as_str).collect();
        assert_eq!(kept, ["content-type", "accept", "x-stainless-lang"]);

        let provider = Provider::OpenAi { model: None };
        inject(&provider, None, &client, &mut up);
        assert!(
            up.get("authorization").is_none(),
            "no key configured, none sent"
        );
        let mut keyed = up.clone();
        let auth = BackendAuth::Key(Secret::new("sk-backend"));
        inject(&provider, Some(&auth), &client, &mut keyed);
        let value = keyed.get("authorization").unwrap();
        assert_eq!(value, "Bearer sk-backend");
        assert!(value.is_sensitive());

        // Passthrough: the client's Authorization and nothing else of its credentials.
        let mut passed = up.clone();
        inject(
            &provider,
            Some(&BackendAuth::Passthrough),
            &client,
            &mut passed,
        );
        let values: Vec<_> = passed.get_all("authorization").iter().collect();
        assert_eq!(values, ["Bearer sk-client-dummy"]);
        assert!(values[0].is_sensitive());
        assert!(passed.get("x-api-key").is_none() && passed.get("cookie").is_none());
        let mut none = up.clone();
        inject(
            &provider,
            Some(&BackendAuth::Passthrough),
            &HeaderMap::new(),
            &mut none,
        );
        assert!(none.get("authorization").is_none(), "nothing to pass");
    }
}
