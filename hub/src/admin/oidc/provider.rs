//! The hub's calls to the OpenID provider: the discovery document, the key set, and the token
//! request that trades an authorization code (with its PKCE verifier) for an ID token.
//!
//! Only the operator's `adminOidc.issuer` is ever asked: discovery is fetched from it, the
//! document's `issuer` must equal it, and its token and key-set endpoints must be on the
//! issuer's own origin (scheme, host and port), so nothing a browser or a token says can make
//! the hub fetch another URL. Every call has a timeout and a size limit; a provider that is
//! down fails the OIDC login only (operator tokens do not need it). Nothing is cached: each
//! login reads the current discovery and keys, so a key rotation at the provider just works.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use fleetgate_mcp_policy::jwks::Jwk;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::flow::query_escape;
use crate::config::AdminOidc;
use crate::config::admin_oidc::origin;

/// How long one call to the provider may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from the provider.
pub const MAX_ANSWER: usize = 256 * 1024;

/// Why the provider could not be used. Shown on the login page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "the OIDC provider {issuer} cannot be reached ({why}); log in with an operator token meanwhile"
    )]
    Unreachable { issuer: String, why: String },
    #[error("the OIDC provider {issuer} answered {what}: {why}")]
    Refused {
        issuer: String,
        what: &'static str,
        why: String,
    },
    #[error("the OIDC provider's discovery document is not usable: {0}")]
    Discovery(String),
}

/// What the hub uses of the discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client() -> &'static HttpsClient {
    static CLIENT: OnceLock<HttpsClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(TIMEOUT));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector)
    })
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// One request; the status and the JSON answer.
async fn call(
    oidc: &AdminOidc,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Value), ProviderError> {
    let unreachable = |why: String| ProviderError::Unreachable {
        issuer: oidc.issuer.clone(),
        why,
    };
    let answer = tokio::time::timeout(TIMEOUT, async {
        let resp = client()
            .request(req)
            .await
            .map_err(|e| unreachable(innermost(&e)))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok::<_, ProviderError>((status, body))
    })
    .await
    .map_err(|_| unreachable(format!("no answer within {}s", TIMEOUT.as_secs())))??;
    let (status, body) = answer;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, json))
}

fn get(uri: &str) -> Result<Request<Full<Bytes>>, ProviderError> {
    Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|e| ProviderError::Discovery(format!("{uri}: {e}")))
}

/// The discovery URL of `issuer`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Checks a discovery document against the configured issuer. Pure.
pub fn read_discovery(issuer: &str, doc: &Value) -> Result<Discovery, ProviderError> {
    let bad = |m: String| ProviderError::Discovery(m);
    let text = |f: &str| {
        doc.get(f)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(format!("it has no {f}")))
    };
    let said = text("issuer")?;
    if said != issuer {
        return Err(bad(format!(
            "its issuer is {said:?}, not adminOidc.issuer {issuer:?}: write the provider's issuer exactly"
        )));
    }
    let home = origin(issuer, true).map_err(|e| bad(format!("adminOidc.issuer {e}")))?;
    let mut out = Vec::new();
    for f in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        let url = text(f)?;
        match origin(&url, true) {
            Ok(o) if o == home => out.push(url),
            _ => {
                return Err(bad(format!(
                    "its {f} {url:?} is not on the issuer's origin {home}; the hub fetches only from the issuer"
                )));
            }
        }
    }
    let [authorization_endpoint, token_endpoint, jwks_uri] =
        <[String; 3]>::try_from(out).expect("three endpoints");
    Ok(Discovery {
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
    })
}

/// Fetches and checks the issuer's discovery document.
pub async fn discover(oidc: &AdminOidc) -> Result<Discovery, ProviderError> {
    let (status, doc) = call(oidc, get(&discovery_url(&oidc.issuer))?).await?;
    if !status.is_success() {
        return Err(ProviderError::Refused {
            issuer: oidc.issuer.clone(),
            what: "the discovery request",
            why: format!("HTTP {status}"),
        });
    }
    read_discovery(&oidc.issuer, &doc)
}

