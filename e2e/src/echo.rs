//! In-process HTTP echo backends: each answers every request with 200 and its own name as the
//! body, so a test knows which backend (and so which tenant, node or weight bucket) answered.
//!
//! Response headers: `x-echo-backend: <name>`, `x-echo-path: <request path>`,
//! `x-echo-version: <HTTP version of the request>` (HTTP/1.1 or HTTP/2.0), and every request
//! header `h` echoed as `x-echo-header-<h>`. Tenant A's backends bind on 127.0.1.x, tenant B's on
//! 127.0.2.x. A request header `x-echo-delay-ms: N` delays the answer by N milliseconds (at most
//! a minute); a WebSocket upgrade request is answered `101 Switching Protocols` (handshake only).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running echo backend; stops when dropped.
#[derive(Debug)]
pub struct Echo {
    name: String,
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Echo {
    /// Serves on `ip` at a free port.
    pub async fn start(name: &str, ip: IpAddr) -> anyhow::Result<Self> {
        Self::start_at(name, SocketAddr::new(ip, 0)).await
    }

    /// Serves on exactly `addr` (e.g. a node's InternalIP and a Service's nodePort).
    pub async fn start_at(name: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("echo {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, name.to_string(), requests.clone()));
        Ok(Self {
            name: name.to_string(),
            addr,
            requests,
            task,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many requests it answered.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, name: String, requests: Arc<AtomicU64>) {
    let name: Arc<str> = name.into();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                requests.fetch_add(1, Ordering::Relaxed);
                let resp = respond(&name, &req);
                let delay = delay(&req);
                async move {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The delay a request asks for with `x-echo-delay-ms`.
fn delay<B>(req: &Request<B>) -> Option<std::time::Duration> {
    let ms: u64 = req
        .headers()
        .get("x-echo-delay-ms")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(std::time::Duration::from_millis(ms.min(60_000)))
}

/// The echo answer to one request.
fn respond<B>(name: &str, req: &Request<B>) -> Response<Full<Bytes>> {
    let websocket = req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let mut resp = if websocket {
        Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
    } else {
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
    };
    resp = resp
        .header("x-echo-backend", name)
        .header("x-echo-path", req.uri().path())
        .header("x-echo-version", format!("{:?}", req.version()));
    for (k, v) in req.headers() {
        resp = resp.header(format!("x-echo-header-{}", k.as_str()), v);
    }
    resp.body(Full::new(Bytes::from(name.to_string())))
        .expect("echo response headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_the_backend_and_echoes_headers() {
        let req = Request::get("/some/path")
            .header("x-tenant-test", "1")
            .body(())
            .unwrap();
        let resp = respond("a-1", &req);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-echo-backend"], "a-1");
        assert_eq!(resp.headers()["x-echo-path"], "/some/path");
        assert_eq!(resp.headers()["x-echo-header-x-tenant-test"], "1");
        assert_eq!(resp.headers()["x-echo-version"], "HTTP/1.1");
    }

    #[test]
    fn delays_and_websocket_upgrades_are_understood() {
        let req = Request::get("/ws")
            .header("upgrade", "WebSocket")
            .header("x-echo-delay-ms", "250")
            .body(())
            .unwrap();
        assert_eq!(respond("a", &req).status(), 101);
        assert_eq!(delay(&req), Some(std::time::Duration::from_millis(250)));
        let plain = Request::get("/").body(()).unwrap();
        assert_eq!(delay(&plain), None);
    }
}
