//! Route: the third stage of the request path (listen -> identify -> **route** -> provider ->
//! auth -> usage -> errors). The per-tenant route table, compiled from the validated
//! [`Config`], maps `(tenant, route)` to a [`Route`], whose backend kind picks the handler.
//!
//! The table is immutable; [`crate::publish::ConfigStore`] publishes a new one on every change and
//! a request keeps the `Arc` it looked up, so a configuration swap never disturbs a request in
//! flight. Handler kinds: LLM providers, MCP federation ([`crate::mcp`]) and A2A agents
//! ([`crate::a2a`]): each a [`BackendKind`] variant and an arm in [`dispatch`], not a new router.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::body::Incoming;

use crate::config::{Backend, BackendKind, Config};
use crate::errors::ApiError;
use crate::identify::Identity;
use crate::keys::VirtualKeys;
use crate::limit::TenantLimit;
use crate::provider::endpoints::RoundRobin;
use crate::{Body, RequestCtx};

/// Everything the gateway serves, per tenant.
#[derive(Debug, Default)]
pub struct RouteTable {
    version: u64,
    tenants: HashMap<String, Arc<TenantRoutes>>,
}

/// One tenant's routes and budget.
#[derive(Debug)]
pub struct TenantRoutes {
    pub name: Arc<str>,
    pub version: u64,
    pub limit: TenantLimit,
    /// The tenant has a budget: each of its requests is reserved with the hub first.
    pub budgeted: bool,
    /// The tenant's virtual keys ([`crate::keys`]).
    pub keys: VirtualKeys,
    routes: HashMap<String, Arc<Route>>,
}

impl TenantRoutes {
    /// The route named `name`, if the tenant has it.
    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.get(name)
    }
}

/// A route: whose it is, its name, and the backend it leads to.
#[derive(Debug)]
pub struct Route {
    pub tenant: Arc<str>,
    pub name: Arc<str>,
    pub backend: Backend,
    /// Which of the backend's endpoints (or, with `ai.groups`, which provider of a group) the
    /// next request starts with.
    pub round_robin: RoundRobin,
    /// Which providers of `ai.groups` are ejected, and until when.
    pub health: Health,
    /// The tenant's keys for sealing and opening MCP session ids (an `mcp` backend's sessions).
    pub mcp_session_keys: Option<Arc<crate::config::mcp::SessionKeyRing>>,
}

/// Ejection deadlines of a route's providers (`ai.groups`), lock-free.
#[derive(Debug)]
pub struct Health {
    since: Instant,
    /// Per provider: milliseconds after `since` until which it is skipped.
    until_ms: Vec<AtomicU64>,
}

