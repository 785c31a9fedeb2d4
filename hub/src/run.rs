//! Wires the hub together: store -> fleet -> compile loop -> the data-plane gRPC server (xDS for
//! Envoy, `ai_config` for the AI gateways), and the agent gRPC server.
//!
//! One writer per piece of state: `Fleet` writes accepted intent; the compile loop here is the
//! only writer of the snapshot and status channels that `xds`, `ai_config` and `sync` read;
//! `ai_config`'s publisher is the only writer of the AI gateways' per-tenant versions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fleetgate_proto::MAX_MESSAGE_BYTES;
use fleetgate_proto::enroll::v1::enroll_service_server::EnrollServiceServer;
use fleetgate_proto::spoke::v1::spoke_service_server::SpokeServiceServer;
use tokio::sync::watch;
use tonic::transport::Server;

use crate::admit::{Reserved, endpoint};
use crate::ai_config::{self, AiConfigService, AiGatewayHealth};
use crate::compile::{self, Snapshot};
use crate::config::Config;
use crate::enroll::EnrollServer;
use crate::enroll::token::TokenKey;
use crate::fleet::{Fleet, FleetView};
use crate::identity::{CA_CERT, HUB_CERT, HUB_KEY, HubCa};
use crate::model::ai::{AiRouteProvider, AiRouteTarget};
use crate::model::{ClusterKey, Condition, Kind, ObjectStatus};
use crate::reload::ReloadSource;
use crate::store::Store;
use crate::sync::{FleetStatus, SyncService, handshake};
use crate::xds::{self, XdsHealth};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A PKI file is missing or unreadable.
    #[error(
        "cannot read {path}: {source}; create the PKI with `fleetgate-hub ca init --pki-dir <dir>`"
    )]
    Pki {
        path: String,
        source: std::io::Error,
    },
    /// The CA key or the bootstrap token key cannot be used.
    #[error("{0}; create the PKI with `fleetgate-hub ca init --pki-dir <dir>`")]
    Identity(String),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A server failed to bind or serve.
    #[error("{what} server failed: {message}")]
    Serve { what: &'static str, message: String },
}

fn read_pki(config: &Config, name: &str) -> Result<Vec<u8>, RunError> {
    let path = config.pki_dir.join(name);
    std::fs::read(&path).map_err(|source| RunError::Pki {
        path: path.display().to_string(),
        source,
    })
}

/// Compiles the fleet's view and merges into the statuses what compile cannot know: admission
/// rejections (a rejection replaces the status of the older accepted version of the same
/// object) and the data plane's NACKs (on the objects whose resources Envoy refused).
pub fn compile_view(
    view: &FleetView,
    config: &Config,
    health: &XdsHealth,
) -> (Snapshot, FleetStatus) {
    compile_view_with(&mut CompileMemo::default(), view, config, health)
}

/// What the compile loop keeps from one compile to the next (one writer: the loop).
#[derive(Default)]
pub struct CompileMemo {
    /// Each cluster's compiled part (`compile::Memo`).
    compile: compile::Memo,
    endpoints: EndpointsChecked,
}

impl CompileMemo {
    /// How many clusters' parts the last compile built rather than reused.
    pub fn last_built(&self) -> usize {
        self.compile.last_built()
    }
}

/// The upstream clusters whose endpoints the last compile's re-check
/// ([`withdraw_forbidden_endpoints`]) found allowed, in the snapshot's order, and what they
/// were checked against. While the tenants' configuration and the reserved addresses stay the
/// same, a cluster the compiler's memo shares unchanged (the same allocation) is not checked
/// again: a change re-checks the clusters it rebuilt, not the fleet's.
#[derive(Default)]
struct EndpointsChecked {
    /// Each tenant's clusters (their endpoint CIDRs) and the reserved addresses.
    against: Option<(EndpointRules, Reserved)>,
    passed: Vec<Arc<compile::ClusterSnapshot>>,
}

/// What admits an endpoint, besides the reserved addresses: each tenant's clusters.
type EndpointRules = Vec<(String, crate::model::policy::Cluster)>;

fn endpoint_rules(config: &Config) -> EndpointRules {
    config
        .tenants
        .iter()
        .flat_map(|(t, tenant)| tenant.clusters.values().map(|c| (t.clone(), c.clone())))
        .collect()
}

