//! Translate (pure): GRPCRoute v1 -> proto `GrpcRoute`. Method matches (service/method, Exact or
//! RegularExpression) and header matches are sent as written (the hub validates them);
//! backendRefs and RequestMirror backends are resolved like HTTPRoute ones, with ReferenceGrants
//! checked for kind GRPCRoute; RequestHeaderModifier and ResponseHeaderModifier filters reuse the
//! HTTPRoute translation (GRPCRoute's filter types have the same schema).
//!
//! Where it sits: step 3 of the agent's data path, called by [`super::translate`].

use fleetgate_proto::spoke::v1::{self as pb, HeaderMatch, Kind, Object, object};
use gateway_api::grpcroutes::{
    GrpcRoute, GrpcRouteRules, GrpcRouteRulesFilters, GrpcRouteRulesFiltersType,
    GrpcRouteRulesMatches, GrpcRouteRulesMatchesHeadersType, GrpcRouteRulesMatchesMethodType,
};
use gateway_api::httproutes::{HttpRouteRulesBackendRefs, HttpRouteRulesFilters};
use tracing::warn;

use super::filters::{self, backend_filters};
use super::{object_header, wire_backend};
use crate::claim::{SentParents, ns_name, sent_parent_refs};
use crate::crd::{grpc_parent_as_http, same_schema};
use crate::resolve::{BackendRef, Index, resolve_backend_ref};

/// The route kind ReferenceGrants must name for a GRPCRoute's references.
const ROUTE_KIND: &str = "GRPCRoute";

/// The proto object of a GRPCRoute, if it has a parent among the Gateways the agent sends.
pub fn grpc_route_object(r: &GrpcRoute, sent: &SentParents, index: &Index<'_>) -> Option<Object> {
    let mut o = object_header(Kind::GrpcRoute, &r.metadata)?;
    let (ns, name) = ns_name(&r.metadata)?;
    let parent_refs = sent_parent_refs(
        &ns,
        r.spec.parent_refs.iter().flatten().map(grpc_parent_as_http),
        sent,
    );
    if parent_refs.is_empty() {
        return None;
    }
    let rules = r
        .spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, rule)| match translate_rule(&ns, rule, index) {
            Ok(rule) => Some(rule),
            Err(why) => {
                warn!(route = %format!("{ns}/{name}"), rule = i, "dropping the GRPCRoute rule: {why}");
                None
            }
        })
        .collect();
    o.spec = Some(object::Spec::GrpcRoute(pb::GrpcRoute {
        parent_refs,
        hostnames: r.spec.hostnames.clone().unwrap_or_default(),
        rules,
    }));
    Some(o)
}

/// One `matches[]` entry.
pub fn translate_match(m: &GrpcRouteRulesMatches) -> pb::GrpcRouteMatch {
    pb::GrpcRouteMatch {
        method: m.method.as_ref().map(|mm| pb::GrpcMethodMatch {
            r#type: match mm.r#type {
                None | Some(GrpcRouteRulesMatchesMethodType::Exact) => {
                    pb::grpc_method_match::Type::Exact
                }
                Some(GrpcRouteRulesMatchesMethodType::RegularExpression) => {
                    pb::grpc_method_match::Type::RegularExpression
                }
            } as i32,
            service: mm.service.clone().unwrap_or_default(),
            method: mm.method.clone().unwrap_or_default(),
        }),
        headers: m
            .headers
            .iter()
            .flatten()
            .map(|h| HeaderMatch {
                name: h.name.clone(),
                value: h.value.clone(),
                regular_expression: h.r#type
                    == Some(GrpcRouteRulesMatchesHeadersType::RegularExpression),
            })
            .collect(),
    }
}

/// One rule filter; one fleetgate cannot apply becomes an `UnsupportedFilter` (the hub answers
/// the rule's requests with an error and reports the route `Accepted=False/UnsupportedValue`).
fn translate_filter(ns: &str, f: &GrpcRouteRulesFilters, index: &Index<'_>) -> pb::HttpFilter {
    let kind = match f.r#type {
        GrpcRouteRulesFiltersType::RequestHeaderModifier => "RequestHeaderModifier",
        GrpcRouteRulesFiltersType::ResponseHeaderModifier => "ResponseHeaderModifier",
        GrpcRouteRulesFiltersType::RequestMirror => "RequestMirror",
        GrpcRouteRulesFiltersType::ExtensionRef => "ExtensionRef",
    };
    translate_supported(ns, f, index).unwrap_or_else(|why| filters::unsupported_filter(kind, why))
}

