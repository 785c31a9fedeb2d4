//! Encoded resources kept between snapshots, so that publishing a snapshot in which one route
//! changed re-encodes that route's virtual host, not the whole fleet.
//!
//! Where it sits: step 8 (publish), inside `resources::build_cached`, which the ADS service's
//! one builder in `server` calls for every new snapshot (the streams share what it builds). An
//! entry is reused only when the compiled input it was built from is the same allocation or
//! equal to the new one, so the output is byte for byte what `resources::build` (an empty
//! cache) returns; entries not used by a snapshot are dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use prost::{Message, Name};

use super::resources::{Resource, Sources, cluster_resources, virtual_host};
use crate::snapshot::{ClusterSnapshot, ListenerSnapshot, VirtualHost};

/// The field number of `RouteConfiguration.virtual_hosts`.
const VIRTUAL_HOSTS_FIELD: u32 = 2;

/// The encoded virtual hosts of one listener, by name.
type VirtualHosts = HashMap<String, Entry<Arc<VirtualHost>, Vec<u8>>>;

/// The SRDS resources (scopes) and RDS resources (tables) of a scoped listener.
pub(super) type ScopedResources = (Vec<Arc<Resource>>, Vec<Arc<Resource>>);

/// The CDS and EDS resources of one upstream cluster.
type ClusterResources = (Arc<Resource>, Arc<Resource>);

/// The encoded table (RouteConfiguration) of a scoped listener and the virtual hosts it holds.
type TableEntry = Entry<Vec<Arc<VirtualHost>>, Arc<Resource>>;

struct Entry<I, O> {
    input: I,
    output: O,
    /// The build that last used it.
    used: u64,
}

/// Encoded virtual hosts (by listener and virtual-host name), upstream clusters, what is known of
/// each virtual host of a shared port and its scopes (each in the order of the snapshot they
/// were last built for), and tables of scoped listeners.
#[derive(Default)]
pub struct ResourceCache {
    build: u64,
    /// By listener, then virtual-host name (looked up without building a key).
    virtual_hosts: HashMap<String, VirtualHosts>,
    /// As last built, in the snapshot's order (by name).
    clusters: Vec<(Arc<ClusterSnapshot>, ClusterResources)>,
    /// By shared-port listener, as last built, in the order of its virtual hosts.
    hosts: HashMap<String, Vec<HostEntry>>,
    /// The previous build's `hosts` while a build runs.
    hosts_before: HashMap<String, Vec<HostEntry>>,
    /// One shared copy of each tenant name in `hosts`, so that grouping virtual hosts by
    /// tenant compares addresses, not names.
    tenants: HashMap<String, Arc<str>>,
    /// The tables of scoped listeners, by name.
    tables: HashMap<String, TableEntry>,
    /// How long a table holds a virtual host before its hostname's scope moves to it, and how
    /// long the table it moved out of keeps it after.
    departure_grace: DepartureGrace,
    /// When the current build started.
    now: Option<Instant>,
}

/// How long a hostname's virtual host is in the table it moves to before its scope names that
/// table, and how long its old table keeps serving it after the move (a tenant's hostnames
/// move between its tables when its count of tables changes, up or down). Meanwhile the
/// virtual host is in both tables, and the old table is kept even when the layout no longer
/// has it. Envoy applies a scope at once, before the route configurations of the same push
/// (SRDS comes before RDS: `super::resources::PUSH_ORDER`) and before it has a table it has
/// not yet subscribed to: a scope moved in the same push as its virtual host answered the
/// hostname's requests with 404 until the table's update came (the 30-minute soak of
/// e2e/tests/chaos.rs: 332 of 385,364 requests; 111 of 350,468 while only moves into new
/// tables waited). Every table is subscribed from its first build through its anchor scope
/// (`super::scoped::anchor_scope`); Envoy's answers take milliseconds of this.
struct DepartureGrace(Duration);

impl Default for DepartureGrace {
    fn default() -> Self {
        DepartureGrace(Duration::from_secs(10))
    }
}

