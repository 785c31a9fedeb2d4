//! `quotas:` in the hub configuration: how much one tenant may hold and send, and the traffic
//! limits the data plane applies to it. Defaults for every tenant, overrides per tenant.
//!
//! Where it sits: read with the rest of `crate::config`; `admit::quota` (admission, across all
//! clusters of a tenant), `fleet` (the update rate of each cluster) and `xds::tenant_limits`
//! (request rate and connection limits in Envoy) read the validated [`Quotas`].
//!
//! ```yaml
//! quotas:
//!   defaults: {routes: 2000, updatesPerSecond: 20}
//!   tenants:
//!     tenant-a: {routes: 50, requestsPerSecond: 100, requestBurst: 200}
//!     tenant-b: {aiBudget: {requests: 10000, tokens: 2000000, window: 24h}}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

pub use fleetgate_hub_model::policy::{AiBudget, Quota, Quotas, RequestRate};

/// One tenant's quotas and limits, every field optional: what is unset comes from
/// `quotas.defaults`, then from [`Quota::default`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawQuotaSet {
    pub gateways: Option<u64>,
    /// HTTPRoutes, GRPCRoutes, TLSRoutes, TCPRoutes and UDPRoutes together.
    pub routes: Option<u64>,
    /// Services of type LoadBalancer.
    pub load_balancers: Option<u64>,
    /// Distinct hostnames (exact or wildcard) used by Gateways and routes.
    pub hostnames: Option<u64>,
    /// Endpoint addresses, summed over every backend of every object.
    pub endpoints: Option<u64>,
    /// Distinct certificates (Secrets) on HTTPS listeners.
    pub certificates: Option<u64>,
    /// Size of the accepted intent, in bytes (its stored form).
    pub intent_bytes: Option<u64>,
    /// Updates per second one cluster may send (a token bucket refilled at this rate).
    pub updates_per_second: Option<u32>,
    /// Updates one cluster may send at once after a quiet period (the bucket's size).
    pub update_burst: Option<u32>,
    /// Requests per second the data plane lets through to the tenant's hostnames, per Envoy;
    /// `0` (the default) is unlimited. Requests past it get 429.
    pub requests_per_second: Option<u32>,
    /// Requests let through at once after a quiet period; default: `requestsPerSecond`.
    pub request_burst: Option<u32>,
    /// Open connections per L4 listener (LoadBalancer Service port, Gateway TCP listener) of
    /// the tenant, per Envoy; `0` is unlimited.
    pub connections_per_listener: Option<u32>,
    /// VirtualKeys (fleetgate.dev) across all the tenant's clusters (default 1000).
    pub virtual_keys: Option<u64>,
    /// Requests and tokens the tenant's AI routes may use per window, across every AI gateway
    /// replica (the hub counts them); `{}` or unset measures: unlimited.
    pub ai_budget: Option<RawAiBudget>,
    /// AI requests of the tenant in flight at once on one AI gateway replica (1..=1000000);
    /// over it the gateway answers 429 at once. Unset: the gateway's default, 256.
    pub ai_max_concurrency: Option<u32>,
}

/// `aiBudget:` as written: `{requests: 1000, tokens: 200000, window: 1h}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAiBudget {
    /// Requests per window; unset: not limited.
    pub requests: Option<u64>,
    /// Tokens (prompt + completion) per window; unset: not limited.
    pub tokens: Option<u64>,
    /// The window, a Gateway API duration (`1m`, `1h`, `24h`); windows start at multiples of it
    /// since the Unix epoch.
    pub window: String,
}

/// The shortest and longest budget window.
pub const AI_BUDGET_WINDOW: std::ops::RangeInclusive<u64> = 60..=31 * 24 * 3600;

impl RawAiBudget {
    /// The budget, or what to change (`at` names the field).
    pub fn validate(&self, at: &str) -> Result<Option<AiBudget>, String> {
        let window =
            crate::admit::parse_duration(&self.window).map_err(|e| format!("{at}.window: {e}"))?;
        if window.subsec_nanos() != 0 || !AI_BUDGET_WINDOW.contains(&window.as_secs()) {
            return Err(format!(
                "{at}.window: {:?} must be whole seconds from 1m to 744h (31 days)",
                self.window
            ));
        }
        for (name, v) in [("requests", self.requests), ("tokens", self.tokens)] {
            if v == Some(0) {
                return Err(format!(
                    "{at}.{name}: 0 would refuse every request; leave it out for no limit"
                ));
            }
        }
        if self.requests.is_none() && self.tokens.is_none() {
            return Ok(None);
        }
        Ok(Some(AiBudget {
            requests: self.requests,
            tokens: self.tokens,
            window_seconds: window.as_secs(),
        }))
    }
}

/// `quotas:` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawQuotas {
    #[serde(default)]
    pub defaults: RawQuotaSet,
    /// Tenant name -> what differs for that tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, RawQuotaSet>,
}

