//! A2A's JSON-RPC as the gateway reads it (pure): which method a call names, as a bounded
//! telemetry label; which task and task state an answer or a streamed event carries (A2A v0.3's
//! JSON and v1.0's protobuf JSON alike); and errors in JSON-RPC's shape.
//!
//! Methods, both protocol versions (v0.3 names first): `message/send` / `SendMessage`,
//! `message/stream` / `SendStreamingMessage`, `tasks/get` / `GetTask`, `tasks/cancel` /
//! `CancelTask`, `tasks/resubscribe` / `SubscribeToTask`, `tasks/pushNotificationConfig/{set,
//! get, list, delete}` / `{Create, Get, List, Delete}TaskPushNotificationConfig(s)`, `ListTasks`,
//! `agent/getAuthenticatedExtendedCard` / `GetExtendedAgentCard`. Any other method is passed
//! on (the agent answers it) and counted as `other`.

use hyper::StatusCode;
use serde_json::{Value, json};

use crate::Body;

/// JSON-RPC: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the server failed (here: the gateway could not get an answer from the agent).
pub const INTERNAL_ERROR: i64 = -32603;

/// Every method the gateway names in its telemetry; others are `other`.
pub const METHODS: [&str; 23] = [
    "message/send",
    "message/stream",
    "tasks/get",
    "tasks/cancel",
    "tasks/resubscribe",
    "tasks/pushNotificationConfig/set",
    "tasks/pushNotificationConfig/get",
    "tasks/pushNotificationConfig/list",
    "tasks/pushNotificationConfig/delete",
    "agent/getAuthenticatedExtendedCard",
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
    "card",
    "other",
];

/// Methods whose answer is an agent card, rewritten like the well-known one.
pub const CARD_METHODS: [&str; 2] = ["agent/getAuthenticatedExtendedCard", "GetExtendedAgentCard"];

/// Task states, both versions' spellings mapped to v0.3's; others are `other`.
pub const STATES: [&str; 10] = [
    "submitted",
    "working",
    "input-required",
    "auth-required",
    "completed",
    "canceled",
    "failed",
    "rejected",
    "unknown",
    "other",
];

/// One JSON-RPC call as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The request's `id` (`null` for a notification).
    pub id: Value,
    /// The method as written.
    pub method: String,
}

/// Why a body is not a call the gateway passes on: the JSON-RPC error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: i64,
    pub message: String,
}

/// Reads a call: one JSON-RPC 2.0 request object with a string `method` (batches are refused;
/// A2A does not use them).
pub fn parse(body: &[u8]) -> Result<Call, Refused> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Refused {
        code: PARSE_ERROR,
        message: format!("the body is not JSON: {e}"),
    })?;
    let Value::Object(o) = v else {
        return Err(Refused {
            code: INVALID_REQUEST,
            message: "the body must be one JSON-RPC request object (batches are not supported)"
                .into(),
        });
    };
    let invalid = |message: &str| Refused {
        code: INVALID_REQUEST,
        message: message.into(),
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    let Some(method) = o.get("method").and_then(Value::as_str) else {
        return Err(invalid("\"method\" must be a string"));
    };
    Ok(Call {
        id: o.get("id").cloned().unwrap_or(Value::Null),
        method: method.to_string(),
    })
}

/// The telemetry label of `method`: itself when it is one of [`METHODS`], else `other`.
pub fn label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method && **m != "card" && **m != "other")
        .copied()
        .unwrap_or("other")
}

/// The bounded label of a task state as either version writes it (`completed`,
/// `TASK_STATE_COMPLETED`, `input-required`, `TASK_STATE_INPUT_REQUIRED`, ...).
pub fn state_label(state: &str) -> &'static str {
    let lower = state.to_ascii_lowercase();
    let plain = lower.strip_prefix("task_state_").unwrap_or(&lower);
    let plain = plain.replace('_', "-");
    let plain = if plain == "cancelled" {
        "canceled"
    } else {
        plain.as_str()
    };
    STATES
        .iter()
        .find(|s| **s == plain && **s != "other")
        .copied()
        .unwrap_or("other")
}