/// One virtual host of a shared port, with what `super::scoped` asks of it, computed when the
/// virtual host was first seen: every build walks every hostname of the port, and reads only
/// these entries (one array) for the virtual hosts that did not change, not the virtual hosts
/// themselves (scattered over the heap).
struct HostEntry {
    vh: Arc<VirtualHost>,
    /// `super::scoped::is_catch_all`.
    catch_all: bool,
    /// `super::scoped::serves_exact_hostnames`.
    exact: bool,
    /// `super::scoped::tenant_of`, shared (`ResourceCache::tenants`).
    tenant: Arc<str>,
    /// `super::scoped::name_hash`.
    hash: u64,
    /// The number of the table (among its tenant's) its scopes name, and the scopes, one per
    /// domain in order; empty until the listener is scoped.
    table: u64,
    scopes: Vec<Arc<Resource>>,
    /// For an entry made anew for a changed virtual host: the table its hostname's scopes
    /// named in the previous build.
    was_in: Option<u64>,
    /// The table it moved out of and when, kept in it for [`DepartureGrace`].
    departed: Option<(u64, Instant)>,
    /// The table the layout puts it in while its scope still names another, and since when
    /// (its scope moves after [`DepartureGrace`]).
    arriving: Option<(u64, Instant)>,
}

/// A tenant name compared and hashed by the address of its shared copy, for
/// `super::scoped::layout_of`.
#[derive(Clone, Copy)]
struct SharedName<'a>(&'a Arc<str>);

impl PartialEq for SharedName<'_> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(self.0, other.0)
    }
}

impl Eq for SharedName<'_> {}

impl std::hash::Hash for SharedName<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(Arc::as_ptr(self.0).cast::<u8>() as usize);
    }
}

impl std::ops::Deref for SharedName<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

/// Walks `before` (entries built for the previous snapshot, in its order) along the inputs of
/// the next snapshot, given one at a time in the same order: the entry built from the same
/// input is found without a lookup. Inputs the compiler's memo shares between snapshots are the
/// same allocation (`same`); otherwise an entry under the same key (`order`) is reused only if
/// its input is equal (`equal`). Entries ordered before the input are dropped (gone from the
/// snapshot). An input out of order is only built again, never matched wrongly.
fn reuse<E, I: ?Sized>(
    before: &mut std::iter::Peekable<std::vec::IntoIter<E>>,
    input: &I,
    same: impl Fn(&E, &I) -> bool,
    order: impl Fn(&E, &I) -> std::cmp::Ordering,
    equal: impl Fn(&E, &I) -> bool,
) -> Option<E> {
    use std::cmp::Ordering;
    loop {
        let e = before.peek()?;
        if same(e, input) {
            return before.next();
        }
        match order(e, input) {
            Ordering::Less => {
                before.next();
            }
            Ordering::Equal => {
                let e = before.next()?;
                return equal(&e, input).then_some(e);
            }
            Ordering::Greater => return None,
        }
    }
}

impl ResourceCache {
    /// A cache whose hostnames move between tables at once (its builds equal fresh ones).
    #[cfg(test)]
    fn without_departure_grace() -> Self {
        Self::with_departure_grace(Duration::ZERO)
    }

    #[cfg(test)]
    fn with_departure_grace(grace: Duration) -> Self {
        ResourceCache {
            departure_grace: DepartureGrace(grace),
            ..Default::default()
        }
    }

    /// Starts a build: entries used from now on are kept by [`ResourceCache::end`].
    pub(super) fn begin(&mut self) {
        self.build += 1;
        self.now = Some(Instant::now());
        self.hosts_before = std::mem::take(&mut self.hosts);
    }

    /// Ends a build: drops every entry this build did not use.
    pub(super) fn end(&mut self) {
        let build = self.build;
        self.virtual_hosts.retain(|_, hosts| {
            hosts.retain(|_, e| e.used == build);
            !hosts.is_empty()
        });
        self.tables.retain(|_, e| e.used == build);
        self.hosts_before.clear();
        self.tenants.retain(|_, t| Arc::strong_count(t) > 1);
    }

