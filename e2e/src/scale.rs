//! Many tenants' routes loaded into a real hub and Envoy through raw Sync clients (one per
//! tenant cluster, speaking the agent's wire protocol), without an API server or agent per
//! tenant: what the scale benchmark (`e2e/tests/bench.rs`) and its short form in `make test`
//! (`e2e/tests/scale.rs`) share.
//!
//! Tenant `t` is `tenant-<t>`, owns `*.t<t>.example` and has one cluster `c1` whose endpoints
//! may be in 127.0.9.0/24; its Gateway `web` has one HTTP listener on port 80 for
//! `*.t<t>.example`, and its route `r` is HTTPRoute `route-<r>` for `r<r>.t<t>.example` (the
//! shape of `hub/examples/compile_bench.rs`: 2 rules of 2 matches and one backend each).

use std::net::SocketAddr;

use fleetgate_proto::spoke::v1 as pb;
use fleetgate_proto::spoke::v1::spoke_service_client::SpokeServiceClient;
use tonic::transport::Channel;

use crate::hub::HubCluster;
use crate::sync_client::{self, ClientTls, SyncSession};
use crate::{Hub, HubTenant, TIMEOUT};

/// Tenant `t`'s name.
pub fn tenant(t: usize) -> String {
    format!("tenant-{t}")
}

/// The hostname of tenant `t`'s route `r`.
pub fn host(t: usize, r: usize) -> String {
    format!("r{r}.t{t}.example")
}

/// The hub's tenants 0..n, each with one cluster `c1` (endpoints in 127.0.9.0/24).
pub fn hub_tenants(n: usize) -> Vec<HubTenant> {
    (0..n)
        .map(|t| HubTenant {
            name: tenant(t),
            hostnames: vec![format!("*.t{t}.example")],
            clusters: vec![HubCluster {
                name: "c1".into(),
                endpoint_cidrs: vec!["127.0.9.0/24".into()],
            }],
        })
        .collect()
}

/// The loopback addresses the scale backends listen on (inside the tenants' endpoint CIDR).
pub fn echo_ips(n: u8) -> Vec<std::net::IpAddr> {
    (1..=n).map(|i| [127, 0, 9, i].into()).collect()
}

fn object_ref(kind: pb::Kind, name: &str) -> pb::ObjectRef {
    pb::ObjectRef {
        kind: kind as i32,
        namespace: "default".into(),
        name: name.into(),
    }
}

/// A reference to tenant `t`'s route `r` (to delete it).
pub fn route_ref(r: usize) -> pb::ObjectRef {
    object_ref(pb::Kind::HttpRoute, &format!("route-{r}"))
}

/// Tenant `t`'s Gateway `web`: one HTTP listener on port 80 for `*.t<t>.example`.
pub fn gateway(t: usize) -> pb::Object {
    pb::Object {
        r#ref: Some(object_ref(pb::Kind::Gateway, "web")),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::Gateway(pb::Gateway {
            gateway_class_name: "fleetgate".into(),
            listeners: vec![pb::Listener {
                name: "http".into(),
                protocol: "HTTP".into(),
                port: 80,
                hostname: format!("*.t{t}.example"),
                allowed_routes: None,
                tls: None,
            }],
            allowed_listeners: None,
            ..Default::default()
        })),
    }
}

/// Tenant `t`'s route `r` for [`host`]`(t, r)`: 2 rules (`<prefix>/r0`, `<prefix>/r1`), each
/// with a PathPrefix match and an Exact match on `<prefix>/r<i>/exact` with header `x-env:
/// prod` and method GET, and one backend `svc-<r>-<i>` of the `echoes`. So every route has 2
/// backends of its own.
pub fn route(
    t: usize,
    r: usize,
    prefix: &str,
    generation: i64,
    echoes: &[SocketAddr],
) -> pb::Object {
    route_sharing(t, r, prefix, generation, echoes, None)
}

