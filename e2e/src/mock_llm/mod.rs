//! Mock cloud LLM APIs (OpenAI, Anthropic, Gemini) for tests and benchmarks, in-process.
//!
//! A cloud API cannot be reached from the test machines, so its wire format is played here, and
//! proven first: `e2e/tests/mock_providers.rs` drives each vendor's official Python SDK
//! (`openai`, `anthropic`, `google-genai`) against this server directly, plain, streamed and
//! with errors, before any test uses the mock through the gateway.
//!
//! One server answers all three vendors' paths:
//! - OpenAI: `GET /v1/models`, `POST /v1/chat/completions` (plain, SSE, `stream_options.
//!   include_usage`, tool calls), `POST /v1/responses` (plain and `response.*` SSE events, `input`
//!   as a string or messages, `instructions`, `max_output_tokens`), `POST /v1/embeddings`;
//!   `Authorization: Bearer <key>`.
//! - Anthropic: `POST /v1/messages` (plain, SSE events); `x-api-key: <key>` or
//!   `Authorization: Bearer <key>` (what the SDK sends), and `anthropic-version`.
//! - Gemini: `POST /v1beta/models/<model>:generateContent` and `:streamGenerateContent?alt=sse`;
//!   `x-goog-api-key: <key>` (or `?key=`).
//!
//! Answers are deterministic: the words `<server name> heard:` followed by the words of the
//! last user message, cut at the request's token limit (one word = one token; `usage` counts
//! the same way). A tool call is answered when the request offers tools and the last user
//! message names one of them. Faults queued with [`MockLlm::fail_next`] answer the next
//! requests with that status (and `Retry-After`), in the vendor's own error shape.

mod anthropic;
mod gemini;
mod openai;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The API a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    OpenAi,
    Anthropic,
    Gemini,
}

/// A fault the next request gets instead of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u32>,
}

/// What the mock saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub vendor: Vendor,
    pub path: String,
    /// The request's model (for Gemini, from the path).
    pub model: String,
    /// Whether it carried this server's key in the vendor's header.
    pub key_ok: bool,
    pub stream: bool,
    /// Every request header (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The request body as JSON (`Null` when it was not JSON).
    pub body: Value,
}

#[derive(Debug)]
struct State {
    name: String,
    key: String,
    token_delay: Duration,
    faults: Mutex<VecDeque<Fault>>,
    /// Faults for the n-th request (1-based, counting every request seen).
    faults_at: Mutex<std::collections::BTreeMap<usize, Fault>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running mock; stops when dropped.
#[derive(Debug)]
pub struct MockLlm {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl MockLlm {
    /// Serves on `ip` at a free port, accepting `key`.
    pub async fn start(name: &str, ip: IpAddr, key: &str) -> anyhow::Result<Self> {
        Self::start_at(name, SocketAddr::new(ip, 0), key, Duration::ZERO).await
    }

