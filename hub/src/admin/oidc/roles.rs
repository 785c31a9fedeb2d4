//! Which role a verified ID token earns (`adminOidc.roles`), and the operator name it logs in
//! as. Pure. A claim value listed under `admin` makes an admin, else one under `viewer` a
//! viewer; anything else is refused: there is no default role. When the claim is `email`, an
//! address the provider marks unverified (`email_verified: false`) is refused too.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::admin::operator_token::{Role, is_label};

/// Why a verified login gets no role. Shown on the login page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error(
        "you signed in at the provider, but your ID token has no {claim:?} claim, so the hub gives you no role: ask the hub's operator to map you in adminOidc.roles"
    )]
    MissingClaim { claim: String },
    #[error(
        "you signed in at the provider as {who}, but no role is mapped to your {claim} ({values}): ask the hub's operator to add you to adminOidc.roles"
    )]
    NotMapped {
        who: String,
        claim: String,
        values: String,
    },
    #[error(
        "the provider has not verified your email address, so the hub does not trust it for a role"
    )]
    UnverifiedEmail,
}

/// The mapping of `adminOidc.roles`.
#[derive(Debug, Clone, Copy)]
pub struct Mapping<'a> {
    pub claim: &'a str,
    pub viewer: &'a BTreeSet<String>,
    pub admin: &'a BTreeSet<String>,
}

/// The claim's values: a string, or the strings of a list.
fn values<'a>(claims: &'a Value, claim: &str) -> Option<Vec<&'a str>> {
    match claims.get(claim)? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// The role `claims` earn under `mapping`.
pub fn role(claims: &Value, mapping: Mapping<'_>) -> Result<Role, RoleError> {
    let found = values(claims, mapping.claim).ok_or_else(|| RoleError::MissingClaim {
        claim: mapping.claim.to_string(),
    })?;
    if mapping.claim == "email" && claims.get("email_verified") == Some(&Value::Bool(false)) {
        return Err(RoleError::UnverifiedEmail);
    }
    if found.iter().any(|v| mapping.admin.contains(*v)) {
        return Ok(Role::Admin);
    }
    if found.iter().any(|v| mapping.viewer.contains(*v)) {
        return Ok(Role::Viewer);
    }
    let mut shown: Vec<String> = found.iter().take(10).map(|v| format!("{v:?}")).collect();
    if found.is_empty() {
        shown.push("none".into());
    }
    Err(RoleError::NotMapped {
        who: who(claims),
        claim: mapping.claim.to_string(),
        values: shown.join(", "),
    })
}

/// Who the token speaks for, as the provider names them: `email`, else
/// `preferred_username`, else `sub`.
pub fn who(claims: &Value) -> String {
    ["email", "preferred_username", "sub"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(Value::as_str))
        .unwrap_or("?")
        .to_string()
}

/// The operator name (a DNS label, what operator tokens carry) for `who`: lower-cased, every
/// other character a `-`, at most 63 characters.
pub fn operator_name(who: &str) -> String {
    let mut name: String = who
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if is_label(&name) && !name.is_empty() {
        name
    } else {
        "oidc-user".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listed_values_earn_their_role_admin_first_and_nothing_else_earns_one() {
        let (viewer, admin) = (set(&["fleet-viewers"]), set(&["fleet-admins"]));
        let m = Mapping {
            claim: "groups",
            viewer: &viewer,
            admin: &admin,
        };
        let groups = |g: Value| json!({"sub": "u1", "email": "a@x.test", "groups": g});
        assert_eq!(role(&groups(json!(["fleet-viewers"])), m), Ok(Role::Viewer));
        assert_eq!(
            role(&groups(json!(["fleet-viewers", "fleet-admins"])), m),
            Ok(Role::Admin)
        );
        assert_eq!(role(&groups(json!("fleet-admins")), m), Ok(Role::Admin));
        let refused = role(&groups(json!(["devs"])), m).unwrap_err();
        assert!(
            matches!(&refused, RoleError::NotMapped { who, values, .. } if who == "a@x.test" && values == "\"devs\""),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("no role is mapped"));
        assert!(matches!(
            role(&groups(json!([])), m),
            Err(RoleError::NotMapped { .. })
        ));
        assert_eq!(
            role(&json!({"sub": "u1"}), m),
            Err(RoleError::MissingClaim {
                claim: "groups".into()
            })
        );
        // Case matters: "Fleet-Admins" is another group.
        assert!(role(&groups(json!(["Fleet-Admins"])), m).is_err());
        // A number is not a value.
        assert!(role(&groups(json!(7)), m).is_err());
    }

    #[test]
    fn an_unverified_email_earns_no_role() {
        let (viewer, admin) = (set(&[]), set(&["alice@x.test"]));
        let m = Mapping {
            claim: "email",
            viewer: &viewer,
            admin: &admin,
        };
        assert_eq!(
            role(&json!({"email": "alice@x.test", "email_verified": true}), m),
            Ok(Role::Admin)
        );
        assert_eq!(
            role(
                &json!({"email": "alice@x.test", "email_verified": false}),
                m
            ),
            Err(RoleError::UnverifiedEmail)
        );
    }

    #[test]
    fn operator_names_are_dns_labels() {
        assert_eq!(
            operator_name("Alice.Smith@Example.test"),
            "alice-smith-example-test"
        );
        assert_eq!(operator_name("ü"), "oidc-user");
        assert_eq!(operator_name(&"a".repeat(80)).len(), 63);
        assert!(is_label(&operator_name("-x-")));
    }
}
