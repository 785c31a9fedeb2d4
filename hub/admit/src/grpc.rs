//! Admission of GRPCRoutes: service and method names must be gRPC identifiers (or bounded RE2
//! regular expressions), header matches and filters are checked like HTTPRoute ones, and only
//! the filters GRPCRoute allows (RequestHeaderModifier, ResponseHeaderModifier, RequestMirror)
//! pass. Every backend is marked HTTP/2 (h2c), since gRPC needs it.
//!
//! Where it sits: called by `super::admit` (step 5, admit), pure.

use fleetgate_proto::spoke::v1 as pb;

use super::{Policy, Rejection, check_header, http, reject};
use crate::model::{
    AppProtocol, Backend, GrpcMethodMatch, GrpcRoute, GrpcRouteMatch, GrpcRouteRule, HttpFilter,
    Meta, ValueMatch,
};

/// Longest service or method name (Gateway API CRD limit).
const MAX_NAME_LEN: usize = 1024;

fn unsupported<T>(message: String) -> Result<T, Rejection> {
    reject("UnsupportedValue", message)
}

/// A gRPC service name: dot-separated identifiers (`[A-Za-z_][A-Za-z0-9_]*`), optionally with a
/// leading dot (Gateway API `(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*`).
pub fn is_service_name(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    s.len() <= MAX_NAME_LEN && !s.is_empty() && s.split('.').all(is_identifier)
}

/// A gRPC method name: one identifier (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_method_name(s: &str) -> bool {
    s.len() <= MAX_NAME_LEN && is_identifier(s)
}

fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

fn method_match(at: &str, m: &pb::GrpcMethodMatch) -> Result<GrpcMethodMatch, Rejection> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let (service, method) = (opt(&m.service), opt(&m.method));
    if service.is_none() && method.is_none() {
        return unsupported(format!(
            "{at}.method: set service, method or both (an empty method match is not allowed)"
        ));
    }
    match pb::grpc_method_match::Type::try_from(m.r#type) {
        Ok(pb::grpc_method_match::Type::Unspecified | pb::grpc_method_match::Type::Exact) => {
            if let Some(s) = &service
                && !is_service_name(s)
            {
                return unsupported(format!(
                    "{at}.method.service {:?} is not a gRPC service name (dot-separated identifiers of letters, digits and '_')",
                    shown(s)
                ));
            }
            if let Some(m) = &method
                && !is_method_name(m)
            {
                return unsupported(format!(
                    "{at}.method.method {:?} is not a gRPC method name (letters, digits and '_', not starting with a digit)",
                    shown(m)
                ));
            }
            Ok(GrpcMethodMatch::Exact { service, method })
        }
        Ok(pb::grpc_method_match::Type::RegularExpression) => {
            let service = service
                .map(|s| http::check_regex(&format!("{at}.method.service"), &s))
                .transpose()?;
            let method = method
                .map(|m| http::check_regex(&format!("{at}.method.method"), &m))
                .transpose()?;
            Ok(GrpcMethodMatch::RegularExpression { service, method })
        }
        Err(_) => unsupported(format!("{at}.method: unknown method match type")),
    }
}

fn admit_match(at: &str, m: &pb::GrpcRouteMatch) -> Result<GrpcRouteMatch, Rejection> {
    let method = m
        .method
        .as_ref()
        .map(|mm| method_match(at, mm))
        .transpose()?;
    // The data plane matches the path `/<service>/<method>` with a regular expression built from
    // the tenant's names or expressions: it must fit Envoy's RE2 program limit too.
    if let crate::model::PathMatch::RegularExpression(re) =
        crate::model::grpc_path_match(method.as_ref())
        && super::re2::program_size(&re).is_none_or(|n| n > super::re2::MAX_PROGRAM_SIZE)
    {
        return unsupported(format!(
            "{at}.method: the service and method together are too complex for the data plane's regular expression limit; use shorter names or simpler expressions"
        ));
    }
    if m.headers.len() > super::MAX_HEADERS {
        return unsupported(format!(
            "{at}: at most {} header matches",
            super::MAX_HEADERS
        ));
    }
    let mut headers = Vec::with_capacity(m.headers.len());
    for h in &m.headers {
        let (name, value) = check_header(&h.name, &h.value)?;
        if headers.iter().any(|(n, _)| *n == name) {
            return unsupported(format!(
                "{at}.headers: header {name:?} is matched twice; keep one"
            ));
        }
        let v = if h.regular_expression {
            ValueMatch::RegularExpression(http::check_regex(
                &format!("{at}.headers[{name}]"),
                &value,
            )?)
        } else {
            ValueMatch::Exact(value)
        };
        headers.push((name, v));
    }
    Ok(GrpcRouteMatch { method, headers })
}

/// gRPC needs HTTP/2 to the backend, whatever the Service port's appProtocol says.
fn h2(mut b: Backend) -> Backend {
    b.app_protocol = AppProtocol::H2c;
    b
}

