//! Watch: kube-rs reflectors over the tenant cluster (GatewayClass, Gateway, HTTPRoute v1,
//! TLSRoute v1, GRPCRoute v1, ReferenceGrant v1, Service, EndpointSlice, Node, Namespace,
//! Secrets of type `kubernetes.io/tls`; TCPRoute, UDPRoute and ListenerSet v1 when served;
//! agentgateway.dev/v1alpha1 AgentgatewayBackend when served, fleetgate.dev/v1alpha1
//! VirtualKey when served (with AgentgatewayBackends), and the Secrets those two name, each by
//! name ([`ai_secrets`])), networking.k8s.io/v1 Ingress and IngressClass when the agent's RBAC
//! allows reading them (docs/ingress.md), that publish a [`ClusterState`] snapshot.
//!
//! Secrets: the watch is filtered server-side to `type=kubernetes.io/tls`, so no other Secret
//! (service-account tokens, application credentials) ever reaches the agent; of those, only the
//! ones a claimed Gateway's certificateRefs name are sent to the hub (`translate`). `--secrets`
//! ([`SecretAccess`]) narrows it further: `label` adds the label selector
//! `fleetgate.dev/expose=true` to the cluster-wide watch, `namespaces=a,b` runs one watch per
//! namespace (so a Role per namespace is all the RBAC it needs). [`check_secret_access`] asks the
//! apiserver up front whether the agent's RBAC allows the mode, so a mismatch stops the agent
//! with a message instead of a loop of forbidden watches.
//!
//! Where it sits: the first step of the data path in cluster mode (the other source is
//! [`crate::manifests`]). The first snapshot is published only once every reflector has listed
//! its kind, so the hub never receives a partial full state; later snapshots follow every change
//! (coalesced over [`COALESCE`]) and are sent only when they differ.

pub mod ai_secrets;
pub mod reflect;

use std::sync::Arc;
use std::time::Duration;

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::referencegrants::ReferenceGrant;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::config::{EXPOSE_LABEL, SecretAccess};
use crate::crd::{AgentgatewayBackend, TcpRoute, UdpRoute, VirtualKey};
use crate::state::ClusterState;

/// How long after a change the snapshot is taken, so a burst of changes (an `apply` of many
/// objects) becomes one update instead of hundreds. Short, since it adds to every change's
/// time to the data plane.
pub const COALESCE: Duration = Duration::from_millis(20);
/// Whether the API server serves TCPRoute, UDPRoute and ListenerSet in
/// gateway.networking.k8s.io/v1.
async fn serves_optional_kinds(client: &Client) -> (bool, bool, bool) {
    match client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
    {
        Ok(list) => {
            let has = |n: &str| list.resources.iter().any(|r| r.name == n);
            let out = (has("tcproutes"), has("udproutes"), has("listenersets"));
            if !out.0 || !out.1 {
                info!(
                    "TCPRoute/UDPRoute v1 not served by this cluster (install the Gateway API 1.6 CRDs to use them)"
                );
            }
            if !out.2 {
                info!(
                    "ListenerSet v1 not served by this cluster (install the Gateway API 1.5+ CRDs to use it)"
                );
            }
            out
        }
        Err(e) => {
            warn!(
                "cannot discover gateway.networking.k8s.io/v1 resources ({e}); not watching TCPRoutes/UDPRoutes/ListenerSets"
            );
            (false, false, false)
        }
    }
}

