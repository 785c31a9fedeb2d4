//! Translate (pure): `spec.policies` of an MCP AgentgatewayBackend -> `McpBackend.authentication`
//! and `McpBackend.authorization` (agentgateway's `BackendMCP`, the backend-level form).
//!
//! Read: `policies.mcp.authorization{action, policy.matchExpressions}` and
//! `policies.mcp.authentication{issuer, audiences, jwks.inline, mode}`, as written (the hub
//! parses the key set and compiles the expressions, and refuses what does not, naming the
//! field). Refused by name, never dropped: every other policy of an MCP backend
//! (`policies.auth`, `policies.http`, ...), `policies.mcp.guardrails`, the OAuth parts of
//! `authentication` (`provider`, `resourceMetadata`, `clientId`, `clientSecretRef`), and a
//! remote key set (`jwks.url`, `jwks.backendRef`): the gateway fetches nothing a tenant
//! names, so the keys are written inline.

use fleetgate_proto::spoke::v1 as pb;

use super::ai_backend::{first_unknown, unsupported};
use crate::crd::agentgateway::{McpPolicy, Policies};
use crate::resolve::Problem;

const AUTHN: &str = "spec.policies.mcp.authentication";
const AUTHZ: &str = "spec.policies.mcp.authorization";

/// What `spec.policies` (when set) asks of an MCP backend.
pub fn mcp_policies(
    policies: &Policies,
) -> Result<(Option<pb::McpAuthentication>, Option<pb::McpAuthorization>), Problem> {
    if policies.auth.is_some() || policies.ai.is_some() {
        let which = if policies.auth.is_some() {
            "auth"
        } else {
            "ai"
        };
        return Err(unsupported(format!(
            "spec.policies.{which} is not supported on an MCP backend yet (no credentials are sent to MCP targets); fleetgate honours spec.policies.mcp.authentication and .authorization, remove the others"
        )));
    }
    if let Some(k) = policies.other.keys().find(|k| *k != "mcp") {
        return Err(unsupported(format!(
            "spec.policies.{k} is not supported on an MCP backend yet; fleetgate honours spec.policies.mcp.authentication and .authorization, remove the others"
        )));
    }
    let Some(value) = policies.other.get("mcp") else {
        return Ok((None, None));
    };
    let mcp: McpPolicy = serde_json::from_value(value.clone()).map_err(|e| {
        unsupported(format!(
            "spec.policies.mcp does not have agentgateway's shape ({e}); write authorization: {{action, policy: {{matchExpressions: [...]}}}} and authentication: {{issuer, audiences, jwks: {{inline}}, mode}}"
        ))
    })?;
    if let Some(field) = first_unknown("spec.policies.mcp", &mcp.other) {
        return Err(unsupported(format!(
            "{field} is not supported yet; fleetgate honours spec.policies.mcp.authentication and .authorization, remove it"
        )));
    }
    let authorization = match &mcp.authorization {
        None => None,
        Some(a) => {
            if let Some(field) = first_unknown(AUTHZ, &a.other) {
                return Err(unsupported(format!("{field} is not supported; remove it")));
            }
            let Some(policy) = &a.policy else {
                return Err(unsupported(format!(
                    "{AUTHZ}.policy is required: policy: {{matchExpressions: [...]}}"
                )));
            };
            if let Some(field) = first_unknown(&format!("{AUTHZ}.policy"), &policy.other) {
                return Err(unsupported(format!("{field} is not supported; remove it")));
            }
            Some(pb::McpAuthorization {
                action: a.action.clone().unwrap_or_default(),
                match_expressions: policy.match_expressions.clone(),
            })
        }
    };
    let authentication = match &mcp.authentication {
        None => None,
        Some(a) => {
            if let Some(k) = a.other.keys().next() {
                return Err(unsupported(format!(
                    "{AUTHN}.{k} is not supported yet: fleetgate verifies JWTs against an inline key set and serves no OAuth metadata or client registration; remove it"
                )));
            }
            let Some(jwks) = &a.jwks else {
                return Err(unsupported(format!(
                    "{AUTHN}.jwks is required; write jwks: {{inline: '<JSON Web Key Set>'}}"
                )));
            };
            if let Some(k) = jwks.other.keys().next() {
                return Err(unsupported(format!(
                    "{AUTHN}.jwks.{k} is not supported: a remote key set would have the gateway fetch an address the tenant names (server-side request forgery); write the public keys in {AUTHN}.jwks.inline instead"
                )));
            }
            Some(pb::McpAuthentication {
                issuer: a.issuer.clone().unwrap_or_default(),
                audiences: a.audiences.clone(),
                jwks_inline: jwks.inline.clone().unwrap_or_default(),
                mode: a.mode.clone().unwrap_or_default(),
            })
        }
    };
    Ok((authentication, authorization))
}
