//! Admission of the HTTPRoute features beyond the walking skeleton: regular expressions, query,
//! method and header matches, filters (redirect, rewrite, response headers, mirror, CORS) and
//! timeouts. Everything here is tenant input: each check says what is wrong and what to change.
//!
//! Where it sits: called by `super::admit_rule` (step 5, admit), pure.

use std::time::Duration;

use fleetgate_proto::spoke::v1 as pb;

use super::{Policy, Rejection, check_header, check_path, reject};
use crate::model::{
    Cors, HeaderModifier, HttpFilter, HttpRouteMatch, Mirror, PathMatch, PathModifier, Redirect,
    Rewrite, ThinVec, Timeouts, UnsupportedFilter, ValueMatch,
};

/// Longest regular expression accepted (path, header or query parameter). Envoy compiles them
/// with RE2 and refuses programs above its size limit, so they are kept short.
pub const MAX_REGEX_LEN: usize = 256;
/// Most query parameter matches per match (Gateway API CRD limit).
const MAX_QUERY_PARAMS: usize = 16;
/// Most CORS origins, methods or headers (Gateway API CRD limits are 64).
const MAX_CORS_ENTRIES: usize = 64;
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn unsupported<T>(message: String) -> Result<T, Rejection> {
    reject("UnsupportedValue", message)
}

/// A regular expression that both Rust's `regex` and Envoy's RE2 accept with the same meaning,
/// bounded in length and compiled size.
pub fn check_regex(what: &str, re: &str) -> Result<String, Rejection> {
    let shown: String = re.chars().take(64).collect();
    if re.is_empty() || re.len() > MAX_REGEX_LEN {
        return unsupported(format!(
            "{what}: regular expression {shown:?} must be 1 to {MAX_REGEX_LEN} bytes"
        ));
    }
    if re.bytes().any(|b| b.is_ascii_control()) {
        return unsupported(format!(
            "{what}: regular expression {shown:?} has control characters; remove them"
        ));
    }
    // Class set operations are Rust-only syntax: RE2 reads them differently.
    if re.contains("&&") || re.contains("~~") || re.contains("--") {
        return unsupported(format!(
            "{what}: regular expression {shown:?} uses '&&', '~~' or '--', which RE2 reads differently; escape them"
        ));
    }
    if let Err(e) = regex::RegexBuilder::new(re)
        .size_limit(64 * 1024)
        .nest_limit(16)
        .build()
    {
        return unsupported(format!(
            "{what}: regular expression {shown:?} does not compile as RE2 syntax ({}); fix it",
            e.to_string().lines().last().unwrap_or("invalid")
        ));
    }
    // A regex the data plane would refuse would block the whole port's configuration.
    match super::re2::program_size(re) {
        Some(n) if n <= super::re2::MAX_PROGRAM_SIZE => Ok(re.to_string()),
        n => unsupported(format!(
            "{what}: regular expression {shown:?} is too complex for the data plane (about {} RE2 instructions, at most {} allowed); shorten it or use fewer bounded repetitions",
            n.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            super::re2::MAX_PROGRAM_SIZE
        )),
    }
}

/// A Gateway API duration (GEP-2257): 1 to 4 parts of 1-5 digits and a unit (`h`, `m`, `s`,
/// `ms`), each unit at most once, e.g. `10s`, `1m30s`, `500ms`, `0s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{:?} is not a Gateway API duration such as 10s, 1m30s or 500ms",
            s.chars().take(32).collect::<String>()
        )
    };
    if s.is_empty() || s.len() > 32 {
        return Err(bad());
    }
    let b = s.as_bytes();
    let (mut i, mut parts, mut total) = (0, 0, Duration::ZERO);
    let mut seen: Vec<&str> = Vec::new();
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 5 {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let unit = if s[i..].starts_with("ms") {
            "ms"
        } else if s[i..].starts_with('h') {
            "h"
        } else if s[i..].starts_with('m') {
            "m"
        } else if s[i..].starts_with('s') {
            "s"
        } else {
            return Err(bad());
        };
        i += unit.len();
        if seen.contains(&unit) {
            return Err(bad());
        }
        seen.push(unit);
        total += match unit {
            "h" => Duration::from_secs(n * 3600),
            "m" => Duration::from_secs(n * 60),
            "s" => Duration::from_secs(n),
            _ => Duration::from_millis(n),
        };
        parts += 1;
        if parts > 4 {
            return Err(bad());
        }
    }
    Ok(total)
}

