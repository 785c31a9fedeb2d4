//! Gateway listeners against the shared data plane: which ones fleetgate can serve, and the
//! Gateway's status.
//!
//! Part of the compiler (step 7). A tenant listener is served when its protocol is supported
//! (HTTP, HTTPS, TLS passthrough), its port is one the data plane publishes
//! (`dataPlane.listeners`) with a fitting protocol (HTTP on an HTTP port; HTTPS and TLS on a TLS
//! port, where they need a hostname to be selected by SNI), and its certificateRefs resolved.

use crate::model::data_plane::{DataPlane, DataPlaneListener, DataPlaneProtocol};
use crate::model::{Condition, Gateway, Listener, ListenerStatus, ObjectStatus, Protocol, TlsMode};

/// Why a tenant listener is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerProblem {
    /// Unknown protocol, or one this version does not serve yet.
    UnsupportedProtocol(String),
    /// The port is not one of the data plane's published ports.
    PortUnavailable(String),
    /// A value fleetgate cannot serve (an HTTPS or TLS listener without a hostname).
    UnsupportedValue(String),
    /// References that did not resolve (certificateRefs): (ResolvedRefs reason, message). The
    /// listener is accepted but not programmed.
    Unresolved(String, String),
    /// The listener conflicts with another (`super::conflict`): (Conflicted reason, message).
    /// The listener stays accepted but is not programmed.
    Conflicted(&'static str, String),
    /// A Gateway served on its own address (`super::own_address`) got no (address, port) for
    /// the listener: (the allocation's reason, message). Accepted=False/PortUnavailable,
    /// Programmed=False with the allocation's reason.
    NoAddress(&'static str, String),
}

/// The data-plane listener a tenant listener attaches to, or why it cannot.
pub fn check<'a>(
    l: &Listener,
    dp: &'a DataPlane,
) -> Result<&'a DataPlaneListener, ListenerProblem> {
    let wants = match l.protocol {
        Some(Protocol::Http) => DataPlaneProtocol::Http,
        Some(Protocol::Https | Protocol::Tls) => DataPlaneProtocol::Tls,
        Some(_) => {
            return Err(ListenerProblem::UnsupportedProtocol(format!(
                "protocol {} is not supported by fleetgate yet; use HTTP, HTTPS or TLS",
                l.protocol_name
            )));
        }
        None => {
            return Err(ListenerProblem::UnsupportedProtocol(format!(
                "unknown protocol {:?}; use HTTP, HTTPS or TLS",
                l.protocol_name
            )));
        }
    };
    // Refused whatever the port: the mode or the options themselves are not supported.
    if let Some(p) = tls_terminate_refused(l).or_else(|| tls_options_refused(l)) {
        return Err(p);
    }
    let dl = dp
        .listeners
        .iter()
        .find(|d| d.port == l.port)
        .ok_or_else(|| {
            let ports: Vec<String> = dp.listeners.iter().map(|d| d.port.to_string()).collect();
            ListenerProblem::PortUnavailable(format!(
                "port {} is not published by the data plane; use one of: {}",
                l.port,
                ports.join(", ")
            ))
        })?;
    if dl.protocol != wants {
        let fits: Vec<String> = dp
            .listeners
            .iter()
            .filter(|d| d.protocol == wants)
            .map(|d| d.port.to_string())
            .collect();
        return Err(ListenerProblem::UnsupportedProtocol(format!(
            "port {} of the data plane serves {}, not {}; use one of these ports: {}",
            l.port,
            match dl.protocol {
                DataPlaneProtocol::Http => "plaintext HTTP",
                DataPlaneProtocol::Tls => "TLS (HTTPS and TLS listeners)",
            },
            l.protocol_name,
            if fits.is_empty() {
                "none (ask the hub operator)".to_string()
            } else {
                fits.join(", ")
            }
        )));
    }
    if wants == DataPlaneProtocol::Tls {
        if l.hostname.is_none() {
            return Err(ListenerProblem::UnsupportedValue(format!(
                "an {} listener on the shared data plane needs a hostname: connections are told apart by SNI; set listener.hostname",
                l.protocol_name
            )));
        }
        let Some(tls) = &l.tls else {
            return Err(ListenerProblem::UnsupportedValue(format!(
                "an {} listener needs a tls block",
                l.protocol_name
            )));
        };
        if let Some(p) = &tls.problem {
            return Err(ListenerProblem::Unresolved(
                p.reason.clone(),
                p.message.clone(),
            ));
        }
    }
    Ok(dl)
}

/// A TLS listener in `Terminate` mode: fleetgate serves TLSRoutes in passthrough only (it
/// does not claim `TLSRouteModeTerminate`), so the listener is refused alone.
pub fn tls_terminate_refused(l: &Listener) -> Option<ListenerProblem> {
    let tls = l.tls.as_ref()?;
    (l.protocol == Some(Protocol::Tls) && tls.mode == TlsMode::Terminate).then(|| {
        ListenerProblem::UnsupportedValue(
            "a TLS listener in tls.mode Terminate is not supported (TLSRoutes are served in Passthrough mode only); set tls.mode: Passthrough, or use protocol HTTPS to terminate TLS for HTTPRoutes".to_string(),
        )
    })
}

/// A listener with `tls.options`: fleetgate implements none (the TLS versions and ciphers of the
/// data plane are the operator's), so the listener is refused alone rather than served without
/// what the options ask for.
pub fn tls_options_refused(l: &Listener) -> Option<ListenerProblem> {
    let tls = l.tls.as_ref()?;
    (!tls.options.is_empty()).then(|| {
        let keys: Vec<String> = tls
            .options
            .iter()
            .take(4)
            .map(|k| format!("{:?}", k.chars().take(64).collect::<String>()))
            .collect();
        ListenerProblem::UnsupportedValue(format!(
            "tls.options {}{} {} not supported by fleetgate (it implements no TLS options; the data plane's TLS versions and ciphers are set by the hub operator); remove tls.options",
            keys.join(", "),
            if tls.options.len() > 4 { ", ..." } else { "" },
            if tls.options.len() == 1 { "is" } else { "are" },
        ))
    })
}

