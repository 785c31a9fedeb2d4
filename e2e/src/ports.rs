//! Free loopback ports: bind port 0, note what the kernel chose, release it.
//!
//! There is a window between release and reuse in which another process could take the port;
//! on a test machine that is rare enough, and the process that loses the race fails loudly.
//! Any address in 127.0.0.0/8 works on Linux loopback without setup, which is how tenants get
//! their own ranges (127.0.1.x for one, 127.0.2.x for another).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use anyhow::Context;

/// The loopback address everything shared (etcd, API servers, hub, Envoy) listens on.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A free TCP port on `ip`.
pub fn free_port_on(ip: IpAddr) -> anyhow::Result<u16> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(listener.local_addr()?.port())
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768-60999), where the kernel
/// picks the source ports of outgoing connections, and below the node port range. A port the
/// harness picks now and a process binds later (often seconds later, after a hub and API
/// servers started) is then never taken meanwhile by some test's outgoing connection; seen
/// happening with ports the kernel handed out from the ephemeral range.
pub const LISTEN_PORTS: std::ops::RangeInclusive<u16> = 10000..=29999;

/// A free TCP port on 127.0.0.1, in [`LISTEN_PORTS`].
pub fn free_port() -> anyhow::Result<u16> {
    free_port_in(LOCALHOST, LISTEN_PORTS)
}

/// A free address on 127.0.0.1.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::new(LOCALHOST, free_port()?))
}

/// A port in `range` that is free on `ip`, tried in a random order (for NodePorts, which must be
/// in the API server's node port range and which the test binds itself).
pub fn free_port_in(ip: IpAddr, range: std::ops::RangeInclusive<u16>) -> anyhow::Result<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(range.clone());
        if TcpListener::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port in {range:?} on {ip} after 200 tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable_on_other_loopback_addresses() {
        for ip in ["127.0.0.1", "127.0.1.7", "127.0.2.7"] {
            let ip: IpAddr = ip.parse().unwrap();
            let port = free_port_on(ip).unwrap();
            assert_ne!(port, 0);
            TcpListener::bind((ip, port)).expect("the port is free again");
        }
    }

    #[test]
    fn free_ports_on_localhost_stay_out_of_the_ephemeral_range() {
        for _ in 0..20 {
            let port = free_port().unwrap();
            assert!(LISTEN_PORTS.contains(&port), "{port}");
        }
    }

    #[test]
    fn ports_in_a_range_stay_in_it() {
        let port = free_port_in(LOCALHOST, 30000..=32767).unwrap();
        assert!((30000..=32767).contains(&port));
    }
}
