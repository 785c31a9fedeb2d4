//! The agent gateway's part of the compiled snapshot: per tenant, the AI routes the AI gateways
//! serve. Compile (`fleetgate-hub-compile`) builds it from admitted AgentgatewayBackends and the
//! HTTPRoute backendRefs that name them; the hub's AI config stream (runtime `ai_config`) sends
//! it to every AI gateway replica; the xDS translation sends Envoy's share of those routes to
//! [`AI_GATEWAY_CLUSTER`] with [`TENANT_HEADER`] and [`ROUTE_HEADER`] set (a client's copies are
//! overwritten, so the gateway can trust them).
//!
//! The intent side is here too: [`AiBackend`], an admitted AgentgatewayBackend as the store
//! keeps it (`ClusterIntent::ai_backends`), which compile turns into an [`AiRoute`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub use crate::policy::AiBudget;
use crate::{BackendProblem, Meta, SourceObject};

/// The Envoy cluster of the AI gateway replicas (the data plane's `aiGateways`).
pub const AI_GATEWAY_CLUSTER: &str = "fleetgate/ai-gateway";
/// The header Envoy sets to the tenant's name on every request it sends to an AI gateway.
pub const TENANT_HEADER: &str = "x-fleetgate-tenant";
/// The header Envoy sets to the [`AiRoute`]'s id (see [`route_id`]).
pub const ROUTE_HEADER: &str = "x-fleetgate-route";

/// What every AI gateway serves, per tenant. Empty when no tenant has an AI route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AiSnapshot {
    pub tenants: BTreeMap<String, AiTenant>,
}

/// One tenant's AI routes, by route id, with its budget and the virtual keys it hands its users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AiTenant {
    pub routes: BTreeMap<String, AiRoute>,
    /// The operator's budget for the tenant (`quotas.*.aiBudget`), counted across every AI
    /// gateway replica by the hub; `None`: unlimited.
    pub budget: Option<AiBudget>,
    /// Requests in flight at once per AI gateway replica (`quotas.*.aiMaxConcurrency`); `None`:
    /// the gateway's default.
    pub max_concurrency: Option<u32>,
    /// The tenant's virtual keys (fleetgate.dev VirtualKey), by [`VirtualKey::id`].
    pub virtual_keys: BTreeMap<String, VirtualKey>,
}

/// A key a tenant hands one of its users: a route that any virtual key names serves only
/// requests presenting one of its keys, and the provider key never leaves the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualKey {
    /// `<cluster>/<namespace>/<name>` of the VirtualKey object (the shape of [`route_id`]).
    pub id: String,
    /// SHA-256 of the key; the key itself stays in the tenant's cluster.
    pub sha256: [u8; 32],
    /// The route ids this key opens.
    pub routes: Vec<String>,
    /// The key's own budget; the tenant's applies as well.
    pub budget: Option<AiBudget>,
    /// The VirtualKey object (for status).
    pub source: SourceObject,
}

/// The id of the AI route of an AgentgatewayBackend: `<cluster>/<namespace>/<name>`, unique in
/// its tenant; only DNS-label characters and `/`, so it travels in a header as is.
pub fn route_id(cluster: &str, namespace: &str, name: &str) -> String {
    format!("{cluster}/{namespace}/{name}")
}

/// One admitted AgentgatewayBackend of kind `ai`, as the AI gateway needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiRoute {
    pub target: AiRouteTarget,
    /// `spec.policies.ai.modelAliases`: a requested model -> the model sent upstream (every
    /// provider of the route).
    pub model_aliases: BTreeMap<String, String>,
    /// The AgentgatewayBackend this came from (for status and NACKs).
    pub source: SourceObject,
}

/// What an [`AiRoute`] sends requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AiRouteTarget {
    /// `ai.provider`.
    Provider(AiRouteProvider),
    /// `ai.groups`: priority groups, the first first, each with at least one provider the
    /// gateway can dial (providers that did not resolve or have no ready endpoints are left out).
    Groups(Vec<Vec<AiRouteProvider>>),
    /// `mcp`: the targets the gateway can dial (a cluster-local one without ready endpoints is
    /// left out), federated as one MCP server.
    Mcp(McpSpec),
}

