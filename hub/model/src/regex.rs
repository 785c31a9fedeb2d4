//! The regular expressions the data plane is programmed with that are built from tenant
//! values. They live with the model because two steps need the same text: admission bounds
//! their RE2 program size (`fleetgate-hub-admit`'s `re2`), and the xDS translation
//! (`fleetgate-hub-xds`'s `http`) writes them into Envoy routes.

/// The regex that strips a matched prefix and the slashes after it (ReplacePrefixMatch `/`).
/// Admission bounds its RE2 size.
pub fn prefix_strip_regex(matched: &str) -> String {
    format!("^{}/*", regex::escape(matched))
}

/// The regex a wildcard CORS origin (`https://*.a.example`) is matched with: each `*` is one
/// or more DNS labels, greedy to the left, as the Gateway API says ("any number of DNS labels
/// to the left of its position"; upstream `HTTPRouteCORS` sends `https://xpto.www.bar.com`
/// for `https://*.bar.com`). `None` for origins without a wildcard. Admission bounds its RE2
/// size.
pub fn origin_regex(o: &str) -> Option<String> {
    if o == "*" {
        return Some(".*".into());
    }
    o.contains('*').then(|| {
        let re = o
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(r"[^./:]+(?:\.[^./:]+)*");
        format!("^{re}$")
    })
}
