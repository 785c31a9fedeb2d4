//! Which `networking.k8s.io/v1` Ingresses are fleetgate's, and the Gateway + HTTPRoutes each one
//! stands for ([`IngressShape`]).
//!
//! An IngressClass is claimed when its `spec.controller` is [`CONTROLLER_NAME`] or its name is
//! the agent's `--ingress-class` ([`ClusterState::ingress_class_name`]); only existing
//! IngressClasses are claimed, as for GatewayClasses. An Ingress is claimed when its
//! `spec.ingressClassName` (or, without one, the deprecated `kubernetes.io/ingress.class`
//! annotation) names a claimed class, or when it names no class and a claimed class carries
//! `ingressclass.kubernetes.io/is-default-class: "true"`.
//!
//! The shape is decided from the Ingress alone (and the names already taken in its namespace):
//! one Gateway `<name>.ingress` with an HTTP listener on port 80 per host (`http-<i>`) and an
//! HTTPS listener on port 443 per host that `spec.tls` covers (`https-<i>`), and one HTTPRoute
//! `<name>.ingress.<i>` per host attached to exactly those listeners; rules without a host go
//! to a listener `http` without hostname and the route `<name>.ingress.any`. `translate`
//! resolves it into intent and `status` reads the hub's verdict on it back, so both agree on
//! the names.
//!
//! Where it sits: read by `translate::ingress` and `status::ingress`. Pure.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use super::CONTROLLER_NAME;
use crate::state::ClusterState;

/// The annotation that makes an IngressClass the default for Ingresses that name no class.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The deprecated annotation that named an Ingress's class before `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The port every Ingress is served on in plaintext.
pub const HTTP_PORT: u32 = 80;
/// The port hosts listed in `spec.tls` are served on with TLS.
pub const HTTPS_PORT: u32 = 443;
/// Longest Kubernetes object name (a DNS subdomain).
const MAX_NAME: usize = 253;

/// Names of the IngressClasses this agent claims.
pub fn claimed_ingress_classes(state: &ClusterState) -> BTreeSet<String> {
    state
        .ingress_classes
        .iter()
        .filter(|c| {
            c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER_NAME)
                || c.metadata.name.as_deref() == Some(state.ingress_class_name.as_str())
        })
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

/// The class an Ingress names: `spec.ingressClassName`, else the deprecated annotation.
pub fn ingress_class_of(ing: &Ingress) -> Option<&str> {
    ing.spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLASS_ANNOTATION))
                .map(String::as_str)
        })
}

/// The Ingresses this agent translates, sorted by namespace/name.
pub fn claimed_ingresses(state: &ClusterState) -> Vec<&Ingress> {
    let claimed = claimed_ingress_classes(state);
    let default_claimed = state.ingress_classes.iter().any(|c| {
        c.metadata
            .name
            .as_ref()
            .is_some_and(|n| claimed.contains(n))
            && c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true")
    });
    let mut out: Vec<&Ingress> = state
        .ingresses
        .iter()
        .filter(|i| i.metadata.namespace.is_some() && i.metadata.name.is_some())
        .filter(|i| match ingress_class_of(i) {
            Some(c) => claimed.contains(c),
            None => default_claimed,
        })
        .collect();
    out.sort_by_key(|i| (i.metadata.namespace.clone(), i.metadata.name.clone()));
    out
}

/// The name of the Gateway an Ingress stands for.
pub fn gateway_name(ingress: &str) -> String {
    format!("{ingress}.ingress")
}

/// How one Ingress path matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Exact,
    /// `Prefix`, and `ImplementationSpecific` (treated as Prefix).
    Prefix,
}

/// One path of an Ingress rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapePath {
    pub kind: PathKind,
    pub value: String,
    pub backend: IngressBackend,
}

/// One listener of the Gateway an Ingress stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeListener {
    pub name: String,
    /// `HTTP` or `HTTPS`.
    pub protocol: &'static str,
    pub port: u32,
    /// `None`: the listener of the rules without a host.
    pub hostname: Option<String>,
    /// HTTPS: the `spec.tls` secretNames that cover the host, in order.
    pub secrets: Vec<String>,
}

