//! Hostname matching between a Gateway listener and an HTTPRoute (Gateway API semantics).
//!
//! Part of attachment in the compiler (step 7). Hostnames arrive lower-case and validated
//! (`host.example` or `*.example`); a `*.` wildcard matches one or more leading labels, so
//! `*.example` covers `a.example` and `a.b.example` but not `example`.

/// Whether every host matched by `host` is also matched by `pattern`.
pub fn covers(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        // `suffix` is `.example`; `host` must have at least one label in front of it.
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => false,
    }
}

/// Listener isolation: whether requests for `host`, reached through a listener of hostname
/// `own` (`None`: any), belong instead to a more specific listener of the same Gateway and
/// port, whose hostnames are `others`. The data plane picks the most specific virtual host for
/// a request, so a hostname that such a listener also matches must not carry the less specific
/// listener's routes: a route on a `*.example` listener that names `a.foo.example` does not
/// serve it when an `a.foo.example` or `*.foo.example` listener exists on that port.
pub fn belongs_to_more_specific<'a>(
    own: Option<&str>,
    host: &str,
    others: impl IntoIterator<Item = Option<&'a str>>,
) -> bool {
    others.into_iter().flatten().any(|other| {
        let more_specific = own.is_none_or(|own| own != other && covers(own, other));
        more_specific && covers(other, host)
    })
}

/// The hostnames a route serves through one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intersection {
    /// The route serves these hostnames (sorted, no duplicates) on the listener.
    Hosts(Vec<String>),
    /// Neither the listener nor the route names a hostname: refused on a shared data plane.
    BothEmpty,
    /// The route's hostnames and the listener's hostname have nothing in common.
    Disjoint,
}

/// Gateway API hostname intersection of a listener hostname and a route's hostnames: for each
/// route hostname, the more specific of the two when one covers the other.
pub fn intersect(listener: Option<&str>, route: &[String]) -> Intersection {
    let mut hosts: Vec<String> = match (listener, route.is_empty()) {
        (None, true) => return Intersection::BothEmpty,
        (None, false) => route.to_vec(),
        (Some(l), true) => vec![l.to_string()],
        (Some(l), false) => route
            .iter()
            .filter_map(|h| {
                if covers(l, h) {
                    Some(h.clone())
                } else if covers(h, l) {
                    Some(l.to_string())
                } else {
                    None
                }
            })
            .collect(),
    };
    hosts.sort();
    hosts.dedup();
    if hosts.is_empty() {
        Intersection::Disjoint
    } else {
        Intersection::Hosts(hosts)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn more_specific_listeners_own_their_hostnames_table() {
        use super::belongs_to_more_specific as b;
        let others = [
            Some("*.a.example"),
            Some("*.foo.a.example"),
            Some("abc.foo.a.example"),
            None,
        ];
        // (own listener hostname, route hostname, belongs to a more specific listener)
        let cases = [
            (None, "bar.com", false),
            (None, "x.a.example", true),
            (None, "*.a.example", true),
            (Some("*.a.example"), "*.a.example", false),
            (Some("*.a.example"), "x.a.example", false),
            (Some("*.a.example"), "x.foo.a.example", true),
            (Some("*.a.example"), "*.foo.a.example", true),
            (Some("*.a.example"), "abc.foo.a.example", true),
            (Some("*.foo.a.example"), "*.foo.a.example", false),
            (Some("*.foo.a.example"), "abc.foo.a.example", true),
            (Some("abc.foo.a.example"), "abc.foo.a.example", false),
        ];
        for (own, host, want) in cases {
            assert_eq!(b(own, host, others), want, "{own:?} {host}");
        }
    }

    use super::*;

    #[test]
    fn covers_table() {
        let cases = [
            ("a.example", "a.example", true),
            ("a.example", "b.example", false),
            ("*.example", "a.example", true),
            ("*.example", "a.b.example", true),
            ("*.example", "example", false),
            ("*.example", "xexample", false),
            ("*.example", "*.a.example", true),
            ("*.example", "*.example", true),
            ("*.a.example", "*.example", false),
            ("a.example", "*.example", false),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(covers(pattern, host), want, "covers({pattern}, {host})");
        }
    }

    fn hosts(h: &[&str]) -> Intersection {
        Intersection::Hosts(h.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn intersect_table() {
        let cases: Vec<(Option<&str>, Vec<&str>, Intersection)> = vec![
            (None, vec![], Intersection::BothEmpty),
            (None, vec!["b.x", "a.x", "a.x"], hosts(&["a.x", "b.x"])),
            (Some("a.x"), vec![], hosts(&["a.x"])),
            (Some("a.x"), vec!["a.x", "b.x"], hosts(&["a.x"])),
            (Some("*.x"), vec!["a.x", "b.y"], hosts(&["a.x"])),
            (Some("a.x"), vec!["*.x"], hosts(&["a.x"])),
            (Some("*.x"), vec!["*.a.x", "*.x"], hosts(&["*.a.x", "*.x"])),
            (Some("a.x"), vec!["b.x", "*.y"], Intersection::Disjoint),
            (Some("*.a.x"), vec!["b.x"], Intersection::Disjoint),
        ];
        for (listener, route, want) in cases {
            let route: Vec<String> = route.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                intersect(listener, &route),
                want,
                "{listener:?} x {route:?}"
            );
        }
    }
}