    /// Serves on `addr`, accepting `key`; streamed answers wait `token_delay` between tokens.
    pub async fn start_at(
        name: &str,
        addr: SocketAddr,
        key: &str,
        token_delay: Duration,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("mock LLM {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let state = State::new(name, key, token_delay);
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(Self { addr, state, task })
    }

    /// Serves HTTPS on `addr` with `cert` (an external provider's API), accepting `key`.
    pub async fn start_tls_at(
        name: &str,
        addr: SocketAddr,
        key: &str,
        cert: &crate::pki::CertAndKey,
    ) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let private = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("mock LLM {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let state = State::new(name, key, Duration::ZERO);
        let task = tokio::spawn(serve_tls(listener, acceptor, state.clone()));
        Ok(Self { addr, state, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next `n` requests get `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut faults = self.state.faults.lock().expect("mock state");
        faults.extend(std::iter::repeat_n(fault, n));
    }

    /// The `n`-th request (1-based, counting every request this mock sees) gets `fault`.
    pub fn fail_request(&self, n: usize, fault: Fault) {
        self.state
            .faults_at
            .lock()
            .expect("mock state")
            .insert(n, fault);
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("mock state").clone()
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `listener` until the task is aborted (the in-process [`MockLlm`] and the benchmark
/// binary `fleetgate-mock-llm` share it).
pub async fn serve_forever(listener: TcpListener, name: &str, key: &str, token_delay: Duration) {
    serve(listener, State::new(name, key, token_delay)).await;
}

impl State {
    fn new(name: &str, key: &str, token_delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            key: key.to_string(),
            token_delay,
            faults: Mutex::new(VecDeque::new()),
            faults_at: Mutex::new(std::collections::BTreeMap::new()),
            seen: Mutex::new(Vec::new()),
        })
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// [`serve`] behind TLS: a failed handshake (an untrusting client) ends that connection only.
async fn serve_tls(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// One parsed request, vendor-neutral.
#[derive(Debug, Clone, Default)]
struct Ask {
    model: String,
    /// Words of every message (for prompt token counts).
    prompt_words: usize,
    /// Words of the last user message.
    last_user: Vec<String>,
    max_tokens: Option<usize>,
    stream: bool,
    /// Names of the tools offered.
    tools: Vec<String>,
}

/// The deterministic answer to an [`Ask`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    /// One entry per token.
    words: Vec<String>,
    /// True when cut by the token limit.
    truncated: bool,
    /// A tool call (name, JSON arguments) instead of text.
    tool_call: Option<(String, String)>,
    prompt_tokens: usize,
}

impl Answer {
    fn text(&self) -> String {
        self.words.concat()
    }
}

fn answer(name: &str, ask: &Ask) -> Answer {
    let tool = ask
        .tools
        .iter()
        .find(|t| ask.last_user.iter().any(|w| w.trim() == t.as_str()));
    if let Some(tool) = tool {
        let args = serde_json::json!({ "input": ask.last_user.join(" ") }).to_string();
        return Answer {
            words: Vec::new(),
            truncated: false,
            tool_call: Some((tool.clone(), args)),
            prompt_tokens: ask.prompt_words,
        };
    }
    let all: Vec<String> = [name.to_string(), "heard:".to_string()]
        .into_iter()
        .chain(ask.last_user.iter().cloned())
        .collect();
    let limit = ask.max_tokens.unwrap_or(usize::MAX);
    let truncated = all.len() > limit;
    let words = all
        .into_iter()
        .take(limit)
        .enumerate()
        .map(|(i, w)| if i == 0 { w } else { format!(" {w}") })
        .collect();
    Answer {
        words,
        truncated,
        tool_call: None,
        prompt_tokens: ask.prompt_words,
    }
}

/// Words of a message content: a string, or an array of parts with `text`.
fn content_words(content: &Value) -> Vec<String> {
    match content {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Array(parts) => parts
            .iter()
            .flat_map(|p| content_words(p.get("text").unwrap_or(&Value::Null)))
            .collect(),
        _ => Vec::new(),
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let method = req.method().clone();
    let vendor = if path.starts_with("/v1/messages") {
        Vendor::Anthropic
    } else if path.starts_with("/v1beta/") {
        Vendor::Gemini
    } else {
        Vendor::OpenAi
    };
    let key_ok = match vendor {
        Vendor::OpenAi => header("authorization") == Some(&format!("Bearer {}", state.key)),
        // The API takes `x-api-key`; the 2026 SDKs send `Authorization: Bearer` instead.
        Vendor::Anthropic => {
            header("x-api-key") == Some(state.key.as_str())
                || header("authorization") == Some(&format!("Bearer {}", state.key))
        }
        Vendor::Gemini => {
            header("x-goog-api-key") == Some(state.key.as_str())
                || query
                    .split('&')
                    .any(|kv| kv == format!("key={}", state.key))
        }
    };
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (model, stream) = match vendor {
        Vendor::Gemini => (
            gemini::model_of(&path).unwrap_or_default(),
            path.ends_with(":streamGenerateContent"),
        ),
        _ => (
            body["model"].as_str().unwrap_or_default().to_string(),
            body["stream"].as_bool().unwrap_or(false),
        ),
    };
    let mut seen = state.seen.lock().expect("mock state");
    seen.push(Seen {
        vendor,
        path: path.clone(),
        model,
        key_ok,
        stream,
        headers: headers.clone(),
        body: body.clone(),
    });
    let number = seen.len();
    drop(seen);

    if !key_ok {
        return error(vendor, 401, None, "the API key is missing or wrong");
    }
    let at = state.faults_at.lock().expect("mock state").remove(&number);
    let fault = at.or_else(|| state.faults.lock().expect("mock state").pop_front());
    if let Some(f) = fault {
        return error(vendor, f.status, f.retry_after, "injected fault");
    }
    match (vendor, method.as_str(), path.as_str()) {
        (Vendor::OpenAi, "GET", "/v1/models") => openai::models(&state.name),
        (Vendor::OpenAi, "POST", "/v1/chat/completions") => {
            openai::chat(&state.name, &body, state.token_delay)
        }
        (Vendor::OpenAi, "POST", "/v1/responses") => {
            openai::responses(&state.name, &body, state.token_delay)
        }
        (Vendor::OpenAi, "POST", "/v1/embeddings") => openai::embeddings(&body),
        (Vendor::Anthropic, "POST", "/v1/messages") => {
            if header("anthropic-version").is_none() {
                return error(vendor, 400, None, "anthropic-version header is required");
            }
            anthropic::messages(&state.name, &body, state.token_delay)
        }
        (Vendor::Gemini, "POST", _) if path.ends_with(":generateContent") => {
            gemini::generate(&state.name, &path, &body, false, state.token_delay)
        }
        (Vendor::Gemini, "POST", _) if path.ends_with(":streamGenerateContent") => {
            gemini::generate(&state.name, &path, &body, true, state.token_delay)
        }
        _ => error(vendor, 404, None, &format!("no route {method} {path}")),
    }
}

/// An error in the vendor's own shape.
fn error(vendor: Vendor, status: u16, retry_after: Option<u32>, message: &str) -> Response<Body> {
    let body = match vendor {
        Vendor::OpenAi => openai::error_body(status, message),
        Vendor::Anthropic => anthropic::error_body(status, message),
        Vendor::Gemini => gemini::error_body(status, message),
    };
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(s) = retry_after {
        resp = resp.header("retry-after", s.to_string());
    }
    resp.body(full(body.to_string()))
        .expect("a static response is valid")
}

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

fn json_response(v: &Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(full(v.to_string()))
        .expect("a static response is valid")
}

/// An SSE response sending `events` one frame each, `delay` apart.
fn sse(events: Vec<String>, delay: Duration) -> Response<Body> {
    let stream = futures::stream::iter(events).then(move |e| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(Frame::data(Bytes::from(e)))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("a static response is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(words: &str, max: Option<usize>, tools: &[&str]) -> Ask {
        Ask {
            model: "m".into(),
            prompt_words: words.split_whitespace().count(),
            last_user: words.split_whitespace().map(str::to_string).collect(),
            max_tokens: max,
            stream: false,
            tools: tools.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn answers_are_the_heard_words_cut_at_the_token_limit() {
        let a = answer("mock", &ask("hello fleet", None, &[]));
        assert_eq!(a.text(), "mock heard: hello fleet");
        assert_eq!((a.words.len(), a.truncated, a.prompt_tokens), (4, false, 2));
        let cut = answer("mock", &ask("hello fleet", Some(3), &[]));
        assert_eq!(
            (cut.text().as_str(), cut.truncated),
            ("mock heard: hello", true)
        );
    }

    #[test]
    fn a_named_tool_is_called() {
        let a = answer(
            "mock",
            &ask("please get_weather now", None, &["get_weather"]),
        );
        let (name, args) = a.tool_call.unwrap();
        assert_eq!(name, "get_weather");
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap()["input"],
            "please get_weather now"
        );
    }
}
