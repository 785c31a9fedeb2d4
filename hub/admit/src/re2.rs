//! An upper estimate of the size of the RE2 program Envoy compiles for a regular expression.
//!
//! Envoy refuses a configuration whose `safe_regex` compiles to an RE2 program above its
//! runtime limit `re2.max_program_size.error_level` (100 by default). A refused route
//! configuration is refused whole, for every tenant on that data-plane port, so admission keeps
//! every tenant regex below the limit with this estimate (called by `super::http::check_regex`).
//! Pure; calibrated against Envoy 1.40 (see the table test).

use regex_syntax::hir::{Class, Hir, HirKind};

/// Envoy's default `re2.max_program_size.error_level`.
pub const MAX_PROGRAM_SIZE: u64 = 100;

/// Instructions every RE2 program has (match, fail, the unanchored-search prefix).
const BASE: u64 = 4;

/// Upper estimate of the RE2 program size of `re`, `None` when it does not parse.
///
/// RE2's `\d`, `\w`, `\s` are ASCII, so the expression is first read in byte mode (as RE2 sees
/// them); expressions that need Unicode classes are read in Unicode mode, where a class is
/// costed by its UTF-8 byte-range sequences (more than RE2, which shares suffixes).
pub fn program_size(re: &str) -> Option<u64> {
    let bytes = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(re);
    let hir = match bytes {
        Ok(h) => h,
        Err(_) => regex_syntax::ParserBuilder::new().build().parse(re).ok()?,
    };
    Some(BASE.saturating_add(cost(&hir)))
}

fn cost(h: &Hir) -> u64 {
    match h.kind() {
        HirKind::Empty => 0,
        HirKind::Literal(l) => l.0.len() as u64,
        HirKind::Class(Class::Bytes(c)) => c.ranges().len() as u64,
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| {
                regex_syntax::utf8::Utf8Sequences::new(r.start(), r.end())
                    .map(|s| s.as_slice().len() as u64)
                    .sum::<u64>()
            })
            .sum(),
        HirKind::Look(_) => 1,
        HirKind::Repetition(r) => {
            let s = cost(&r.sub);
            let min = u64::from(r.min);
            match r.max {
                Some(max) => min
                    .saturating_mul(s)
                    .saturating_add((u64::from(max) - min).saturating_mul(s + 1)),
                None if min == 0 => s + 1,
                None => min.saturating_mul(s).saturating_add(1),
            }
        }
        HirKind::Capture(c) => cost(&c.sub).saturating_add(2),
        HirKind::Concat(v) => v.iter().map(cost).fold(0, u64::saturating_add),
        HirKind::Alternation(v) => v
            .iter()
            .map(cost)
            .fold(v.len() as u64 - 1, u64::saturating_add),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (regex, RE2 program size Envoy 1.40 reported for it), measured with
    /// `envoy --mode validate` on a route with `safe_regex: {google_re2: {max_program_size: 1}}`,
    /// whose error message states the size.
    const ENVOY_1_40: &[(&str, u64)] = &[
        ("a", 5),
        ("/", 5),
        ("/v[0-9]+/items", 14),
        ("/v[0-9]+/(users|groups)/[^/]+/items/[a-z0-9-]{1,20}", 112),
        ("[a-z]{50}", 54),
        ("[a-z0-9-]{1,20}", 83),
        ("[^/]+", 7),
        (".*", 6),
        ("/api/.*", 11),
        ("(?i)/foo", 8),
        (r"\d{3}", 7),
        ("^/a+$", 6),
        ("(a|b|c|d)", 7),
        ("[a-zA-Z0-9_-]+", 9),
        ("/[^/]*/x", 9),
        (r"\w+", 8),
        ("é", 6),
        ("[α-ω]+", 7),
        ("/user/[0-9]{1,5}/profile", 27),
        ("(foo|bar)+baz?", 17),
        (r".+\.(png|jpg|gif)$", 19),
    ];

    #[test]
    fn the_estimate_is_never_below_envoys_size_and_stays_close() {
        for (re, envoy) in ENVOY_1_40 {
            let est = program_size(re).unwrap();
            assert!(est >= *envoy, "{re}: estimate {est} < Envoy's {envoy}");
            assert!(
                est <= envoy * 2 + 4,
                "{re}: estimate {est} is far above Envoy's {envoy}"
            );
            // Which side of Envoy's default limit a regex falls must agree.
            assert_eq!(
                est > MAX_PROGRAM_SIZE,
                *envoy > MAX_PROGRAM_SIZE,
                "{re}: estimate {est}, Envoy {envoy}"
            );
        }
    }

    #[test]
    fn huge_repetitions_saturate_instead_of_overflowing() {
        let est = program_size("((a{1000}){1000}){1000}").unwrap();
        assert!(est > MAX_PROGRAM_SIZE);
        assert_eq!(program_size("(unclosed"), None);
    }
}
