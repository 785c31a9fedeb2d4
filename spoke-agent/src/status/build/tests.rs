//! Table tests of status building: condition merging, what gets written, and that writing the
//! planned status back makes the plan empty (no flapping).

use fleetgate_proto::spoke::v1::{ListenerStatus, ObjectRef, ParentRef, RouteParentStatus};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::test_support::*;

fn t(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap())
}

fn pc(ty: &str, status: &str, reason: &str) -> pb::Condition {
    pb::Condition {
        r#type: ty.into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
    }
}

fn kc(ty: &str, status: &str, reason: &str, gen_: i64, at: i64) -> Condition {
    Condition {
        type_: ty.into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: Some(gen_),
        last_transition_time: t(at),
    }
}

#[test]
fn merge_conditions_table() {
    let now = t(500);
    type Case = (
        &'static str,
        Vec<Condition>,
        Vec<pb::Condition>,
        Vec<Condition>,
    );
    let cases: Vec<Case> = vec![
        (
            "new condition gets now",
            vec![],
            vec![pc("Accepted", "True", "Accepted")],
            vec![kc("Accepted", "True", "Accepted", 3, 500)],
        ),
        (
            "same status keeps its transition time, takes the new reason and generation",
            vec![kc("Accepted", "True", "Old", 1, 100)],
            vec![pc("Accepted", "True", "Accepted")],
            vec![kc("Accepted", "True", "Accepted", 3, 100)],
        ),
        (
            "status change moves the transition time",
            vec![kc("Programmed", "False", "Pending", 1, 100)],
            vec![pc("Programmed", "True", "Programmed")],
            vec![kc("Programmed", "True", "Programmed", 3, 500)],
        ),
        (
            "other types are kept, output sorted by type",
            vec![kc("Ready", "True", "Ready", 1, 50)],
            vec![
                pc("Programmed", "True", "Programmed"),
                pc("Accepted", "True", "Accepted"),
            ],
            vec![
                kc("Accepted", "True", "Accepted", 3, 500),
                kc("Programmed", "True", "Programmed", 3, 500),
                kc("Ready", "True", "Ready", 1, 50),
            ],
        ),
        (
            "an empty reason becomes Pending (the CRD requires one)",
            vec![],
            vec![pc("Accepted", "Unknown", "")],
            vec![kc("Accepted", "Unknown", "Pending", 3, 500)],
        ),
    ];
    for (name, existing, desired, want) in cases {
        assert_eq!(
            merge_conditions(&existing, &desired, 3, &now),
            want,
            "{name}"
        );
    }
}

fn hub_status(addr: &str, programmed: &str) -> Status {
    Status {
        traceparent: String::new(),
        objects: vec![
            ObjectStatus {
                r#ref: Some(ObjectRef {
                    kind: Kind::Gateway as i32,
                    namespace: "infra".into(),
                    name: "gw".into(),
                }),
                observed_generation: 1,
                conditions: vec![
                    pc("Accepted", "True", "Accepted"),
                    pc("Programmed", programmed, "Programmed"),
                ],
                addresses: vec![addr.into()],
                listeners: vec![ListenerStatus {
                    name: "http".into(),
                    attached_routes: 1,
                    conditions: vec![pc("Accepted", "True", "Accepted")],
                    // A hub that does not send supportedKinds: the agent falls back to the
                    // listener protocol's kind.
                    supported_kinds: vec![],
                }],
                parents: vec![],
                load_balancer_ingress: vec![],
                attached_listener_sets: 0,
            },
            ObjectStatus {
                r#ref: Some(ObjectRef {
                    kind: Kind::HttpRoute as i32,
                    namespace: "app".into(),
                    name: "r".into(),
                }),
                observed_generation: 1,
                parents: vec![RouteParentStatus {
                    parent_ref: Some(ParentRef {
                        namespace: "infra".into(),
                        name: "gw".into(),
                        section_name: String::new(),
                        port: 0,
                        ..Default::default()
                    }),
                    conditions: vec![
                        pc("Accepted", "True", "Accepted"),
                        pc("ResolvedRefs", "True", "ResolvedRefs"),
                    ],
                }],
                ..Default::default()
            },
            ObjectStatus {
                r#ref: Some(ObjectRef {
                    kind: Kind::HttpRoute as i32,
                    namespace: "app".into(),
                    name: "unknown-to-the-cluster".into(),
                }),
                ..Default::default()
            },
        ],
    }
}

