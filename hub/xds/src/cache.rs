//! Encoded resources kept between snapshots, so that publishing a snapshot in which one route
//! changed re-encodes that route's virtual host, not the whole fleet.
//!
//! Where it sits: step 8 (publish), inside `resources::build_cached`, which each ADS stream in
//! `server` calls for every new snapshot. An entry is reused only when the compiled input it was
//! built from is equal to the new one, so the output is byte for byte what
//! `resources::build` (an empty cache) returns; entries not used by a snapshot are dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use prost::{Message, Name};

use super::resources::{Resource, Sources, cluster_resources, virtual_host};
use crate::snapshot::{ClusterSnapshot, ListenerSnapshot, SourceObject, VirtualHost};

/// The field number of `RouteConfiguration.virtual_hosts`.
const VIRTUAL_HOSTS_FIELD: u32 = 2;

/// The encoded virtual hosts of one listener, by name.
type VirtualHosts = HashMap<String, Entry<Arc<VirtualHost>, Vec<u8>>>;

/// The CDS and EDS resources of one upstream cluster.
type ClusterResources = (Arc<Resource>, Arc<Resource>);

/// The SRDS and RDS resources of one hostname of a scoped listener (`super::scoped`).
type ScopeResources = (Arc<Resource>, Arc<Resource>);

struct Entry<I, O> {
    input: I,
    output: O,
    /// The build that last used it.
    used: u64,
}

/// Encoded virtual hosts (by listener and virtual-host name) and upstream clusters (by name).
#[derive(Default)]
pub struct ResourceCache {
    build: u64,
    /// By listener, then virtual-host name (looked up without building a key).
    virtual_hosts: HashMap<String, VirtualHosts>,
    clusters: HashMap<String, Entry<Arc<ClusterSnapshot>, ClusterResources>>,
    /// By scope name (listener and hostname); the input is the virtual host and the port.
    scopes: HashMap<String, Entry<(Arc<VirtualHost>, u16), ScopeResources>>,
}

impl ResourceCache {
    /// Starts a build: entries used from now on are kept by [`ResourceCache::end`].
    pub(super) fn begin(&mut self) {
        self.build += 1;
    }

    /// Ends a build: drops every entry this build did not use.
    pub(super) fn end(&mut self) {
        let build = self.build;
        self.virtual_hosts.retain(|_, hosts| {
            hosts.retain(|_, e| e.used == build);
            !hosts.is_empty()
        });
        self.clusters.retain(|_, e| e.used == build);
        self.scopes.retain(|_, e| e.used == build);
    }

    /// The SRDS and RDS resources of `host` on the scoped listener `l`, served by `vh` (as
    /// `super::scoped::scope` and `super::scoped::route_configuration`).
    pub(super) fn scoped(
        &mut self,
        l: &ListenerSnapshot,
        host: &str,
        vh: &Arc<VirtualHost>,
    ) -> ScopeResources {
        let build = self.build;
        let name = super::scoped::scope_name(&l.name, host);
        match self.scopes.get_mut(&name) {
            Some(e) if e.input.1 == l.port && e.input.0 == *vh => {
                e.used = build;
                e.output.clone()
            }
            _ => {
                let sources: BTreeSet<SourceObject> =
                    vh.routes.iter().filter_map(|r| r.source.clone()).collect();
                let output = (
                    Arc::new(Resource::new(
                        name.clone(),
                        pack_any(super::scoped::scope(l, host)),
                        sources,
                    )),
                    Arc::new(Resource::new(
                        name.clone(),
                        pack_any(super::scoped::route_configuration(l, host, vh)),
                        Sources::Routes(vec![vh.clone()]),
                    )),
                );
                self.scopes.insert(
                    name,
                    Entry {
                        input: (vh.clone(), l.port),
                        output: output.clone(),
                        used: build,
                    },
                );
                output
            }
        }
    }

    /// The CDS and EDS resources of `c` (as `resources::cluster_resources`).
    /// Inputs are compared by value; shared (`Arc`) inputs, as the compiler's memo produces for
    /// unchanged clusters, compare by pointer first.
    pub(super) fn cluster(&mut self, c: &Arc<ClusterSnapshot>) -> (Arc<Resource>, Arc<Resource>) {
        let build = self.build;
        match self.clusters.get_mut(&c.name) {
            Some(e) if e.input == *c => {
                e.used = build;
                e.output.clone()
            }
            _ => {
                let output = cluster_resources(c);
                self.clusters.insert(
                    c.name.clone(),
                    Entry {
                        input: c.clone(),
                        output: output.clone(),
                        used: build,
                    },
                );
                output
            }
        }
    }