    /// The entries of the virtual hosts of the shared-port listener `l`, in order: kept from
    /// the previous build for a virtual host that is the same allocation or equal, made anew
    /// for the others.
    fn host_entries(&mut self, l: &ListenerSnapshot) -> Vec<HostEntry> {
        let mut before = self
            .hosts_before
            .remove(&l.name)
            .unwrap_or_default()
            .into_iter()
            .peekable();
        let tenants = &mut self.tenants;
        l.virtual_hosts
            .iter()
            .map(|vh| {
                let found = reuse(
                    &mut before,
                    vh,
                    |e, vh| Arc::ptr_eq(&e.vh, vh),
                    |e, vh| e.vh.name.cmp(&vh.name),
                    |_, _| true,
                );
                match found {
                    Some(e) if Arc::ptr_eq(&e.vh, vh) || e.vh == *vh => HostEntry {
                        vh: vh.clone(),
                        ..e
                    },
                    // The hostname's virtual host changed: made anew, knowing the table its
                    // scopes named and its move between tables, if any (kept as for any other).
                    found => {
                        let found = found.filter(|e| !e.scopes.is_empty());
                        let was_in = found.as_ref().map(|e| e.table);
                        let (departed, arriving) =
                            found.map_or((None, None), |e| (e.departed, e.arriving));
                        let tenant = super::scoped::tenant_of(vh);
                        let tenant = match tenants.get(tenant) {
                            Some(t) => t.clone(),
                            None => tenants
                                .entry(tenant.to_string())
                                .or_insert_with(|| Arc::from(tenant))
                                .clone(),
                        };
                        HostEntry {
                            vh: vh.clone(),
                            catch_all: super::scoped::is_catch_all(vh),
                            exact: super::scoped::serves_exact_hostnames(vh),
                            tenant,
                            hash: super::scoped::name_hash(vh),
                            table: 0,
                            scopes: Vec::new(),
                            was_in,
                            departed,
                            arriving,
                        }
                    }
                }
            })
            .collect()
    }

