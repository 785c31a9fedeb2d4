//! One tenant's AI usage as the admin API and the dashboard show it (`GET
//! /api/v1/tenants/<tenant>/ai-usage`, the tenant page's "AI usage" section): tokens and
//! requests per backend kind and model as the AI gateways report them ([`UsageBook`]), its
//! budgets and what is left of them in the current window (the hub's budget [`Ledger`]), its MCP
//! routes with their targets and tools pinned and withheld ([`PinBook`]), and its A2A agents
//! ([`crate::model::a2a_catalog`]). Pure: the caller reads the shared state once.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ai_config::budget::{Ledger, Scope};
use crate::ai_config::pins::PinBook;
use crate::ai_config::usage::{Counts, UsageBook, UsageRow};
use crate::model::a2a_catalog::a2a_catalog;
use crate::model::ai::{AiBudget, AiRouteTarget, AiSnapshot, AiTenant};

/// A tenant's AI usage, budgets and catalogs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AiUsageView {
    /// Every row summed.
    pub total: Counts,
    /// By backend kind and model (a model the tenant's configuration does not name: `other`),
    /// summed over AI gateway replicas since the hub started.
    pub usage: Vec<UsageRow>,
    pub budgets: Vec<BudgetRow>,
    pub mcp: Vec<McpRow>,
    pub a2a: Vec<A2aRow>,
}

/// One budget in its current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetRow {
    /// `tenant`, or the virtual key's id.
    pub scope: String,
    pub window_seconds: u64,
    /// Seconds until the window starts again.
    pub resets_in_seconds: u64,
    pub requests: Option<Measure>,
    pub tokens: Option<Measure>,
}

/// One measure of a budget: its limit, what the window used and what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Measure {
    pub limit: u64,
    pub used: u64,
    pub left: u64,
}

/// One MCP route: its targets and the tools the hub pinned for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct McpRow {
    pub route: String,
    pub targets: Vec<String>,
    /// Tools pinned (seen by a gateway and pinned to a definition).
    pub tools: usize,
    /// Tools whose definition changed, withheld until the tenant accepts it.
    pub withheld: usize,
}

/// One A2A agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct A2aRow {
    pub route: String,
    pub host: String,
    pub port: u16,
    /// Ready endpoints the gateways spread calls over (0: `host:port` itself).
    pub endpoints: usize,
}

fn measure(limit: Option<u64>, used: u64) -> Option<Measure> {
    limit.map(|limit| Measure {
        limit,
        used,
        left: limit.saturating_sub(used),
    })
}

fn budget_row(scope: &Scope, budget: &AiBudget, ledger: &Ledger, now: u64) -> BudgetRow {
    let (requests, tokens) = ledger.used(scope, now);
    let length = budget.window_seconds.max(1);
    BudgetRow {
        scope: scope.refused_by(),
        window_seconds: budget.window_seconds,
        resets_in_seconds: length - now % length,
        requests: measure(budget.requests, requests),
        tokens: measure(budget.tokens, tokens),
    }
}

/// `tenant`'s view; `content` is its published AI configuration (`None`: it has no AI route).
pub fn view(
    tenant: &str,
    content: Option<&AiTenant>,
    usage: &UsageBook,
    ledger: &Ledger,
    pins: &PinBook,
    now: u64,
) -> AiUsageView {
    let rows = usage.tenant(tenant);
    let mut total = Counts::default();
    // Saturating: the rows are what gateways reported (untrusted).
    for r in &rows {
        total.add(&r.counts);
    }
    let Some(content) = content else {
        return AiUsageView {
            total,
            usage: rows,
            ..Default::default()
        };
    };
    let mut budgets = Vec::new();
    if let Some(b) = &content.budget {
        budgets.push(budget_row(&Scope::Tenant(tenant.into()), b, ledger, now));
    }
    for (id, key) in &content.virtual_keys {
        if let Some(b) = &key.budget {
            let scope = Scope::Key(tenant.into(), id.clone());
            budgets.push(budget_row(&scope, b, ledger, now));
        }
    }
    // Pinned tools per route: (tools, withheld).
    let mut tools: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((route, _, _), pin) in pins.tenants.get(tenant).into_iter().flatten() {
        let t = tools.entry(route.as_str()).or_default();
        t.0 += 1;
        t.1 += usize::from(pin.pending.is_some());
    }
    let mcp = content
        .routes
        .iter()
        .filter_map(|(route, r)| match &r.target {
            AiRouteTarget::Mcp(spec) => {
                let (tools, withheld) = tools.get(route.as_str()).copied().unwrap_or_default();
                Some(McpRow {
                    route: route.clone(),
                    targets: spec.targets.iter().map(|t| t.name.clone()).collect(),
                    tools,
                    withheld,
                })
            }
            _ => None,
        })
        .collect();
    let one = AiSnapshot {
        tenants: [(tenant.to_string(), content.clone())].into(),
    };
    let a2a = a2a_catalog(&one)
        .remove(tenant)
        .unwrap_or_default()
        .into_iter()
        .map(|a| A2aRow {
            route: a.route,
            host: a.host,
            port: a.port,
            endpoints: a.endpoints,
        })
        .collect();
    AiUsageView {
        total,
        usage: rows,
        budgets,
        mcp,
        a2a,
    }
}