impl Health {
    pub fn new(providers: usize) -> Self {
        Self {
            since: Instant::now(),
            until_ms: (0..providers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether provider `i` is ejected now.
    pub fn ejected(&self, i: usize) -> bool {
        self.until_ms
            .get(i)
            .is_some_and(|u| u.load(Ordering::Relaxed) > self.now_ms())
    }

    /// Skips provider `i` for `d`.
    pub fn eject(&self, i: usize, d: Duration) {
        if let Some(u) = self.until_ms.get(i) {
            let until = self
                .now_ms()
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            u.store(until, Ordering::Relaxed);
        }
    }
}

impl RouteTable {
    /// Compiles a validated configuration. A tenant whose concurrency limit is unchanged keeps
    /// its budget from `previous`, so requests in flight across a swap still count.
    pub fn compile(config: &Config, previous: &RouteTable) -> Self {
        let tenants = config
            .tenants
            .iter()
            .map(|(name, tenant)| {
                let limit = previous
                    .tenants
                    .get(name)
                    .map(|t| &t.limit)
                    .filter(|l| l.max() == tenant.max_concurrency)
                    .cloned()
                    .unwrap_or_else(|| TenantLimit::new(tenant.max_concurrency));
                let tenant_name: Arc<str> = name.as_str().into();
                let routes = tenant
                    .routes
                    .iter()
                    .map(|(route, backend)| {
                        let providers = match &backend.kind {
                            BackendKind::Ai(_) => 1,
                            BackendKind::AiGroups(g) => g.iter().map(Vec::len).sum(),
                            BackendKind::Mcp(_) => 0,
                            BackendKind::A2a(_) => 1,
                        };
                        let r = Route {
                            tenant: tenant_name.clone(),
                            name: route.as_str().into(),
                            backend: backend.clone(),
                            round_robin: RoundRobin::default(),
                            health: Health::new(providers),
                            mcp_session_keys: tenant.mcp_session_keys.clone(),
                        };
                        (route.clone(), Arc::new(r))
                    })
                    .collect();
                let t = TenantRoutes {
                    name: tenant_name,
                    version: tenant.version,
                    limit,
                    budgeted: tenant.budget.is_some(),
                    keys: VirtualKeys::compile(&tenant.virtual_keys),
                    routes,
                };
                (name.clone(), Arc::new(t))
            })
            .collect();
        Self {
            version: config.version,
            tenants,
        }
    }

    /// The version of the configuration this table was compiled from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The tenant, if configured here.
    pub fn tenant(&self, name: &str) -> Option<&Arc<TenantRoutes>> {
        self.tenants.get(name)
    }

    /// The route of `id`. An unknown tenant and an unknown route answer the same 404, so a
    /// client cannot probe which tenants exist.
    pub fn lookup(&self, id: &Identity) -> Result<(Arc<TenantRoutes>, Arc<Route>), ApiError> {
        self.tenants
            .get(&id.tenant)
            .and_then(|t| t.routes.get(&id.route).map(|r| (t.clone(), r.clone())))
            .ok_or_else(|| ApiError::unknown_route(&id.tenant, &id.route))
    }
}

/// Reads the request body once (bounded: 413 beyond), so that providers take it as bytes and a
/// failover can send it again, and hands the request to the handler of the route's backend kind.
pub async fn dispatch(ctx: RequestCtx, req: Request<Incoming>) -> hyper::Response<Body> {
    let route = ctx.route.clone();
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, ctx.limits.max_request_bytes)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return ApiError::too_large(ctx.limits.max_request_bytes).into_response();
        }
        Err(e) => {
            return ApiError::bad_request(format!("reading the request body: {e}")).into_response();
        }
    };
    let req = Request::from_parts(parts, bytes);
    let policies = &route.backend.policies;
    match &route.backend.kind {
        BackendKind::Ai(ai) => crate::provider::handle(ctx, ai, policies, req).await,
        BackendKind::AiGroups(groups) => {
            crate::provider::failover::handle(ctx, groups, policies, req).await
        }
        BackendKind::Mcp(mcp) => crate::mcp::serve::handle(ctx, mcp, req).await,
        BackendKind::A2a(a2a) => crate::a2a::handle(ctx, a2a, policies, req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn config(yaml: &str) -> Config {
        RawConfig::from_yaml(yaml).unwrap().validate().unwrap()
    }

    const TWO: &str = r#"
tenants:
  a:
    maxConcurrency: 2
    routes:
      r1: { ai: { provider: { openai: {}, host: 127.0.1.1, port: 1 } } }
  b:
    routes:
      r1: { ai: { provider: { openai: {}, host: 127.0.2.1, port: 1 } } }
"#;

    fn id(t: &str, r: &str) -> Identity {
        Identity {
            tenant: t.into(),
            route: r.into(),
        }
    }

    #[test]
    fn routes_are_per_tenant() {
        let table = RouteTable::compile(&config(TWO), &RouteTable::default());
        let (_, ra) = table.lookup(&id("a", "r1")).unwrap();
        let (_, rb) = table.lookup(&id("b", "r1")).unwrap();
        let host = |r: &Route| match &r.backend.kind {
            BackendKind::Ai(ai) => ai.host.clone(),
            BackendKind::AiGroups(g) => g[0][0].host.clone(),
            BackendKind::Mcp(m) => m.targets[0].host.clone(),
            BackendKind::A2a(a) => a.host.clone(),
        };
        assert_eq!(host(&ra), "127.0.1.1");
        assert_eq!(host(&rb), "127.0.2.1");
        for missing in [id("a", "r2"), id("c", "r1")] {
            let err = table.lookup(&missing).unwrap_err();
            assert_eq!(err.status, hyper::StatusCode::NOT_FOUND);
        }
    }

    #[test]
    fn a_swap_keeps_the_budget_of_a_tenant_whose_limit_is_unchanged() {
        let first = RouteTable::compile(&config(TWO), &RouteTable::default());
        let held = first.tenant("a").unwrap().limit.try_acquire().unwrap();
        let second = RouteTable::compile(&config(TWO), &first);
        assert_eq!(second.tenant("a").unwrap().limit.in_flight(), 1);
        let changed = TWO.replace("maxConcurrency: 2", "maxConcurrency: 3");
        let third = RouteTable::compile(&config(&changed), &second);
        assert_eq!(third.tenant("a").unwrap().limit.in_flight(), 0);
        drop(held);
    }
}