impl AiRouteTarget {
    /// Every provider, in priority order (none for `mcp`).
    pub fn providers(&self) -> Vec<&AiRouteProvider> {
        match self {
            Self::Provider(p) => vec![p],
            Self::Groups(g) => g.iter().flatten().collect(),
            Self::Mcp(_) => Vec::new(),
        }
    }
}

/// An admitted `spec.mcp`: MCP servers the AI gateway federates behind one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpSpec {
    pub targets: Vec<McpTarget>,
    /// `FailClosed` or `FailOpen` (admitted; the default filled in).
    pub failure_mode: String,
    /// `Conditional`, `Always` or `Never`.
    pub prefix_mode: String,
    /// `Stateful` or `Stateless`.
    pub session_routing: String,
    /// `spec.policies.mcp.authentication` (admitted: the key set parses); `None`: clients
    /// present no token.
    #[serde(default)]
    pub authentication: Option<McpAuthentication>,
    /// `spec.policies.mcp.authorization` (admitted: the expressions compile); `None`: every
    /// caller may use everything.
    #[serde(default)]
    pub authorization: Option<McpAuthorization>,
    /// Tool definitions the tenant accepted after a target changed them (the annotation
    /// `fleetgate.dev/mcp-accept-tools`): the hub pins each tool to its accepted hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept_tools: Vec<McpToolAccept>,
}

/// An admitted `spec.policies.mcp.authentication`: JWTs checked against an inline key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpAuthentication {
    pub issuer: String,
    /// Empty: any audience.
    pub audiences: Vec<String>,
    /// The JSON Web Key Set as written (public keys only).
    pub jwks: String,
    /// `Strict`, `Optional` or `Permissive`.
    pub mode: String,
}

/// An admitted `spec.policies.mcp.authorization`: agentgateway's rule, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpAuthorization {
    /// `Allow`, `Deny` or `Require`.
    pub action: String,
    pub match_expressions: Vec<String>,
}

/// One accepted MCP tool definition: `<target>_<tool>=<sha256>` of the annotation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct McpToolAccept {
    pub target: String,
    /// The tool's own name at the target.
    pub tool: String,
    /// 64 lower-case hex digits.
    pub sha256: String,
}

/// One target of `spec.mcp.targets` (`static`), resolved and admitted like an `ai.provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpTarget {
    /// A DNS label: the prefix of its tools (`<name>_<tool>`) and resources (`<name>+<uri>`).
    pub name: String,
    /// Lower-case DNS name or IP literal (the Host the gateway sends).
    pub host: String,
    pub port: u16,
    pub path: Option<String>,
    /// `StreamableHTTP` or `SSE`.
    pub protocol: String,
    pub upstream: AiUpstream,
}

/// `spec.mcp` as stored among [`AiTargets`]: `{"mcp": {...}}`, told apart from one provider by
/// its only key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpTargets {
    pub mcp: McpSpec,
}

/// One provider of an [`AiRoute`], where the gateway reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiRouteProvider {
    /// `ai.groups[].providers[].name`; empty for `ai.provider`.
    pub name: String,
    pub provider: AiProvider,
    /// The host as the tenant wrote it (sent as the Host header; dialled when `endpoints` is
    /// empty, which admission allows only for hosts on the tenant's egress allowlist).
    pub host: String,
    pub port: u16,
    /// Replaces the chat completions path.
    pub path: Option<String>,
    /// Replaces the `/v1` prefix of every path.
    pub path_prefix: Option<String>,
    /// Ready endpoints of a cluster-local host, admitted against the cluster's CIDRs.
    pub endpoints: Vec<SocketAddr>,
    /// HTTPS to `host:port`, the certificate verified for `host`: an external provider on port
    /// 443 (see [`AiRoute::reached_over_tls`]).
    pub tls: bool,
    pub auth: AiAuth,
}

impl AiRoute {
    /// Whether a route is reached over HTTPS: an external provider (no endpoints in the
    /// tenant's cluster) on port 443, which is where every provider's API is served and the
    /// port an external backend gets when it names none. A model server in the tenant's cluster,
    /// or an external host on another port, is plain HTTP.
    pub fn reached_over_tls(endpoints: &[SocketAddr], port: u16) -> bool {
        endpoints.is_empty() && port == 443
    }
}

