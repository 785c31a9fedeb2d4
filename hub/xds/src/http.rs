//! The HTTPRoute features of a route in Envoy form: regular expression, query parameter and
//! method matches, redirects, URL rewrites, mirrors, timeouts, CORS, per-backend headers and
//! upstream HTTP/2 (h2c).
//!
//! Part of step 8 (publish), pure; `super::resources` calls these while it builds a
//! RouteConfiguration or a Cluster. Every value placed here was validated by admission; regexes
//! are sent as typed `safe_regex` (RE2) matchers, never spliced into text.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::{
    self as route_v3, HeaderMatcher, QueryParameterMatcher, RedirectAction, header_matcher,
    query_parameter_matcher, redirect_action, route_action,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions as UpstreamHttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
use envoy_types::util::pack_any;

use crate::model::{Cors, ValueMatch};
use crate::snapshot::{Forward, PathRewrite, Redirect, Rewrite};

/// Name of Envoy's CORS HTTP filter, in the HTTP connection manager and in a route's
/// `typed_per_filter_config`.
pub const CORS_FILTER: &str = "envoy.filters.http.cors";
/// Key of a cluster's `typed_extension_protocol_options` for upstream HTTP options.
pub const UPSTREAM_HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

pub fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.to_string(),
        ..Default::default()
    }
}

pub fn string_match(v: &ValueMatch) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(match v {
            ValueMatch::Exact(s) => string_matcher::MatchPattern::Exact(s.clone()),
            ValueMatch::RegularExpression(r) => string_matcher::MatchPattern::SafeRegex(regex(r)),
        }),
        ..Default::default()
    }
}

pub fn header_match(name: &str, v: &ValueMatch) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            string_match(v),
        )),
        ..Default::default()
    }
}

pub fn query_match(name: &str, v: &ValueMatch) -> QueryParameterMatcher {
    QueryParameterMatcher {
        name: name.to_string(),
        query_parameter_match_specifier: Some(
            query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(string_match(v)),
        ),
    }
}

fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn sub(pattern: String, substitution: String) -> RegexMatchAndSubstitute {
    RegexMatchAndSubstitute {
        pattern: Some(regex(&pattern)),
        substitution,
    }
}

/// A path rewrite in Envoy form: `(prefix_rewrite, regex_rewrite)`, at most one set.
///
/// Gateway API ReplacePrefixMatch replaces whole path elements: with prefix `/foo`,
/// replacement `/` turns `/foo/bar` into `/bar` (not `//bar`) and `/foo` into `/`; a prefix
/// `/` with replacement `/x` turns `/bar` into `/x/bar`. Envoy's `prefix_rewrite` does plain
/// string replacement, so those two cases use an anchored regex instead.
pub fn path_rewrite(p: &PathRewrite) -> (String, Option<RegexMatchAndSubstitute>) {
    match p {
        PathRewrite::Full(path) => (String::new(), Some(sub("^/.*$".into(), path.clone()))),
        PathRewrite::Prefix {
            matched,
            replacement,
        } => {
            let repl = replacement.trim_end_matches('/');
            if matched == "/" {
                if repl.is_empty() {
                    (String::new(), None)
                } else {
                    (String::new(), Some(sub("^/".into(), format!("{repl}/"))))
                }
            } else if repl.is_empty() {
                (
                    String::new(),
                    Some(sub(prefix_strip_regex(matched), "/".into())),
                )
            } else {
                (repl.to_string(), None)
            }
        }
    }
}

pub use crate::model::regex::{origin_regex, prefix_strip_regex};

/// A RequestRedirect.
pub fn redirect(r: &Redirect) -> RedirectAction {
    use redirect_action::{PathRewriteSpecifier as P, RedirectResponseCode as C};
    let response_code = match r.status_code {
        301 => C::MovedPermanently,
        303 => C::SeeOther,
        307 => C::TemporaryRedirect,
        308 => C::PermanentRedirect,
        _ => C::Found,
    };
    let path_rewrite_specifier = r.path.as_ref().and_then(|p| match p {
        PathRewrite::Full(path) => Some(P::PathRedirect(path.clone())),
        prefix => match path_rewrite(prefix) {
            (_, Some(re)) => Some(P::RegexRewrite(re)),
            (pre, None) if !pre.is_empty() => Some(P::PrefixRewrite(pre)),
            _ => None,
        },
    });
    RedirectAction {
        scheme_rewrite_specifier: r
            .scheme
            .clone()
            .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
        host_redirect: r.hostname.clone().unwrap_or_default(),
        port_redirect: r.port.map(u32::from).unwrap_or(0),
        path_rewrite_specifier,
        response_code: response_code as i32,
        ..Default::default()
    }
}

