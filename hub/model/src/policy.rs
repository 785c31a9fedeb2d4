//! A tenant's policy as admission and the data plane enforce it: the hostnames and clusters it
//! owns (with the networks each cluster's endpoints may use), the sizes every cluster is held
//! to, and the tenant's quotas. Validated from the hub's configuration file by `fleetgate-hub`'s
//! `config` and `quotas`; read by admission (`fleetgate-hub-admit`), the compiler and the xDS
//! translation as these plain types.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A tenant: the hostname patterns it may use, its clusters by name, and the hosts outside its
/// clusters its AI backends may reach.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub hostnames: Vec<String>,
    pub clusters: BTreeMap<String, Cluster>,
    /// `egress`: lower-case hostnames (`api.openai.com`), `*.suffix` wildcards (a whole subtree)
    /// or IP literals that an AI backend with an external host may name. Empty: none.
    pub egress: Vec<String>,
}

impl Tenant {
    /// Whether the tenant's egress allowlist lets an AI backend reach `host` (lower-case) outside
    /// its clusters: an exact entry, or a `*.suffix` entry with `host` below `suffix`.
    pub fn egress_allows(&self, host: &str) -> bool {
        self.egress.iter().any(|e| match e.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => e == host,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub endpoint_cidrs: Vec<IpNet>,
    pub allow_special_addresses: bool,
}

/// Sizes the hub enforces on every cluster.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    pub max_objects_per_cluster: usize,
    pub max_endpoints_per_backend: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_objects_per_cluster: 10_000,
            max_endpoints_per_backend: 1_000,
        }
    }
}

/// A DNS label as Kubernetes names use it: what tenant and cluster names must be, since they
/// travel in certificate URIs and resource names.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An entry of a tenant's egress allowlist: a hostname pattern or an IP literal.
pub fn is_egress_entry(s: &str) -> bool {
    is_hostname_pattern(s) || s.parse::<std::net::IpAddr>().is_ok()
}

/// A hostname pattern: `host.example` or `*.example`.
pub fn is_hostname_pattern(s: &str) -> bool {
    let body = s.strip_prefix("*.").unwrap_or(s);
    !body.is_empty() && body.len() <= 253 && body.split('.').all(is_dns_label)
}

/// One tenant's validated quotas and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub gateways: u64,
    pub routes: u64,
    pub load_balancers: u64,
    pub hostnames: u64,
    pub endpoints: u64,
    pub certificates: u64,
    pub intent_bytes: u64,
    pub updates_per_second: u32,
    pub update_burst: u32,
    /// `None`: unlimited.
    pub request_rate: Option<RequestRate>,
    /// `None`: unlimited.
    pub connections_per_listener: Option<u32>,
    /// VirtualKeys across all the tenant's clusters.
    pub virtual_keys: u64,
    /// The tenant's AI budget, counted across every AI gateway replica; `None`: unlimited.
    pub ai_budget: Option<AiBudget>,
    /// The tenant's AI requests in flight at once on one AI gateway replica; `None`: the
    /// gateway's default (256).
    pub ai_max_concurrency: Option<u32>,
}

/// Requests and tokens allowed per fixed window of `window_seconds` (windows aligned to the Unix
/// epoch). `None` in a measure: that measure is not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiBudget {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub window_seconds: u64,
}

/// A request-rate limit: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestRate {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for Quota {
    /// Sized for a tenant with a few hundred services; raise them per tenant.
    fn default() -> Self {
        Self {
            gateways: 100,
            routes: 2_000,
            load_balancers: 100,
            hostnames: 2_000,
            endpoints: 20_000,
            certificates: 500,
            intent_bytes: 64 * 1024 * 1024,
            updates_per_second: 20,
            update_burst: 100,
            request_rate: None,
            connections_per_listener: Some(10_000),
            virtual_keys: 1_000,
            ai_budget: None,
            ai_max_concurrency: None,
        }
    }
}

/// The validated `quotas:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quotas {
    pub defaults: Quota,
    pub tenants: BTreeMap<String, Quota>,
}

impl Quotas {
    /// The quotas of `tenant`.
    pub fn of(&self, tenant: &str) -> &Quota {
        self.tenants.get(tenant).unwrap_or(&self.defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_entries_are_exact_or_whole_subtrees() {
        let t = Tenant {
            name: "a".into(),
            hostnames: vec![],
            clusters: BTreeMap::new(),
            egress: vec!["api.openai.com".into(), "*.models.example".into()],
        };
        for (host, want) in [
            ("api.openai.com", true),
            ("x.api.openai.com", false),
            ("openai.com", false),
            ("eu.models.example", true),
            ("a.b.models.example", true),
            ("models.example", false),
            ("evilmodels.example", false),
            (".models.example", false),
            ("api.openai.com.evil.example", false),
        ] {
            assert_eq!(t.egress_allows(host), want, "{host}");
        }
        let none = Tenant {
            egress: vec![],
            ..t
        };
        assert!(!none.egress_allows("api.openai.com"));
        assert!(is_egress_entry("*.models.example") && is_egress_entry("192.0.2.7"));
        assert!(!is_egress_entry("https://api.openai.com") && !is_egress_entry("*"));
    }
}
