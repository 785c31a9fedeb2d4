//! HTTPRoute attachment: which listeners of a parent Gateway a route attaches to, and for which
//! hostnames.
//!
//! Part of the compiler (step 7), pure. Parents are looked up in the route's own cluster only:
//! a route can never attach to another cluster's (or tenant's) Gateway. A parent is a Gateway
//! (its own listeners) or a ListenerSet (its listeners inside the Gateway that took it, see
//! `super::listener_set`).

use super::hostname::{Intersection, belongs_to_more_specific, intersect};
use super::kinds;
use crate::model::{AllowedRoutes, Gateway, ParentKind, ParentRef};

/// The route attaches to listener `listener` (an index into the Gateway's listeners) and serves
/// `hostnames` through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub listener: usize,
    pub hostnames: Vec<String>,
}

/// Why a route is not accepted by a parent; each maps to a Gateway API reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachError {
    /// No such Gateway, sectionName or port, or none of the named listeners is valid.
    NoMatchingParent(String),
    /// The listeners' allowedRoutes exclude the route's namespace.
    NotAllowedByListeners(String),
    /// No hostname in common (or no hostname at all on either side).
    NoMatchingListenerHostname(String),
}

impl AttachError {
    /// The Gateway API reason of the route's Accepted=False condition.
    pub fn reason(&self) -> &'static str {
        match self {
            AttachError::NoMatchingParent(_) => "NoMatchingParent",
            AttachError::NotAllowedByListeners(_) => "NotAllowedByListeners",
            AttachError::NoMatchingListenerHostname(_) => "NoMatchingListenerHostname",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            AttachError::NoMatchingParent(m)
            | AttachError::NotAllowedByListeners(m)
            | AttachError::NoMatchingListenerHostname(m) => m,
        }
    }
}

/// The message for a route and listener that both leave the hostname open.
pub const BOTH_EMPTY_MESSAGE: &str = "set spec.hostnames on the HTTPRoute or a hostname on the listener: the data plane is shared by many tenants (a Gateway gets an address of its own, where a listener and a route without hostnames serve every host, when the hub operator configures addressPools)";

fn allows(allowed: &AllowedRoutes, gateway_ns: &str, route_ns: &str) -> bool {
    match allowed {
        AllowedRoutes::Same => gateway_ns == route_ns,
        AllowedRoutes::All => true,
        AllowedRoutes::Namespaces(set) => set.contains(route_ns),
    }
}

/// Attach a route (of `route_kind`, namespace `route_ns`, `route_hostnames`) to `parent`.
/// `gateway` is the (merged) Gateway the parent reaches if it exists in the route's cluster,
/// `scope` the range of its listeners the parent names (all its own for a Gateway, the
/// ListenerSet's for a ListenerSet), `valid[i]` whether its listener `i` is served.
pub fn attach(
    route_kind: &str,
    route_ns: &str,
    route_hostnames: &[String],
    parent: &ParentRef,
    gateway: Option<&Gateway>,
    scope: std::ops::Range<usize>,
    valid: &[bool],
) -> Result<Vec<Attachment>, AttachError> {
    attach_with(
        route_kind,
        route_ns,
        route_hostnames,
        parent,
        gateway,
        scope,
        valid,
        false,
    )
}

/// [`attach`] to a Gateway served on its own address (`super::own_address`): a listener and a
/// route that both leave the hostname open attach for every host, as the hostname `*`.
pub fn attach_every_host(
    route_kind: &str,
    route_ns: &str,
    route_hostnames: &[String],
    parent: &ParentRef,
    gateway: Option<&Gateway>,
    scope: std::ops::Range<usize>,
    valid: &[bool],
) -> Result<Vec<Attachment>, AttachError> {
    attach_with(
        route_kind,
        route_ns,
        route_hostnames,
        parent,
        gateway,
        scope,
        valid,
        true,
    )
}