/// Applies rewrite, mirrors and timeouts of `fw` to an Envoy RouteAction.
pub fn forward_options(fw: &Forward, ra: &mut route_v3::RouteAction) {
    if let Some(Rewrite { hostname, path }) = fw.rewrite.as_deref() {
        if let Some(h) = hostname {
            ra.host_rewrite_specifier = Some(
                route_action::HostRewriteSpecifier::HostRewriteLiteral(h.clone()),
            );
        }
        if let Some(p) = path {
            let (prefix, re) = path_rewrite(p);
            ra.prefix_rewrite = prefix;
            ra.regex_rewrite = re;
        }
    }
    ra.request_mirror_policies = fw
        .mirrors
        .iter()
        .map(|m| route_action::RequestMirrorPolicy {
            cluster: m.cluster.clone(),
            runtime_fraction: (m.numerator < m.denominator).then(|| RuntimeFractionalPercent {
                default_value: Some(fraction(m.numerator, m.denominator)),
                ..Default::default()
            }),
            // The mirrored request keeps the client's Host (no `-shadow` suffix).
            disable_shadow_host_suffix_append: true,
            ..Default::default()
        })
        .collect();
    if let Some(t) = fw.timeout {
        ra.timeout = Some(duration(t));
    }
    if let Some(b) = fw.backend_timeout {
        // A per-try timeout without retries: the backendRequest timeout of the one try.
        ra.retry_policy = Some(route_v3::RetryPolicy {
            num_retries: Some(UInt32Value { value: 0 }),
            per_try_timeout: Some(duration(b)),
            ..Default::default()
        });
    }
}

/// `numerator / denominator` as an Envoy fraction (per million).
pub fn fraction(numerator: u32, denominator: u32) -> FractionalPercent {
    let per_million = u64::from(numerator) * 1_000_000 / u64::from(denominator.max(1));
    FractionalPercent {
        numerator: u32::try_from(per_million).unwrap_or(1_000_000),
        denominator: fractional_percent::DenominatorType::Million as i32,
    }
}

/// A CORS origin as Envoy matches it: `*` any, `https://*.a.example` by anchored regex,
/// anything else exactly.
fn origin_match(o: &str) -> StringMatcher {
    if let Some(re) = origin_regex(o) {
        return StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::SafeRegex(regex(&re))),
            ..Default::default()
        };
    }
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(o.to_string())),
        ignore_case: true,
    }
}

