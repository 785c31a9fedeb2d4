//! Scoped route tables: small RouteConfigurations, each holding the virtual hosts of a few
//! dozen hostnames of one tenant, instead of one per port, so that a changed route re-sends
//! (and Envoy rebuilds) one small table.
//!
//! Part of step 8 (publish), pure; `super::resources` and `super::cache` call it. Envoy's
//! scoped RDS (SRDS) picks a RouteConfiguration per request by an exact key computed from
//! request headers ([`scope_key`]): the request's host (`:authority` up to the first `:`, so
//! the port a client puts in Host is ignored as `ignore_port_in_host_matching` ignores it) and,
//! on every port but 80, the data-plane port, which the listener's connection manager writes
//! into [`PORT_HEADER`] before routing (overwriting whatever the client sent), because every
//! HTTP connection manager on ADS receives the scopes of every port. A key of one fragment
//! never equals one of two, so port 80 (HTTP's own, where most hostnames are) needs no port in
//! its keys and its requests skip the header's write and removal. The choice is fixed, not
//! "the lowest scoped port": a port whose key changed shape would answer 404 between Envoy
//! taking its new listener and its new scopes, and on connections its old listener drains.
//!
//! Each hostname has its scope (its key); the scope names the table holding its virtual host
//! ([`layout`]). A tenant's virtual hosts on a port are split over a power of two of tables by
//! a fixed hash of the virtual host's name, as many as keep a table at about
//! [`HOSTS_PER_TABLE`] hostnames: one table per hostname made Envoy keep a subscription, a dozen
//! statistics and its bookkeeping per hostname (about 150 KiB each; 100,000 hostnames did not
//! fit in 15 GiB) and its statistics flush walk 120,000 RDS statistics at 10,000 hostnames.
//! When a tenant's count crosses a power of two its hostnames move between tables (the scopes
//! that move are sent again); a change of one route re-sends one table. Every table also has
//! an anchor scope ([`anchor_scope`]) so that Envoy holds it from its first build, and the
//! cache (`super::cache`) moves a hostname's scope to a table only once that table has been
//! there a while, its old table serving it meanwhile: Envoy serves a scope naming a table it has
//! not received yet with 404.
//!
//! A key is exact, so a scope cannot stand for a wildcard hostname (`*.a.example`) or for `*`
//! (Envoy issue 19098), and a request whose key names no scope gets Envoy's 404. A port is
//! therefore scoped only when every virtual host on it serves exact hostnames, apart from the
//! port's 404 catch-all (which a missing scope answers the same way); a port with a wildcard or
//! hostname-less virtual host keeps the one RouteConfiguration with all its virtual hosts, where
//! Envoy applies Gateway API's precedence (exact, then the longest wildcard suffix, then `*`).
//! Own addresses (one Gateway each, `own/...` listeners) always keep one RouteConfiguration.
//! Scope keys compare bytes: on a scoped port a Host in other letter case than the configured
//! hostname gets 404, where Envoy's virtual-host matching would ignore the case.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use envoy_types::pb::envoy::config::common::mutation_rules::v3::{HeaderMutation, header_mutation};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, TypedExtensionConfig, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, ScopedRouteConfiguration, scoped_route_configuration,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    ScopedRds, ScopedRoutes, http_connection_manager, scoped_routes,
};
use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation as EarlyHeaderMutation;
use envoy_types::util::pack_any;

use crate::snapshot::{ListenerSnapshot, RouteAction, VirtualHost};

pub const SCOPED_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";

/// The request header carrying the data-plane port into the scope key of a port keyed by
/// [`ScopeKey::HostAndPort`] (all but 80); set by the listener, never taken from the client, and removed
/// before a request is forwarded.
pub const PORT_HEADER: &str = "x-fleetgate-port";

/// What the scope key of a scoped listener is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKey {
    /// The request's host alone: port 80's.
    Host,
    /// The request's host and the port, from [`PORT_HEADER`]: every other scoped port's.
    HostAndPort,
}

