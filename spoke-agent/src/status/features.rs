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
    "GatewayListenerSet",
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
    "ReferenceGrant",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every feature name of Gateway API v1.6 (`pkg/features`: gateway.go, httproute.go,
    /// grpcroute.go, tlsroute.go, tcproute.go, udproute.go, referencegrant.go), for the check
    /// that fleetgate lists no name the Gateway API does not define.
    const GATEWAY_API_FEATURES: &[&str] = &[
        "Gateway",
        "GatewayAddressEmpty",
        "GatewayBackendClientCertificate",
        "GatewayFrontendClientCertificateValidation",
        "GatewayFrontendClientCertificateValidationInsecureFallback",
        "GatewayHTTPListenerIsolation",
        "GatewayHTTPSListenerDetectMisdirectedRequests",
        "GatewayInfrastructurePropagation",
        "GatewayListenerSet",
        "GatewayPort8080",
        "GatewayStaticAddresses",
        "GRPCRoute",
        "GRPCRouteNamedRouteRule",
        "HTTPRoute",
        "HTTPRoute303RedirectStatusCode",
        "HTTPRoute307RedirectStatusCode",
        "HTTPRoute308RedirectStatusCode",
        "HTTPRouteBackendProtocolH2C",
        "HTTPRouteBackendProtocolWebSocket",
        "HTTPRouteBackendRequestHeaderModification",
        "HTTPRouteBackendTimeout",
        "HTTPRouteCORS",
        "HTTPRouteDestinationPortMatching",
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
        "ReferenceGrant",
        "TCPRoute",
        "TLSRoute",
        "UDPRoute",
    ];

    #[test]
    fn features_are_sorted_unique_gateway_api_names() {
        let mut sorted = SUPPORTED_FEATURES.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, SUPPORTED_FEATURES,
            "keep the list sorted, once each"
        );
        for f in SUPPORTED_FEATURES {
            assert!(
                GATEWAY_API_FEATURES.contains(f),
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
