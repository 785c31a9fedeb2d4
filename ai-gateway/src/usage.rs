//! Usage: what each response cost, counted as it goes back to the client (listen -> identify ->
//! route -> provider -> auth -> **usage** -> errors).
//!
//! - Buffered responses: `usage.prompt_tokens` / `usage.completion_tokens` of the JSON body, or
//!   `usage.input_tokens` / `usage.output_tokens` of a Responses API body ([`from_json`]).
//! - Streams (SSE): the provider asks the upstream for usage (`stream_options.include_usage`);
//!   [`SseUsage`] reads every event as it passes, keeps the usage the upstream reports, measures
//!   the time to the first token, and hides what the client did not ask for: the final usage-only
//!   chunk and the `"usage": null` field of the other chunks. An upstream that ignores the option
//!   (llama-cpp-python 0.3.36 does) gets its completion tokens counted from the token chunks,
//!   and the record says so ([`UsageSource::CountedChunks`]).
//! - Responses API streams (`event: response.*`): the usage of the `response.completed` event
//!   (or `response.incomplete` / `response.failed`, which end a stream the same way), the model
//!   of the first event naming a response, the first token at the first
//!   `response.output_text.delta`; nothing is hidden, since every client gets the final event.
//!
//! Records go to a [`UsageSink`], keyed by (tenant, route, model): [`InMemoryUsage`] keeps
//! totals, and [`crate::metrics::usage::MeteredUsage`] counts each record once in the
//! Prometheus metrics (`--metrics-listen`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use crate::BoxError;

/// What usage is counted under. `model` is what the upstream says served the request (or what
/// was asked for, when it does not say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub tenant: String,
    pub route: String,
    pub model: String,
}

/// Where the token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSource {
    /// The upstream's own `usage` object.
    Reported,
    /// No `usage` from the upstream; completion tokens are the number of token chunks (one
    /// token each for llama.cpp), prompt tokens are unknown (0).
    CountedChunks,
    /// Nothing to count (an error, or a response without usage such as /v1/models).
    None,
}

/// One request's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub source: UsageSource,
    pub streamed: bool,
    /// HTTP status the client received.
    pub status: u16,
    /// Time from the request's arrival to the first content token (streams only).
    pub time_to_first_token: Option<Duration>,
    /// Time from the request's arrival to the end of the response; filled in where the record
    /// is made ([`crate::RequestCtx::record`], [`Recorder`]).
    pub duration: Option<Duration>,
    /// What went wrong talking to the upstream, a fixed word: the code of the gateway's own
    /// error ([`crate::errors::ApiError::code`], e.g. `upstream_timeout`), or
    /// [`UPSTREAM_STATUS`] when the upstream answered an error status. `None`: no upstream error.
    pub error: Option<&'static str>,
}

/// [`Usage::error`] of a response whose upstream answered an error status (passed on).
pub const UPSTREAM_STATUS: &str = "upstream_status";

/// Where usage records go.
pub trait UsageSink: Send + Sync + 'static {
    fn record(&self, key: UsageKey, usage: Usage);
}

/// Totals of one (tenant, route, model).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageTotals {
    pub requests: u64,
    /// Requests answered with a status >= 400.
    pub errors: u64,
    pub streamed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Requests whose completion tokens were counted from chunks, not reported.
    pub counted_from_chunks: u64,
    pub time_to_first_token_count: u64,
    pub time_to_first_token_sum: Duration,
    pub time_to_first_token_max: Duration,
}

/// Usage totals in memory.
#[derive(Debug, Default)]
pub struct InMemoryUsage {
    totals: Mutex<HashMap<UsageKey, UsageTotals>>,
}

