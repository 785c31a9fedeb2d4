//! Test support for admission: one tenant (`a`, owning `*.a.example` and `shop.example`) with
//! one cluster (`east`, endpoints in 10.1.0.0/16), another tenant's claim on `*.b.example`,
//! the hub's own agent port 10.1.0.9:7443 reserved, and an egress allowlist of `api.openai.com`
//! and `*.models.example`.

use std::collections::BTreeMap;

use super::{Policy, Reserved};
use crate::model::policy::{Cluster, Limits, Tenant};

pub struct Fixture {
    pub tenant: Tenant,
    pub cluster: Cluster,
    pub limits: Limits,
    pub owners: BTreeMap<String, String>,
    pub reserved: Reserved,
}

impl Fixture {
    pub fn new() -> Self {
        let cluster = Cluster {
            name: "east".into(),
            endpoint_cidrs: vec!["10.1.0.0/16".parse().unwrap()],
            allow_special_addresses: false,
        };
        Self {
            tenant: Tenant {
                name: "a".into(),
                hostnames: vec!["*.a.example".into(), "shop.example".into()],
                clusters: [("east".to_string(), cluster.clone())].into(),
                egress: vec!["api.openai.com".into(), "*.models.example".into()],
            },
            cluster,
            limits: Limits::default(),
            owners: [("*.b.example".to_string(), "b".to_string())].into(),
            reserved: Reserved {
                listeners: ["10.1.0.9:7443".parse().unwrap()].into(),
                ..Reserved::default()
            },
        }
    }

    pub fn policy(&self) -> Policy<'_> {
        Policy {
            tenant: &self.tenant,
            cluster: &self.cluster,
            limits: &self.limits,
            owners: &self.owners,
            reserved: &self.reserved,
        }
    }
}