/// [`route`], its backends `svc-<r mod services>-<i>` when `services` is given: the tenant's
/// routes share `2 x services` Services (one Envoy cluster each), as many routes to a few
/// Services do.
pub fn route_sharing(
    t: usize,
    r: usize,
    prefix: &str,
    generation: i64,
    echoes: &[SocketAddr],
    services: Option<usize>,
) -> pb::Object {
    let service = services.map_or(r, |n| r % n);
    let path = |kind: pb::path_match::Type, value: String| pb::PathMatch {
        r#type: kind as i32,
        value,
    };
    let rules = (0..2)
        .map(|ri| pb::HttpRouteRule {
            name: String::new(),
            matches: vec![
                pb::HttpRouteMatch {
                    path: Some(path(
                        pb::path_match::Type::PathPrefix,
                        format!("{prefix}/r{ri}"),
                    )),
                    ..Default::default()
                },
                pb::HttpRouteMatch {
                    path: Some(path(
                        pb::path_match::Type::Exact,
                        format!("{prefix}/r{ri}/exact"),
                    )),
                    headers: vec![pb::HeaderMatch {
                        name: "x-env".into(),
                        value: "prod".into(),
                        regular_expression: false,
                    }],
                    method: "GET".into(),
                    ..Default::default()
                },
            ],
            filters: vec![],
            backends: vec![pb::Backend {
                namespace: "default".into(),
                name: format!("svc-{service}-{ri}"),
                port: 8080,
                weight: 1,
                problem: None,
                endpoints: echoes
                    .iter()
                    .map(|a| pb::Endpoint {
                        address: a.ip().to_string(),
                        port: u32::from(a.port()),
                        ready: true,
                    })
                    .collect(),
                app_protocol: String::new(),
                filters: vec![],
                kind: String::new(),
            }],
            timeouts: None,
        })
        .collect();
    pb::Object {
        r#ref: Some(route_ref(r)),
        generation,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::HttpRoute(pb::HttpRoute {
            parent_refs: vec![pb::ParentRef {
                namespace: "default".into(),
                name: "web".into(),
                section_name: String::new(),
                port: 0,
                ..Default::default()
            }],
            hostnames: vec![host(t, r)],
            rules,
        })),
    }
}

/// Tenant `t`'s full state: its Gateway and `routes` routes under `/api`.
pub fn full_state(t: usize, routes: usize, echoes: &[SocketAddr]) -> Vec<pb::Object> {
    full_state_sharing(t, routes, echoes, None)
}

/// [`full_state`] of routes made by [`route_sharing`].
pub fn full_state_sharing(
    t: usize,
    routes: usize,
    echoes: &[SocketAddr],
    services: Option<usize>,
) -> Vec<pb::Object> {
    let mut objects = vec![gateway(t)];
    objects.extend((0..routes).map(|r| route_sharing(t, r, "/api", 1, echoes, services)));
    objects
}

/// An Update of revision `revision`.
pub fn update(
    revision: u64,
    full_state: bool,
    upserts: Vec<pb::Object>,
    deletes: Vec<pb::ObjectRef>,
) -> pb::AgentMessage {
    pb::AgentMessage {
        kind: Some(pb::agent_message::Kind::Update(pb::Update {
            traceparent: String::new(),
            revision,
            full_state,
            upserts,
            deletes,
        })),
    }
}

/// Opens tenant `t`'s cluster `c1` Sync stream to `hub` with a fresh agent identity.
pub async fn connect(
    hub: &Hub,
    t: usize,
) -> anyhow::Result<(SpokeServiceClient<Channel>, SyncSession)> {
    let id = hub.issue_agent_identity(&tenant(t), "c1")?;
    let tls = ClientTls::from_identity_dir(&id)?;
    let mut client = sync_client::connect(hub.agent_addr(), &tls).await?;
    let session = SyncSession::open(&mut client, "c1").await?;
    Ok((client, session))
}

/// Waits for the hub's Ack of `revision` (Status pushes skipped); panics on anything else.
pub async fn expect_ack(session: &mut SyncSession, revision: u64) {
    match session.next_verdict(TIMEOUT * 4).await {
        Ok(Ok(Some(pb::HubMessage {
            kind: Some(pb::hub_message::Kind::Ack(pb::Ack { revision: r, .. })),
        }))) if r == revision => {}
        other => panic!("update {revision} was not acked: {other:?}"),
    }
}
