//! Claim: which objects of the tenant cluster are fleetgate's. A GatewayClass is claimed when its
//! `controllerName` is [`CONTROLLER_NAME`] or the agent was told its name (`--gateway-class`,
//! e.g. `agentgateway`); a Gateway when its class is claimed; a ListenerSet
//! when its parent Gateway is sent; a route parentRef when it names a sent Gateway or
//! ListenerSet; a Service of type LoadBalancer when its class is [`LOAD_BALANCER_CLASS`] (or
//! the agent runs with `--all-load-balancers`). The Secrets the agent reads for AI backends are
//! exactly those an AgentgatewayBackend or a VirtualKey names ([`referenced_secrets`]).
//!
//! Where it sits: read by both `translate` (what is sent to the hub) and `status` (what the
//! agent writes status on), so the two always agree. Pure.

pub mod ingress;

use std::collections::BTreeSet;

use fleetgate_proto::spoke::v1::ParentRef;
use gateway_api::httproutes::HttpRouteParentRefs;
use gateway_api::listenersets::ListenerSet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::crd::{AgentgatewayBackend, GATEWAY_GROUP, VirtualKey};
use crate::state::ClusterState;

/// The GatewayClass `spec.controllerName` this agent claims.
pub const CONTROLLER_NAME: &str = "fleetgate.dev/hub";

/// Names of the GatewayClasses this agent claims: those of its controllerName, and those named
/// by `--gateway-class` ([`ClusterState::claimed_class_names`]) whatever their controllerName.
/// Only existing GatewayClasses are claimed: a Gateway of a class nobody created is nobody's,
/// as the Gateway API says.
pub fn claimed_classes(state: &ClusterState) -> BTreeSet<String> {
    state
        .gateway_classes
        .iter()
        .filter(|c| {
            c.spec.controller_name == CONTROLLER_NAME
                || c.metadata
                    .name
                    .as_ref()
                    .is_some_and(|n| state.claimed_class_names.contains(n))
        })
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

/// (namespace, name) of the Secrets the VirtualKeys `keys` name in `spec.secretRef`: always in
/// the key's own namespace.
pub fn referenced_key_secrets(keys: &[VirtualKey]) -> BTreeSet<(String, String)> {
    keys.iter()
        .filter_map(|k| {
            let ns = k.metadata.namespace.clone()?;
            let name = &k.spec.secret_ref.name;
            (!name.is_empty()).then(|| (ns, name.clone()))
        })
        .collect()
}

/// Every Secret the agent reads for keys: those AgentgatewayBackends and VirtualKeys name.
pub fn referenced_secrets(
    backends: &[AgentgatewayBackend],
    keys: &[VirtualKey],
) -> BTreeSet<(String, String)> {
    let mut out = referenced_ai_secrets(backends);
    out.extend(referenced_key_secrets(keys));
    out
}

/// (namespace, name) of the Secrets the AgentgatewayBackends `backends` name in
/// `spec.policies.auth.secretRef` or a group provider's `policies.auth.secretRef`
/// (`spec.ai.groups[].providers[]`): always in the backend's own namespace, core Secrets only
/// (a ref to another group or kind is reported by `translate` and reads nothing). The agent
/// reads these Secrets and no other for AI backends.
pub fn referenced_ai_secrets(backends: &[AgentgatewayBackend]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for b in backends {
        let Some(ns) = b.metadata.namespace.as_ref() else {
            continue;
        };
        let providers = b
            .spec
            .ai
            .iter()
            .flat_map(|ai| ai.groups.iter().flatten())
            .flat_map(|g| &g.providers)
            .map(|p| p.policies.as_ref());
        for policies in std::iter::once(b.spec.policies.as_ref()).chain(providers) {
            let Some(r) = policies
                .and_then(|p| p.auth.as_ref())
                .and_then(|a| a.secret_ref.as_ref())
            else {
                continue;
            };
            let core = r.group.as_deref().unwrap_or("").is_empty()
                && matches!(r.kind.as_deref(), None | Some("") | Some("Secret"));
            if core && !r.name.is_empty() {
                out.insert((ns.clone(), r.name.clone()));
            }
        }
    }
    out
}

/// (namespace, name) of the Gateways that are sent: those of a claimed class.
pub fn sent_gateways(
    state: &ClusterState,
    claimed: &BTreeSet<String>,
) -> BTreeSet<(String, String)> {
    state
        .gateways
        .iter()
        .filter(|g| claimed.contains(&g.spec.gateway_class_name))
        .filter_map(|g| ns_name(&g.metadata))
        .collect()
}

/// The parents routes may name that the agent sends: Gateways of claimed classes and the
/// ListenerSets whose parent is one of them, by (namespace, name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentParents {
    pub gateways: BTreeSet<(String, String)>,
    pub listener_sets: BTreeSet<(String, String)>,
}

impl SentParents {
    /// The sent Gateways and ListenerSets of `state`.
    pub fn of(state: &ClusterState, claimed: &BTreeSet<String>) -> Self {
        let gateways = sent_gateways(state, claimed);
        let listener_sets = state
            .listener_sets
            .iter()
            .filter(|s| listener_set_parent(s).is_some_and(|p| gateways.contains(&p)))
            .filter_map(|s| ns_name(&s.metadata))
            .collect();
        Self {
            gateways,
            listener_sets,
        }
    }

    fn contains(&self, p: &ParentRef) -> bool {
        let key = (p.namespace.clone(), p.name.clone());
        match p.kind.as_str() {
            "ListenerSet" => self.listener_sets.contains(&key),
            _ => self.gateways.contains(&key),
        }
    }
}