impl InMemoryUsage {
    /// Every key with its totals, sorted by key.
    pub fn snapshot(&self) -> Vec<(UsageKey, UsageTotals)> {
        let map = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The totals of one tenant and route, summed over models.
    pub fn route_totals(&self, tenant: &str, route: &str) -> UsageTotals {
        let mut sum = UsageTotals::default();
        for (k, v) in self.snapshot() {
            if k.tenant == tenant && k.route == route {
                sum.requests += v.requests;
                sum.errors += v.errors;
                sum.streamed += v.streamed;
                sum.prompt_tokens += v.prompt_tokens;
                sum.completion_tokens += v.completion_tokens;
                sum.counted_from_chunks += v.counted_from_chunks;
                sum.time_to_first_token_count += v.time_to_first_token_count;
                sum.time_to_first_token_sum += v.time_to_first_token_sum;
                sum.time_to_first_token_max =
                    sum.time_to_first_token_max.max(v.time_to_first_token_max);
            }
        }
        sum
    }
}

impl UsageSink for InMemoryUsage {
    fn record(&self, key: UsageKey, usage: Usage) {
        let mut map = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let t = map.entry(key).or_default();
        t.requests += 1;
        t.errors += u64::from(usage.status >= 400);
        t.streamed += u64::from(usage.streamed);
        t.prompt_tokens += usage.prompt_tokens;
        t.completion_tokens += usage.completion_tokens;
        t.counted_from_chunks += u64::from(usage.source == UsageSource::CountedChunks);
        if let Some(ttft) = usage.time_to_first_token {
            t.time_to_first_token_count += 1;
            t.time_to_first_token_sum += ttft;
            t.time_to_first_token_max = t.time_to_first_token_max.max(ttft);
        }
    }
}

/// Token counts of a `usage` object: chat completions' `prompt_tokens`/`completion_tokens`
/// (embeddings have only prompt tokens), or the Responses API's `input_tokens`/`output_tokens`.
fn tokens(usage: &Value) -> Option<(u64, u64)> {
    let obj = usage.as_object()?;
    let count = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| obj.get(*n).and_then(Value::as_u64))
            .unwrap_or(0)
    };
    let prompt = count(["prompt_tokens", "input_tokens"]);
    let completion = count(["completion_tokens", "output_tokens"]);
    Some((prompt, completion))
}

/// Events of a Responses API stream that end it with the whole response, usage included.
const RESPONSES_FINAL_EVENTS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// Events of a Responses API stream that carry one piece of output (a token, roughly).
const RESPONSES_DELTA_EVENTS: [&str; 3] = [
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
];

/// The model and token counts of a buffered JSON response.
pub fn from_json(body: &[u8]) -> (Option<String>, Option<(u64, u64)>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let model = v.get("model").and_then(Value::as_str).map(str::to_string);
    (model, v.get("usage").and_then(tokens))
}

/// Reads an OpenAI SSE stream event by event: usage, first token, and what the client sees.
#[derive(Debug)]
pub struct SseUsage {
    client_wants_usage: bool,
    started: Instant,
    buf: BytesMut,
    /// Usage the upstream reported.
    pub reported: Option<(u64, u64)>,
    /// Chunks that carry one token (see [`SseUsage::event`]).
    pub token_chunks: u64,
    pub first_token: Option<Duration>,
    pub model: Option<String>,
}

/// Finds the end of the first complete event in `buf`: (end of event, start of the next).
pub(crate) fn event_boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        } else if buf[i] == b'\r' && buf.get(i + 1) == Some(&b'\r') {
            return Some((i, i + 2));
        }
        i += 1;
    }
    None
}

impl SseUsage {
    pub fn new(client_wants_usage: bool, started: Instant) -> Self {
        Self {
            client_wants_usage,
            started,
            buf: BytesMut::new(),
            reported: None,
            token_chunks: 0,
            first_token: None,
            model: None,
        }
    }