#[allow(clippy::too_many_arguments)]
fn attach_with(
    route_kind: &str,
    route_ns: &str,
    route_hostnames: &[String],
    parent: &ParentRef,
    gateway: Option<&Gateway>,
    scope: std::ops::Range<usize>,
    valid: &[bool],
    every_host: bool,
) -> Result<Vec<Attachment>, AttachError> {
    let Some(gw) = gateway else {
        return Err(AttachError::NoMatchingParent(match parent.kind {
            ParentKind::Gateway => format!(
                "Gateway {}/{} does not exist in this cluster or is not of a fleetgate class",
                parent.namespace, parent.name
            ),
            ParentKind::ListenerSet => format!(
                "ListenerSet {}/{} does not exist in this cluster or its Gateway does not take it; see the ListenerSet's status",
                parent.namespace, parent.name
            ),
        }));
    };
    let kind = parent.kind.as_str();
    let named: Vec<usize> = gw
        .listeners
        .iter()
        .enumerate()
        .filter(|(i, _)| scope.contains(i))
        .filter(|(_, l)| parent.section_name.as_ref().is_none_or(|s| *s == l.name))
        .filter(|(_, l)| parent.port.is_none_or(|p| p == l.port))
        .map(|(i, _)| i)
        .collect();
    if named.is_empty() {
        return Err(AttachError::NoMatchingParent(format!(
            "{kind} {}/{} has no listener matching sectionName {:?} and port {:?}",
            parent.namespace, parent.name, parent.section_name, parent.port
        )));
    }
    let served: Vec<usize> = named
        .into_iter()
        .filter(|&i| valid.get(i).copied().unwrap_or(false))
        .collect();
    if served.is_empty() {
        return Err(AttachError::NoMatchingParent(format!(
            "no matching listener of {kind} {}/{} is accepted; see the {kind}'s listener conditions",
            parent.namespace, parent.name
        )));
    }
    let allowed: Vec<usize> = served
        .into_iter()
        .filter(|&i| {
            allows(
                &gw.listeners[i].allowed_routes,
                &gw.meta.namespace,
                route_ns,
            )
        })
        .collect();
    if allowed.is_empty() {
        return Err(AttachError::NotAllowedByListeners(format!(
            "the listeners' allowedRoutes of {kind} {}/{} do not admit routes from namespace {route_ns}",
            parent.namespace, parent.name
        )));
    }
    let allowed: Vec<usize> = allowed
        .into_iter()
        .filter(|&i| kinds::accepts(&gw.listeners[i], route_kind))
        .collect();
    if allowed.is_empty() {
        return Err(AttachError::NotAllowedByListeners(format!(
            "the listeners' allowedRoutes.kinds of {kind} {}/{} do not include {route_kind}",
            parent.namespace, parent.name
        )));
    }
    let mut out = Vec::new();
    let mut both_empty = false;
    for i in allowed {
        match intersect(gw.listeners[i].hostname.as_deref(), route_hostnames) {
            Intersection::Hosts(hostnames) => out.push(Attachment {
                listener: i,
                hostnames,
            }),
            Intersection::BothEmpty if every_host => out.push(Attachment {
                listener: i,
                hostnames: vec!["*".to_string()],
            }),
            Intersection::BothEmpty => both_empty = true,
            Intersection::Disjoint => {}
        }
    }
    isolate(gw, valid, &mut out);
    if out.is_empty() {
        let msg = if both_empty {
            BOTH_EMPTY_MESSAGE.to_string()
        } else {
            format!(
                "no hostname of the route matches a listener hostname of {kind} {}/{}",
                parent.namespace, parent.name
            )
        };
        return Err(AttachError::NoMatchingListenerHostname(msg));
    }
    Ok(out)
}

/// Listener isolation (`GatewayHTTPListenerIsolation`): drops from each attachment the
/// hostnames that a more specific served listener on the same port also matches, so a request
/// never reaches the routes of a less specific listener. The route stays attached.
fn isolate(gw: &Gateway, valid: &[bool], out: &mut [Attachment]) {
    for a in out.iter_mut() {
        let own = &gw.listeners[a.listener];
        let others = gw
            .listeners
            .iter()
            .enumerate()
            .filter(|(j, l)| {
                *j != a.listener && l.port == own.port && valid.get(*j).copied().unwrap_or(false)
            })
            .map(|(_, l)| l.hostname.as_deref());
        a.hostnames
            .retain(|h| !belongs_to_more_specific(own.hostname.as_deref(), h, others.clone()));
    }
}