/// `q` with what `raw` sets.
fn merged(q: Quota, raw: &RawQuotaSet) -> Quota {
    let request_rate = match raw.requests_per_second {
        Some(0) => None,
        Some(per_second) => Some(RequestRate {
            per_second,
            burst: per_second,
        }),
        None => q.request_rate,
    };
    let request_rate = match (request_rate, raw.request_burst) {
        (Some(r), Some(burst)) => Some(RequestRate { burst, ..r }),
        (r, _) => r,
    };
    Quota {
        gateways: raw.gateways.unwrap_or(q.gateways),
        routes: raw.routes.unwrap_or(q.routes),
        load_balancers: raw.load_balancers.unwrap_or(q.load_balancers),
        hostnames: raw.hostnames.unwrap_or(q.hostnames),
        endpoints: raw.endpoints.unwrap_or(q.endpoints),
        certificates: raw.certificates.unwrap_or(q.certificates),
        intent_bytes: raw.intent_bytes.unwrap_or(q.intent_bytes),
        updates_per_second: raw.updates_per_second.unwrap_or(q.updates_per_second),
        update_burst: raw.update_burst.unwrap_or(q.update_burst),
        request_rate,
        connections_per_listener: match raw.connections_per_listener {
            Some(0) => None,
            Some(n) => Some(n),
            None => q.connections_per_listener,
        },
        virtual_keys: raw.virtual_keys.unwrap_or(q.virtual_keys),
        // Checked by `RawQuotas::validate`; an invalid one leaves the inherited budget here.
        ai_max_concurrency: raw.ai_max_concurrency.or(q.ai_max_concurrency),
        ai_budget: match &raw.ai_budget {
            Some(b) => b.validate("aiBudget").unwrap_or(q.ai_budget),
            None => q.ai_budget,
        },
    }
}

impl RawQuotas {
    /// Checks the values and resolves every tenant's quotas; errors name the field to change.
    pub fn validate(&self, tenants: &BTreeSet<String>, errs: &mut Vec<String>) -> Quotas {
        let check = |at: &str, q: &Quota, raw: &RawQuotaSet, errs: &mut Vec<String>| {
            if q.updates_per_second == 0 {
                errs.push(format!(
                    "{at}.updatesPerSecond: use at least 1 (a cluster that cannot send updates cannot change anything)"
                ));
            }
            if q.update_burst == 0 {
                errs.push(format!("{at}.updateBurst: use at least 1"));
            }
            if raw.request_burst == Some(0) {
                errs.push(format!(
                    "{at}.requestBurst: use at least 1, or requestsPerSecond: 0 for no limit"
                ));
            }
            if let Some(Err(e)) = raw
                .ai_budget
                .as_ref()
                .map(|b| b.validate(&format!("{at}.aiBudget")))
            {
                errs.push(e);
            }
            if let Some(n) = raw.ai_max_concurrency
                && !(1..=1_000_000).contains(&n)
            {
                errs.push(format!("{at}.aiMaxConcurrency: {n} is outside 1..=1000000"));
            }
            if raw.request_burst.is_some() && q.request_rate.is_none() {
                errs.push(format!(
                    "{at}.requestBurst: set requestsPerSecond too; without it there is no request limit"
                ));
            }
        };
        let defaults = merged(Quota::default(), &self.defaults);
        check("quotas.defaults", &defaults, &self.defaults, errs);
        let mut out = BTreeMap::new();
        for (name, raw) in &self.tenants {
            if !tenants.contains(name) {
                errs.push(format!(
                    "quotas.tenants.{name}: no tenant of that name; list it under tenants or remove it"
                ));
            }
            let q = merged(defaults, raw);
            check(&format!("quotas.tenants.{name}"), &q, raw, errs);
            out.insert(name.clone(), q);
        }
        Quotas {
            defaults,
            tenants: out,
        }
    }
}