    /// For a scoped listener `l` (`super::scoped::is_scoped`), the SRDS resources of every
    /// hostname (in the order of its virtual hosts and their domains) and the RDS resources of
    /// its tables, as `super::scoped::scope` and `super::scoped::route_configuration` of
    /// `super::scoped::layout(l)`; `None` for a listener that is not scoped.
    pub(super) fn scoped(&mut self, l: &ListenerSnapshot) -> Option<ScopedResources> {
        if !super::scoped::is_shared_port(l) {
            return None;
        }
        let mut entries = self.host_entries(l);
        let scoped =
            super::scoped::is_scoped_with(l, entries.iter().map(|e| (e.catch_all, e.exact)));
        if !scoped {
            self.hosts.insert(l.name.clone(), entries);
            return None;
        }
        let layout = super::scoped::layout_of(
            &l.name,
            entries
                .iter()
                .filter(|e| !e.catch_all)
                .map(|e| super::scoped::Host {
                    vh: &e.vh,
                    tenant: SharedName(&e.tenant),
                    hash: e.hash,
                }),
        );
        let table_of = layout.table_of;
        let mut tables: Vec<(u64, String)> = layout
            .tables
            .into_iter()
            .map(|t| (t.number, t.name))
            .collect();
        // Each table's virtual hosts as indexes into `entries`, in layout order (the order
        // `layout_of` put them in); departing ones appended below.
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); tables.len()];
        let now = self.now.unwrap_or_else(Instant::now);
        let grace = self.departure_grace.0;
        let mut index: HashMap<String, usize> = tables
            .iter()
            .enumerate()
            .map(|(i, (_, name))| (name.clone(), i))
            .collect();
        let mut scopes = Vec::new();
        // Virtual hosts also kept in a table the layout did not put them in: (table number,
        // entry).
        let mut departing: Vec<(u64, usize)> = Vec::new();
        let in_tables = entries.iter_mut().enumerate().filter(|(_, e)| !e.catch_all);
        for ((i, e), t) in in_tables.zip(table_of) {
            members[t].push(i);
            let number = tables[t].0;
            // The table the hostname's scope names now (none for a new hostname).
            let current = if e.scopes.is_empty() {
                e.was_in.take()
            } else {
                Some(e.table)
            };
            let name_of = |n: u64| super::scoped::table_name(&l.name, &e.tenant, n);
            // A move waits until the virtual host has been in its new table for the grace,
            // the hostname served by its old one meanwhile.
            let stay = match current {
                Some(c) if c != number => {
                    let since = match e.arriving {
                        Some((n, since)) if n == number => since,
                        _ => now,
                    };
                    e.arriving = Some((number, since));
                    (now - since < grace).then_some(c)
                }
                _ => {
                    e.arriving = None;
                    None
                }
            };
            let want = stay.unwrap_or(number);
            // The table's name is the listener's, the tenant's and its number: the same
            // virtual host (so the same tenant) in the table of the same number names it.
            if e.scopes.is_empty() || e.table != want {
                if let Some(from) = current.filter(|&from| from != want) {
                    e.departed = Some((from, now));
                }
                let table = name_of(want);
                e.scopes =
                    e.vh.domains
                        .iter()
                        .map(|host| {
                            Arc::new(Resource::new(
                                super::scoped::scope_name(&l.name, host),
                                pack_any(super::scoped::scope(l, host, &table)),
                                Sources::Routes(vec![e.vh.clone()]),
                            ))
                        })
                        .collect();
                e.table = want;
            }
            scopes.extend(e.scopes.iter().cloned());
            if stay.is_some() {
                departing.push((want, i));
                continue;
            }
            match e.departed {
                Some((from, at)) if from != number && now - at < grace => {
                    departing.push((from, i));
                }
                _ => e.departed = None,
            }
        }
        // A departing virtual host stays in its old table, which is kept (with its anchor)
        // while it holds one, even if the layout has no such table any more (the tenant has
        // fewer tables now).
        for (number, i) in departing {
            let name = super::scoped::table_name(&l.name, &entries[i].tenant, number);
            let t = *index.entry(name).or_insert_with_key(|name| {
                tables.push((number, name.clone()));
                members.push(Vec::new());
                tables.len() - 1
            });
            members[t].push(i);
        }
        // Every table keeps its subscription through its own scope (made by the hub from the
        // table's name alone: a NACK of it names no tenant object).
        scopes.extend(tables.iter().map(|(_, name)| {
            Arc::new(Resource::new(
                super::scoped::anchor_name(&l.name, name),
                pack_any(super::scoped::anchor_scope(l, name)),
                std::collections::BTreeSet::new(),
            ))
        }));
        let tables = tables
            .iter()
            .zip(&members)
            .map(|((number, name), members)| {
                let table = super::scoped::Table {
                    name: name.clone(),
                    number: *number,
                    virtual_hosts: members.iter().map(|&i| &entries[i].vh).collect(),
                };
                self.table(l, &table)
            })
            .collect();
        self.hosts.insert(l.name.clone(), entries);
        Some((scopes, tables))
    }

    /// The RDS resource of `table` of the scoped listener `l`, assembled again only when one of
    /// its virtual hosts changed.
    fn table(&mut self, l: &ListenerSnapshot, table: &super::scoped::Table<'_>) -> Arc<Resource> {
        let build = self.build;
        let vhs = &table.virtual_hosts;
        if let Some(e) = self.tables.get_mut(&table.name)
            && e.input.len() == vhs.len()
            && e.input
                .iter()
                .zip(vhs)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == *b)
        {
            e.used = build;
            return e.output.clone();
        }
        let any = self.assemble(
            &l.name,
            &table.name,
            vhs.iter().copied(),
            super::scoped::table_settings(l),
        );
        let input: Vec<Arc<VirtualHost>> = vhs.iter().map(|vh| (*vh).clone()).collect();
        let output = Arc::new(Resource::new(
            table.name.clone(),
            any,
            Sources::Routes(input.clone()),
        ));
        self.tables.insert(
            table.name.clone(),
            Entry {
                input,
                output: output.clone(),
                used: build,
            },
        );
        output
    }

    /// The CDS and EDS resources of each cluster of `clusters` (ordered by name), as
    /// `resources::cluster_resources`.
    pub(super) fn clusters(&mut self, clusters: &[Arc<ClusterSnapshot>]) -> Vec<ClusterResources> {
        let mut before = std::mem::take(&mut self.clusters).into_iter().peekable();
        let mut kept = Vec::with_capacity(clusters.len());
        for c in clusters {
            let found = reuse(
                &mut before,
                c,
                |(e, _), c| Arc::ptr_eq(e, c),
                |(e, _), c| e.name.cmp(&c.name),
                |(e, _), c| e == c,
            );
            let output = match found {
                Some((_, output)) => output,
                None => cluster_resources(c),
            };
            kept.push((c.clone(), output));
        }
        let out = kept.iter().map(|(_, o)| o.clone()).collect();
        self.clusters = kept;
        out
    }

    /// The RouteConfiguration of `l` (as `pack_any(resources::route_configuration(l))`).
    pub(super) fn route_configuration(&mut self, l: &ListenerSnapshot) -> Any {
        let tail = RouteConfiguration {
            ignore_port_in_host_matching: true,
            ..Default::default()
        };
        self.assemble(&l.name, &l.name, l.virtual_hosts.iter(), tail)
    }

    /// The RouteConfiguration named `name` of listener `listener`'s virtual hosts `vhs` and the
    /// other fields of `tail`, assembled from the encoded virtual hosts: a protobuf message is
    /// the concatenation of its encoded fields, and a repeated message field is one
    /// length-delimited record per element.
    fn assemble<'a>(
        &mut self,
        listener: &str,
        name: &str,
        vhs: impl Iterator<Item = &'a Arc<VirtualHost>>,
        tail: RouteConfiguration,
    ) -> Any {
        let head = RouteConfiguration {
            name: name.to_string(),
            ..Default::default()
        };
        let mut value = head.encode_to_vec();
        let build = self.build;
        let hosts = match self.virtual_hosts.get_mut(listener) {
            Some(hosts) => hosts,
            None => self.virtual_hosts.entry(listener.to_string()).or_default(),
        };
        for vh in vhs {
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
        // The fields after the virtual hosts, in prost's order (`tail` has no name or virtual
        // hosts).
        value.extend_from_slice(&tail.encode_to_vec());
        // Kept until the table changes: without the room grown into while appending (up to
        // as much again; 7 MiB at 10,000 routes).
        value.shrink_to_fit();
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
            headers: Default::default(),
            query_params: Default::default(),
            method: None,
            request_headers: HeaderModifier::default(),
            response_headers: HeaderModifier::default(),
            cors: None,
            action: RouteAction::Forward(crate::snapshot::Forward {
                clusters: vec![WeightedCluster::new(cluster, 1)],
                rewrite: None,
                mirrors: Default::default(),
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

    /// A snapshot of port 80 with `n` hostnames of each tenant of `tenants` (`h<i>.<tenant>`,
    /// each its own virtual host whose route comes from that tenant), and `extra` hosts of
    /// tenant `a` (a wildcard makes the port unscoped).
    fn tenants_snapshot(tenants: &[(&str, usize)], extra: &[&str]) -> Snapshot {
        let mut s = snapshot(&[], &[]);
        let hosts = tenants
            .iter()
            .flat_map(|(t, n)| (0..*n).map(move |i| (format!("h{i}.{t}"), *t)))
            .chain(extra.iter().map(|h| (h.to_string(), "a")));
        let mut vhs: Vec<Arc<VirtualHost>> = hosts
            .map(|(h, t)| {
                let mut r = route(&format!("{h}/r0"), "/", "c");
                r.source = Some(Arc::new(crate::test_support::route_source(
                    t,
                    &h.replace('*', "any"),
                )));
                Arc::new(VirtualHost {
                    name: format!("port/80/host/{h}"),
                    domains: vec![h],
                    routes: vec![r],
                    rate_limit: None,
                })
            })
            .collect();
        vhs.sort_by(|a, b| a.name.cmp(&b.name));
        s.listeners[0].virtual_hosts = vhs;
        s
    }

    #[test]
    fn cached_scoped_builds_equal_fresh_builds_as_hostnames_move_between_tables() {
        // Tenant a grows past HOSTS_PER_TABLE (its hostnames spread over two tables, their
        // scopes name other tables), a wildcard makes the port unscoped and goes again (the
        // kept scopes must name the tables of now), tenant a shrinks back.
        let n = crate::scoped::HOSTS_PER_TABLE;
        let steps = [
            tenants_snapshot(&[("a", n - 4), ("b", 3)], &[]),
            tenants_snapshot(&[("a", n + 4), ("b", 3)], &[]),
            tenants_snapshot(&[("a", n + 4), ("b", 3)], &["*.w"]),
            tenants_snapshot(&[("a", n - 4), ("b", 3)], &["*.w"]),
            tenants_snapshot(&[("a", n - 4), ("b", 3)], &[]),
            tenants_snapshot(&[("a", 2 * n + 1), ("b", 3)], &[]),
            tenants_snapshot(&[("b", 3)], &[]),
        ];
        let mut cache = ResourceCache::without_departure_grace();
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(build_cached(s, &mut cache), build(s), "step {i}");
        }
        // Tenant a's hostnames and shared name are gone with it.
        assert_eq!(cache.tenants.len(), 1);
        assert_eq!(cache.hosts.values().map(Vec::len).sum::<usize>(), 3);
    }

    #[test]
    fn a_hostname_moves_to_a_table_only_once_its_virtual_host_has_been_there_a_while() {
        use crate::resources::{ROUTE_TYPE, Resources, SCOPED_ROUTE_TYPE};
        use envoy_types::pb::envoy::config::route::v3::ScopedRouteConfiguration;
        let n = crate::scoped::HOSTS_PER_TABLE;
        let (small, grown) = (
            tenants_snapshot(&[("a", n - 4)], &[]),
            tenants_snapshot(&[("a", n + 4)], &[]),
        );
        // The table a scope names, and the virtual-host names of a table.
        let named_by = |r: &Resources, scope: &str| -> Option<String> {
            let scope = r.of(SCOPED_ROUTE_TYPE).iter().find(|x| x.name == scope)?;
            Some(
                ScopedRouteConfiguration::decode(&*scope.any.value)
                    .unwrap()
                    .route_configuration_name,
            )
        };
        let table_of = |r: &Resources, host: &str| {
            named_by(r, &format!("port/80/scoped/{host}")).expect("a scope")
        };
        let hosts_in = |r: &Resources, table: &str| -> Vec<String> {
            let t = r
                .of(ROUTE_TYPE)
                .iter()
                .find(|x| x.name == table)
                .expect("a table");
            RouteConfiguration::decode(&*t.any.value)
                .unwrap()
                .virtual_hosts
                .into_iter()
                .map(|vh| vh.name)
                .collect()
        };
        let (before, fresh) = (build(&small), build(&grown));
        let moved: Vec<String> = (0..n - 4)
            .map(|i| format!("h{i}.a"))
            .filter(|h| table_of(&before, h) != table_of(&fresh, h))
            .collect();
        assert!(!moved.is_empty(), "growing past {n} hostnames moves some");
        let grace = Duration::from_millis(300);
        // `h` is moving from table `from` to `to`: its scope still names `from`, both tables
        // hold its virtual host, and the grown layout's table (`to` when growing, `from` when
        // shrinking back), which no scope names meanwhile, is kept subscribed by its anchor.
        let waiting = |r: &Resources, h: &str, from: &str, to: &str| {
            let vh = format!("port/80/host/{h}");
            assert_eq!(table_of(r, h), from, "{h} waits before moving to {to}");
            assert!(hosts_in(r, from).contains(&vh));
            assert!(hosts_in(r, to).contains(&vh));
            let grown_table = table_of(&fresh, h);
            assert_eq!(
                named_by(r, &format!("port/80/anchor/{grown_table}")).as_deref(),
                Some(grown_table.as_str())
            );
        };
        // `h` has moved to `to`; `from` keeps its virtual host one more grace.
        let moved_to = |r: &Resources, h: &str, from: &str, to: &str| {
            assert_eq!(table_of(r, h), to);
            assert!(hosts_in(r, from).contains(&format!("port/80/host/{h}")));
        };
        let mut cache = ResourceCache::with_departure_grace(grace);
        build_cached(&small, &mut cache);
        // Growing: the new table is there, but the moving hostnames' scopes still name their
        // old table.
        let first = build_cached(&grown, &mut cache);
        for h in &moved {
            waiting(&first, h, &table_of(&before, h), &table_of(&fresh, h));
        }
        // After the grace the scopes move; the old table keeps them one more grace.
        std::thread::sleep(grace + Duration::from_millis(50));
        let moved_now = build_cached(&grown, &mut cache);
        for h in &moved {
            moved_to(&moved_now, h, &table_of(&before, h), &table_of(&fresh, h));
        }
        std::thread::sleep(grace + Duration::from_millis(50));
        assert_eq!(build_cached(&grown, &mut cache), fresh);
        // Shrinking back: the new table leaves the layout, but is kept while the hostnames'
        // scopes still name it (its anchor too); their virtual hosts are in the old table
        // already, before their scopes move back to it (a scope moved in the same push as its
        // virtual host is applied by Envoy before the table: 404 meanwhile).
        let back = build_cached(&small, &mut cache);
        for h in &moved {
            waiting(&back, h, &table_of(&fresh, h), &table_of(&before, h));
        }
        std::thread::sleep(grace + Duration::from_millis(50));
        let back_now = build_cached(&small, &mut cache);
        for h in &moved {
            moved_to(&back_now, h, &table_of(&fresh, h), &table_of(&before, h));
        }
        std::thread::sleep(grace + Duration::from_millis(50));
        assert_eq!(build_cached(&small, &mut cache), before);
        // A moving hostname whose routes change meanwhile waits the same way, as it is now.
        let h = &moved[0];
        let mut changed = grown.clone();
        let vhs = &mut changed.listeners[0].virtual_hosts;
        let i = vhs
            .iter()
            .position(|vh| vh.name == format!("port/80/host/{h}"))
            .unwrap();
        Arc::make_mut(&mut vhs[i]).routes[0].path = PathMatch::Prefix("/changed".into());
        let mut cache = ResourceCache::with_departure_grace(grace);
        build_cached(&small, &mut cache);
        let after = build_cached(&changed, &mut cache);
        let old = table_of(&before, h);
        assert_eq!(table_of(&after, h), old);
        assert!(hosts_in(&after, &old).contains(&format!("port/80/host/{h}")));
        // Without the grace a hostname moves at once (the build equals a fresh one).
        let mut cache = ResourceCache::without_departure_grace();
        build_cached(&small, &mut cache);
        assert_eq!(build_cached(&grown, &mut cache), fresh);
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
        let mut cache = ResourceCache::without_departure_grace();
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(build_cached(s, &mut cache), build(s), "step {i}");
        }
        // Only what the last snapshot uses is kept: its two hostnames' virtual hosts and
        // scopes, and their one table.
        assert_eq!(
            cache
                .virtual_hosts
                .values()
                .map(HashMap::len)
                .sum::<usize>(),
            2
        );
        assert_eq!(
            cache
                .hosts
                .values()
                .flatten()
                .map(|e| e.scopes.len())
                .sum::<usize>(),
            2
        );
        assert_eq!(cache.tables.len(), 1);
        assert_eq!(cache.clusters.len(), 2);
    }
}