    /// Takes bytes from the upstream and returns the complete events the client gets. An
    /// incomplete event waits in the buffer for the rest of it.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.buf.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some((end, next)) = event_boundary(&self.buf) {
            let event = self.buf.split_to(next).freeze();
            self.event(&event[..end], &event, &mut out);
        }
        out.freeze()
    }

    /// The end of the stream: whatever is left (an unterminated last event) goes as it is.
    pub fn finish(&mut self) -> Bytes {
        let rest = self.buf.split().freeze();
        if !rest.is_empty() {
            let mut sink = BytesMut::new();
            // Count it, but send the bytes unchanged.
            self.event(&rest, &rest, &mut sink);
        }
        rest
    }

    /// One event: `text` without its terminator, `raw` with it.
    fn event(&mut self, text: &[u8], raw: &Bytes, out: &mut BytesMut) {
        let mut data = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(d) = line.strip_prefix(b"data:") {
                if !data.is_empty() {
                    data.push(b'\n');
                }
                data.extend_from_slice(d.strip_prefix(b" ").unwrap_or(d));
            }
        }
        let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&data) else {
            // `[DONE]`, comments, keep-alives, anything not JSON: passed through.
            out.extend_from_slice(raw);
            return;
        };
        if let Some(kind) = obj.get("type").and_then(Value::as_str)
            && kind.starts_with("response.")
        {
            self.responses_event(kind, &obj);
            out.extend_from_slice(raw);
            return;
        }
        if self.model.is_none() {
            self.model = obj.get("model").and_then(Value::as_str).map(str::to_string);
        }
        // A token chunk: a delta with content (even empty: llama.cpp sends one event per token,
        // "" for a token that ends inside a UTF-8 sequence), tool calls or a refusal, and no
        // role (OpenAI's first chunk carries the role and an empty content, and no token).
        let mut token = false;
        let mut visible = false;
        if let Some(choices) = obj.get("choices").and_then(Value::as_array) {
            for c in choices {
                let d = &c["delta"];
                let content = d["content"].as_str();
                let tools = d["tool_calls"].as_array().is_some_and(|t| !t.is_empty());
                let refusal = d["refusal"].as_str().is_some_and(|s| !s.is_empty());
                if d.get("role").is_none() && (content.is_some() || tools || refusal) {
                    token = true;
                }
                if content.is_some_and(|s| !s.is_empty()) || tools || refusal {
                    visible = true;
                }
            }
        }
        if token {
            self.token_chunks += 1;
        }
        if visible && self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
        let usage = obj.get("usage").and_then(tokens);
        if usage.is_some() {
            self.reported = usage;
        }
        if self.client_wants_usage || !obj.contains_key("usage") {
            out.extend_from_slice(raw);
            return;
        }
        // The client did not ask for usage: hide the usage-only chunk, and the field elsewhere.
        let choices_empty = obj
            .get("choices")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if usage.is_some() && choices_empty {
            return;
        }
        obj.remove("usage");
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&obj).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    /// One event of a Responses API stream (`type: response.*`): counted, never changed.
    fn responses_event(&mut self, kind: &str, obj: &serde_json::Map<String, Value>) {
        if let Some(response) = obj.get("response") {
            if self.model.is_none() {
                self.model = response
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            if RESPONSES_FINAL_EVENTS.contains(&kind)
                && let Some(usage) = response.get("usage").and_then(tokens)
            {
                self.reported = Some(usage);
            }
        }
        if RESPONSES_DELTA_EVENTS.contains(&kind) {
            self.token_chunks += 1;
            let visible = obj
                .get("delta")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty());
            if visible && self.first_token.is_none() {
                self.first_token = Some(self.started.elapsed());
            }
        }
    }

    /// The usage to record: reported if the upstream said, else counted from chunks.
    pub fn usage(&self, status: u16) -> Usage {
        let (prompt_tokens, completion_tokens, source) = match self.reported {
            Some((p, c)) => (p, c, UsageSource::Reported),
            None => (0, self.token_chunks, UsageSource::CountedChunks),
        };
        Usage {
            prompt_tokens,
            completion_tokens,
            source,
            streamed: true,
            status,
            time_to_first_token: self.first_token,
            duration: None,
            error: None,
        }
    }
}

/// The body of a streamed response: passes the upstream's events through [`SseUsage`], holds
/// the tenant's concurrency permit until the end, and records usage when the stream ends or the
/// client goes away.
pub struct UsageBody {
    inner: crate::Body,
    sse: SseUsage,
    record: Option<Recorder>,
    _permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

/// What is needed to record usage once.
pub struct Recorder {
    pub sink: Arc<dyn UsageSink>,
    pub tenant: String,
    pub route: String,
    /// The model asked for, used when the upstream does not name one.
    pub requested_model: String,
    pub status: u16,
    /// When the request arrived: the record's [`Usage::duration`] is measured from it.
    pub started: Instant,
}

impl UsageBody {
    pub fn new(
        inner: crate::Body,
        sse: SseUsage,
        record: Recorder,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            inner,
            sse,
            record: Some(record),
            _permit: permit,
            done: false,
        }
    }

    fn record(&mut self) {
        if let Some(r) = self.record.take() {
            let key = UsageKey {
                tenant: r.tenant,
                route: r.route,
                model: self.sse.model.clone().unwrap_or(r.requested_model),
            };
            let mut usage = self.sse.usage(r.status);
            usage.duration = Some(r.started.elapsed());
            r.sink.record(key, usage);
        }
    }
}

impl Drop for UsageBody {
    fn drop(&mut self) {
        self.record();
    }
}