fn translate_supported(
    ns: &str,
    f: &GrpcRouteRulesFilters,
    index: &Index<'_>,
) -> Result<pb::HttpFilter, String> {
    match f.r#type {
        GrpcRouteRulesFiltersType::RequestHeaderModifier
        | GrpcRouteRulesFiltersType::ResponseHeaderModifier => {
            let h: HttpRouteRulesFilters =
                same_schema(f).ok_or("the filter does not read as a header modifier")?;
            Ok(filters::translate_filter(ns, &h, index))
        }
        GrpcRouteRulesFiltersType::RequestMirror => {
            let m = f
                .request_mirror
                .as_ref()
                .ok_or("type RequestMirror without requestMirror")?;
            let b = &m.backend_ref;
            let view = BackendRef {
                group: b.group.as_deref(),
                kind: b.kind.as_deref(),
                namespace: b.namespace.as_deref(),
                name: &b.name,
                port: b.port,
                weight: Some(1),
            };
            let (numerator, denominator) = match (&m.fraction, m.percent) {
                (Some(fr), _) => (fr.numerator, fr.denominator.unwrap_or(100)),
                (None, Some(p)) => (p, 100),
                (None, None) => (0, 0),
            };
            Ok(pb::HttpFilter {
                kind: Some(pb::http_filter::Kind::RequestMirror(pb::RequestMirror {
                    backend: Some(wire_backend(resolve_backend_ref(
                        ROUTE_KIND, ns, view, index, "TCP",
                    ))),
                    numerator: u32::try_from(numerator).unwrap_or(0),
                    denominator: u32::try_from(denominator).unwrap_or(0),
                })),
            })
        }
        GrpcRouteRulesFiltersType::ExtensionRef => {
            let r = f.extension_ref.as_ref();
            Err(filters::extension_ref_message(
                r.map_or("", |r| r.group.as_str()),
                r.map_or("", |r| r.kind.as_str()),
                r.map_or("", |r| r.name.as_str()),
            ))
        }
    }
}

fn translate_rule(
    ns: &str,
    rule: &GrpcRouteRules,
    index: &Index<'_>,
) -> Result<pb::GrpcRouteRule, String> {
    let matches = rule.matches.iter().flatten().map(translate_match).collect();
    let filters = rule
        .filters
        .iter()
        .flatten()
        .map(|f| translate_filter(ns, f, index))
        .collect();
    let mut backends = Vec::new();
    for b in rule.backend_refs.iter().flatten() {
        let h: HttpRouteRulesBackendRefs =
            same_schema(b).ok_or("a backendRef does not read as one")?;
        let mut backend = wire_backend(resolve_backend_ref(
            ROUTE_KIND,
            ns,
            BackendRef::from(&h),
            index,
            "TCP",
        ));
        backend.filters = backend_filters(&backend.namespace.clone(), &h);
        backends.push(backend);
    }
    Ok(pb::GrpcRouteRule {
        name: rule.name.clone().unwrap_or_default(),
        matches,
        filters,
        backends,
    })
}

#[cfg(test)]
mod tests {
    use fleetgate_proto::spoke::v1::grpc_method_match::Type;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use super::*;
    use crate::claim::CONTROLLER_NAME;
    use crate::config::EndpointMode;
    use crate::state::ClusterState;
    use crate::test_support::*;

    fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn state(route: serde_json::Value) -> ClusterState {
        ClusterState {
            gateway_classes: vec![gateway_class("fleetgate", CONTROLLER_NAME)],
            gateways: vec![from_json(json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": "gw", "namespace": "default", "generation": 1},
                "spec": {"gatewayClassName": "fleetgate", "listeners": [
                    {"name": "web", "protocol": "HTTP", "port": 80}]},
            }))],
            grpc_routes: vec![from_json(route)],
            services: vec![service(
                "default",
                "echo",
                "NodePort",
                &[(Some("grpc"), 50051, Some(30051), IntOrString::Int(50051))],
            )],
            nodes: vec![node("n1", Some("10.1.0.10"), Some("True"))],
            ..Default::default()
        }
    }

    fn translated(route: serde_json::Value) -> Vec<pb::GrpcRoute> {
        crate::translate::translate(&state(route), EndpointMode::Node)
            .into_iter()
            .filter_map(|o| match o.spec {
                Some(object::Spec::GrpcRoute(g)) => Some(g),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn matches_filters_and_backends() {
        let got = translated(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "echo", "namespace": "default", "generation": 4},
            "spec": {
                "parentRefs": [{"name": "gw"}, {"name": "not-ours"}],
                "hostnames": ["grpc.a.example"],
                "rules": [{
                    "matches": [
                        {"method": {"service": "echo.v1.Echo", "method": "Say"}},
                        {"method": {"type": "RegularExpression", "method": "S.*"},
                         "headers": [{"name": "x-tier", "value": "gold"},
                                     {"name": "x-re", "value": "a+", "type": "RegularExpression"}]},
                    ],
                    "filters": [
                        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}},
                        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "echo", "port": 50051}}},
                    ],
                    "backendRefs": [{"name": "echo", "port": 50051}, {"name": "missing", "port": 1}],
                }],
            },
        }));
        assert_eq!(got.len(), 1);
        let g = &got[0];
        assert_eq!(g.parent_refs.len(), 1, "only parents the agent sends");
        assert_eq!(g.hostnames, vec!["grpc.a.example".to_string()]);
        let rule = &g.rules[0];
        let m0 = rule.matches[0].method.as_ref().unwrap();
        assert_eq!(
            (m0.r#type, m0.service.as_str(), m0.method.as_str()),
            (Type::Exact as i32, "echo.v1.Echo", "Say")
        );
        let m1 = &rule.matches[1];
        let mm = m1.method.as_ref().unwrap();
        assert_eq!(
            (mm.r#type, mm.service.as_str(), mm.method.as_str()),
            (Type::RegularExpression as i32, "", "S.*")
        );
        assert_eq!(
            m1.headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_str(), h.regular_expression))
                .collect::<Vec<_>>(),
            vec![("x-tier", "gold", false), ("x-re", "a+", true)]
        );
        assert!(matches!(
            rule.filters[0].kind,
            Some(pb::http_filter::Kind::RequestHeaderModifier(_))
        ));
        let Some(pb::http_filter::Kind::RequestMirror(m)) = &rule.filters[1].kind else {
            panic!("mirror expected: {:?}", rule.filters[1])
        };
        let mb = m.backend.as_ref().unwrap();
        assert_eq!(mb.endpoints.len(), 1);
        assert_eq!(rule.backends[0].endpoints[0].address, "10.1.0.10");
        assert_eq!(rule.backends[0].endpoints[0].port, 30051);
        assert!(rule.backends[0].problem.is_none());
        assert_eq!(
            rule.backends[1].problem.as_ref().unwrap().reason,
            "BackendNotFound"
        );
    }

    #[test]
    fn extension_ref_keeps_the_rule_marked_unsupported_and_foreign_parents_drop_the_route() {
        let got = translated(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "echo", "namespace": "default"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [
                    {"filters": [{"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}}],
                     "backendRefs": [{"name": "echo", "port": 50051}]},
                    {"backendRefs": [{"name": "echo", "port": 50051}]},
                ],
            },
        }));
        assert_eq!(got[0].rules.len(), 2, "the rule is kept, not dropped");
        let Some(pb::http_filter::Kind::Unsupported(u)) = &got[0].rules[0].filters[0].kind else {
            panic!("{:?}", got[0].rules[0].filters)
        };
        assert_eq!(u.r#type, "ExtensionRef");
        assert!(u.message.contains("x/Y \"z\""), "{}", u.message);
        assert!(got[0].rules[1].filters.is_empty());
        let none = translated(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "echo", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "other-gw"}], "rules": []},
        }));
        assert!(none.is_empty());
    }

    #[test]
    fn cross_namespace_backends_need_a_grant_for_grpcroute() {
        let route = json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "echo", "namespace": "default"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [{"backendRefs": [{"name": "echo", "namespace": "other", "port": 50051}]}],
            },
        });
        let mut st = state(route);
        st.services.push(service(
            "other",
            "echo",
            "NodePort",
            &[(Some("grpc"), 50051, Some(30052), IntOrString::Int(50051))],
        ));
        let reason = |st: &ClusterState| {
            let o = crate::translate::translate(st, EndpointMode::Node);
            o.into_iter()
                .find_map(|o| match o.spec {
                    Some(object::Spec::GrpcRoute(g)) => Some(g),
                    _ => None,
                })
                .unwrap()
                .rules[0]
                .backends[0]
                .problem
                .as_ref()
                .map(|p| p.reason.clone())
        };
        assert_eq!(reason(&st).as_deref(), Some("RefNotPermitted"));
        let grant = |kind: &str| -> gateway_api::referencegrants::ReferenceGrant {
            from_json(json!({
                "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": "g", "namespace": "other"},
                "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": kind, "namespace": "default"}],
                         "to": [{"group": "", "kind": "Service"}]},
            }))
        };
        st.reference_grants = vec![grant("HTTPRoute")];
        assert_eq!(reason(&st).as_deref(), Some("RefNotPermitted"));
        st.reference_grants = vec![grant("GRPCRoute")];
        assert_eq!(reason(&st), None);
    }
}