    /// The RouteConfiguration of `l` (as `pack_any(resources::route_configuration(l))`),
    /// assembled from the encoded virtual hosts: a protobuf message is the concatenation of its
    /// encoded fields, and a repeated message field is one length-delimited record per element.
    pub(super) fn route_configuration(&mut self, l: &ListenerSnapshot) -> Any {
        let head = RouteConfiguration {
            name: l.name.clone(),
            ..Default::default()
        };
        let mut value = head.encode_to_vec();
        let build = self.build;
        let hosts = self.virtual_hosts.entry(l.name.clone()).or_default();
        value.reserve(hosts.values().map(|e| e.output.len() + 8).sum());
        for vh in &l.virtual_hosts {
            let bytes = match hosts.get_mut(&vh.name) {
                Some(e) if e.input == *vh => {
                    e.used = build;
                    &e.output
                }
                _ => {
                    let entry = Entry {
                        input: vh.clone(),
                        output: virtual_host(vh).encode_to_vec(),
                        used: build,
                    };
                    let slot = hosts.entry(vh.name.clone()).insert_entry(entry);
                    &slot.into_mut().output
                }
            };
            prost::encoding::encode_key(
                VIRTUAL_HOSTS_FIELD,
                prost::encoding::WireType::LengthDelimited,
                &mut value,
            );
            prost::encoding::encode_varint(bytes.len() as u64, &mut value);
            value.extend_from_slice(bytes);
        }
        // The fields after the virtual hosts, in prost's order.
        let tail = RouteConfiguration {
            ignore_port_in_host_matching: true,
            ..Default::default()
        };
        value.extend_from_slice(&tail.encode_to_vec());
        Any {
            type_url: RouteConfiguration::type_url(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeaderModifier;
    use crate::resources::{self, build, build_cached};
    use crate::snapshot::{PathMatch, Route, RouteAction, Snapshot, WeightedCluster};

    fn route(name: &str, prefix: &str, cluster: &str) -> Route {
        Route {
            name: name.into(),
            path: PathMatch::Prefix(prefix.into()),
            headers: vec![],
            query_params: vec![],
            method: None,
            request_headers: HeaderModifier::default(),
            response_headers: HeaderModifier::default(),
            cors: None,
            action: RouteAction::Forward(crate::snapshot::Forward {
                clusters: vec![WeightedCluster::new(cluster, 1)],
                rewrite: None,
                mirrors: vec![],
                timeout: None,
                backend_timeout: None,
            }),
            source: None,
        }
    }

    fn snapshot(hosts: &[(&str, &str)], clusters: &[(&str, u16)]) -> Snapshot {
        let virtual_hosts = hosts
            .iter()
            .map(|(h, prefix)| {
                Arc::new(VirtualHost {
                    name: format!("port/80/host/{h}"),
                    domains: vec![h.to_string()],
                    routes: vec![route(&format!("{h}/r0"), prefix, &format!("c-{h}"))],
                    rate_limit: None,
                })
            })
            .collect();
        Snapshot {
            listeners: vec![ListenerSnapshot {
                name: "port/80".into(),
                port: 80,
                bind: "127.0.0.1:18080".parse().unwrap(),
                virtual_hosts,
                gateways: Default::default(),
            }],
            clusters: clusters
                .iter()
                .map(|(name, port)| {
                    Arc::new(ClusterSnapshot {
                        name: name.to_string(),
                        endpoints: vec![std::net::SocketAddr::from(([127, 0, 9, 1], *port))],
                        protocol: crate::model::AppProtocol::Http1,
                        sources: Vec::new(),
                    })
                })
                .collect(),
            tls_listeners: vec![],
            secrets: vec![],
            l4_listeners: vec![],
            ai: Default::default(),
        }
    }

    #[test]
    fn route_configuration_bytes_equal_prost_encoding() {
        let s = snapshot(&[("a.example", "/a"), ("b.example", "/b")], &[]);
        let mut cache = ResourceCache::default();
        cache.begin();
        let any = cache.route_configuration(&s.listeners[0]);
        assert_eq!(
            any,
            envoy_types::util::pack_any(resources::route_configuration(&s.listeners[0]))
        );
    }

    #[test]
    fn cached_builds_equal_fresh_builds_across_changes() {
        // A sequence of snapshots: a route changes, a host goes away, a cluster's endpoint
        // changes, a cluster goes away and comes back.
        let steps = [
            snapshot(
                &[("a.example", "/a"), ("b.example", "/b")],
                &[("c1", 1), ("c2", 2)],
            ),
            snapshot(
                &[("a.example", "/a2"), ("b.example", "/b")],
                &[("c1", 1), ("c2", 2)],
            ),
            snapshot(&[("b.example", "/b")], &[("c1", 1), ("c2", 3)]),
            // A wildcard: one RouteConfiguration for the port instead of one per hostname.
            snapshot(
                &[("*.w.example", "/w"), ("b.example", "/b")],
                &[("c1", 1), ("c2", 3)],
            ),
            snapshot(&[("b.example", "/b")], &[("c2", 3)]),
            snapshot(
                &[("a.example", "/a"), ("b.example", "/b")],
                &[("c1", 1), ("c2", 2)],
            ),
        ];
        let mut cache = ResourceCache::default();
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(build_cached(s, &mut cache), build(s), "step {i}");
        }
        // Only what the last snapshot uses is kept: its two hostnames' scopes.
        assert_eq!(
            cache
                .virtual_hosts
                .values()
                .map(HashMap::len)
                .sum::<usize>(),
            0
        );
        assert_eq!(cache.scopes.len(), 2);
        assert_eq!(cache.clusters.len(), 2);
    }
}
