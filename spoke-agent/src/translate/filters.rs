//! Translate (pure): HTTPRoute filters -> proto filters. RequestMirror backends are resolved
//! like any backendRef (`crate::resolve`), so the hub gets their endpoints too.
//!
//! Where it sits: called by `super::translate_rule`. A filter fleetgate does not implement
//! (ExtensionRef), or one whose configuration is missing, is sent as `UnsupportedFilter` with a
//! message for the tenant: the hub keeps the rule, answers its requests with 500 and reports the
//! route `Accepted=False/UnsupportedValue`, rather than serve the rule without the filter.

use fleetgate_proto::spoke::v1::{
    self as pb, HeaderModifier, HttpFilter, PathModifier, http_filter, path_modifier,
};
use gateway_api::httproutes::{
    HttpRouteRulesBackendRefs, HttpRouteRulesBackendRefsFiltersType, HttpRouteRulesFilters,
    HttpRouteRulesFiltersRequestRedirectPathType, HttpRouteRulesFiltersRequestRedirectScheme,
    HttpRouteRulesFiltersType, HttpRouteRulesFiltersUrlRewritePathType,
};
use tracing::warn;

use super::wire_backend;
use crate::resolve::{Index, resolve_backend};

fn header(name: &str, value: &str) -> pb::Header {
    pb::Header {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// A header modifier from the (set, add, remove) lists of any of the Gateway API modifier types.
pub fn header_modifier<'a>(
    set: impl Iterator<Item = (&'a str, &'a str)>,
    add: impl Iterator<Item = (&'a str, &'a str)>,
    remove: Option<&Vec<String>>,
) -> HeaderModifier {
    HeaderModifier {
        set: set.map(|(n, v)| header(n, v)).collect(),
        add: add.map(|(n, v)| header(n, v)).collect(),
        remove: remove.cloned().unwrap_or_default(),
    }
}

fn path_modifier(
    full: bool,
    replace_full_path: Option<&String>,
    replace_prefix_match: Option<&String>,
) -> PathModifier {
    let (t, v) = if full {
        (path_modifier::Type::ReplaceFullPath, replace_full_path)
    } else {
        (
            path_modifier::Type::ReplacePrefixMatch,
            replace_prefix_match,
        )
    };
    PathModifier {
        r#type: t as i32,
        value: v.cloned().unwrap_or_else(|| "/".to_string()),
    }
}

/// One rule filter; one fleetgate cannot express becomes an `UnsupportedFilter` saying why.
pub fn translate_filter(
    route_ns: &str,
    f: &HttpRouteRulesFilters,
    index: &Index<'_>,
) -> HttpFilter {
    translate_supported(route_ns, f, index)
        .unwrap_or_else(|(kind, why)| unsupported_filter(kind, why))
}

/// The filter fleetgate cannot apply, with the message the route's status carries.
pub(crate) fn unsupported_filter(kind: &str, why: String) -> HttpFilter {
    HttpFilter {
        kind: Some(http_filter::Kind::Unsupported(pb::UnsupportedFilter {
            r#type: kind.to_string(),
            message: why,
        })),
    }
}

/// What an ExtensionRef filter's status message says: which reference, and what to do.
pub(crate) fn extension_ref_message(group: &str, kind: &str, name: &str) -> String {
    format!(
        "filter ExtensionRef {group}/{kind} {name:?} is not supported by fleetgate (it has no filter extensions): requests matching this rule are answered with 500; remove the filter or use the Gateway API's own filters"
    )
}

fn translate_supported(
    route_ns: &str,
    f: &HttpRouteRulesFilters,
    index: &Index<'_>,
) -> Result<HttpFilter, (&'static str, String)> {
    use HttpRouteRulesFiltersType as T;
    let type_name = match f.r#type {
        T::RequestHeaderModifier => "RequestHeaderModifier",
        T::ResponseHeaderModifier => "ResponseHeaderModifier",
        T::RequestRedirect => "RequestRedirect",
        T::UrlRewrite => "URLRewrite",
        T::RequestMirror => "RequestMirror",
        T::Cors => "CORS",
        T::ExtensionRef => "ExtensionRef",
    };
    let missing = || {
        (
            type_name,
            format!(
                "filter {type_name} has no configuration: requests matching this rule are answered with 500; add its settings or remove the filter"
            ),
        )
    };
    let kind = match f.r#type {
        T::RequestHeaderModifier => {
            let m = f.request_header_modifier.as_ref().ok_or_else(missing)?;
            http_filter::Kind::RequestHeaderModifier(header_modifier(
                m.set
                    .iter()
                    .flatten()
                    .map(|h| (h.name.as_str(), h.value.as_str())),
                m.add
                    .iter()
                    .flatten()
                    .map(|h| (h.name.as_str(), h.value.as_str())),
                m.remove.as_ref(),
            ))
        }
        T::ResponseHeaderModifier => {
            let m = f.response_header_modifier.as_ref().ok_or_else(missing)?;
            http_filter::Kind::ResponseHeaderModifier(header_modifier(
                m.set
                    .iter()
                    .flatten()
                    .map(|h| (h.name.as_str(), h.value.as_str())),
                m.add
                    .iter()
                    .flatten()
                    .map(|h| (h.name.as_str(), h.value.as_str())),
                m.remove.as_ref(),
            ))
        }
        T::RequestRedirect => {
            let r = f.request_redirect.as_ref().ok_or_else(missing)?;
            http_filter::Kind::RequestRedirect(pb::RequestRedirect {
                scheme: match r.scheme {
                    None => String::new(),
                    Some(HttpRouteRulesFiltersRequestRedirectScheme::Http) => "http".into(),
                    Some(HttpRouteRulesFiltersRequestRedirectScheme::Https) => "https".into(),
                },
                hostname: r.hostname.clone().unwrap_or_default(),
                path: r.path.as_ref().map(|p| {
                    path_modifier(
                        p.r#type == HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath,
                        p.replace_full_path.as_ref(),
                        p.replace_prefix_match.as_ref(),
                    )
                }),
                port: r.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                status_code: r
                    .status_code
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(0),
            })
        }
        T::UrlRewrite => {
            let r = f.url_rewrite.as_ref().ok_or_else(missing)?;
            http_filter::Kind::UrlRewrite(pb::UrlRewrite {
                hostname: r.hostname.clone().unwrap_or_default(),
                path: r.path.as_ref().map(|p| {
                    path_modifier(
                        p.r#type == HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath,
                        p.replace_full_path.as_ref(),
                        p.replace_prefix_match.as_ref(),
                    )
                }),
            })
        }
        T::RequestMirror => {
            let m = f.request_mirror.as_ref().ok_or_else(missing)?;
            let b = &m.backend_ref;
            let as_ref = HttpRouteRulesBackendRefs {
                group: b.group.clone(),
                kind: b.kind.clone(),
                name: b.name.clone(),
                namespace: b.namespace.clone(),
                port: b.port,
                weight: Some(1),
                filters: None,
            };
            let (numerator, denominator) = match (&m.fraction, m.percent) {
                (Some(fr), _) => (fr.numerator, fr.denominator.unwrap_or(100)),
                (None, Some(p)) => (p, 100),
                (None, None) => (0, 0),
            };
            http_filter::Kind::RequestMirror(pb::RequestMirror {
                backend: Some(wire_backend(resolve_backend(route_ns, &as_ref, index))),
                numerator: u32::try_from(numerator).unwrap_or(0),
                denominator: u32::try_from(denominator).unwrap_or(0),
            })
        }
        T::Cors => {
            let c = f.cors.as_ref().ok_or_else(missing)?;
            http_filter::Kind::Cors(pb::Cors {
                allow_origins: c.allow_origins.clone().unwrap_or_default(),
                allow_credentials: c.allow_credentials.unwrap_or(false),
                allow_methods: c.allow_methods.clone().unwrap_or_default(),
                allow_headers: c.allow_headers.clone().unwrap_or_default(),
                expose_headers: c.expose_headers.clone().unwrap_or_default(),
                max_age: c.max_age.and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
            })
        }
        T::ExtensionRef => {
            let r = f.extension_ref.as_ref();
            return Err((
                type_name,
                extension_ref_message(
                    r.map_or("", |r| r.group.as_str()),
                    r.map_or("", |r| r.kind.as_str()),
                    r.map_or("", |r| r.name.as_str()),
                ),
            ));
        }
    };
    Ok(HttpFilter { kind: Some(kind) })
}