/// `rules[].timeouts`: both durations valid, and backendRequest not longer than request.
pub fn admit_timeouts(at: &str, t: Option<&pb::HttpRouteTimeouts>) -> Result<Timeouts, Rejection> {
    let Some(t) = t else {
        return Ok(Timeouts::default());
    };
    let parse = |what: &str, v: &str| -> Result<Option<Duration>, Rejection> {
        if v.is_empty() {
            return Ok(None);
        }
        parse_duration(v).map(Some).map_err(|e| Rejection {
            reason: "UnsupportedValue",
            message: format!("{at}.timeouts.{what}: {e}"),
        })
    };
    let request = parse("request", &t.request)?;
    let backend_request = parse("backendRequest", &t.backend_request)?;
    if let (Some(r), Some(b)) = (request, backend_request)
        && !r.is_zero()
        && (b > r || b.is_zero())
    {
        return unsupported(format!(
            "{at}.timeouts: backendRequest ({}) must not be longer than request ({}); shorten it",
            t.backend_request, t.request
        ));
    }
    Ok(Timeouts {
        request,
        backend_request,
    })
}

fn value_match(what: &str, value: &str, regex: bool) -> Result<ValueMatch, Rejection> {
    if regex {
        check_regex(what, value).map(ValueMatch::RegularExpression)
    } else {
        Ok(ValueMatch::Exact(value.to_string()))
    }
}

/// One `matches[]` entry.
pub fn admit_match(at: &str, m: &pb::HttpRouteMatch) -> Result<HttpRouteMatch, Rejection> {
    let path = match &m.path {
        None => PathMatch::Prefix("/".into()),
        Some(p) => match pb::path_match::Type::try_from(p.r#type) {
            Ok(pb::path_match::Type::RegularExpression) => {
                PathMatch::RegularExpression(check_regex(&format!("{at}.path"), &p.value)?)
            }
            Ok(t) => {
                check_path(&p.value).map_err(|e| Rejection {
                    reason: e.reason,
                    message: format!("{at}.path: {}", e.message),
                })?;
                if t == pb::path_match::Type::Exact {
                    PathMatch::Exact(p.value.clone())
                } else {
                    PathMatch::Prefix(p.value.clone())
                }
            }
            Err(_) => return unsupported(format!("{at}.path: unknown path match type")),
        },
    };
    if m.headers.len() > super::MAX_HEADERS || m.query_params.len() > MAX_QUERY_PARAMS {
        return unsupported(format!(
            "{at}: at most {} header and {MAX_QUERY_PARAMS} query parameter matches",
            super::MAX_HEADERS
        ));
    }
    let mut headers = ThinVec::with_capacity(m.headers.len());
    for h in &m.headers {
        let (name, value) = check_header(&h.name, &h.value)?;
        if headers.iter().any(|(n, _)| *n == name) {
            return unsupported(format!(
                "{at}.headers: header {name:?} is matched twice; keep one"
            ));
        }
        let v = value_match(
            &format!("{at}.headers[{name}]"),
            &value,
            h.regular_expression,
        )?;
        headers.push((name, v));
    }
    let mut query_params = ThinVec::with_capacity(m.query_params.len());
    for q in &m.query_params {
        // Query parameter names are matched as written; same character rules as header names.
        let (_, value) = check_header(&q.name, &q.value)?;
        if query_params.iter().any(|(n, _)| *n == q.name) {
            return unsupported(format!(
                "{at}.queryParams: parameter {:?} is matched twice; keep one",
                q.name
            ));
        }
        let v = value_match(
            &format!("{at}.queryParams[{}]", q.name),
            &value,
            q.regular_expression,
        )?;
        query_params.push((q.name.clone(), v));
    }
    let method = match m.method.as_str() {
        "" => None,
        x if METHODS.contains(&x) => Some(x.to_string()),
        other => {
            return unsupported(format!(
                "{at}.method: {:?} is not one of {}",
                other.chars().take(16).collect::<String>(),
                METHODS.join(", ")
            ));
        }
    };
    Ok(HttpRouteMatch {
        path,
        headers,
        query_params,
        method,
    })
}

/// A header modifier (request or response).
pub fn admit_header_modifier(m: &pb::HeaderModifier) -> Result<HeaderModifier, Rejection> {
    let mut hm = HeaderModifier::default();
    for h in &m.set {
        hm.set.push(modifiable(check_header(&h.name, &h.value)?)?);
    }
    for h in &m.add {
        hm.add.push(modifiable(check_header(&h.name, &h.value)?)?);
    }
    for n in &m.remove {
        hm.remove.push(modifiable(check_header(n, "")?)?.0);
    }
    Ok(hm)
}

