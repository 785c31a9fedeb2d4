//! The configuration of an MCP backend (agentgateway's `AgentgatewayBackend.spec.mcp`): the
//! file/wire form ([`RawMcp`]) and the validated one ([`McpBackend`]), plus the key MCP session
//! ids are sealed with ([`SessionKey`], in a [`SessionKeyRing`] the hub rotates). Pure; the federation itself is [`crate::mcp`].

use std::net::SocketAddr;

use serde::Deserialize;

use super::model::{ConfigError, Secret, check_endpoints, check_host, check_path, field};

/// Most targets one MCP backend may federate (agentgateway's limit).
pub const MAX_TARGETS: usize = 128;

/// `mcp` as written: the targets and how they are federated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMcp {
    pub targets: Vec<RawMcpTarget>,
    /// `FailClosed` (default) or `FailOpen`.
    pub failure_mode: Option<String>,
    /// `Conditional` (default), `Always` or `Never`.
    pub prefix_mode: Option<String>,
    /// `Stateful` (default) or `Stateless`.
    pub session_routing: Option<String>,
}

/// One target: a name and where its MCP server is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMcpTarget {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Default `/mcp` for streamable HTTP, `/sse` for SSE.
    pub path: Option<String>,
    /// `StreamableHTTP` (default) or `SSE`.
    pub protocol: Option<String>,
    /// `ip:port` pairs to dial instead of `host:port` (the tenant's Service endpoints).
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A validated MCP backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpBackend {
    pub targets: Vec<McpTarget>,
    pub failure_mode: FailureMode,
    pub prefix_mode: PrefixMode,
    pub session_routing: SessionRouting,
}

/// One MCP server of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpTarget {
    /// 1..=63 lower-case letters, digits and `-`: never `_` or `+`, so that a federated name
    /// (`<target>_<tool>`, `<target>+<uri>`) splits back at its first separator.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub protocol: McpProtocol,
    /// Where to connect, round-robin; empty: `host:port`.
    pub endpoints: Vec<SocketAddr>,
}

/// The transport a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpProtocol {
    /// Streamable HTTP (MCP 2025-03-26 and later): POST JSON-RPC, JSON or SSE answers.
    StreamableHttp,
    /// The older HTTP+SSE transport (MCP 2024-11-05): GET an event stream, POST messages.
    Sse,
}

/// What a target that fails does to a request that needs every target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// The request fails (a JSON-RPC error naming the target).
    FailClosed,
    /// The target is left out; the others answer.
    FailOpen,
}

/// When federated names carry the target's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixMode {
    /// Only when the backend has more than one target.
    Conditional,
    Always,
    /// Never; a name offered by two targets is served by the first (in `targets` order).
    Never,
}

impl PrefixMode {
    /// Whether names are prefixed for a backend of `targets` targets.
    pub fn prefixes(self, targets: usize) -> bool {
        match self {
            Self::Conditional => targets > 1,
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// Whether the gateway keeps upstream sessions (`Stateful`) or opens one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRouting {
    Stateful,
    Stateless,
}

/// A 32-byte key for sealing MCP session ids (ChaCha20-Poly1305). Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// 64 hex digits -> the key; the value never appears in the error.
    pub fn parse(at: &str, hex: &Secret) -> Result<Self, ConfigError> {
        let text = hex.expose().as_bytes();
        let digit = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let mut out = [0u8; 32];
        if text.len() != 64 {
            return Err(field(at, "must be 64 hex digits (32 bytes)"));
        }
        for (i, pair) in text.chunks(2).enumerate() {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => out[i] = h << 4 | l,
                _ => return Err(field(at, "must be 64 hex digits (32 bytes)")),
            }
        }
        Ok(Self(out))
    }
}

/// One key of a ring as written: `{id, key}` (the key 64 hex digits).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionKey {
    pub id: u32,
    pub key: Secret,
}

/// A tenant's session keys: the current one (new session ids are sealed with it) first, then
/// retired ones whose ids still open. Every id names its key (`crate::mcp::token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeyRing {
    keys: Vec<(u32, SessionKey)>,
}

impl SessionKeyRing {
    /// A ring of one key.
    pub fn single(id: u32, key: [u8; 32]) -> Self {
        Self {
            keys: vec![(id, SessionKey(key))],
        }
    }