/// [`compile_view`] reusing from `memo` what did not change since the last compile (the
/// compile loop keeps one memo for its lifetime; see `compile::Memo`).
pub fn compile_view_with(
    memo: &mut CompileMemo,
    view: &FleetView,
    config: &Config,
    health: &XdsHealth,
) -> (Snapshot, FleetStatus) {
    // Clusters past their disconnected grace period are left out of the data plane.
    let served: std::borrow::Cow<'_, crate::model::FleetIntent> = if view.withdrawn.is_empty() {
        std::borrow::Cow::Borrowed(&view.intent)
    } else {
        std::borrow::Cow::Owned(
            view.intent
                .iter()
                .filter(|(k, _)| !view.withdrawn.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    let started = std::time::Instant::now();
    let compiled = memo.compile.compile_with_l4(
        &served,
        &view.revisions,
        &config.data_plane,
        &config.l4,
        &view.allocations,
        &view.allocation_failures,
    );
    let compile_us = started.elapsed().as_micros() as u64;
    let mut snapshot = compiled.snapshot;
    withdraw_forbidden_endpoints(&mut snapshot, config, &view.reserved, &mut memo.endpoints);
    let endpoints_us = started.elapsed().as_micros() as u64 - compile_us;
    withdraw_forbidden_ai_routes(&mut snapshot, config, &view.reserved);
    crate::traffic_limits::apply(&mut snapshot, &config.quotas);
    let limits_us = started.elapsed().as_micros() as u64 - compile_us - endpoints_us;
    let mut statuses: BTreeMap<ClusterKey, Arc<Vec<_>>> = compiled.statuses;
    for nack in health.nacks.values() {
        let message = format!(
            "the data plane rejected the configuration built from this object: {}",
            nack.message.chars().take(512).collect::<String>()
        );
        for src in &nack.sources {
            let Some(status) = statuses
                .get_mut(&src.cluster)
                .and_then(|l| Arc::make_mut(l).iter_mut().find(|s| s.key == src.object))
            else {
                continue;
            };
            mark_rejected_by_data_plane(status, &message);
        }
    }
    for (ck, rejected) in &view.rejections {
        // Most clusters have none: their list stays shared with the memo (no copy, and the
        // compile loop's comparison with the last statuses stays a pointer comparison).
        if rejected.is_empty() {
            continue;
        }
        let list = Arc::make_mut(statuses.entry(ck.clone()).or_default());
        list.retain(|s| !rejected.contains_key(&s.key));
        list.extend(rejected.values().cloned());
        list.sort_by(|a, b| a.key.cmp(&b.key));
    }
    tracing::debug!(
        compile_us,
        endpoints_us,
        limits_us,
        total_us = started.elapsed().as_micros() as u64,
        clusters_recompiled = memo.last_built(),
        "compile steps"
    );
    (snapshot, Arc::new(statuses))
}

/// Endpoints are admitted against the configuration and the host's addresses of that moment;
/// when either changes (a reload narrows a cluster's CIDRs, an interface gets an address inside
/// them), stored endpoints that the rule now refuses leave the data plane here, at once, rather
/// than when their cluster next sends them. The same rule as admission (`admit::endpoint`).
fn withdraw_forbidden_endpoints(
    snapshot: &mut Snapshot,
    config: &Config,
    reserved: &Reserved,
    checked: &mut EndpointsChecked,
) {
    let rules = endpoint_rules(config);
    let same_rules = checked
        .against
        .as_ref()
        .is_some_and(|(before, r)| *before == rules && r == reserved);
    if !same_rules {
        checked.against = Some((rules, reserved.clone()));
        checked.passed.clear();
    }
    let mut before = std::mem::take(&mut checked.passed).into_iter().peekable();
    for c in &mut snapshot.clusters {
        // Passed last time, unchanged (the snapshot is ordered by name, as `before` is).
        while before.next_if(|p| p.name < c.name).is_some() {}
        if before.next_if(|p| Arc::ptr_eq(p, c)).is_some() {
            checked.passed.push(c.clone());
            continue;
        }
        // Cloned (only clusters the memo rebuilt get here): the check outlives the borrow of `c`.
        let Some(owner) = c.owner().cloned() else {
            continue;
        };
        let registered = config
            .tenants
            .get(&owner.tenant)
            .and_then(|t| t.clusters.get(&owner.cluster));
        let allowed = |e: &std::net::SocketAddr| {
            registered.is_some_and(|rc| endpoint::check(e.ip(), e.port(), rc, reserved).is_ok())
        };
        if c.endpoints.iter().all(allowed) {
            checked.passed.push(c.clone());
            continue;
        }
        let c = Arc::make_mut(c);
        c.endpoints.retain(|e| {
            let keep = allowed(e);
            if !keep {
                tracing::warn!(
                    cluster = %owner, upstream = %c.name, endpoint = %e,
                    "endpoint withdrawn from the data plane: the configuration or this host's addresses changed since it was admitted and now refuse it"
                );
            }
            keep
        });
    }
}

/// The AI routes' counterpart of [`withdraw_forbidden_endpoints`]: AI backends are admitted
/// against the configuration of that moment (the cluster's CIDRs, the tenant's egress
/// allowlist, the hub's own addresses). After a reload, an AI route whose endpoints the rule now
/// refuses loses them, and one left without any, or whose external host is no longer on its
/// tenant's egress list, leaves the AI gateways' configuration at once: the AI gateway never gets
/// a route without endpoints for a cluster-local host (it would dial the host itself).
fn withdraw_forbidden_ai_routes(snapshot: &mut Snapshot, config: &Config, reserved: &Reserved) {
    for (tenant_name, tenant) in &mut snapshot.ai.tenants {
        let policy = config.tenants.get(tenant_name);
        tenant.routes.retain(|id, r| {
            let owner = r.source.cluster.clone();
            let Some(cluster) = policy.and_then(|t| t.clusters.get(&owner.cluster)) else {
                return false;
            };
            let mut keep = |p: &mut AiRouteProvider| {
                if p.endpoints.is_empty() {
                    let ip_allowed = p.host.parse::<std::net::IpAddr>().map_or(true, |ip| {
                        endpoint::check_external(ip, p.port, cluster, reserved).is_ok()
                    });
                    let allowed = ip_allowed && policy.is_some_and(|t| t.egress_allows(&p.host));
                    if !allowed {
                        tracing::warn!(
                            cluster = %owner, route = %id, provider = %p.name, host = %p.host,
                            "AI provider withdrawn: its external host is no longer allowed by the tenant's egress list (or is an address the hub refuses)"
                        );
                    }
                    return allowed;
                }
                let before = p.endpoints.len();
                p.endpoints
                    .retain(|e| endpoint::check(e.ip(), e.port(), cluster, reserved).is_ok());
                if p.endpoints.len() != before {
                    tracing::warn!(
                        cluster = %owner, route = %id, provider = %p.name, withdrawn = before - p.endpoints.len(),
                        "AI route endpoints withdrawn: the configuration or this host's addresses changed since they were admitted and now refuse them"
                    );
                }
                !p.endpoints.is_empty()
            };
            match &mut r.target {
                AiRouteTarget::Provider(p) => keep(p),
                // A provider of a group that is no longer allowed leaves its group; the
                // route stays while a group has a provider.
                AiRouteTarget::Groups(groups) => {
                    for g in groups.iter_mut() {
                        g.retain_mut(&mut keep);
                    }
                    groups.retain(|g| !g.is_empty());
                    !groups.is_empty()
                }
                // The same for each MCP target: one no longer allowed leaves the backend.
                AiRouteTarget::Mcp(m) => {
                    m.targets.retain_mut(|t| {
                        let mut p = crate::model::ai::AiRouteProvider {
                            name: t.name.clone(),
                            provider: crate::model::ai::AiProvider::OpenAi { model: None },
                            host: t.host.clone(),
                            port: t.port,
                            path: None,
                            path_prefix: None,
                            endpoints: match &t.upstream {
                                crate::model::ai::AiUpstream::Cluster(e) => e.clone(),
                                crate::model::ai::AiUpstream::External => Vec::new(),
                            },
                            tls: false,
                            auth: crate::model::ai::AiAuth::None,
                        };
                        let kept = keep(&mut p);
                        if let crate::model::ai::AiUpstream::Cluster(e) = &mut t.upstream {
                            *e = p.endpoints;
                        }
                        kept
                    });
                    !m.targets.is_empty()
                }
            }
        });
    }
    snapshot.ai.tenants.retain(|_, t| !t.routes.is_empty());
}

fn mark_rejected_by_data_plane(status: &mut ObjectStatus, message: &str) {
    let programmed = Condition::new("Programmed", false, "Invalid", message);
    match status.key.kind {
        Kind::Gateway | Kind::Service | Kind::ListenerSet | Kind::AiBackend | Kind::VirtualKey => {
            status.conditions.retain(|c| c.type_ != "Programmed");
            status.conditions.push(programmed);
        }
        Kind::HttpRoute | Kind::GrpcRoute | Kind::TlsRoute | Kind::TcpRoute | Kind::UdpRoute => {
            for p in &mut status.parents {
                p.conditions.retain(|c| c.type_ != "Accepted");
                p.conditions.push(Condition::new(
                    "Accepted",
                    false,
                    "UnsupportedValue",
                    message,
                ));
            }
        }
    }
}

/// Serves the data-plane gRPC port (`xdsListen`) until `shutdown` completes: Envoy's ADS
/// (`xds`) and the AI gateways' config stream (`ai_config`). Plaintext: the port belongs on
/// loopback or a private network (docs/security.md).
pub async fn serve_data_plane(
    listener: tokio::net::TcpListener,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    xds_health: watch::Sender<XdsHealth>,
    ai_published: watch::Receiver<Arc<ai_config::Published>>,
    ai_health: watch::Sender<AiGatewayHealth>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_data_plane_with(
        listener,
        snapshots,
        xds_health,
        AiConfigService::new(ai_published, ai_health),
        DataPlaneObservers::default(),
        shutdown,
    )
    .await
}

/// What watches the data-plane port for the operator: the compile spans of published
/// snapshots (for the spans of xDS pushes and ACKs), the report of the ADS streams
/// (`crate::data_plane`) and Envoy's stats sink (`crate::envoy_stats`).
#[derive(Clone)]
pub struct DataPlaneObservers {
    pub traces: Arc<xds::trace::SnapshotTraces>,
    pub report: Arc<dyn xds::AdsReport>,
    pub stats: Arc<crate::envoy_stats::EnvoyStats>,
}

impl Default for DataPlaneObservers {
    fn default() -> Self {
        Self {
            traces: Arc::default(),
            report: Arc::new(xds::NoReport),
            stats: Arc::default(),
        }
    }
}

/// [`serve_data_plane`] with the AI gateways' service as the caller built it (with the MCP tool
/// pins task's link and the accounts the admin API reads, when the hub runs them), and what
/// watches the port for the operator ([`DataPlaneObservers`]).
pub async fn serve_data_plane_with(
    listener: tokio::net::TcpListener,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    xds_health: watch::Sender<XdsHealth>,
    ai: AiConfigService,
    observers: DataPlaneObservers,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    xds::data_plane_server()
        .add_service(xds::ads_service_with(
            snapshots,
            xds_health,
            observers.traces,
            observers.report,
        ))
        .add_service(observers.stats.service())
        .add_service(ai.into_server())
        .serve_with_incoming_shutdown(xds::data_plane_incoming(listener), shutdown)
        .await
}

/// Runs the hub until `shutdown` completes, with a fixed configuration.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_reloading(config, None, shutdown).await
}

/// Runs the hub until `shutdown` completes; with `reload`, re-reads the configuration file when
/// it changes or when asked (`crate::reload`).
pub async fn run_reloading(
    config: Config,
    reload: Option<ReloadSource>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let config = Arc::new(config);
    // A client certificate is asked for but optional in the handshake, so that an agent without
    // one can call EnrollService/Enroll; Sync and Renew refuse calls without a verified one
    // (`sync::identify`). The hub does the handshake itself to log every refusal with its reason.
    let tls = handshake::server_config(
        &read_pki(&config, HUB_CERT)?,
        &read_pki(&config, HUB_KEY)?,
        &read_pki(&config, CA_CERT)?,
    )
    .map_err(RunError::Identity)?;
    let hub_ca = HubCa::load(&config.pki_dir).map_err(|e| RunError::Identity(e.to_string()))?;
    let token_key =
        TokenKey::load_or_create(&config.pki_dir).map_err(|e| RunError::Identity(e.to_string()))?;

    // Tenant private keys are sealed at rest under a key kept next to the CA.
    let sealer = crate::seal::Sealer::load_or_create(&config.pki_dir)
        .map_err(crate::store::StoreError::from)?;
    let store = Store::on(crate::store::kv::configured(&config)?).sealed(sealer)?;
    tracing::info!(store = %store.describe(), "store opened");
    let fleet = Arc::new(Fleet::open(config.clone(), store)?);

    // The first snapshot is the stored intent, so Envoy gets the last accepted configuration
    // before any agent reconnects.
    // The compile loop's memo: each cluster's compiled part, rebuilt only when it changes.
    let mut memo = CompileMemo::default();
    let (snapshot, statuses) =
        compile_view_with(&mut memo, &fleet.view(), &config, &XdsHealth::default());
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(snapshot));
    let (status_tx, status_rx) = watch::channel(statuses);
    let (health_tx, health_rx) = watch::channel(XdsHealth::default());
    // The AI gateways' per-tenant versions (one writer: the publisher task) and what each
    // gateway serves and refuses (written by their streams, read by the compile loop).
    // The same task keeps the MCP session secrets (in the store) and rotates them.
    let (published_rx, publisher_task) = ai_config::start_publisher(
        snapshot_rx.clone(),
        ai_config::SessionKeys {
            store: fleet.clone(),
            rotation: config.mcp_session_keys,
        },
    )?;
    let (ai_health_tx, ai_health_rx) = watch::channel(AiGatewayHealth::default());
    // Budgets and reported usage: counted by the AI config service, read by the admin API.
    let ai_accounts = ai_config::AiAccounts::default();
    // MCP tool pins: one writer per hub (the pins task), kept in the store (guarded writes
    // when hubs share it), followed by every AI config stream and by the compile loop (the
    // backends' ToolsPinned condition).
    let (pins_link, pins_task) = {
        let stored = fleet.store().load_mcp_pins()?;
        let f = fleet.clone();
        ai_config::pins::start_pins(
            stored,
            published_rx.clone(),
            move |tenant, expected, rows| {
                f.store()
                    .swap_mcp_pins(tenant, expected, rows)
                    .map_err(|e| e.to_string())
            },
        )
    };

    let pins_from_other_hubs = pins_link.stored.clone();

    // The operator's metrics read the same channels (receivers only).
    // Envoy's request stats per tenant, from its stats sink on the data-plane port.
    let envoy_stats = Arc::new(crate::envoy_stats::EnvoyStats::default());
    let metrics = {
        let mut m = crate::metrics::HubMetrics::new();
        m.register_envoy_stats(envoy_stats.clone());
        Arc::new(m)
    };
    let metric_sources = Arc::new(crate::metrics::Sources {
        fleet: fleet.clone(),
        statuses: status_rx.clone(),
        xds: health_rx.clone(),
        ai: ai_health_rx.clone(),
        snapshots: snapshot_rx.clone(),
        store_path: config.store_path.clone(),
        ai_usage: Some(ai_accounts.usage.clone()),
    });
    // The admin API reads the same data-plane health, and the AI accounts and catalogs.
    let admin_health = (health_rx.clone(), ai_health_rx.clone());
    let admin_ai = crate::admin::api::AiSources {
        published: published_rx.clone(),
        pins: pins_link.book.clone(),
        accounts: ai_accounts.clone(),
    };
    // What the ADS streams report: the connected Envoys, ACK/NACK counts, update-to-ACK times.
    let data_plane = Arc::new(crate::data_plane::DataPlaneReport::new(metrics.xds.clone()));
    data_plane.published(&snapshot_rx.borrow(), None);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // Traces (docs/operations.md, "Traces"): accepted changes go from the agents' streams to the
    // compile loop, and each published snapshot's compile span to the xDS streams.
    let pending_changes = Arc::new(crate::sync::traces::PendingChanges::default());
    let snapshot_traces = Arc::new(xds::trace::SnapshotTraces::default());

    // The compile loop: the only writer of snapshot_tx and status_tx.
    let compile_task = {
        let pending_changes = pending_changes.clone();
        let snapshot_traces = snapshot_traces.clone();
        let fleet = fleet.clone();
        let metrics = metrics.clone();
        let data_plane = data_plane.clone();
        let config = config.clone();
        let mut revisions = fleet.subscribe();
        let mut health = health_rx;
        let mut ai_health = ai_health_rx;
        let mut mcp_pins = pins_link.book.clone();
        let stop = stopped();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                // Also wake when a disconnected cluster's grace period ends.
                let withdrawal = fleet.next_withdrawal();
                tokio::select! {
                    _ = &mut stop => return,
                    r = revisions.changed() => if r.is_err() { return },
                    r = health.changed() => if r.is_err() { return },
                    r = ai_health.changed() => if r.is_err() { return },
                    r = mcp_pins.changed() => if r.is_err() { return },
                    _ = async {
                        match withdrawal {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    } => tracing::info!("a disconnected cluster's grace period ended; withdrawing its intent from the data plane"),
                }
                // Taken before the view: every change taken here is in it (an Update accepted
                // later is in the next compile).
                let mut compile_span = crate::sync::traces::compile_span(&pending_changes);
                let accepted = fleet.take_accepted().map(|at| at.into_std());
                let view = fleet.view();
                let health = health.borrow_and_update().clone();
                let ai_health = ai_health.borrow_and_update().clone();
                let pins_now = mcp_pins.borrow_and_update().clone();
                let started = std::time::Instant::now();
                // Compiling is blocking work (a large cluster's part takes hundreds of
                // milliseconds in a debug build): on a blocking thread, so that agents' streams
                // and the xDS server keep being served meanwhile. The memo goes along and back.
                let compile_config = config.clone();
                let (returned, (snapshot, statuses)) =
                    match tokio::task::spawn_blocking(move || {
                        let (snapshot, mut statuses) =
                            compile_view_with(&mut memo, &view, &compile_config, &health);
                        // The AI gateways' refusals, on the AgentgatewayBackends they blame.
                        ai_config::apply_refusals(Arc::make_mut(&mut statuses), &ai_health);
                        // MCP tool pins: ToolsPinned on the AgentgatewayBackends.
                        ai_config::pins::apply_pins(
                            Arc::make_mut(&mut statuses),
                            &snapshot.ai,
                            &pins_now,
                        );
                        let out = (snapshot, statuses);
                        // Fleet::apply copies the intent's map while a view is held: drop it at once.
                        drop(view);
                        (memo, out)
                    })
                    .await
                    {
                        Ok(r) => r,
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    };
                memo = returned;
                metrics.compile.observe(started.elapsed().as_secs_f64());
                let compiled_ms = started.elapsed().as_millis() as u64;
                compile_span.set(|| {
                    vec![fleetgate_observe::trace::Attribute::new(
                        "fleetgate.clusters_recompiled",
                        memo.last_built() as i64,
                    )]
                });
                let compiled = compile_span.context();
                compile_span.end();
                snapshot_tx.send_if_modified(|cur| {
                    if **cur == snapshot {
                        false
                    } else {
                        let snapshot = Arc::new(snapshot);
                        // Recorded before the xDS streams can see the snapshot.
                        if let Some(compiled) = compiled {
                            snapshot_traces.publish(&snapshot, compiled);
                        }
                        data_plane.published(&snapshot, accepted);
                        *cur = snapshot;
                        true
                    }
                });
                status_tx.send_if_modified(|cur| {
                    if *cur == statuses {
                        false
                    } else {
                        *cur = statuses;
                        true
                    }
                });
                tracing::debug!(
                    compiled_ms,
                    clusters_recompiled = memo.last_built(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "compiled"
                );
            }
        })
    };

    let xds_listener = tokio::net::TcpListener::bind(config.xds_listen)
        .await
        .map_err(|e| RunError::Serve {
            what: "xDS",
            message: format!("cannot bind {}: {e}", config.xds_listen),
        })?;
    let xds_task = tokio::spawn(serve_data_plane_with(
        xds_listener,
        snapshot_rx,
        health_tx,
        AiConfigService::new(published_rx, ai_health_tx)
            .with_pins(pins_link)
            .with_accounts(ai_accounts.clone()),
        DataPlaneObservers {
            traces: snapshot_traces,
            report: data_plane.clone(),
            stats: envoy_stats.clone(),
        },
        stopped(),
    ));

    let agent_listener = tokio::net::TcpListener::bind(config.agent_listen)
        .await
        .map_err(|e| RunError::Serve {
            what: "agent",
            message: format!("cannot bind {}: {e}", config.agent_listen),
        })?;
    let incoming = handshake::incoming(agent_listener, tls);
    let reload_task =
        reload.map(|source| tokio::spawn(crate::reload::run(fleet.clone(), source, stopped())));
    // Ends with the process (the store's watch lives as long as the store).
    tokio::spawn(crate::replicate::run(fleet.clone(), pins_from_other_hubs));
    let service = SyncService::new(
        fleet.clone(),
        config.trust_domain.clone(),
        status_rx.clone(),
    )
    .with_pending_changes(pending_changes)
    .with_apply_histogram(metrics.apply.clone());
    let enroll = EnrollServer::new(
        fleet.clone(),
        config.trust_domain.clone(),
        hub_ca,
        token_key,
    )
    .with_metrics(metrics.enroll.clone());
    let agents = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(16))
        .add_service(
            SpokeServiceServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            EnrollServiceServer::new(enroll)
                .max_decoding_message_size(64 * 1024)
                .max_encoding_message_size(64 * 1024),
        )
        .serve_with_incoming_shutdown(incoming, stopped());
    // The admin port starts last: /readyz answering means the other servers are bound.
    let admin_task = match crate::metrics::bind(&config).await {
        Ok(None) => None,
        Ok(Some((listener, addr))) => {
            tracing::info!(admin = %addr, "admin port: /metrics, /healthz, /readyz, /api/v1/");
            let api = crate::admin::api::AdminApi::new(
                fleet.clone(),
                status_rx.clone(),
                admin_health.0,
                admin_health.1,
                TokenKey::load_or_create(&config.pki_dir)
                    .map_err(|e| RunError::Identity(e.to_string()))?,
            )
            .with_ai(admin_ai)
            .with_envoys(data_plane.envoys())
            .with_envoy_stats(envoy_stats.clone());
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
                metric_sources,
                Arc::new(api),
                stopped(),
            )))
        }
        Err(e) => {
            return Err(RunError::Serve {
                what: "admin",
                message: format!(
                    "cannot bind adminListen {}: {e}",
                    config
                        .admin_listen
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                ),
            });
        }
    };
    tracing::info!(agents = %config.agent_listen, xds = %config.xds_listen, "hub running");

    let mut agent_task = tokio::spawn(agents);
    let mut xds_task = xds_task;
    // Run until asked to stop, or until a server fails on its own.
    tokio::select! {
        _ = shutdown => tracing::info!("shutting down"),
        r = &mut agent_task => {
            let message = match r { Ok(Err(e)) => e.to_string(), _ => "stopped unexpectedly".into() };
            return Err(RunError::Serve { what: "agent", message });
        }
        r = &mut xds_task => {
            let message = match r { Ok(Err(e)) => e.to_string(), _ => "stopped unexpectedly".into() };
            return Err(RunError::Serve { what: "xDS", message });
        }
    }
    let _ = stop_tx.send(true);
    let _ = compile_task.await;
    // The compile loop dropped the snapshot sender: the publisher ends.
    let _ = publisher_task.await;
    // The publisher is gone: the pins task ends.
    let _ = pins_task.await;
    if let Some(t) = reload_task {
        let _ = t.await;
    }
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    let xds_result = xds_task.await;
    let agent_result = agent_task.await;
    if let Ok(Err(e)) = agent_result {
        return Err(RunError::Serve {
            what: "agent",
            message: e.to_string(),
        });
    }
    if let Ok(Err(e)) = xds_result {
        return Err(RunError::Serve {
            what: "xDS",
            message: e.to_string(),
        });
    }
    Ok(())
}