fn admit_rule(
    i: usize,
    r: &pb::GrpcRouteRule,
    policy: &Policy<'_>,
) -> Result<GrpcRouteRule, Rejection> {
    let at = format!("rules[{i}]");
    if r.matches.len() > super::MAX_MATCHES
        || r.backends.len() > super::MAX_BACKENDS
        || r.filters.len() > super::MAX_FILTERS
    {
        return unsupported(format!(
            "{at}: at most {} matches, {} backendRefs and {} filters",
            super::MAX_MATCHES,
            super::MAX_BACKENDS,
            super::MAX_FILTERS
        ));
    }
    let name = super::rule_names::admit_rule_name(i, &r.name)?;
    let mut matches = Vec::with_capacity(r.matches.len().max(1));
    for (mi, m) in r.matches.iter().enumerate() {
        matches.push(admit_match(&format!("{at}.matches[{mi}]"), m)?);
    }
    if matches.is_empty() {
        matches.push(GrpcRouteMatch {
            method: None,
            headers: Vec::new(),
        });
    }
    let mut filters = Vec::with_capacity(r.filters.len());
    for (fi, f) in r.filters.iter().enumerate() {
        let fat = format!("{at}.filters[{fi}]");
        use pb::http_filter::Kind as K;
        match &f.kind {
            Some(
                K::RequestHeaderModifier(_)
                | K::ResponseHeaderModifier(_)
                | K::RequestMirror(_)
                | K::Unsupported(_),
            ) => {}
            _ => {
                return unsupported(format!(
                    "{fat}: a GRPCRoute supports RequestHeaderModifier, ResponseHeaderModifier and RequestMirror filters only; remove it"
                ));
            }
        }
        filters.push(match http::admit_filter(&fat, f, policy)? {
            HttpFilter::RequestMirror(mut m) => {
                m.backend = h2(m.backend);
                HttpFilter::RequestMirror(m)
            }
            other => other,
        });
    }
    for kind in ["RequestHeaderModifier", "ResponseHeaderModifier"] {
        let n = filters
            .iter()
            .filter(|f| match f {
                HttpFilter::RequestHeaderModifier(_) => kind == "RequestHeaderModifier",
                HttpFilter::ResponseHeaderModifier(_) => kind == "ResponseHeaderModifier",
                _ => false,
            })
            .count();
        if n > 1 {
            return unsupported(format!(
                "{at}: filter {kind} is used {n} times; merge them into one"
            ));
        }
    }
    let mut backends = Vec::with_capacity(r.backends.len());
    for b in &r.backends {
        backends.push(h2(super::admit_backend(b, policy)?));
    }
    Ok(GrpcRouteRule {
        name,
        matches,
        filters,
        backends,
    })
}