/// One HTTPRoute an Ingress stands for: the paths of one host (or of the rules without host).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeRoute {
    pub name: String,
    pub hostname: Option<String>,
    /// The listeners (sectionNames of the Gateway) the route attaches to.
    pub listeners: Vec<String>,
    /// In the order written (the Gateway API's precedence orders them, as Ingress asks:
    /// longest path first, Exact before Prefix).
    pub paths: Vec<ShapePath>,
    /// `spec.defaultBackend`, served as a last rule `PathPrefix /` when no path is `/` already.
    pub default_backend: Option<IngressBackend>,
}

/// The Gateway and HTTPRoutes an Ingress stands for, and what of it could not be expressed.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressShape {
    pub gateway: String,
    pub listeners: Vec<ShapeListener>,
    pub routes: Vec<ShapeRoute>,
    /// Parts of the Ingress that are not served, each saying what to change.
    pub dropped: Vec<String>,
}

/// Why an Ingress is not translated at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngressRefusal {
    /// The names the Ingress would take are longer than a Kubernetes name may be.
    #[error(
        "the Ingress name is too long: fleetgate serves it as Gateway {0:?}, which must be at most 253 characters; use a shorter name"
    )]
    NameTooLong(String),
    /// A Gateway or HTTPRoute of the tenant already has a name the Ingress would take.
    #[error(
        "{kind} {namespace}/{name} already exists, and fleetgate serves this Ingress under that name; rename the Ingress or the {kind}"
    )]
    NameTaken {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// Nothing to serve: no rule with paths and no defaultBackend.
    #[error("the Ingress has no rule with paths and no defaultBackend: nothing to serve")]
    Empty,
}

/// Whether TLS host `pattern` (exact, or `*.suffix`) covers `host`.
fn tls_covers(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .and_then(|h| h.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => false,
    }
}