/// The prefix of the headers only fleetgate sets (the AI gateway trusts
/// `x-fleetgate-tenant` and `x-fleetgate-route` because Envoy overwrites them).
pub const RESERVED_HEADER_PREFIX: &str = "x-fleetgate-";

/// A header a tenant's filter may set, add or remove: not one of fleetgate's own, which would let
/// a route speak for another tenant or route at the AI gateway.
fn modifiable(h: (String, String)) -> Result<(String, String), Rejection> {
    if h.0.starts_with(RESERVED_HEADER_PREFIX) {
        return unsupported(format!(
            "header {:?} is set by fleetgate itself (headers starting with {RESERVED_HEADER_PREFIX} cannot be modified by a route); use another name",
            h.0
        ));
    }
    Ok(h)
}

/// A hostname without wildcard (redirect and rewrite targets), lower-cased.
fn check_plain_hostname(what: &str, raw: &str) -> Result<String, Rejection> {
    let h = raw.to_ascii_lowercase();
    if !h.starts_with("*.") && crate::model::policy::is_hostname_pattern(&h) {
        Ok(h)
    } else {
        unsupported(format!(
            "{what}: {:?} is not a hostname",
            raw.chars().take(64).collect::<String>()
        ))
    }
}

fn path_modifier(
    at: &str,
    p: Option<&pb::PathModifier>,
) -> Result<Option<PathModifier>, Rejection> {
    let Some(p) = p else { return Ok(None) };
    check_path(&p.value).map_err(|e| Rejection {
        reason: e.reason,
        message: format!("{at}.path: {}", e.message),
    })?;
    match pb::path_modifier::Type::try_from(p.r#type) {
        Ok(pb::path_modifier::Type::ReplaceFullPath) => {
            Ok(Some(PathModifier::ReplaceFullPath(p.value.clone())))
        }
        Ok(pb::path_modifier::Type::ReplacePrefixMatch) => {
            Ok(Some(PathModifier::ReplacePrefixMatch(p.value.clone())))
        }
        _ => unsupported(format!(
            "{at}.path.type must be ReplaceFullPath or ReplacePrefixMatch"
        )),
    }
}

fn cors_list(
    at: &str,
    what: &str,
    items: &[String],
    check: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Rejection> {
    if items.len() > MAX_CORS_ENTRIES {
        return unsupported(format!(
            "{at}.cors.{what}: at most {MAX_CORS_ENTRIES} entries"
        ));
    }
    for i in items {
        if !check(i) {
            return unsupported(format!(
                "{at}.cors.{what}: {:?} is not valid here",
                i.chars().take(64).collect::<String>()
            ));
        }
    }
    Ok(items.to_vec())
}

/// A CORS origin: `*`, or `http(s)://host[:port]` where the host may start with `*.`.
fn is_origin(o: &str) -> bool {
    if o == "*" {
        return true;
    }
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    if scheme != "http" && scheme != "https" {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    let host = host.to_ascii_lowercase();
    port_ok && (host == "*" || crate::model::policy::is_hostname_pattern(&host))
}

/// Whether a regex fleetgate derives from tenant input (if any) stays below Envoy's RE2 limit.
fn fits_data_plane(derived: Option<String>) -> bool {
    derived.is_none_or(|re| {
        super::re2::program_size(&re).is_some_and(|n| n <= super::re2::MAX_PROGRAM_SIZE)
    })
}

fn is_token_or_star(s: &str) -> bool {
    s == "*"
        || (!s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)))
}

