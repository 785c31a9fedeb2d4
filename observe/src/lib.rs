//! The operator's HTTP port of every fleetgate process (the hub's `adminListen`, the agent's
//! `--metrics-listen`): `GET /metrics` (Prometheus, OpenMetrics text), `/healthz` (the process
//! answers) and `/readyz` (what "ready" means is the process's own: [`Endpoints::ready`]).
//!
//! Where it sits: beside the data path of each process, reading it. Each process keeps its own
//! `prometheus_client` registry and renders it in [`Endpoints::metrics`]; this crate only serves.
//! A process may serve more on the same port ([`Endpoints::app`]: every other path; the hub's
//! admin API and dashboard are that).
//! Never bind it on a tenant-facing address.

pub mod log;
pub mod trace;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The body of every answer: whole (`Full`) or streamed (server-sent events).
pub type Body = BoxBody<Bytes, Infallible>;
/// What an [`App`] answers with.
pub type AppFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// A process's own handler for every request this crate does not answer itself.
pub type App = Box<dyn Fn(Request<Incoming>) -> AppFuture + Send + Sync>;

/// What the port answers with.
pub struct Endpoints {
    /// Renders the metrics (called once per scrape).
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// Whether `/readyz` answers 200 (else 503 with the reason).
    pub ready: Box<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// Every path but `/metrics`, `/healthz` and `/readyz` (None: 404 naming those three).
    pub app: Option<App>,
}

/// Serves `endpoints` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoints: Arc<Endpoints>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("metrics port: accept failed: {e}");
                    continue;
                }
            },
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let endpoints = endpoints.clone();
                async move {
                    let own = ["/metrics", "/healthz", "/readyz"].contains(&req.uri().path());
                    if let Some(app) = endpoints.app.as_ref()
                        && !own
                    {
                        return Ok::<_, Infallible>(app(req).await);
                    }
                    Ok::<_, Infallible>(
                        answer(req.method(), req.uri().path(), &endpoints).map(|b| b.boxed()),
                    )
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("metrics port connection: {e}");
            }
        });
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// The answer to `method path`.
fn answer(method: &Method, path: &str, endpoints: &Endpoints) -> Response<Full<Bytes>> {
    if method != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".into(),
        );
    }
    match path {
        "/metrics" => text(StatusCode::OK, OPENMETRICS, (endpoints.metrics)()),
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match (endpoints.ready)() {
            Ok(()) => text(StatusCode::OK, "text/plain", "ok\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: this port serves /metrics, /healthz and /readyz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(ready: bool) -> Endpoints {
        Endpoints {
            metrics: Box::new(|| "x_total 1\n# EOF\n".into()),
            ready: Box::new(move || {
                if ready {
                    Ok(())
                } else {
                    Err("no hub yet".into())
                }
            }),
            app: None,
        }
    }

    #[test]
    fn each_path_answers_and_anything_else_says_what_is_served() {
        let e = endpoints(true);
        let r = answer(&Method::GET, "/metrics", &e);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], OPENMETRICS);
        assert_eq!(answer(&Method::GET, "/healthz", &e).status(), 200);
        assert_eq!(answer(&Method::GET, "/readyz", &e).status(), 200);
        assert_eq!(
            answer(&Method::GET, "/readyz", &endpoints(false)).status(),
            503
        );
        assert_eq!(answer(&Method::GET, "/admin", &e).status(), 404);
        assert_eq!(answer(&Method::POST, "/metrics", &e).status(), 405);
    }
}