/// Whether to watch agentgateway.dev/v1alpha1 AgentgatewayBackends: the API server serves them
/// (the CRD of deploy/crds/ is installed) and the agent's RBAC lets it list and watch them (an
/// RBAC from before AI backends would otherwise hold back the first snapshot for ever).
async fn watch_ai_backends(client: &Client) -> bool {
    let served = match client
        .list_api_group_resources("agentgateway.dev/v1alpha1")
        .await
    {
        Ok(list) => list
            .resources
            .iter()
            .any(|r| r.name == "agentgatewaybackends"),
        Err(_) => false,
    };
    if !served {
        info!(
            "AgentgatewayBackend (agentgateway.dev/v1alpha1) not served by this cluster (install deploy/crds/agentgateway.dev_agentgatewaybackends.yaml and restart the agent to use AI backends)"
        );
        return false;
    }
    for verb in ["list", "watch"] {
        if !may(client, "agentgateway.dev", "agentgatewaybackends", verb).await {
            warn!(
                "the agent's RBAC does not allow {verb} on agentgatewaybackends.agentgateway.dev: AI backends are not sent; apply deploy/agent-rbac.yaml and restart the agent"
            );
            return false;
        }
    }
    true
}

/// Whether to watch fleetgate.dev/v1alpha1 VirtualKeys: only with AgentgatewayBackends (the keys
/// open them), when the API server serves them (deploy/crds/fleetgate.dev_virtualkeys.yaml) and
/// the agent's RBAC lets it list and watch them.
async fn watch_virtual_keys(client: &Client) -> bool {
    let served = match client
        .list_api_group_resources("fleetgate.dev/v1alpha1")
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == "virtualkeys"),
        Err(_) => false,
    };
    if !served {
        info!(
            "VirtualKey (fleetgate.dev/v1alpha1) not served by this cluster (install deploy/crds/fleetgate.dev_virtualkeys.yaml and restart the agent to use virtual keys)"
        );
        return false;
    }
    for verb in ["list", "watch"] {
        if !may(client, "fleetgate.dev", "virtualkeys", verb).await {
            warn!(
                "the agent's RBAC does not allow {verb} on virtualkeys.fleetgate.dev: virtual keys are not sent; apply deploy/agent-rbac.yaml and restart the agent"
            );
            return false;
        }
    }
    true
}

/// Whether to watch networking.k8s.io/v1 Ingresses and IngressClasses: the agent's RBAC lets it
/// list and watch both (an RBAC from before Ingress support would otherwise hold back the first
/// snapshot for ever).
async fn watch_ingresses(client: &Client) -> bool {
    for resource in ["ingresses", "ingressclasses"] {
        for verb in ["list", "watch"] {
            if !may(client, "networking.k8s.io", resource, verb).await {
                warn!(
                    "the agent's RBAC does not allow {verb} on {resource}.networking.k8s.io: Ingresses are not translated; apply deploy/agent-rbac.yaml and restart the agent"
                );
                return false;
            }
        }
    }
    true
}

/// Whether to watch BackendTLSPolicies: the API server serves them and the agent's RBAC lets it
/// list and watch them (an older RBAC must not hold back the first snapshot).
async fn watch_backend_tls_policies(client: &Client) -> bool {
    let served = client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
        .is_ok_and(|l| l.resources.iter().any(|r| r.name == "backendtlspolicies"));
    if !served {
        return false;
    }
    for verb in ["list", "watch"] {
        if !may(
            client,
            "gateway.networking.k8s.io",
            "backendtlspolicies",
            verb,
        )
        .await
        {
            warn!(
                "the agent's RBAC does not allow {verb} on backendtlspolicies.gateway.networking.k8s.io: BackendTLSPolicies get no status saying fleetgate does not implement them; apply deploy/agent-rbac.yaml and restart the agent"
            );
            return false;
        }
    }
    true
}

/// Whether the agent may `verb` `resource` of `group` cluster-wide (SelfSubjectAccessReview); a
/// review that cannot be made counts as allowed, as in [`check_secret_access`].
async fn may(client: &Client, group: &str, resource: &str, verb: &str) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.into()),
                resource: Some(resource.into()),
                verb: Some(verb.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
    {
        Ok(r) => r.status.is_none_or(|s| s.allowed),
        Err(e) => {
            warn!("cannot check the agent's RBAC for {resource}.{group} ({e}); watching anyway");
            true
        }
    }
}

