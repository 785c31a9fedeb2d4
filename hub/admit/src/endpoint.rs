//! Endpoints: where a connection to a tenant's endpoint really goes, and whether the tenant may
//! send the data plane there.
//!
//! The string an agent sends is not where the data plane connects. `0.0.0.0` and `::` are
//! connected by the kernel to this host's loopback; an IPv4-mapped IPv6 address is the IPv4
//! address; NAT64, 6to4, Teredo and IPv4-compatible addresses are delivered to the IPv4 address
//! they carry. [`destinations`] is the one rule for that; [`check`] judges every destination
//! (cluster CIDRs, special addresses, the hub's and data plane's own addresses) and is what
//! admission calls for every endpoint. The isolation property test's oracle and
//! docs/security.md use the same rule.
//!
//! Where it sits: inside `admit`, pure. The host's interface addresses come in through
//! [`Reserved`], which the runtime (`fleetgate-hub`'s `config::Config::reserved`) builds
//! from the configuration and the addresses `host` reads.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use super::Rejection;
use crate::model::policy::Cluster;

/// How a connection to an endpoint address reaches one of its destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// The address as written.
    Literal,
    /// The unspecified address (`0.0.0.0`, `::`): the kernel connects to this host's loopback.
    ThisHost,
    /// `::ffff:a.b.c.d`: an IPv4 connection to `a.b.c.d`.
    Ipv4Mapped,
    /// `::a.b.c.d` (deprecated): tunnelled to `a.b.c.d`.
    Ipv4Compatible,
    /// `64:ff9b::/96` or the local-use `64:ff9b:1::/48` (RFC 6052/8215): translated to IPv4.
    Nat64,
    /// `2002::/16` (RFC 3056): tunnelled to the 6to4 relay at the embedded IPv4 address.
    SixToFour,
    /// `2001::/32` (RFC 4380): the Teredo server and the client's obfuscated IPv4 address.
    Teredo,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Literal => "as written",
            Via::ThisHost => "the unspecified address, which the kernel connects to this host",
            Via::Ipv4Mapped => "the IPv4 address of an IPv4-mapped IPv6 address",
            Via::Ipv4Compatible => "the IPv4 address inside an IPv4-compatible IPv6 address",
            Via::Nat64 => "the IPv4 address inside a NAT64 address",
            Via::SixToFour => "the IPv4 address inside a 6to4 address",
            Via::Teredo => "an IPv4 address inside a Teredo address",
        })
    }
}

/// One address a connection to an endpoint may be delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub ip: IpAddr,
    pub via: Via,
}

