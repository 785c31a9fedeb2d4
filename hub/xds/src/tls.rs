//! TLS data-plane ports as Envoy resources: SNI-dispatched listeners and SDS secrets.
//!
//! Step 8 (publish), pure, called by `super::resources::build`. A TLS port becomes one Listener
//! with the `tls_inspector` listener filter and one filter chain per SNI hostname
//! (`filter_chain_match.server_names`):
//! - HTTPS (terminate): a `DownstreamTlsContext` whose certificates come over SDS through ADS
//!   (`tls_certificate_sds_secret_configs`), then the same hardened HTTP connection manager as
//!   plaintext ports, with its own RouteConfiguration (named like the chain) holding only the
//!   virtual hosts of that hostname and the 404 catch-all;
//! - TLS passthrough: `tcp_proxy` to the TLSRoute's clusters, by weight.
//!
//! Certificates are Secret resources referenced by name only, so a rotated certificate changes
//! the Secret alone: the Listener is byte-identical, Envoy does not drain it, and connections
//! opened before keep working while new handshakes get the new certificate.

use envoy_types::pb::envoy::config::core::v3::{
    DataSource, TransportSocket, data_source, transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret, TlsCertificate, secret,
};
use envoy_types::pb::google::protobuf::Duration;
use envoy_types::util::pack_any;

use super::resources::{ads, http_connection_manager, route_configuration, socket_address};
use crate::snapshot::{SecretSnapshot, TlsChain, TlsChainAction, TlsListenerSnapshot};

pub const SECRET_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The Listener of a TLS data-plane port.
pub fn listener(l: &TlsListenerSnapshot) -> Listener {
    let mut out = Listener {
        name: l.name.clone(),
        address: Some(socket_address(l.bind)),
        listener_filters: vec![ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".to_string(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(
                TlsInspector::default(),
            ))),
            ..Default::default()
        }],
        // A client that sends no ClientHello within this time is closed.
        listener_filters_timeout: Some(Duration {
            seconds: 10,
            nanos: 0,
        }),
        filter_chains: l.chains.iter().map(filter_chain).collect(),
        ..Default::default()
    };
    super::hardening::harden_listener(&mut out);
    out
}

fn filter_chain(c: &TlsChain) -> FilterChain {
    let filter_chain_match = Some(FilterChainMatch {
        server_names: c.server_names.clone(),
        ..Default::default()
    });
    match &c.action {
        TlsChainAction::Terminate { secrets, http } => FilterChain {
            name: c.name.clone(),
            filter_chain_match,
            transport_socket: Some(TransportSocket {
                name: "envoy.transport_sockets.tls".to_string(),
                config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(
                    downstream_tls_context(secrets),
                ))),
            }),
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".to_string(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(
                    http_connection_manager(http),
                ))),
            }],
            ..Default::default()
        },
        TlsChainAction::Passthrough {
            clusters,
            max_connections,
            ..
        } => FilterChain {
            name: c.name.clone(),
            filter_chain_match,
            filters: super::tenant_limits::connection_limit_filter(
                &c.name.replace(['/', '.', '*'], "_"),
                *max_connections,
            )
            .into_iter()
            .chain([Filter {
                name: "envoy.filters.network.tcp_proxy".to_string(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(tcp_proxy_of(
                    &c.name, clusters,
                )))),
            }])
            .collect(),
            ..Default::default()
        },
    }
}

/// TLS termination with certificates from SDS over ADS; ALPN offers h2 and http/1.1.
pub fn downstream_tls_context(secrets: &[String]) -> DownstreamTlsContext {
    DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: secrets
                .iter()
                .map(|name| SdsSecretConfig {
                    name: name.clone(),
                    sds_config: Some(ads()),
                })
                .collect(),
            alpn_protocols: vec!["h2".to_string(), "http/1.1".to_string()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// TCP proxy of a passthrough chain. No cluster (no valid backend): the connection goes to a
/// cluster that does not exist, which Envoy answers by closing it.
pub fn tcp_proxy_of(chain: &str, clusters: &[crate::snapshot::WeightedCluster]) -> TcpProxy {
    let specifier = match clusters {
        [] => tcp_proxy::ClusterSpecifier::Cluster(
            crate::snapshot::INVALID_BACKEND_CLUSTER.to_string(),
        ),
        [one] => tcp_proxy::ClusterSpecifier::Cluster(one.cluster.clone()),
        many => tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: many
                .iter()
                .map(|w| tcp_proxy::weighted_cluster::ClusterWeight {
                    name: w.cluster.clone(),
                    weight: w.weight,
                    ..Default::default()
                })
                .collect(),
        }),
    };
    TcpProxy {
        stat_prefix: chain.replace('/', "_"),
        cluster_specifier: Some(specifier),
        idle_timeout: Some(Duration {
            seconds: 3600,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// The SDS Secret of a certificate: chain and key inline (the hub re-encoded both at admission).
pub fn secret_resource(s: &SecretSnapshot) -> Secret {
    Secret {
        name: s.name.clone(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString(
                    s.cert_chain_pem.clone(),
                )),
                ..Default::default()
            }),
            private_key: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString(
                    s.private_key_pem.0.clone(),
                )),
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

/// The RouteConfigurations of the terminating chains of a TLS port (name = chain name).
pub fn route_configurations(
    l: &TlsListenerSnapshot,
) -> Vec<(
    envoy_types::pb::envoy::config::route::v3::RouteConfiguration,
    &crate::snapshot::ListenerSnapshot,
)> {
    l.chains
        .iter()
        .filter_map(|c| match &c.action {
            TlsChainAction::Terminate { http, .. } => Some((route_configuration(http), http)),
            TlsChainAction::Passthrough { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
