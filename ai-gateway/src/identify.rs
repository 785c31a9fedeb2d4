//! Identify: the second stage of the request path (listen -> **identify** -> route -> provider
//! -> auth -> usage -> errors). Who is asking and for which route, from headers only Envoy sets.
//!
//! The AI gateway listens where only Envoy reaches it (a loopback or cluster-internal address,
//! never a public one): Envoy terminates the tenant's listener, strips any client copy of
//! `x-fleetgate-tenant` and `x-fleetgate-route`, and sets them from the route it matched. The
//! gateway therefore trusts these two headers and nothing else about identity; a request without
//! them did not come through Envoy and is refused with 403. The client's own credentials
//! (`Authorization`, `x-api-key`) identify nobody here and are never forwarded ([`crate::auth`]).

use hyper::HeaderMap;

use crate::config::model::check_name;
use crate::errors::ApiError;

/// The tenant the request belongs to (set by Envoy from the listener's owner).
pub const TENANT_HEADER: &str = "x-fleetgate-tenant";
/// The AI route the request matched (set by Envoy from the route's backendRef).
pub const ROUTE_HEADER: &str = "x-fleetgate-route";

/// Who is asking, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant: String,
    pub route: String,
}

/// Reads the identity headers; each must be present exactly once and be a valid name.
pub fn identify(headers: &HeaderMap) -> Result<Identity, ApiError> {
    Ok(Identity {
        tenant: one(headers, TENANT_HEADER)?,
        route: one(headers, ROUTE_HEADER)?,
    })
}

fn one(headers: &HeaderMap, name: &str) -> Result<String, ApiError> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::unidentified(format!(
            "this AI gateway serves only requests routed by fleetgate's Envoy, which sets exactly \
             one {name} header; send the request to your Gateway's address instead"
        )));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unidentified(format!("{name} is not ASCII")))?;
    check_name(name, value).map_err(|e| ApiError::unidentified(e.to_string()))?;
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn identity_comes_from_envoys_headers_only() {
        let ok = headers(&[
            ("x-fleetgate-tenant", "tenant-a"),
            ("x-fleetgate-route", "llm/local-llm"),
            ("authorization", "Bearer sk-client"),
        ]);
        assert_eq!(
            identify(&ok).unwrap(),
            Identity {
                tenant: "tenant-a".into(),
                route: "llm/local-llm".into()
            }
        );
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "x-fleetgate-tenant"),
            (&[("x-fleetgate-tenant", "a")], "x-fleetgate-route"),
            (&[("x-fleetgate-route", "r")], "x-fleetgate-tenant"),
            // A client's copy next to Envoy's: Envoy strips it, so two values mean no Envoy.
            (
                &[
                    ("x-fleetgate-tenant", "a"),
                    ("x-fleetgate-tenant", "b"),
                    ("x-fleetgate-route", "r"),
                ],
                "exactly one",
            ),
            (
                &[("x-fleetgate-tenant", ""), ("x-fleetgate-route", "r")],
                "empty",
            ),
            (
                &[("x-fleetgate-tenant", "a b"), ("x-fleetgate-route", "r")],
                "only letters",
            ),
            // Credentials identify nobody.
            (
                &[("authorization", "Bearer sk-tenant-a")],
                "x-fleetgate-tenant",
            ),
        ];
        for (pairs, want) in cases {
            let err = identify(&headers(pairs)).unwrap_err();
            assert_eq!(err.status, hyper::StatusCode::FORBIDDEN, "{pairs:?}");
            assert!(err.message.contains(want), "{pairs:?}: {}", err.message);
        }
    }
}
