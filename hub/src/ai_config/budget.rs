//! Budgets across AI gateway replicas: the hub is the one counter every replica asks.
//!
//! A tenant's budget (`quotas.*.aiBudget`) and a virtual key's own budget limit requests and
//! tokens per fixed window (windows start at multiples of the window's length since the Unix
//! epoch, so every replica and the hub agree on them without talking). Before a replica sends a
//! request upstream it reserves one request ([`Ledger::reserve`]); the reservation is atomic
//! here, so two replicas together never let more requests through than the budget. Tokens are
//! known only when the response ends: the replica reports them ([`Ledger::add_tokens`]), and a
//! tenant whose tokens are spent is refused from then on. A token budget can therefore be
//! exceeded by the tokens of the requests in flight when it ran out, never by more.
//!
//! Pure (the clock is a parameter); `server` holds one ledger behind a mutex and answers the
//! gateways' `Spend` calls with it. Counts live in the hub's memory: a hub restart starts the
//! current window again (docs/ai-gateway.md says so).

use std::collections::HashMap;

use crate::model::ai::{AiBudget, AiTenant};

/// The budgets a request of `tenant` presenting virtual key `key_id` (empty: none) counts
/// against: the tenant's, then the key's own when the key is one of the tenant's.
pub fn budgets(tenant: &str, ai: Option<&AiTenant>, key_id: &str) -> Vec<(Scope, AiBudget)> {
    let Some(ai) = ai else { return Vec::new() };
    let mut out = Vec::new();
    if let Some(b) = ai.budget {
        out.push((Scope::Tenant(tenant.to_string()), b));
    }
    if let Some(b) = ai.virtual_keys.get(key_id).and_then(|k| k.budget) {
        out.push((Scope::Key(tenant.to_string(), key_id.to_string()), b));
    }
    out
}

/// What one budget is counted for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The tenant, over all its routes and keys.
    Tenant(String),
    /// One virtual key of a tenant (`tenant`, `VirtualKey.id`).
    Key(String, String),
}

impl Scope {
    /// How a refusal names it to the client.
    fn describe(&self) -> String {
        match self {
            Scope::Tenant(t) => format!("tenant {t}"),
            Scope::Key(_, id) => format!("virtual key {id}"),
        }
    }

    /// `SpendReply.refused_by`: "tenant" or the key's id.
    pub fn refused_by(&self) -> String {
        match self {
            Scope::Tenant(_) => "tenant".to_string(),
            Scope::Key(_, id) => id.clone(),
        }
    }
}

/// One window's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: u64,
    length: u64,
    requests: u64,
    tokens: u64,
}

impl Window {
    fn at(now: u64, length: u64) -> Self {
        let length = length.max(1);
        Self {
            start: now - now % length,
            length,
            requests: 0,
            tokens: 0,
        }
    }

    fn end(&self) -> u64 {
        self.start.saturating_add(self.length)
    }
}

/// A refused reservation: which budget, when it starts again, and what the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    pub retry_after_seconds: u64,
    pub message: String,
}

/// Every budget's current window. Entries of windows that ended are dropped as the map grows.
#[derive(Debug, Default)]
pub struct Ledger {
    windows: HashMap<Scope, Window>,
    /// Size at the last sweep of ended windows.
    swept_at: usize,
    /// When the next sweep is due at the latest (Unix seconds).
    sweep_due: u64,
}

impl Ledger {
    /// The current window of `scope` under `budget` at `now` (a new one when it rolled over or
    /// the budget's window length changed).
    fn window(&mut self, scope: &Scope, budget: &AiBudget, now: u64) -> &mut Window {
        let fresh = Window::at(now, budget.window_seconds);
        let w = self.windows.entry(scope.clone()).or_insert(fresh);
        if w.start != fresh.start || w.length != fresh.length {
            *w = fresh;
        }
        w
    }

    /// Reserves one request under every budget in `budgets`, or none when one of them is
    /// spent (its requests used up, or its tokens used up by earlier responses).
    pub fn reserve(&mut self, budgets: &[(Scope, AiBudget)], now: u64) -> Result<(), Refusal> {
        self.sweep(now);
        for (scope, budget) in budgets {
            let w = *self.window(scope, budget, now);
            let requests_spent = budget.requests.is_some_and(|max| w.requests >= max);
            let tokens_spent = budget.tokens.is_some_and(|max| w.tokens >= max);
            if requests_spent || tokens_spent {
                let (what, max) = if requests_spent {
                    ("request", budget.requests.unwrap_or(0))
                } else {
                    ("token", budget.tokens.unwrap_or(0))
                };
                let retry_after_seconds = w.end().saturating_sub(now).max(1);
                return Err(Refusal {
                    message: format!(
                        "the {what} budget of {} ({max} {what}s per {} s) is spent; it starts again in {retry_after_seconds} s",
                        scope.describe(),
                        budget.window_seconds
                    ),
                    scope: scope.clone(),
                    retry_after_seconds,
                });
            }
        }
        for (scope, budget) in budgets {
            let w = self.window(scope, budget, now);
            w.requests = w.requests.saturating_add(1);
        }
        Ok(())
    }

    /// Adds the tokens a response used to every budget in `budgets` (in the window current
    /// now: a response that ends after its window closed counts in the next one).
    pub fn add_tokens(&mut self, budgets: &[(Scope, AiBudget)], tokens: u64, now: u64) {
        for (scope, budget) in budgets {
            let w = self.window(scope, budget, now);
            w.tokens = w.tokens.saturating_add(tokens);
        }
    }

    /// Drops ended windows when the map has doubled since the last sweep or a minute has
    /// passed, so the map stays about the size of the budgets in use at a small cost.
    fn sweep(&mut self, now: u64) {
        if self.windows.len() < self.swept_at * 2 + 64 && now < self.sweep_due {
            return;
        }
        self.windows.retain(|_, w| w.end() > now);
        self.swept_at = self.windows.len();
        self.sweep_due = now.saturating_add(60);
    }

