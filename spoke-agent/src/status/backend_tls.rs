//! BackendTLSPolicy (gateway.networking.k8s.io/v1): fleetgate does not originate TLS to
//! backends yet, so instead of ignoring a policy it says so on it. Every fleetgate Gateway whose
//! HTTPRoutes or GRPCRoutes reach a Service the policy targets becomes an ancestor in the policy's
//! `status.ancestors`, with `Accepted=False` (reason `Invalid`) saying that the data plane
//! connects to that Service in plaintext. Entries other controllers wrote are kept as they are:
//! the list is atomic, so the agent writes it whole.
//!
//! Pure: [`policy_writes`] decides from the cluster snapshot; `status::run_writer` writes.

use std::collections::BTreeSet;

use gateway_api::backendtlspolicies::{
    BackendTlsPolicy, BackendTlsPolicyStatus, BackendTlsPolicyStatusAncestors,
    BackendTlsPolicyStatusAncestorsAncestorRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::claim::{CONTROLLER_NAME, ns_name};
use crate::crd::GATEWAY_GROUP;
use crate::state::ClusterState;

use super::build::StatusWrite;

/// The reason of the `Accepted=False` condition on each fleetgate ancestor.
pub const REASON: &str = "Invalid";

/// The Gateway API allows at most this many ancestors per policy.
const MAX_ANCESTORS: usize = 16;

/// (group, kind, namespace, name) of a reference, as the route wrote it.
type Ref<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

/// One reference's fields, borrowed.
fn as_ref<'a>(
    group: &'a Option<String>,
    kind: &'a Option<String>,
    ns: &'a Option<String>,
    name: &'a str,
) -> Ref<'a> {
    (group.as_deref(), kind.as_deref(), ns.as_deref(), name)
}

/// Whether one of `backends` of a route in `route_ns` is Service `namespace/service`.
fn reaches<'a>(
    route_ns: &str,
    mut backends: impl Iterator<Item = Ref<'a>>,
    namespace: &str,
    service: &str,
) -> bool {
    backends.any(|(group, kind, ns, name)| {
        group.unwrap_or("").is_empty()
            && kind.unwrap_or("Service") == "Service"
            && ns.unwrap_or(route_ns) == namespace
            && name == service
    })
}

/// The Gateways among `parents` of a route in `route_ns`, by (namespace, name).
fn parent_gateways<'a>(
    route_ns: &'a str,
    parents: impl Iterator<Item = Ref<'a>> + 'a,
) -> impl Iterator<Item = (String, String)> + 'a {
    parents
        .filter(|(group, kind, _, _)| {
            group.is_none_or(|g| g == GATEWAY_GROUP) && kind.is_none_or(|k| k == "Gateway")
        })
        .map(move |(_, _, ns, name)| (ns.unwrap_or(route_ns).to_string(), name.to_string()))
}

/// The fleetgate Gateways (of a class in `claimed`) whose HTTPRoutes or GRPCRoutes reach
/// Service `namespace/service`.
pub fn gateways_reaching(
    state: &ClusterState,
    claimed: &BTreeSet<String>,
    namespace: &str,
    service: &str,
) -> BTreeSet<(String, String)> {
    let ours: BTreeSet<(String, String)> = state
        .gateways
        .iter()
        .filter(|g| claimed.contains(&g.spec.gateway_class_name))
        .filter_map(|g| ns_name(&g.metadata))
        .collect();
    // Each route as (its namespace, its backendRefs, its parentRefs). HTTPRoute and GRPCRoute
    // have the same shape in distinct generated types, hence a macro over the field names.
    macro_rules! route_refs {
        ($routes:expr) => {
            $routes.iter().filter_map(|r| {
                let backends: Vec<Ref<'_>> = r
                    .spec
                    .rules
                    .iter()
                    .flatten()
                    .flat_map(|rule| rule.backend_refs.iter().flatten())
                    .map(|b| as_ref(&b.group, &b.kind, &b.namespace, &b.name))
                    .collect();
                let parents: Vec<Ref<'_>> = r
                    .spec
                    .parent_refs
                    .iter()
                    .flatten()
                    .map(|p| as_ref(&p.group, &p.kind, &p.namespace, &p.name))
                    .collect();
                Some((r.metadata.namespace.as_deref()?, backends, parents))
            })
        };
    }
    let http = route_refs!(state.http_routes);
    let grpc = route_refs!(state.grpc_routes);
    let mut out = BTreeSet::new();
    for (route_ns, backends, parents) in http.chain(grpc) {
        if reaches(route_ns, backends.into_iter(), namespace, service) {
            out.extend(parent_gateways(route_ns, parents.into_iter()).filter(|g| ours.contains(g)));
        }
    }
    out
}

