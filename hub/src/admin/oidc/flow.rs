//! The pure parts of one OIDC login (authorization code flow with PKCE, RFC 7636): fresh
//! `state`, `nonce` and code verifier; the authorization URL; and the short-lived cookie that
//! binds them to the browser that started the login.
//!
//! The cookie (`fleetgate_oidc`, `Path=/ui/oidc`, `HttpOnly`, `SameSite=Lax` so that it comes
//! back with the provider's top-level redirect) carries `state.nonce.verifier.expires.mac`,
//! the MAC an HMAC-SHA256 under a key derived from the hub's operator key: the browser cannot
//! change it, another hub cannot make one, and it is worthless after [`PENDING_TTL`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::identity::token_key::{from_hex, to_hex};

/// The cookie that holds a login in progress.
pub const COOKIE: &str = "fleetgate_oidc";
/// How long a login may take at the provider.
pub const PENDING_TTL: u64 = 600;

/// A login in progress: what the callback must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier (43 characters of base64url).
    pub verifier: String,
    /// Unix seconds.
    pub expires: u64,
}

/// Why a callback is refused before anything is sent to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error(
        "no login in progress in this browser (or it took longer than 10 minutes): click Sign in again"
    )]
    NoLogin,
    #[error("the login's state does not match this browser's: click Sign in again")]
    State,
    #[error("this login was already completed once: click Sign in again")]
    Replayed,
    #[error("cannot draw random numbers")]
    Random,
}

/// Constant-time equality.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random() -> Result<String, FlowError> {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| FlowError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// The PKCE `S256` challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// The key pending-login cookies are signed with, derived from the operator key.
pub fn cookie_key(operator_key: &hmac::Key) -> hmac::Key {
    let derived = hmac::sign(operator_key, b"fleetgate oidc pending login v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

impl Pending {
    /// A fresh login expiring [`PENDING_TTL`] after `now`.
    pub fn start(now: u64) -> Result<Self, FlowError> {
        Ok(Self {
            state: random()?,
            nonce: random()?,
            verifier: random()?,
            expires: now + PENDING_TTL,
        })
    }

    /// The cookie value.
    pub fn seal(&self, key: &hmac::Key) -> String {
        let body = format!(
            "{}.{}.{}.{}",
            self.state, self.nonce, self.verifier, self.expires
        );
        let mac = hmac::sign(key, body.as_bytes());
        format!("{body}.{}", to_hex(mac.as_ref()))
    }

    /// The login a cookie value holds, if this hub made it and it has not expired.
    pub fn open(key: &hmac::Key, value: &str, now: u64) -> Result<Self, FlowError> {
        let (body, mac) = value.rsplit_once('.').ok_or(FlowError::NoLogin)?;
        let mac = from_hex(mac).ok_or(FlowError::NoLogin)?;
        hmac::verify(key, body.as_bytes(), &mac).map_err(|_| FlowError::NoLogin)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [state, nonce, verifier, expires] = parts.as_slice() else {
            return Err(FlowError::NoLogin);
        };
        let expires: u64 = expires.parse().map_err(|_| FlowError::NoLogin)?;
        if now >= expires {
            return Err(FlowError::NoLogin);
        }
        Ok(Self {
            state: state.to_string(),
            nonce: nonce.to_string(),
            verifier: verifier.to_string(),
            expires,
        })
    }

    /// Whether the callback's `state` is this login's.
    pub fn check_state(&self, state: &str) -> Result<(), FlowError> {
        if same(state.as_bytes(), self.state.as_bytes()) {
            Ok(())
        } else {
            Err(FlowError::State)
        }
    }
}

/// `s` as a query value.
pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The URL the browser is sent to at the provider.
pub fn authorize_url(
    endpoint: &str,
    client_id: &str,
    redirect_url: &str,
    scopes: &[String],
    pending: &Pending,
) -> String {
    let scope = std::iter::once("openid")
        .chain(scopes.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!(
        "{endpoint}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        query_escape(client_id),
        query_escape(redirect_url),
        query_escape(&scope),
        pending.state,
        pending.nonce,
        challenge(&pending.verifier),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[b; 32])
    }

    #[test]
    fn the_pkce_challenge_is_base64url_sha256_of_the_verifier() {
        // Computed independently:
        // printf %s <verifier> | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d =
        assert_eq!(
            challenge("dBjftJeZ4CVP-mJ0kzMJxSEsbDq6lyUGXs0uVqN8SY0"),
            "U5gaoefK08U6uOkv69GsTgSU5GZgmczxMXYM9iK68Ho"
        );
    }

    #[test]
    fn each_login_draws_its_own_state_nonce_and_verifier() {
        let a = Pending::start(100).unwrap();
        let b = Pending::start(100).unwrap();
        assert_ne!(a.state, b.state);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, a.nonce);
        assert_eq!(a.verifier.len(), 43);
        assert_eq!(a.expires, 100 + PENDING_TTL);
    }

    #[test]
    fn the_cookie_opens_only_unaltered_on_this_hub_before_it_expires() {
        let p = Pending::start(100).unwrap();
        let sealed = p.seal(&key(1));
        assert_eq!(Pending::open(&key(1), &sealed, 101), Ok(p.clone()));
        assert_eq!(
            Pending::open(&key(2), &sealed, 101),
            Err(FlowError::NoLogin)
        );
        assert_eq!(
            Pending::open(&key(1), &sealed, p.expires),
            Err(FlowError::NoLogin)
        );
        let later = sealed.replace(&format!(".{}.", p.expires), ".99999999999.");
        assert_eq!(Pending::open(&key(1), &later, 101), Err(FlowError::NoLogin));
        let other_state = sealed.replacen(&p.state, &Pending::start(1).unwrap().state, 1);
        assert_eq!(
            Pending::open(&key(1), &other_state, 101),
            Err(FlowError::NoLogin)
        );
        for bad in ["", "x", "a.b.c.d.e", "a.b.c.1.zz"] {
            assert_eq!(Pending::open(&key(1), bad, 101), Err(FlowError::NoLogin));
        }
        assert_eq!(p.check_state(&p.state), Ok(()));
        assert_eq!(p.check_state("forged"), Err(FlowError::State));
        assert_eq!(p.check_state(""), Err(FlowError::State));
    }

    #[test]
    fn the_authorization_url_carries_the_login() {
        let p = Pending::start(0).unwrap();
        let u = authorize_url(
            "https://op.example/auth",
            "hub",
            "http://127.0.0.1:9901/ui/oidc/callback",
            &["email".into(), "groups".into()],
            &p,
        );
        assert!(
            u.starts_with("https://op.example/auth?response_type=code&client_id=hub&"),
            "{u}"
        );
        assert!(
            u.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A9901%2Fui%2Foidc%2Fcallback"),
            "{u}"
        );
        assert!(u.contains("scope=openid%20email%20groups"), "{u}");
        assert!(
            u.contains(&format!("state={}&nonce={}", p.state, p.nonce)),
            "{u}"
        );
        assert!(
            u.contains(&format!(
                "code_challenge={}&code_challenge_method=S256",
                challenge(&p.verifier)
            )),
            "{u}"
        );
        assert!(
            !u.contains(&p.verifier),
            "the verifier never leaves the hub and the cookie"
        );
    }
}