/// Every address a connection to `ip` may be delivered to. An IPv4-mapped address is only its
/// IPv4 address (that is the connection the kernel makes); every other form is judged as written
/// and by every IPv4 address it embeds, and the unspecified address also by this host's loopback.
pub fn destinations(ip: IpAddr) -> Vec<Destination> {
    let mut out = Vec::new();
    match ip {
        IpAddr::V4(v4) => push_v4(&mut out, v4, Via::Literal),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                push_v4(&mut out, v4, Via::Ipv4Mapped);
            } else {
                out.push(Destination {
                    ip,
                    via: Via::Literal,
                });
                if v6.is_unspecified() {
                    out.push(Destination {
                        ip: Ipv6Addr::LOCALHOST.into(),
                        via: Via::ThisHost,
                    });
                }
                for (v4, via) in embedded_ipv4(v6) {
                    push_v4(&mut out, v4, via);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn push_v4(out: &mut Vec<Destination>, v4: Ipv4Addr, via: Via) {
    out.push(Destination { ip: v4.into(), via });
    if v4.is_unspecified() {
        out.push(Destination {
            ip: Ipv4Addr::LOCALHOST.into(),
            via: Via::ThisHost,
        });
    }
}

/// The IPv4 addresses an IPv6 address carries by a translation or tunnelling scheme.
fn embedded_ipv4(v6: Ipv6Addr) -> Vec<(Ipv4Addr, Via)> {
    let b = v6.octets();
    let v4 = |o: [u8; 4]| Ipv4Addr::from(o);
    let s = v6.segments();
    let mut out = Vec::new();
    // IPv4-compatible ::a.b.c.d (not :: or ::1, which are themselves).
    if b[..12].iter().all(|x| *x == 0) && !v6.is_unspecified() && !v6.is_loopback() {
        out.push((v4([b[12], b[13], b[14], b[15]]), Via::Ipv4Compatible));
    }
    // The well-known NAT64 prefix 64:ff9b::/96.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        out.push((v4([b[12], b[13], b[14], b[15]]), Via::Nat64));
    }
    // The local-use NAT64 prefix 64:ff9b:1::/48 may be cut at /48, /56, /64 or /96 (RFC 6052
    // section 2.2; byte 8 is the reserved "u" octet): every possible embedding is a destination.
    if s[..3] == [0x64, 0xff9b, 1] {
        out.push((v4([b[6], b[7], b[9], b[10]]), Via::Nat64));
        out.push((v4([b[7], b[9], b[10], b[11]]), Via::Nat64));
        out.push((v4([b[9], b[10], b[11], b[12]]), Via::Nat64));
        out.push((v4([b[12], b[13], b[14], b[15]]), Via::Nat64));
    }
    // 6to4: 2002:AABB:CCDD::/48.
    if s[0] == 0x2002 {
        out.push((v4([b[2], b[3], b[4], b[5]]), Via::SixToFour));
    }
    // Teredo: 2001:0000:<server>:<flags>:<port>:<client XOR ones>.
    if s[0] == 0x2001 && s[1] == 0 {
        out.push((v4([b[4], b[5], b[6], b[7]]), Via::Teredo));
        out.push((v4([!b[12], !b[13], !b[14], !b[15]]), Via::Teredo));
    }
    out
}

/// The hub's and the data plane's own addresses, as the host has them: no tenant endpoint may
/// lead to one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reserved {
    /// Listening sockets of the hub and the data plane, as configured. One bound to the
    /// unspecified address is reached through every address of this host.
    pub listeners: BTreeSet<SocketAddr>,
    /// Addresses no endpoint may lead to on any port: the data plane's advertised address, the
    /// L4 pools, and the operator's `reservedAddresses` (NAT, load-balancer VIPs, other hosts).
    pub networks: BTreeSet<IpNet>,
    /// This host's interface addresses (the runtime's `host::interface_addresses`), re-read at
    /// configuration reload and when the interfaces change.
    pub host: BTreeSet<IpAddr>,
}

impl Reserved {
    /// Whether `ip` is an address of this host: loopback, unspecified or an interface address.
    fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || ip.is_unspecified() || self.host.contains(&ip)
    }

    /// The reserved listener or network a connection to `ip`:`port` would reach, if any.
    pub fn reached_by(&self, ip: IpAddr, port: u16) -> Option<String> {
        if let Some(n) = self.networks.iter().find(|n| n.contains(&ip)) {
            return Some(format!("reserved address {n}"));
        }
        self.listeners
            .iter()
            .find(|l| {
                l.port() == port && (l.ip() == ip || (l.ip().is_unspecified() && self.is_local(ip)))
            })
            .map(|l| format!("listener {l}"))
    }
}

/// Loopback, link-local, unspecified, multicast and broadcast addresses (and the rest of
/// 0.0.0.0/8): never a tenant endpoint unless the operator allowed them for that cluster.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.octets()[0] == 0
                || v4.is_multicast()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
        }
    }
}

/// Admits one endpoint of `cluster`: every destination of its address must be inside the
/// cluster's CIDRs, not special (unless allowed) and not the hub's or data plane's own. Returns
/// the socket address the data plane is given (an IPv4-mapped address becomes its IPv4 address).
pub fn check(
    ip: IpAddr,
    port: u16,
    cluster: &Cluster,
    reserved: &Reserved,
) -> Result<SocketAddr, Rejection> {
    judge(
        ip,
        port,
        Some(cluster),
        cluster.allow_special_addresses,
        reserved,
    )
}

/// Admits an IP literal an AI backend names as its external host (outside the tenant's
/// clusters, allowed by its egress list instead of the CIDRs): every destination must still be
/// neither special (unless allowed for `cluster`) nor the hub's or data plane's own.
pub fn check_external(
    ip: IpAddr,
    port: u16,
    cluster: &Cluster,
    reserved: &Reserved,
) -> Result<SocketAddr, Rejection> {
    judge(ip, port, None, cluster.allow_special_addresses, reserved)
}