/// What the tenant reads on the policy for one fleetgate Gateway.
fn message(gateway: &(String, String), services: &[String]) -> String {
    format!(
        "fleetgate does not implement BackendTLSPolicy yet: Gateway {}/{} connects to Service {} in plaintext, whatever this policy says; serve the backend without TLS behind the Gateway, or remove the policy",
        gateway.0,
        gateway.1,
        services.join(", ")
    )
}

/// The status the policy should have: the other controllers' ancestors as they are, then one
/// entry per fleetgate Gateway whose routes reach a targeted Service. `None` when nothing changes.
pub fn desired_status(
    policy: &BackendTlsPolicy,
    state: &ClusterState,
    claimed: &BTreeSet<String>,
    now: &Time,
) -> Option<BackendTlsPolicyStatus> {
    let namespace = policy.metadata.namespace.as_deref()?;
    let services: Vec<String> = policy
        .spec
        .target_refs
        .iter()
        .filter(|t| t.group.is_empty() && t.kind == "Service")
        .map(|t| t.name.clone())
        .collect();
    let mut reaching: std::collections::BTreeMap<(String, String), Vec<String>> =
        Default::default();
    for s in &services {
        for g in gateways_reaching(state, claimed, namespace, s) {
            reaching.entry(g).or_default().push(s.clone());
        }
    }
    let current = policy
        .status
        .as_ref()
        .map(|s| s.ancestors.clone())
        .unwrap_or_default();
    let mut ancestors: Vec<BackendTlsPolicyStatusAncestors> = current
        .iter()
        .filter(|a| a.controller_name != CONTROLLER_NAME)
        .cloned()
        .collect();
    let room = MAX_ANCESTORS.saturating_sub(ancestors.len());
    for (gateway, services) in reaching.into_iter().take(room) {
        let message = message(&gateway, &services);
        // The previous transition time stays while the condition says the same.
        let since = current
            .iter()
            .filter(|a| a.controller_name == CONTROLLER_NAME)
            .filter(|a| {
                a.ancestor_ref.name == gateway.1
                    && a.ancestor_ref.namespace.as_deref() == Some(gateway.0.as_str())
            })
            .flat_map(|a| a.conditions.iter())
            .find(|c| c.type_ == "Accepted" && c.status == "False" && c.reason == REASON)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        ancestors.push(BackendTlsPolicyStatusAncestors {
            ancestor_ref: BackendTlsPolicyStatusAncestorsAncestorRef {
                group: Some(GATEWAY_GROUP.to_string()),
                kind: Some("Gateway".to_string()),
                name: gateway.1.clone(),
                namespace: Some(gateway.0.clone()),
                ..Default::default()
            },
            conditions: vec![Condition {
                type_: "Accepted".into(),
                status: "False".into(),
                reason: REASON.into(),
                message,
                observed_generation: policy.metadata.generation,
                last_transition_time: since,
            }],
            controller_name: CONTROLLER_NAME.to_string(),
        });
    }
    if ancestors == current {
        return None;
    }
    Some(BackendTlsPolicyStatus { ancestors })
}

