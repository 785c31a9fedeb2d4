//! Admission of route rule names (`rules[].name`, Gateway API "named route rules", GEP-995) for
//! HTTPRoutes and GRPCRoutes.
//!
//! Where it sits: step 5 (admit), pure, called by `super::admit_rule` / `super::grpc` for each
//! rule and once per route for uniqueness. A tenant cluster's CRD already enforces both (the
//! `SectionName` pattern and a CEL rule that names are unique); the hub checks again because
//! an agent may send objects its API server never validated (`--manifests DIR`), and the hub
//! trusts no spoke.

use std::collections::BTreeSet;

use super::{Rejection, reject};

/// Longest rule name (the Gateway API `SectionName` limit).
pub const MAX_RULE_NAME_LEN: usize = 253;

/// `rules[i].name`: empty means unnamed; otherwise a `SectionName`: 1 to 253 lower-case
/// letters, digits and `-`, starting and ending with a letter or digit (no dots).
pub fn admit_rule_name(i: usize, name: &str) -> Result<Option<String>, Rejection> {
    if name.is_empty() {
        return Ok(None);
    }
    let ok = name.len() <= MAX_RULE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(Some(name.to_string()))
    } else {
        let shown: String = name.chars().take(64).collect();
        reject(
            "UnsupportedValue",
            format!(
                "rules[{i}].name {shown:?} is not a valid rule name: use 1 to {MAX_RULE_NAME_LEN} lower-case letters, digits and '-', starting and ending with a letter or digit"
            ),
        )
    }
}

/// Rule names must be unique within a route (unnamed rules may be many).
pub fn check_unique<'a>(names: impl IntoIterator<Item = Option<&'a str>>) -> Result<(), Rejection> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.into_iter().enumerate() {
        let Some(name) = name else { continue };
        if !seen.insert(name) {
            return reject(
                "UnsupportedValue",
                format!(
                    "rules[{i}].name {name:?} is used by an earlier rule of this route; rule names must be unique within a route"
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Fixture;
    use super::super::{Admitted, admit};
    use super::*;
    use fleetgate_proto::spoke::v1 as pb;

    #[test]
    fn rule_name_table() {
        let long_ok = "a".repeat(MAX_RULE_NAME_LEN);
        let too_long = "a".repeat(MAX_RULE_NAME_LEN + 1);
        // (name, admitted as)
        let cases: [(&str, Result<Option<&str>, ()>); 9] = [
            ("", Ok(None)),
            ("read", Ok(Some("read"))),
            ("rule-1", Ok(Some("rule-1"))),
            ("0", Ok(Some("0"))),
            (&long_ok, Ok(Some(&long_ok))),
            (&too_long, Err(())),
            ("Read", Err(())),
            ("a.b", Err(())),
            ("-a", Err(())),
        ];
        for (name, want) in cases {
            let got = admit_rule_name(2, name);
            match want {
                Ok(w) => assert_eq!(got.unwrap().as_deref(), w, "{name:?}"),
                Err(()) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.reason, "UnsupportedValue", "{name:?}");
                    assert!(e.message.contains("rules[2].name"), "{}", e.message);
                }
            }
        }
        assert!(admit_rule_name(0, "b-").is_err());
    }

    /// An HTTPRoute or GRPCRoute with one rule per name.
    fn route(kind: pb::Kind, names: &[&str]) -> pb::Object {
        let spec = match kind {
            pb::Kind::GrpcRoute => pb::object::Spec::GrpcRoute(pb::GrpcRoute {
                rules: names
                    .iter()
                    .map(|n| pb::GrpcRouteRule {
                        name: n.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            _ => pb::object::Spec::HttpRoute(pb::HttpRoute {
                rules: names
                    .iter()
                    .map(|n| pb::HttpRouteRule {
                        name: n.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        };
        pb::Object {
            r#ref: Some(pb::ObjectRef {
                kind: kind as i32,
                namespace: "default".into(),
                name: "web".into(),
            }),
            generation: 1,
            creation_timestamp: "2026-01-01T00:00:00Z".into(),
            spec: Some(spec),
        }
    }

    #[test]
    fn routes_carry_rule_names_and_duplicates_reject_the_route() {
        let f = Fixture::new();
        for kind in [pb::Kind::HttpRoute, pb::Kind::GrpcRoute] {
            let names: Vec<Option<String>> =
                match admit(&route(kind, &["read", "", "write"]), &f.policy()) {
                    Ok(Admitted::HttpRoute(r)) => r.rules.into_iter().map(|r| r.name).collect(),
                    Ok(Admitted::GrpcRoute(r)) => r.rules.into_iter().map(|r| r.name).collect(),
                    other => panic!("{kind:?}: {other:?}"),
                };
            assert_eq!(
                names,
                vec![Some("read".to_string()), None, Some("write".to_string())]
            );
            let e = admit(&route(kind, &["read", "read"]), &f.policy()).unwrap_err();
            assert_eq!(e.reason, "UnsupportedValue");
            assert!(e.message.contains("unique"), "{kind:?}: {}", e.message);
            let e = admit(&route(kind, &["Read"]), &f.policy()).unwrap_err();
            assert!(
                e.message.contains("rules[0].name"),
                "{kind:?}: {}",
                e.message
            );
        }
    }

    #[test]
    fn duplicate_names_are_rejected_and_unnamed_rules_are_not() {
        assert!(check_unique([None, None, Some("a"), Some("b")]).is_ok());
        let e = check_unique([Some("a"), None, Some("a")]).unwrap_err();
        assert!(
            e.message.contains("rules[2].name \"a\"") && e.message.contains("unique"),
            "{}",
            e.message
        );
    }
}
