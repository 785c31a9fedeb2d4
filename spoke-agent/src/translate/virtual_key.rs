//! Translate (pure): fleetgate's VirtualKey -> a `KIND_VIRTUAL_KEY` object carrying the SHA-256
//! of the key, never the key ([`crate::resolve::virtual_key`]).
//!
//! Every VirtualKey of the cluster is sent, so that the hub gives each one status. What the
//! agent cannot resolve or does not accept (the Secret or its data key missing, a budget window
//! that is not a duration of 1m..31d, a budget of 0) is not dropped: the key is sent with a
//! problem, which the hub reports on its status, and the backends it names serve no request
//! until it is fixed (they fail closed rather than open).

use fleetgate_proto::spoke::v1::{self as pb, Kind, Object, object};

use super::{object_header, wire_problem};
use crate::crd::VirtualKey;
use crate::crd::virtual_key::Budget;
use crate::resolve::virtual_key::key_hash;
use crate::resolve::{Index, Problem, Reason};

/// The shortest budget window, in seconds (1m).
pub const MIN_WINDOW_SECONDS: u64 = 60;
/// The longest budget window, in seconds (31d).
pub const MAX_WINDOW_SECONDS: u64 = 31 * 24 * 3600;

/// Every VirtualKey of the snapshot, sorted by namespace/name.
pub fn virtual_key_objects(keys: &[VirtualKey], index: &Index<'_>) -> Vec<Object> {
    let mut out: Vec<Object> = keys
        .iter()
        .filter_map(|k| virtual_key_object(k, index))
        .collect();
    out.sort_by_key(|o| {
        o.r#ref
            .as_ref()
            .map(|r| (r.namespace.clone(), r.name.clone()))
    });
    out
}

/// One VirtualKey (`None` without namespace or name).
pub fn virtual_key_object(k: &VirtualKey, index: &Index<'_>) -> Option<Object> {
    let mut o = object_header(Kind::VirtualKey, &k.metadata)?;
    let ns = k.metadata.namespace.as_deref()?;
    let mut out = pb::VirtualKey {
        backends: k.spec.backends.iter().map(|b| b.name.clone()).collect(),
        ..Default::default()
    };
    let budget = k.spec.budget.as_ref().map(budget).transpose();
    match budget.and_then(|b| Ok((b, key_hash(ns, &k.spec.secret_ref, index)?))) {
        Ok((budget, hash)) => {
            out.budget = budget;
            out.sha256 = hash.to_vec();
        }
        Err(p) => out.problem = Some(wire_problem(p)),
    }
    o.spec = Some(object::Spec::VirtualKey(out));
    Some(o)
}

fn unsupported(message: String) -> Problem {
    Problem {
        reason: Reason::UnsupportedValue,
        message,
    }
}

/// `spec.budget` -> the wire, or what is wrong with it.
fn budget(b: &Budget) -> Result<pb::VirtualKeyBudget, Problem> {
    let window_seconds = parse_window(&b.window).ok_or_else(|| {
        unsupported(format!(
            "spec.budget.window {:?} is not a duration of 1m to 31d; write e.g. 1m, 1h, 24h, 90m or 7d",
            b.window.chars().take(32).collect::<String>()
        ))
    })?;
    let measure = |what: &str, v: Option<i64>| -> Result<u64, Problem> {
        match v {
            None => Ok(0),
            Some(n) if n > 0 => Ok(n.unsigned_abs()),
            Some(n) => Err(unsupported(format!(
                "spec.budget.{what} is {n}; set it above 0 or remove it"
            ))),
        }
    };
    let requests = measure("requests", b.requests)?;
    let tokens = measure("tokens", b.tokens)?;
    if requests == 0 && tokens == 0 {
        return Err(unsupported(
            "spec.budget sets neither requests nor tokens; set one or remove spec.budget".into(),
        ));
    }
    Ok(pb::VirtualKeyBudget {
        requests,
        tokens,
        window_seconds,
    })
}

/// A duration written like Go's (`1h30m`, `90s`) plus `d` for days, in whole seconds, when it
/// is within [`MIN_WINDOW_SECONDS`]..=[`MAX_WINDOW_SECONDS`].
pub fn parse_window(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() {
        return None;
    }
    (MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS)
        .contains(&total)
        .then_some(total)
}

#[cfg(test)]
mod tests;