/// Admits one GRPCRoute.
pub fn admit_grpc_route(
    meta: Meta,
    g: &pb::GrpcRoute,
    policy: &Policy<'_>,
) -> Result<GrpcRoute, Rejection> {
    if g.parent_refs.len() > super::MAX_PARENT_REFS
        || g.hostnames.len() > super::MAX_HOSTNAMES
        || g.rules.len() > super::MAX_RULES
    {
        return unsupported(format!(
            "at most {} parentRefs, {} hostnames and {} rules",
            super::MAX_PARENT_REFS,
            super::MAX_HOSTNAMES,
            super::MAX_RULES
        ));
    }
    let parent_refs = super::admit_parent_refs(&g.parent_refs)?;
    let hostnames = super::admit_route_hostnames(&g.hostnames, policy)?;
    let mut rules = Vec::with_capacity(g.rules.len());
    for (i, r) in g.rules.iter().enumerate() {
        rules.push(admit_rule(i, r, policy)?);
    }
    super::rule_names::check_unique(rules.iter().map(|r| r.name.as_deref()))?;
    Ok(GrpcRoute {
        meta,
        parent_refs,
        hostnames,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::policy::{Cluster, Limits, Tenant};

    fn admit(rule: pb::GrpcRouteRule) -> Result<GrpcRoute, Rejection> {
        let cluster = Cluster {
            name: "east".into(),
            endpoint_cidrs: vec!["10.1.0.0/16".parse().unwrap()],
            allow_special_addresses: false,
        };
        let tenant = Tenant {
            name: "a".into(),
            hostnames: vec!["*.a.example".into()],
            clusters: [("east".to_string(), cluster.clone())].into(),
            egress: vec![],
        };
        let (limits, owners, reserved) = (
            Limits::default(),
            BTreeMap::new(),
            crate::Reserved::default(),
        );
        let policy = Policy {
            tenant: &tenant,
            cluster: &cluster,
            limits: &limits,
            owners: &owners,
            reserved: &reserved,
        };
        let meta = Meta {
            namespace: "default".into(),
            name: "g".into(),
            generation: 1,
            creation_timestamp: "2026-01-01T00:00:00Z".into(),
        };
        let g = pb::GrpcRoute {
            parent_refs: vec![],
            hostnames: vec!["grpc.a.example".into()],
            rules: vec![rule],
        };
        admit_grpc_route(meta, &g, &policy)
    }

    fn method(t: pb::grpc_method_match::Type, service: &str, method: &str) -> pb::GrpcRouteRule {
        pb::GrpcRouteRule {
            matches: vec![pb::GrpcRouteMatch {
                method: Some(pb::GrpcMethodMatch {
                    r#type: t as i32,
                    service: service.into(),
                    method: method.into(),
                }),
                headers: vec![],
            }],
            ..Default::default()
        }
    }

    fn backend(app_protocol: &str) -> pb::Backend {
        pb::Backend {
            namespace: "default".into(),
            name: "echo".into(),
            port: 50051,
            weight: 1,
            app_protocol: app_protocol.into(),
            endpoints: vec![pb::Endpoint {
                address: "10.1.0.5".into(),
                port: 30001,
                ready: true,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn names_table() {
        use pb::grpc_method_match::Type::{Exact, RegularExpression};
        // (type, service, method, accepted)
        let table: &[(pb::grpc_method_match::Type, &str, &str, bool)] = &[
            (Exact, "echo.v1.Echo", "Say", true),
            (Exact, ".echo.v1.Echo", "", true),
            (Exact, "", "Say_2", true),
            (Exact, "_x.Y", "_", true),
            (Exact, "", "", false),
            (Exact, "echo/v1", "Say", false),
            (Exact, "echo..Echo", "Say", false),
            (Exact, "echo.v1.Echo.", "Say", false),
            (Exact, "1echo", "Say", false),
            (Exact, "echo", "Say/Other", false),
            (Exact, "echo", "Say.Other", false),
            (Exact, "echo", "2Say", false),
            (Exact, "echo\n", "Say", false),
            (Exact, "ec ho", "Say", false),
            (Exact, "échо", "Say", false),
            (RegularExpression, "echo\\.v[0-9]+\\.Echo", "Say.*", true),
            (RegularExpression, "", "S(ay|ing)", true),
            (RegularExpression, "(unclosed", "", false),
            (RegularExpression, "", "a{1000}{1000}", false),
            (RegularExpression, "[a&&b]", "", false),
        ];
        for (t, s, m, ok) in table {
            let got = admit(method(*t, s, m));
            assert_eq!(got.is_ok(), *ok, "{t:?} {s:?} {m:?}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.reason, "UnsupportedValue");
            }
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(admit(method(Exact, &long, "")).is_err());
        assert!(admit(method(Exact, "", &long)).is_err());
    }

    #[test]
    fn no_matches_means_everything_and_backends_speak_h2c() {
        let r = admit(pb::GrpcRouteRule {
            backends: vec![backend(""), backend("kubernetes.io/ws")],
            filters: vec![pb::HttpFilter {
                kind: Some(pb::http_filter::Kind::RequestMirror(pb::RequestMirror {
                    backend: Some(backend("")),
                    numerator: 0,
                    denominator: 0,
                })),
            }],
            ..Default::default()
        })
        .unwrap();
        let rule = &r.rules[0];
        assert_eq!(
            rule.matches,
            vec![GrpcRouteMatch {
                method: None,
                headers: vec![]
            }]
        );
        assert!(
            rule.backends
                .iter()
                .all(|b| b.app_protocol == AppProtocol::H2c)
        );
        let HttpFilter::RequestMirror(m) = &rule.filters[0] else {
            panic!("mirror expected")
        };
        assert_eq!(m.backend.app_protocol, AppProtocol::H2c);
    }

    #[test]
    fn only_grpc_filters_and_hostile_headers_are_refused() {
        let redirect = pb::GrpcRouteRule {
            filters: vec![pb::HttpFilter {
                kind: Some(pb::http_filter::Kind::RequestRedirect(
                    pb::RequestRedirect::default(),
                )),
            }],
            ..Default::default()
        };
        let e = admit(redirect).unwrap_err();
        assert!(e.message.contains("RequestHeaderModifier"), "{e:?}");
        let hm = |name: &str, value: &str| pb::HttpFilter {
            kind: Some(pb::http_filter::Kind::RequestHeaderModifier(
                pb::HeaderModifier {
                    set: vec![pb::Header {
                        name: name.into(),
                        value: value.into(),
                    }],
                    ..Default::default()
                },
            )),
        };
        assert!(
            admit(pb::GrpcRouteRule {
                filters: vec![hm("x-a", "1")],
                ..Default::default()
            })
            .is_ok()
        );
        assert!(
            admit(pb::GrpcRouteRule {
                filters: vec![hm("x-a", "1"), hm("x-b", "2")],
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            admit(pb::GrpcRouteRule {
                filters: vec![hm("x-a", "1\r\nx-evil: 1")],
                ..Default::default()
            })
            .is_err()
        );
        let header = |name: &str, value: &str, re: bool| pb::GrpcRouteRule {
            matches: vec![pb::GrpcRouteMatch {
                method: None,
                headers: vec![pb::HeaderMatch {
                    name: name.into(),
                    value: value.into(),
                    regular_expression: re,
                }],
            }],
            ..Default::default()
        };
        assert!(admit(header("x-tier", "gold", false)).is_ok());
        assert!(admit(header("x-tier", "go+ld", true)).is_ok());
        assert!(admit(header(":path", "/x", false)).is_err());
        assert!(admit(header("x tier", "gold", false)).is_err());
        assert!(admit(header("x-tier", "(", true)).is_err());
    }
}
