//! Table tests of `spec.mcp` admission (`super::mcp`), with issue 12's isolation attacks: a
//! target at another tenant's endpoints, at the hub, at link-local metadata, or at an external
//! host the operator did not allow is refused with a reason the tenant reads.

use fleetgate_proto::spoke::v1 as pb;

use super::test_support::Fixture;
use super::*;
use crate::model::ai::{AiTargets, AiUpstream};

fn endpoint(address: &str, port: u32) -> pb::Endpoint {
    pb::Endpoint {
        address: address.into(),
        port,
        ready: true,
    }
}

fn target(name: &str, host: &str, port: u32, endpoints: Vec<pb::Endpoint>) -> pb::McpTarget {
    pb::McpTarget {
        name: name.into(),
        host: host.into(),
        port,
        path: Some("/mcp".into()),
        protocol: String::new(),
        endpoints,
    }
}

/// Two targets: a Service of the cluster (resolved by the agent) and an allowed external host.
fn tools() -> pb::AiBackend {
    pb::AiBackend {
        mcp: Some(Box::new(pb::McpBackend {
            targets: vec![
                target(
                    "alpha",
                    "alpha.tools.svc.cluster.local",
                    8080,
                    vec![endpoint("10.1.3.4", 8080)],
                ),
                pb::McpTarget {
                    protocol: "SSE".into(),
                    path: Some("/sse".into()),
                    ..target("beta", "mcp.models.example", 443, vec![])
                },
            ],
            failure_mode: "FailOpen".into(),
            prefix_mode: String::new(),
            session_routing: String::new(),
            authentication: None,
            authorization: None,
            accept_tools: vec![],
        })),
        ..Default::default()
    }
}

fn object(b: pb::AiBackend) -> pb::Object {
    pb::Object {
        r#ref: Some(pb::ObjectRef {
            kind: pb::Kind::AiBackend as i32,
            namespace: "default".into(),
            name: "tools".into(),
        }),
        generation: 1,
        creation_timestamp: "2026-01-01T00:00:00Z".into(),
        spec: Some(pb::object::Spec::AiBackend(b)),
    }
}

fn admitted(b: pb::AiBackend) -> Result<crate::model::ai::AiBackend, Rejection> {
    let f = Fixture::new();
    match admit(&object(b), &f.policy())? {
        Admitted::AiBackend(b) => Ok(b),
        other => panic!("an AI backend expected, got {other:?}"),
    }
}

#[test]
fn mcp_targets_are_admitted_with_their_defaults() {
    let b = admitted(tools()).unwrap();
    let Ok(AiTargets::Mcp(m)) = b.target else {
        panic!("an MCP backend expected")
    };
    let m = m.mcp;
    assert_eq!(
        (
            m.failure_mode.as_str(),
            m.prefix_mode.as_str(),
            m.session_routing.as_str()
        ),
        ("FailOpen", "Conditional", "Stateful")
    );
    assert_eq!(m.targets[0].protocol, "StreamableHTTP");
    assert_eq!(
        m.targets[0].upstream,
        AiUpstream::Cluster(vec!["10.1.3.4:8080".parse().unwrap()])
    );
    assert_eq!(m.targets[1].protocol, "SSE");
    assert_eq!(m.targets[1].upstream, AiUpstream::External);
}

