//! Sending one request upstream: the backend's endpoints in round-robin order (the next one on a
//! connect error, when nothing was sent), the backend's host as Host, HTTPS when the backend has
//! `tls`, within the backend's request timeout. Every provider sends through here.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, Uri};

use super::endpoints;
use crate::RequestCtx;
use crate::config::{AiBackend, Policies};
use crate::errors::ApiError;

/// Sends `method path` with `headers` (Host and Content-Type are set here) and `body`.
pub async fn send(
    ctx: &RequestCtx,
    ai: &AiBackend,
    policies: &Policies,
    method: Method,
    path: &str,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<Response<Incoming>, ApiError> {
    if method == Method::POST {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let target = Target {
        host: &ai.host,
        port: ai.port,
        endpoints: &ai.endpoints,
        tls: ai.tls,
    };
    send_to(ctx, &target, policies, method, path, headers, body).await
}

/// Where one request goes: the Host header and, without endpoints, where to connect.
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    /// Tried round-robin, the next on a connect error; empty: `host:port`.
    pub endpoints: &'a [std::net::SocketAddr],
    /// HTTPS, the certificate verified for `host`.
    pub tls: bool,
}

/// Sends `method path` with `headers` (Host set here) and `body` to `target`, within the
/// policies' request timeout (to the answer's headers; a stream then runs as long as it lasts).
/// Every kind of backend sends through here: providers ([`send`]) and A2A agents.
pub async fn send_to(
    ctx: &RequestCtx,
    target: &Target<'_>,
    policies: &Policies,
    method: Method,
    path: &str,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<Response<Incoming>, ApiError> {
    if let Ok(host) = HeaderValue::from_str(&endpoints::authority(target.host, target.port)) {
        headers.insert(header::HOST, host);
    }
    let attempts = endpoints::attempts_to(
        target.host,
        target.port,
        target.endpoints,
        ctx.route.round_robin.next(),
    );
    let mut uris = Vec::with_capacity(attempts.len());
    for authority in &attempts {
        let scheme = if target.tls { "https" } else { "http" };
        match format!("{scheme}://{authority}{path}").parse::<Uri>() {
            Ok(u) => uris.push(u),
            Err(e) => return Err(ApiError::bad_request(format!("bad path: {e}"))),
        }
    }
    let attempt = async {
        let mut last = None;
        for uri in uris {
            let mut up = Request::new(Full::new(body.clone()));
            *up.method_mut() = method.clone();
            *up.uri_mut() = uri;
            *up.headers_mut() = headers.clone();
            match ctx.upstream.client().request(up).await {
                // Nothing was sent: the next endpoint may take it.
                Err(e) if e.is_connect() => {
                    tracing::info!(tenant = %ctx.route.tenant, route = %ctx.route.name, error = %e, "upstream endpoint refused the connection; trying the next");
                    last = Some(e);
                }
                other => return Some(other),
            }
        }
        last.map(Err)
    };
    let timeout = policies.request_timeout;
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(ApiError::upstream_timeout(&ctx.route.name, timeout)),
        Ok(None) => Err(ApiError::upstream_unreachable(
            &ctx.route.name,
            "no endpoint to connect to",
        )),
        Ok(Some(Err(e))) => {
            let detail = if e.is_connect() {
                super::tls::connect_detail(&e)
            } else {
                "the connection broke before a response".to_string()
            };
            tracing::warn!(tenant = %ctx.route.tenant, route = %ctx.route.name, error = %e, %detail, "upstream request failed");
            Err(ApiError::upstream_unreachable(&ctx.route.name, &detail))
        }
        Ok(Some(Ok(resp))) => Ok(resp),
    }
}