/// The route's CORS policy for the CORS filter's `typed_per_filter_config`.
pub fn cors_policy(c: &Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: c.allow_origins.iter().map(|o| origin_match(o)).collect(),
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c.max_age.map(|m| m.to_string()).unwrap_or_default(),
        allow_credentials: c.allow_credentials.then_some(BoolValue { value: true }),
        // A preflight from an origin that is not allowed is answered by Envoy (no CORS
        // headers), never forwarded to the backend (upstream `HTTPRouteCORS`).
        forward_not_matching_preflights: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

/// `typed_per_filter_config` of a route with a CORS policy.
pub fn per_filter_config(cors: Option<&Cors>) -> HashMap<String, Any> {
    cors.map(|c| (CORS_FILTER.to_string(), pack_any(cors_policy(c))))
        .into_iter()
        .collect()
}

/// Upstream options of an h2c cluster: HTTP/2 with prior knowledge.
pub fn h2c_protocol_options() -> HashMap<String, Any> {
    let opts = UpstreamHttpProtocolOptions {
        upstream_protocol_options: Some(
            http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(
                        http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                            super::hardening::http2_options(),
                        ),
                    ),
                },
            ),
        ),
        ..Default::default()
    };
    [(UPSTREAM_HTTP_OPTIONS.to_string(), pack_any(opts))].into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(matched: &str, replacement: &str) -> PathRewrite {
        PathRewrite::Prefix {
            matched: matched.into(),
            replacement: replacement.into(),
        }
    }

    /// Applies an Envoy path rewrite the way Envoy does, to check the Gateway API results.
    fn apply(matched: &str, rw: &(String, Option<RegexMatchAndSubstitute>), path: &str) -> String {
        match rw {
            (p, None) if !p.is_empty() => format!("{p}{}", &path[matched.len()..]),
            (_, Some(re)) => {
                let r = regex::Regex::new(&re.pattern.as_ref().unwrap().regex).unwrap();
                r.replace(path, re.substitution.replace("\\", "$").as_str())
                    .into_owned()
            }
            _ => path.to_string(),
        }
    }

    #[test]
    fn replace_prefix_match_follows_gateway_api_examples() {
        // (matched prefix, replacement, request path, want) from the Gateway API
        // HTTPPathModifier documentation and the httproute-rewrite-path conformance test.
        let cases = [
            ("/foo", "/xyz", "/foo/bar", "/xyz/bar"),
            ("/foo", "/xyz", "/foo", "/xyz"),
            ("/foo", "/xyz/", "/foo/bar", "/xyz/bar"),
            ("/foo", "/", "/foo/bar", "/bar"),
            ("/foo", "/", "/foo", "/"),
            ("/prefix/one", "/one", "/prefix/one/two", "/one/two"),
            ("/strip-prefix", "/", "/strip-prefix/three", "/three"),
            ("/", "/xyz", "/bar", "/xyz/bar"),
            ("/", "/", "/bar", "/bar"),
            ("/a.b", "/", "/a.b/c", "/c"),
        ];
        for (m, r, path, want) in cases {
            let rw = path_rewrite(&pre(m, r));
            assert_eq!(apply(m, &rw, path), want, "{m} -> {r} on {path}: {rw:?}");
        }
        let full = path_rewrite(&PathRewrite::Full("/one".into()));
        assert_eq!(apply("/", &full, "/full/path/original"), "/one");
    }

    #[test]
    fn redirects_table() {
        use redirect_action::{PathRewriteSpecifier as P, RedirectResponseCode as C};
        let base = Redirect {
            scheme: None,
            hostname: None,
            path: None,
            port: None,
            status_code: 302,
        };
        let r = redirect(&Redirect {
            scheme: Some("https".into()),
            hostname: Some("b.example".into()),
            port: Some(8443),
            status_code: 301,
            path: Some(PathRewrite::Full("/new".into())),
        });
        assert_eq!(
            r.scheme_rewrite_specifier,
            Some(redirect_action::SchemeRewriteSpecifier::SchemeRedirect(
                "https".into()
            ))
        );
        assert_eq!(
            (r.host_redirect.as_str(), r.port_redirect),
            ("b.example", 8443)
        );
        assert_eq!(r.response_code, C::MovedPermanently as i32);
        assert_eq!(
            r.path_rewrite_specifier,
            Some(P::PathRedirect("/new".into()))
        );
        for (code, want) in [
            (302, C::Found),
            (303, C::SeeOther),
            (307, C::TemporaryRedirect),
            (308, C::PermanentRedirect),
        ] {
            let r = redirect(&Redirect {
                status_code: code,
                ..base.clone()
            });
            assert_eq!(r.response_code, want as i32, "{code}");
            assert_eq!((r.port_redirect, r.scheme_rewrite_specifier), (0, None));
        }
        let r = redirect(&Redirect {
            path: Some(pre("/foo", "/bar")),
            ..base.clone()
        });
        assert_eq!(
            r.path_rewrite_specifier,
            Some(P::PrefixRewrite("/bar".into()))
        );
        let r = redirect(&Redirect {
            path: Some(pre("/foo", "/")),
            ..base
        });
        assert!(matches!(r.path_rewrite_specifier, Some(P::RegexRewrite(_))));
    }

    #[test]
    fn fractions_are_per_million() {
        for (n, d, want) in [
            (1, 2, 500_000),
            (50, 100, 500_000),
            (1, 3, 333_333),
            (0, 100, 0),
        ] {
            assert_eq!(fraction(n, d).numerator, want, "{n}/{d}");
        }
    }

    #[test]
    fn cors_origins_wildcards_become_anchored_label_regexes() {
        let m = origin_match("https://*.a.example");
        let Some(string_matcher::MatchPattern::SafeRegex(re)) = m.match_pattern else {
            panic!("regex expected")
        };
        let r = regex::Regex::new(&re.regex).unwrap();
        assert!(r.is_match("https://x.a.example"));
        // Any number of labels (upstream `HTTPRouteCORS`: `https://xpto.www.bar.com`).
        assert!(r.is_match("https://x.y.a.example"));
        assert!(!r.is_match("https://xa.example"));
        assert!(!r.is_match("https://.a.example"));
        assert!(!r.is_match("https://evil.example/x.a.example"));
        assert!(!r.is_match("https://x.a.example.evil.example"));
        assert!(!r.is_match("http://x.a.example"));
        assert_eq!(
            cors_policy(&Cors {
                allow_origins: vec!["https://a.example".into()],
                ..Default::default()
            })
            .forward_not_matching_preflights,
            Some(BoolValue { value: false }),
            "a preflight of a foreign origin stops at Envoy"
        );
        assert_eq!(
            origin_match("https://a.example").match_pattern,
            Some(string_matcher::MatchPattern::Exact(
                "https://a.example".into()
            ))
        );
    }
}
