//! The configuration model: the file/wire format ([`RawConfig`], serde) and the typed model it is
//! validated into ([`Config`]). Validation is a pure function with table tests; nothing past it
//! sees an unvalidated value.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

/// Default per-tenant limit of requests in flight on one gateway replica.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 256;
/// Default time an upstream has to send its response headers.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Most endpoints one backend may list.
pub const MAX_ENDPOINTS: usize = 1024;

/// A credential: shown as `<redacted>` by `Debug`, never `Display`ed, never serialised.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that puts it on the wire ([`crate::auth`]).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

// ---------------------------------------------------------------------------------------------
// The file format (YAML or JSON; the hub's stream converts into the same structs).

/// The whole configuration, as written in the `--config` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// Version of this configuration (the file's author or the hub increments it).
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub tenants: BTreeMap<String, RawTenant>,
}

/// One tenant's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTenant {
    /// Version of this tenant's configuration; defaults to the file's version.
    pub version: Option<u64>,
    /// Requests of this tenant in flight at once on one replica (default 256).
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub routes: BTreeMap<String, RawBackend>,
    /// The tenant's budget. Counted by the hub across every replica (the `Spend` call): a
    /// gateway configured from a file has no hub, so it refuses the tenant's requests (503)
    /// rather than let them through uncounted.
    pub budget: Option<RawBudget>,
    /// Keys the tenant hands its users, by id (`<cluster>/<namespace>/<name>` from the hub). A
    /// route that any key names serves only requests presenting one of its keys.
    #[serde(default)]
    pub virtual_keys: BTreeMap<String, RawVirtualKey>,
    /// The key (64 hex digits) the tenant's MCP session ids are sealed with; the hub sends the
    /// same one to every replica, so any replica opens a session another one issued. Unset: a
    /// key of this process (sessions stay on this replica).
    pub mcp_session_key: Option<Secret>,
    /// Or a ring of keys `[{id, key}]`, the current one first (the hub sends this form and
    /// rotates it): ids sealed under any key of the ring open.
    #[serde(default)]
    pub mcp_session_keys: Vec<super::mcp::RawSessionKey>,
}

/// A virtual key as written: the SHA-256 of the key (64 hex digits; the key itself is never in
/// the configuration), the routes it opens and its own budget.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVirtualKey {
    pub sha256: String,
    #[serde(default)]
    pub routes: Vec<String>,
    pub budget: Option<RawBudget>,
}

/// A budget as the hub sends it: requests and tokens per window (`0`/unset: not limited).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBudget {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub window_seconds: u64,
}

/// What a route leads to: exactly one kind (`ai` or `a2a`; `mcp` with issue 12).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBackend {
    pub ai: Option<RawAi>,
    /// MCP federation: several MCP servers behind one endpoint ([`super::mcp`]).
    pub mcp: Option<super::mcp::RawMcp>,
    /// An agent speaking the A2A protocol (agentgateway's `spec.a2a`).
    pub a2a: Option<RawA2a>,
    #[serde(default)]
    pub policies: RawPolicies,
}

/// agentgateway's `a2a{host, port}`, and (from the hub) the endpoints to dial instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawA2a {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `ip:port` pairs dialled round-robin; `host` is then only the Host header.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// HTTPS to `host:port` (an external agent). Not with `endpoints`.
    #[serde(default)]
    pub tls: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAi {
    /// One provider; or `groups`.
    pub provider: Option<RawProvider>,
    /// Priority failover: the first group's providers are used while one of them answers; a
    /// 429, a 5xx, a connect error or a timeout moves the request to the next provider.
    pub groups: Option<Vec<RawGroup>>,
}

/// One priority group of `ai.groups`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGroup {
    pub providers: Vec<RawProvider>,
}

/// agentgateway's `ai.provider`: one provider kind plus host/port/path overrides, and (a
/// fleetgate addition, filled by the hub from the tenant's resolved Service) the endpoints to
/// dial instead of `host:port`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProvider {
    /// A name for logs (`ai.groups[].providers[].name`).
    pub name: Option<String>,
    pub openai: Option<RawOpenAi>,
    /// Anthropic's Messages API; same fields as `openai`.
    pub anthropic: Option<RawOpenAi>,
    /// Gemini's `generateContent` API; same fields as `openai`.
    pub gemini: Option<RawOpenAi>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    /// `ip:port` pairs (`[v6]:port` for IPv6). When not empty, requests are spread over them
    /// round-robin and `host` is only the Host header.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// HTTPS to `host:port`, its certificate verified for `host` (external providers). Not
    /// with `endpoints`.
    #[serde(default)]
    pub tls: bool,
    /// A provider of `ai.groups` only: its own `policies.auth` (agentgateway's
    /// `providers[].policies`), used instead of the backend's.
    pub policies: Option<RawProviderPolicies>,
}

