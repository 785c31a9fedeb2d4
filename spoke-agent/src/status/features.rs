//! The Gateway API features fleetgate implements: the one list written into every claimed
//! GatewayClass's `status.supportedFeatures`.
//!
//! Part of the status step (9). A feature is listed only when it works end to end on the shared
//! data plane and a test proves it (see `docs/conformance.md`, which gives the test of each);
//! the names are Gateway API v1.6 `pkg/features` names. Keep the list sorted (the API orders
//! `supportedFeatures` by name) and add a name here only together with its row in
//! `docs/conformance.md`.

/// Gateway API feature names fleetgate supports, sorted.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "Gateway",
    "GatewayHTTPListenerIsolation",
    "GatewayHTTPSListenerDetectMisdirectedRequests",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendTimeout",
    "HTTPRouteCORS",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestMultipleMirrors",
    "HTTPRouteRequestPercentageMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every feature name of the Gateway API version whose CRDs fleetgate installs, generated
    /// from the upstream module (`e2e/conformance/upstream`, `go run ./cmd/featuregen`, with a
    /// drift check in `make conformance-check`): fleetgate lists no name it does not define.
    fn gateway_api_features() -> Vec<&'static str> {
        include_str!("../../../e2e/conformance/upstream/features-v1.6.3.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split('\t').next())
            .collect()
    }

    #[test]
    fn features_are_sorted_unique_gateway_api_names() {
        let mut sorted = SUPPORTED_FEATURES.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, SUPPORTED_FEATURES,
            "keep the list sorted, once each"
        );
        let upstream = gateway_api_features();
        assert!(
            upstream.len() > 40,
            "the generated list is read: {upstream:?}"
        );
        for f in SUPPORTED_FEATURES {
            assert!(
                upstream.contains(f),
                "{f} is not a Gateway API v1.6 feature name"
            );
        }
    }

    #[test]
    fn every_listed_feature_has_a_row_in_the_conformance_matrix() {
        let doc = include_str!("../../../docs/conformance.md");
        for f in SUPPORTED_FEATURES {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{f}` |")))
                .unwrap_or_else(|| panic!("docs/conformance.md has no row for {f}"));
            assert!(
                row.contains("| yes"),
                "docs/conformance.md does not mark {f} supported: {row}"
            );
        }
    }
}