/// The task id and state a result or a streamed event names, if any: a Task (`id` + `status`),
/// a status or artifact update (`taskId`), a Message of a task (`taskId`), in v0.3's shape or
/// wrapped the v1.0 way (`{"task": ...}`, `{"statusUpdate": ...}`, `{"artifactUpdate": ...}`,
/// `{"message": ...}`).
pub fn task_of(result: &Value) -> Option<(String, Option<&'static str>)> {
    let inner = ["task", "statusUpdate", "artifactUpdate", "message"]
        .iter()
        .find_map(|k| result.get(*k).filter(|v| v.is_object()))
        .unwrap_or(result);
    let id = inner.get("taskId").and_then(Value::as_str).or_else(|| {
        inner
            .get("status")
            .and(inner.get("id"))
            .and_then(Value::as_str)
    })?;
    let state = inner
        .get("status")
        .and_then(|s| s.get("state"))
        .and_then(Value::as_str)
        .map(state_label);
    Some((id.chars().take(128).collect(), state))
}

/// The JSON-RPC error object `{"jsonrpc", "id", "error": {"code", "message"}}`.
pub fn error_body(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A JSON-RPC error answer with HTTP `status`.
pub fn error_response(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
) -> hyper::Response<Body> {
    crate::errors::json_response(status, &error_body(id, code, message))
}

/// One of the gateway's own refusals ([`crate::errors::ApiError`]: virtual key, concurrency,
/// upstream unreachable or slow) as a JSON-RPC error, keeping its HTTP status and saying its
/// code in the message.
pub fn from_api_error(e: &crate::errors::ApiError, id: &Value) -> hyper::Response<Body> {
    let code = match e.status.as_u16() {
        400 | 413 => INVALID_REQUEST,
        404 => METHOD_NOT_FOUND,
        _ => INTERNAL_ERROR,
    };
    let mut resp = error_response(e.status, id, code, &format!("{}: {}", e.code, e.message));
    if e.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_read_and_bad_bodies_named() {
        let call = parse(br#"{"jsonrpc":"2.0","id":7,"method":"message/send","params":{}}"#);
        assert_eq!(
            call,
            Ok(Call {
                id: json!(7),
                method: "message/send".into()
            })
        );
        let cases: [(&[u8], i64, &str); 5] = [
            (b"{", PARSE_ERROR, "not JSON"),
            (b"[]", INVALID_REQUEST, "batches are not supported"),
            (br#"{"method":"x"}"#, INVALID_REQUEST, "\"jsonrpc\" must be"),
            (
                br#"{"jsonrpc":"2.0","method":7}"#,
                INVALID_REQUEST,
                "\"method\"",
            ),
            (b"\xff", PARSE_ERROR, "not JSON"),
        ];
        for (body, code, says) in cases {
            let e = parse(body).unwrap_err();
            assert_eq!(e.code, code, "{body:?}");
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(label("message/stream"), "message/stream");
        assert_eq!(label("SendStreamingMessage"), "SendStreamingMessage");
        assert_eq!(label("tasks/get?x"), "other");
        assert_eq!(label("card"), "other");
        assert_eq!(label(&"x".repeat(10_000)), "other");
        for (written, want) in [
            ("completed", "completed"),
            ("TASK_STATE_COMPLETED", "completed"),
            ("TASK_STATE_INPUT_REQUIRED", "input-required"),
            ("input-required", "input-required"),
            ("cancelled", "canceled"),
            ("TASK_STATE_CANCELED", "canceled"),
            ("exploded", "other"),
            ("TASK_STATE_UNSPECIFIED", "other"),
        ] {
            assert_eq!(state_label(written), want, "{written}");
        }
    }

    #[test]
    fn tasks_are_read_from_either_versions_answers_and_events() {
        let cases = [
            (
                json!({"kind": "task", "id": "t1", "contextId": "c", "status": {"state": "completed"}}),
                Some(("t1", Some("completed"))),
            ),
            (
                json!({"task": {"id": "t2", "status": {"state": "TASK_STATE_WORKING"}}}),
                Some(("t2", Some("working"))),
            ),
            (
                json!({"statusUpdate": {"taskId": "t3", "status": {"state": "TASK_STATE_COMPLETED"}}}),
                Some(("t3", Some("completed"))),
            ),
            (
                json!({"kind": "status-update", "taskId": "t4", "status": {"state": "working"}, "final": false}),
                Some(("t4", Some("working"))),
            ),
            (
                json!({"artifactUpdate": {"taskId": "t5", "artifact": {}}}),
                Some(("t5", None)),
            ),
            (
                json!({"message": {"messageId": "m", "taskId": "t6", "role": "ROLE_AGENT"}}),
                Some(("t6", None)),
            ),
            (json!({"kind": "message", "messageId": "m"}), None),
            (json!({"id": "not-a-task"}), None),
            (json!([1, 2]), None),
        ];
        for (result, want) in cases {
            let got = task_of(&result);
            assert_eq!(
                got.as_ref().map(|(id, s)| (id.as_str(), *s)),
                want,
                "{result}"
            );
        }
    }
}
