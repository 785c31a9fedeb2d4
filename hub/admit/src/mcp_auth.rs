//! `spec.policies.mcp` of an MCP backend: the wire `McpAuthentication` / `McpAuthorization`
//! -> the model's. Pure, called by [`super::mcp::admit_mcp`].
//!
//! What the gateway would fail to compile is refused here, on the backend's status, naming
//! the field: an issuer that is empty, an inline key set that does not parse or holds a key
//! fleetgate will not verify with (symmetric, encryption, `alg: none`;
//! [`fleetgate_mcp_policy::jwks`]), an unknown mode or action, an expression outside the CEL
//! subset fleetgate evaluates ([`fleetgate_mcp_policy::rules`]). The key set is the tenant's
//! own and travels as written: the gateway holds each tenant's keys and rules apart.

use fleetgate_mcp_policy::{Authorization, jwks};
use fleetgate_proto::spoke::v1 as pb;

use super::{Rejection, reject};
use crate::model::ai::{McpAuthentication, McpAuthorization};

const AUTHN: &str = "spec.policies.mcp.authentication";
const AUTHZ: &str = "spec.policies.mcp.authorization";

/// The most audiences of one backend, and the longest issuer or audience (agentgateway's
/// limits).
pub const MAX_AUDIENCES: usize = 64;
pub const MAX_CLAIM_VALUE: usize = 256;

/// Admits `spec.policies.mcp.authentication`.
pub fn admit_authentication(a: &pb::McpAuthentication) -> Result<McpAuthentication, Rejection> {
    if a.issuer.is_empty() || a.issuer.len() > MAX_CLAIM_VALUE {
        return reject(
            "UnsupportedValue",
            format!(
                "{AUTHN}.issuer is required (1 to {MAX_CLAIM_VALUE} bytes): the iss every token must carry"
            ),
        );
    }
    if a.audiences.len() > MAX_AUDIENCES
        || a.audiences
            .iter()
            .any(|x| x.is_empty() || x.len() > MAX_CLAIM_VALUE)
    {
        return reject(
            "UnsupportedValue",
            format!(
                "{AUTHN}.audiences: list at most {MAX_AUDIENCES}, each 1 to {MAX_CLAIM_VALUE} bytes"
            ),
        );
    }
    let mode = match a.mode.as_str() {
        "" => "Strict",
        m @ ("Strict" | "Optional" | "Permissive") => m,
        m => {
            return reject(
                "UnsupportedValue",
                format!(
                    "{AUTHN}.mode {:?} is not one of Strict, Optional, Permissive",
                    m.chars().take(64).collect::<String>()
                ),
            );
        }
    };
    if a.jwks_inline.is_empty() {
        return reject(
            "UnsupportedValue",
            format!(
                "{AUTHN}.jwks.inline is required: the JSON Web Key Set tokens are verified with"
            ),
        );
    }
    jwks::parse(&format!("{AUTHN}.jwks.inline"), &a.jwks_inline).map_err(|e| Rejection {
        reason: "UnsupportedValue",
        message: e.0,
    })?;
    Ok(McpAuthentication {
        issuer: a.issuer.clone(),
        audiences: a.audiences.clone(),
        jwks: a.jwks_inline.clone(),
        mode: mode.to_string(),
    })
}

/// Admits `spec.policies.mcp.authorization`: the expressions compile.
pub fn admit_authorization(a: &pb::McpAuthorization) -> Result<McpAuthorization, Rejection> {
    let compiled =
        Authorization::compile(AUTHZ, &a.action, &a.match_expressions).map_err(|e| Rejection {
            reason: "UnsupportedValue",
            message: e.0,
        })?;
    let action = match compiled.action {
        fleetgate_mcp_policy::Action::Allow => "Allow",
        fleetgate_mcp_policy::Action::Deny => "Deny",
        fleetgate_mcp_policy::Action::Require => "Require",
    };
    Ok(McpAuthorization {
        action: action.to_string(),
        match_expressions: a.match_expressions.clone(),
    })
}
