//! Run: wires the agent's data path together for one cluster (or one manifests folder).
//!
//! source (`watch` | `manifests`) -> ClusterState watch -> `translate` task -> intent watch ->
//! `sync` (gRPC to the hub) -> Status watch -> `status` writer. Each channel has exactly one
//! writer. Returns when the process is asked to stop (SIGINT/SIGTERM).

use fleetgate_proto::spoke::v1::{Hello, Object, Status};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::config::{Config, EndpointMode, IdentitySource, Keep, Source};
use crate::enroll::renew::Renewer;
use crate::enroll::storage::IdentityStore;
use crate::enroll::{self, EnrollError};
use crate::identity::{Identity, IdentityError};
use crate::manifests::{self, ManifestsError};
use crate::resolve::Index;
use crate::state::ClusterState;
use crate::status::{self, Sink};
use crate::sync::{SyncError, Syncer, tls_endpoint};
use crate::translate::ai_backend::ai_backend_objects;
use crate::translate::translate;
use crate::translate::virtual_key::virtual_key_objects;
use crate::{AGENT_VERSION, l4, l4route, watch as cluster_watch};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The identity folder is incomplete or its certificate is not an agent certificate.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Enrollment failed, or no identity is stored and there is no token to enroll with.
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// The hub endpoint cannot be built from the flags and identity.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The kubeconfig file cannot be read or used.
    #[error("cannot use kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    /// No kubeconfig was given and none could be inferred.
    #[error(
        "cannot reach the tenant cluster (no --kubeconfig; in-cluster config and KUBECONFIG failed): {0}"
    )]
    InferKube(#[source] kube::Error),
    /// The manifests folder cannot be listed.
    #[error(transparent)]
    Manifests(#[from] ManifestsError),
    /// The agent's RBAC does not let it read the Secrets its `--secrets` mode needs.
    #[error(transparent)]
    SecretAccess(#[from] cluster_watch::SecretAccessDenied),
    /// Waiting for a termination signal failed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
    /// The `--metrics-listen` address cannot be bound.
    #[error(
        "cannot listen on --metrics-listen {addr}: {source}; pick a free address or leave the flag out"
    )]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<Client, RunError> {
    match kubeconfig {
        Some(path) => {
            let err = |reason: String| RunError::Kubeconfig {
                path: path.display().to_string(),
                reason,
            };
            let kc = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
            let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| err(e.to_string()))?;
            Client::try_from(cfg).map_err(|e| err(e.to_string()))
        }
        None => Client::try_default().await.map_err(RunError::InferKube),
    }
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), RunError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match &config.source {
        Source::Kube { kubeconfig } => Some(kube_client(kubeconfig.as_deref()).await?),
        Source::Manifests { .. } => None,
    };
    // The identity, and (when enrolled) the task that renews it: the one writer of `identity_tx`.
    let (identity, renewer) = match &config.identity {
        IdentitySource::Dir(dir) => (Identity::load(dir)?, None),
        IdentitySource::Enrolled {
            token,
            hub_ca,
            keep,
        } => {
            let store = match (keep, &client) {
                (Keep::StateDir(dir), _) => IdentityStore::Files(dir.clone()),
                (Keep::Secret { namespace, name }, Some(c)) => {
                    IdentityStore::secret(c.clone(), namespace, name)
                }
                (Keep::Secret { .. }, None) => {
                    return Err(EnrollError::NoIdentity(
                        "with --manifests the identity is kept in --state-dir".into(),
                    )
                    .into());
                }
            };
            let stored = enroll::obtain(
                &config.hub,
                &config.hub_server_name,
                &store,
                token.as_ref().map(|t| t.0.as_str()),
                hub_ca.as_deref(),
            )
            .await?;
            let token_sha256 = stored.token_sha256;
            let (hub, server_name) = (config.hub.clone(), config.hub_server_name.clone());
            let renewer = move |current| Renewer {
                hub,
                server_name,
                store,
                token_sha256,
                current,
            };
            (stored.identity, Some(renewer))
        }
    };
    // Checked once up front so a bad flag fails at start, not on the first connect.
    for hub in &config.hubs {
        tls_endpoint(hub, &identity, &config.hub_server_name)?;
    }
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::MetricsListen { addr, source })?,
        ),
        None => None,
    };
    info!(
        hub = %config.hubs.join(","),
        tenant = %identity.spiffe.tenant,
        cluster = %identity.spiffe.cluster,
        "starting fleetgate-agent {AGENT_VERSION}"
    );
    let cluster = identity.spiffe.cluster.clone();
    let (identity_tx, identity_rx) = watch::channel(identity);
    let renewing = renewer.is_some();
    if let Some(r) = renewer {
        tokio::spawn(r(identity_tx).run());
    }

    let (state_tx, mut state_rx) = watch::channel(ClusterState::default());
    // Marked by the watch, taken by sync: the watch lag (`crate::lag`; cluster mode only).
    let events = crate::lag::EventClock::default();
    let sink = match (&config.source, client) {
        (Source::Kube { .. }, Some(client)) => {
            cluster_watch::check_secret_access(&client, &config.secrets).await?;
            info!(secrets = %config.secrets, "watching TLS Secrets");
            if !config.gateway_classes.is_empty() {
                info!(classes = ?config.gateway_classes, "also claiming these GatewayClasses (--gateway-class)");
            }
            tokio::spawn(cluster_watch::run(
                client.clone(),
                config.secrets.clone(),
                config.gateway_classes.clone(),
                config.ingress_class.clone(),
                state_tx,
                events.clone(),
            ));
            Sink::Kube(client)
        }
        (Source::Kube { .. }, None) => unreachable!("a kube client is made for every Kube source"),
        (Source::Manifests { dir }, _) => {
            manifests::check_folder(dir)?;
            tokio::spawn(manifests::run(
                dir.clone(),
                config.gateway_classes.clone(),
                config.ingress_class.clone(),
                state_tx,
            ));
            Sink::log()
        }
    };

    let stop = shutdown_signal()?;
    tokio::pin!(stop);
    // Nothing goes to the hub before the source has a complete first snapshot.
    tokio::select! {
        _ = state_rx.changed() => {}
        _ = &mut stop => return Ok(()),
    }

    let intent_of = |s: &ClusterState| intent(s, &config);
    let (intent_tx, intent_rx) =
        watch::channel::<Vec<Object>>(intent_of(&state_rx.borrow_and_update()));
    let (status_tx, status_rx) = watch::channel::<Option<Status>>(None);
    let ingress_client = match &sink {
        Sink::Kube(c) => Some(c.clone()),
        Sink::Log { .. } => None,
    };
    let ingress_config = config.clone();
    tokio::spawn(status::ingress::run_writer(
        state_rx.clone(),
        status_rx.clone(),
        ingress_client,
        move |s: &ClusterState| ingress_config.effective_endpoint_mode(!s.nodes.is_empty()),
    ));
    let status_rx_metrics = status_rx.clone();
    tokio::spawn(status::run_writer(state_rx.clone(), status_rx, sink));
    let mut translate_rx = state_rx;
    let mode_config = config.clone();
    let translate_events = events.clone();
    tokio::spawn(async move {
        while translate_rx.changed().await.is_ok() {
            // The state's watch events go on with the intent if it changes, or changed nothing
            // sent to the hub (`crate::lag`).
            let (s, carried) = {
                let state = translate_rx.borrow_and_update();
                (state.clone(), translate_events.take_state())
            };
            let next = intent(&s, &mode_config);
            intent_tx.send_if_modified(|cur| {
                if *cur == next {
                    false
                } else {
                    debug!(objects = next.len(), "intent changed");
                    *cur = next;
                    translate_events.to_intent(carried);
                    true
                }
            });
        }
    });

    let hello = Hello {
        cluster,
        agent_version: AGENT_VERSION.to_string(),
    };
    let mut syncer = Syncer::new(intent_rx.clone(), status_tx, hello).with_event_clock(events);
    if let Some(listener) = metrics_listener {
        info!(metrics = ?config.metrics_listen, "metrics port: /metrics, /healthz, /readyz");
        let metrics = std::sync::Arc::new(crate::metrics::AgentMetrics::new());
        tokio::spawn(crate::metrics::serve(
            listener,
            metrics.clone(),
            intent_rx,
            status_rx_metrics,
        ));
        syncer = syncer.with_metrics(metrics);
    }
    if renewing {
        syncer = syncer.reconnect_when_renewed(identity_rx.clone());
    }
    // Every connection uses the latest identity (renewal replaces it).
    // With several hubs (replicas sharing a store), each connection goes to the next one, so an
    // agent whose hub died is on another at its next attempt.
    let turn = std::sync::atomic::AtomicUsize::new(0);
    let connect = || {
        let n = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hub = &config.hubs[n % config.hubs.len()];
        if config.hubs.len() > 1 {
            info!(hub = %hub, "connecting");
        }
        let endpoint = tls_endpoint(hub, &identity_rx.borrow(), &config.hub_server_name);
        async move { endpoint?.connect().await.map_err(SyncError::Connect) }
    };
    tokio::select! {
        _ = syncer.run(connect) => {}
        _ = &mut stop => info!("stopping"),
    }
    Ok(())
}

/// The whole intent of the cluster: Gateway API objects (HTTP, then the Gateways and HTTPRoutes
/// Ingresses stand for, then TCP/UDP routes), then
/// LoadBalancer Services, then AgentgatewayBackends, then VirtualKeys.
fn intent(s: &ClusterState, config: &Config) -> Vec<Object> {
    let mode = config.effective_endpoint_mode(!s.nodes.is_empty());
    intent_with(s, mode, config.all_load_balancers)
}

/// [`intent`] for an endpoint mode and `--all-load-balancers` given outright (the golden-file
/// tests translate through it).
pub fn intent_with(s: &ClusterState, mode: EndpointMode, all_load_balancers: bool) -> Vec<Object> {
    let mut out = translate(s, mode);
    let index = Index::new(s, mode);
    out.extend(crate::translate::ingress::translate_ingresses(s, &index));
    out.extend(l4route::translate_l4_routes(s, mode));
    out.extend(l4::translate_services(s, mode, all_load_balancers));
    out.extend(ai_backend_objects(&s.ai_backends, &index));
    out.extend(virtual_key_objects(&s.virtual_keys, &index));
    out
}

/// Resolves on SIGINT or SIGTERM.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