/// The TLS-Secret watches of a mode: (namespace or `None` for cluster-wide, watcher config).
pub fn secret_watches(access: &SecretAccess) -> Vec<(Option<String>, watcher::Config)> {
    let tls = || watcher::Config::default().fields("type=kubernetes.io/tls");
    match access {
        SecretAccess::Cluster => vec![(None, tls())],
        SecretAccess::Label => vec![(None, tls().labels(&format!("{EXPOSE_LABEL}=true")))],
        SecretAccess::Namespaces(names) => names.iter().map(|n| (Some(n.clone()), tls())).collect(),
    }
}

/// The agent's RBAC does not allow the `--secrets` mode it was started with.
#[derive(Debug, thiserror::Error)]
#[error(
    "--secrets {mode} needs list and watch on Secrets {scope}, and the agent's RBAC does not grant {verb} there{reason}; apply {rbac} or start the agent with a --secrets mode its RBAC allows (see docs/security.md, \"What the agent may read in a tenant cluster\")"
)]
pub struct SecretAccessDenied {
    /// The mode, as given to `--secrets`.
    pub mode: String,
    /// "cluster-wide" or "in namespace X".
    pub scope: String,
    /// The verb that is denied.
    pub verb: &'static str,
    /// ": <the authorizer's reason>" or empty.
    pub reason: String,
    /// The deploy/ file that grants this mode.
    pub rbac: String,
}

/// How long a denied access review is asked again before the agent gives up: RBAC applied
/// together with the agent takes a moment to reach the apiserver's authorizer.
pub const RBAC_SETTLE: Duration = Duration::from_secs(10);

