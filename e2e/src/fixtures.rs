//! Small fixtures the e2e test files share: the tenants most tests start, and how to read a
//! Gateway API condition out of an object's status.
//!
//! Test support, outside the data path.

use serde_json::Value;

use crate::fleet::TenantSpec;

/// Tenant A: owns `*.a.example`, its cluster's endpoints are in 127.0.1.0/24.
pub const TENANT_A: TenantSpec<'static> = ("tenant-a", "*.a.example", "127.0.1.0/24");
/// Tenant B: owns `*.b.example`, its cluster's endpoints are in 127.0.2.0/24.
pub const TENANT_B: TenantSpec<'static> = ("tenant-b", "*.b.example", "127.0.2.0/24");

/// The condition of `type_` in a `conditions` array (a Gateway, listener or route parent status).
pub fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == type_)
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
