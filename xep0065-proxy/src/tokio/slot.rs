//! The per-IP and handshake caps (BAD-INPUT E7, E8): each connection holds a [`Slot`] from
//! accept until it leaves the proxy.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::lock;
use crate::ProxyConfig;

/// Connections counted against the per-IP and handshake caps.
#[derive(Debug, Default)]
pub(super) struct Counts {
    per_ip: HashMap<IpAddr, usize>,
    /// Connections in their handshake, oldest first, each with the signal that ends it.
    handshakes: BTreeMap<u64, Arc<Notify>>,
    next: u64,
}

impl Counts {
    /// Connections in their SOCKS5 handshake.
    pub(super) fn handshakes(&self) -> usize {
        self.handshakes.len()
    }
}

/// One connection's place in [`Counts`] (its IP's pending count, and while in its
/// handshake, a handshake place): given back when dropped. `Counts` has a lock of its own,
/// never held with the state's, so a slot may be dropped under either.
#[derive(Debug)]
pub(super) struct Slot {
    ip: IpAddr,
    /// Its key among the handshakes; `None` once the handshake is over.
    handshake: Option<u64>,
    evict: Arc<Notify>,
    counts: Arc<Mutex<Counts>>,
}

impl Slot {
    /// Takes a place for a new connection from `ip`, or `None` when its IP is at its cap.
    ///
    /// When all `max_handshakes` places are taken, the oldest handshake is ended to make
    /// room (its task sees [`evicted`](Self::evicted)): a legitimate handshake takes a
    /// round trip, a slowloris one holds on for the whole deadline, so under a flood the
    /// newest connections win and the flood can only displace itself. Refusing the newest
    /// instead would let 32 connections from each of 32 addresses lock every client out
    /// for the handshake deadline, again and again.
    pub(super) fn take(
        counts: &Arc<Mutex<Counts>>,
        ip: IpAddr,
        config: &ProxyConfig,
    ) -> Option<Self> {
        let mut c = lock(counts);
        let n = c.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= config.max_pending_per_ip || config.max_handshakes == 0 {
            return None;
        }
        while c.handshakes.len() >= config.max_handshakes {
            let Some((_, oldest)) = c.handshakes.pop_first() else {
                break;
            };
            oldest.notify_one();
        }
        c.per_ip.insert(ip, n + 1);
        let key = c.next;
        c.next += 1;
        let evict = Arc::new(Notify::new());
        c.handshakes.insert(key, evict.clone());
        Some(Self {
            ip,
            handshake: Some(key),
            evict,
            counts: counts.clone(),
        })
    }

    /// Resolves when the handshake was ended to make room for a newer one. A permit is
    /// stored, so an eviction before the first poll is not lost.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// The handshake is over: the connection now only waits for activation.
    pub(super) fn handshake_done(&mut self) {
        if let Some(key) = self.handshake.take() {
            lock(&self.counts).handshakes.remove(&key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        if let Some(key) = self.handshake {
            c.handshakes.remove(&key);
        }
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_handshake_table_ends_its_oldest_handshake() {
        let mut config = ProxyConfig::new("proxy.example.org".parse().unwrap());
        config.max_handshakes = 2;
        config.max_pending_per_ip = 8;
        let counts = Arc::new(Mutex::new(Counts::default()));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = Slot::take(&counts, ip, &config).unwrap();
        let mut second = Slot::take(&counts, ip, &config).unwrap();
        let third = Slot::take(&counts, ip, &config).unwrap();
        assert_eq!(lock(&counts).handshakes(), 2);
        // The oldest is told to end; the others are not.
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted())
            .await
            .unwrap();
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(20), third.evicted());
        assert!(quiet.await.is_err());
        second.handshake_done();
        assert_eq!(lock(&counts).handshakes(), 1);
        drop((first, second, third));
        assert_eq!(lock(&counts).handshakes(), 0);
        assert!(lock(&counts).per_ip.is_empty());
    }
}