/// The scope key of a scoped listener on `port`: keys of one fragment (the host) are port
/// 80's alone, as no other port's key has one fragment.
pub fn scope_key(port: u16) -> ScopeKey {
    if port == 80 {
        ScopeKey::Host
    } else {
        ScopeKey::HostAndPort
    }
}

/// Whether `l` is served with one RouteConfiguration per hostname (see the module docs): a
/// shared data-plane port (`port/<port>`; an own address serves one Gateway and keeps one
/// table) whose virtual hosts all serve exact hostnames, apart from the 404 catch-all.
pub fn is_scoped(l: &ListenerSnapshot) -> bool {
    is_scoped_with(
        l,
        l.virtual_hosts
            .iter()
            .map(|vh| (is_catch_all(vh), serves_exact_hostnames(vh))),
    )
}

/// [`is_scoped`] from what is known of each virtual host of `l`, in order: whether it is the
/// catch-all ([`is_catch_all`]) and whether it serves exact hostnames only
/// ([`serves_exact_hostnames`]); the cache keeps both between builds.
pub fn is_scoped_with(l: &ListenerSnapshot, hosts: impl IntoIterator<Item = (bool, bool)>) -> bool {
    is_shared_port(l)
        && hosts
            .into_iter()
            .all(|(catch_all, exact)| catch_all || exact)
}

/// A shared data-plane port's listener (`port/<port>`), not an own address's.
pub fn is_shared_port(l: &ListenerSnapshot) -> bool {
    l.name == format!("port/{}", l.port)
}

/// No domain of `vh` is a wildcard.
pub fn serves_exact_hostnames(vh: &VirtualHost) -> bool {
    vh.domains.iter().all(|d| !d.contains('*'))
}

/// The port's catch-all: `*`, one route answering 404 to every request.
pub fn is_catch_all(vh: &VirtualHost) -> bool {
    matches!(vh.domains.as_slice(), [d] if d == "*")
        && vh.rate_limit.is_none()
        && matches!(vh.routes.as_slice(), [r] if r.action == RouteAction::DirectResponse(404)
            && r.path == crate::snapshot::PathMatch::Prefix("/".into())
            && r.headers.is_empty() && r.query_params.is_empty() && r.method.is_none())
}

/// About how many hostnames (virtual hosts) share one table of a scoped listener: a tenant with
/// `n` virtual hosts on the port has `n / HOSTS_PER_TABLE` tables rounded up to a power of two.
pub const HOSTS_PER_TABLE: usize = 64;

/// The virtual hosts of a scoped listener (all but the catch-all), in order.
pub fn scoped_virtual_hosts(l: &ListenerSnapshot) -> impl Iterator<Item = &Arc<VirtualHost>> {
    l.virtual_hosts.iter().filter(|vh| !is_catch_all(vh))
}

/// The RouteConfigurations of a scoped listener and which one serves each virtual host.
#[derive(Debug)]
pub struct Layout<'a> {
    /// By tenant, then table number.
    pub tables: Vec<Table<'a>>,
    /// For each virtual host of [`scoped_virtual_hosts`], in order, its index in `tables`.
    pub table_of: Vec<usize>,
}

/// One RouteConfiguration of a scoped listener: virtual hosts of one tenant, in the listener's
/// order.
#[derive(Debug)]
pub struct Table<'a> {
    pub name: String,
    /// Its number among its tenant's tables (the last part of `name`).
    pub number: u64,
    pub virtual_hosts: Vec<&'a Arc<VirtualHost>>,
}

/// What [`layout_of`] needs of one virtual host: the virtual host, its tenant ([`tenant_of`])
/// and the [`fnv1a`] hash of its name ([`name_hash`]).
pub struct Host<'a, T> {
    pub vh: &'a Arc<VirtualHost>,
    pub tenant: T,
    pub hash: u64,
}

/// Which table serves each virtual host of the scoped listener `l` (see the module docs).
pub fn layout(l: &ListenerSnapshot) -> Layout<'_> {
    layout_of(
        &l.name,
        scoped_virtual_hosts(l).map(|vh| Host {
            vh,
            tenant: tenant_of(vh),
            hash: name_hash(vh),
        }),
    )
}

