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
