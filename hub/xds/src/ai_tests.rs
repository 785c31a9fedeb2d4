//! Routes to AgentgatewayBackends in Envoy form (issue 11): compiled from intent by the real
//! compiler, then translated. The identity headers the AI gateway trusts are set on the weighted
//! cluster with OVERWRITE_IF_EXISTS_OR_ADD (a client's copies, however many, are discarded), and
//! nothing Envoy applies after the weighted cluster (route, virtual host, route configuration)
//! touches them, so a client's own `x-fleetgate-tenant` / `x-fleetgate-route` never reach the AI
//! gateway. The same is proved against a running Envoy in `hub/tests/xds_envoy.rs`
//! (`envoy_sends_ai_routes_to_the_ai_gateway_with_only_its_own_identity_headers`).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, route, route_action};
use envoy_types::pb::google::protobuf::Duration;

use crate::model::ai::{
    AI_GATEWAY_CLUSTER, AiAuth, AiBackend, AiProvider, AiTarget, AiUpstream, ROUTE_HEADER,
    TENANT_HEADER,
};
use crate::model::data_plane::{DataPlane, DataPlaneListener};
use crate::model::{
    AllowedRoutes, Backend, BackendKind, ClusterIntent, ClusterKey, Gateway, HeaderModifier,
    HttpFilter, HttpRoute, HttpRouteMatch, HttpRouteRule, Listener, Meta, ParentRef, PathMatch,
    Protocol, thin_vec,
};

fn meta(name: &str) -> Meta {
    Meta {
        namespace: "default".into(),
        name: name.into(),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
    }
}

/// Tenant `a`'s route to AgentgatewayBackend `local-llm`, with header changes a tenant could only
/// have stored before admission refused them (`x-fleetgate-*` on the rule and the backendRef).
fn compiled_route_configuration() -> RouteConfiguration {
    let forged = HeaderModifier {
        set: vec![
            (TENANT_HEADER.into(), "b".into()),
            ("x-keep".into(), "1".into()),
        ]
        .into(),
        add: vec![(ROUTE_HEADER.into(), "c1/default/b-only".into())].into(),
        remove: vec![TENANT_HEADER.into()].into(),
    };
    let ai_ref = Backend {
        namespace: "default".into(),
        name: "local-llm".into(),
        port: 0,
        weight: 1,
        problem: None,
        endpoints: Default::default(),
        app_protocol: Default::default(),
        request_headers: forged.clone(),
        response_headers: Default::default(),
        kind: BackendKind::AiBackend,
    };
    let route = HttpRoute {
        meta: meta("chat"),
        parent_refs: vec![ParentRef {
            namespace: "default".into(),
            name: "gw".into(),
            section_name: None,
            port: None,
            kind: Default::default(),
        }],
        hostnames: vec!["chat.a.example".into()],
        rules: vec![HttpRouteRule {
            name: None,
            matches: thin_vec![HttpRouteMatch {
                path: PathMatch::Prefix("/".into()),
                headers: Default::default(),
                query_params: Default::default(),
                method: None,
            }],
            filters: thin_vec![HttpFilter::RequestHeaderModifier(forged)],
            backends: thin_vec![ai_ref],
            timeouts: Default::default(),
        }],
    };
    let gateway = Gateway {
        meta: meta("gw"),
        class_name: "agentgateway".into(),
        allowed_listeners: Default::default(),
        listeners: vec![Listener {
            name: "http".into(),
            protocol: Some(Protocol::Http),
            protocol_name: "HTTP".into(),
            port: 80,
            hostname: None,
            allowed_routes: AllowedRoutes::Same,
            tls: None,
            allowed_kinds: vec![],
        }],
    };
    let backend = AiBackend {
        model_aliases: Default::default(),
        meta: meta("local-llm"),
        target: Ok(AiTarget {
            provider: AiProvider::OpenAi { model: None },
            host: "llama-cpp.llm.svc.cluster.local".into(),
            port: 8080,
            path: None,
            path_prefix: None,
            upstream: AiUpstream::Cluster(vec!["127.0.1.10:8080".parse().unwrap()]),
            auth: AiAuth::None,
        }
        .into()),
    };
    let mut ci = ClusterIntent::default();
    ci.gateways.insert(("default".into(), "gw".into()), gateway);
    ci.http_routes
        .insert(("default".into(), "chat".into()), route);
    ci.ai_backends
        .insert(("default".into(), "local-llm".into()), backend);
    let key = ClusterKey {
        tenant: "a".into(),
        cluster: "c1".into(),
    };
    let dp = DataPlane {
        address: "192.0.2.10".parse().unwrap(),
        listeners: vec![DataPlaneListener {
            port: 80,
            bind: "127.0.0.1:18080".parse().unwrap(),
            protocol: Default::default(),
        }],
        ai_gateways: vec!["127.0.0.1:18090".parse().unwrap()],
    };
    let compiled =
        fleetgate_hub_compile::compile(&BTreeMap::from([(key, std::sync::Arc::new(ci))]), &dp);
    crate::resources::route_configuration(&compiled.snapshot.listeners[0])
}