/// `ai.provider` kinds the gateway speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AiProvider {
    /// Any OpenAI-compatible server; `model` overrides every request's model when set.
    OpenAi { model: Option<String> },
    /// Anthropic's Messages API; the AI gateway translates OpenAI-speaking clients.
    Anthropic { model: Option<String> },
    /// Gemini's `generateContent` API; the AI gateway translates OpenAI-speaking clients.
    Gemini { model: Option<String> },
    /// Not an LLM: an agent speaking the A2A protocol (agentgateway's `spec.a2a{host, port}`),
    /// whose agent card the AI gateway rewrites to point at itself and whose JSON-RPC calls it
    /// passes on. Never in `ai.groups`; admission requires its host.
    A2a,
}

impl AiProvider {
    /// The host the provider is reached at when the backend names none (agentgateway's
    /// defaults).
    pub fn default_host(&self) -> &'static str {
        match self {
            AiProvider::OpenAi { .. } => "api.openai.com",
            AiProvider::Anthropic { .. } => "api.anthropic.com",
            AiProvider::Gemini { .. } => "generativelanguage.googleapis.com",
            // Admission refuses an agent without a host.
            AiProvider::A2a => "",
        }
    }
}

/// `policies.auth` of a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AiAuth {
    /// No key: requests go to the provider without Authorization.
    #[default]
    None,
    /// The gateway presents this key; the client never holds it.
    Key(ProviderKey),
    /// The client's own Authorization goes to the provider.
    Passthrough,
}

/// A provider key. Its Debug never shows the key, so that no log line can carry it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProviderKey(pub String);

impl std::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderKey(<redacted>)")
    }
}

/// An admitted AgentgatewayBackend of kind `ai` (intent, as stored): checked by admission
/// (`fleetgate-hub-admit`'s `ai`), compiled into an [`AiRoute`] when it resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiBackend {
    pub meta: Meta,
    /// The provider(s) as the AI gateway gets them, or why the agent could not resolve the
    /// backend (Service or Secret missing, a provider fleetgate does not serve, no provider of
    /// its groups resolved): then no AI route is built, routes naming it get 500, and it reports
    /// Accepted=False and ResolvedRefs=False with the reason.
    pub target: Result<AiTargets, BackendProblem>,
    /// `spec.policies.ai.modelAliases`, admitted: at most 64, names and models of 1 to 256
    /// visible ASCII characters. Absent in stores written before aliases: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_aliases: BTreeMap<String, String>,
}

/// A resolved AI backend: `ai.provider` or `ai.groups`. Stored as JSON: one provider is the
/// object (map) it was before groups existed, groups are a list, so stores written then still
/// read. Deserialized by shape ([`AiTargets`]'s `Deserialize`), not by serde's `untagged`,
/// which cannot read the tagged enums inside a target from YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AiTargets {
    /// `ai.provider`.
    Provider(AiTarget),
    /// `ai.groups`: priority groups, the first first; at least one member resolved.
    Groups(Vec<Vec<AiMember>>),
    /// `mcp`: MCP servers federated behind one endpoint.
    Mcp(McpTargets),
}

/// A map whose first key was already read: that key again, then the rest.
struct Peeked<A> {
    first: Option<String>,
    map: A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for Peeked<A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        use serde::de::IntoDeserializer;
        match self.first.take() {
            Some(k) => seed.deserialize(k.into_deserializer()).map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de> Deserialize<'de> for AiTargets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = AiTargets;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("one AI target (a map) or priority groups (a list)")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AiTargets, A::Error> {
                let first: Option<String> = map.next_key()?;
                if first.as_deref() == Some("mcp") {
                    let mcp: McpSpec = map.next_value()?;
                    return Ok(AiTargets::Mcp(McpTargets { mcp }));
                }
                AiTarget::deserialize(serde::de::value::MapAccessDeserializer::new(Peeked {
                    first,
                    map,
                }))
                .map(AiTargets::Provider)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<AiTargets, A::Error> {
                Vec::<Vec<AiMember>>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(AiTargets::Groups)
            }
        }
        d.deserialize_any(Shape)
    }
}

impl From<AiTarget> for AiTargets {
    fn from(t: AiTarget) -> Self {
        Self::Provider(t)
    }
}

