//! Admission (step 5), pure: the Gateway fields fleetgate does not implement, refused with the
//! Gateway API's reason and a message saying what to change, instead of being ignored.
//!
//! Where it sits: called by `super::admit_gateway` before the listeners are checked. A Gateway
//! refused here is refused alone (`super::rejected_status`); every other object, of this tenant
//! or another, is untouched. The agent sends these fields as written (`pb::Gateway`).
//!
//! - the GatewayClass's `spec.parametersRef` and the Gateway's `spec.infrastructure.parametersRef`:
//!   fleetgate takes no parameters -> `InvalidParameters`;
//! - `spec.addresses`: a type other than `IPAddress` -> `UnsupportedAddress` (Accepted=False);
//!   an `IPAddress` -> `AddressNotUsable` (Programmed=False): the hub gives every Gateway its
//!   address itself (the shared data plane's, or one of its own from the operator's pools);
//! - `spec.tls.frontend` (client certificate validation): serving the Gateway without
//!   validating client certificates would let in clients the tenant means to refuse -> `Invalid`;
//! - `spec.tls.backend`: backends are reached without TLS (BackendTLSPolicy is not supported),
//!   so the client certificate would never be presented -> `Invalid`.

use fleetgate_proto::spoke::v1 as pb;

use super::{Rejection, reject};

/// Gateway API reasons used here.
pub const INVALID_PARAMETERS: &str = "InvalidParameters";
pub const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
/// A `Programmed` reason: the Gateway is accepted but cannot be programmed with the address it
/// asks for (`super::rejected_status` reports Accepted=True, Programmed=False).
pub const ADDRESS_NOT_USABLE: &str = "AddressNotUsable";
pub const INVALID: &str = "Invalid";

/// Tenant text quoted in a message, bounded.
fn quoted(s: &str) -> String {
    format!("{:?}", s.chars().take(64).collect::<String>())
}

