//! This host's own addresses: a listener of the hub or the data plane bound to all interfaces is
//! reached through each of them, so `admit::Reserved` reserves them (issue 8).
//!
//! Where it sits: beside the data path, read by `fleet` at start, at configuration reload and
//! when the interfaces change (`reload::run` compares them every poll).

use std::collections::BTreeSet;
use std::net::IpAddr;

/// Every address of every interface of this host, loopback included.
pub fn interface_addresses() -> std::io::Result<BTreeSet<IpAddr>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| i.ip())
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_has_at_least_its_loopback_address() {
        let addrs = super::interface_addresses().expect("interfaces are readable");
        assert!(
            addrs.iter().any(|a| a.is_loopback()),
            "no loopback address among {addrs:?}"
        );
    }
}
