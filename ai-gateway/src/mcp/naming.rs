//! Federated names: a target's tool or prompt `add` is `<target>_add` and its resource
//! `memo://x` is `<target>+memo://x` when the backend's prefix mode says so; lists from every
//! target merge into one, and a federated name splits back into the target and its own name.
//! Target names have neither `_` nor `+` ([`crate::config::mcp::is_target_name`]), so a name
//! splits at its first separator and a prefixed name can never be claimed by two targets. Pure.

use serde_json::Value;

/// The lists the gateway merges, and the field of each entry that carries the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    /// The method that lists them.
    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The result's field holding the list.
    pub fn field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The entry's field holding its name or URI.
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools | Self::Prompts => "name",
            Self::Resources => "uri",
            Self::ResourceTemplates => "uriTemplate",
        }
    }

    /// The separator between target and name: `_` for names, `+` for URIs.
    pub fn separator(self) -> char {
        match self {
            Self::Tools | Self::Prompts => '_',
            Self::Resources | Self::ResourceTemplates => '+',
        }
    }
}

/// `name` of `target` as the client sees it.
pub fn federated(kind: ListKind, prefix: bool, target: &str, name: &str) -> String {
    if prefix {
        format!("{target}{}{name}", kind.separator())
    } else {
        name.to_string()
    }
}

/// The target (by index in `targets`) and its own name, for a prefixed federated `name`;
/// `None` when it names no target.
pub fn split<'a>(kind: ListKind, targets: &[&str], name: &'a str) -> Option<(usize, &'a str)> {
    let (t, rest) = name.split_once(kind.separator())?;
    let i = targets.iter().position(|x| *x == t)?;
    Some((i, rest))
}

/// What a merge left out: an entry whose federated name an earlier target already had (only
/// without prefixes), or one without a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub target: String,
    pub name: String,
    pub why: &'static str,
}

/// Merges the lists of every target (in the backend's order) into the client's list: each
/// entry renamed, the first of equal names kept.
pub fn merge(
    kind: ListKind,
    prefix: bool,
    per_target: Vec<(String, Vec<Value>)>,
) -> (Vec<Value>, Vec<Dropped>) {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    for (target, entries) in per_target {
        for mut e in entries {
            let Some(name) = e
                .get(kind.key())
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                dropped.push(Dropped {
                    target: target.clone(),
                    name: String::new(),
                    why: "has no name",
                });
                continue;
            };
            let fed = federated(kind, prefix, &target, &name);
            if !seen.insert(fed.clone()) {
                dropped.push(Dropped {
                    target: target.clone(),
                    name,
                    why: "an earlier target offers the same name (prefixMode Never)",
                });
                continue;
            }
            e[kind.key()] = Value::String(fed);
            out.push(e);
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools(names: &[&str]) -> Vec<Value> {
        names.iter().map(|n| json!({"name": n})).collect()
    }

    fn names(v: &[Value], key: &str) -> Vec<String> {
        v.iter()
            .map(|e| e[key].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn prefixed_names_merge_and_split_back_to_their_target() {
        let (merged, dropped) = merge(
            ListKind::Tools,
            true,
            vec![
                ("alpha".into(), tools(&["add", "beta_add"])),
                ("beta".into(), tools(&["add"])),
            ],
        );
        assert!(dropped.is_empty());
        assert_eq!(
            names(&merged, "name"),
            ["alpha_add", "alpha_beta_add", "beta_add"]
        );
        let targets = ["alpha", "beta"];
        // A tool named to look like another target's is still its own target's.
        assert_eq!(
            split(ListKind::Tools, &targets, "alpha_beta_add"),
            Some((0, "beta_add"))
        );
        assert_eq!(
            split(ListKind::Tools, &targets, "beta_add"),
            Some((1, "add"))
        );
        assert_eq!(split(ListKind::Tools, &targets, "gamma_add"), None);
        assert_eq!(split(ListKind::Tools, &targets, "add"), None);
        assert_eq!(
            split(ListKind::Resources, &targets, "beta+memo://beta/readme"),
            Some((1, "memo://beta/readme"))
        );
    }

    #[test]
    fn without_prefixes_the_first_target_keeps_a_name_and_the_rest_are_reported() {
        let (merged, dropped) = merge(
            ListKind::Tools,
            false,
            vec![
                ("alpha".into(), tools(&["add", "only_a"])),
                ("beta".into(), tools(&["add", "only_b"])),
            ],
        );
        assert_eq!(names(&merged, "name"), ["add", "only_a", "only_b"]);
        assert_eq!(dropped.len(), 1);
        assert_eq!(
            (dropped[0].target.as_str(), dropped[0].name.as_str()),
            ("beta", "add")
        );
    }

    #[test]
    fn resources_and_templates_are_prefixed_with_a_plus() {
        let (merged, _) = merge(
            ListKind::ResourceTemplates,
            true,
            vec![("alpha".into(), vec![json!({"uriTemplate": "memo://a/{x}"})])],
        );
        assert_eq!(names(&merged, "uriTemplate"), ["alpha+memo://a/{x}"]);
    }
}
