//! What the crate's unit tests share.

use crate::model::{ClusterKey, Kind, ObjectKey, SourceObject};

/// HTTPRoute `default/<name>` of tenant `tenant`'s cluster `c1`.
pub fn route_source(tenant: &str, name: &str) -> SourceObject {
    SourceObject {
        cluster: ClusterKey {
            tenant: tenant.into(),
            cluster: "c1".into(),
        },
        object: ObjectKey {
            kind: Kind::HttpRoute,
            namespace: "default".into(),
            name: name.into(),
        },
    }
}
