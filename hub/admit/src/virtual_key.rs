//! VirtualKeys (fleetgate.dev/v1alpha1): the wire `VirtualKey` -> the model's
//! [`VirtualKeyIntent`], after the checks one object allows on its own.
//!
//! Where it sits: inside `admit`, pure, called by [`super::admit`] for `KIND_VIRTUAL_KEY`.
//! - the hash: exactly 32 bytes (SHA-256); the key itself never reaches the hub;
//! - `backends`: 1..=[`MAX_KEY_BACKENDS`] names of AgentgatewayBackends. The wire carries names
//!   only, so a key can only ever name backends of its own cluster and namespace; a name that
//!   is not a Kubernetes name (a `ns/name`, a path) is refused;
//! - the budget: a window of [`MIN_WINDOW_SECONDS`]..=[`MAX_WINDOW_SECONDS`], requests and
//!   tokens above 0 when set, at least one of them set;
//! - the agent's `problem` (Secret or key missing) is kept: the key is stored with it and reports
//!   it as ResolvedRefs=False.
//!
//! What needs the other objects (does each backend exist, does one pass the client's
//! Authorization through, is the same key used twice in the tenant) is decided by compile
//! (`fleetgate-hub-compile`'s `virtual_keys`), which sees them all.

use fleetgate_proto::spoke::v1 as pb;

use super::{Rejection, check_k8s_name, reject};
use crate::model::ai::{AiBudget, VirtualKeyIntent};
use crate::model::{BackendProblem, Meta};

/// The most AgentgatewayBackends one VirtualKey may open.
pub const MAX_KEY_BACKENDS: usize = 16;
/// The shortest budget window: one minute.
pub const MIN_WINDOW_SECONDS: u64 = 60;
/// The longest budget window: 31 days.
pub const MAX_WINDOW_SECONDS: u64 = 31 * 24 * 3600;

/// Admits one VirtualKey.
pub fn admit_virtual_key(meta: Meta, k: &pb::VirtualKey) -> Result<VirtualKeyIntent, Rejection> {
    if k.backends.is_empty() || k.backends.len() > MAX_KEY_BACKENDS {
        return reject(
            "UnsupportedValue",
            format!(
                "spec.backends lists {} AgentgatewayBackends; list 1 to {MAX_KEY_BACKENDS} of this namespace",
                k.backends.len()
            ),
        );
    }
    let mut backends: Vec<String> = Vec::with_capacity(k.backends.len());
    for (i, name) in k.backends.iter().enumerate() {
        check_k8s_name(&format!("spec.backends[{i}].name"), name, 253).map_err(|e| Rejection {
            reason: e.reason,
            message: format!(
                "{}; name an AgentgatewayBackend of namespace {} (a VirtualKey opens backends of its own namespace only)",
                e.message, meta.namespace
            ),
        })?;
        if !backends.contains(name) {
            backends.push(name.clone());
        }
    }
    let budget = k.budget.as_ref().map(budget).transpose()?;
    let sha256 = match &k.problem {
        Some(p) => Err(problem(p)),
        None => match <[u8; 32]>::try_from(k.sha256.as_slice()) {
            Ok(h) => Ok(h),
            Err(_) => {
                return reject(
                    "UnsupportedValue",
                    format!(
                        "the key's hash is {} bytes, a SHA-256 has 32; upgrade the agent",
                        k.sha256.len()
                    ),
                );
            }
        },
    };
    Ok(VirtualKeyIntent {
        meta,
        sha256,
        backends,
        budget,
    })
}

fn budget(b: &pb::VirtualKeyBudget) -> Result<AiBudget, Rejection> {
    if !(MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS).contains(&b.window_seconds) {
        return reject(
            "UnsupportedValue",
            format!(
                "spec.budget.window is {} s; use 1m to 31d (e.g. 1m, 1h, 24h)",
                b.window_seconds
            ),
        );
    }
    if b.requests == 0 && b.tokens == 0 {
        return reject(
            "UnsupportedValue",
            "spec.budget limits nothing; set requests or tokens (above 0), or remove spec.budget",
        );
    }
    Ok(AiBudget {
        requests: (b.requests > 0).then_some(b.requests),
        tokens: (b.tokens > 0).then_some(b.tokens),
        window_seconds: b.window_seconds,
    })
}

/// The agent's problem, with a reason from the ones it may send.
fn problem(p: &pb::BackendProblem) -> BackendProblem {
    BackendProblem {
        reason: match p.reason.as_str() {
            r @ ("BackendNotFound" | "UnsupportedValue" | "RefNotPermitted") => r.to_string(),
            _ => "BackendNotFound".to_string(),
        },
        message: p.message.chars().take(512).collect(),
    }
}
