//! The agent card, rewritten so that a client only ever learns the gateway's address (pure).
//!
//! An A2A agent describes itself at `/.well-known/agent-card.json` (and, before v0.3, at
//! `/.well-known/agent.json`). The card names where the agent is reached: v0.3's `url` (with
//! `preferredTransport`) and `additionalInterfaces[]{url, transport}`, v1.0's
//! `supportedInterfaces[]{url, protocolBinding, protocolVersion}`. Behind the gateway those
//! URLs are the tenant's pod or node addresses, which a client must neither see nor use.
//!
//! [`rewrite`]:
//! - every JSON-RPC interface points at the gateway URL the client used (scheme + host + the
//!   route's path prefix, [`gateway_url`]); interfaces of other transports (gRPC, HTTP+JSON),
//!   which the gateway does not proxy, are dropped, and a `preferredTransport` of another
//!   transport becomes `JSONRPC`;
//! - any other string anywhere in the card that names the upstream (its host, an endpoint's
//!   address, or the host of an interface URL the card listed) is removed with its field, so a
//!   card whose URLs point elsewhere never leaks where the agent runs;
//! - `signatures` (JWS over the card as the agent wrote it) are dropped: they cannot verify
//!   once the URLs changed.
//!
//! [`rpc_path`] reads where the agent takes JSON-RPC calls, which the gateway forwards to.

use serde_json::{Map, Value};

/// The well-known paths of the agent card, current first.
pub const CARD_PATHS: [&str; 2] = ["/.well-known/agent-card.json", "/.well-known/agent.json"];

/// The transport name of JSON-RPC in both card versions.
pub const JSONRPC: &str = "JSONRPC";

/// The path of a card request without its well-known suffix (the route's prefix as the client
/// reached it), and the suffix; `None` when `path` asks for no card.
pub fn card_request(path: &str) -> Option<(&str, &'static str)> {
    CARD_PATHS
        .iter()
        .find_map(|suffix| path.strip_suffix(suffix).map(|prefix| (prefix, *suffix)))
}

/// The URL the client reached the route at: `scheme://host{prefix}` (`/` when the prefix is
/// empty). `scheme` is Envoy's `x-forwarded-proto` (`http` unless it says `https`); `host` the
/// request's Host, which must be a plain authority (letters, digits, `.-:[]`), else `None`.
pub fn gateway_url(
    forwarded_proto: Option<&str>,
    host: Option<&str>,
    prefix: &str,
) -> Option<String> {
    let scheme = match forwarded_proto.map(str::trim) {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = host?;
    let ok = !host.is_empty()
        && host.len() <= 261
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !ok {
        return None;
    }
    let prefix = prefix.trim_end_matches('/');
    let path = if prefix.is_empty() { "/" } else { prefix };
    Some(format!("{scheme}://{host}{path}"))
}

/// The host of an absolute URL, lower-cased, without port or brackets.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The path (with query) of an absolute URL; `/` when it has none.
pub fn url_path(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let start = rest.find(['/', '?']).unwrap_or(rest.len());
    let path = rest[start..].split('#').next().unwrap_or("");
    Some(match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    })
}

fn is_jsonrpc(transport: Option<&Value>) -> bool {
    transport
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(JSONRPC))
}

/// Where the agent takes JSON-RPC calls, as its card says: the v1.0 interface whose
/// `protocolBinding` is JSON-RPC, else v0.3's `url` (when its `preferredTransport` is JSON-RPC
/// or unset), else a JSON-RPC entry of `additionalInterfaces`. `None`: the card names none.
pub fn rpc_path(card: &Value) -> Option<String> {
    let interfaces = |list: &str, transport: &str| -> Option<String> {
        card.get(list)?
            .as_array()?
            .iter()
            .find(|i| is_jsonrpc(i.get(transport)))
            .and_then(|i| i.get("url")?.as_str())
            .and_then(url_path)
    };
    interfaces("supportedInterfaces", "protocolBinding")
        .or_else(|| {
            let preferred = card.get("preferredTransport");
            (preferred.is_none() || is_jsonrpc(preferred))
                .then(|| card.get("url")?.as_str().and_then(url_path))
                .flatten()
        })
        .or_else(|| interfaces("additionalInterfaces", "transport"))
}