/// The rules of [`check`]; the CIDR rule only with `cidrs_of`.
fn judge(
    ip: IpAddr,
    port: u16,
    cidrs_of: Option<&Cluster>,
    allow_special: bool,
    reserved: &Reserved,
) -> Result<SocketAddr, Rejection> {
    let written = SocketAddr::new(ip, port);
    let dests = destinations(ip);
    for d in &dests {
        let leads = match d.via {
            Via::Literal => String::new(),
            via => format!(" (it leads to {}: {via})", d.ip),
        };
        if let Some(cluster) = cidrs_of
            && !cluster.endpoint_cidrs.iter().any(|n| n.contains(&d.ip))
        {
            return Err(Rejection {
                reason: "EndpointNotAllowed",
                message: format!(
                    "endpoint {written}{leads} is outside the networks registered for cluster {} ({}); ask the hub operator to add its network",
                    cluster.name,
                    cluster
                        .endpoint_cidrs
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if is_special(d.ip) && !allow_special {
            return Err(Rejection {
                reason: "EndpointNotAllowed",
                message: format!(
                    "endpoint {written}{leads} is a loopback, link-local, unspecified or multicast address, which the hub refuses"
                ),
            });
        }
        if let Some(what) = reserved.reached_by(d.ip, port) {
            return Err(Rejection {
                reason: "EndpointNotAllowed",
                message: format!(
                    "endpoint {written}{leads} is an address of the hub or the data plane itself ({what}); use an address of the cluster's own nodes or pods"
                ),
            });
        }
    }
    Ok(SocketAddr::new(ip.to_canonical(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dests(s: &str) -> Vec<(String, Via)> {
        destinations(ip(s))
            .into_iter()
            .map(|d| (d.ip.to_string(), d.via))
            .collect()
    }

    #[test]
    fn destinations_follow_what_the_kernel_connects_to() {
        use Via::*;
        let table: &[(&str, &[(&str, Via)])] = &[
            ("10.1.2.3", &[("10.1.2.3", Literal)]),
            ("0.0.0.0", &[("0.0.0.0", Literal), ("127.0.0.1", ThisHost)]),
            ("::", &[("::", Literal), ("::1", ThisHost)]),
            ("::1", &[("::1", Literal)]),
            ("::ffff:10.1.2.3", &[("10.1.2.3", Ipv4Mapped)]),
            (
                "::ffff:0.0.0.0",
                &[("0.0.0.0", Ipv4Mapped), ("127.0.0.1", ThisHost)],
            ),
            ("::ffff:127.0.0.1", &[("127.0.0.1", Ipv4Mapped)]),
            (
                "::127.0.0.1",
                &[("::7f00:1", Literal), ("127.0.0.1", Ipv4Compatible)],
            ),
            (
                "64:ff9b::7f00:1",
                &[("64:ff9b::7f00:1", Literal), ("127.0.0.1", Nat64)],
            ),
            (
                "2002:7f00:1::",
                &[("2002:7f00:1::", Literal), ("127.0.0.1", SixToFour)],
            ),
            (
                // Server 65.54.227.120, client 127.0.0.1 obfuscated (XOR ones: 80ff:fffe).
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                &[
                    ("2001:0:4136:e378:8000:63bf:80ff:fffe", Literal),
                    ("65.54.227.120", Teredo),
                    ("127.0.0.1", Teredo),
                ],
            ),
        ];
        for (input, want) in table {
            let mut want: Vec<(String, Via)> =
                want.iter().map(|(a, v)| (a.to_string(), *v)).collect();
            want.sort_by_key(|(a, v)| (*v, a.clone()));
            let mut got = dests(input);
            got.sort_by_key(|(a, v)| (*v, a.clone()));
            assert_eq!(got, want, "{input}");
        }
        // Local-use NAT64: 127.0.0.1 in the /96 embedding is found among the candidates.
        assert!(
            dests("64:ff9b:1::7f00:1").contains(&("127.0.0.1".to_string(), Via::Nat64)),
            "{:?}",
            dests("64:ff9b:1::7f00:1")
        );
        // /48 embedding: bits 48..63 and 72..87 (byte 8 is the u octet).
        assert!(
            dests("64:ff9b:1:7f00:0:100::").contains(&("127.0.0.1".to_string(), Via::Nat64)),
            "{:?}",
            dests("64:ff9b:1:7f00:0:100::")
        );
    }

    fn cluster(cidrs: &[&str], allow_special: bool) -> Cluster {
        Cluster {
            name: "east".into(),
            endpoint_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            allow_special_addresses: allow_special,
        }
    }

    fn reserved() -> Reserved {
        Reserved {
            listeners: [
                "127.0.0.1:18000",
                "0.0.0.0:18080",
                "[::1]:19000",
                "10.1.0.9:7443",
            ]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
            networks: ["10.9.0.1/32", "10.8.0.0/24"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
            host: [ip("10.1.0.7"), ip("fd00::7")].into(),
        }
    }

    /// Issue 8's holes, each against a careless operator: the cluster's CIDRs cover everything
    /// and special addresses are allowed, so only the own-address rule stands in the way.
    #[test]
    fn no_form_of_an_address_reaches_the_hub_or_the_data_plane() {
        let wide = cluster(&["0.0.0.0/0", "::/0"], true);
        let r = reserved();
        for (addr, port) in [
            // 1. the unspecified address connects to loopback
            ("0.0.0.0", 18000),
            ("0.0.0.0", 18080),
            ("::", 19000),
            ("::ffff:0.0.0.0", 18000),
            // 2. the host's own interface addresses reach a listener bound to all interfaces
            ("10.1.0.7", 18080),
            ("fd00::7", 18080),
            // 3. IPv6 forms that embed a reserved IPv4 address
            ("::ffff:127.0.0.1", 18000),
            ("::127.0.0.1", 18000),
            ("64:ff9b::7f00:1", 18000),
            ("64:ff9b:1::7f00:1", 18000),
            ("2002:7f00:1::", 18000),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", 18000),
            ("64:ff9b::a01:7", 18080),
            // listeners and networks as before
            ("127.0.0.1", 18000),
            ("127.0.0.53", 18080),
            ("10.1.0.9", 7443),
            ("10.9.0.1", 80),
            ("10.8.0.200", 443),
            ("::ffff:10.9.0.1", 80),
        ] {
            let err = check(ip(addr), port, &wide, &r).unwrap_err();
            assert_eq!(err.reason, "EndpointNotAllowed", "{addr}:{port}");
            assert!(
                err.message.contains("the hub or the data plane itself"),
                "{addr}:{port}: {}",
                err.message
            );
        }
        for (addr, port) in [
            ("127.0.0.1", 18001),
            ("10.1.0.7", 8080),
            ("10.1.0.9", 8080),
            ("::1", 18000),
            ("0.0.0.0", 8080),
            ("64:ff9b::a01:203", 8080),
        ] {
            assert!(check(ip(addr), port, &wide, &r).is_ok(), "{addr}:{port}");
        }
    }

    #[test]
    fn embedded_addresses_are_judged_by_the_cidrs_and_special_rules_too() {
        let r = Reserved::default();
        let east = cluster(&["10.1.0.0/16", "64:ff9b::/96", "2002::/16"], false);
        // NAT64 of an address in the cluster's network: admitted as written.
        assert_eq!(
            check(ip("64:ff9b::a01:203"), 80, &east, &r).unwrap(),
            "[64:ff9b::a01:203]:80".parse().unwrap()
        );
        // IPv4-mapped: admitted as the IPv4 connection it is.
        assert_eq!(
            check(ip("::ffff:10.1.2.3"), 80, &east, &r).unwrap(),
            "10.1.2.3:80".parse().unwrap()
        );
        let anywhere = cluster(&["0.0.0.0/0"], true);
        assert_eq!(
            check(ip("::ffff:0.0.0.0"), 80, &anywhere, &r).unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        for (addr, what) in [
            ("64:ff9b::a02:203", "outside the networks"),
            ("::ffff:10.2.2.3", "outside the networks"),
            ("2002:a02:203::1", "outside the networks"),
            ("64:ff9b::a9fe:a9fe", "outside the networks"),
        ] {
            let err = check(ip(addr), 80, &east, &r).unwrap_err();
            assert!(err.message.contains(what), "{addr}: {}", err.message);
            assert!(
                err.message.contains("it leads to"),
                "{addr}: {}",
                err.message
            );
        }
        // Metadata (169.254.169.254) through NAT64, inside CIDRs that cover it: special.
        let meta = cluster(&["64:ff9b::/96", "169.254.0.0/16"], false);
        let err = check(ip("64:ff9b::a9fe:a9fe"), 80, &meta, &r).unwrap_err();
        assert!(err.message.contains("link-local"), "{}", err.message);
    }
}