/// The signature keys of a key set: keys the hub cannot use (encryption keys, other
/// algorithms) are skipped, not fatal. Pure.
pub fn signature_keys(set: &Value) -> Vec<Jwk> {
    set.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(fleetgate_mcp_policy::jwks::MAX_KEYS)
        .filter_map(|k| {
            let one = serde_json::json!({ "keys": [k] }).to_string();
            fleetgate_mcp_policy::jwks::parse("jwks", &one)
                .ok()
                .and_then(|mut v| v.pop())
        })
        .collect()
}

/// The issuer's current signature keys.
pub async fn keys(oidc: &AdminOidc, discovery: &Discovery) -> Result<Vec<Jwk>, ProviderError> {
    let (status, set) = call(oidc, get(&discovery.jwks_uri)?).await?;
    if !status.is_success() {
        return Err(ProviderError::Refused {
            issuer: oidc.issuer.clone(),
            what: "the key set request",
            why: format!("HTTP {status}"),
        });
    }
    Ok(signature_keys(&set))
}

/// Trades `code` for the ID token (`client_secret_basic`, RFC 6749 2.3.1).
pub async fn exchange(
    oidc: &AdminOidc,
    discovery: &Discovery,
    code: &str,
    verifier: &str,
) -> Result<String, ProviderError> {
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        query_escape(code),
        query_escape(&oidc.redirect_url),
        query_escape(verifier)
    );
    let basic = STANDARD.encode(format!(
        "{}:{}",
        query_escape(&oidc.client_id),
        query_escape(&oidc.client_secret)
    ));
    let req = Request::builder()
        .method(Method::POST)
        .uri(&discovery.token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("authorization", format!("Basic {basic}"))
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| ProviderError::Discovery(format!("token_endpoint: {e}")))?;
    let (status, answer) = call(oidc, req).await?;
    let refused = |why: String| ProviderError::Refused {
        issuer: oidc.issuer.clone(),
        what: "the token request",
        why,
    };
    if !status.is_success() {
        let error = answer.get("error").and_then(Value::as_str).unwrap_or("");
        let detail = answer
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(refused(
            format!("HTTP {status} {error} {detail}").trim().to_string(),
        ));
    }
    answer
        .get("id_token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            refused("no id_token in the answer (is `openid` a scope of this client?)".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discovery_must_name_the_issuer_and_stay_on_its_origin() {
        let iss = "https://op.example/";
        let doc = json!({"issuer": iss, "authorization_endpoint": "https://op.example/auth",
            "token_endpoint": "https://op.example/token", "jwks_uri": "https://op.example/keys"});
        assert_eq!(
            read_discovery(iss, &doc).unwrap().token_endpoint,
            "https://op.example/token"
        );
        let with = |f: &str, v: &str| {
            let mut d = doc.clone();
            d[f] = json!(v);
            read_discovery(iss, &d).unwrap_err().to_string()
        };
        assert!(with("issuer", "https://evil.example/").contains("issuer"));
        assert!(with("jwks_uri", "https://evil.example/keys").contains("jwks_uri"));
        assert!(with("token_endpoint", "http://op.example/token").contains("token_endpoint"));
        assert!(with("token_endpoint", "https://op.example:8443/token").contains("token_endpoint"));
        assert!(read_discovery(iss, &json!({"issuer": iss})).is_err());
        assert_eq!(
            discovery_url("https://op.example/dex/"),
            "https://op.example/dex/.well-known/openid-configuration"
        );
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "a", "use": "sig",
            "x": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE", "y": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"});
        let set =
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "RSA", "use": "enc"}, ec]});
        let keys = signature_keys(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
        assert!(signature_keys(&json!({})).is_empty());
    }
}