    /// The current key and its id.
    pub fn current(&self) -> (u32, &[u8; 32]) {
        let (id, key) = &self.keys[0];
        (*id, &key.0)
    }

    /// The current key's id.
    pub fn current_id(&self) -> u32 {
        self.keys[0].0
    }

    /// The key with id `id`, if the ring holds it.
    pub fn get(&self, id: u32) -> Option<&[u8; 32]> {
        self.keys.iter().find(|(i, _)| *i == id).map(|(_, k)| &k.0)
    }

    /// `mcpSessionKey` (a single key, id 0) or `mcpSessionKeys` (current first) -> the ring;
    /// `None` when neither is set. Ids must be unique; the values never appear in errors.
    pub fn parse(
        at: &str,
        single: Option<&Secret>,
        ring: &[RawSessionKey],
    ) -> Result<Option<Self>, ConfigError> {
        if single.is_some() && !ring.is_empty() {
            return Err(field(
                format!("{at}.mcpSessionKey"),
                "set mcpSessionKey or mcpSessionKeys, not both",
            ));
        }
        if let Some(k) = single {
            let key = SessionKey::parse(&format!("{at}.mcpSessionKey"), k)?;
            return Ok(Some(Self {
                keys: vec![(0, key)],
            }));
        }
        let mut keys: Vec<(u32, SessionKey)> = Vec::with_capacity(ring.len());
        for (i, k) in ring.iter().enumerate() {
            let at = format!("{at}.mcpSessionKeys[{i}]");
            if keys.iter().any(|(id, _)| *id == k.id) {
                return Err(field(
                    format!("{at}.id"),
                    "is used by another key of the ring",
                ));
            }
            keys.push((k.id, SessionKey::parse(&format!("{at}.key"), &k.key)?));
        }
        Ok((!keys.is_empty()).then_some(Self { keys }))
    }
}

/// Whether `name` is a target name: 1..=63 of `a-z`, `0-9`, `-`, starting and ending with a
/// letter or digit (a DNS label, like agentgateway's names).
pub fn is_target_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn one_of<T: Copy>(
    at: &str,
    value: Option<&str>,
    default: T,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    choices
        .iter()
        .find(|(name, _)| *name == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            field(
                at,
                format!(
                    "{:?} is not one of {}",
                    v.chars().take(64).collect::<String>(),
                    names.join(", ")
                ),
            )
        })
}

