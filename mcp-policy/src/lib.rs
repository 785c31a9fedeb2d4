//! MCP authorization and authentication material of an AgentgatewayBackend
//! (`spec.policies.mcp`), in the one form the hub's admission and the AI gateway both use:
//! the hub refuses what does not parse (naming the field, on the backend's status) and the
//! gateway compiles the same text once when its configuration arrives.
//!
//! - [`rules`]: the expression language (a subset of CEL) of `authorization.policy.matchExpressions`;
//! - [`jwks`]: the inline JSON Web Key Set of `authentication.jwks.inline`;
//! - [`jws`]: a token's signature checked against such a key set (also the hub's OpenID
//!   Connect login's, against its provider's);
//! - [`Authorization`]: agentgateway's rule (`action` Allow | Deny | Require over its
//!   expressions) and the variables a tool, prompt or resource is judged with ([`vars`]).
//!
//! Pure: no I/O, no clock.

pub mod jwks;
pub mod jws;
pub mod rules;

use serde_json::{Value, json};

/// The most expressions of one rule (agentgateway's limit).
pub const MAX_EXPRESSIONS: usize = 256;

/// `authorization.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allowed when at least one expression matches (agentgateway's default).
    Allow,
    /// Refused when any expression matches.
    Deny,
    /// Allowed only when every expression matches.
    Require,
}

impl Action {
    /// The value as written (empty: `Allow`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "Allow" => Some(Self::Allow),
            "Deny" => Some(Self::Deny),
            "Require" => Some(Self::Require),
            _ => None,
        }
    }
}

/// Why a rule does not compile; the message names the field under `at`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthorizationError(pub String);

/// A compiled `authorization`: which tools, prompts and resources a caller may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub action: Action,
    pub rules: Vec<rules::Expr>,
}

impl Authorization {
    /// Compiles `action` and `expressions` as written under `at` (e.g.
    /// `spec.policies.mcp.authorization`).
    pub fn compile(
        at: &str,
        action: &str,
        expressions: &[String],
    ) -> Result<Self, AuthorizationError> {
        let action = Action::parse(action).ok_or_else(|| {
            AuthorizationError(format!(
                "{at}.action {:?} is not one of Allow, Deny, Require",
                action.chars().take(64).collect::<String>()
            ))
        })?;
        if expressions.is_empty() || expressions.len() > MAX_EXPRESSIONS {
            return Err(AuthorizationError(format!(
                "{at}.policy.matchExpressions lists {} expressions; list 1 to {MAX_EXPRESSIONS}",
                expressions.len()
            )));
        }
        let rules = expressions
            .iter()
            .enumerate()
            .map(|(i, e)| {
                rules::compile(e).map_err(|err| {
                    AuthorizationError(format!(
                        "{at}.policy.matchExpressions[{i}] is not an expression fleetgate evaluates: {err}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { action, rules })
    }

    /// Whether `vars` ([`vars`]) are allowed.
    pub fn allows(&self, vars: &Value) -> bool {
        match self.action {
            Action::Allow => self.rules.iter().any(|r| r.matches(vars)),
            Action::Deny => !self.rules.iter().any(|r| r.matches(vars)),
            Action::Require => self.rules.iter().all(|r| r.matches(vars)),
        }
    }
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Tool,
    Prompt,
    Resource,
}

/// The variables an item is judged with, as agentgateway names them:
/// `mcp.<tool|prompt|resource>.{name, target}` (the target's own name or URI, before
/// federation prefixes it) and `jwt` (the verified claims; absent without a token).
pub fn vars(item: Item, target: &str, name: &str, claims: Option<&Value>) -> Value {
    let kind = match item {
        Item::Tool => "tool",
        Item::Prompt => "prompt",
        Item::Resource => "resource",
    };
    let mut v = json!({ "mcp": { kind: { "name": name, "target": target } } });
    if let Some(c) = claims {
        v["jwt"] = c.clone();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str, exprs: &[&str]) -> Authorization {
        let exprs: Vec<String> = exprs.iter().map(|s| (*s).to_string()).collect();
        Authorization::compile("authorization", action, &exprs).unwrap()
    }

    #[test]
    fn actions_combine_the_expressions_as_agentgateway_does() {
        let alice = serde_json::json!({"sub": "alice"});
        let add = vars(Item::Tool, "alpha", "add", Some(&alice));
        let whoami = vars(Item::Tool, "beta", "whoami", Some(&alice));
        let readme = vars(Item::Resource, "alpha", "memo://alpha/readme", None);
        let table = [
            (
                rule("", &[r#"mcp.tool.name == "add""#]),
                [true, false, false],
            ),
            (
                rule(
                    "Allow",
                    &[
                        r#"mcp.tool.name == "add""#,
                        r#"mcp.resource.target == "alpha""#,
                    ],
                ),
                [true, false, true],
            ),
            (
                rule("Deny", &[r#"mcp.tool.target == "beta""#]),
                [true, false, true],
            ),
            (
                rule("Require", &[r#"jwt.sub == "alice""#, r#"has(mcp.tool)"#]),
                [true, true, false],
            ),
            // A Deny rule whose expression errors (no jwt) does not deny.
            (rule("Deny", &[r#"jwt.sub == "bob""#]), [true, true, true]),
        ];
        for (i, (r, want)) in table.iter().enumerate() {
            let got = [r.allows(&add), r.allows(&whoami), r.allows(&readme)];
            assert_eq!(&got, want, "rule {i}: {r:?}");
        }
    }

    #[test]
    fn bad_rules_name_the_field() {
        let err = Authorization::compile("a", "Maybe", &["true".into()]).unwrap_err();
        assert!(err.0.starts_with("a.action \"Maybe\""), "{err}");
        let err = Authorization::compile("a", "Allow", &[]).unwrap_err();
        assert!(err.0.contains("a.policy.matchExpressions lists 0"), "{err}");
        let err =
            Authorization::compile("a", "Allow", &["true".into(), "mcp.tool.name = 'x'".into()])
                .unwrap_err();
        assert!(err.0.starts_with("a.policy.matchExpressions[1] "), "{err}");
    }
}