impl HttpBody for UsageBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.sse.push(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    this.record();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let rest = this.sse.finish();
                    this.record();
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenAI stream with `include_usage` (recorded shape: every chunk has `"usage": null`,
    /// then a usage-only chunk with empty choices, then `[DONE]`).
    const OPENAI_WITH_USAGE: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n",
        "data: [DONE]\n\n",
    );

    /// llama-cpp-python 0.3.36: CRLF line ends, no usage chunk, one token per chunk (an empty
    /// content for a token that ends inside a UTF-8 sequence).
    const LLAMA_CPP: &str = concat!(
        "data: {\"id\":\"chatcmpl-x\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"id\":\"chatcmpl-x\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"q\"},\"finish_reason\":null}]}\r\n\r\n",
        ": ping - 2025-01-01 00:00:00\r\n\r\n",
        "data: {\"id\":\"chatcmpl-x\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Z\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"id\":\"chatcmpl-x\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" 7\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"id\":\"chatcmpl-x\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"id\":\"chatcmpl-x\",\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n",
        "data: [DONE]\r\n\r\n",
    );

    /// An OpenAI Responses API stream (recorded shape, shortened: `event:` lines, a
    /// `sequence_number` on each event, `response.completed` carrying the whole response with
    /// its usage; no `[DONE]`).
    const RESPONSES_STREAM: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"gpt-4o-mini-2024-07-18\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.in_progress\n",
        "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"gpt-4o-mini-2024-07-18\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}}\n\n",
        "event: response.content_part.added\n",
        "data: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"text\":\"\"}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hel\",\"logprobs\":[]}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"lo \\u00e9\",\"logprobs\":[]}\n\n",
        "event: response.output_text.done\n",
        "data: {\"type\":\"response.output_text.done\",\"sequence_number\":6,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"text\":\"Hello \\u00e9\",\"logprobs\":[]}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"sequence_number\":7,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\",\"model\":\"gpt-4o-mini-2024-07-18\",\"output\":[{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"text\":\"Hello \\u00e9\"}]}],\"usage\":{\"input_tokens\":36,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":38}}}\n\n",
    );

    /// Splits `input` at every `step` bytes (1 splits inside UTF-8 sequences, `\r\n` pairs and
    /// the blank line between events) and runs it through [`SseUsage`].
    fn run(input: &str, step: usize, wants: bool) -> (String, SseUsage) {
        let mut sse = SseUsage::new(wants, Instant::now());
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(step) {
            out.extend_from_slice(&sse.push(chunk));
        }
        out.extend_from_slice(&sse.finish());
        (String::from_utf8(out).expect("events are never cut"), sse)
    }

    fn data_events(s: &str) -> Vec<Value> {
        s.split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn usage_is_read_from_streams_split_anywhere() {
        struct Case {
            name: &'static str,
            input: &'static str,
            wants: bool,
            reported: Option<(u64, u64)>,
            token_chunks: u64,
            model: &'static str,
        }
        let cases = [
            Case {
                name: "openai, client asked for usage",
                input: OPENAI_WITH_USAGE,
                wants: true,
                reported: Some((11, 2)),
                token_chunks: 2,
                model: "gpt-4o-mini",
            },
            Case {
                name: "openai, client did not ask",
                input: OPENAI_WITH_USAGE,
                wants: false,
                reported: Some((11, 2)),
                token_chunks: 2,
                model: "gpt-4o-mini",
            },
            Case {
                name: "responses API, usage in response.completed",
                input: RESPONSES_STREAM,
                wants: true,
                reported: Some((36, 2)),
                token_chunks: 2,
                model: "gpt-4o-mini-2024-07-18",
            },
            Case {
                // A Responses client never asks (the API has no include_usage): nothing hidden.
                name: "responses API, nothing to hide",
                input: RESPONSES_STREAM,
                wants: false,
                reported: Some((36, 2)),
                token_chunks: 2,
                model: "gpt-4o-mini-2024-07-18",
            },
            Case {
                name: "llama.cpp, no usage chunk",
                input: LLAMA_CPP,
                wants: false,
                reported: None,
                token_chunks: 4,
                model: "tiny",
            },
        ];
        for case in &cases {
            for step in [1, 2, 3, 7, 64, 10_000] {
                let (out, sse) = run(case.input, step, case.wants);
                let at = format!("{} (split every {step} bytes)", case.name);
                assert_eq!(sse.reported, case.reported, "{at}");
                assert_eq!(sse.token_chunks, case.token_chunks, "{at}");
                assert_eq!(sse.model.as_deref(), Some(case.model), "{at}");
                assert!(sse.first_token.is_some(), "{at}");
                if case.wants || case.reported.is_none() || case.input == RESPONSES_STREAM {
                    assert_eq!(out, case.input, "{at}: passed through byte for byte");
                }
            }
        }
    }

    #[test]
    fn usage_the_client_did_not_ask_for_is_hidden() {
        for step in [1, 5, 10_000] {
            let (out, _) = run(OPENAI_WITH_USAGE, step, false);
            let events = data_events(&out);
            assert_eq!(events.len(), 4, "the usage-only chunk is gone: {out}");
            for e in &events {
                assert!(e.get("usage").is_none(), "{e}");
                assert_eq!(e["model"], "gpt-4o-mini");
            }
            assert_eq!(events[2]["choices"][0]["delta"]["content"], "lo \u{e9}");
            assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        }
        let (out, _) = run(OPENAI_WITH_USAGE, 3, true);
        let events = data_events(&out);
        assert_eq!(events.len(), 5);
        assert_eq!(events[4]["usage"]["total_tokens"], 13);
    }

    #[test]
    fn an_unterminated_last_event_is_counted_and_passed_on() {
        let input = "data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}";
        let (out, sse) = run(input, 4, true);
        assert_eq!(out, input);
        assert_eq!(sse.reported, Some((1, 1)));
        let u = sse.usage(200);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.source),
            (1, 1, UsageSource::Reported)
        );
    }

    #[test]
    fn chunk_counts_stand_in_when_nothing_is_reported() {
        let (_, sse) = run(LLAMA_CPP, 9, false);
        let u = sse.usage(200);
        assert_eq!(u.source, UsageSource::CountedChunks);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (0, 4));
        assert!(u.streamed);
    }

    #[test]
    fn a_responses_stream_cut_short_or_incomplete_counts_what_it_says() {
        // `response.incomplete` (max_output_tokens reached) ends the stream with usage too.
        let incomplete = RESPONSES_STREAM
            .replace("response.completed", "response.incomplete")
            .replace(
                "\"status\":\"completed\",\"model\"",
                "\"status\":\"incomplete\",\"model\"",
            );
        for step in [1, 4, 64] {
            let (out, sse) = run(&incomplete, step, false);
            assert_eq!(out, incomplete, "split every {step}");
            assert_eq!(sse.usage(200).source, UsageSource::Reported);
            assert_eq!(sse.reported, Some((36, 2)));
        }
        // A stream that stops before its final event: the deltas stand in, like chunks.
        let cut = &RESPONSES_STREAM[..RESPONSES_STREAM.find("event: response.completed").unwrap()];
        let (out, sse) = run(cut, 3, false);
        assert_eq!(out, cut);
        let u = sse.usage(200);
        assert_eq!(u.source, UsageSource::CountedChunks);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (0, 2));
        assert!(u.time_to_first_token.is_some());
        // `usage: null` in response.created is no usage.
        let created = &RESPONSES_STREAM[..RESPONSES_STREAM
            .find("event: response.in_progress")
            .unwrap()];
        let (_, sse) = run(created, 7, false);
        assert_eq!(sse.reported, None);
        assert_eq!(sse.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert!(sse.first_token.is_none());
    }

    #[test]
    fn buffered_responses_report_model_and_tokens() {
        let body = br#"{"id":"x","model":"tiny","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        assert_eq!(from_json(body), (Some("tiny".into()), Some((5, 7))));
        let emb = br#"{"object":"list","data":[],"model":"e","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(from_json(emb), (Some("e".into()), Some((4, 0))));
        let responses = br#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]}],"usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":12}}"#;
        assert_eq!(
            from_json(responses),
            (Some("gpt-4o-mini".into()), Some((9, 3)))
        );
        assert_eq!(from_json(b"not json"), (None, None));
    }

    #[test]
    fn totals_add_up_per_key() {
        let usage = InMemoryUsage::default();
        let key = |m: &str| UsageKey {
            tenant: "a".into(),
            route: "r".into(),
            model: m.into(),
        };
        let u = |p, c, status| Usage {
            prompt_tokens: p,
            completion_tokens: c,
            source: UsageSource::Reported,
            streamed: false,
            status,
            time_to_first_token: None,
            duration: None,
            error: None,
        };
        usage.record(key("m1"), u(1, 2, 200));
        usage.record(key("m1"), u(3, 4, 200));
        usage.record(key("m2"), u(0, 0, 502));
        let t = usage.route_totals("a", "r");
        assert_eq!(
            (t.requests, t.errors, t.prompt_tokens, t.completion_tokens),
            (3, 1, 4, 6)
        );
        assert_eq!(usage.snapshot().len(), 2);
        assert_eq!(usage.route_totals("b", "r"), UsageTotals::default());
    }
}