/// The card with every URL pointing at `gateway` and nothing naming `upstream_hosts` (the
/// backend's host and endpoint addresses; the hosts of the card's own interface URLs are added
/// here). Not an object: `None`.
pub fn rewrite(card: Value, gateway: &str, upstream_hosts: &[String]) -> Option<Value> {
    let Value::Object(mut card) = card else {
        return None;
    };
    let mut hidden: Vec<String> = upstream_hosts
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for url in interface_urls(&card) {
        if let Some(h) = url_host(&url) {
            hidden.push(h);
        }
    }
    hidden.retain(|h| !h.is_empty());
    hidden.sort();
    hidden.dedup();

    card.remove("signatures");
    if card.contains_key("url") {
        card.insert("url".into(), Value::String(gateway.to_string()));
    }
    if card
        .get("preferredTransport")
        .is_some_and(|t| !is_jsonrpc(Some(t)))
    {
        card.insert("preferredTransport".into(), Value::String(JSONRPC.into()));
    }
    for (list, transport) in [
        ("additionalInterfaces", "transport"),
        ("supportedInterfaces", "protocolBinding"),
    ] {
        if let Some(Value::Array(items)) = card.get_mut(list) {
            items.retain(|i| is_jsonrpc(i.get(transport)));
            for i in items.iter_mut() {
                if let Value::Object(o) = i {
                    o.insert("url".into(), Value::String(gateway.to_string()));
                }
            }
        }
    }
    let protected = ["url", "additionalInterfaces", "supportedInterfaces"];
    let mut out = Map::new();
    for (k, v) in card {
        if protected.contains(&k.as_str()) {
            out.insert(k, scrub_interfaces(v, &hidden));
        } else if !names_hidden(&k, &hidden)
            && let Some(v) = scrub(v, &hidden)
        {
            out.insert(k, v);
        }
    }
    Some(Value::Object(out))
}

/// Whether `text` names one of `hidden` (lower-case), case-insensitively.
fn names_hidden(text: &str, hidden: &[String]) -> bool {
    let lower = text.to_ascii_lowercase();
    hidden.iter().any(|h| lower.contains(h.as_str()))
}

/// The URLs of the card's interfaces as the agent wrote them.
fn interface_urls(card: &Map<String, Value>) -> Vec<String> {
    let mut urls: Vec<String> = card
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect();
    for list in ["additionalInterfaces", "supportedInterfaces"] {
        if let Some(Value::Array(items)) = card.get(list) {
            urls.extend(
                items
                    .iter()
                    .filter_map(|i| i.get("url")?.as_str().map(str::to_string)),
            );
        }
    }
    urls
}

