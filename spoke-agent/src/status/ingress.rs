//! Ingress status: the hub's verdict on the Gateway and HTTPRoutes an Ingress stands for ->
//! the Ingress's `status.loadBalancer.ingress` and, since an Ingress has no conditions, a
//! report of what is refused (a Warning Event on the Ingress and a log line, as for
//! LoadBalancer Services that get no address).
//!
//! [`plan`] is pure: for every claimed Ingress it gives the load balancer status (the addresses
//! of its Gateway, as the hub fills Gateway `status.addresses`) and the problems: the agent's
//! own refusal ([`crate::claim::ingress::IngressRefusal`]) or the parts it could not express,
//! every backend it could not resolve (all of them: the hub's route condition names only the
//! first), then every `False` condition the hub set on the Gateway, its listeners and the
//! routes' parents (but their `ResolvedRefs`, which only repeats the agent's backends). [`run_writer`] applies the status (server-side apply of `ingresses/status`) when it
//! differs and reports problems when they change.

use std::collections::BTreeMap;
use std::time::Duration;

use fleetgate_proto::spoke::v1::{Kind, ObjectStatus, Status};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::api::networking::v1::{
    Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::FIELD_MANAGER;
use crate::claim::ingress::{IngressShape, claimed_ingresses, shape};
use crate::config::EndpointMode;
use crate::resolve::Index;
use crate::resolve::ingress::resolve_ingress_backend;
use crate::state::ClusterState;

/// What the agent wants on one claimed Ingress.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressReport {
    pub namespace: String,
    pub name: String,
    /// `None` until the hub has said anything about the Ingress's Gateway.
    pub load_balancer: Option<IngressLoadBalancerStatus>,
    /// What is refused, each saying what to change; empty when all of it is served.
    pub problems: Vec<String>,
    /// The load balancer status the Ingress has now.
    pub current: Option<IngressLoadBalancerStatus>,
}

impl IngressReport {
    /// Whether `status.loadBalancer` must be written.
    pub fn needs_write(&self) -> bool {
        match &self.load_balancer {
            None => false,
            Some(want) => normalized(self.current.as_ref()) != normalized(Some(want)),
        }
    }
}

/// Ingresses without an address have `loadBalancer: {}` or `ingress: []`: both mean none.
fn normalized(s: Option<&IngressLoadBalancerStatus>) -> Vec<IngressLoadBalancerIngress> {
    s.and_then(|s| s.ingress.clone()).unwrap_or_default()
}

/// The reports of every claimed Ingress, by the hub's status `hub`; backends are resolved with
/// endpoint mode `mode`, as the translation did.
pub fn plan(state: &ClusterState, hub: Option<&Status>, mode: EndpointMode) -> Vec<IngressReport> {
    let index = Index::new(state, mode);
    let by_key: BTreeMap<(i32, &str, &str), &ObjectStatus> = hub
        .iter()
        .flat_map(|h| &h.objects)
        .filter_map(|o| {
            let r = o.r#ref.as_ref()?;
            Some(((r.kind, r.namespace.as_str(), r.name.as_str()), o))
        })
        .collect();
    claimed_ingresses(state)
        .into_iter()
        .map(|ing| {
            let namespace = ing.metadata.namespace.clone().unwrap_or_default();
            let name = ing.metadata.name.clone().unwrap_or_default();
            let current = ing.status.as_ref().and_then(|s| s.load_balancer.clone());
            let (load_balancer, problems) = match shape(ing, state) {
                Err(why) => (
                    Some(IngressLoadBalancerStatus {
                        ingress: Some(Vec::new()),
                    }),
                    vec![why.to_string()],
                ),
                Ok(s) => {
                    let find = |kind: Kind, n: &str| {
                        by_key.get(&(kind as i32, namespace.as_str(), n)).copied()
                    };
                    let (lb, mut problems) = hub_verdict(&s, &find);
                    problems.splice(0..0, backend_problems(&namespace, &s, state, &index));
                    (lb, problems)
                }
            };
            IngressReport {
                namespace,
                name,
                load_balancer,
                problems,
                current,
            }
        })
        .collect()
}

/// Every backend of `s` (in namespace `ns`) that does not resolve, with where it is written.
fn backend_problems(
    ns: &str,
    s: &IngressShape,
    state: &ClusterState,
    index: &Index<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    for r in &s.routes {
        let host = r.hostname.as_deref().unwrap_or("(any host)");
        for p in &r.paths {
            if let Some(problem) = resolve_ingress_backend(ns, &p.backend, state, index).problem {
                out.push(format!(
                    "path {} of {host}: {}: {}",
                    p.value,
                    problem.reason.as_str(),
                    problem.message
                ));
            }
        }
    }
    let default = s.routes.iter().find_map(|r| r.default_backend.as_ref());
    if let Some(problem) =
        default.and_then(|b| resolve_ingress_backend(ns, b, state, index).problem)
    {
        out.push(format!(
            "defaultBackend: {}: {}",
            problem.reason.as_str(),
            problem.message
        ));
    }
    out
}