/// `backendRefs[].filters`: RequestHeaderModifier and ResponseHeaderModifier (the others are
/// not sent, with a log line).
pub(crate) fn backend_filters(namespace: &str, r: &HttpRouteRulesBackendRefs) -> Vec<HttpFilter> {
    let mut out = Vec::new();
    for f in r.filters.iter().flatten() {
        let kind = match (
            &f.r#type,
            &f.request_header_modifier,
            &f.response_header_modifier,
        ) {
            (HttpRouteRulesBackendRefsFiltersType::RequestHeaderModifier, Some(m), _) => {
                http_filter::Kind::RequestHeaderModifier(header_modifier(
                    m.set
                        .iter()
                        .flatten()
                        .map(|h| (h.name.as_str(), h.value.as_str())),
                    m.add
                        .iter()
                        .flatten()
                        .map(|h| (h.name.as_str(), h.value.as_str())),
                    m.remove.as_ref(),
                ))
            }
            (HttpRouteRulesBackendRefsFiltersType::ResponseHeaderModifier, _, Some(m)) => {
                http_filter::Kind::ResponseHeaderModifier(header_modifier(
                    m.set
                        .iter()
                        .flatten()
                        .map(|h| (h.name.as_str(), h.value.as_str())),
                    m.add
                        .iter()
                        .flatten()
                        .map(|h| (h.name.as_str(), h.value.as_str())),
                    m.remove.as_ref(),
                ))
            }
            (other, _, _) => {
                warn!(backend = %format!("{namespace}/{}", r.name), filter = ?other, "backendRef filter not supported, not sent");
                continue;
            }
        };
        out.push(HttpFilter { kind: Some(kind) });
    }
    out
}

