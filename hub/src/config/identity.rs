//! The identity part of the hub configuration: certificate lifetime, and which clusters may
//! connect (registered and `enabled`).
//!
//! Where it sits: read by enrollment (`crate::enroll`) and by `Fleet`, which refuses the
//! certificates of clusters that are not active. Kept in its own struct so the file's other
//! sections change independently.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use super::{Config, parse_config_duration};
use crate::model::ClusterKey;

/// Longest lifetime of an agent certificate.
pub const MAX_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Shortest lifetime (renewal happens at half of it; below this the agent would renew
/// constantly).
pub const MIN_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(120);

/// `identity:` in the hub config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawIdentityConfig {
    /// Lifetime of the certificates enrollment and renewal issue, e.g. `24h` (the default and
    /// the maximum), `1h`, `10m`.
    #[serde(default)]
    pub certificate_lifetime: Option<String>,
}

/// The validated `identity:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    pub certificate_lifetime: Duration,
    /// Clusters listed with `enabled: false` (kept here, not in `Cluster`, so the policy
    /// structs stay as they are).
    pub disabled_clusters: BTreeSet<ClusterKey>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            certificate_lifetime: MAX_CERTIFICATE_LIFETIME,
            disabled_clusters: BTreeSet::new(),
        }
    }
}

impl RawIdentityConfig {
    pub fn validate(&self, errs: &mut Vec<String>) -> IdentityConfig {
        let mut out = IdentityConfig::default();
        if let Some(s) = &self.certificate_lifetime {
            match parse_config_duration(s) {
                Ok(d) if (MIN_CERTIFICATE_LIFETIME..=MAX_CERTIFICATE_LIFETIME).contains(&d) => {
                    out.certificate_lifetime = d;
                }
                Ok(_) => errs.push(format!(
                    "identity.certificateLifetime {s:?}: use a duration from 2m to 24h"
                )),
                Err(e) => errs.push(format!("identity.certificateLifetime {e}")),
            }
        }
        out
    }
}

/// Whether a cluster may connect, enroll and renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Listed and enabled.
    Active,
    /// Listed with `enabled: false`.
    Disabled,
    /// Not listed (never, or removed).
    Unknown,
}

impl Config {
    pub fn registration(&self, tenant: &str, cluster: &str) -> Registration {
        if !self
            .tenants
            .get(tenant)
            .is_some_and(|t| t.clusters.contains_key(cluster))
        {
            return Registration::Unknown;
        }
        let key = ClusterKey {
            tenant: tenant.to_string(),
            cluster: cluster.to_string(),
        };
        if self.identity.disabled_clusters.contains(&key) {
            Registration::Disabled
        } else {
            Registration::Active
        }
    }

    /// Every registered and enabled cluster.
    pub fn active_clusters(&self) -> BTreeSet<ClusterKey> {
        self.tenants
            .values()
            .flat_map(|t| {
                t.clusters.values().map(|c| ClusterKey {
                    tenant: t.name.clone(),
                    cluster: c.name.clone(),
                })
            })
            .filter(|k| !self.identity.disabled_clusters.contains(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    const BASE: &str = r#"
agentListen: 127.0.0.1:7443
xdsListen: 127.0.0.1:18000
pkiDir: /tmp/pki
storePath: /tmp/store.redb
dataPlane:
  address: 127.0.0.1
  listeners: [{port: 80, bind: "127.0.0.1:18080"}]
tenants:
- name: a
  hostnames: ['*.a.example']
  clusters:
  - {name: on, endpointCidrs: [127.0.1.0/24]}
  - {name: off, endpointCidrs: [127.0.1.0/24], enabled: false}
"#;

    fn validate(extra: &str) -> Result<Config, String> {
        let raw: RawConfig = serde_yaml::from_str(&format!("{BASE}{extra}")).unwrap();
        raw.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn clusters_are_enabled_unless_said_otherwise() {
        let c = validate("").unwrap();
        assert_eq!(c.registration("a", "on"), Registration::Active);
        assert_eq!(c.registration("a", "off"), Registration::Disabled);
        assert_eq!(c.registration("a", "gone"), Registration::Unknown);
        assert_eq!(c.registration("b", "on"), Registration::Unknown);
        let active: Vec<_> = c.active_clusters().into_iter().map(|k| k.cluster).collect();
        assert_eq!(active, vec!["on"]);
    }

    #[test]
    fn certificate_lifetime_is_capped_at_a_day() {
        assert_eq!(
            validate("").unwrap().identity.certificate_lifetime,
            MAX_CERTIFICATE_LIFETIME
        );
        assert_eq!(
            validate("identity: {certificateLifetime: 1h}\n")
                .unwrap()
                .identity
                .certificate_lifetime,
            Duration::from_secs(3600)
        );
        for bad in ["25h", "1m", "0", "forever"] {
            let e = validate(&format!("identity: {{certificateLifetime: {bad}}}\n")).unwrap_err();
            assert!(e.contains("identity.certificateLifetime"), "{bad}: {e}");
        }
    }
}
