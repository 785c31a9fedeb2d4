//! In-process gRPC echo backends (h2c, tonic): every call of `fleetgate.e2e.echo.v1.Echo`
//! (`Say`, `Shout`) answers with the backend's name, the request path and the request metadata,
//! so a GRPCRoute test knows which backend a call reached and what the data plane changed.
//! Also client helpers that call through the data plane with a chosen `:authority`, over h2c or
//! over TLS.
//!
//! Where it sits: outside the data path, as the tenant's gRPC workload behind Envoy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// The generated code of `e2e/proto/fleetgate/e2e/echo/v1/echo.proto`.
pub mod pb {
    tonic::include_proto!("fleetgate.e2e.echo.v1");
}

use pb::echo_client::EchoClient;
use pb::echo_server::{Echo, EchoServer};
use pb::{EchoReply, EchoRequest};

struct Service {
    name: Arc<str>,
    requests: Arc<AtomicU64>,
}

impl Service {
    fn reply(&self, path: &str, req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut metadata: Vec<String> = req
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some(format!("{}={}", k.as_str(), v.to_str().unwrap_or("")))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        metadata.sort();
        Ok(Response::new(EchoReply {
            backend: self.name.to_string(),
            path: path.to_string(),
            message: req.into_inner().message,
            metadata,
        }))
    }
}

#[tonic::async_trait]
impl Echo for Service {
    async fn say(&self, req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.reply("/fleetgate.e2e.echo.v1.Echo/Say", req)
    }

    async fn shout(&self, req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.reply("/fleetgate.e2e.echo.v1.Echo/Shout", req)
    }
}

/// A running gRPC echo backend; stops when dropped.
#[derive(Debug)]
pub struct GrpcEcho {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GrpcEcho {
    /// Serves h2c on exactly `addr` (e.g. a node's InternalIP and a Service's nodePort).
    pub async fn start_at(name: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("grpc echo {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let requests = Arc::new(AtomicU64::new(0));
        let svc = EchoServer::new(Service {
            name: name.into(),
            requests: requests.clone(),
        });
        let name = name.to_string();
        let task = tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
            {
                tracing::warn!("grpc echo {name}: {e}");
            }
        });
        Ok(Self {
            addr,
            requests,
            stop: Some(stop),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Calls answered so far (a mirror's copies included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for GrpcEcho {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// Which method of the Echo service to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Say,
    Shout,
}

/// Calls `method` on the Echo service through the data plane at `data_plane` (h2c, prior
/// knowledge), with `:authority` `host` and the given request metadata.
pub async fn call(
    data_plane: SocketAddr,
    host: &str,
    method: Method,
    metadata: &[(&'static str, &str)],
) -> Result<EchoReply, Status> {
    Ok(call_with_headers(data_plane, host, method, metadata)
        .await?
        .0)
}

/// Like [`call`], also returning the response's ASCII metadata (headers) as `(name, value)`.
pub async fn call_with_headers(
    data_plane: SocketAddr,
    host: &str,
    method: Method,
    metadata: &[(&'static str, &str)],
) -> Result<(EchoReply, Vec<(String, String)>), Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{data_plane}"))
        .map_err(|e| Status::internal(e.to_string()))?
        .origin(
            format!("http://{host}")
                .parse()
                .map_err(|e: http::uri::InvalidUri| Status::internal(e.to_string()))?,
        )
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connecting {data_plane}: {e}")))?;
    call_on(channel, method, metadata).await
}

/// Like [`call`], over TLS to the data plane's TLS port at `data_plane_tls`: SNI and
/// `:authority` `host`, the served certificate verified against `ca_pem` only, HTTP/2 chosen by
/// ALPN.
pub async fn call_tls(
    data_plane_tls: SocketAddr,
    host: &str,
    ca_pem: &str,
    method: Method,
    metadata: &[(&'static str, &str)],
) -> Result<EchoReply, Status> {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .domain_name(host);
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{data_plane_tls}"))
        .map_err(|e| Status::internal(e.to_string()))?
        .origin(
            format!("https://{host}")
                .parse()
                .map_err(|e: http::uri::InvalidUri| Status::internal(e.to_string()))?,
        )
        .tls_config(tls)
        .map_err(|e| Status::internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connecting {data_plane_tls} over TLS: {e}")))?;
    Ok(call_on(channel, method, metadata).await?.0)
}

async fn call_on(
    channel: tonic::transport::Channel,
    method: Method,
    metadata: &[(&'static str, &str)],
) -> Result<(EchoReply, Vec<(String, String)>), Status> {
    let mut client = EchoClient::new(channel);
    let mut req = Request::new(EchoRequest {
        message: "hello".into(),
    });
    for (k, v) in metadata {
        req.metadata_mut().insert(
            *k,
            v.parse()
                .map_err(|_| Status::internal("metadata value is not ASCII"))?,
        );
    }
    let resp = match method {
        Method::Say => client.say(req).await?,
        Method::Shout => client.shout(req).await?,
    };
    let headers = resp
        .metadata()
        .iter()
        .filter_map(|kv| match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect();
    Ok((resp.into_inner(), headers))
}

/// `tonic`'s re-export of the `http` crate, for the URI type above.
use tonic::codegen::http;