impl AiTargets {
    /// Every resolved provider, in priority order (none for `mcp`).
    pub fn resolved(&self) -> Vec<&AiTarget> {
        match self {
            Self::Mcp(_) => Vec::new(),
            Self::Provider(t) => vec![t],
            Self::Groups(g) => g
                .iter()
                .flatten()
                .filter_map(|m| m.target.as_ref().ok())
                .collect(),
        }
    }

    /// Every provider key, resolved or not, in order, for sealing at rest: the key and the
    /// member's name (empty for `ai.provider`) with its position.
    pub fn keys_mut(&mut self) -> Vec<(String, &mut ProviderKey)> {
        fn key(t: &mut AiTarget) -> Option<&mut ProviderKey> {
            match &mut t.auth {
                AiAuth::Key(k) => Some(k),
                AiAuth::None | AiAuth::Passthrough => None,
            }
        }
        match self {
            Self::Mcp(_) => Vec::new(),
            Self::Provider(t) => key(t).map(|k| (String::new(), k)).into_iter().collect(),
            Self::Groups(groups) => groups
                .iter_mut()
                .enumerate()
                .flat_map(|(g, members)| {
                    members.iter_mut().enumerate().filter_map(move |(i, m)| {
                        let at = format!("groups/{g}/{i}/{}", m.name);
                        m.target.as_mut().ok().and_then(key).map(|k| (at, k))
                    })
                })
                .collect(),
        }
    }
}

/// One provider of `ai.groups`: its name and what it resolved to, or why it did not (its
/// Service or Secret is missing): an unresolved member is reported on the backend's status and
/// left out of the AI route; the others serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiMember {
    pub name: String,
    pub target: Result<AiTarget, BackendProblem>,
}

/// An admitted VirtualKey (fleetgate.dev/v1alpha1), as the store keeps it
/// (`ClusterIntent::virtual_keys`); compile turns it into a [`VirtualKey`] when it is usable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualKeyIntent {
    pub meta: Meta,
    /// SHA-256 of the key, or why the agent could not read it (Secret or key missing): then the
    /// key opens nothing, and the routes it names serve no request until it resolves.
    pub sha256: Result<[u8; 32], BackendProblem>,
    /// AgentgatewayBackends of the VirtualKey's own namespace, by name: 1..=16, deduplicated,
    /// in the order written.
    pub backends: Vec<String>,
    /// The key's own budget.
    pub budget: Option<AiBudget>,
}

/// A resolved AI backend: everything [`AiRoute`] carries but its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiTarget {
    pub provider: AiProvider,
    /// Lower-case DNS name or IP literal: the Host the gateway sends, and where it connects
    /// when the upstream is [`AiUpstream::External`].
    pub host: String,
    /// 1-65535 (an external host's unset port is 443).
    pub port: u16,
    pub path: Option<String>,
    pub path_prefix: Option<String>,
    pub upstream: AiUpstream,
    /// The key is sealed at rest by the runtime's store (`seal`); never shown by Debug.
    pub auth: AiAuth,
}

