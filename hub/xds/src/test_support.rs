//! What the crate's unit tests share.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::model::{ClusterKey, HeaderModifier, Kind, ObjectKey, SourceObject};
use crate::resources::{self, Resources};
use crate::snapshot::{
    ClusterSnapshot, ListenerSnapshot, PathMatch, Route, RouteAction, Snapshot, VirtualHost,
    WeightedCluster,
};

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

/// The resources of a snapshot with one listener routing to the given clusters (endpoint port `port`).
pub fn resources_routing_to(clusters: &[&str], port: u16) -> Arc<Resources> {
    let routes = clusters
        .iter()
        .map(|c| Route {
            name: format!("route-{c}"),
            path: PathMatch::Prefix(format!("/{c}")),
            headers: Default::default(),
            query_params: Default::default(),
            method: None,
            request_headers: HeaderModifier::default(),
            response_headers: HeaderModifier::default(),
            cors: None,
            action: RouteAction::Forward(crate::snapshot::Forward::to(vec![WeightedCluster::new(
                *c, 1,
            )])),
            source: Some(std::sync::Arc::new(route_source("a", c))),
        })
        .collect();
    resources::build(&Snapshot {
        listeners: vec![ListenerSnapshot {
            name: "port/80".into(),
            port: 80,
            bind: "127.0.0.1:18080".parse().unwrap(),
            // A wildcard: the port keeps one RouteConfiguration (`scoped` otherwise).
            virtual_hosts: vec![Arc::new(VirtualHost {
                name: "vh".into(),
                domains: vec!["*.a.example".into()],
                routes,
                rate_limit: None,
            })],
            gateways: BTreeSet::new(),
        }],
        clusters: clusters
            .iter()
            .map(|c| {
                Arc::new(ClusterSnapshot {
                    name: c.to_string(),
                    endpoints: vec![format!("127.0.1.1:{port}").parse().unwrap()],
                    protocol: Default::default(),
                    sources: vec![Arc::new(route_source("a", c))],
                })
            })
            .collect(),
        ..Default::default()
    })
    .into()
}