/// The writes that bring every BackendTLSPolicy to its desired status.
pub fn policy_writes(
    state: &ClusterState,
    claimed: &BTreeSet<String>,
    now: &Time,
) -> Vec<StatusWrite> {
    state
        .backend_tls_policies
        .iter()
        .filter_map(|p| {
            let (namespace, name) = ns_name(&p.metadata)?;
            let status = desired_status(p, state, claimed, now)?;
            Some(StatusWrite::BackendTlsPolicy {
                namespace,
                name,
                status,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(yaml: &str) -> ClusterState {
        crate::manifests::parse_file(yaml).expect("test manifests parse")
    }

    const CLASS_AND_ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: fleetgate}
spec: {controllerName: fleetgate.dev/hub}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  gatewayClassName: fleetgate
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: theirs, namespace: default}
spec:
  gatewayClassName: other
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: web}, {name: theirs}]
  rules: [{backendRefs: [{name: secure, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: plain, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: plain, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: tls, namespace: default, generation: 3}
spec:
  targetRefs: [{group: "", kind: Service, name: secure}]
  validation: {hostname: secure.example, wellKnownCACertificates: System}
"#;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    #[test]
    fn a_policy_on_a_service_a_fleetgate_gateway_reaches_says_it_is_not_implemented() {
        let state = objects(CLASS_AND_ROUTE);
        let claimed = crate::claim::claimed_classes(&state);
        let writes = policy_writes(&state, &claimed, &now());
        assert_eq!(writes.len(), 1);
        let StatusWrite::BackendTlsPolicy { status, name, .. } = &writes[0] else {
            panic!("{writes:?}");
        };
        assert_eq!(name, "tls");
        // Only fleetgate's Gateway, not the other controller's.
        assert_eq!(status.ancestors.len(), 1);
        let a = &status.ancestors[0];
        assert_eq!(a.controller_name, CONTROLLER_NAME);
        assert_eq!(a.ancestor_ref.name, "web");
        let c = &a.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Accepted", "False", REASON)
        );
        assert_eq!(c.observed_generation, Some(3));
        assert!(
            c.message.contains("Service secure in plaintext"),
            "{}",
            c.message
        );
    }

    #[test]
    fn other_controllers_entries_are_kept_and_an_unchanged_status_is_not_written_again() {
        let mut state = objects(CLASS_AND_ROUTE);
        let claimed = crate::claim::claimed_classes(&state);
        let theirs = BackendTlsPolicyStatusAncestors {
            ancestor_ref: BackendTlsPolicyStatusAncestorsAncestorRef {
                name: "theirs".into(),
                ..Default::default()
            },
            conditions: vec![],
            controller_name: "example.com/other".into(),
        };
        state.backend_tls_policies[0].status = Some(BackendTlsPolicyStatus {
            ancestors: vec![theirs.clone()],
        });
        let status = desired_status(&state.backend_tls_policies[0], &state, &claimed, &now())
            .expect("fleetgate's entry is added");
        assert_eq!(status.ancestors[0], theirs);
        assert_eq!(status.ancestors.len(), 2);
        // Written once, the same status is not planned again (even at a later time).
        state.backend_tls_policies[0].status = Some(status);
        let later = Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap());
        assert_eq!(
            desired_status(&state.backend_tls_policies[0], &state, &claimed, &later),
            None
        );
    }

    #[test]
    fn a_policy_no_fleetgate_gateway_reaches_gets_no_entry_and_a_stale_one_is_removed() {
        let mut state = objects(&CLASS_AND_ROUTE.replace("name: secure}", "name: elsewhere}"));
        let claimed = crate::claim::claimed_classes(&state);
        assert!(policy_writes(&state, &claimed, &now()).is_empty());
        // An entry fleetgate wrote before the route changed goes away.
        let fleetgate = BackendTlsPolicyStatusAncestors {
            ancestor_ref: BackendTlsPolicyStatusAncestorsAncestorRef {
                name: "web".into(),
                ..Default::default()
            },
            conditions: vec![],
            controller_name: CONTROLLER_NAME.into(),
        };
        state.backend_tls_policies[0].status = Some(BackendTlsPolicyStatus {
            ancestors: vec![fleetgate],
        });
        let status = desired_status(&state.backend_tls_policies[0], &state, &claimed, &now())
            .expect("the stale entry is removed");
        assert!(status.ancestors.is_empty());
    }
}