/// Where an AI backend's requests go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AiUpstream {
    /// The host is a Service of the tenant cluster, resolved by the agent: these ready endpoints,
    /// each admitted against the cluster's CIDRs (none ready: requests get 503).
    Cluster(Vec<SocketAddr>),
    /// The host is outside the tenant's clusters and on the tenant's egress allowlist (checked at
    /// admission and again at every compile by the runtime): the gateway connects to host:port.
    External,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_providers_on_443_are_reached_over_tls() {
        let ep: SocketAddr = "127.0.1.10:443".parse().unwrap();
        assert!(AiRoute::reached_over_tls(&[], 443));
        assert!(!AiRoute::reached_over_tls(&[], 8080));
        assert!(!AiRoute::reached_over_tls(&[ep], 443));
    }

    #[test]
    fn a_provider_key_is_never_shown() {
        let auth = AiAuth::Key(ProviderKey("sk-SECRET".into()));
        assert!(!format!("{auth:?} {auth:#?}").contains("SECRET"));
    }

    fn target(host: &str, key: &str) -> AiTarget {
        AiTarget {
            provider: AiProvider::OpenAi { model: None },
            host: host.into(),
            port: 8080,
            path: None,
            path_prefix: None,
            upstream: AiUpstream::External,
            auth: AiAuth::Key(ProviderKey(key.into())),
        }
    }

    /// One provider is stored as the object it was before groups existed; groups as an array;
    /// both read back as written.
    #[test]
    fn targets_are_stored_as_before_groups_and_groups_round_trip() {
        let one = AiTargets::Provider(target("a.example", "k1"));
        let json = serde_json::to_value(&one).unwrap();
        assert!(json.is_object() && json["host"] == "a.example", "{json}");
        assert_eq!(serde_json::from_value::<AiTargets>(json).unwrap(), one);
        let groups = AiTargets::Groups(vec![
            vec![AiMember {
                name: "a".into(),
                target: Ok(target("a.example", "k1")),
            }],
            vec![AiMember {
                name: "b".into(),
                target: Err(BackendProblem {
                    reason: "BackendNotFound".into(),
                    message: "gone".into(),
                }),
            }],
        ]);
        let json = serde_json::to_value(&groups).unwrap();
        assert!(json.is_array(), "{json}");
        assert_eq!(serde_json::from_value::<AiTargets>(json).unwrap(), groups);
        assert_eq!(groups.resolved().len(), 1);
        // YAML (the golden inputs) tags the enums inside a target; both shapes read back.
        for t in [one, groups] {
            let yaml = serde_yaml::to_string(&t).unwrap();
            assert_eq!(
                serde_yaml::from_str::<AiTargets>(&yaml).unwrap(),
                t,
                "{yaml}"
            );
        }
    }

    /// An MCP backend is stored as `{"mcp": ...}` and reads back, from JSON and YAML, while one
    /// provider still reads as before.
    #[test]
    fn mcp_targets_round_trip_beside_providers() {
        let mcp = AiTargets::Mcp(McpTargets {
            mcp: McpSpec {
                targets: vec![McpTarget {
                    name: "alpha".into(),
                    host: "tools.example".into(),
                    port: 8080,
                    path: Some("/mcp".into()),
                    protocol: "StreamableHTTP".into(),
                    upstream: AiUpstream::Cluster(vec!["10.0.0.1:8080".parse().unwrap()]),
                }],
                failure_mode: "FailClosed".into(),
                prefix_mode: "Conditional".into(),
                session_routing: "Stateful".into(),
                authentication: Some(McpAuthentication {
                    issuer: "https://idp.example".into(),
                    audiences: vec!["tools".into()],
                    jwks: r#"{"keys":[]}"#.into(),
                    mode: "Strict".into(),
                }),
                authorization: Some(McpAuthorization {
                    action: "Allow".into(),
                    match_expressions: vec![r#"mcp.tool.name == "add""#.into()],
                }),
                accept_tools: vec![],
            },
        });
        let json = serde_json::to_value(&mcp).unwrap();
        assert!(json.get("mcp").is_some(), "{json}");
        assert_eq!(serde_json::from_value::<AiTargets>(json).unwrap(), mcp);
        let yaml = serde_yaml::to_string(&mcp).unwrap();
        assert_eq!(
            serde_yaml::from_str::<AiTargets>(&yaml).unwrap(),
            mcp,
            "{yaml}"
        );
        let one = AiTargets::Provider(target("a.example", "k1"));
        let yaml = serde_yaml::to_string(&one).unwrap();
        assert_eq!(serde_yaml::from_str::<AiTargets>(&yaml).unwrap(), one);
        assert!(mcp.resolved().is_empty());
    }

    #[test]
    fn every_key_of_a_groups_backend_is_found_for_sealing() {
        let mut groups = AiTargets::Groups(vec![
            vec![
                AiMember {
                    name: "a".into(),
                    target: Ok(target("a.example", "k1")),
                },
                AiMember {
                    name: "b".into(),
                    target: Ok(target("b.example", "k2")),
                },
            ],
            vec![AiMember {
                name: "c".into(),
                target: Ok(target("c.example", "k3")),
            }],
        ]);
        let keys: Vec<(String, String)> = groups
            .keys_mut()
            .into_iter()
            .map(|(at, k)| (at, k.0.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                ("groups/0/0/a".to_string(), "k1".to_string()),
                ("groups/0/1/b".to_string(), "k2".to_string()),
                ("groups/1/0/c".to_string(), "k3".to_string()),
            ]
        );
    }

    #[test]
    fn route_ids_name_cluster_namespace_and_backend() {
        assert_eq!(
            route_id("c1", "default", "local-llm"),
            "c1/default/local-llm"
        );
    }
}
