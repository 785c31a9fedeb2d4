//! Fixtures the e2e test files share: the tenants most tests start, waits on what a [`Fleet`]
//! serves, and how to read a Gateway API condition out of an object's status. The YAML
//! builders of the objects a tenant applies are in [`crate::objects`] (re-exported here), so
//! that [`crate::fleet`] can use them without importing this module.
//!
//! Test support, outside the data path.

use serde_json::Value;

use anyhow::{Context, ensure};

use crate::fleet::{Fleet, FleetTenant, TenantSpec};
pub use crate::objects::{
    GATEWAY_CLASS, class_and_http_gateway, gateway, http_route, http_service, listener,
    node_port_service, route_in, rule_to, simple_http_route, tenant_openai_backend,
};
use crate::{TIMEOUT, eventually};

/// Tenant A: owns `*.a.example`, its cluster's endpoints are in 127.0.1.0/24.
pub const TENANT_A: TenantSpec<'static> = ("tenant-a", "*.a.example", "127.0.1.0/24");
/// Tenant B: owns `*.b.example`, its cluster's endpoints are in 127.0.2.0/24.
pub const TENANT_B: TenantSpec<'static> = ("tenant-b", "*.b.example", "127.0.2.0/24");

/// Waits until `GET <path>` with `Host: host` through the data plane answers 200 `body`.
pub async fn wait_served(fleet: &Fleet, host: &str, path: &str, body: &str) {
    eventually(TIMEOUT, || async {
        let (status, got) = fleet.get(host, path).await?;
        ensure!(
            status == 200 && got == body,
            "{host}{path}: status {status}, body {got:?} (want 200 {body:?})"
        );
        Ok(())
    })
    .await
}

/// The condition of `type_` in a `conditions` array (a Gateway, listener or route parent status).
pub fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == type_)
}

/// Waits until route `kind default/name`'s first parent has condition `type_` with `status` and
/// `reason` for the route's current generation.
pub async fn wait_route_condition(
    t: &FleetTenant,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) {
    eventually(TIMEOUT, || async {
        let r = t
            .cluster
            .get_json(kind, "default", name)
            .await?
            .with_context(|| format!("{kind} {name} missing"))?;
        let c = condition(&r["status"]["parents"][0]["conditions"], type_)
            .with_context(|| format!("no {type_}: {}", r["status"]))?;
        ensure!(
            c["status"] == status && c["reason"] == reason,
            "{kind} {name} {type_}: {c}"
        );
        ensure!(
            c["observedGeneration"] == r["metadata"]["generation"],
            "stale: {c}"
        );
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_condition_by_type() {
        let c = serde_json::json!([{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]);
        assert_eq!(condition(&c, "Programmed").unwrap()["status"], "False");
        assert!(condition(&c, "ResolvedRefs").is_none());
        assert!(condition(&serde_json::json!(null), "Accepted").is_none());
    }
}