#[test]
fn bad_targets_and_attacks_are_refused_naming_the_field() {
    let with = |f: &dyn Fn(&mut pb::McpBackend)| {
        let mut b = tools();
        f(b.mcp.as_mut().unwrap());
        b
    };
    let cases: Vec<(&str, pb::AiBackend, &str)> = vec![
        (
            "a name with '_' would make prefixed names ambiguous",
            with(&|m| m.targets[0].name = "al_pha".into()),
            "spec.mcp.targets[0].name \"al_pha\" must be 1 to 63",
        ),
        (
            "two targets of one name",
            with(&|m| m.targets[1].name = "alpha".into()),
            "spec.mcp.targets[1].name alpha is used by an earlier target",
        ),
        (
            "no targets",
            with(&|m| m.targets.clear()),
            "spec.mcp.targets lists 0 targets",
        ),
        (
            "an unknown protocol",
            with(&|m| m.targets[0].protocol = "WebSocket".into()),
            "spec.mcp.targets[0].static.protocol \"WebSocket\" is not one of StreamableHTTP, SSE",
        ),
        (
            "an unknown failure mode",
            with(&|m| m.failure_mode = "FailSometimes".into()),
            "spec.mcp.failureMode",
        ),
        (
            "port 0",
            with(&|m| m.targets[1].port = 0),
            "spec.mcp.targets[1].static.port 0 is not 1-65535",
        ),
        (
            "attack: a target at another tenant's endpoints",
            with(&|m| m.targets[0].endpoints = vec![endpoint("10.2.0.5", 8080)]),
            "spec.mcp.targets[0]: endpoint 10.2.0.5:8080 is outside the networks registered for cluster east",
        ),
        (
            "attack: a target at the hub's agent port",
            with(&|m| m.targets[0].endpoints = vec![endpoint("10.1.0.9", 7443)]),
            "the hub or the data plane itself",
        ),
        (
            "attack: the hub as an external host",
            with(&|m| {
                m.targets[1].host = "10.1.0.9".into();
                m.targets[1].port = 7443;
            }),
            "the hub or the data plane itself",
        ),
        (
            "attack: link-local metadata as an external host",
            with(&|m| {
                m.targets[1].host = "169.254.169.254".into();
                m.targets[1].port = 80;
            }),
            "spec.mcp.targets[1]:",
        ),
        (
            "attack: another tenant's address as an external host",
            with(&|m| m.targets[1].host = "10.2.0.5".into()),
            "not on its egress allowlist",
        ),
        (
            "attack: an external host the operator did not allow",
            with(&|m| m.targets[1].host = "mcp.evil.example".into()),
            "the hub operator must add mcp.evil.example to tenants[a].egress",
        ),
    ];
    for (what, b, want) in cases {
        let err = admitted(b).expect_err(what);
        assert!(err.message.contains(want), "{what}: {}", err.message);
    }
}

/// An EC P-256 key set (the coordinates need not be on the curve to parse; the gateway's
/// verification rejects a key that is not).
fn jwks() -> String {
    let c = "A".repeat(43);
    format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k1","x":"{c}","y":"{c}"}}]}}"#)
}

fn with_policies(
    authn: Option<pb::McpAuthentication>,
    authz: Option<pb::McpAuthorization>,
) -> pb::AiBackend {
    let mut b = tools();
    let m = b.mcp.as_mut().unwrap();
    m.authentication = authn;
    m.authorization = authz;
    b
}

fn authn() -> pb::McpAuthentication {
    pb::McpAuthentication {
        issuer: "https://idp.a.example".into(),
        audiences: vec!["tools-a".into()],
        jwks_inline: jwks(),
        mode: String::new(),
    }
}

fn authz(action: &str, exprs: &[&str]) -> pb::McpAuthorization {
    pb::McpAuthorization {
        action: action.into(),
        match_expressions: exprs.iter().map(|s| (*s).to_string()).collect(),
    }
}