/// Refuses the first Gateway field fleetgate does not implement, if any.
pub fn check(g: &pb::Gateway) -> Result<(), Rejection> {
    if !g.class_parameters_ref.is_empty() {
        return reject(
            INVALID_PARAMETERS,
            format!(
                "GatewayClass {} has spec.parametersRef ({}), and fleetgate takes no parameters, so the class is not accepted; remove the GatewayClass's parametersRef",
                quoted(&g.gateway_class_name),
                quoted(&g.class_parameters_ref)
            ),
        );
    }
    if !g.infrastructure_parameters_ref.is_empty() {
        return reject(
            INVALID_PARAMETERS,
            format!(
                "spec.infrastructure.parametersRef ({}) is not supported: fleetgate takes no parameters; remove it",
                quoted(&g.infrastructure_parameters_ref)
            ),
        );
    }
    if let Some((i, a)) = g
        .addresses
        .iter()
        .enumerate()
        .find(|(_, a)| !matches!(a.r#type.as_str(), "" | "IPAddress"))
    {
        return reject(
            UNSUPPORTED_ADDRESS,
            format!(
                "spec.addresses[{i}] has type {}, which fleetgate does not support; fleetgate gives the Gateway its address itself (see status.addresses): remove spec.addresses",
                quoted(&a.r#type)
            ),
        );
    }
    if let Some((i, a)) = g.addresses.iter().enumerate().next() {
        return reject(
            ADDRESS_NOT_USABLE,
            format!(
                "spec.addresses[{i}] {} cannot be used: fleetgate does not take requested addresses; it gives every Gateway its address itself (the shared data plane's, or an address of its own from the hub operator's pools when a listener has no hostname): remove spec.addresses",
                quoted(&a.value)
            ),
        );
    }
    if g.tls_frontend {
        return reject(
            INVALID,
            "spec.tls.frontend (client certificate validation) is not supported by fleetgate, and serving this Gateway without it would let in clients it means to refuse; remove spec.tls.frontend",
        );
    }
    if g.tls_backend {
        return reject(
            INVALID,
            "spec.tls.backend is not supported: fleetgate reaches backends without TLS (BackendTLSPolicy is not supported), so the client certificate would never be presented; remove spec.tls.backend",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Fixture;
    use crate::{admit, object_key, rejected_status};

    fn gateway(f: impl FnOnce(&mut pb::Gateway)) -> pb::Gateway {
        let mut g = pb::Gateway {
            gateway_class_name: "fleetgate".into(),
            ..Default::default()
        };
        f(&mut g);
        g
    }

    fn address(t: &str, v: &str) -> pb::GatewayAddress {
        pb::GatewayAddress {
            r#type: t.into(),
            value: v.into(),
        }
    }

    #[test]
    fn unsupported_gateway_fields_table() {
        // (what, gateway, reason or None, a phrase the message must carry)
        let cases: Vec<(&str, pb::Gateway, Option<&str>, &str)> = vec![
            ("nothing set", gateway(|_| {}), None, ""),
            (
                "class parametersRef",
                gateway(|g| g.class_parameters_ref = "example.com/Params p".into()),
                Some(INVALID_PARAMETERS),
                "fleetgate takes no parameters",
            ),
            (
                "infrastructure parametersRef",
                gateway(|g| g.infrastructure_parameters_ref = "core/ConfigMap c".into()),
                Some(INVALID_PARAMETERS),
                "spec.infrastructure.parametersRef",
            ),
            (
                // The type is refused before the address itself (upstream
                // GatewayStaticAddresses: UnsupportedAddress first).
                "a hostname and an IP address",
                gateway(|g| {
                    g.addresses = vec![
                        address("IPAddress", "192.0.2.1"),
                        address("Hostname", "lb.example"),
                    ]
                }),
                Some(UNSUPPORTED_ADDRESS),
                "spec.addresses[1] has type \"Hostname\"",
            ),
            (
                "a custom type",
                gateway(|g| g.addresses = vec![address("test/fake-invalid-type", "x")]),
                Some(UNSUPPORTED_ADDRESS),
                "remove spec.addresses",
            ),
            (
                "an IP address (type defaulted)",
                gateway(|g| g.addresses = vec![address("", "192.0.2.1")]),
                Some(ADDRESS_NOT_USABLE),
                "spec.addresses[0] \"192.0.2.1\" cannot be used",
            ),
            (
                "frontend client certificates",
                gateway(|g| g.tls_frontend = true),
                Some(INVALID),
                "remove spec.tls.frontend",
            ),
            (
                "backend client certificate",
                gateway(|g| g.tls_backend = true),
                Some(INVALID),
                "remove spec.tls.backend",
            ),
        ];
        for (what, g, reason, phrase) in cases {
            match (check(&g), reason) {
                (Ok(()), None) => {}
                (Err(e), Some(r)) => {
                    assert_eq!(e.reason, r, "{what}");
                    assert!(e.message.contains(phrase), "{what}: {}", e.message);
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn tenant_text_in_messages_is_bounded() {
        let long = "x".repeat(10_000);
        let e = check(&gateway(|g| g.addresses = vec![address(&long, "v")])).unwrap_err();
        assert!(e.message.len() < 400, "{}", e.message.len());
    }

    /// A Gateway refused for a field fleetgate does not implement: the reason on Accepted (and
    /// Programmed=False), except a requested IP address, which is Accepted=True with
    /// Programmed=False/AddressNotUsable (Gateway API: a Programmed reason); the message says what
    /// to remove.
    #[test]
    fn gateways_with_unsupported_fields_are_refused_with_the_gateway_api_reason() {
        let f = Fixture::new();
        let gw = |edit: fn(&mut pb::Gateway)| {
            let mut g = pb::Gateway {
                gateway_class_name: "fleetgate".into(),
                listeners: vec![pb::Listener {
                    name: "http".into(),
                    protocol: "HTTP".into(),
                    port: 8080,
                    hostname: "app.a.example".into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            edit(&mut g);
            pb::Object {
                r#ref: Some(pb::ObjectRef {
                    kind: pb::Kind::Gateway as i32,
                    namespace: "infra".into(),
                    name: "gw".into(),
                }),
                generation: 4,
                creation_timestamp: String::new(),
                spec: Some(pb::object::Spec::Gateway(g)),
            }
        };
        // (what, object, (Accepted, its reason), (Programmed, its reason))
        type Case = (
            &'static str,
            pb::Object,
            (bool, &'static str),
            (bool, &'static str),
        );
        let cases: Vec<Case> = vec![
            (
                "frontend client certificates",
                gw(|g| g.tls_frontend = true),
                (false, "Invalid"),
                (false, "Invalid"),
            ),
            (
                "class parametersRef",
                gw(|g| g.class_parameters_ref = "example.com/P p".into()),
                (false, "InvalidParameters"),
                (false, "Invalid"),
            ),
            (
                "hostname address",
                gw(|g| {
                    g.addresses = vec![pb::GatewayAddress {
                        r#type: "Hostname".into(),
                        value: "lb.example".into(),
                    }]
                }),
                (false, "UnsupportedAddress"),
                (false, "Invalid"),
            ),
            (
                "IP address",
                gw(|g| {
                    g.addresses = vec![pb::GatewayAddress {
                        r#type: "IPAddress".into(),
                        value: "192.0.2.9".into(),
                    }]
                }),
                (true, "Accepted"),
                (false, "AddressNotUsable"),
            ),
        ];
        for (what, obj, accepted, programmed) in cases {
            let e = admit(&obj, &f.policy()).unwrap_err();
            let st = rejected_status(&object_key(obj.r#ref.as_ref().unwrap()).unwrap(), &obj, &e);
            assert_eq!(st.observed_generation, 4, "{what}");
            let c = |t: &str| {
                let c = st.conditions.iter().find(|c| c.type_ == t).unwrap();
                (c.status, c.reason.as_str())
            };
            assert_eq!(c("Accepted"), accepted, "{what}");
            assert_eq!(c("Programmed"), programmed, "{what}");
            assert!(e.message.contains("remove"), "{what}: {}", e.message);
        }
    }
}