/// `dataPlane.admin`: the data plane's admin interface must listen on loopback, and no
/// published data-plane port may be its port (the hub also never allocates it, see `fleet`).
pub fn check_admin(
    admin: Option<std::net::SocketAddr>,
    listeners: &[fleetgate_hub_model::data_plane::DataPlaneListener],
    errs: &mut Vec<String>,
) {
    let Some(admin) = admin else { return };
    if !admin.ip().is_loopback() {
        errs.push(format!(
            "dataPlane.admin: {admin} is not a loopback address; bind the data plane's admin interface to 127.0.0.1 (or ::1) only"
        ));
    }
    for l in listeners {
        if l.bind.port() == admin.port() || l.port == admin.port() {
            errs.push(format!(
                "dataPlane.listeners: port {} collides with the admin interface {admin}; use another port",
                l.port
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(yaml: &str) -> Result<Quotas, Vec<String>> {
        let raw: RawQuotas = serde_yaml::from_str(yaml).unwrap();
        let mut errs = Vec::new();
        let q = raw.validate(&["a".to_string(), "b".to_string()].into(), &mut errs);
        if errs.is_empty() { Ok(q) } else { Err(errs) }
    }

    #[test]
    fn defaults_then_tenant_overrides() {
        let q = validate(
            "defaults: {routes: 10, requestsPerSecond: 5}\ntenants:\n  a: {routes: 3, requestBurst: 20, connectionsPerListener: 0}\n",
        )
        .unwrap();
        assert_eq!(q.of("b").routes, 10);
        assert_eq!(
            q.of("b").request_rate,
            Some(RequestRate {
                per_second: 5,
                burst: 5
            })
        );
        assert_eq!(q.of("b").gateways, Quota::default().gateways);
        assert_eq!(q.of("a").routes, 3);
        assert_eq!(
            q.of("a").request_rate,
            Some(RequestRate {
                per_second: 5,
                burst: 20
            })
        );
        assert_eq!(q.of("a").connections_per_listener, None);
        assert_eq!(q.of("b").connections_per_listener, Some(10_000));
        assert_eq!(q.of("unknown"), &q.defaults);
    }

    #[test]
    fn ai_budgets_are_inherited_overridden_and_checked() {
        let q = validate(
            "defaults: {aiBudget: {requests: 100, window: 1h}}
tenants:
  a: {aiBudget: {tokens: 5000, window: 24h}}
",
        )
        .unwrap();
        assert_eq!(
            q.of("b").ai_budget,
            Some(AiBudget {
                requests: Some(100),
                tokens: None,
                window_seconds: 3600
            })
        );
        assert_eq!(
            q.of("a").ai_budget,
            Some(AiBudget {
                requests: None,
                tokens: Some(5000),
                window_seconds: 86400
            })
        );
        // No measure: the tenant is not limited, whatever the defaults say.
        let q = validate(
            "defaults: {aiBudget: {requests: 1, window: 1h}}
tenants:
  a: {aiBudget: {window: 1h}}
",
        )
        .unwrap();
        assert_eq!(q.of("a").ai_budget, None);
        let q =
            validate("defaults: {aiMaxConcurrency: 16}\ntenants:\n  a: {aiMaxConcurrency: 2}\n")
                .unwrap();
        assert_eq!(
            (q.of("a").ai_max_concurrency, q.of("b").ai_max_concurrency),
            (Some(2), Some(16))
        );
        for (yaml, want) in [
            (
                "tenants:
  a: {aiBudget: {requests: 0, window: 1h}}
",
                "quotas.tenants.a.aiBudget.requests: 0 would refuse every request",
            ),
            (
                "defaults: {aiBudget: {requests: 5, window: 10s}}
",
                "quotas.defaults.aiBudget.window: \"10s\" must be whole seconds from 1m to 744h",
            ),
            (
                "defaults: {aiBudget: {requests: 5, window: 1500ms}}
",
                "must be whole seconds",
            ),
            (
                "defaults: {aiBudget: {requests: 5, window: daily}}
",
                "quotas.defaults.aiBudget.window: \"daily\" is not a Gateway API duration",
            ),
        ] {
            let errs = validate(yaml).unwrap_err();
            assert!(errs.iter().any(|e| e.contains(want)), "{yaml}: {errs:?}");
        }
    }

    #[test]
    fn the_admin_interface_is_loopback_only_and_on_no_data_plane_port() {
        let listener = |port: u16, bind: &str| fleetgate_hub_model::data_plane::DataPlaneListener {
            port,
            bind: bind.parse().unwrap(),
            protocol: Default::default(),
        };
        let mut errs = vec![];
        check_admin(
            Some("127.0.0.1:19000".parse().unwrap()),
            &[listener(80, "127.0.0.1:18080")],
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        check_admin(
            Some("0.0.0.0:19000".parse().unwrap()),
            &[listener(19000, "127.0.0.1:18080")],
            &mut errs,
        );
        assert!(errs[0].contains("not a loopback address"), "{errs:?}");
        assert!(errs[1].contains("port 19000 collides"), "{errs:?}");
        check_admin(None, &[listener(19000, "127.0.0.1:19000")], &mut errs);
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn bad_values_name_the_field() {
        for (yaml, words) in [
            ("tenants: {c: {routes: 1}}", "quotas.tenants.c"),
            (
                "defaults: {updatesPerSecond: 0}",
                "quotas.defaults.updatesPerSecond",
            ),
            (
                "tenants: {a: {updateBurst: 0}}",
                "quotas.tenants.a.updateBurst",
            ),
            ("defaults: {requestBurst: 5}", "set requestsPerSecond too"),
            (
                "defaults: {requestsPerSecond: 3, requestBurst: 0}",
                "requestBurst: use at least 1",
            ),
        ] {
            let errs = validate(yaml).unwrap_err();
            assert!(errs.iter().any(|e| e.contains(words)), "{yaml}: {errs:?}");
        }
        let unknown: Result<RawQuotas, _> = serde_yaml::from_str("defaults: {route: 1}");
        assert!(unknown.is_err());
    }
}
