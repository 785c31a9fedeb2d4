//! MCP tool pins on the hub stream, gateway side: the wire stops here. Reports of this
//! replica's [`PinBoard`] become `McpToolsSeen` messages (one per tenant); the hub's `McpPins`
//! becomes the board's pins of that tenant. Pins of a malformed row (a hash that is not 64 hex
//! digits) are skipped and logged: the tool stays withheld or first-seen, never served on it.

use std::collections::{BTreeMap, HashMap};

use fleetgate_proto::aigateway::v1 as pb;

use crate::mcp::pins::{HubPin, PinBoard, Report, ToolKey};

/// Reports, grouped per tenant, as messages to the hub.
pub fn seen_messages(reports: Vec<Report>) -> Vec<pb::GatewayMessage> {
    let mut by_tenant: BTreeMap<String, Vec<pb::McpToolSeen>> = BTreeMap::new();
    for r in reports {
        by_tenant
            .entry(r.tenant)
            .or_default()
            .push(pb::McpToolSeen {
                route: r.key.route,
                target: r.key.target,
                tool: r.key.tool,
                sha256: r.hash,
                pinned_sha256: r.pinned.unwrap_or_default(),
            });
    }
    by_tenant
        .into_iter()
        .map(|(tenant, tools)| pb::GatewayMessage {
            kind: Some(pb::gateway_message::Kind::McpTools(pb::McpToolsSeen {
                tenant,
                tools,
            })),
        })
        .collect()
}

fn is_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Takes the hub's pins of one tenant.
pub fn apply_pins(board: &PinBoard, pins: &pb::McpPins) {
    let mut out = HashMap::with_capacity(pins.pins.len());
    for p in &pins.pins {
        if !is_hash(&p.sha256) || !(p.pending_sha256.is_empty() || is_hash(&p.pending_sha256)) {
            tracing::warn!(tenant = %pins.tenant, target = %p.target, "the hub sent an MCP pin whose hash is not 64 hex digits; skipped");
            continue;
        }
        out.insert(
            ToolKey {
                route: p.route.clone(),
                target: p.target.clone(),
                tool: p.tool.clone(),
            },
            HubPin {
                sha256: p.sha256.clone(),
                pending: (!p.pending_sha256.is_empty()).then(|| p.pending_sha256.clone()),
            },
        );
    }
    board.set_hub_pins(&pins.tenant, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::pins::Verdict;

    #[test]
    fn reports_go_out_per_tenant_and_the_hubs_pins_come_in() {
        let board = PinBoard::default();
        let key = |tool: &str| ToolKey {
            route: "r".into(),
            target: "alpha".into(),
            tool: tool.into(),
        };
        let (h1, h2) = ("1".repeat(64), "2".repeat(64));
        board.observe("a", &key("add"), &h1);
        board.observe("b", &key("add"), &h1);
        let msgs = seen_messages(board.drain());
        assert_eq!(msgs.len(), 2);
        let Some(pb::gateway_message::Kind::McpTools(seen)) = &msgs[0].kind else {
            panic!("McpToolsSeen expected")
        };
        assert_eq!(seen.tenant, "a");
        assert_eq!(seen.tools[0].sha256, h1);
        assert_eq!(seen.tools[0].pinned_sha256, "");
        let pin = |tool: &str, sha256: &str| pb::McpPin {
            route: "r".into(),
            target: "alpha".into(),
            tool: tool.into(),
            sha256: sha256.into(),
            pending_sha256: String::new(),
        };
        apply_pins(
            &board,
            &pb::McpPins {
                tenant: "a".into(),
                pins: vec![pin("add", &h2), pin("bad", "zz")],
            },
        );
        assert!(matches!(
            board.observe("a", &key("add"), &h1),
            Verdict::Changed { .. }
        ));
        assert_eq!(board.observe("b", &key("add"), &h1), Verdict::Serve);
    }
}