/// `ai.groups[].providers[].policies`: what a provider of a group may set for itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProviderPolicies {
    pub auth: Option<RawAuth>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOpenAi {
    /// Overrides the `model` of every request.
    pub model: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicies {
    pub auth: Option<RawAuth>,
    /// Time the upstream has to send its response headers, in milliseconds (default 120 s).
    pub request_timeout_ms: Option<u64>,
    /// agentgateway's `policies.ai.modelAliases`: a requested model -> the model sent upstream.
    #[serde(default)]
    pub model_aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAuth {
    /// The provider key, injected in the provider's scheme.
    pub key: Option<Secret>,
    /// The client's own `Authorization` goes to the provider (agentgateway's
    /// `policies.auth.passthrough`); exclusive with `key`.
    #[serde(default)]
    pub passthrough: bool,
}

// ---------------------------------------------------------------------------------------------
// The typed model.

/// The validated configuration of one gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub version: u64,
    pub tenants: BTreeMap<String, TenantConfig>,
}

/// One tenant: its routes and its share of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantConfig {
    pub version: u64,
    pub max_concurrency: u32,
    /// Route name (the `x-fleetgate-route` header Envoy sets) -> backend.
    pub routes: BTreeMap<String, Backend>,
    /// The tenant's budget across every replica, counted by the hub; `None`: unlimited.
    pub budget: Option<Budget>,
    /// The tenant's virtual keys, by id.
    pub virtual_keys: BTreeMap<String, VirtualKeyConfig>,
    /// The keys the tenant's MCP session ids are sealed with (`None`: the process's own).
    pub mcp_session_keys: Option<std::sync::Arc<super::mcp::SessionKeyRing>>,
}

/// A validated virtual key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualKeyConfig {
    /// SHA-256 of the key a client presents.
    pub sha256: [u8; 32],
    /// The routes it opens; routes the tenant does not have are ignored (the hub may withhold
    /// one whose endpoints are all gone).
    pub routes: Vec<String>,
    /// The key's own budget, counted by the hub; `None`: only the tenant's applies.
    pub budget: Option<Budget>,
}

/// Requests and tokens per fixed window of `window_seconds`; `None`: that measure is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub window_seconds: u64,
}

/// A backend: what handles the route, and the policies around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub kind: BackendKind,
    pub policies: Policies,
}

/// The kinds of handler a route can lead to. MCP federation (issue 12) becomes another variant
/// here and another arm in [`crate::route::dispatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// An LLM provider.
    Ai(AiBackend),
    /// LLM providers in priority groups (`ai.groups`), failing over in order.
    AiGroups(Vec<Vec<AiBackend>>),
    /// MCP servers federated behind one endpoint (`mcp.targets`).
    Mcp(super::mcp::McpBackend),
    /// An A2A agent ([`crate::a2a`]).
    A2a(A2aBackend),
}

/// An agent speaking the A2A protocol, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A2aBackend {
    /// The Host header, and where to connect without endpoints.
    pub host: String,
    pub port: u16,
    /// Where to connect, round-robin; empty: `host:port`.
    pub endpoints: Vec<SocketAddr>,
    /// HTTPS, the certificate verified for `host`; only without `endpoints`.
    pub tls: bool,
}

/// An LLM provider and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiBackend {
    pub provider: Provider,
    pub host: String,
    pub port: u16,
    /// Replaces the chat completions path (e.g. `/openai/deployments/x/chat/completions`).
    pub path: Option<String>,
    /// Replaces the `/v1` prefix of every path (e.g. `/api/openai/v1`).
    pub path_prefix: Option<String>,
    /// Where to connect, round-robin; empty: `host:port`.
    pub endpoints: Vec<SocketAddr>,
    /// HTTPS, the certificate verified for `host` (external providers); only without
    /// `endpoints`.
    pub tls: bool,
    /// A provider of `ai.groups` with its own `policies.auth`: used instead of the backend's.
    pub auth: Option<BackendAuth>,
}

/// Provider kinds, each with its own auth scheme; clients of another API are translated
/// (`crate::translate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Any OpenAI-compatible server (OpenAI, llama.cpp, vLLM, Ollama...).
    OpenAi { model: Option<String> },
    /// Anthropic's Messages API; OpenAI-speaking clients are translated.
    Anthropic { model: Option<String> },
    /// Gemini's `generateContent` API; OpenAI-speaking clients are translated.
    Gemini { model: Option<String> },
}