/// [`layout`] of the virtual hosts `hosts` (those of [`scoped_virtual_hosts`], in order) of
/// listener `listener`. One pass groups the virtual hosts by tenant (a lookup by `T`: the
/// tenant's name, or the cache's shared copy of it compared by address; hashed with [`Fnv`],
/// not SipHash, as this runs over every hostname of the port for every change), the next finds
/// each one's table by arithmetic: the tables are numbered tenant by tenant (tenants in name
/// order), a tenant's `2^k` tables in a row.
pub fn layout_of<'a, T>(listener: &str, hosts: impl IntoIterator<Item = Host<'a, T>>) -> Layout<'a>
where
    T: Copy + Eq + std::hash::Hash + std::ops::Deref<Target = str>,
{
    let mut tenant_index: HashMap<T, usize, BuildHasherDefault<Fnv>> = HashMap::default();
    let mut tenants: Vec<(T, usize)> = Vec::new();
    let hosts: Vec<(&Arc<VirtualHost>, u64, usize)> = hosts
        .into_iter()
        .map(|h| {
            let i = *tenant_index.entry(h.tenant).or_insert_with(|| {
                tenants.push((h.tenant, 0));
                tenants.len() - 1
            });
            tenants[i].1 += 1;
            (h.vh, h.hash, i)
        })
        .collect();
    // Tenants in name order: each one's first table number and its number of tables.
    let mut order: Vec<usize> = (0..tenants.len()).collect();
    order.sort_unstable_by(|&a, &b| (*tenants[a].0).cmp(&*tenants[b].0));
    let mut first = vec![0; tenants.len()];
    let mut slots = Vec::new();
    for &i in &order {
        let (tenant, n) = tenants[i];
        first[i] = slots.len();
        slots.extend((0..tables_for(n)).map(|k| (tenant, k, Vec::new())));
    }
    let mut slot_of = Vec::with_capacity(hosts.len());
    for (vh, hash, i) in hosts {
        let slot = first[i] + (hash & (tables_for(tenants[i].1) - 1)) as usize;
        slots[slot].2.push(vh);
        slot_of.push(slot);
    }
    // A table no hostname hashed to is left out.
    let mut index = vec![usize::MAX; slots.len()];
    let mut tables = Vec::with_capacity(slots.len());
    for (slot, (tenant, k, virtual_hosts)) in slots.into_iter().enumerate() {
        if !virtual_hosts.is_empty() {
            index[slot] = tables.len();
            tables.push(Table {
                name: table_name(listener, &tenant, k),
                number: k,
                virtual_hosts,
            });
        }
    }
    let table_of = slot_of.into_iter().map(|slot| index[slot]).collect();
    Layout { tables, table_of }
}

/// How many tables a tenant with `n` virtual hosts on the port has: a power of two.
fn tables_for(n: usize) -> u64 {
    n.div_ceil(HOSTS_PER_TABLE).next_power_of_two() as u64
}

