//! JSON-RPC 2.0 as MCP uses it: one message per HTTP body (MCP 2025-06-18 removed batches),
//! the error codes, and the answers the gateway builds. Pure.

use serde_json::{Value, json};

/// The body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON, but not a JSON-RPC request, notification or response.
pub const INVALID_REQUEST: i64 = -32600;
/// The gateway does not serve this method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method's params are missing something (a name, a URI) or name nothing the gateway has.
pub const INVALID_PARAMS: i64 = -32602;
/// A target failed (unreachable, timed out, answered something that is not MCP).
pub const INTERNAL_ERROR: i64 = -32603;
/// The session id is not one this gateway issued for this route (MCP has no code of its own;
/// servers commonly use -32001 with HTTP 404).
pub const SESSION_NOT_FOUND: i64 = -32001;

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request: it has an id and expects an answer.
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    /// A notification: no id, no answer.
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A result or an error, answering `id`.
    Response { id: Value, body: Value },
}

/// Why a body is not a message: the code and what to tell the sender, with the id when one
/// could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub id: Value,
    pub code: i64,
    pub message: String,
}

impl Message {
    /// Reads one message.
    pub fn parse(bytes: &[u8]) -> Result<Self, Invalid> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| Invalid {
            id: Value::Null,
            code: PARSE_ERROR,
            message: format!("the body is not JSON: {e}"),
        })?;
        Self::from_value(value)
    }

    /// One message from parsed JSON.
    pub fn from_value(value: Value) -> Result<Self, Invalid> {
        let invalid = |id: Value, message: &str| Invalid {
            id,
            code: INVALID_REQUEST,
            message: message.to_string(),
        };
        let Value::Object(obj) = value else {
            return Err(invalid(
                Value::Null,
                "expected one JSON-RPC message (an object); batches are not part of MCP since 2025-06-18",
            ));
        };
        let id = obj.get("id").cloned();
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(
                id.unwrap_or(Value::Null),
                "jsonrpc must be \"2.0\"",
            ));
        }
        if let Some(id) = &id
            && !(id.is_string() || id.is_i64() || id.is_u64())
        {
            return Err(invalid(Value::Null, "id must be a string or an integer"));
        }
        match (obj.get("method"), id) {
            (Some(Value::String(m)), Some(id)) => Ok(Self::Request {
                id,
                method: m.clone(),
                params: obj.get("params").cloned(),
            }),
            (Some(Value::String(m)), None) => Ok(Self::Notification {
                method: m.clone(),
                params: obj.get("params").cloned(),
            }),
            (Some(_), id) => Err(invalid(
                id.unwrap_or(Value::Null),
                "method must be a string",
            )),
            (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
                Ok(Self::Response {
                    id,
                    body: Value::Object(obj),
                })
            }
            (None, id) => Err(invalid(
                id.unwrap_or(Value::Null),
                "neither a request, a notification nor a response",
            )),
        }
    }
}

/// A request on the wire.
pub fn request(id: &Value, method: &str, params: Option<&Value>) -> Value {
    let mut v = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(p) = params {
        v["params"] = p.clone();
    }
    v
}

/// A notification on the wire.
pub fn notification(method: &str, params: Option<&Value>) -> Value {
    let mut v = json!({"jsonrpc": "2.0", "method": method});
    if let Some(p) = params {
        v["params"] = p.clone();
    }
    v
}

/// A result answering `id`.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error answering `id`.
pub fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// An error with `data`.
pub fn error_with(id: &Value, code: i64, message: &str, data: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message, "data": data}})
}

/// `body`'s `result`, or its error as (code, message).
pub fn outcome(body: &Value) -> Result<&Value, (i64, String)> {
    if let Some(r) = body.get("result") {
        return Ok(r);
    }
    let e = body.get("error");
    Err((
        e.and_then(|e| e.get("code"))
            .and_then(Value::as_i64)
            .unwrap_or(INTERNAL_ERROR),
        e.and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no result and no error")
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart_and_bad_ones_get_the_right_code() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert!(matches!(m, Message::Request { ref method, .. } if method == "tools/list"));
        let n =
            Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(n, Message::Notification { .. }));
        let r = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(r, Message::Response { .. }));
        assert_eq!(Message::parse(b"{").unwrap_err().code, PARSE_ERROR);
        for bad in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            assert_eq!(
                Message::parse(bad.as_bytes()).unwrap_err().code,
                INVALID_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn outcomes_read_results_and_errors() {
        assert_eq!(
            outcome(&result(&json!(1), json!({"a": 1}))).unwrap(),
            &json!({"a": 1})
        );
        assert_eq!(
            outcome(&error(&json!(1), METHOD_NOT_FOUND, "no")).unwrap_err(),
            (METHOD_NOT_FOUND, "no".to_string())
        );
    }
}