impl RawMcp {
    /// Validates the backend at `at` (`tenants.<t>.routes.<r>.mcp`).
    pub fn validate(&self, at: &str) -> Result<McpBackend, ConfigError> {
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return Err(field(
                format!("{at}.targets"),
                format!("must list 1..={MAX_TARGETS} targets"),
            ));
        }
        let mut targets: Vec<McpTarget> = Vec::with_capacity(self.targets.len());
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("{at}.targets[{i}]");
            if !is_target_name(&t.name) {
                return Err(field(
                    format!("{at}.name"),
                    format!(
                        "{:?} must be 1..=63 lower-case letters, digits or '-' (no '_' or '+': they separate the target from a tool name or resource URI)",
                        t.name.chars().take(64).collect::<String>()
                    ),
                ));
            }
            if targets.iter().any(|o| o.name == t.name) {
                return Err(field(
                    format!("{at}.name"),
                    format!("{} names two targets; each needs its own", t.name),
                ));
            }
            check_host(&format!("{at}.host"), &t.host)?;
            if t.port == 0 {
                return Err(field(format!("{at}.port"), "0 is not a port"));
            }
            let protocol = one_of(
                &format!("{at}.protocol"),
                t.protocol.as_deref(),
                McpProtocol::StreamableHttp,
                &[
                    ("StreamableHTTP", McpProtocol::StreamableHttp),
                    ("SSE", McpProtocol::Sse),
                ],
            )?;
            let path = match &t.path {
                Some(p) => {
                    check_path(&format!("{at}.path"), p)?;
                    p.clone()
                }
                None if protocol == McpProtocol::Sse => "/sse".to_string(),
                None => "/mcp".to_string(),
            };
            let endpoints = check_endpoints(&format!("{at}.endpoints"), &t.endpoints)?;
            targets.push(McpTarget {
                name: t.name.clone(),
                host: t.host.clone(),
                port: t.port,
                path,
                protocol,
                endpoints,
            });
        }
        Ok(McpBackend {
            targets,
            failure_mode: one_of(
                &format!("{at}.failureMode"),
                self.failure_mode.as_deref(),
                FailureMode::FailClosed,
                &[
                    ("FailClosed", FailureMode::FailClosed),
                    ("FailOpen", FailureMode::FailOpen),
                ],
            )?,
            prefix_mode: one_of(
                &format!("{at}.prefixMode"),
                self.prefix_mode.as_deref(),
                PrefixMode::Conditional,
                &[
                    ("Conditional", PrefixMode::Conditional),
                    ("Always", PrefixMode::Always),
                    ("Never", PrefixMode::Never),
                ],
            )?,
            session_routing: one_of(
                &format!("{at}.sessionRouting"),
                self.session_routing.as_deref(),
                SessionRouting::Stateful,
                &[
                    ("Stateful", SessionRouting::Stateful),
                    ("Stateless", SessionRouting::Stateless),
                ],
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use crate::config::model::BackendKind;

    const GOOD: &str = r#"
tenants:
  a:
    mcpSessionKey: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    routes:
      tools:
        mcp:
          targets:
            - { name: alpha, host: 127.0.0.1, port: 9001 }
            - { name: beta, host: 127.0.0.1, port: 9002, protocol: SSE, endpoints: ["127.0.0.2:9002"] }
          failureMode: FailOpen
          prefixMode: Always
"#;

    #[test]
    fn an_mcp_backend_validates_with_defaults() {
        let config = RawConfig::from_yaml(GOOD).unwrap().validate().unwrap();
        let t = &config.tenants["a"];
        let ring = t.mcp_session_keys.as_ref().unwrap();
        assert_eq!(
            ring.current().0,
            0,
            "mcpSessionKey is a ring of one key, id 0"
        );
        assert_eq!(ring.current().1[31], 0x1f);
        assert!(!format!("{t:?}").contains("1d1e1f"), "the key is redacted");
        let BackendKind::Mcp(m) = &t.routes["tools"].kind else {
            panic!("an mcp backend")
        };
        assert_eq!(m.targets[0].path, "/mcp");
        assert_eq!(m.targets[0].protocol, McpProtocol::StreamableHttp);
        assert_eq!(m.targets[1].path, "/sse");
        assert_eq!(m.targets[1].protocol, McpProtocol::Sse);
        assert_eq!(m.targets[1].endpoints, ["127.0.0.2:9002".parse().unwrap()]);
        assert_eq!(m.failure_mode, FailureMode::FailOpen);
        assert_eq!(m.prefix_mode, PrefixMode::Always);
        assert_eq!(m.session_routing, SessionRouting::Stateful);
    }

    #[test]
    fn bad_mcp_backends_say_where_and_why() {
        let cases = [
            ("name: alpha,", "name: a_b,", "targets[0].name"),
            ("name: beta,", "name: alpha,", "names two targets"),
            (
                "protocol: SSE",
                "protocol: Websocket",
                "is not one of StreamableHTTP, SSE",
            ),
            ("port: 9001", "port: 0", "0 is not a port"),
            ("prefixMode: Always", "prefixMode: Sometimes", "prefixMode"),
            (
                "host: 127.0.0.1, port: 9001",
                "host: http://x, port: 9001",
                "host",
            ),
        ];
        for (from, to, want) in cases {
            let yaml = GOOD.replacen(from, to, 1);
            let err = RawConfig::from_yaml(&yaml)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
        let short = GOOD.replace("1d1e1f\"", "\"");
        let err = RawConfig::from_yaml(&short)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mcpSessionKey: must be 64 hex digits"),
            "{err}"
        );
    }

    #[test]
    fn prefixing_follows_the_mode() {
        assert!(!PrefixMode::Conditional.prefixes(1));
        assert!(PrefixMode::Conditional.prefixes(2));
        assert!(PrefixMode::Always.prefixes(1));
        assert!(!PrefixMode::Never.prefixes(3));
    }
}
