//! [`Config`] and [`DialPolicy`]: the settings shared by the sans-IO cores
//! ([`proto`](crate::proto)) and the tokio driver.

use std::collections::HashMap;
use std::fmt;

use crate::scope::Scope;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jid::Jid;

use crate::{Host, StreamHost};

/// Settings of the requester and target (the cores of [`proto`](crate::proto) and the
/// tokio `S5b`). `Default` gives the values documented on each field.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses the requester's listener binds and offers as its own streamhosts.
    /// `None` (default): this host's non-loopback addresses, one IPv4 and one IPv6 (the
    /// ones the system routes from), link-local left out, found when first needed.
    pub listen: Option<Vec<IpAddr>>,
    /// The listener's port; default 0 (any free port, one per address).
    pub listen_port: u16,
    /// Extra addresses offered after the local ones (for example a NAT's external
    /// address forwarded to `listen_port`). Default: none.
    pub external: Vec<(Host, u16)>,
    /// Proxies offered after our own streamhosts, before those passed to
    /// `S5b::connect`. Default: none (the facade discovers them).
    pub proxies: Vec<StreamHost>,
    /// How long the requester waits for the target's answer to an offer. Default 60 s:
    /// the target's whole connect budget plus the time its user takes is not in it, but
    /// its racing is.
    pub offer_timeout: Duration,
    /// Iq round trips to a proxy (address query, activation). Default 15 s, the same as
    /// Spark's response timeout.
    pub iq_timeout: Duration,
    /// The target's total budget for connecting to any offered streamhost. Default 10 s.
    pub connect_budget: Duration,
    /// The delay between starting attempts at successive streamhosts (staggered racing,
    /// RFC 8305 style; the next also starts at once when all running ones failed).
    /// Default 250 ms.
    pub stagger: Duration,
    /// The time one SOCKS5 handshake (either side) may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Which addresses a peer may make us dial. Default: [`DialPolicy::public_only`]: a
    /// stranger's offer cannot make us connect to this host, our LAN or anything but a
    /// public address (BAD-INPUT C3). Peers on one LAN want [`DialPolicy::lan`]; tests and
    /// same-host transfers [`DialPolicy::allow_all`].
    pub dial_policy: DialPolicy,
    /// The most streamhosts of one offer the target tries, the first ones in the offer's
    /// order (the requester's preference); the rest are ignored. Default 8 (BAD-INPUT C2,
    /// I3): real clients offer one to five.
    pub max_candidates: usize,
    /// The most outbound SOCKS5 connections (TCP connect and handshake) the tokio `S5b`
    /// has in flight at once, over all its sessions; further attempts wait for a place,
    /// within their own deadline. Default 64 (BAD-INPUT I3): a flood of offers cannot make
    /// us open thousands of sockets at once.
    pub max_connects: usize,
    /// Streamhosts that recently failed to connect, skipped by the target. Shared by every
    /// session made from this configuration and its clones. Default
    /// [`Blacklist::default`]: 2 failures → skipped for 2 hours (Smack's rule).
    pub blacklist: Blacklist,
    /// The prefix of the iq ids the cores generate; each appends the sid and a counter.
    /// Default `"s5b-"`. The tokio driver appends a random salt per connection, so ids
    /// are not guessable; a simulation keeps it fixed for determinism.
    pub id_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: None,
            listen_port: 0,
            external: Vec::new(),
            proxies: Vec::new(),
            offer_timeout: Duration::from_secs(60),
            iq_timeout: Duration::from_secs(15),
            connect_budget: Duration::from_secs(10),
            stagger: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(10),
            dial_policy: DialPolicy::public_only(),
            max_candidates: 8,
            max_connects: 64,
            blacklist: Blacklist::default(),
            id_prefix: String::from("s5b-"),
        }
    }
}

impl Config {
    /// Sets [`listen`](Self::listen).
    pub fn listen(&mut self, addrs: Vec<IpAddr>) -> &mut Self {
        self.listen = Some(addrs);
        self
    }
    /// Sets [`proxies`](Self::proxies).
    pub fn proxies(&mut self, proxies: Vec<StreamHost>) -> &mut Self {
        self.proxies = proxies;
        self
    }
    /// Sets [`connect_budget`](Self::connect_budget).
    pub fn connect_budget(&mut self, d: Duration) -> &mut Self {
        self.connect_budget = d;
        self
    }
    /// Sets [`stagger`](Self::stagger).
    pub fn stagger(&mut self, d: Duration) -> &mut Self {
        self.stagger = d;
        self
    }
    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(&mut self, d: Duration) -> &mut Self {
        self.handshake_timeout = d;
        self
    }
    /// Sets [`id_prefix`](Self::id_prefix).
    pub fn id_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.id_prefix = prefix.into();
        self
    }
    /// Sets [`dial_policy`](Self::dial_policy).
    pub fn dial_policy(&mut self, p: DialPolicy) -> &mut Self {
        self.dial_policy = p;
        self
    }
    /// Sets [`max_candidates`](Self::max_candidates) (at least 1).
    pub fn max_candidates(&mut self, n: usize) -> &mut Self {
        self.max_candidates = n.max(1);
        self
    }
    /// Sets [`max_connects`](Self::max_connects) (at least 1).
    pub fn max_connects(&mut self, n: usize) -> &mut Self {
        self.max_connects = n.max(1);
        self
    }
    /// Sets [`blacklist`](Self::blacklist).
    pub fn blacklist(&mut self, b: Blacklist) -> &mut Self {
        self.blacklist = b;
        self
    }
}

