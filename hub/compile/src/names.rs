//! Deterministic, collision-free names for data-plane resources.
//!
//! Used by the compiler (step 7) when it builds the snapshot. Names are assembled only from
//! values admission has already validated — tenant and cluster names (DNS labels), namespaces
//! (DNS labels), object names (DNS subdomains), hostnames (DNS names, optionally `*.`), ports
//! and indexes — joined by `/`, which none of those can contain, so two different inputs can
//! never produce the same name and no tenant free text ends up in Envoy configuration.

use crate::model::{ClusterKey, Kind};

/// The listener and route configuration of a data-plane port.
pub fn listener(port: u16) -> String {
    format!("port/{port}")
}

/// A virtual host on a data-plane port.
pub fn virtual_host(port: u16, hostname: &str) -> String {
    format!("port/{port}/host/{hostname}")
}

/// The catch-all virtual host answering 404 for hostnames nobody configured.
pub fn catch_all(port: u16) -> String {
    format!("port/{port}/catch-all")
}

/// The virtual host answering 421 (Misdirected Request) on an HTTPS filter chain for hostnames
/// that chain does not serve.
pub fn misdirected(port: u16) -> String {
    format!("port/{port}/misdirected")
}

/// The prefix of everything built from one object of one cluster.
fn object(ck: &ClusterKey, namespace: &str, name: &str) -> String {
    format!("t/{}/c/{}/{namespace}/{name}", ck.tenant, ck.cluster)
}

/// The object part of the names built from an HTTPRoute or a GRPCRoute: the route's name, with
/// `/grpc` appended for a GRPCRoute so that an HTTPRoute and a GRPCRoute of the same name never
/// share a resource name (object names cannot contain `/`).
pub fn route_object(kind: Kind, name: &str) -> String {
    match kind {
        Kind::GrpcRoute => format!("{name}/grpc"),
        _ => name.to_string(),
    }
}

/// One match of one rule of an HTTPRoute (or GRPCRoute, see [`route_object`]).
pub fn route(ck: &ClusterKey, namespace: &str, name: &str, rule: usize, m: usize) -> String {
    format!("{}/r{rule}/m{m}", object(ck, namespace, name))
}

/// The upstream cluster of one Service port of one cluster, shared by every HTTPRoute and
/// GRPCRoute backendRef and RequestMirror of that cluster that names it:
/// `t/<tenant>/c/<cluster>/<namespace>/<service>/backend/<port>`, with `/h2c` appended when the
/// port speaks h2c (its own Envoy cluster: the upstream protocol differs). `variant` > 1 names
/// another cluster of the same Service port whose backendRefs carry other endpoints (a route
/// whose last accepted version is older than the others'): `.../backend/<port>[/h2c]/v<variant>`.
pub fn service_cluster(
    ck: &ClusterKey,
    namespace: &str,
    name: &str,
    port: u16,
    protocol: crate::model::AppProtocol,
    variant: usize,
) -> String {
    let mut out = format!("{}/backend/{port}", object(ck, namespace, name));
    if protocol == crate::model::AppProtocol::H2c {
        out.push_str("/h2c");
    }
    if variant > 1 {
        out.push_str(&format!("/v{variant}"));
    }
    out
}

/// The endpoint-less cluster (the data plane answers 503) of one backendRef of one rule of an
/// HTTPRoute that names an AgentgatewayBackend or an A2A Service without ready endpoints.
pub fn backend_cluster(
    ck: &ClusterKey,
    namespace: &str,
    name: &str,
    rule: usize,
    backend: usize,
) -> String {
    format!("{}/r{rule}/b{backend}", object(ck, namespace, name))
}

/// The listener of one allocated L4 (address, port): `l4/tcp/127.0.0.1:20000`.
pub fn l4_listener(protocol: crate::model::L4Protocol, bind: std::net::SocketAddr) -> String {
    let p = match protocol {
        crate::model::L4Protocol::Tcp => "tcp",
        crate::model::L4Protocol::Udp => "udp",
    };
    format!("l4/{p}/{bind}")
}

/// The cluster of one port of a LoadBalancer Service.
pub fn service_port_cluster(
    ck: &ClusterKey,
    namespace: &str,
    name: &str,
    port: u16,
    protocol: crate::model::L4Protocol,
) -> String {
    format!(
        "{}/svc/{port}/{}",
        object(ck, namespace, name),
        protocol.as_str().to_ascii_lowercase()
    )
}

/// The cluster of a UDPRoute (all its backends' endpoints) and the prefix of a TCPRoute's
/// per-backendRef clusters (`<this>/<backendRef index>`, see `super::l4::route_upstreams`).
pub fn l4_route_cluster(
    ck: &ClusterKey,
    namespace: &str,
    name: &str,
    protocol: crate::model::L4Protocol,
) -> String {
    let kind = match protocol {
        crate::model::L4Protocol::Tcp => "tcproute",
        crate::model::L4Protocol::Udp => "udproute",
    };
    format!("{}/{kind}", object(ck, namespace, name))
}

pub use crate::model::snapshot::INVALID_BACKEND_CLUSTER;

/// The filter chain (and, when it terminates TLS, route configuration) of one SNI hostname on a
/// TLS data-plane port.
pub fn tls_chain(port: u16, hostname: &str) -> String {
    format!("port/{port}/sni/{hostname}")
}

/// The SDS secret of one certificateRef (a Secret) of one cluster.
pub fn secret(ck: &ClusterKey, namespace: &str, name: &str) -> String {
    format!("{}/secret", object(ck, namespace, name))
}

/// The cluster of one backendRef of one rule of a TLSRoute.
pub fn tls_backend_cluster(
    ck: &ClusterKey,
    namespace: &str,
    name: &str,
    rule: usize,
    backend: usize,
) -> String {
    format!("{}/tls/r{rule}/b{backend}", object(ck, namespace, name))
}

/// The listener (and, for HTTP, route configuration) of a Gateway served on its own address
/// (`super::own_address`), named after where it binds: `own/http/127.0.5.1:80`. The bind
/// address comes from the operator's pools and one (address, port) has one owner, so names
/// never collide with each other nor with `port/...` and `l4/...`.
pub fn own_listener(protocol: crate::model::Protocol, bind: std::net::SocketAddr) -> String {
    let p = match protocol {
        crate::model::Protocol::Https => "https",
        crate::model::Protocol::Tls => "tls",
        _ => "http",
    };
    format!("own/{p}/{bind}")
}

/// A virtual host of an own-address listener (`*`: every host).
pub fn own_virtual_host(bind: std::net::SocketAddr, hostname: &str) -> String {
    format!("own/{bind}/host/{hostname}")
}

/// The filter chain (and route configuration) of an HTTPS listener on an own address: one per
/// listener hostname (SNI), and `default` for the listener without hostname.
pub fn own_tls_chain(bind: std::net::SocketAddr, hostname: Option<&str>) -> String {
    match hostname {
        Some(h) => format!("own/https/{bind}/sni/{h}"),
        None => format!("own/https/{bind}/default"),
    }
}

/// The filter chain of a TLS passthrough listener on an own address: one per TLSRoute hostname
/// (SNI), and `default` for the hostname-less pair (any SNI).
pub fn own_passthrough_chain(bind: std::net::SocketAddr, hostname: Option<&str>) -> String {
    match hostname {
        Some(h) => format!("own/tls/{bind}/sni/{h}"),
        None => format!("own/tls/{bind}/default"),
    }
}
