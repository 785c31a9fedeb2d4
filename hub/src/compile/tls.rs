//! TLS data-plane ports: HTTPS listeners (terminated with the tenant's certificates) and TLS
//! passthrough listeners (TLSRoute), side by side on one port, told apart by SNI.
//!
//! Part of the compiler (step 7), pure. `super::compile` collects, per TLS port, the accepted
//! tenant listeners ([`TlsListenerInput`]), the HTTP routes attached through HTTPS listeners
//! (hostname -> routes in precedence order) and the passthrough routes (hostname -> clusters);
//! [`build_listener`] turns them into one [`TlsListenerSnapshot`]: one chain per SNI hostname,
//! so a connection only ever sees the certificate and routes of the hostname it asked for.
//! Conflicts are settled deterministically: the first listener (cluster, Gateway, listener
//! order) of a hostname provides its certificates; a terminating chain wins over a passthrough
//! one for the same hostname.

use std::collections::{BTreeMap, BTreeSet};

use super::hostname::covers;
use super::names;
use super::snapshot::{
    ListenerSnapshot, Route, SecretSnapshot, SourceObject, TlsChain, TlsChainAction,
    TlsListenerSnapshot, VirtualHost, WeightedCluster,
};
use crate::config::DataPlaneListener;
use crate::model::{ClusterKey, ListenerTls, TlsMode};

/// One accepted HTTPS or TLS tenant listener on a TLS data-plane port.
#[derive(Debug, Clone)]
pub struct TlsListenerInput<'a> {
    pub cluster: &'a ClusterKey,
    /// The listener's hostname (required on TLS ports).
    pub hostname: &'a str,
    pub tls: &'a ListenerTls,
    /// The Gateway the listener belongs to.
    pub gateway: SourceObject,
}

/// A TLSRoute's hostname on a passthrough listener: where its connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passthrough {
    pub clusters: Vec<WeightedCluster>,
    pub source: SourceObject,
}

/// Builds the TLS data-plane listener of `dl`; `None` when no hostname is served on it (Envoy
/// would refuse a listener without filter chains). Secrets the chains use are added to
/// `secrets`.
pub fn build_listener(
    dl: &DataPlaneListener,
    inputs: &[TlsListenerInput<'_>],
    http_hosts: &BTreeMap<String, Vec<Route>>,
    passthrough: &BTreeMap<String, Passthrough>,
    secrets: &mut BTreeMap<String, SecretSnapshot>,
) -> Option<TlsListenerSnapshot> {
    let mut chains: BTreeMap<String, TlsChain> = BTreeMap::new();
    let mut gateways = BTreeSet::new();
    for input in inputs {
        gateways.insert(input.gateway.clone());
        if input.tls.mode != TlsMode::Terminate || chains.contains_key(input.hostname) {
            continue;
        }
        let mut secret_names = Vec::new();
        for c in &input.tls.certificates {
            let name = names::secret(input.cluster, &c.namespace, &c.name);
            secrets
                .entry(name.clone())
                .or_insert_with(|| SecretSnapshot {
                    name: name.clone(),
                    cert_chain_pem: c.cert_chain_pem.clone(),
                    private_key_pem: c.private_key_pem.clone(),
                    source: Some(input.gateway.clone()),
                });
            secret_names.push(name);
        }
        if secret_names.is_empty() {
            continue;
        }
        let chain_name = names::tls_chain(dl.port, input.hostname);
        let mut virtual_hosts: Vec<VirtualHost> = http_hosts
            .iter()
            .filter(|(host, _)| covers(input.hostname, host))
            .map(|(host, routes)| VirtualHost {
                name: names::virtual_host(dl.port, host),
                domains: vec![host.clone()],
                routes: routes.clone(),
            })
            .collect();
        virtual_hosts.push(super::catch_all(dl.port));
        chains.insert(
            input.hostname.to_string(),
            TlsChain {
                name: chain_name.clone(),
                server_names: vec![input.hostname.to_string()],
                action: TlsChainAction::Terminate {
                    secrets: secret_names,
                    http: ListenerSnapshot {
                        name: chain_name,
                        port: dl.port,
                        bind: dl.bind,
                        virtual_hosts,
                        gateways: [input.gateway.clone()].into(),
                    },
                },
            },
        );
    }
    for (host, p) in passthrough {
        chains.entry(host.clone()).or_insert_with(|| TlsChain {
            name: names::tls_chain(dl.port, host),
            server_names: vec![host.clone()],
            action: TlsChainAction::Passthrough {
                clusters: p.clusters.clone(),
                source: p.source.clone(),
            },
        });
    }
    if chains.is_empty() {
        return None;
    }
    let mut chains: Vec<TlsChain> = chains.into_values().collect();
    chains.sort_by(|a, b| a.name.cmp(&b.name));
    Some(TlsListenerSnapshot {
        name: names::listener(dl.port),
        port: dl.port,
        bind: dl.bind,
        chains,
        gateways,
    })
}