/// [`fnv1a`] as a `Hasher`, for maps keyed by tenant names.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(FNV_OFFSET)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes
            .iter()
            .fold(self.0, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The tenant a virtual host belongs to: that of its routes (a hostname is claimed by one
/// tenant); `-` (not a tenant name) for one without tenant routes.
pub fn tenant_of(vh: &VirtualHost) -> &str {
    vh.routes
        .iter()
        .find_map(|r| r.source.as_ref())
        .map_or("-", |s| s.cluster.tenant.as_str())
}

/// The hash that picks a virtual host's table among its tenant's: [`fnv1a`] of its name.
pub fn name_hash(vh: &VirtualHost) -> u64 {
    fnv1a(vh.name.as_bytes())
}

/// FNV-1a: a hash that is the same in every process and release, so a virtual host stays in
/// its table across hub restarts and upgrades.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The name of table `n` of `tenant` on listener `listener`.
pub fn table_name(listener: &str, tenant: &str, n: u64) -> String {
    format!("{listener}/routes/t/{tenant}/{n}")
}

/// The name of the scope of `host` on listener `listener`.
pub fn scope_name(listener: &str, host: &str) -> String {
    format!("{listener}/scoped/{host}")
}

/// The connection manager's route specifier of a scoped listener.
pub fn route_specifier(l: &ListenerSnapshot) -> http_connection_manager::RouteSpecifier {
    use scoped_routes::scope_key_builder::{FragmentBuilder, fragment_builder};
    let header = |name: &str, separator: &str| FragmentBuilder {
        r#type: Some(fragment_builder::Type::HeaderValueExtractor(
            fragment_builder::HeaderValueExtractor {
                name: name.to_string(),
                element_separator: separator.to_string(),
                extract_type: Some(fragment_builder::header_value_extractor::ExtractType::Index(0)),
            },
        )),
    };
    http_connection_manager::RouteSpecifier::ScopedRoutes(ScopedRoutes {
        name: l.name.clone(),
        scope_key_builder: Some(scoped_routes::ScopeKeyBuilder {
            fragments: match scope_key(l.port) {
                ScopeKey::Host => vec![header(":authority", ":")],
                ScopeKey::HostAndPort => vec![header(":authority", ":"), header(PORT_HEADER, "")],
            },
        }),
        rds_config_source: Some(super::resources::ads()),
        config_specifier: Some(scoped_routes::ConfigSpecifier::ScopedRds(ScopedRds {
            scoped_rds_config_source: Some(super::resources::ads()),
            ..Default::default()
        })),
    })
}