/// The parentRefs (in HTTPRoute form; every route kind's have its schema) of a route in
/// `route_ns` that point to a Gateway or ListenerSet the agent sends. A route with none is not
/// sent.
pub fn sent_parent_refs<P: std::borrow::Borrow<HttpRouteParentRefs>>(
    route_ns: &str,
    parents: impl IntoIterator<Item = P>,
    sent: &SentParents,
) -> Vec<ParentRef> {
    parents
        .into_iter()
        .filter_map(|p| parent_ref(route_ns, p.borrow()))
        .filter(|p| sent.contains(p))
        .collect()
}

/// A route's parentRef as sent to the hub, when it points to a Gateway or a ListenerSet
/// (namespace defaulted to the route's; group and kind always written out); `None` for other
/// kinds.
pub fn parent_ref(route_ns: &str, p: &HttpRouteParentRefs) -> Option<ParentRef> {
    let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = p.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || !matches!(kind, "Gateway" | "ListenerSet") {
        return None;
    }
    Some(ParentRef {
        namespace: p.namespace.clone().unwrap_or_else(|| route_ns.to_string()),
        name: p.name.clone(),
        section_name: p.section_name.clone().unwrap_or_default(),
        port: p.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        group: GATEWAY_GROUP.to_string(),
        kind: kind.to_string(),
    })
}

/// The Gateway (namespace, name) a ListenerSet's parentRef names; `None` when it names another
/// kind.
pub fn listener_set_parent(s: &ListenerSet) -> Option<(String, String)> {
    let p = &s.spec.parent_ref;
    let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = p.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let ns = p
        .namespace
        .clone()
        .or_else(|| s.metadata.namespace.clone())?;
    Some((ns, p.name.clone()))
}

/// The `spec.loadBalancerClass` fleetgate serves.
pub const LOAD_BALANCER_CLASS: &str = "fleetgate.dev/hub";

/// Whether the agent sends `svc` to the hub.
pub fn is_claimed(svc: &Service, all_load_balancers: bool) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer")
        && (all_load_balancers || spec.load_balancer_class.as_deref() == Some(LOAD_BALANCER_CLASS))
}

/// (namespace, name) of a namespaced object.
pub fn ns_name(m: &ObjectMeta) -> Option<(String, String)> {
    Some((m.namespace.clone()?, m.name.clone()?))
}

/// A parametersRef (GatewayClass or Gateway infrastructure) as status messages name it:
/// `group/kind name` (`core` for the core group). fleetgate takes no parameters: a claimed
/// class with one is not accepted (`status::build`), and its Gateways are refused by the hub.
pub fn parameters_ref(group: &str, kind: &str, name: &str) -> String {
    let group = if group.is_empty() { "core" } else { group };
    format!("{group}/{kind} {name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::agentgateway::{Auth, Policies, SecretRef};
    use crate::test_support::{gateway_class, meta};

    #[test]
    fn gateway_classes_are_claimed_by_controller_or_by_name() {
        let mut state = ClusterState {
            gateway_classes: vec![
                gateway_class("fleetgate", CONTROLLER_NAME),
                gateway_class("agentgateway", "agentgateway.dev/agentgateway"),
                gateway_class("other", "example.com/other"),
            ],
            ..Default::default()
        };
        let names = |s: &ClusterState| claimed_classes(s).into_iter().collect::<Vec<_>>();
        assert_eq!(names(&state), ["fleetgate"], "by controllerName only");
        state.claimed_class_names = vec!["agentgateway".into(), "missing".into()];
        assert_eq!(
            names(&state),
            ["agentgateway", "fleetgate"],
            "named classes that exist, whatever their controller"
        );
    }

    #[test]
    fn only_secrets_a_backend_names_in_its_namespace_are_read() {
        let backend = |ns: &str, name: &str, r: Option<SecretRef>| AgentgatewayBackend {
            metadata: meta(Some(ns), name),
            spec: crate::crd::agentgateway::AgentgatewayBackendSpec {
                policies: Some(Policies {
                    auth: Some(Auth {
                        secret_ref: r,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            status: None,
        };
        let sref = |name: &str, group: Option<&str>, kind: Option<&str>| SecretRef {
            name: name.into(),
            group: group.map(str::to_string),
            kind: kind.map(str::to_string),
            ..Default::default()
        };
        let backends = vec![
            backend("llm", "a", Some(sref("llm-secret", None, None))),
            backend(
                "llm",
                "b",
                Some(sref("llm-secret", Some(""), Some("Secret"))),
            ),
            backend("team", "c", Some(sref("team-key", None, None))),
            backend(
                "team",
                "d",
                Some(sref("vault", Some("example.com"), Some("Vault"))),
            ),
            backend("team", "e", None),
        ];
        let got: Vec<_> = referenced_ai_secrets(&backends).into_iter().collect();
        assert_eq!(
            got,
            [
                ("llm".to_string(), "llm-secret".to_string()),
                ("team".to_string(), "team-key".to_string())
            ]
        );
        // A group provider's own secretRef is read too, in the backend's namespace.
        let groups: AgentgatewayBackend = serde_yaml::from_str(
            r#"
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: g, namespace: team}
spec:
  ai:
    groups:
    - providers:
      - {name: a, openai: {}, policies: {auth: {secretRef: {name: a-key}}}}
      - {name: b, openai: {}, policies: {auth: {secretRef: {name: v, group: example.com, kind: Vault}}}}
"#,
        )
        .unwrap();
        let got: Vec<_> = referenced_ai_secrets(&[groups]).into_iter().collect();
        assert_eq!(got, [("team".to_string(), "a-key".to_string())]);
    }
}