/// The load balancer status and problems of one translated Ingress from the hub's statuses of
/// its Gateway and routes (`find`).
fn hub_verdict<'a>(
    s: &IngressShape,
    find: &dyn Fn(Kind, &str) -> Option<&'a ObjectStatus>,
) -> (Option<IngressLoadBalancerStatus>, Vec<String>) {
    let mut problems = s.dropped.clone();
    let Some(gw) = find(Kind::Gateway, &s.gateway) else {
        return (None, problems);
    };
    let refused = |c: &fleetgate_proto::spoke::v1::Condition| {
        c.status == "False"
            && matches!(
                c.r#type.as_str(),
                "Accepted" | "Programmed" | "ResolvedRefs"
            )
    };
    let host_of = |listener: &str| {
        s.listeners
            .iter()
            .find(|l| l.name == listener)
            .map(|l| {
                format!(
                    "{} {}",
                    l.protocol,
                    l.hostname.as_deref().unwrap_or("(any host)")
                )
            })
            .unwrap_or_else(|| listener.to_string())
    };
    // The Gateway's own Programmed=False only repeats its listeners' problems.
    for c in gw.conditions.iter().filter(|c| c.r#type == "Accepted") {
        if refused(c) {
            problems.push(format!("{}: {}", c.reason, c.message));
        }
    }
    for l in &gw.listeners {
        if let Some(c) = l.conditions.iter().find(|c| refused(c)) {
            problems.push(format!(
                "listener {}: {}: {}",
                host_of(&l.name),
                c.reason,
                c.message
            ));
        }
    }
    for r in &s.routes {
        let Some(rs) = find(Kind::HttpRoute, &r.name) else {
            continue;
        };
        let host = r.hostname.as_deref().unwrap_or("(any host)");
        let mut seen: Vec<(String, String)> = Vec::new();
        for p in &rs.parents {
            // ResolvedRefs only repeats the first of the backend problems the agent sent.
            for c in p
                .conditions
                .iter()
                .filter(|c| refused(c) && c.r#type != "ResolvedRefs")
            {
                let k = (c.reason.clone(), c.message.clone());
                if !seen.contains(&k) {
                    problems.push(format!("rules for {host}: {}: {}", c.reason, c.message));
                    seen.push(k);
                }
            }
        }
    }
    let ingress = gw
        .addresses
        .iter()
        .map(|a| {
            let ip = a.parse::<std::net::IpAddr>().is_ok();
            IngressLoadBalancerIngress {
                ip: ip.then(|| a.clone()),
                hostname: (!ip).then(|| a.clone()),
                ports: None,
            }
        })
        .collect();
    (
        Some(IngressLoadBalancerStatus {
            ingress: Some(ingress),
        }),
        problems,
    )
}

/// A Warning Event on Ingress `namespace/name` saying what is refused.
pub fn warning_event(namespace: &str, name: &str, problems: &[String], now: &Time) -> Event {
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("networking.k8s.io/v1".to_string()),
            kind: Some("Ingress".to_string()),
            namespace: Some(namespace.to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        },
        reason: Some("Refused".to_string()),
        message: Some(problems.join("; ")),
        type_: Some("Warning".to_string()),
        source: Some(EventSource {
            component: Some(FIELD_MANAGER.to_string()),
            host: None,
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now.clone()),
        count: Some(1),
        ..Default::default()
    }
}

/// Keeps claimed Ingresses' `status.loadBalancer` in line with the hub's addresses and reports
/// their problems when they change, until the state channel closes. `client` is `None` in
/// manifests mode: then only log lines. `mode_of` is the endpoint mode the translation uses.
pub async fn run_writer(
    mut state: watch::Receiver<ClusterState>,
    mut hub: watch::Receiver<Option<Status>>,
    client: Option<Client>,
    mode_of: impl Fn(&ClusterState) -> EndpointMode,
) {
    let mut resync = tokio::time::interval(Duration::from_secs(30));
    let mut reported: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut logged: BTreeMap<(String, String), String> = BTreeMap::new();
    loop {
        let reports = {
            let st = state.borrow_and_update();
            let hs = hub.borrow_and_update();
            plan(&st, hs.as_ref(), mode_of(&st))
        };
        reported.retain(|k, _| {
            reports
                .iter()
                .any(|r| (&r.namespace, &r.name) == (&k.0, &k.1))
        });
        for r in reports {
            report(&client, &mut reported, &mut logged, &r).await;
        }
        tokio::select! {
            r = state.changed() => if r.is_err() { return },
            r = hub.changed() => if r.is_err() { return },
            _ = resync.tick() => {}
        }
    }
}

async fn report(
    client: &Option<Client>,
    reported: &mut BTreeMap<(String, String), Vec<String>>,
    logged: &mut BTreeMap<(String, String), String>,
    r: &IngressReport,
) {
    let (ns, name) = (&r.namespace, &r.name);
    let key = (ns.clone(), name.clone());
    if reported.get(&key) != Some(&r.problems) {
        if r.problems.is_empty() {
            if reported.contains_key(&key) {
                info!("Ingress {ns}/{name}: served without problems");
            }
        } else {
            warn!(
                "Ingress {ns}/{name} is (partly) refused: {}",
                r.problems.join("; ")
            );
            if let Some(c) = client {
                let event = warning_event(ns, name, &r.problems, &super::build::now_seconds());
                // Best effort: the log line is the other record.
                if let Err(e) = Api::<Event>::namespaced(c.clone(), ns)
                    .create(&PostParams::default(), &event)
                    .await
                {
                    warn!("cannot create an Event for Ingress {ns}/{name}: {e}");
                }
            }
        }
        reported.insert(key.clone(), r.problems.clone());
    }
    if !r.needs_write() {
        return;
    }
    let Some(lb) = &r.load_balancer else { return };
    match client {
        None => {
            let line = serde_json::to_string(lb).unwrap_or_default();
            if logged.get(&key) != Some(&line) {
                info!(target: "fleetgate_agent::status", "status Ingress {ns}/{name}: loadBalancer {line}");
                logged.insert(key, line);
            }
        }
        Some(c) => {
            let body = json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "status": {"loadBalancer": lb},
            });
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            match Api::<Ingress>::namespaced(c.clone(), ns)
                .patch_status(name, &pp, &Patch::Apply(body))
                .await
            {
                Ok(_) => info!("wrote status of Ingress {ns}/{name}"),
                Err(e) => warn!("cannot write status of Ingress {ns}/{name}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