fn listener_conditions(problem: Option<&ListenerProblem>) -> Vec<Condition> {
    if let Some(ListenerProblem::Conflicted(reason, msg)) = problem {
        return vec![
            Condition::new("Accepted", true, "Accepted", "listener accepted"),
            Condition::new("Programmed", false, "Invalid", msg.clone()),
            Condition::new("ResolvedRefs", true, "ResolvedRefs", "references resolved"),
            Condition::new("Conflicted", true, reason, msg.clone()),
        ];
    }
    if let Some(ListenerProblem::Unresolved(reason, msg)) = problem {
        return vec![
            Condition::new("Accepted", true, "Accepted", "listener accepted"),
            Condition::new("Programmed", false, "Invalid", msg.clone()),
            Condition::new("ResolvedRefs", false, reason, msg.clone()),
            Condition::new("Conflicted", false, "NoConflicts", "no conflicts"),
        ];
    }
    if let Some(ListenerProblem::NoAddress(reason, msg)) = problem {
        return vec![
            Condition::new("Accepted", false, "PortUnavailable", msg.clone()),
            Condition::new("Programmed", false, reason, msg.clone()),
            Condition::new("ResolvedRefs", true, "ResolvedRefs", "references resolved"),
            Condition::new("Conflicted", false, "NoConflicts", "no conflicts"),
        ];
    }
    let (accepted, programmed) = match problem {
        None => (
            Condition::new("Accepted", true, "Accepted", "listener accepted"),
            Condition::new("Programmed", true, "Programmed", "listener programmed"),
        ),
        Some(p) => {
            let (reason, msg) = match p {
                ListenerProblem::UnsupportedProtocol(m) => ("UnsupportedProtocol", m),
                ListenerProblem::PortUnavailable(m) | ListenerProblem::NoAddress(_, m) => {
                    ("PortUnavailable", m)
                }
                ListenerProblem::UnsupportedValue(m) => ("UnsupportedValue", m),
                ListenerProblem::Unresolved(r, m) => (r.as_str(), m),
                ListenerProblem::Conflicted(r, m) => (*r, m),
            };
            (
                Condition::new("Accepted", false, reason, msg.clone()),
                Condition::new("Programmed", false, "Invalid", msg.clone()),
            )
        }
    };
    vec![
        accepted,
        programmed,
        Condition::new("ResolvedRefs", true, "ResolvedRefs", "references resolved"),
        Condition::new("Conflicted", false, "NoConflicts", "no conflicts"),
    ]
}

/// The `Accepted=True` condition of a Gateway that serves at least one listener: reason
/// `Accepted` when every listener is accepted, `ListenersNotValid` (still `True`, as the Gateway
/// API says) when some listener is not (`Accepted=False` in `listeners`).
pub fn accepted_gateway(listeners: &[ListenerStatus]) -> Condition {
    let refused: Vec<&str> = listeners
        .iter()
        .filter(|l| {
            l.conditions
                .iter()
                .any(|c| c.type_ == "Accepted" && !c.status)
        })
        .map(|l| l.name.as_str())
        .collect();
    if refused.is_empty() {
        Condition::new("Accepted", true, "Accepted", "gateway accepted")
    } else {
        Condition::new(
            "Accepted",
            true,
            "ListenersNotValid",
            format!(
                "gateway accepted; listener(s) {} are not (see their conditions), the others are served",
                refused.join(", ")
            ),
        )
    }
}

/// The status of a Gateway given each listener's check and the number of routes attached to it
/// (both in listener order).
pub fn gateway_status(
    gw: &Gateway,
    problems: &[Option<ListenerProblem>],
    attached: &[u32],
    dp: &DataPlane,
    key: crate::model::ObjectKey,
) -> ObjectStatus {
    let listeners: Vec<ListenerStatus> = gw
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| ListenerStatus {
            name: l.name.clone(),
            attached_routes: attached.get(i).copied().unwrap_or(0),
            conditions: {
                let mut c = listener_conditions(problems.get(i).and_then(|p| p.as_ref()));
                // Some of the listener's kinds are not served: it serves the others and says so.
                if let Some(msg) = super::kinds::resolve(l).invalid {
                    for cond in c.iter_mut().filter(|c| c.type_ == "ResolvedRefs") {
                        *cond =
                            Condition::new("ResolvedRefs", false, "InvalidRouteKinds", msg.clone());
                    }
                }
                c
            },
            supported_kinds: super::kinds::resolve(l).supported,
        })
        .collect();
    let any_valid = problems.iter().any(|p| p.is_none()) && !problems.is_empty();
    let (conditions, addresses) = if any_valid {
        (
            vec![
                accepted_gateway(&listeners),
                Condition::new(
                    "Programmed",
                    true,
                    "Programmed",
                    "programmed on the shared data plane",
                ),
            ],
            vec![dp.address.to_string()],
        )
    } else {
        let msg = "no listener is valid; see the listener conditions";
        (
            vec![
                Condition::new("Accepted", false, "ListenersNotValid", msg),
                Condition::new("Programmed", false, "Invalid", msg),
            ],
            Vec::new(),
        )
    };
    ObjectStatus {
        key,
        observed_generation: gw.meta.generation,
        conditions,
        addresses,
        listeners,
        parents: Vec::new(),
        load_balancer: Vec::new(),
        attached_listener_sets: 0,
    }
}