#[cfg(test)]
mod tests {
    use fleetgate_proto::aigateway::v1 as pb;

    use super::*;
    use crate::ai_config::budget::budgets;
    use crate::ai_config::pins::Pin;
    use crate::model::ai::{
        AiAuth, AiProvider, AiRoute, AiRouteProvider, McpSpec, McpTarget, VirtualKey,
    };
    use crate::model::{ClusterKey, Kind, ObjectKey, SourceObject};

    fn source(name: &str) -> SourceObject {
        SourceObject {
            cluster: ClusterKey {
                tenant: "a".into(),
                cluster: "c1".into(),
            },
            object: ObjectKey {
                kind: Kind::AiBackend,
                namespace: "default".into(),
                name: name.into(),
            },
        }
    }

    fn provider(kind: AiProvider, host: &str) -> AiRouteProvider {
        AiRouteProvider {
            name: String::new(),
            provider: kind,
            host: host.into(),
            port: 8080,
            path: None,
            path_prefix: None,
            endpoints: vec!["127.0.0.1:1".parse().unwrap()],
            tls: false,
            auth: AiAuth::None,
        }
    }

    fn tenant() -> AiTenant {
        let mut routes = BTreeMap::new();
        routes.insert(
            "c1/default/llm".to_string(),
            AiRoute {
                target: AiRouteTarget::Provider(provider(
                    AiProvider::OpenAi { model: None },
                    "llm",
                )),
                model_aliases: BTreeMap::new(),
                source: source("llm"),
            },
        );
        routes.insert(
            "c1/default/agent".to_string(),
            AiRoute {
                target: AiRouteTarget::Provider(provider(AiProvider::A2a, "agent.default")),
                model_aliases: BTreeMap::new(),
                source: source("agent"),
            },
        );
        let target = |name: &str| McpTarget {
            name: name.into(),
            host: format!("{name}.default"),
            port: 80,
            path: None,
            protocol: "StreamableHTTP".into(),
            upstream: crate::model::ai::AiUpstream::External,
        };
        routes.insert(
            "c1/default/tools".to_string(),
            AiRoute {
                target: AiRouteTarget::Mcp(McpSpec {
                    targets: vec![target("alpha"), target("beta")],
                    failure_mode: "FailClosed".into(),
                    prefix_mode: "Conditional".into(),
                    session_routing: "Stateful".into(),
                    authentication: None,
                    authorization: None,
                    accept_tools: vec![],
                }),
                model_aliases: BTreeMap::new(),
                source: source("tools"),
            },
        );
        let key_budget = AiBudget {
            requests: None,
            tokens: Some(1000),
            window_seconds: 3600,
        };
        AiTenant {
            routes,
            budget: Some(AiBudget {
                requests: Some(10),
                tokens: None,
                window_seconds: 60,
            }),
            max_concurrency: None,
            virtual_keys: [(
                "c1/default/alice".to_string(),
                VirtualKey {
                    id: "c1/default/alice".into(),
                    sha256: [0; 32],
                    routes: vec!["c1/default/llm".into()],
                    budget: Some(key_budget),
                    source: source("alice"),
                },
            )]
            .into(),
        }
    }