#[test]
fn mcp_authentication_and_authorization_are_admitted_with_their_defaults() {
    let b = admitted(with_policies(
        Some(authn()),
        Some(authz(
            "",
            &[r#"mcp.tool.name == "add" && jwt.sub == "alice""#],
        )),
    ))
    .unwrap();
    let Ok(AiTargets::Mcp(m)) = b.target else {
        panic!("an MCP backend expected")
    };
    let a = m.mcp.authentication.expect("authentication");
    assert_eq!(
        (a.issuer.as_str(), a.mode.as_str()),
        ("https://idp.a.example", "Strict")
    );
    assert_eq!(a.jwks, jwks());
    let z = m.mcp.authorization.expect("authorization");
    assert_eq!(z.action, "Allow");
    assert_eq!(z.match_expressions.len(), 1);
}

#[test]
fn bad_mcp_policies_are_refused_naming_the_field() {
    let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
    let cases: Vec<(&str, pb::AiBackend, &str)> = vec![
        (
            "no issuer",
            with_policies(
                Some(pb::McpAuthentication {
                    issuer: String::new(),
                    ..authn()
                }),
                None,
            ),
            "spec.policies.mcp.authentication.issuer is required",
        ),
        (
            "no key set",
            with_policies(
                Some(pb::McpAuthentication {
                    jwks_inline: String::new(),
                    ..authn()
                }),
                None,
            ),
            "spec.policies.mcp.authentication.jwks.inline is required",
        ),
        (
            "attack: an HMAC secret in the key set (alg confusion)",
            with_policies(
                Some(pb::McpAuthentication {
                    jwks_inline: oct.into(),
                    ..authn()
                }),
                None,
            ),
            "spec.policies.mcp.authentication.jwks.inline.keys[0] is a symmetric (oct) key",
        ),
        (
            "a key set that is not JSON",
            with_policies(
                Some(pb::McpAuthentication {
                    jwks_inline: "keys".into(),
                    ..authn()
                }),
                None,
            ),
            "spec.policies.mcp.authentication.jwks.inline is not JSON",
        ),
        (
            "an unknown mode",
            with_policies(
                Some(pb::McpAuthentication {
                    mode: "Lenient".into(),
                    ..authn()
                }),
                None,
            ),
            "spec.policies.mcp.authentication.mode \"Lenient\" is not one of Strict, Optional, Permissive",
        ),
        (
            "an unknown action",
            with_policies(None, Some(authz("Audit", &["true"]))),
            "spec.policies.mcp.authorization.action \"Audit\"",
        ),
        (
            "no expressions",
            with_policies(None, Some(authz("Allow", &[]))),
            "spec.policies.mcp.authorization.policy.matchExpressions lists 0 expressions",
        ),
        (
            "an expression outside the subset",
            with_policies(
                None,
                Some(authz("Allow", &["true", "request.headers['x'] == 'y'"])),
            ),
            "spec.policies.mcp.authorization.policy.matchExpressions[1] is not an expression fleetgate evaluates: unknown variable request",
        ),
        (
            "an expression that does not parse",
            with_policies(None, Some(authz("Allow", &["mcp.tool.name = 'add'"]))),
            "spec.policies.mcp.authorization.policy.matchExpressions[0]",
        ),
    ];
    for (what, b, want) in cases {
        let err = admitted(b).expect_err(what);
        assert_eq!(err.reason, "UnsupportedValue", "{what}");
        assert!(err.message.contains(want), "{what}: {}", err.message);
    }
}

#[test]
fn accepted_tool_definitions_are_admitted_or_refused_naming_the_entry() {
    let accept = |target: &str, tool: &str, sha256: &str| pb::McpToolAccept {
        target: target.into(),
        tool: tool.into(),
        sha256: sha256.into(),
    };
    let hash = "ab".repeat(32);
    let mut b = tools();
    b.mcp.as_mut().unwrap().accept_tools = vec![
        accept("beta", "add", &hash),
        accept("alpha", "add", &hash),
        accept("alpha", "add", &hash),
    ];
    let Ok(AiTargets::Mcp(m)) = admitted(b).unwrap().target else {
        panic!("an MCP backend expected")
    };
    let got: Vec<(String, String)> = m
        .mcp
        .accept_tools
        .iter()
        .map(|a| (a.target.clone(), a.tool.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("alpha".into(), "add".into()),
            ("beta".into(), "add".into())
        ],
        "sorted, duplicates dropped"
    );
    let cases = [
        (
            accept("gamma", "add", &hash),
            "names no target of spec.mcp.targets (alpha, beta)",
        ),
        (
            accept("alpha", "add", "ABCD"),
            "is not a SHA-256 of 64 lower-case hex digits",
        ),
        (
            accept("alpha", &"t".repeat(129), &hash),
            "a tool name is 1 to 128 bytes",
        ),
    ];
    for (a, want) in cases {
        let mut b = tools();
        b.mcp.as_mut().unwrap().accept_tools = vec![a];
        let err = admitted(b).expect_err(want);
        assert!(
            err.message
                .contains("annotation fleetgate.dev/mcp-accept-tools entry")
                && err.message.contains(want),
            "{}",
            err.message
        );
    }
}