/// The connection manager's early header mutation of a scoped listener: where the key has the
/// port ([`ScopeKey::HostAndPort`]), [`PORT_HEADER`] set to the port, replacing any value the
/// client sent; none for [`ScopeKey::Host`].
pub fn early_header_mutation(l: &ListenerSnapshot) -> Vec<TypedExtensionConfig> {
    if scope_key(l.port) == ScopeKey::Host {
        return Vec::new();
    }
    let set = HeaderMutation {
        action: Some(header_mutation::Action::Append(HeaderValueOption {
            header: Some(HeaderValue {
                key: PORT_HEADER.to_string(),
                value: l.port.to_string(),
                ..Default::default()
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..Default::default()
        })),
    };
    vec![TypedExtensionConfig {
        name: "envoy.http.early_header_mutation.header_mutation".to_string(),
        typed_config: Some(pack_any(EarlyHeaderMutation {
            mutations: vec![set],
        })),
    }]
}

/// The SRDS resource of `host` on `l`: its key and the name of the table serving it.
pub fn scope(l: &ListenerSnapshot, host: &str, table: &str) -> ScopedRouteConfiguration {
    keyed_scope(scope_name(&l.name, host), host, l.port, table)
}

/// The SRDS resource that keeps `table` of `l` subscribed whichever hostnames name it: a scope
/// of its own under a key no request carries (the table's name, with `/` in it, is no Host).
/// Envoy starts the RDS subscription of a table when a scope first names it and, after its
/// first load, applies a scope at once, before a table new to it has arrived: a hostname
/// whose scope moved to a new table got 404 until then. So a table is subscribed as soon as it
/// exists, and a hostname moves to it only once it has been there a while (`super::cache`).
pub fn anchor_scope(l: &ListenerSnapshot, table: &str) -> ScopedRouteConfiguration {
    keyed_scope(anchor_name(&l.name, table), table, l.port, table)
}

/// A scope named `name` whose key is `host` (and `port`, unless [`scope_key`] of `port` is
/// [`ScopeKey::Host`]), naming `table`.
fn keyed_scope(name: String, host: &str, port: u16, table: &str) -> ScopedRouteConfiguration {
    use scoped_route_configuration::key::{Fragment, fragment};
    let string_key = |s: String| Fragment {
        r#type: Some(fragment::Type::StringKey(s)),
    };
    ScopedRouteConfiguration {
        name,
        route_configuration_name: table.to_string(),
        key: Some(scoped_route_configuration::Key {
            fragments: match scope_key(port) {
                ScopeKey::Host => vec![string_key(host.to_string())],
                ScopeKey::HostAndPort => {
                    vec![string_key(host.to_string()), string_key(port.to_string())]
                }
            },
        }),
        ..Default::default()
    }
}

/// The name of the anchor scope ([`anchor_scope`]) of `table` on listener `listener`.
pub fn anchor_name(listener: &str, table: &str) -> String {
    format!("{listener}/anchor/{table}")
}

/// The RouteConfiguration of `table` of listener `l`: its virtual hosts (their names, domains
/// and routes as on an unscoped port; a request reaches a table only through the scope of one
/// of its hostnames).
pub fn route_configuration(l: &ListenerSnapshot, table: &Table<'_>) -> RouteConfiguration {
    RouteConfiguration {
        name: table.name.clone(),
        virtual_hosts: table
            .virtual_hosts
            .iter()
            .map(|vh| super::resources::virtual_host(vh))
            .collect(),
        ..table_settings(l)
    }
}

/// The fields of a table's RouteConfiguration of listener `l` besides its name and virtual
/// hosts: [`PORT_HEADER`] is removed where the listener sets it.
pub fn table_settings(l: &ListenerSnapshot) -> RouteConfiguration {
    RouteConfiguration {
        ignore_port_in_host_matching: true,
        request_headers_to_remove: match scope_key(l.port) {
            ScopeKey::Host => Vec::new(),
            ScopeKey::HostAndPort => vec![PORT_HEADER.to_string()],
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use envoy_types::pb::envoy::config::listener::v3::filter;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use prost::Message;

    use super::*;
    use crate::model::HeaderModifier;
    use crate::resources::{LISTENER_TYPE, ROUTE_TYPE, build, listener};
    use crate::snapshot::{PathMatch, Route, Snapshot};

    fn vh(name: &str, domains: &[&str], action: RouteAction) -> Arc<VirtualHost> {
        owned(name, domains, action, None)
    }

    /// A virtual host whose route comes from an HTTPRoute of `tenant` (`None`: fleetgate's own).
    fn owned(
        name: &str,
        domains: &[&str],
        action: RouteAction,
        tenant: Option<&str>,
    ) -> Arc<VirtualHost> {
        let source = tenant.map(|t| crate::test_support::route_source(t, &name.replace('/', "-")));
        Arc::new(VirtualHost {
            name: name.to_string(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: vec![Route {
                name: format!("{name}/r"),
                path: PathMatch::Prefix("/".into()),
                headers: Default::default(),
                query_params: Default::default(),
                method: None,
                request_headers: HeaderModifier::default(),
                response_headers: HeaderModifier::default(),
                cors: None,
                action,
                source: source.map(Arc::new),
            }],
            rate_limit: None,
        })
    }

    /// `n` virtual hosts of `tenant`, one hostname each: `h<i>.<tenant>.example`.
    fn hosts_of(tenant: &str, n: usize) -> Vec<Arc<VirtualHost>> {
        (0..n)
            .map(|i| {
                let host = format!("h{i}.{tenant}.example");
                owned(
                    &format!("port/80/host/{host}"),
                    &[&host],
                    RouteAction::DirectResponse(200),
                    Some(tenant),
                )
            })
            .collect()
    }

    /// The table names of `l`'s virtual hosts, by virtual-host name.
    fn tables_by_host(l: &ListenerSnapshot) -> std::collections::BTreeMap<String, String> {
        let layout = layout(l);
        scoped_virtual_hosts(l)
            .zip(&layout.table_of)
            .map(|(vh, &t)| (vh.name.clone(), layout.tables[t].name.clone()))
            .collect()
    }

    #[test]
    fn a_tenants_hostnames_share_tables_of_about_hosts_per_table() {
        let mut hosts = hosts_of("a", 200);
        hosts.extend(hosts_of("b", 3));
        hosts.sort_by(|x, y| x.name.cmp(&y.name));
        let l = port(80, hosts);
        let layout = layout(&l);
        let names: Vec<&str> = layout.tables.iter().map(|t| t.name.as_str()).collect();
        // 200 of tenant a: 200 / 64 rounded up to a power of two is 4 tables; tenant b's 3
        // share one. The 404 catch-all is in none.
        assert_eq!(
            names,
            vec![
                "port/80/routes/t/a/0",
                "port/80/routes/t/a/1",
                "port/80/routes/t/a/2",
                "port/80/routes/t/a/3",
                "port/80/routes/t/b/0",
            ]
        );
        for t in &layout.tables {
            let tenant = &t.name["port/80/routes/t/".len()..][..1];
            assert!(
                t.virtual_hosts
                    .iter()
                    .all(|vh| vh.name.ends_with(&format!(".{tenant}.example"))),
                "{} holds another tenant's hostname",
                t.name
            );
            assert!(
                (1..=2 * HOSTS_PER_TABLE).contains(&t.virtual_hosts.len()),
                "{}: {} virtual hosts",
                t.name,
                t.virtual_hosts.len()
            );
        }
        assert_eq!(
            layout
                .tables
                .iter()
                .map(|t| t.virtual_hosts.len())
                .sum::<usize>(),
            203
        );
        // Each virtual host is in the table `table_of` says.
        for (vh, &t) in scoped_virtual_hosts(&l).zip(&layout.table_of) {
            assert!(
                layout.tables[t]
                    .virtual_hosts
                    .iter()
                    .any(|x| Arc::ptr_eq(x, vh))
            );
        }
    }

    #[test]
    fn a_new_hostname_moves_no_other_hostname_until_its_tenant_needs_more_tables() {
        let tables = |n: usize| {
            let mut hosts = hosts_of("a", n);
            hosts.extend(hosts_of("b", 10));
            hosts.sort_by(|x, y| x.name.cmp(&y.name));
            tables_by_host(&port(80, hosts))
        };
        let before = tables(100);
        let after = tables(101);
        assert_eq!(after.len(), before.len() + 1);
        assert!(before.iter().all(|(vh, t)| after[vh] == *t));
        // 129 hostnames need 4 tables where 128 fit in 2: tenant a's hostnames move, b's stay.
        let (two, four) = (tables(128), tables(129));
        let moved: Vec<&String> = two.keys().filter(|vh| two[*vh] != four[*vh]).collect();
        assert!(!moved.is_empty());
        assert!(moved.iter().all(|vh| vh.ends_with(".a.example")));
    }

    fn port(port: u16, hosts: Vec<Arc<VirtualHost>>) -> ListenerSnapshot {
        let mut virtual_hosts = hosts;
        virtual_hosts.push(vh(
            &format!("port/{port}/catch-all"),
            &["*"],
            RouteAction::DirectResponse(404),
        ));
        ListenerSnapshot {
            name: format!("port/{port}"),
            port,
            bind: format!("127.0.0.1:{port}").parse().unwrap(),
            virtual_hosts,
            gateways: BTreeSet::new(),
        }
    }

    fn hcm(l: &ListenerSnapshot) -> HttpConnectionManager {
        let Some(filter::ConfigType::TypedConfig(any)) =
            listener(l).filter_chains[0].filters[0].config_type.clone()
        else {
            panic!("typed config expected")
        };
        HttpConnectionManager::decode(&*any.value).unwrap()
    }

    #[test]
    fn a_port_is_scoped_only_when_every_hostname_is_exact() {
        let ok = RouteAction::DirectResponse(200);
        let cases = [
            (vec![], true),
            (vec![vh("a", &["a.example"], ok.clone())], true),
            (
                vec![
                    vh("a", &["a.example"], ok.clone()),
                    vh("b", &["b.example", "c.example"], ok.clone()),
                ],
                true,
            ),
            // A wildcard or hostname-less virtual host needs Envoy's host precedence.
            (
                vec![
                    vh("a", &["a.example"], ok.clone()),
                    vh("w", &["*.a.example"], ok.clone()),
                ],
                false,
            ),
            (vec![vh("any", &["*"], ok.clone())], false),
            // `*` answering 404 with a rate limit is not the plain catch-all.
            (
                vec![Arc::new(VirtualHost {
                    rate_limit: Some(crate::model::policy::RequestRate {
                        per_second: 1,
                        burst: 1,
                    }),
                    ..(*vh("any", &["*"], RouteAction::DirectResponse(404))).clone()
                })],
                false,
            ),
        ];
        for (hosts, want) in cases {
            let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
            assert_eq!(is_scoped(&port(80, hosts)), want, "{names:?}");
        }
    }

    /// The built connection manager of listener `name` in `res`.
    fn built_hcm(res: &crate::resources::Resources, name: &str) -> HttpConnectionManager {
        let any = &res
            .of(LISTENER_TYPE)
            .iter()
            .find(|r| r.name == name)
            .expect("the listener")
            .any;
        let l =
            envoy_types::pb::envoy::config::listener::v3::Listener::decode(&*any.value).unwrap();
        let Some(filter::ConfigType::TypedConfig(any)) =
            l.filter_chains[0].filters[0].config_type.clone()
        else {
            panic!("typed config expected")
        };
        HttpConnectionManager::decode(&*any.value).unwrap()
    }

    /// The scope builder's fragments of `h`, as (header, separator).
    fn key_builder(h: &HttpConnectionManager) -> Vec<(String, String)> {
        use scoped_routes::scope_key_builder::fragment_builder::Type;
        let Some(http_connection_manager::RouteSpecifier::ScopedRoutes(sr)) = &h.route_specifier
        else {
            panic!("scoped routes expected")
        };
        sr.scope_key_builder
            .clone()
            .unwrap()
            .fragments
            .into_iter()
            .map(|f| match f.r#type {
                Some(Type::HeaderValueExtractor(x)) => (x.name, x.element_separator),
                other => panic!("a header extractor expected, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn port_80_keys_hostnames_by_host_and_other_ports_by_host_and_port() {
        let ok = RouteAction::DirectResponse(200);
        let l80 = port(
            80,
            vec![owned("p80", &["a.example"], ok.clone(), Some("a"))],
        );
        let l8080 = port(
            8080,
            vec![
                owned("a", &["a.example"], ok.clone(), Some("a")),
                owned("b", &["b.example", "c.example"], ok.clone(), Some("b")),
                owned("d", &["d.example"], ok.clone(), Some("b")),
            ],
        );
        let res = build(&Snapshot {
            listeners: vec![l80.clone(), l8080.clone()],
            ..Default::default()
        });
        assert_eq!(res.of(LISTENER_TYPE).len(), 2);
        // Port 80: the Host alone, no header written or removed.
        let h80 = built_hcm(&res, "port/80");
        assert_eq!(
            key_builder(&h80),
            vec![(":authority".to_string(), ":".to_string())]
        );
        assert!(h80.early_header_mutation_extensions.is_empty());
        // Port 8080: the Host and the port header the listener writes.
        let h8080 = built_hcm(&res, "port/8080");
        let Some(http_connection_manager::RouteSpecifier::ScopedRoutes(sr)) =
            &h8080.route_specifier
        else {
            panic!("scoped routes expected")
        };
        assert_eq!(sr.name, "port/8080");
        assert_eq!(
            key_builder(&h8080),
            vec![
                (":authority".to_string(), ":".to_string()),
                (PORT_HEADER.to_string(), String::new())
            ]
        );
        assert_eq!(
            h8080.early_header_mutation_extensions,
            early_header_mutation(&l8080)
        );

        let scopes: Vec<ScopedRouteConfiguration> = res
            .of(SCOPED_ROUTE_TYPE)
            .iter()
            .map(|r| ScopedRouteConfiguration::decode(&*r.any.value).unwrap())
            .collect();
        let keys: Vec<(String, String, Vec<String>)> = scopes
            .iter()
            .map(|s| {
                let key = s.key.clone().unwrap().fragments.into_iter().map(|f| {
                    let Some(scoped_route_configuration::key::fragment::Type::StringKey(k)) =
                        f.r#type
                    else {
                        panic!("string key expected")
                    };
                    k
                });
                (
                    s.name.clone(),
                    s.route_configuration_name.clone(),
                    key.collect(),
                )
            })
            .collect();
        let table_80 = "port/80/routes/t/a/0";
        let (table_a, table_b) = ("port/8080/routes/t/a/0", "port/8080/routes/t/b/0");
        assert_eq!(
            keys,
            vec![
                // Each table's anchor, keyed by the table's name (no Host has a `/`).
                (
                    format!("port/80/anchor/{table_80}"),
                    table_80.into(),
                    vec![table_80.into()]
                ),
                (
                    "port/80/scoped/a.example".into(),
                    table_80.into(),
                    vec!["a.example".into()]
                ),
                (
                    format!("port/8080/anchor/{table_a}"),
                    table_a.into(),
                    vec![table_a.into(), "8080".into()]
                ),
                (
                    format!("port/8080/anchor/{table_b}"),
                    table_b.into(),
                    vec![table_b.into(), "8080".into()]
                ),
                (
                    "port/8080/scoped/a.example".into(),
                    table_a.into(),
                    vec!["a.example".into(), "8080".into()]
                ),
                (
                    "port/8080/scoped/b.example".into(),
                    table_b.into(),
                    vec!["b.example".into(), "8080".into()]
                ),
                (
                    "port/8080/scoped/c.example".into(),
                    table_b.into(),
                    vec!["c.example".into(), "8080".into()]
                ),
                (
                    "port/8080/scoped/d.example".into(),
                    table_b.into(),
                    vec!["d.example".into(), "8080".into()]
                ),
            ]
        );
        // One table per tenant here (a few hostnames each), holding its virtual hosts; no
        // catch-all (a request whose key names no scope gets Envoy's 404). Only port 8080's
        // tables remove the port header.
        let rcs: Vec<RouteConfiguration> = res
            .of(ROUTE_TYPE)
            .iter()
            .map(|r| RouteConfiguration::decode(&*r.any.value).unwrap())
            .collect();
        let names: Vec<&str> = rcs.iter().map(|rc| rc.name.as_str()).collect();
        assert_eq!(names, vec![table_80, table_a, table_b]);
        let domains: Vec<&[String]> = rcs[2]
            .virtual_hosts
            .iter()
            .map(|v| v.domains.as_slice())
            .collect();
        assert_eq!(
            domains,
            vec![&["b.example", "c.example"][..], &["d.example"][..]]
        );
        assert!(rcs.iter().all(|rc| rc.ignore_port_in_host_matching));
        assert!(rcs[0].request_headers_to_remove.is_empty());
        assert_eq!(rcs[2].request_headers_to_remove, vec![PORT_HEADER]);

        // Port 8080 alone (or beside an unscoped port 80) keeps its key: a key that changed
        // shape would miss until Envoy had both the new listener and the new scopes.
        let alone = build(&Snapshot {
            listeners: vec![l8080],
            ..Default::default()
        });
        assert_eq!(key_builder(&built_hcm(&alone, "port/8080")).len(), 2);
        assert!(alone.of(SCOPED_ROUTE_TYPE).iter().all(|r| {
            let s = ScopedRouteConfiguration::decode(&*r.any.value).unwrap();
            s.key.unwrap().fragments.len() == 2
        }));
    }

    #[test]
    fn a_port_with_a_wildcard_keeps_one_route_configuration() {
        let ok = RouteAction::DirectResponse(200);
        let l = port(
            80,
            vec![
                vh("a", &["a.example"], ok.clone()),
                vh("w", &["*.a.example"], ok.clone()),
            ],
        );
        let h = hcm(&l);
        assert!(matches!(
            h.route_specifier,
            Some(http_connection_manager::RouteSpecifier::Rds(_))
        ));
        assert!(h.early_header_mutation_extensions.is_empty());
        let res = build(&Snapshot {
            listeners: vec![l],
            ..Default::default()
        });
        assert!(res.of(SCOPED_ROUTE_TYPE).is_empty());
        let rc = RouteConfiguration::decode(&*res.of(ROUTE_TYPE)[0].any.value).unwrap();
        assert_eq!(rc.name, "port/80");
        assert_eq!(rc.virtual_hosts.len(), 3);
    }
}