impl Provider {
    /// The model every request is sent with, when the backend overrides it.
    pub fn model_override(&self) -> Option<&str> {
        match self {
            Self::OpenAi { model } | Self::Anthropic { model } | Self::Gemini { model } => {
                model.as_deref()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    pub auth: Option<BackendAuth>,
    pub request_timeout: Duration,
    /// A requested model -> the model sent upstream (after the provider's fixed model, see
    /// [`crate::provider::upstream_model`]); at most [`MAX_MODEL_ALIASES`].
    pub model_aliases: BTreeMap<String, String>,
}

/// The most entries of `policies.modelAliases` (agentgateway's limit).
pub const MAX_MODEL_ALIASES: usize = 64;

/// `policies.modelAliases`: at most [`MAX_MODEL_ALIASES`], names and models of 1..=256 visible
/// ASCII bytes (what the hub admits; a gateway fed by a file is held to the same).
fn validate_model_aliases(
    at: &str,
    aliases: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    if aliases.len() > MAX_MODEL_ALIASES {
        return Err(field(
            at,
            format!(
                "lists {} aliases, at most {MAX_MODEL_ALIASES} are allowed",
                aliases.len()
            ),
        ));
    }
    let visible =
        |s: &str| (1..=256).contains(&s.len()) && s.bytes().all(|c| (0x21..0x7f).contains(&c));
    for (name, model) in aliases {
        if !visible(name) {
            return Err(field(
                at,
                format!(
                    "alias {:?} must be 1..=256 visible ASCII bytes",
                    name.chars().take(64).collect::<String>()
                ),
            ));
        }
        if !visible(model) {
            return Err(field(
                format!("{at}.{name}"),
                "the model must be 1..=256 visible ASCII bytes",
            ));
        }
    }
    Ok(aliases.clone())
}

/// How the gateway authenticates to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAuth {
    /// A key, sent in the provider's scheme (`Authorization: Bearer` for OpenAI-compatible).
    Key(Secret),
    /// The client's own `Authorization` header goes to the provider unchanged.
    Passthrough,
}

/// Why a configuration was refused. Every variant names where the problem is
/// (`tenants.<t>.routes.<r>...`) and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A tenant or route name is empty, too long or has characters a header cannot carry.
    #[error("{at}: name {name:?} is not valid ({why})")]
    Name {
        at: String,
        name: String,
        why: &'static str,
    },
    /// A field is missing or has a value the gateway cannot use.
    #[error("{at}: {why}")]
    Field { at: String, why: String },
    /// The file or message could not be parsed at all.
    #[error("cannot parse the configuration: {0}")]
    Parse(String),
}

pub(super) fn field(at: impl Into<String>, why: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        at: at.into(),
        why: why.into(),
    }
}

/// Tenant and route names travel in headers that Envoy sets; the gateway looks them up verbatim.
/// Letters, digits and `-._/` (a route is typically `<namespace>/<name>`), 1..=253 bytes.
pub fn check_name(at: &str, name: &str) -> Result<(), ConfigError> {
    let bad = |why| {
        Err(ConfigError::Name {
            at: at.to_string(),
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b))
    {
        return bad("only letters, digits and - . _ / are allowed");
    }
    Ok(())
}

pub(super) fn check_host(at: &str, host: &str) -> Result<(), ConfigError> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(field(
            at,
            format!(
                "host {host:?} is neither an IP address nor a DNS name (no scheme, port or path here)"
            ),
        ))
    }
}

pub(super) fn check_path(at: &str, path: &str) -> Result<(), ConfigError> {
    let ok = path.starts_with('/')
        && path.len() <= 1024
        && !path.contains(['?', '#'])
        && path.parse::<hyper::http::uri::PathAndQuery>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(field(
            at,
            format!(
                "{path:?} is not an absolute URL path (it must start with '/', without query or fragment)"
            ),
        ))
    }
}