fn cluster() -> ClusterState {
    let mut route = http_route("app", "r", vec![parent(Some("infra"), "gw")], &[], vec![]);
    route.status = Some(HttpRouteStatus {
        parents: vec![HttpRouteStatusParents {
            controller_name: "example.com/other".into(),
            parent_ref: HttpRouteStatusParentsParentRef {
                name: "theirs".into(),
                ..Default::default()
            },
            conditions: vec![kc("Accepted", "True", "Accepted", 1, 7)],
        }],
    });
    ClusterState {
        gateway_classes: vec![
            gateway_class("fleetgate", CONTROLLER_NAME),
            gateway_class("other", "x.io/y"),
        ],
        gateways: vec![
            gateway("infra", "gw", "fleetgate", &[("http", "HTTP", 8080, None)]),
            gateway("infra", "foreign", "other", &[("http", "HTTP", 8080, None)]),
        ],
        http_routes: vec![route],
        ..Default::default()
    }
}

/// Applies planned writes to the snapshot, as the API server would.
fn apply(state: &mut ClusterState, writes: Vec<StatusWrite>) {
    for w in writes {
        match w {
            StatusWrite::BackendTlsPolicy { name, status, .. } => {
                let o = state
                    .backend_tls_policies
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::ListenerSet { name, status, .. } => {
                let o = state
                    .listener_sets
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::GatewayClass { name, status } => {
                let o = state
                    .gateway_classes
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::Gateway { name, status, .. } => {
                let o = state
                    .gateways
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::L4Route { name, status, .. } => {
                let o = state
                    .tcp_routes
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::Service { name, status, .. } => {
                let o = state
                    .services
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::HttpRoute { name, status, .. } => {
                let o = state
                    .http_routes
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::TlsRoute { name, status, .. } => {
                let o = state
                    .tls_routes
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status =
                    Some(serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap());
            }
            StatusWrite::GrpcRoute { name, status, .. } => {
                let o = state
                    .grpc_routes
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status =
                    Some(serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap());
            }
            StatusWrite::AiBackend { name, status, .. } => {
                let o = state
                    .ai_backends
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
            StatusWrite::VirtualKey { name, status, .. } => {
                let o = state
                    .virtual_keys
                    .iter_mut()
                    .find(|o| o.metadata.name.as_deref() == Some(&name))
                    .unwrap();
                o.status = Some(status);
            }
        }
    }
}

#[test]
fn tls_route_status_is_written_once_with_the_hub_conditions() {
    let mut st = cluster();
    st.tls_routes = vec![serde_json::from_value(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
        "metadata": {"name": "pg", "namespace": "app", "generation": 4},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}],
                 "hostnames": ["pg.a.example"], "rules": [{"backendRefs": [{"name": "pg", "port": 5432}]}]},
    }))
    .unwrap()];
    let hub = Status {
        traceparent: String::new(),
        objects: vec![ObjectStatus {
            r#ref: Some(pb::ObjectRef {
                kind: Kind::TlsRoute as i32,
                namespace: "app".into(),
                name: "pg".into(),
            }),
            observed_generation: 4,
            parents: vec![pb::RouteParentStatus {
                parent_ref: Some(pb::ParentRef {
                    namespace: "infra".into(),
                    name: "gw".into(),
                    ..Default::default()
                }),
                conditions: vec![pb::Condition {
                    r#type: "Accepted".into(),
                    status: "True".into(),
                    reason: "Accepted".into(),
                    message: String::new(),
                }],
            }],
            ..Default::default()
        }],
    };
    let now = now_seconds();
    let writes: Vec<StatusWrite> = plan(&st, Some(&hub), &now)
        .into_iter()
        .filter(|w| matches!(w, StatusWrite::TlsRoute { .. }))
        .collect();
    assert_eq!(writes.len(), 1);
    let StatusWrite::TlsRoute { status, .. } = &writes[0] else {
        unreachable!()
    };
    assert_eq!(status.parents[0].parent_ref.name, "gw");
    assert_eq!(status.parents[0].conditions[0].observed_generation, Some(4));
    apply(&mut st, writes);
    assert!(
        !plan(&st, Some(&hub), &now)
            .iter()
            .any(|w| matches!(w, StatusWrite::TlsRoute { .. }))
    );
}

#[test]
fn plan_writes_once_and_then_converges() {
    let mut st = cluster();
    let objects = |w: &[StatusWrite]| w.iter().map(StatusWrite::object).collect::<Vec<_>>();

    // Before the hub said anything, only the claimed class is accepted.
    let w = plan(&st, None, &t(100));
    assert_eq!(objects(&w), ["GatewayClass fleetgate"]);
    apply(&mut st, w);
    assert!(plan(&st, None, &t(200)).is_empty());

    let hub = hub_status("10.0.0.1", "True");
    let w = plan(&st, Some(&hub), &t(300));
    assert_eq!(objects(&w), ["Gateway infra/gw", "HTTPRoute app/r"]);
    let StatusWrite::Gateway { status, .. } = &w[0] else {
        panic!()
    };
    let addr = &status.addresses.as_ref().unwrap()[0];
    assert_eq!(
        (addr.r#type.as_deref(), addr.value.as_str()),
        (Some("IPAddress"), "10.0.0.1")
    );
    let l = &status.listeners.as_ref().unwrap()[0];
    assert_eq!((l.name.as_str(), l.attached_routes), ("http", 1));
    let kinds = l.supported_kinds.as_ref().unwrap();
    assert_eq!(
        kinds
            .iter()
            .map(|k| (k.group.as_deref(), k.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (Some(GATEWAY_GROUP), "HTTPRoute"),
            (Some(GATEWAY_GROUP), "GRPCRoute")
        ]
    );
    assert!(
        l.conditions
            .iter()
            .all(|c| c.observed_generation == Some(1))
    );
    let StatusWrite::HttpRoute { status, .. } = &w[1] else {
        panic!()
    };
    assert_eq!(
        status.parents.len(),
        2,
        "the other controller's entry is kept"
    );
    assert_eq!(status.parents[0].controller_name, "example.com/other");
    let ours = &status.parents[1];
    assert_eq!(ours.controller_name, CONTROLLER_NAME);
    assert_eq!(ours.parent_ref.namespace.as_deref(), Some("infra"));
    assert_eq!(
        ours.parent_ref.group, None,
        "parentRef as the tenant wrote it"
    );
    apply(&mut st, w);

    // Same hub status later: nothing to write (no flapping lastTransitionTime).
    assert!(plan(&st, Some(&hub), &t(400)).is_empty());

    // Programmed flips: one write; only that condition's transition time moves.
    let w = plan(&st, Some(&hub_status("10.0.0.1", "False")), &t(500));
    assert_eq!(objects(&w), ["Gateway infra/gw"]);
    let StatusWrite::Gateway { status, .. } = &w[0] else {
        panic!()
    };
    let conds = status.conditions.as_ref().unwrap();
    let time_of = |ty: &str| {
        conds
            .iter()
            .find(|c| c.type_ == ty)
            .unwrap()
            .last_transition_time
            .clone()
    };
    assert_eq!(
        (time_of("Accepted"), time_of("Programmed")),
        (t(300), t(500))
    );

    // An address change alone is a write too.
    assert_eq!(
        plan(&st, Some(&hub_status("10.0.0.2", "True")), &t(600)).len(),
        1
    );
}

#[test]
fn summaries_have_no_timestamps() {
    let st = cluster();
    let hub = hub_status("10.0.0.1", "True");
    let a: Vec<String> = plan(&st, Some(&hub), &t(1)).iter().map(summary).collect();
    let b: Vec<String> = plan(&st, Some(&hub), &t(2)).iter().map(summary).collect();
    assert_eq!(a, b);
    assert_eq!(
        a[0],
        "Accepted=True(Accepted: Claimed by fleetgate.dev/hub)"
    );
    assert_eq!(
        a[1],
        "Accepted=True(Accepted) Programmed=True(Programmed) addresses=[10.0.0.1] listeners=[http attachedRoutes=1 Accepted=True(Accepted)]"
    );
    assert_eq!(
        a[2],
        "[parent infra/gw: Accepted=True(Accepted) ResolvedRefs=True(ResolvedRefs)]"
    );
}

#[test]
fn claimed_classes_list_the_supported_features_in_order() {
    let st = cluster();
    let w = plan(&st, None, &t(100));
    let StatusWrite::GatewayClass { status, .. } = &w[0] else {
        panic!("{w:?}")
    };
    let names: Vec<&str> = status
        .supported_features
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, crate::status::features::SUPPORTED_FEATURES);
    assert!(names.contains(&"HTTPRoute") && names.contains(&"TLSRoute"));
    let accepted = status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert_eq!(accepted.status, "True");
}

/// fleetgate takes no parameters: a claimed GatewayClass with a parametersRef is
/// Accepted=False/InvalidParameters with a message saying so and what to do, at its generation.
#[test]
fn a_class_with_a_parameters_ref_is_not_accepted() {
    let mut st = cluster();
    st.gateway_classes[0].spec.parameters_ref =
        Some(gateway_api::gatewayclasses::GatewayClassParametersRef {
            group: "example.com".into(),
            kind: "Params".into(),
            name: "p".into(),
            namespace: None,
        });
    st.gateway_classes[0].metadata.generation = Some(3);
    let w = plan(&st, None, &t(100));
    let StatusWrite::GatewayClass { status, .. } = &w[0] else {
        panic!("{w:?}")
    };
    let accepted = status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert_eq!(
        (accepted.status.as_str(), accepted.reason.as_str()),
        ("False", "InvalidParameters")
    );
    assert!(
        accepted.message.contains("example.com/Params p")
            && accepted.message.contains("takes no parameters")
            && accepted.message.contains("remove spec.parametersRef"),
        "{}",
        accepted.message
    );
    assert_eq!(accepted.observed_generation, Some(3));
}

#[test]
fn supported_kinds_come_from_the_hub_and_may_be_empty() {
    supported_kinds_case(cluster(), "HTTP");
    // A protocol fleetgate does not serve: none, also when the hub sent none
    // (upstream conformance GatewayListenerUnsupportedProtocol).
    let mut st = cluster();
    st.gateways[0].spec.listeners[0].protocol = "example.com/unsupported".into();
    supported_kinds_case(st, "example.com/unsupported");
}

fn supported_kinds_case(st: ClusterState, protocol: &str) {
    let kinds_of = |supported: Vec<pb::RouteGroupKind>, resolved: pb::Condition| {
        let mut hub = hub_status("10.0.0.1", "True");
        let l = &mut hub.objects[0].listeners[0];
        l.supported_kinds = supported;
        l.conditions.push(resolved);
        let w = plan(&st, Some(&hub), &t(300));
        let gw = w
            .iter()
            .find_map(|w| match w {
                StatusWrite::Gateway { status, .. } => Some(status.clone()),
                _ => None,
            })
            .expect("a Gateway write");
        gw.listeners.unwrap()[0]
            .supported_kinds
            .clone()
            .unwrap()
            .into_iter()
            .map(|k| (k.group.unwrap_or_default(), k.kind))
            .collect::<Vec<_>>()
    };
    let g = "gateway.networking.k8s.io".to_string();
    assert_eq!(
        kinds_of(
            vec![pb::RouteGroupKind {
                group: g.clone(),
                kind: "HTTPRoute".into()
            }],
            pc("ResolvedRefs", "True", "ResolvedRefs")
        ),
        vec![(g.clone(), "HTTPRoute".to_string())]
    );
    assert_eq!(
        kinds_of(vec![], pc("ResolvedRefs", "False", "InvalidRouteKinds")),
        vec![]
    );
    // A listener the hub refused keeps the hub's empty list (a TLS listener in Terminate
    // mode: upstream TLSRouteListenerTerminateNotSupported).
    assert_eq!(
        kinds_of(vec![], pc("Accepted", "False", "UnsupportedValue")),
        vec![]
    );
    let defaulted = kinds_of(vec![], pc("ResolvedRefs", "True", "ResolvedRefs"));
    if protocol == "HTTP" {
        assert_eq!(
            defaulted,
            vec![
                (g.clone(), "HTTPRoute".to_string()),
                (g.clone(), "GRPCRoute".to_string())
            ],
            "an older hub that sends none: the protocol's kinds"
        );
    } else {
        assert_eq!(defaulted, vec![], "{protocol}");
    }
}

#[test]
fn listener_sets_and_their_routes_get_status_and_the_gateway_counts_them() {
    let mut gw = gateway("infra", "gw", "fleetgate", &[("http", "HTTP", 8080, None)]);
    gw.spec.allowed_listeners =
        serde_json::from_value(serde_json::json!({"namespaces": {"from": "Same"}})).ok();
    let ls: gateway_api::listenersets::ListenerSet = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "infra", "name": "extra", "generation": 2},
        "spec": {"parentRef": {"name": "gw"},
                 "listeners": [{"name": "alt", "protocol": "HTTP", "port": 8081}]}
    }))
    .unwrap();
    let ls_parent = HttpRouteParentRefs {
        group: Some(GATEWAY_GROUP.into()),
        kind: Some("ListenerSet".into()),
        namespace: Some("infra".into()),
        name: "extra".into(),
        ..Default::default()
    };
    let route = http_route("infra", "r", vec![ls_parent], &[], vec![]);
    let mut st = ClusterState {
        gateway_classes: vec![gateway_class("fleetgate", CONTROLLER_NAME)],
        gateways: vec![gw],
        listener_sets: vec![ls],
        http_routes: vec![route],
        ..Default::default()
    };
    let obj = |kind: Kind, name: &str| ObjectRef {
        kind: kind as i32,
        namespace: "infra".into(),
        name: name.into(),
    };
    let hub = Status {
        traceparent: String::new(),
        objects: vec![
            ObjectStatus {
                r#ref: Some(obj(Kind::Gateway, "gw")),
                observed_generation: 1,
                conditions: vec![pc("Accepted", "True", "Accepted")],
                attached_listener_sets: 1,
                ..Default::default()
            },
            ObjectStatus {
                r#ref: Some(obj(Kind::ListenerSet, "extra")),
                observed_generation: 2,
                conditions: vec![
                    pc("Accepted", "True", "Accepted"),
                    pc("Programmed", "True", "Programmed"),
                ],
                listeners: vec![ListenerStatus {
                    name: "alt".into(),
                    attached_routes: 1,
                    conditions: vec![pc("Programmed", "True", "Programmed")],
                    supported_kinds: vec![pb::RouteGroupKind {
                        group: GATEWAY_GROUP.into(),
                        kind: "HTTPRoute".into(),
                    }],
                }],
                ..Default::default()
            },
            ObjectStatus {
                r#ref: Some(obj(Kind::HttpRoute, "r")),
                observed_generation: 1,
                parents: vec![RouteParentStatus {
                    parent_ref: Some(ParentRef {
                        namespace: "infra".into(),
                        name: "extra".into(),
                        group: GATEWAY_GROUP.into(),
                        kind: "ListenerSet".into(),
                        ..Default::default()
                    }),
                    conditions: vec![pc("Accepted", "True", "Accepted")],
                }],
                ..Default::default()
            },
        ],
    };
    let writes = plan(&st, Some(&hub), &t(100));
    let mut seen = Vec::new();
    for w in &writes {
        match w {
            StatusWrite::Gateway { status, .. } => {
                assert_eq!(status.attached_listener_sets, Some(1));
                seen.push("gw");
            }
            StatusWrite::ListenerSet { status, .. } => {
                let l = &status.listeners.as_ref().unwrap()[0];
                assert_eq!((l.name.as_str(), l.attached_routes), ("alt", 1));
                assert_eq!(l.conditions[0].observed_generation, Some(2));
                assert_eq!(l.supported_kinds.as_ref().unwrap()[0].kind, "HTTPRoute");
                seen.push("ls");
            }
            StatusWrite::HttpRoute { status, .. } => {
                let p = &status.parents[0].parent_ref;
                assert_eq!(
                    (p.kind.as_deref(), p.name.as_str()),
                    (Some("ListenerSet"), "extra"),
                    "the parentRef as the tenant wrote it"
                );
                seen.push("route");
            }
            _ => {}
        }
    }
    seen.sort();
    assert_eq!(seen, ["gw", "ls", "route"]);
    // Written back, nothing more to write.
    apply(&mut st, writes);
    let again: Vec<String> = plan(&st, Some(&hub), &t(200))
        .iter()
        .filter(|w| !matches!(w, StatusWrite::GatewayClass { .. }))
        .map(StatusWrite::object)
        .collect();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn ai_backends_get_the_hubs_conditions_once_and_named_classes_are_accepted() {
    use crate::crd::AgentgatewayBackend;
    let mut backend: AgentgatewayBackend = serde_yaml::from_str(
        "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayBackend\nmetadata: {name: local-llm}\nspec: {ai: {provider: {openai: {}}}}\n",
    )
    .unwrap();
    backend.metadata = meta(Some("agentgateway-system"), "local-llm");
    backend.metadata.generation = Some(4);
    // A condition another controller set stays.
    backend.status = Some(crate::crd::agentgateway::AgentgatewayBackendStatus {
        conditions: Some(vec![kc("example.com/Synced", "True", "Synced", 1, 7)]),
    });
    let mut st = ClusterState {
        gateway_classes: vec![gateway_class(
            "agentgateway",
            "agentgateway.dev/agentgateway",
        )],
        ai_backends: vec![backend],
        claimed_class_names: vec!["agentgateway".into()],
        ..Default::default()
    };
    let hub = Status {
        traceparent: String::new(),
        objects: vec![ObjectStatus {
            r#ref: Some(ObjectRef {
                kind: Kind::AiBackend as i32,
                namespace: "agentgateway-system".into(),
                name: "local-llm".into(),
            }),
            observed_generation: 4,
            conditions: vec![
                pc("Accepted", "True", "Accepted"),
                pc("ResolvedRefs", "False", "BackendNotFound"),
            ],
            ..Default::default()
        }],
    };
    let writes = plan(&st, Some(&hub), &t(100));
    assert_eq!(writes.len(), 2, "{writes:?}");
    let StatusWrite::GatewayClass { name, status } = &writes[0] else {
        panic!("{writes:?}")
    };
    assert_eq!(name, "agentgateway");
    let accepted = &status.conditions.as_ref().unwrap()[0];
    assert_eq!(
        (accepted.type_.as_str(), accepted.status.as_str()),
        ("Accepted", "True")
    );
    assert!(
        accepted.message.contains("--gateway-class agentgateway"),
        "{}",
        accepted.message
    );
    let StatusWrite::AiBackend {
        namespace,
        name,
        status,
    } = &writes[1]
    else {
        panic!("{writes:?}")
    };
    assert_eq!(
        (namespace.as_str(), name.as_str()),
        ("agentgateway-system", "local-llm")
    );
    let got: Vec<(&str, &str, &str, Option<i64>)> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_str(),
                c.observed_generation,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Accepted", "True", "Accepted", Some(4)),
            ("ResolvedRefs", "False", "BackendNotFound", Some(4)),
            ("example.com/Synced", "True", "Synced", Some(1)),
        ]
    );
    assert_eq!(
        summary(&writes[1]),
        "Accepted=True(Accepted) ResolvedRefs=False(BackendNotFound) example.com/Synced=True(Synced)"
    );
    apply(&mut st, writes);
    assert_eq!(
        plan(&st, Some(&hub), &t(200)),
        vec![],
        "converged: no second write"
    );
}

