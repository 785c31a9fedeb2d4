//! The authentication and authorization of an MCP backend (agentgateway's
//! `spec.policies.mcp`): the file/wire form ([`RawMcpAuthentication`],
//! [`RawMcpAuthorization`]) and the compiled one ([`JwtAuth`],
//! [`fleetgate_mcp_policy::Authorization`]), compiled once when the configuration arrives.
//! Pure; the checks per request are [`crate::mcp::jwt`] and [`crate::mcp::authorize`].

use fleetgate_mcp_policy::{Authorization, jwks};
use serde::Deserialize;

use super::model::{ConfigError, field};

/// `authentication` as written: JWTs from `issuer`, for one of `audiences`, signed by a key
/// of `jwks` (a JSON Web Key Set, inline).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMcpAuthentication {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: String,
    /// `Strict` (default), `Optional` or `Permissive`.
    pub mode: Option<String>,
}

/// `authorization` as written: agentgateway's rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMcpAuthorization {
    /// `Allow` (default), `Deny` or `Require`.
    pub action: Option<String>,
    pub match_expressions: Vec<String>,
}

/// What a request without a valid token gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// A valid token is required (401 otherwise).
    Strict,
    /// No token is let through (no claims); a token that does not verify is refused.
    Optional,
    /// Never refused; the claims of a valid token are used, others ignored.
    Permissive,
}

/// A compiled `authentication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuth {
    pub issuer: String,
    /// Empty: any audience.
    pub audiences: Vec<String>,
    pub keys: Vec<jwks::Jwk>,
    pub mode: AuthMode,
}

impl RawMcpAuthentication {
    /// Compiles `authentication` at `at`.
    pub fn validate(&self, at: &str) -> Result<JwtAuth, ConfigError> {
        if self.issuer.is_empty() {
            return Err(field(format!("{at}.issuer"), "is required"));
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(field(format!("{at}.audiences"), "an audience is empty"));
        }
        let mode = match self.mode.as_deref() {
            None | Some("" | "Strict") => AuthMode::Strict,
            Some("Optional") => AuthMode::Optional,
            Some("Permissive") => AuthMode::Permissive,
            Some(m) => {
                return Err(field(
                    format!("{at}.mode"),
                    format!(
                        "{:?} is not one of Strict, Optional, Permissive",
                        m.chars().take(64).collect::<String>()
                    ),
                ));
            }
        };
        let keys = jwks::parse("jwks", &self.jwks).map_err(|e| field(format!("{at}.jwks"), e.0))?;
        Ok(JwtAuth {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            keys,
            mode,
        })
    }
}

impl RawMcpAuthorization {
    /// Compiles `authorization` at `at`.
    pub fn validate(&self, at: &str) -> Result<Authorization, ConfigError> {
        Authorization::compile(
            "authorization",
            self.action.as_deref().unwrap_or(""),
            &self.match_expressions,
        )
        .map_err(|e| field(at, e.0))
    }
}
