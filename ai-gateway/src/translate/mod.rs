//! Translation between provider protocols: a client speaks one API, the backend another.
//! Pure functions over JSON values (no I/O), so every mapping is table-tested here and the
//! providers only move bytes.
//!
//! - [`anthropic`]: OpenAI chat completions <-> Anthropic Messages, both directions, plain and
//!   streamed (system prompts, tool calls and results, stop reasons, usage).
//! - [`gemini`]: OpenAI chat completions -> Gemini `generateContent`, plain and streamed.
//! - [`sse`]: a body that rewrites server-sent events as they pass.

pub mod anthropic;
pub mod gemini;
pub mod sse;

/// A request that cannot be expressed in the backend's API. The message names the field and
/// says what to change; the client gets it as a 400 in its own API's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TranslateError(pub String);

fn err(msg: impl Into<String>) -> TranslateError {
    TranslateError(msg.into())
}

/// The text of an OpenAI message content at `at`: a string, or the `text` parts of an array;
/// any other part cannot be sent to `backend` (e.g. "an Anthropic backend").
fn text_of(content: &serde_json::Value, at: &str, backend: &str) -> Result<String, TranslateError> {
    use serde_json::Value;
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                match p["type"].as_str() {
                    Some("text") => out.push(p["text"].as_str().unwrap_or_default().to_string()),
                    other => {
                        return Err(err(format!(
                            "{at}.content[{i}]: part type {other:?} cannot be sent to {backend} (only text)"
                        )));
                    }
                }
            }
            Ok(out.join("\n"))
        }
        _ => Err(err(format!(
            "{at}.content must be a string or an array of parts"
        ))),
    }
}
