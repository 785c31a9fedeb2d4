//! A2A telemetry per tenant, in the style of [`crate::usage`]: in-memory totals keyed by
//! bounded labels only — tenant, route and method ([`super::jsonrpc::label`]: the A2A methods
//! of both protocol versions, `card` for agent card fetches, `other`) — never a task id or a
//! URL. Task ids go to the log line of each call (`tracing`), not to labels.
//!
//! Per key: calls, errors (HTTP status >= 400 or a JSON-RPC `error`), streamed calls, events
//! passed on in streams, and the task states seen in answers and events (counted by
//! [`super::jsonrpc::STATES`], a fixed set). Also, per route, the agent's name and skills from
//! the last card the gateway fetched ([`CardSummary`]), which is what a tenant's agent catalog
//! shows. Metrics export comes with issue 13, like the usage counters'.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::Value;

/// What A2A totals are counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct A2aKey {
    pub tenant: String,
    pub route: String,
    /// A [`super::jsonrpc::METHODS`] entry.
    pub method: &'static str,
}

/// Totals of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct A2aTotals {
    pub calls: u64,
    pub errors: u64,
    pub streamed: u64,
    /// SSE events passed on to clients.
    pub events: u64,
    /// Task states seen in answers and streamed events, by state label.
    pub states: BTreeMap<&'static str, u64>,
}

/// A skill of an agent, as its card names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    pub id: String,
    pub name: String,
}

/// The agent's name and skills from the last card fetched through a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub name: String,
    pub skills: Vec<Skill>,
}

/// The most skills kept per card, and the longest name or id kept (characters).
pub const MAX_SKILLS: usize = 64;
const MAX_TEXT: usize = 128;

impl CardSummary {
    /// The summary of a card (the rewritten one: what clients see).
    pub fn of(card: &Value) -> Self {
        let text = |v: Option<&Value>| -> String {
            v.and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(MAX_TEXT)
                .collect()
        };
        Self {
            name: text(card.get("name")),
            skills: card
                .get("skills")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .take(MAX_SKILLS)
                .map(|s| Skill {
                    id: text(s.get("id")),
                    name: text(s.get("name")),
                })
                .collect(),
        }
    }
}

/// One finished call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecord {
    pub error: bool,
    pub streamed: bool,
    pub events: u64,
    pub states: Vec<&'static str>,
}

/// The gateway's A2A totals, shared by every request.
#[derive(Debug, Default)]
pub struct A2aTelemetry {
    totals: Mutex<HashMap<A2aKey, A2aTotals>>,
    cards: Mutex<BTreeMap<(String, String), CardSummary>>,
}

impl A2aTelemetry {
    pub fn record(&self, key: A2aKey, call: CallRecord) {
        let mut map = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let t = map.entry(key).or_default();
        t.calls += 1;
        t.errors += u64::from(call.error);
        t.streamed += u64::from(call.streamed);
        t.events += call.events;
        for s in call.states {
            *t.states.entry(s).or_default() += 1;
        }
    }

    /// Keeps the summary of the card last fetched through `(tenant, route)`.
    pub fn record_card(&self, tenant: &str, route: &str, card: CardSummary) {
        let mut cards = self.cards.lock().unwrap_or_else(|p| p.into_inner());
        cards.insert((tenant.to_string(), route.to_string()), card);
    }

    /// Every key's totals, sorted.
    pub fn snapshot(&self) -> Vec<(A2aKey, A2aTotals)> {
        let map = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The totals of one key.
    pub fn totals(&self, tenant: &str, route: &str, method: &str) -> A2aTotals {
        let map = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .find(|(k, _)| k.tenant == tenant && k.route == route && k.method == method)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// A tenant's agents as their cards last said: route -> summary.
    pub fn agents(&self, tenant: &str) -> BTreeMap<String, CardSummary> {
        let cards = self.cards.lock().unwrap_or_else(|p| p.into_inner());
        cards
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, r), c)| (r.clone(), c.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn totals_add_up_per_tenant_route_and_method() {
        let t = A2aTelemetry::default();
        let key = |tenant: &str, method: &'static str| A2aKey {
            tenant: tenant.into(),
            route: "c1/ns/agent".into(),
            method,
        };
        t.record(
            key("a", "message/send"),
            CallRecord {
                states: vec!["completed"],
                ..Default::default()
            },
        );
        t.record(
            key("a", "message/stream"),
            CallRecord {
                streamed: true,
                events: 3,
                states: vec!["working", "completed"],
                ..Default::default()
            },
        );
        t.record(
            key("a", "message/send"),
            CallRecord {
                error: true,
                ..Default::default()
            },
        );
        t.record(key("b", "message/send"), CallRecord::default());
        let send = t.totals("a", "c1/ns/agent", "message/send");
        assert_eq!((send.calls, send.errors), (2, 1));
        assert_eq!(send.states, [("completed", 1)].into());
        let stream = t.totals("a", "c1/ns/agent", "message/stream");
        assert_eq!((stream.streamed, stream.events), (1, 3));
        assert_eq!(t.totals("b", "c1/ns/agent", "message/send").calls, 1);
        assert_eq!(t.snapshot().len(), 3);
    }

    #[test]
    fn cards_are_summarised_bounded_and_per_tenant() {
        let t = A2aTelemetry::default();
        let skills: Vec<Value> = (0..100)
            .map(|i| json!({"id": format!("s{i}"), "name": "n".repeat(500)}))
            .collect();
        let card = json!({"name": "echo", "skills": skills});
        t.record_card("a", "r", CardSummary::of(&card));
        let agents = t.agents("a");
        assert_eq!(agents["r"].name, "echo");
        assert_eq!(agents["r"].skills.len(), MAX_SKILLS);
        assert_eq!(agents["r"].skills[0].name.len(), MAX_TEXT);
        assert!(t.agents("b").is_empty());
        assert_eq!(
            CardSummary::of(&json!("no card")),
            CardSummary {
                name: String::new(),
                skills: vec![]
            }
        );
    }
}