/// The Gateway + HTTPRoutes Ingress `ing` stands for in `state` (whose Gateways and HTTPRoutes
/// must not already use the names).
pub fn shape(ing: &Ingress, state: &ClusterState) -> Result<IngressShape, IngressRefusal> {
    let name = ing.metadata.name.clone().unwrap_or_default();
    let ns = ing.metadata.namespace.clone().unwrap_or_default();
    let gateway = gateway_name(&name);
    if gateway.len() + ".any".len() > MAX_NAME {
        return Err(IngressRefusal::NameTooLong(gateway));
    }
    let spec = ing.spec.clone().unwrap_or_default();
    let mut dropped = Vec::new();
    // Hosts in the order first written; `None` is the rules without a host.
    let mut hosts: Vec<(Option<String>, Vec<ShapePath>)> = Vec::new();
    for rule in spec.rules.iter().flatten() {
        let host = rule.host.clone().filter(|h| !h.is_empty());
        let i = match hosts.iter().position(|(h, _)| *h == host) {
            Some(i) => i,
            None => {
                hosts.push((host, Vec::new()));
                hosts.len() - 1
            }
        };
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            let kind = match p.path_type.as_str() {
                "Exact" => PathKind::Exact,
                _ => PathKind::Prefix,
            };
            let value = p.path.clone().filter(|v| !v.is_empty());
            let value = match (kind, value) {
                (_, Some(v)) => v,
                (PathKind::Prefix, None) => "/".to_string(),
                (PathKind::Exact, None) => {
                    dropped.push("an Exact path without a value is not served; set path".into());
                    continue;
                }
            };
            hosts[i].1.push(ShapePath {
                kind,
                value,
                backend: p.backend.clone(),
            });
        }
    }
    let default_backend = spec.default_backend.clone();
    // With a defaultBackend, hosts listed only in spec.tls are served too (all to the default).
    if default_backend.is_some() {
        for h in spec
            .tls
            .iter()
            .flatten()
            .flat_map(|t| t.hosts.iter().flatten())
        {
            let h = Some(h.clone()).filter(|h| !h.is_empty());
            if h.is_some() && !hosts.iter().any(|(x, _)| *x == h) {
                hosts.push((h, Vec::new()));
            }
        }
        // Only a defaultBackend: it serves every host (on an address of its own, see docs).
        if hosts.is_empty() {
            hosts.push((None, Vec::new()));
        }
    }
    hosts.retain(|(h, paths)| {
        let keep = !paths.is_empty() || default_backend.is_some();
        if !keep {
            dropped.push(format!(
                "rule for host {} has no paths and the Ingress has no defaultBackend: nothing to serve for it",
                h.as_deref().unwrap_or("(none)")
            ));
        }
        keep
    });
    if hosts.is_empty() {
        return Err(IngressRefusal::Empty);
    }
    for t in spec.tls.iter().flatten() {
        let secret = t.secret_name.clone().unwrap_or_default();
        if t.hosts.as_ref().is_none_or(|h| h.is_empty()) {
            dropped.push(format!(
                "spec.tls entry with secretName {secret:?} lists no hosts; fleetgate serves a certificate only for the hosts listed (certificates without a host name are not supported)"
            ));
        } else if secret.is_empty() {
            dropped.push(format!(
                "spec.tls entry for {} has no secretName; name the kubernetes.io/tls Secret to serve",
                t.hosts.iter().flatten().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let mut listeners = Vec::new();
    let mut routes = Vec::new();
    for (i, (host, paths)) in hosts.into_iter().enumerate() {
        let Some(h) = host else {
            listeners.push(ShapeListener {
                name: "http".into(),
                protocol: "HTTP",
                port: HTTP_PORT,
                hostname: None,
                secrets: Vec::new(),
            });
            routes.push(ShapeRoute {
                name: format!("{gateway}.any"),
                hostname: None,
                listeners: vec!["http".into()],
                paths,
                default_backend: default_backend.clone(),
            });
            continue;
        };
        let mut secrets: Vec<String> = Vec::new();
        for t in spec.tls.iter().flatten() {
            let Some(secret) = t.secret_name.clone().filter(|s| !s.is_empty()) else {
                continue;
            };
            if t.hosts.iter().flatten().any(|p| tls_covers(p, &h)) && !secrets.contains(&secret) {
                secrets.push(secret);
            }
        }
        let mut route_listeners = vec![format!("http-{i}")];
        listeners.push(ShapeListener {
            name: format!("http-{i}"),
            protocol: "HTTP",
            port: HTTP_PORT,
            hostname: Some(h.clone()),
            secrets: Vec::new(),
        });
        if !secrets.is_empty() {
            route_listeners.push(format!("https-{i}"));
            listeners.push(ShapeListener {
                name: format!("https-{i}"),
                protocol: "HTTPS",
                port: HTTPS_PORT,
                hostname: Some(h.clone()),
                secrets,
            });
        }
        routes.push(ShapeRoute {
            name: format!("{gateway}.{i}"),
            hostname: Some(h),
            listeners: route_listeners,
            paths,
            default_backend: default_backend.clone(),
        });
    }
    let taken = |kind: &'static str, name: &str| IngressRefusal::NameTaken {
        kind,
        namespace: ns.clone(),
        name: name.to_string(),
    };
    let same = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, name: &str| {
        m.namespace.as_deref() == Some(ns.as_str()) && m.name.as_deref() == Some(name)
    };
    if state.gateways.iter().any(|g| same(&g.metadata, &gateway)) {
        return Err(taken("Gateway", &gateway));
    }
    for r in &routes {
        if state.http_routes.iter().any(|x| same(&x.metadata, &r.name)) {
            return Err(taken("HTTPRoute", &r.name));
        }
    }
    Ok(IngressShape {
        gateway,
        listeners,
        routes,
        dropped,
    })
}

#[cfg(test)]
mod tests;