    #[test]
    fn a_tenant_sees_usage_budgets_left_and_its_catalogs() {
        let content = tenant();
        let now = 1_000_000;
        let mut ledger = Ledger::default();
        let charged = budgets("a", Some(&content), "c1/default/alice");
        for _ in 0..3 {
            ledger.reserve(&charged, now).unwrap();
        }
        ledger.add_tokens(&charged, 250, now);
        let mut usage = UsageBook::default();
        let report = pb::UsageReport {
            boot_id: "x".into(),
            counts: vec![pb::UsageCount {
                tenant: "a".into(),
                backend: "openai".into(),
                model: "tiny".into(),
                requests: 3,
                errors: 1,
                input_tokens: 100,
                output_tokens: 150,
            }],
        };
        usage.apply("r1", &report, |_| true).unwrap();
        let mut pins = PinBook::default();
        let pin = |pending: Option<&str>| Pin {
            sha256: "1".repeat(64),
            pending: pending.map(str::to_string),
        };
        let key = |tool: &str| {
            (
                "c1/default/tools".to_string(),
                "alpha".to_string(),
                tool.to_string(),
            )
        };
        pins.tenants.insert(
            "a".into(),
            [
                (key("t1"), pin(None)),
                (key("t2"), pin(Some(&"2".repeat(64)))),
            ]
            .into(),
        );

        let v = view("a", Some(&content), &usage, &ledger, &pins, now);
        assert_eq!(v.total.input_tokens + v.total.output_tokens, 250);
        assert_eq!(v.usage.len(), 1);
        assert_eq!(
            v.budgets,
            [
                BudgetRow {
                    scope: "tenant".into(),
                    window_seconds: 60,
                    resets_in_seconds: 20,
                    requests: Some(Measure {
                        limit: 10,
                        used: 3,
                        left: 7
                    }),
                    tokens: None,
                },
                BudgetRow {
                    scope: "c1/default/alice".into(),
                    window_seconds: 3600,
                    resets_in_seconds: 800,
                    requests: None,
                    tokens: Some(Measure {
                        limit: 1000,
                        used: 250,
                        left: 750
                    }),
                },
            ]
        );
        assert_eq!(
            v.mcp,
            [McpRow {
                route: "c1/default/tools".into(),
                targets: vec!["alpha".into(), "beta".into()],
                tools: 2,
                withheld: 1,
            }]
        );
        assert_eq!(
            v.a2a,
            [A2aRow {
                route: "c1/default/agent".into(),
                host: "agent.default".into(),
                port: 8080,
                endpoints: 1,
            }]
        );

        // Another tenant sees none of it; a tenant without AI routes sees only reported usage.
        let b = view("b", None, &usage, &ledger, &pins, now);
        assert_eq!(b, AiUsageView::default());
    }

    #[test]
    fn huge_reported_counts_saturate_the_total_instead_of_panicking() {
        let mut usage = UsageBook::default();
        let count = |model: &str| pb::UsageCount {
            tenant: "a".into(),
            backend: "openai".into(),
            model: model.into(),
            requests: u64::MAX,
            errors: u64::MAX,
            input_tokens: u64::MAX,
            output_tokens: u64::MAX,
        };
        let report = pb::UsageReport {
            boot_id: "x".into(),
            counts: vec![count("m1"), count("m2")],
        };
        usage.apply("hostile", &report, |_| true).unwrap();
        let v = view(
            "a",
            None,
            &usage,
            &Ledger::default(),
            &PinBook::default(),
            5,
        );
        assert_eq!(v.usage.len(), 2);
        assert_eq!(
            v.total,
            Counts {
                requests: u64::MAX,
                errors: u64::MAX,
                input_tokens: u64::MAX,
                output_tokens: u64::MAX,
            }
        );
    }

    #[test]
    fn a_spent_budget_shows_nothing_left() {
        let mut content = tenant();
        content.virtual_keys.clear();
        let mut ledger = Ledger::default();
        let charged = budgets("a", Some(&content), "");
        for _ in 0..10 {
            ledger.reserve(&charged, 5).unwrap();
        }
        assert!(ledger.reserve(&charged, 5).is_err());
        let v = view(
            "a",
            Some(&content),
            &UsageBook::default(),
            &ledger,
            &PinBook::default(),
            5,
        );
        assert_eq!(v.budgets[0].requests.unwrap().left, 0);
    }
}
