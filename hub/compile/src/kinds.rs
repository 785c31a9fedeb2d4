//! Listener route kinds: `allowedRoutes.kinds` against the kinds fleetgate serves on the
//! listener's protocol, giving the listener's `supportedKinds` and, for kinds fleetgate does
//! not serve there, `ResolvedRefs=False/InvalidRouteKinds`.
//!
//! Part of the compiler (step 7), pure. Unset `allowedRoutes.kinds` means the protocol's kinds.
//! A listener some of whose kinds are unsupported keeps serving the supported ones (and reports
//! InvalidRouteKinds); one with none left is not programmed. Routes attach only through
//! listeners whose supported kinds include their own kind (`super::attach`).

use crate::model::{Listener, Protocol, RouteGroupKind};

pub use crate::model::GATEWAY_GROUP;

/// The route kinds fleetgate serves on listeners of `protocol`.
pub fn protocol_kinds(protocol: Option<Protocol>) -> &'static [&'static str] {
    match protocol {
        Some(Protocol::Http | Protocol::Https) => &["HTTPRoute", "GRPCRoute"],
        Some(Protocol::Tls) => &["TLSRoute"],
        Some(Protocol::Tcp) => &["TCPRoute"],
        Some(Protocol::Udp) => &["UDPRoute"],
        None => &[],
    }
}

/// A listener's supported kinds, and what to tell the tenant about the kinds it asked for that
/// are not served (`None`: all are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kinds {
    pub supported: Vec<RouteGroupKind>,
    pub invalid: Option<String>,
}

fn gk(kind: &str) -> RouteGroupKind {
    RouteGroupKind {
        group: GATEWAY_GROUP.to_string(),
        kind: kind.to_string(),
    }
}

/// The intersection of the listener's `allowedRoutes.kinds` with its protocol's kinds. A TLS
/// listener in `Terminate` mode serves no kind (it is refused, `super::listener`), and says so
/// with an empty `supportedKinds` (upstream `TLSRouteListenerTerminateNotSupported`).
pub fn resolve(l: &Listener) -> Kinds {
    if super::listener::tls_terminate_refused(l).is_some() {
        return Kinds {
            supported: Vec::new(),
            invalid: None,
        };
    }
    let served = protocol_kinds(l.protocol);
    if l.allowed_kinds.is_empty() {
        return Kinds {
            supported: served.iter().map(|k| gk(k)).collect(),
            invalid: None,
        };
    }
    let mut supported = Vec::new();
    let mut refused = Vec::new();
    for k in &l.allowed_kinds {
        if k.group == GATEWAY_GROUP && served.contains(&k.kind.as_str()) {
            if !supported.contains(k) {
                supported.push(k.clone());
            }
        } else {
            refused.push(if k.group.is_empty() {
                k.kind.clone()
            } else {
                format!("{}/{}", k.group, k.kind)
            });
        }
    }
    let invalid = (!refused.is_empty()).then(|| {
        format!(
            "listener {:?} (protocol {}) cannot take route kinds {}; it takes {}",
            l.name,
            l.protocol_name,
            refused.join(", "),
            if served.is_empty() {
                "none".to_string()
            } else {
                served.join(", ")
            }
        )
    });
    Kinds { supported, invalid }
}

/// Whether routes of `kind` may attach through `l`.
pub fn accepts(l: &Listener, kind: &str) -> bool {
    resolve(l).supported.iter().any(|k| k.kind == kind)
}
