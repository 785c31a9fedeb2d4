//! MCP tool pinning on the tenant's side: the hub's `ToolsPinned=False` condition on an
//! AgentgatewayBackend (a target changed a tool's definition; the AI gateways withhold the tool
//! until the tenant accepts it) also becomes a Warning Event on the backend, for
//! `kubectl describe` and event watchers, the way a refused Service or Ingress gets one.
//!
//! Where it sits: the status writer ([`super::Sink`]) creates the Event when it writes a status
//! that carries the condition; writes happen only when the status changes, so one change (or a
//! new hash) makes one Event.

use k8s_openapi::api::core::v1::Event;

use crate::crd::agentgateway::AgentgatewayBackendStatus;

/// The condition type the hub sets on MCP backends whose tools it pins.
pub const TOOLS_PINNED: &str = "ToolsPinned";

/// A Warning Event on AgentgatewayBackend `namespace/name` when its status says tools are
/// withheld (`ToolsPinned=False`); `None` otherwise.
pub fn withheld_event(namespace: &str, name: &str, s: &AgentgatewayBackendStatus) -> Option<Event> {
    let c = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == TOOLS_PINNED && c.status == "False")?;
    Some(super::service::condition_event(
        ("agentgateway.dev/v1alpha1", "AgentgatewayBackend"),
        namespace,
        name,
        c,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn status(type_: &str, status: &str) -> AgentgatewayBackendStatus {
        AgentgatewayBackendStatus {
            conditions: Some(vec![Condition {
                type_: type_.into(),
                status: status.into(),
                reason: "ToolDefinitionChanged".into(),
                message: "target alpha changed tool add".into(),
                observed_generation: Some(1),
                last_transition_time: Time(
                    k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
                ),
            }]),
        }
    }

    #[test]
    fn only_withheld_tools_make_an_event_on_the_backend() {
        let e = withheld_event("default", "tools", &status(TOOLS_PINNED, "False")).unwrap();
        assert_eq!(
            e.involved_object.kind.as_deref(),
            Some("AgentgatewayBackend")
        );
        assert_eq!(e.involved_object.name.as_deref(), Some("tools"));
        assert_eq!(e.reason.as_deref(), Some("ToolDefinitionChanged"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert!(withheld_event("default", "tools", &status(TOOLS_PINNED, "True")).is_none());
        assert!(withheld_event("default", "tools", &status("Accepted", "False")).is_none());
        assert!(
            withheld_event("default", "tools", &AgentgatewayBackendStatus::default()).is_none()
        );
    }
}
