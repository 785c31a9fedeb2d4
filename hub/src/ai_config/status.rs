//! What the AI gateways serve and refuse, for operators and for the tenants' status.
//!
//! Every AI config stream records its gateway's [`GatewayView`] in one
//! `watch::Sender<AiGatewayHealth>` (as every ADS stream records its NACKs in `XdsHealth`);
//! the compile loop reads it and [`apply_refusals`] marks the AgentgatewayBackends behind a
//! refused tenant version `Programmed=False`, the way `run::compile_view` surfaces Envoy's
//! NACKs on the objects they came from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::model::snapshot::SourceObject;
use crate::model::{ClusterKey, Condition, ObjectStatus};

/// Every connected AI gateway stream's view, by stream number (a replica that reconnects
/// before its old stream is noticed closed has two entries for a moment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AiGatewayHealth {
    pub streams: BTreeMap<u64, GatewayView>,
}

/// What one gateway replica serves and refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayView {
    /// `Hello.gateway_id`.
    pub gateway_id: String,
    /// Tenant -> the version it serves (from Hello, then from every Ack).
    pub serving: BTreeMap<String, u64>,
    /// Tenant -> the last version it refused, while that is the tenant's newest version sent.
    pub refused: BTreeMap<String, Refusal>,
}

/// One refused tenant version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub version: u64,
    /// The gateway's reason (it names the field; it never holds a key).
    pub reason: String,
    /// The AgentgatewayBackends blamed: those whose route the reason names, else all of the
    /// tenant's.
    pub sources: BTreeSet<SourceObject>,
}

impl AiGatewayHealth {
    /// Every standing refusal: (gateway id, tenant, refusal).
    pub fn refusals(&self) -> impl Iterator<Item = (&str, &str, &Refusal)> {
        self.streams.values().flat_map(|g| {
            g.refused
                .iter()
                .map(move |(t, r)| (g.gateway_id.as_str(), t.as_str(), r))
        })
    }
}

/// Marks every object a standing refusal blames `Programmed=False` (reason `Invalid`) with the
/// gateway's reason. Objects without a status (not compiled) are left alone, as for NACKs.
pub fn apply_refusals(
    statuses: &mut BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>>,
    health: &AiGatewayHealth,
) {
    for (gateway, tenant, refusal) in health.refusals() {
        let message = format!(
            "AI gateway {gateway} refused version {} of tenant {tenant}'s AI configuration and serves the previous one: {}",
            refusal.version,
            refusal.reason.chars().take(512).collect::<String>()
        );
        for src in &refusal.sources {
            let Some(status) = statuses
                .get_mut(&src.cluster)
                .and_then(|l| Arc::make_mut(l).iter_mut().find(|s| s.key == src.object))
            else {
                continue;
            };
            status.conditions.retain(|c| c.type_ != "Programmed");
            status
                .conditions
                .push(Condition::new("Programmed", false, "Invalid", &message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai_config::convert::tests::source;

    fn status(src: &SourceObject) -> ObjectStatus {
        ObjectStatus {
            key: src.object.clone(),
            observed_generation: 3,
            conditions: vec![
                Condition::new("Accepted", true, "Accepted", ""),
                Condition::new("Programmed", true, "Programmed", ""),
            ],
            addresses: vec![],
            listeners: vec![],
            parents: vec![],
            load_balancer: vec![],
            attached_listener_sets: 0,
        }
    }

    #[test]
    fn a_refusal_marks_the_blamed_backends_only() {
        let (bad, good, other) = (source("a", "bad"), source("a", "good"), source("b", "x"));
        let mut statuses: BTreeMap<ClusterKey, Arc<Vec<ObjectStatus>>> = BTreeMap::new();
        statuses.insert(
            bad.cluster.clone(),
            Arc::new(vec![status(&bad), status(&good)]),
        );
        statuses.insert(other.cluster.clone(), Arc::new(vec![status(&other)]));
        let untouched = statuses.clone();
        apply_refusals(&mut statuses, &AiGatewayHealth::default());
        assert_eq!(statuses, untouched);

        let view = GatewayView {
            gateway_id: "gw-0".into(),
            serving: [("a".to_string(), 7)].into(),
            refused: [(
                "a".to_string(),
                Refusal {
                    version: 8,
                    reason: "tenants.a.routes.c1/llm/bad.ai.provider.port: 0 is not a port".into(),
                    // A source whose object has no status is skipped.
                    sources: [bad.clone(), source("a", "gone")].into(),
                },
            )]
            .into(),
        };
        let health = AiGatewayHealth {
            streams: [(1, view)].into(),
        };
        apply_refusals(&mut statuses, &health);
        let find = |s: &SourceObject| {
            statuses[&s.cluster]
                .iter()
                .find(|o| o.key == s.object)
                .unwrap()
                .clone()
        };
        let marked = find(&bad);
        let programmed: Vec<_> = marked
            .conditions
            .iter()
            .filter(|c| c.type_ == "Programmed")
            .collect();
        assert_eq!(programmed.len(), 1);
        assert!(!programmed[0].status);
        assert_eq!(programmed[0].reason, "Invalid");
        assert!(
            programmed[0]
                .message
                .contains("AI gateway gw-0 refused version 8")
                && programmed[0].message.contains("0 is not a port"),
            "{}",
            programmed[0].message
        );
        assert!(
            marked
                .conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && c.status)
        );
        assert_eq!(find(&good), status(&good));
        assert_eq!(find(&other), status(&other));
    }
}