/// `ip:port` literals, no more than [`MAX_ENDPOINTS`], none with port 0 or an unspecified or
/// multicast address (nothing can be dialled there).
pub(super) fn check_endpoints(at: &str, raw: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    if raw.len() > MAX_ENDPOINTS {
        return Err(field(
            at,
            format!(
                "{} endpoints; at most {MAX_ENDPOINTS} are allowed",
                raw.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let Ok(addr) = text.parse::<SocketAddr>() else {
            return Err(field(
                at,
                format!(
                    "{text:?} is not an IP address and port (write 10.0.0.7:8080, or [fd00::7]:8080 for IPv6; names are resolved before they get here)"
                ),
            ));
        };
        if addr.port() == 0 {
            return Err(field(at, format!("{text:?}: 0 is not a port")));
        }
        if addr.ip().is_unspecified() || addr.ip().is_multicast() {
            return Err(field(
                at,
                format!("{text:?}: an unspecified or multicast address cannot be dialled"),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

impl RawConfig {
    /// Parses YAML (or JSON, which is YAML).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        serde_yaml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Validates the whole configuration; the first problem found is reported.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut tenants = BTreeMap::new();
        for (name, raw) in &self.tenants {
            tenants.insert(name.clone(), raw.validate(name, self.version)?);
        }
        Ok(Config {
            version: self.version,
            tenants,
        })
    }
}

impl RawTenant {
    /// Validates one tenant (`default_version` when it has none of its own).
    pub fn validate(&self, name: &str, default_version: u64) -> Result<TenantConfig, ConfigError> {
        let at = format!("tenants.{name}");
        check_name(&at, name)?;
        let max_concurrency = self.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if !(1..=1_000_000).contains(&max_concurrency) {
            return Err(field(
                format!("{at}.maxConcurrency"),
                format!("{max_concurrency} is outside 1..=1000000"),
            ));
        }
        let mut routes = BTreeMap::new();
        for (route, raw) in &self.routes {
            let at = format!("{at}.routes.{route}");
            check_name(&at, route)?;
            routes.insert(route.clone(), raw.validate(&at)?);
        }
        let budget = validate_budget(&format!("{at}.budget"), self.budget.as_ref())?;
        let virtual_keys = validate_keys(&at, &self.virtual_keys, &routes)?;
        let mcp_session_keys = super::mcp::SessionKeyRing::parse(
            &at,
            self.mcp_session_key.as_ref(),
            &self.mcp_session_keys,
        )?
        .map(std::sync::Arc::new);
        Ok(TenantConfig {
            version: self.version.unwrap_or(default_version),
            max_concurrency,
            routes,
            budget,
            virtual_keys,
            mcp_session_keys,
        })
    }
}

/// A budget (`at` names it), `None` when it limits nothing.
fn validate_budget(at: &str, b: Option<&RawBudget>) -> Result<Option<Budget>, ConfigError> {
    match b {
        Some(b) if b.window_seconds == 0 => Err(field(
            format!("{at}.windowSeconds"),
            "0 is not a window; use at least 1".to_string(),
        )),
        Some(b) => Ok(Some(Budget {
            requests: b.requests.filter(|n| *n > 0),
            tokens: b.tokens.filter(|n| *n > 0),
            window_seconds: b.window_seconds,
        })
        .filter(|b| b.requests.is_some() || b.tokens.is_some())),
        None => Ok(None),
    }
}

/// Most virtual keys one tenant may have, and most routes one key may open.
pub const MAX_VIRTUAL_KEYS: usize = 100_000;
pub const MAX_KEY_ROUTES: usize = 64;

/// 64 hex digits -> 32 bytes.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// The tenant's virtual keys: each hash 32 bytes and used once, 1..=[`MAX_KEY_ROUTES`] route
/// names, none a `passthrough` route (it would hand the client's key, the virtual key, to the
/// provider).
fn validate_keys(
    at: &str,
    raw: &BTreeMap<String, RawVirtualKey>,
    routes: &BTreeMap<String, Backend>,
) -> Result<BTreeMap<String, VirtualKeyConfig>, ConfigError> {
    if raw.len() > MAX_VIRTUAL_KEYS {
        return Err(field(
            format!("{at}.virtualKeys"),
            format!("{} keys; at most {MAX_VIRTUAL_KEYS} are allowed", raw.len()),
        ));
    }
    let mut out = BTreeMap::new();
    let mut seen: BTreeMap<[u8; 32], &str> = BTreeMap::new();
    for (id, k) in raw {
        let at = format!("{at}.virtualKeys.{id}");
        check_name(&at, id)?;
        let Some(sha256) = parse_sha256(&k.sha256) else {
            return Err(field(
                format!("{at}.sha256"),
                "must be the SHA-256 of the key as 64 hex digits (e.g. the output of `printf %s \"$KEY\" | sha256sum`)",
            ));
        };
        if let Some(first) = seen.insert(sha256, id) {
            return Err(field(
                format!("{at}.sha256"),
                format!("the same key as virtual key {first}; give each key its own value"),
            ));
        }
        if k.routes.is_empty() || k.routes.len() > MAX_KEY_ROUTES {
            return Err(field(
                format!("{at}.routes"),
                format!("must list 1..={MAX_KEY_ROUTES} routes"),
            ));
        }
        for (i, r) in k.routes.iter().enumerate() {
            check_name(&format!("{at}.routes[{i}]"), r)?;
            if routes
                .get(r)
                .and_then(|b| b.policies.auth.as_ref())
                .is_some_and(|a| *a == BackendAuth::Passthrough)
            {
                return Err(field(
                    format!("{at}.routes[{i}]"),
                    format!(
                        "route {r} passes the client's Authorization through to the provider, which would hand it the virtual key; give the route its own key or remove it from this key"
                    ),
                ));
            }
        }
        let budget = validate_budget(&format!("{at}.budget"), k.budget.as_ref())?;
        out.insert(
            id.clone(),
            VirtualKeyConfig {
                sha256,
                routes: k.routes.clone(),
                budget,
            },
        );
    }
    Ok(out)
}

/// Most priority groups in `ai.groups`, and most providers in one group.
pub const MAX_GROUPS: usize = 16;

/// One `ai.provider` (or, `in_group`, one provider of a group), at `at_p`.
fn validate_provider(
    p: &RawProvider,
    at_p: &str,
    in_group: bool,
) -> Result<AiBackend, ConfigError> {
    if let Some(name) = &p.name {
        check_name(&format!("{at_p}.name"), name)?;
    }
    let auth = match &p.policies {
        Some(_) if !in_group => {
            return Err(field(
                format!("{at_p}.policies"),
                "only a provider of `groups` has policies of its own; set the backend's `policies`",
            ));
        }
        Some(policies) => validate_auth(&format!("{at_p}.policies.auth"), policies.auth.as_ref())?,
        None => None,
    };
    let check_model = |kind: &str, model: &Option<String>| -> Result<(), ConfigError> {
        match model {
            Some(m) if m.is_empty() || m.len() > 256 => Err(field(
                format!("{at_p}.{kind}.model"),
                "must be 1..=256 bytes when set",
            )),
            _ => Ok(()),
        }
    };
    let provider = match (&p.openai, &p.anthropic, &p.gemini) {
        (Some(openai), None, None) => {
            check_model("openai", &openai.model)?;
            Provider::OpenAi {
                model: openai.model.clone(),
            }
        }
        (None, Some(anthropic), None) => {
            check_model("anthropic", &anthropic.model)?;
            Provider::Anthropic {
                model: anthropic.model.clone(),
            }
        }
        (None, None, Some(gemini)) => {
            check_model("gemini", &gemini.model)?;
            Provider::Gemini {
                model: gemini.model.clone(),
            }
        }
        (None, None, None) => {
            return Err(field(
                at_p,
                "no provider kind: `openai` (any OpenAI-compatible server), `anthropic` or `gemini`",
            ));
        }
        _ => {
            return Err(field(
                at_p,
                "several provider kinds: keep exactly one of `openai`, `anthropic` and `gemini`",
            ));
        }
    };
    let Some(host) = &p.host else {
        return Err(field(
            format!("{at_p}.host"),
            "required: the gateway has no default host for a provider yet",
        ));
    };
    check_host(&format!("{at_p}.host"), host)?;
    let port = match p.port {
        Some(0) => return Err(field(format!("{at_p}.port"), "0 is not a port")),
        Some(port) => port,
        None => 80,
    };
    if let Some(path) = &p.path {
        check_path(&format!("{at_p}.path"), path)?;
    }
    if let Some(prefix) = &p.path_prefix {
        check_path(&format!("{at_p}.pathPrefix"), prefix)?;
    }
    let endpoints = check_endpoints(&format!("{at_p}.endpoints"), &p.endpoints)?;
    if p.tls && !endpoints.is_empty() {
        return Err(field(
            format!("{at_p}.tls"),
            "TLS to a backend's endpoints is not supported; use tls with host only (an external provider)".to_string(),
        ));
    }
    Ok(AiBackend {
        provider,
        host: host.clone(),
        port,
        path: p.path.clone(),
        path_prefix: p.path_prefix.clone(),
        endpoints,
        tls: p.tls,
        auth,
    })
}

/// A `policies.auth` at `at`: a key (printable ASCII, never shown in a message) or passthrough.
fn validate_auth(at: &str, raw: Option<&RawAuth>) -> Result<Option<BackendAuth>, ConfigError> {
    let passthrough = raw.is_some_and(|a| a.passthrough);
    match raw.and_then(|a| a.key.as_ref()) {
        Some(_) if passthrough => Err(field(
            at,
            "set either `key` or `passthrough: true`, not both",
        )),
        None if passthrough => Ok(Some(BackendAuth::Passthrough)),
        None => Ok(None),
        Some(key) => {
            let k = key.expose();
            if k.is_empty() || k.len() > 8192 {
                return Err(field(format!("{at}.key"), "must be 1..=8192 bytes"));
            }
            if !k.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                // The key itself is never part of a message.
                return Err(field(
                    format!("{at}.key"),
                    "must be printable ASCII without spaces (it goes into a header)",
                ));
            }
            Ok(Some(BackendAuth::Key(key.clone())))
        }
    }
}

/// `a2a` at `at`: a host (IP address or DNS name), a port (required), endpoints, TLS only
/// without endpoints.
fn validate_a2a(a: &RawA2a, at: &str) -> Result<A2aBackend, ConfigError> {
    let Some(host) = &a.host else {
        return Err(field(format!("{at}.host"), "required: where the agent is"));
    };
    check_host(&format!("{at}.host"), host)?;
    let port = match a.port {
        None | Some(0) => {
            return Err(field(
                format!("{at}.port"),
                "required, 1..=65535: the agent's port",
            ));
        }
        Some(p) => p,
    };
    let endpoints = check_endpoints(&format!("{at}.endpoints"), &a.endpoints)?;
    if a.tls && !endpoints.is_empty() {
        return Err(field(
            format!("{at}.tls"),
            "TLS to a backend's endpoints is not supported; use tls with host only (an external agent)",
        ));
    }
    Ok(A2aBackend {
        host: host.clone(),
        port,
        endpoints,
        tls: a.tls,
    })
}

impl RawBackend {
    fn validate(&self, at: &str) -> Result<Backend, ConfigError> {
        if let Some(mcp) = &self.mcp {
            if self.ai.is_some() || self.a2a.is_some() {
                return Err(field(
                    at,
                    "a backend needs exactly one kind: `ai`, `mcp` or `a2a`",
                ));
            }
            return Ok(Backend {
                kind: BackendKind::Mcp(mcp.validate(&format!("{at}.mcp"))?),
                policies: Policies {
                    auth: None,
                    request_timeout: self.request_timeout(at)?,
                    model_aliases: BTreeMap::new(),
                },
            });
        }
        let kind = match (&self.ai, &self.a2a) {
            (None, Some(a2a)) => {
                if !self.policies.model_aliases.is_empty() {
                    return Err(field(
                        format!("{at}.policies.modelAliases"),
                        "applies to `ai` backends only; remove it from an `a2a` backend",
                    ));
                }
                BackendKind::A2a(validate_a2a(a2a, &format!("{at}.a2a"))?)
            }
            (Some(ai), None) => self.validate_ai(ai, at)?,
            _ => {
                return Err(field(
                    at,
                    "a backend needs exactly one kind: `ai` (an LLM provider), `mcp` (MCP servers) or `a2a` (an A2A agent)",
                ));
            }
        };
        self.finish(kind, at)
    }

    fn validate_ai(&self, ai: &RawAi, at: &str) -> Result<BackendKind, ConfigError> {
        Ok(match (&ai.provider, &ai.groups) {
            (Some(p), None) => {
                BackendKind::Ai(validate_provider(p, &format!("{at}.ai.provider"), false)?)
            }
            (None, Some(groups)) => {
                if groups.is_empty() || groups.len() > MAX_GROUPS {
                    return Err(field(
                        format!("{at}.ai.groups"),
                        format!("must list 1..={MAX_GROUPS} groups"),
                    ));
                }
                let mut out = Vec::with_capacity(groups.len());
                for (g, group) in groups.iter().enumerate() {
                    if group.providers.is_empty() || group.providers.len() > MAX_GROUPS {
                        return Err(field(
                            format!("{at}.ai.groups[{g}].providers"),
                            format!("must list 1..={MAX_GROUPS} providers"),
                        ));
                    }
                    let mut members = Vec::with_capacity(group.providers.len());
                    for (i, p) in group.providers.iter().enumerate() {
                        members.push(validate_provider(
                            p,
                            &format!("{at}.ai.groups[{g}].providers[{i}]"),
                            true,
                        )?);
                    }
                    out.push(members);
                }
                BackendKind::AiGroups(out)
            }
            _ => {
                return Err(field(
                    format!("{at}.ai"),
                    "set exactly one of `provider` and `groups`",
                ));
            }
        })
    }

    /// The policies around `kind`.
    fn finish(&self, kind: BackendKind, at: &str) -> Result<Backend, ConfigError> {
        let auth = validate_auth(&format!("{at}.policies.auth"), self.policies.auth.as_ref())?;
        let request_timeout = self.request_timeout(at)?;
        let model_aliases = validate_model_aliases(
            &format!("{at}.policies.modelAliases"),
            &self.policies.model_aliases,
        )?;
        Ok(Backend {
            kind,
            policies: Policies {
                auth,
                request_timeout,
                model_aliases,
            },
        })
    }
}

impl RawBackend {
    /// `policies.requestTimeoutMs`, or the default.
    fn request_timeout(&self, at: &str) -> Result<Duration, ConfigError> {
        match self.policies.request_timeout_ms {
            None => Ok(DEFAULT_REQUEST_TIMEOUT),
            Some(ms) if (1..=3_600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
            Some(ms) => Err(field(
                format!("{at}.policies.requestTimeoutMs"),
                format!("{ms} is outside 1..=3600000"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version: 7
tenants:
  tenant-a:
    maxConcurrency: 8
    routes:
      llm/local-llm:
        ai:
          provider:
            openai: { model: tiny }
            host: 127.0.1.10
            port: 8080
        policies:
          auth: { key: sk-tenant-a-SECRET }
          requestTimeoutMs: 5000
          modelAliases: { fast: tiny-q4 }
  tenant-b:
    version: 3
    routes:
      cloud:
        ai:
          provider:
            openai: {}
            host: api.example.com
            pathPrefix: /openai/v1
  tenant-c:
    routes:
      c1/llm/local-llm:
        ai:
          provider:
            openai: {}
            host: llama-cpp.llm.svc.cluster.local
            port: 8080
            endpoints: ["127.0.3.1:8080", "[::1]:8081"]
        policies:
          auth: { passthrough: true }
"#;

    #[test]
    fn a_good_file_validates_into_the_typed_model() {
        let config = RawConfig::from_yaml(GOOD).unwrap().validate().unwrap();
        assert_eq!(config.version, 7);
        let a = &config.tenants["tenant-a"];
        assert_eq!((a.version, a.max_concurrency), (7, 8));
        let backend = &a.routes["llm/local-llm"];
        let BackendKind::Ai(ai) = &backend.kind else {
            panic!("a single provider")
        };
        assert_eq!(
            ai.provider,
            Provider::OpenAi {
                model: Some("tiny".into())
            }
        );
        assert_eq!((ai.host.as_str(), ai.port), ("127.0.1.10", 8080));
        assert_eq!(backend.policies.request_timeout, Duration::from_secs(5));
        assert_eq!(
            backend.policies.model_aliases,
            [("fast".to_string(), "tiny-q4".to_string())].into()
        );
        let b = &config.tenants["tenant-b"];
        assert_eq!((b.version, b.max_concurrency), (3, DEFAULT_MAX_CONCURRENCY));
        let BackendKind::Ai(ai) = &b.routes["cloud"].kind else {
            panic!("a single provider")
        };
        assert_eq!(ai.port, 80);
        assert_eq!(ai.path_prefix.as_deref(), Some("/openai/v1"));
        assert!(
            ai.endpoints.is_empty(),
            "no endpoints: host:port is dialled"
        );
        assert!(b.routes["cloud"].policies.auth.is_none());
        let c = &config.tenants["tenant-c"].routes["c1/llm/local-llm"];
        let BackendKind::Ai(ai) = &c.kind else {
            panic!("a single provider")
        };
        assert_eq!(
            ai.endpoints,
            [
                "127.0.3.1:8080".parse::<SocketAddr>().unwrap(),
                "[::1]:8081".parse().unwrap()
            ]
        );
        assert_eq!(ai.host, "llama-cpp.llm.svc.cluster.local");
        assert_eq!(c.policies.auth, Some(BackendAuth::Passthrough));
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let config = RawConfig::from_yaml(GOOD).unwrap();
        let typed = config.validate().unwrap();
        for shown in [
            format!("{config:?}"),
            format!("{typed:?}"),
            format!("{typed:#?}"),
        ] {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn virtual_keys_are_validated_and_name_where() {
        let h = "ab".repeat(32);
        let tenant = |keys: &str| {
            format!(
                "tenants:\n  t:\n    routes:\n      r: {{ ai: {{ provider: {{ openai: {{}}, host: h }} }} }}\n      p: {{ ai: {{ provider: {{ openai: {{}}, host: h }} }}, policies: {{ auth: {{ passthrough: true }} }} }}\n    virtualKeys:\n{keys}"
            )
        };
        let ok = RawConfig::from_yaml(&tenant(&format!(
            "      k1: {{ sha256: \"{h}\", routes: [r, gone], budget: {{ requests: 5, windowSeconds: 60 }} }}\n"
        )))
        .unwrap()
        .validate()
        .unwrap();
        let k = &ok.tenants["t"].virtual_keys["k1"];
        assert_eq!(k.sha256, [0xab; 32]);
        assert_eq!(
            k.routes,
            vec!["r", "gone"],
            "a route the tenant lacks is kept, unused"
        );
        assert_eq!(k.budget.unwrap().requests, Some(5));
        let cases: Vec<(String, &str)> = vec![
            (
                "      k1: { sha256: abc, routes: [r] }\n".to_string(),
                "tenants.t.virtualKeys.k1.sha256: must be the SHA-256",
            ),
            (
                format!(
                    "      k1: {{ sha256: \"{}\", routes: [r] }}\n",
                    "zz".repeat(32)
                ),
                "virtualKeys.k1.sha256",
            ),
            (
                format!("      k1: {{ sha256: \"{h}\", routes: [] }}\n"),
                "virtualKeys.k1.routes: must list 1..=64 routes",
            ),
            (
                format!("      k1: {{ sha256: \"{h}\", routes: [p] }}\n"),
                "virtualKeys.k1.routes[0]: route p passes the client's Authorization",
            ),
            (
                format!(
                    "      k1: {{ sha256: \"{h}\", routes: [r] }}\n      k2: {{ sha256: \"{h}\", routes: [r] }}\n"
                ),
                "virtualKeys.k2.sha256: the same key as virtual key k1",
            ),
            (
                format!(
                    "      k1: {{ sha256: \"{h}\", routes: [r], budget: {{ requests: 1, windowSeconds: 0 }} }}\n"
                ),
                "virtualKeys.k1.budget.windowSeconds",
            ),
            (
                format!("      \"bad key\": {{ sha256: \"{h}\", routes: [r] }}\n"),
                "virtualKeys.bad key",
            ),
        ];
        for (keys, want) in cases {
            let e = RawConfig::from_yaml(&tenant(&keys))
                .and_then(|r| r.validate())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{keys}: {e}");
        }
    }

    #[test]
    fn bad_configurations_say_where_and_why() {
        let route =
            |body: &str| format!("tenants:\n  t:\n    routes:\n      r:\n{}", indent(body, 8));
        let cases: Vec<(String, &str)> = vec![
            (
                route("policies: {}"),
                "tenants.t.routes.r: a backend needs exactly one kind",
            ),
            (
                route("ai: { provider: { host: h } }"),
                "tenants.t.routes.r.ai.provider: no provider kind",
            ),
            (
                route("ai: { provider: { openai: {} } }"),
                "tenants.t.routes.r.ai.provider.host: required",
            ),
            (
                route("ai: { provider: { openai: {}, host: 'http://x' } }"),
                "ai.provider.host: host \"http://x\"",
            ),
            (
                route("ai: { provider: { openai: {}, host: h, port: 0 } }"),
                "ai.provider.port: 0 is not a port",
            ),
            (
                route("ai: { provider: { openai: {}, host: h, path: v1/chat } }"),
                "ai.provider.path: \"v1/chat\" is not an absolute URL path",
            ),
            (
                route("ai: { provider: { openai: {}, host: h, pathPrefix: '/v1?x=1' } }"),
                "ai.provider.pathPrefix",
            ),
            (
                route("ai: { provider: { openai: { model: '' }, host: h } }"),
                "ai.provider.openai.model: must be 1..=256 bytes",
            ),
            (
                route(
                    "ai: { provider: { openai: {}, host: h } }\npolicies: { modelAliases: { 'my model': m } }",
                ),
                "policies.modelAliases: alias \"my model\" must be 1..=256 visible ASCII bytes",
            ),
            (
                route(
                    "ai: { provider: { openai: {}, host: h } }\npolicies: { modelAliases: { fast: '' } }",
                ),
                "policies.modelAliases.fast: the model must be 1..=256 visible ASCII bytes",
            ),
            (
                route(&format!(
                    "ai: {{ provider: {{ openai: {{}}, host: h }} }}\npolicies: {{ modelAliases: {{ {} }} }}",
                    (0..65)
                        .map(|i| format!("a{i}: m"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                "policies.modelAliases: lists 65 aliases, at most 64 are allowed",
            ),
            (
                route(
                    "ai: { provider: { openai: {}, host: h } }\npolicies: { auth: { key: 'a b' } }",
                ),
                "policies.auth.key: must be printable ASCII",
            ),
            (
                route(
                    "ai: { provider: { openai: {}, host: h } }\npolicies: { requestTimeoutMs: 0 }",
                ),
                "policies.requestTimeoutMs: 0 is outside",
            ),
            (
                route(
                    "ai: { provider: { openai: {}, host: h, endpoints: ['127.0.0.1:1', 'h:80'] } }",
                ),
                "ai.provider.endpoints[1]: \"h:80\" is not an IP address and port",
            ),
            (
                route("ai: { provider: { openai: {}, host: h, endpoints: ['127.0.0.1'] } }"),
                "ai.provider.endpoints[0]: \"127.0.0.1\" is not an IP address and port",
            ),
            (
                route("ai: { provider: { openai: {}, host: h, endpoints: ['127.0.0.1:0'] } }"),
                "ai.provider.endpoints[0]: \"127.0.0.1:0\": 0 is not a port",
            ),
            (
                route("ai: { provider: { openai: {}, host: h, endpoints: ['0.0.0.0:80'] } }"),
                "ai.provider.endpoints[0]: \"0.0.0.0:80\": an unspecified or multicast address",
            ),
            (
                route(
                    "ai: { provider: { openai: {}, host: h } }\npolicies: { auth: { key: k, passthrough: true } }",
                ),
                "policies.auth: set either `key` or `passthrough: true`, not both",
            ),
            (
                "tenants:\n  't e': {}\n".to_string(),
                "tenants.t e: name \"t e\" is not valid",
            ),
            (
                "tenants:\n  t:\n    maxConcurrency: 0\n".to_string(),
                "tenants.t.maxConcurrency: 0 is outside",
            ),
            (
                "tenants:\n  t:\n    routes:\n      'r\u{e9}': {}\n".to_string(),
                "is not valid (only letters",
            ),
            (
                "tenants:\n  t:\n    rotues: {}\n".to_string(),
                "cannot parse the configuration: tenants.t: unknown field `rotues`",
            ),
        ];
        for (yaml, want) in cases {
            let got = RawConfig::from_yaml(&yaml).and_then(|c| c.validate());
            let err = got.expect_err(&yaml).to_string();
            assert!(err.contains(want), "{yaml}\n  got: {err}\n want: {want}");
        }
    }

    #[test]
    fn a_bad_key_is_refused_without_repeating_it() {
        let yaml = "tenants:\n  t:\n    routes:\n      r:\n        ai: { provider: { openai: {}, host: h } }\n        policies: { auth: { key: 'sk-SECRET with space' } }\n";
        let err = RawConfig::from_yaml(yaml).unwrap().validate().unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    fn indent(s: &str, n: usize) -> String {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect()
    }

    /// A provider of `ai.groups` may carry its own `policies.auth` (agentgateway's
    /// `providers[].policies`); `ai.provider` may not (the backend's `policies` are its own).
    #[test]
    fn a_group_provider_has_its_own_auth_and_a_single_provider_has_none() {
        let yaml = r#"
version: 1
tenants:
  a:
    routes:
      r:
        ai:
          groups:
            - providers:
                - { name: p0, openai: {}, host: 127.0.1.10, port: 80, policies: { auth: { key: sk-own } } }
                - { name: p1, openai: {}, host: 127.0.1.11, port: 80 }
        policies:
          auth: { key: sk-backend }
"#;
        let c = RawConfig::from_yaml(yaml).unwrap().validate().unwrap();
        let b = &c.tenants["a"].routes["r"];
        let BackendKind::AiGroups(g) = &b.kind else {
            panic!("groups expected")
        };
        assert_eq!(
            g[0][0].auth,
            Some(BackendAuth::Key(Secret::new("sk-own".to_string())))
        );
        assert_eq!(g[0][1].auth, None);
        let single = r#"
version: 1
tenants:
  a:
    routes:
      r:
        ai:
          provider: { openai: {}, host: 127.0.1.10, port: 80, policies: { auth: { key: sk-own } } }
"#;
        let err = RawConfig::from_yaml(single)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ai.provider.policies: only a provider of `groups`"),
            "{err}"
        );
        assert!(!err.contains("sk-own"), "{err}");
    }
}