/// Asks the apiserver (SelfSubjectAccessReview, which every authenticated user may create)
/// whether the agent may list and watch Secrets where `access` needs it, for up to
/// [`RBAC_SETTLE`]. A review that cannot be made (an old or unusual apiserver) is logged and not
/// held against the agent.
pub async fn check_secret_access(
    client: &Client,
    access: &SecretAccess,
) -> Result<(), SecretAccessDenied> {
    let deadline = tokio::time::Instant::now() + RBAC_SETTLE;
    loop {
        match review_secret_access(client, access).await {
            Ok(()) => return Ok(()),
            Err(denied) if tokio::time::Instant::now() >= deadline => return Err(denied),
            Err(denied) => {
                info!(
                    "the agent's RBAC does not allow {} on Secrets {} (yet); asking again",
                    denied.verb, denied.scope
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn review_secret_access(
    client: &Client,
    access: &SecretAccess,
) -> Result<(), SecretAccessDenied> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (namespace, _) in secret_watches(access) {
        for verb in ["list", "watch"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: namespace.clone(),
                        verb: Some(verb.into()),
                        resource: Some("secrets".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let status = match reviews.create(&PostParams::default(), &review).await {
                Ok(r) => r.status,
                Err(e) => {
                    warn!(
                        "cannot check the agent's RBAC for --secrets {access} ({e}); starting the Secret watch anyway"
                    );
                    return Ok(());
                }
            };
            let Some(status) = status else { continue };
            if !status.allowed {
                let scope = match &namespace {
                    None => "cluster-wide".to_string(),
                    Some(n) => format!("in namespace {n}"),
                };
                let rbac = match access {
                    SecretAccess::Namespaces(_) => format!(
                        "the Role and RoleBinding fleetgate-agent-tls-secrets of deploy/agent-rbac.yaml {scope}"
                    ),
                    _ => "deploy/agent-rbac-secrets-cluster.yaml".to_string(),
                };
                let reason = status
                    .reason
                    .filter(|r| !r.is_empty())
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                return Err(SecretAccessDenied {
                    mode: access.to_string(),
                    scope,
                    verb,
                    reason,
                    rbac,
                });
            }
        }
    }
    Ok(())
}

/// Runs the reflectors and publishes snapshots into `tx` until every receiver is gone. TLS
/// Secrets (and the Secrets AgentgatewayBackends name) are watched as `secrets` says;
/// `claimed_class_names` (`--gateway-class`) and `ingress_class_name` (`--ingress-class`) go
/// into every snapshot.
pub async fn run(
    client: Client,
    secrets: SecretAccess,
    claimed_class_names: Vec<String>,
    ingress_class_name: String,
    tx: watch::Sender<ClusterState>,
    events: crate::lag::EventClock,
) {
    let changed = Arc::new(Notify::new());
    let classes = reflect::spawn(Api::<GatewayClass>::all(client.clone()), changed.clone());
    let gateways = reflect::spawn(Api::<Gateway>::all(client.clone()), changed.clone());
    let routes = reflect::spawn(Api::<HttpRoute>::all(client.clone()), changed.clone());
    let services = reflect::spawn(Api::<Service>::all(client.clone()), changed.clone());
    let slices = reflect::spawn(Api::<EndpointSlice>::all(client.clone()), changed.clone());
    let nodes = reflect::spawn(Api::<Node>::all(client.clone()), changed.clone());
    let secret_stores: Vec<Store<Secret>> = secret_watches(&secrets)
        .into_iter()
        .map(|(namespace, config)| {
            let api = match namespace {
                Some(n) => Api::<Secret>::namespaced(client.clone(), &n),
                None => Api::<Secret>::all(client.clone()),
            };
            reflect::spawn_with(api, config, changed.clone())
        })
        .collect();
    let grants = reflect::spawn(Api::<ReferenceGrant>::all(client.clone()), changed.clone());
    let tls_routes = reflect::spawn(Api::<TlsRoute>::all(client.clone()), changed.clone());
    // TCPRoute/UDPRoute v1 only when the API server serves them (Gateway API >= 1.6 CRDs), so
    // that an older installation does not block the first snapshot.
    let (serves_tcp, serves_udp, serves_listener_sets) = serves_optional_kinds(&client).await;
    let tcp_routes =
        serves_tcp.then(|| reflect::spawn(Api::<TcpRoute>::all(client.clone()), changed.clone()));
    let udp_routes =
        serves_udp.then(|| reflect::spawn(Api::<UdpRoute>::all(client.clone()), changed.clone()));
    let namespaces = reflect::spawn(Api::<Namespace>::all(client.clone()), changed.clone());
    let grpc_routes = reflect::spawn(Api::<GrpcRoute>::all(client.clone()), changed.clone());
    let listener_sets = serves_listener_sets
        .then(|| reflect::spawn(Api::<ListenerSet>::all(client.clone()), changed.clone()));
    let ai_backends = watch_ai_backends(&client).await.then(|| {
        reflect::spawn(
            Api::<AgentgatewayBackend>::all(client.clone()),
            changed.clone(),
        )
    });
    let virtual_keys = match &ai_backends {
        Some(_) if watch_virtual_keys(&client).await => Some(reflect::spawn(
            Api::<VirtualKey>::all(client.clone()),
            changed.clone(),
        )),
        _ => None,
    };
    let ingress_watch = watch_ingresses(&client).await.then(|| {
        (
            reflect::spawn(Api::<Ingress>::all(client.clone()), changed.clone()),
            reflect::spawn(Api::<IngressClass>::all(client.clone()), changed.clone()),
        )
    });
    let backend_tls = watch_backend_tls_policies(&client).await.then(|| {
        reflect::spawn(
            Api::<gateway_api::backendtlspolicies::BackendTlsPolicy>::all(client.clone()),
            changed.clone(),
        )
    });
    let mut ai_secrets =
        ai_secrets::AiSecretWatches::new(client.clone(), secrets.clone(), changed.clone());

    let ready = async {
        let _ = classes.wait_until_ready().await;
        let _ = gateways.wait_until_ready().await;
        let _ = routes.wait_until_ready().await;
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        let _ = nodes.wait_until_ready().await;
        for s in &secret_stores {
            let _ = s.wait_until_ready().await;
        }
        let _ = grants.wait_until_ready().await;
        let _ = tls_routes.wait_until_ready().await;
        if let Some(s) = &tcp_routes {
            let _ = s.wait_until_ready().await;
        }
        if let Some(s) = &udp_routes {
            let _ = s.wait_until_ready().await;
        }
        let _ = namespaces.wait_until_ready().await;
        let _ = grpc_routes.wait_until_ready().await;
        if let Some(s) = &listener_sets {
            let _ = s.wait_until_ready().await;
        }
        if let Some(s) = &ai_backends {
            let _ = s.wait_until_ready().await;
        }
        if let Some(s) = &virtual_keys {
            let _ = s.wait_until_ready().await;
        }
        if let Some((i, c)) = &ingress_watch {
            let _ = i.wait_until_ready().await;
            let _ = c.wait_until_ready().await;
        }
        if let Some(s) = &backend_tls {
            let _ = s.wait_until_ready().await;
        }
    };
    tokio::pin!(ready);
    loop {
        tokio::select! {
            _ = &mut ready => break,
            _ = tokio::time::sleep(Duration::from_secs(10)) => warn!(
                "still waiting for the initial list of GatewayClasses, Gateways, HTTPRoutes, TLSRoutes, GRPCRoutes, ReferenceGrants, Services, EndpointSlices, Nodes, TLS Secrets and AgentgatewayBackends (are the Gateway API CRDs installed and the RBAC in deploy/agent-rbac.yaml applied?)"
            ),
        }
    }
    info!("cluster watch ready");
    let backends = || {
        ai_backends
            .as_ref()
            .map(reflect::objects)
            .unwrap_or_default()
    };
    let keys = || {
        virtual_keys
            .as_ref()
            .map(reflect::objects)
            .unwrap_or_default()
    };
    ai_secrets.reconcile(&backends(), &keys()).await;
    let snapshot = |ai_secrets: &ai_secrets::AiSecretWatches| {
        let mut s = ClusterState {
            gateway_classes: reflect::objects(&classes),
            gateways: reflect::objects(&gateways),
            http_routes: reflect::objects(&routes),
            services: reflect::objects(&services),
            endpoint_slices: reflect::objects(&slices),
            nodes: reflect::objects(&nodes),
            secrets: secret_stores.iter().flat_map(reflect::objects).collect(),
            secret_access: secrets.clone(),
            reference_grants: reflect::objects(&grants),
            tls_routes: reflect::objects(&tls_routes),
            tcp_routes: tcp_routes
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
            udp_routes: udp_routes
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
            namespaces: reflect::objects(&namespaces),
            grpc_routes: reflect::objects(&grpc_routes),
            listener_sets: listener_sets
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
            ai_backends: backends(),
            ai_secrets: ai_secrets.secrets(),
            virtual_keys: keys(),
            claimed_class_names: claimed_class_names.clone(),
            ingresses: ingress_watch
                .as_ref()
                .map(|(i, _)| reflect::objects(i))
                .unwrap_or_default(),
            ingress_classes: ingress_watch
                .as_ref()
                .map(|(_, c)| reflect::objects(c))
                .unwrap_or_default(),
            ingress_class_name: ingress_class_name.clone(),
            backend_tls_policies: backend_tls
                .as_ref()
                .map(reflect::objects)
                .unwrap_or_default(),
        };
        s.normalize();
        s
    };
    tx.send_replace(snapshot(&ai_secrets));
    loop {
        tokio::select! {
            _ = changed.notified() => events.mark(std::time::Instant::now()),
            _ = tx.closed() => return,
        }
        tokio::time::sleep(COALESCE).await;
        ai_secrets.reconcile(&backends(), &keys()).await;
        let next = snapshot(&ai_secrets);
        // The events go on with the state (marked before the translation can read it), or
        // changed nothing the agent publishes (`crate::lag`).
        let sent = tx.send_if_modified(|cur| {
            if *cur == next {
                false
            } else {
                *cur = next;
                events.published(true);
                true
            }
        });
        if !sent {
            events.published(false);
        }
    }
}
