//! Connections per client address: one host may hold at most `connections_per_ip_max` of the
//! server's slots, so a flood from one address leaves the rest to everyone else.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

/// Open connections by client address (IPv6 by its /64, as the write limit keys them).
pub(super) struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's share of its address's count, given back when dropped.
pub(super) struct IpSlot {
    owner: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The most one address may hold.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// A slot for a new connection from `ip`, or `None` when it already holds its share.
    pub(super) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = super::write_limit::key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            owner: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The per-address limit for `connections_per_ip_max = 0`: a quarter of the connection cap, at
/// least 8 (and never above the cap).
pub fn connections_per_ip_for(configured: usize, connections_max: usize) -> usize {
    match configured {
        0 => (connections_max / 4).max(8).min(connections_max.max(1)),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_share_and_gives_it_back() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("test");
        let b: IpAddr = "10.0.0.2".parse().expect("test");
        let first = per_ip.take(a).expect("first");
        let _second = per_ip.take(a).expect("second");
        assert!(per_ip.take(a).is_none(), "a third from the same address");
        assert!(per_ip.take(b).is_some(), "another address is not affected");
        drop(first);
        assert!(
            per_ip.take(a).is_some(),
            "a closed connection frees its slot"
        );
        let v6a: IpAddr = "2001:db8::1".parse().expect("test");
        let v6b: IpAddr = "2001:db8::2".parse().expect("test");
        let _x = per_ip.take(v6a).expect("v6");
        let _y = per_ip.take(v6b).expect("v6 same /64");
        assert!(per_ip.take(v6a).is_none(), "one /64 is one host");
    }

    #[test]
    fn addresses_with_no_connection_are_forgotten() {
        let per_ip = PerIp::new(4);
        let slots: Vec<_> = (0..100u8)
            .filter_map(|i| per_ip.take(IpAddr::from([10, 0, 0, i])))
            .collect();
        assert_eq!(per_ip.addresses(), 100);
        drop(slots);
        assert_eq!(per_ip.addresses(), 0);
    }

    #[test]
    fn the_default_share_is_a_quarter() {
        assert_eq!(connections_per_ip_for(0, 8192), 2048);
        assert_eq!(connections_per_ip_for(0, 64), 16);
        assert_eq!(connections_per_ip_for(0, 4), 4);
        assert_eq!(connections_per_ip_for(3, 8192), 3);
    }
}