/// An interface list (or `url`) whose URLs are the gateway's already: its other fields scrubbed.
fn scrub_interfaces(v: Value, hidden: &[String]) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| match i {
                    Value::Object(o) => Value::Object(
                        o.into_iter()
                            .filter_map(|(k, v)| {
                                if k == "url" {
                                    Some((k, v))
                                } else {
                                    scrub(v, hidden).map(|v| (k, v))
                                }
                            })
                            .collect(),
                    ),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

/// `v` without any string naming one of `hidden` (case-insensitive): such a string is removed
/// with its field or list entry (`None` for a string that is one).
fn scrub(v: Value, hidden: &[String]) -> Option<Value> {
    match v {
        Value::String(s) => (!names_hidden(&s, hidden)).then_some(Value::String(s)),
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(|i| scrub(i, hidden)).collect(),
        )),
        Value::Object(o) => Some(Value::Object(
            o.into_iter()
                .filter_map(|(k, v)| {
                    if names_hidden(&k, hidden) {
                        return None;
                    }
                    scrub(v, hidden).map(|v| (k, v))
                })
                .collect(),
        )),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A card as a2a-sdk 1.3 serves it: v1.0 fields with the v0.3 ones merged in.
    fn card() -> Value {
        json!({
            "name": "echo agent",
            "description": "says back what it hears; runs at 127.0.1.5:31999",
            "version": "1.0.0",
            "url": "http://127.0.1.5:31999/",
            "preferredTransport": "JSONRPC",
            "protocolVersion": "0.3.0",
            "additionalInterfaces": [
                {"url": "http://127.0.1.5:31999/", "transport": "JSONRPC"},
                {"url": "127.0.1.5:50051", "transport": "GRPC"}
            ],
            "supportedInterfaces": [
                {"url": "http://127.0.1.5:31999/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
                {"url": "http://127.0.1.5:31999/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}
            ],
            "capabilities": {"streaming": true},
            "skills": [{"id": "echo", "name": "Echo", "description": "echoes", "tags": ["echo"],
                        "examples": ["hi", "see http://127.0.1.5:31999/docs"]}],
            "documentationUrl": "http://127.0.1.5:31999/docs",
            "iconUrl": "https://cdn.example/icon.png",
            "provider": {"organization": "team", "url": "https://team.example"},
            "securitySchemes": {"internal": {"openIdConnectSecurityScheme": {"openIdConnectUrl": "http://agent.team.svc.cluster.local/oidc"}}},
            "signatures": [{"protected": "x", "signature": "y"}],
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"]
        })
    }

    #[test]
    fn card_requests_give_the_prefix_the_client_used() {
        assert_eq!(
            card_request("/agents/echo/.well-known/agent-card.json"),
            Some(("/agents/echo", "/.well-known/agent-card.json"))
        );
        assert_eq!(
            card_request("/.well-known/agent.json"),
            Some(("", "/.well-known/agent.json"))
        );
        assert_eq!(card_request("/"), None);
        assert_eq!(card_request("/.well-known/agent-card.json/x"), None);
    }

    #[test]
    fn the_gateway_url_is_scheme_host_and_prefix() {
        let cases = [
            (
                None,
                Some("a2a.a.example"),
                "",
                Some("http://a2a.a.example/"),
            ),
            (
                Some("https"),
                Some("a2a.a.example:8443"),
                "/agents/echo",
                Some("https://a2a.a.example:8443/agents/echo"),
            ),
            (
                Some("HTTPS "),
                Some("[::1]:80"),
                "/x/",
                Some("https://[::1]:80/x"),
            ),
            (Some("gopher"), Some("h"), "", Some("http://h/")),
            (None, None, "", None),
            (None, Some("evil\"host"), "", None),
            (None, Some("a/b"), "", None),
            (None, Some(""), "", None),
        ];
        for (proto, host, prefix, want) in cases {
            assert_eq!(
                gateway_url(proto, host, prefix).as_deref(),
                want,
                "{proto:?} {host:?} {prefix:?}"
            );
        }
    }

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            url_host("http://127.0.1.5:31999/").as_deref(),
            Some("127.0.1.5")
        );
        assert_eq!(
            url_host("https://u:p@Agent.Example/x").as_deref(),
            Some("agent.example")
        );
        assert_eq!(url_host("http://[fd00::7]:80/").as_deref(), Some("fd00::7"));
        assert_eq!(url_host("127.0.1.5:50051"), None);
        assert_eq!(url_path("http://h:1").as_deref(), Some("/"));
        assert_eq!(
            url_path("http://h:1/a2a/v1?x=1#f").as_deref(),
            Some("/a2a/v1?x=1")
        );
        assert_eq!(url_path("http://h?x").as_deref(), Some("/?x"));
    }

    #[test]
    fn the_rpc_path_is_where_the_card_takes_json_rpc() {
        assert_eq!(rpc_path(&card()).as_deref(), Some("/"));
        let v1 = json!({"supportedInterfaces": [
            {"url": "http://a/grpc", "protocolBinding": "GRPC"},
            {"url": "http://a/rpc/v1", "protocolBinding": "JSONRPC"}]});
        assert_eq!(rpc_path(&v1).as_deref(), Some("/rpc/v1"));
        let v03 = json!({"url": "http://a/a2a", "preferredTransport": "JSONRPC"});
        assert_eq!(rpc_path(&v03).as_deref(), Some("/a2a"));
        let grpc_first = json!({"url": "a:50051", "preferredTransport": "GRPC",
            "additionalInterfaces": [{"url": "http://a/jsonrpc", "transport": "JSONRPC"}]});
        assert_eq!(rpc_path(&grpc_first).as_deref(), Some("/jsonrpc"));
        assert_eq!(rpc_path(&json!({"name": "no interfaces"})), None);
    }

    /// Every interface points at the gateway, other transports are gone, and nothing in the
    /// card names the upstream any more; what does not name it is kept as written.
    #[test]
    fn a_rewritten_card_points_at_the_gateway_and_never_names_the_upstream() {
        let gw = "http://a2a.a.example/agents/echo";
        let hosts = [
            "agent.team.svc.cluster.local".to_string(),
            "127.0.1.5".to_string(),
        ];
        let out = rewrite(card(), gw, &hosts).unwrap();
        assert_eq!(out["url"], gw);
        assert_eq!(out["preferredTransport"], "JSONRPC");
        assert_eq!(
            out["additionalInterfaces"],
            json!([{"url": gw, "transport": "JSONRPC"}])
        );
        assert_eq!(
            out["supportedInterfaces"],
            json!([{"url": gw, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}])
        );
        let text = out.to_string();
        for leak in ["127.0.1.5", "31999", "svc.cluster.local"] {
            assert!(!text.contains(leak), "{leak} leaked: {text}");
        }
        assert!(out.get("signatures").is_none());
        assert!(out.get("documentationUrl").is_none());
        assert!(out.get("description").is_none());
        assert_eq!(out["skills"][0]["examples"], json!(["hi"]));
        assert_eq!(out["skills"][0]["id"], "echo");
        assert_eq!(out["iconUrl"], "https://cdn.example/icon.png");
        assert_eq!(out["provider"]["url"], "https://team.example");
        assert_eq!(out["capabilities"]["streaming"], true);
        assert_eq!(out["name"], "echo agent");
    }

    /// A card that claims an address other than where the gateway reached the agent (another
    /// tenant's, the hub's) leaks that address neither: interface hosts are hidden too.
    #[test]
    fn a_card_naming_another_address_leaks_it_nowhere() {
        let hostile = json!({
            "name": "liar",
            "url": "http://10.9.9.9:7443/",
            "supportedInterfaces": [{"url": "http://hub.internal:18000/", "protocolBinding": "JSONRPC"}],
            "skills": [{"id": "s", "name": "see hub.internal:18000 and 10.9.9.9"}],
            "hub.internal": "as a key",
        });
        let out = rewrite(hostile, "http://gw/", &["127.0.1.5".into()]).unwrap();
        let text = out.to_string();
        assert!(
            !text.contains("10.9.9.9") && !text.contains("hub.internal"),
            "{text}"
        );
        assert_eq!(out["url"], "http://gw/");
        assert_eq!(out["skills"][0], json!({"id": "s"}));
        assert_eq!(rewrite(json!(["not a card"]), "http://gw/", &[]), None);
    }
}
