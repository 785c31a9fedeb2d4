//! A small HTTP/1.1 client for tests: send a GET to an address with a chosen Host header, get
//! the status and the body back.
//!
//! The Host header is what selects a tenant's virtual host on the shared data plane, so it is
//! set explicitly rather than derived from the address.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
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

fn client() -> Client<HttpConnector, Empty<Bytes>> {
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
    let mut req = hyper::Request::builder()
        .method(hyper::Method::from_bytes(method.as_bytes())?)
        .uri(format!("http://{addr}{path}"))
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .context("building request")?;
    for (k, v) in headers {
        req.headers_mut().append(
            hyper::header::HeaderName::from_bytes(k.as_bytes())?,
            hyper::header::HeaderValue::from_str(v)?,
        );
    }
    let fut = async {
        let resp = client()
            .request(req)
            .await
            .with_context(|| format!("{method} http://{addr}{path} (Host: {host})"))?;
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
        .with_context(|| format!("{method} http://{addr}{path} (Host: {host}) timed out"))?
}

/// `POST http://<addr><path>` with a JSON `body`, `Host: <host>` and extra `headers`.
pub async fn post_json(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> anyhow::Result<Response> {
    let mut req = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(format!("http://{addr}{path}"))
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(serde_json::to_vec(
            body,
        )?)))
        .context("building request")?;
    for (k, v) in headers {
        req.headers_mut().append(
            hyper::header::HeaderName::from_bytes(k.as_bytes())?,
            hyper::header::HeaderValue::from_str(v)?,
        );
    }
    let client: Client<HttpConnector, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
    let fut = async {
        let resp = client
            .request(req)
            .await
            .with_context(|| format!("POST http://{addr}{path} (Host: {host})"))?;
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
        .with_context(|| format!("POST http://{addr}{path} (Host: {host}) timed out"))?
}