    /// Requests and tokens counted in `scope`'s current window (for tests and the dashboard).
    pub fn used(&self, scope: &Scope, now: u64) -> (u64, u64) {
        match self.windows.get(scope) {
            Some(w) if w.start <= now && now < w.end() => (w.requests, w.tokens),
            _ => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(requests: Option<u64>, tokens: Option<u64>, window_seconds: u64) -> AiBudget {
        AiBudget {
            requests,
            tokens,
            window_seconds,
        }
    }

    fn tenant(t: &str) -> Scope {
        Scope::Tenant(t.into())
    }

    #[test]
    fn requests_are_refused_past_the_budget_until_the_window_rolls_over() {
        let mut l = Ledger::default();
        let b = [(tenant("a"), budget(Some(2), None, 60))];
        assert_eq!(l.reserve(&b, 120), Ok(()));
        assert_eq!(l.reserve(&b, 130), Ok(()));
        let refused = l.reserve(&b, 150).unwrap_err();
        assert_eq!(refused.scope, tenant("a"));
        assert_eq!(refused.retry_after_seconds, 30);
        assert_eq!(
            refused.message,
            "the request budget of tenant a (2 requests per 60 s) is spent; it starts again in 30 s"
        );
        // The next window (180..240) starts empty.
        assert_eq!(l.reserve(&b, 180), Ok(()));
        assert_eq!(l.used(&tenant("a"), 181), (1, 0));
    }

    #[test]
    fn tokens_refuse_once_spent_and_may_overshoot_by_the_requests_in_flight() {
        let mut l = Ledger::default();
        let b = [(tenant("a"), budget(None, Some(100), 3600))];
        // Two requests in flight at once: both reserved before either reported tokens.
        assert_eq!(l.reserve(&b, 10), Ok(()));
        assert_eq!(l.reserve(&b, 10), Ok(()));
        l.add_tokens(&b, 80, 11);
        l.add_tokens(&b, 80, 12);
        assert_eq!(l.used(&tenant("a"), 12), (2, 160));
        let refused = l.reserve(&b, 13).unwrap_err();
        assert!(
            refused
                .message
                .starts_with("the token budget of tenant a (100 tokens per 3600 s) is spent"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_key_and_its_tenant_are_counted_together_and_either_refuses() {
        let mut l = Ledger::default();
        let key = Scope::Key("a".into(), "c1/team/alice".into());
        let both = [
            (tenant("a"), budget(Some(3), None, 60)),
            (key.clone(), budget(Some(1), None, 60)),
        ];
        assert_eq!(l.reserve(&both, 0), Ok(()));
        let refused = l.reserve(&both, 1).unwrap_err();
        assert_eq!(refused.scope.refused_by(), "c1/team/alice");
        // A refused reservation takes nothing from the other budgets.
        assert_eq!(l.used(&tenant("a"), 1), (1, 0));
        // Requests without the key still use the tenant's budget.
        let tenant_only = [(tenant("a"), budget(Some(3), None, 60))];
        assert_eq!(l.reserve(&tenant_only, 2), Ok(()));
        assert_eq!(l.reserve(&tenant_only, 3), Ok(()));
        assert_eq!(
            l.reserve(&tenant_only, 4).unwrap_err().scope.refused_by(),
            "tenant"
        );
    }

    #[test]
    fn tenants_do_not_share_budgets_and_a_changed_window_starts_afresh() {
        let mut l = Ledger::default();
        let a = [(tenant("a"), budget(Some(1), None, 60))];
        let b = [(tenant("b"), budget(Some(1), None, 60))];
        assert_eq!(l.reserve(&a, 0), Ok(()));
        assert!(l.reserve(&a, 0).is_err());
        assert_eq!(l.reserve(&b, 0), Ok(()));
        let a_hourly = [(tenant("a"), budget(Some(1), None, 3600))];
        assert_eq!(l.reserve(&a_hourly, 1), Ok(()));
    }

    #[test]
    fn a_request_counts_against_its_tenant_and_its_own_key_only() {
        use crate::model::ai::VirtualKey;
        let tb = budget(Some(10), None, 60);
        let kb = budget(None, Some(500), 60);
        let key = |id: &str, budget| VirtualKey {
            id: id.into(),
            sha256: [0; 32],
            routes: vec![],
            budget,
            source: crate::ai_config::convert::tests::source("a", id),
        };
        let ai = AiTenant {
            budget: Some(tb),
            virtual_keys: [
                ("c1/ns/k".to_string(), key("c1/ns/k", Some(kb))),
                ("c1/ns/free".to_string(), key("c1/ns/free", None)),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(
            budgets("a", Some(&ai), "c1/ns/k"),
            [
                (tenant("a"), tb),
                (Scope::Key("a".into(), "c1/ns/k".into()), kb)
            ]
        );
        assert_eq!(budgets("a", Some(&ai), "c1/ns/free"), [(tenant("a"), tb)]);
        assert_eq!(
            budgets("a", Some(&ai), "c1/ns/unknown"),
            [(tenant("a"), tb)]
        );
        assert_eq!(budgets("a", None, ""), []);
    }

    #[test]
    fn ended_windows_are_swept() {
        let mut l = Ledger::default();
        for i in 0..200 {
            let b = [(tenant(&format!("t{i}")), budget(Some(5), None, 60))];
            l.reserve(&b, 0).unwrap();
        }
        let b = [(tenant("late"), budget(Some(5), None, 60))];
        l.reserve(&b, 600).unwrap();
        assert_eq!(l.windows.len(), 1);
    }
}
