//! A small HTTP/1.1 client for tests: send a request (a GET, any method, or a JSON POST) to an
//! address with a chosen Host header, get the status, headers and body back.
//!
//! The Host header is what selects a tenant's virtual host on the shared data plane, so it is
//! set explicitly rather than derived from the address.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    // One pool per test thread would be neater, but connections are cheap on loopback and a
    // fresh client per call keeps tests independent of each other's pooled connections.
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http()
}

/// `GET http://<addr><path>` with `Host: <host>` and extra `headers`; returns (status, body).
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let r = request(addr, host, path, headers).await?;
    Ok((r.status, r.body))
}

/// Like [`get`], returning the headers too.
pub async fn request(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    send(addr, "GET", host, path, headers).await
}

/// Like [`request`], with any method (no body).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Response> {
    let method = hyper::Method::from_bytes(method.as_bytes())?;
    exchange(addr, method, host, path, headers, None).await
}

/// `POST http://<addr><path>` with a JSON `body`, `Host: <host>` and extra `headers`.
pub async fn post_json(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> anyhow::Result<Response> {
    let body = Bytes::from(serde_json::to_vec(body)?);
    exchange(addr, hyper::Method::POST, host, path, headers, Some(body)).await
}

/// One request on a fresh connection; `body` (JSON) or none.
async fn exchange(
    addr: SocketAddr,
    method: hyper::Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> anyhow::Result<Response> {
    let what = format!("{method} http://{addr}{path} (Host: {host})");
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(hyper::header::HOST, host);
    if body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let mut req = req
        .body(Full::new(body.unwrap_or_default()))
        .context("building request")?;
    for (k, v) in headers {
        req.headers_mut().append(
            hyper::header::HeaderName::from_bytes(k.as_bytes())?,
            hyper::header::HeaderValue::from_str(v)?,
        );
    }
    let fut = async {
        let resp = client().request(req).await.context(what.clone())?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading response body")?
            .to_bytes();
        anyhow::Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .with_context(|| format!("{what} timed out"))?
}