/// Streamhosts (host and port, as offered) that failed to connect recently: after
/// `threshold` failures within `lifetime` of each other a streamhost is skipped until
/// `lifetime` has passed since its last failure. What counts as a failure: the name does
/// not resolve, the TCP connect fails, or nothing answers within the handshake timeout. A
/// SOCKS5 refusal does not count: any peer could make a good proxy refuse us (with a
/// DST.ADDR it never activated) and so get it blacklisted.
///
/// Sans-IO: the caller passes the time. Clones share the list. At most `max_entries`
/// streamhosts are remembered; the oldest failure goes first.
#[derive(Clone)]
pub struct Blacklist(Arc<Mutex<BlacklistInner>>);

#[derive(Debug)]
struct BlacklistInner {
    threshold: u32,
    lifetime: Duration,
    max_entries: usize,
    /// (host, port) → (failures, time of the last one).
    entries: HashMap<(Host, u16), (u32, Instant)>,
}

impl Blacklist {
    /// Skips a streamhost after `threshold` failures for `lifetime`; remembers at most
    /// `max_entries`. A `threshold` of 0 never skips anything.
    pub fn new(threshold: u32, lifetime: Duration, max_entries: usize) -> Self {
        Self(Arc::new(Mutex::new(BlacklistInner {
            threshold,
            lifetime,
            max_entries: max_entries.max(1),
            entries: HashMap::new(),
        })))
    }

    /// Never skips anything.
    pub fn disabled() -> Self {
        Self::new(0, Duration::ZERO, 1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BlacklistInner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `host:port` is skipped at `now`.
    pub fn is_blocked(&self, host: &Host, port: u16, now: Instant) -> bool {
        let b = self.lock();
        b.threshold > 0
            && b.entries
                .get(&(host.clone(), port))
                .is_some_and(|(n, at)| *n >= b.threshold && !expired(*at, b.lifetime, now))
    }

    /// Counts a failure of `host:port` at `now`.
    pub fn record_failure(&self, host: &Host, port: u16, now: Instant) {
        let mut b = self.lock();
        if b.threshold == 0 {
            return;
        }
        let lifetime = b.lifetime;
        let key = (host.clone(), port);
        if !b.entries.contains_key(&key) && b.entries.len() >= b.max_entries {
            b.entries.retain(|_, (_, at)| !expired(*at, lifetime, now));
            while b.entries.len() >= b.max_entries {
                let Some(oldest) = b
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                b.entries.remove(&oldest);
            }
        }
        let e = b.entries.entry(key).or_insert((0, now));
        if expired(e.1, lifetime, now) {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = now;
    }

    /// Forgets `host:port`'s failures (it just worked).
    pub fn record_success(&self, host: &Host, port: u16) {
        self.lock().entries.remove(&(host.clone(), port));
    }

    /// How many streamhosts have failures on record.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no streamhost has failures on record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `lifetime` has passed since `at` (never, if that instant is past the clock's end).
fn expired(at: Instant, lifetime: Duration, now: Instant) -> bool {
    at.checked_add(lifetime).is_some_and(|t| now >= t)
}

impl Default for Blacklist {
    /// 2 failures → skipped for 2 hours; 1024 streamhosts remembered.
    fn default() -> Self {
        Self::new(2, Duration::from_secs(2 * 3600), 1024)
    }
}

impl fmt::Debug for Blacklist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.lock();
        f.debug_struct("Blacklist")
            .field("threshold", &b.threshold)
            .field("lifetime", &b.lifetime)
            .field("entries", &b.entries.len())
            .finish()
    }
}

/// Decides which addresses a peer may make us dial (as target): `(peer, streamhost,
/// resolved address) -> allowed`.
#[derive(Clone)]
pub struct DialPolicy(Arc<PolicyFn>);

type PolicyFn = dyn Fn(&Jid, &StreamHost, &SocketAddr) -> bool + Send + Sync;

impl DialPolicy {
    /// A policy from a function.
    pub fn new(f: impl Fn(&Jid, &StreamHost, &SocketAddr) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Allows every address, this host's included (what deployed clients do; what tests and
    /// same-host transfers need). Not for a client that takes offers from strangers.
    pub fn allow_all() -> Self {
        Self::new(|_, _, _| true)
    }

    /// The default: only public addresses ([`Scope::Public`](crate::scope::Scope)): never
    /// loopback, unspecified, link-local, multicast, broadcast, reserved or private ranges,
    /// nor the IPv4-mapped, IPv4-compatible, NAT64 or 6to4 forms of them.
    pub fn public_only() -> Self {
        Self::new(|_, _, a| crate::scope::scope(a.ip()) == Scope::Public)
    }

    /// Public and private addresses (RFC 1918, shared 100.64/10, unique local): for peers
    /// that share a LAN. Still never this host, link-local, multicast or reserved.
    pub fn lan() -> Self {
        Self::new(|_, _, a| matches!(crate::scope::scope(a.ip()), Scope::Public | Scope::Private))
    }

    /// Everything but this host: refuses loopback, unspecified, link-local and multicast
    /// addresses (mapped forms included), allows private and reserved ones.
    pub fn no_loopback() -> Self {
        Self::new(|_, _, a| {
            !matches!(
                crate::scope::scope(a.ip()),
                Scope::Loopback | Scope::Unspecified | Scope::LinkLocal | Scope::Multicast
            )
        })
    }

    /// Whether `peer` may make us dial `addr` (resolved from `sh`).
    pub fn allows(&self, peer: &Jid, sh: &StreamHost, addr: &SocketAddr) -> bool {
        (self.0)(peer, sh, addr)
    }
}

impl fmt::Debug for DialPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DialPolicy(..)")
    }
}

/// Whether `ip` is link-local (169.254/16, fe80::/10).
pub(crate) fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}