/// One `filters[]` entry of a rule.
pub fn admit_filter(
    at: &str,
    f: &pb::HttpFilter,
    policy: &Policy<'_>,
) -> Result<HttpFilter, Rejection> {
    use pb::http_filter::Kind as K;
    Ok(match &f.kind {
        Some(K::RequestHeaderModifier(m)) => {
            HttpFilter::RequestHeaderModifier(admit_header_modifier(m)?)
        }
        Some(K::ResponseHeaderModifier(m)) => {
            HttpFilter::ResponseHeaderModifier(admit_header_modifier(m)?)
        }
        Some(K::RequestRedirect(r)) => {
            let at = format!("{at}.requestRedirect");
            let scheme = match r.scheme.as_str() {
                "" => None,
                s @ ("http" | "https") => Some(s.to_string()),
                _ => return unsupported(format!("{at}.scheme must be http or https")),
            };
            let hostname = match r.hostname.as_str() {
                "" => None,
                h => Some(check_plain_hostname(&format!("{at}.hostname"), h)?),
            };
            let port = match r.port {
                0 => None,
                p => Some(u16::try_from(p).map_err(|_| Rejection {
                    reason: "UnsupportedValue",
                    message: format!("{at}.port {p} is not 1-65535"),
                })?),
            };
            let status_code = match r.status_code {
                0 => 302,
                c @ (301 | 302 | 303 | 307 | 308) => c as u16,
                c => {
                    return unsupported(format!(
                        "{at}.statusCode {c} is not 301, 302, 303, 307 or 308"
                    ));
                }
            };
            HttpFilter::RequestRedirect(Redirect {
                scheme,
                hostname,
                path: path_modifier(&at, r.path.as_ref())?,
                port,
                status_code,
            })
        }
        Some(K::UrlRewrite(r)) => {
            let at = format!("{at}.urlRewrite");
            let hostname = match r.hostname.as_str() {
                "" => None,
                h => Some(check_plain_hostname(&format!("{at}.hostname"), h)?),
            };
            HttpFilter::UrlRewrite(Rewrite {
                hostname,
                path: path_modifier(&at, r.path.as_ref())?,
            })
        }
        Some(K::RequestMirror(m)) => {
            let at = format!("{at}.requestMirror");
            let Some(b) = &m.backend else {
                return unsupported(format!("{at}: backendRef is required"));
            };
            let backend = super::admit_backend(b, policy)?;
            let (numerator, denominator) = match (m.numerator, m.denominator) {
                (0, 0) => (1, 1),
                (n, d) if d > 0 && n <= d && d <= 1_000_000 => (n, d),
                (n, d) => {
                    return unsupported(format!(
                        "{at}: fraction {n}/{d} must have 0 < denominator <= 1000000 and numerator <= denominator"
                    ));
                }
            };
            HttpFilter::RequestMirror(Mirror {
                backend,
                numerator,
                denominator,
            })
        }
        Some(K::Cors(c)) => {
            let max_age = match c.max_age {
                0 => None,
                n if n <= 86_400 * 365 => Some(n),
                n => return unsupported(format!("{at}.cors.maxAge {n} is over a year")),
            };
            HttpFilter::Cors(Cors {
                allow_origins: cors_list(at, "allowOrigins", &c.allow_origins, |o| {
                    is_origin(o) && fits_data_plane(crate::model::regex::origin_regex(o))
                })?,
                allow_credentials: c.allow_credentials,
                allow_methods: cors_list(at, "allowMethods", &c.allow_methods, is_token_or_star)?,
                allow_headers: cors_list(at, "allowHeaders", &c.allow_headers, is_token_or_star)?,
                expose_headers: cors_list(
                    at,
                    "exposeHeaders",
                    &c.expose_headers,
                    is_token_or_star,
                )?,
                max_age,
            })
        }
        Some(K::Unsupported(u)) => HttpFilter::Unsupported(UnsupportedFilter {
            filter: bounded(&u.r#type, MAX_UNSUPPORTED_TYPE),
            message: format!("{at}: {}", bounded(&u.message, MAX_UNSUPPORTED_MESSAGE)),
        }),
        None => return unsupported(format!("{at}: empty filter")),
    })
}

/// How much of an unsupported filter's type and message (the agent's words, for the tenant's
/// own status) the hub keeps.
const MAX_UNSUPPORTED_TYPE: usize = 64;
const MAX_UNSUPPORTED_MESSAGE: usize = 512;

fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Rules about filter combinations (Gateway API): RequestRedirect and URLRewrite exclude each
/// other; every filter type but RequestMirror at most once; ReplacePrefixMatch only when every
/// match of the rule is a PathPrefix.
pub fn check_filter_set(
    at: &str,
    filters: &[HttpFilter],
    matches: &[HttpRouteMatch],
) -> Result<(), Rejection> {
    let kind = |f: &HttpFilter| match f {
        HttpFilter::RequestHeaderModifier(_) => "RequestHeaderModifier",
        HttpFilter::ResponseHeaderModifier(_) => "ResponseHeaderModifier",
        HttpFilter::RequestRedirect(_) => "RequestRedirect",
        HttpFilter::UrlRewrite(_) => "URLRewrite",
        HttpFilter::RequestMirror(_) => "RequestMirror",
        HttpFilter::Cors(_) => "CORS",
        HttpFilter::Unsupported(_) => "unsupported",
    };
    let mut seen = Vec::new();
    for f in filters {
        let k = kind(f);
        if k != "RequestMirror" && k != "unsupported" && seen.contains(&k) {
            return unsupported(format!(
                "{at}.filters: {k} is used twice; merge them into one"
            ));
        }
        seen.push(k);
    }
    if seen.contains(&"RequestRedirect") && seen.contains(&"URLRewrite") {
        return unsupported(format!(
            "{at}.filters: RequestRedirect and URLRewrite cannot be used together; keep one"
        ));
    }
    let prefix_modifier = filters.iter().any(|f| {
        matches!(
            f,
            HttpFilter::RequestRedirect(Redirect {
                path: Some(PathModifier::ReplacePrefixMatch(_)),
                ..
            }) | HttpFilter::UrlRewrite(Rewrite {
                path: Some(PathModifier::ReplacePrefixMatch(_)),
                ..
            })
        )
    });
    if prefix_modifier
        && matches
            .iter()
            .any(|m| !matches!(m.path, PathMatch::Prefix(_)))
    {
        return unsupported(format!(
            "{at}.filters: ReplacePrefixMatch needs every match of the rule to be a PathPrefix match; use ReplaceFullPath or change the matches"
        ));
    }
    // ReplacePrefixMatch "/" strips the matched prefix with a regex (see
    // `fleetgate-hub-xds`'s `http::path_rewrite`), which must fit the data plane's RE2 limit.
    let strips_prefix = filters.iter().any(|f| {
        let path = match f {
            HttpFilter::RequestRedirect(r) => r.path.as_ref(),
            HttpFilter::UrlRewrite(r) => r.path.as_ref(),
            _ => None,
        };
        matches!(path, Some(PathModifier::ReplacePrefixMatch(r)) if r.trim_end_matches('/').is_empty())
    });
    if strips_prefix {
        for m in matches {
            if let PathMatch::Prefix(p) = &m.path {
                let p = p.trim_end_matches('/');
                if !p.is_empty()
                    && !fits_data_plane(Some(crate::model::regex::prefix_strip_regex(p)))
                {
                    return unsupported(format!(
                        "{at}.filters: ReplacePrefixMatch \"/\" on the {}-byte prefix {:?} is too long for the data plane; use a shorter prefix",
                        p.len(),
                        p.chars().take(32).collect::<String>()
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_table() {
        let ok = [
            ("0s", Duration::ZERO),
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1h", Duration::from_secs(3600)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
            ("99999s", Duration::from_secs(99_999)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "-1s",
            "100000s",
            "1s1s",
            "1d",
            "10 s",
            "1h2m3s4ms5h",
            "1us",
            "PT10S",
            "10S",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn hostile_regexes_are_refused() {
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        let huge = "[a-z]{1000}{1000}";
        for bad in [
            "",
            "(unclosed",
            "a{2,1}",
            "(?<=a)b",
            r"(a)\1",
            long.as_str(),
            deep.as_str(),
            huge,
            "[a-z&&[^aeiou]]",
            "a\nb",
            // Valid, but above Envoy's RE2 program size limit (it measures 112).
            "/v[0-9]+/(users|groups)/[^/]+/items/[a-z0-9-]{1,20}",
        ] {
            let e = check_regex("path", bad).unwrap_err();
            assert_eq!(e.reason, "UnsupportedValue", "{bad:?}");
            assert!(
                e.message.starts_with("path: regular expression"),
                "{}",
                e.message
            );
        }
        for good in [
            "/v[0-9]+/.*",
            "^/api/(users|groups)/[^/]+$",
            r"\d{3}",
            "(?i)/foo",
        ] {
            assert_eq!(check_regex("path", good).unwrap(), good);
        }
    }

    #[test]
    fn origins_table() {
        for (o, want) in [
            ("*", true),
            ("https://a.example", true),
            ("http://a.example:8080", true),
            ("https://*.a.example", true),
            ("ftp://a.example", false),
            ("https://a.example/path", false),
            ("https://a.example:0", false),
            ("a.example", false),
            ("https://a example", false),
        ] {
            assert_eq!(is_origin(o), want, "{o}");
        }
    }
}
