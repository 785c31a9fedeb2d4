//! Gateway listeners against the shared data plane: which ones fleetgate can serve, and the
//! Gateway's status.
//!
//! Part of the compiler (step 7). A tenant listener is served when its protocol is supported
//! (HTTP in this version) and its port is one the data plane publishes (`dataPlane.listeners`).

use crate::config::{DataPlane, DataPlaneListener};
use crate::model::{Condition, Gateway, Listener, ListenerStatus, ObjectStatus, Protocol};

/// Why a tenant listener is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerProblem {
    /// Unknown protocol, or one this version does not serve yet.
    UnsupportedProtocol(String),
    /// The port is not one of the data plane's published ports.
    PortUnavailable(String),
}

/// The data-plane listener a tenant listener attaches to, or why it cannot.
pub fn check<'a>(
    l: &Listener,
    dp: &'a DataPlane,
) -> Result<&'a DataPlaneListener, ListenerProblem> {
    match l.protocol {
        Some(Protocol::Http) => {}
        Some(_) => {
            return Err(ListenerProblem::UnsupportedProtocol(format!(
                "protocol {} is not supported by fleetgate yet; use HTTP",
                l.protocol_name
            )));
        }
        None => {
            return Err(ListenerProblem::UnsupportedProtocol(format!(
                "unknown protocol {:?}; use HTTP",
                l.protocol_name
            )));
        }
    }
    dp.listeners
        .iter()
        .find(|d| d.port == l.port)
        .ok_or_else(|| {
            let ports: Vec<String> = dp.listeners.iter().map(|d| d.port.to_string()).collect();
            ListenerProblem::PortUnavailable(format!(
                "port {} is not published by the data plane; use one of: {}",
                l.port,
                ports.join(", ")
            ))
        })
}

fn listener_conditions(problem: Option<&ListenerProblem>) -> Vec<Condition> {
    let (accepted, programmed) = match problem {
        None => (
            Condition::new("Accepted", true, "Accepted", "listener accepted"),
            Condition::new("Programmed", true, "Programmed", "listener programmed"),
        ),
        Some(p) => {
            let (reason, msg) = match p {
                ListenerProblem::UnsupportedProtocol(m) => ("UnsupportedProtocol", m),
                ListenerProblem::PortUnavailable(m) => ("PortUnavailable", m),
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
            conditions: listener_conditions(problems.get(i).and_then(|p| p.as_ref())),
        })
        .collect();
    let any_valid = problems.iter().any(|p| p.is_none()) && !problems.is_empty();
    let (conditions, addresses) = if any_valid {
        (
            vec![
                Condition::new("Accepted", true, "Accepted", "gateway accepted"),
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
    }
}