#[cfg(test)]
mod tests {
    use gateway_api::httproutes::HttpRouteRulesBackendRefsFiltersType;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::super::http_backend;
    use super::*;
    use crate::config::EndpointMode;
    use crate::state::ClusterState;
    use crate::test_support::{backend_ref, service};

    fn state() -> ClusterState {
        ClusterState {
            services: vec![
                service(
                    "app",
                    "web",
                    "NodePort",
                    &[(None, 80, Some(30080), IntOrString::Int(8080))],
                ),
                service(
                    "app",
                    "multi",
                    "NodePort",
                    &[
                        (Some("http"), 80, Some(30001), IntOrString::Int(8080)),
                        (Some("admin"), 81, Some(30002), IntOrString::Int(9090)),
                    ],
                ),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn app_protocol_and_backend_header_filters_are_sent() {
        use gateway_api::httproutes::{
            HttpRouteRulesBackendRefsFilters,
            HttpRouteRulesBackendRefsFiltersRequestHeaderModifier,
            HttpRouteRulesBackendRefsFiltersRequestHeaderModifierSet,
        };
        let mut st = state();
        if let Some(spec) = st.services[0].spec.as_mut() {
            spec.ports.as_mut().unwrap()[0].app_protocol = Some("kubernetes.io/h2c".into());
        }
        let index = Index::new(&st, EndpointMode::Node);
        let mut r = backend_ref(None, None, None, "web", Some(80));
        r.filters = Some(vec![
            HttpRouteRulesBackendRefsFilters {
                r#type: HttpRouteRulesBackendRefsFiltersType::RequestHeaderModifier,
                request_header_modifier: Some(
                    HttpRouteRulesBackendRefsFiltersRequestHeaderModifier {
                        set: Some(vec![
                            HttpRouteRulesBackendRefsFiltersRequestHeaderModifierSet {
                                name: "x-backend".into(),
                                value: "web".into(),
                            },
                        ]),
                        ..Default::default()
                    },
                ),
                ..Default::default()
            },
            // Not supported on a backendRef: not sent.
            HttpRouteRulesBackendRefsFilters {
                r#type: HttpRouteRulesBackendRefsFiltersType::ExtensionRef,
                ..Default::default()
            },
        ]);
        let b = http_backend("app", &r, &index);
        assert_eq!(b.app_protocol, "kubernetes.io/h2c");
        assert_eq!(b.filters.len(), 1);
        let Some(http_filter::Kind::RequestHeaderModifier(m)) = &b.filters[0].kind else {
            panic!("{:?}", b.filters)
        };
        assert_eq!(m.set[0].name, "x-backend");
        let plain = http_backend(
            "app",
            &backend_ref(None, None, None, "multi", Some(80)),
            &index,
        );
        assert_eq!(plain.app_protocol, "");
    }
}