#[test]
fn virtual_keys_get_the_hubs_conditions_once() {
    use crate::crd::VirtualKey;
    let mut key: VirtualKey = serde_yaml::from_str(
        "apiVersion: fleetgate.dev/v1alpha1\nkind: VirtualKey\nmetadata: {name: alice}\nspec: {secretRef: {name: alice-key}, backends: [{name: local-llm}]}\n",
    )
    .unwrap();
    key.metadata = meta(Some("team"), "alice");
    key.metadata.generation = Some(2);
    let mut st = ClusterState {
        virtual_keys: vec![key],
        ..Default::default()
    };
    let hub = Status {
        traceparent: String::new(),
        objects: vec![ObjectStatus {
            r#ref: Some(ObjectRef {
                kind: Kind::VirtualKey as i32,
                namespace: "team".into(),
                name: "alice".into(),
            }),
            observed_generation: 2,
            conditions: vec![
                pc("Accepted", "True", "Accepted"),
                pc("ResolvedRefs", "False", "BackendNotFound"),
            ],
            ..Default::default()
        }],
    };
    let writes = plan(&st, Some(&hub), &t(100));
    let [
        StatusWrite::VirtualKey {
            namespace, name, ..
        },
    ] = writes.as_slice()
    else {
        panic!("{writes:?}")
    };
    assert_eq!((namespace.as_str(), name.as_str()), ("team", "alice"));
    assert_eq!(
        summary(&writes[0]),
        "Accepted=True(Accepted) ResolvedRefs=False(BackendNotFound)"
    );
    assert_eq!(writes[0].object(), "VirtualKey team/alice");
    apply(&mut st, writes);
    assert_eq!(plan(&st, Some(&hub), &t(200)), vec![], "converged");
}