fn names(opts: &[HeaderValueOption]) -> Vec<String> {
    opts.iter()
        .filter_map(|o| o.header.as_ref().map(|h| h.key.to_ascii_lowercase()))
        .collect()
}

fn is_identity(name: &str) -> bool {
    name.starts_with("x-fleetgate-")
}

#[test]
fn identity_headers_overwrite_the_clients_on_the_weighted_cluster_and_nothing_else_touches_them() {
    let rc = compiled_route_configuration();
    // Envoy's default order: weighted cluster, then route, virtual host, route configuration
    // (a later level wins). Nothing after the weighted cluster mentions the identity headers.
    assert!(!rc.most_specific_header_mutations_wins);
    assert!(
        names(&rc.request_headers_to_add)
            .iter()
            .all(|n| !is_identity(n))
    );
    assert!(rc.request_headers_to_remove.iter().all(|n| !is_identity(n)));
    let vh = &rc.virtual_hosts[0];
    assert_eq!(vh.domains, vec!["chat.a.example"]);
    assert!(
        names(&vh.request_headers_to_add)
            .iter()
            .all(|n| !is_identity(n))
    );
    assert!(vh.request_headers_to_remove.iter().all(|n| !is_identity(n)));
    let r = &vh.routes[0];
    assert_eq!(names(&r.request_headers_to_add), vec!["x-keep"]);
    assert!(r.request_headers_to_remove.is_empty());

    let Some(route::Action::Route(ra)) = &r.action else {
        panic!("a forwarding route expected: {r:?}")
    };
    // No timeout (0s disables Envoy's 15 s default): LLM answers stream for long.
    assert_eq!(ra.timeout, Some(Duration::default()));
    let Some(route_action::ClusterSpecifier::WeightedClusters(w)) = &ra.cluster_specifier else {
        panic!("weighted clusters expected: {ra:?}")
    };
    assert_eq!(w.clusters.len(), 1);
    let cw = &w.clusters[0];
    assert_eq!(cw.name, AI_GATEWAY_CLUSTER);
    let identity: Vec<(String, String, i32)> = cw
        .request_headers_to_add
        .iter()
        .filter_map(|o| {
            let h = o.header.as_ref()?;
            is_identity(&h.key).then(|| (h.key.clone(), h.value.clone(), o.append_action))
        })
        .collect();
    let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
    assert_eq!(
        identity,
        vec![
            (TENANT_HEADER.to_string(), "a".to_string(), overwrite),
            (
                ROUTE_HEADER.to_string(),
                "c1/default/local-llm".to_string(),
                overwrite
            ),
        ]
    );
    assert!(cw.request_headers_to_remove.iter().all(|n| !is_identity(n)));
    // Every option of the weighted cluster overwrites or appends explicitly; none keeps a
    // client's value (ADD_IF_ABSENT) for an identity header.
    assert!(
        cw.request_headers_to_add
            .iter()
            .all(|o| o.append_action != HeaderAppendAction::AddIfAbsent as i32)
    );
}
