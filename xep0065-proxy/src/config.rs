//! [`ProxyConfig`]: the settings of the proxy, shared by the sans-IO [`Broker`](crate::proto::Broker)
//! and the tokio service.

use std::net::SocketAddr;
use std::time::Duration;

use jid::Jid;
use xep0065_s5b::Host;

/// Settings of a proxy. [`ProxyConfig::new`] gives the defaults documented on each field.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The proxy's JID (a component domain such as `proxy.example.org`).
    pub jid: Jid,
    /// Where to accept SOCKS5 connections. Default `127.0.0.1:7777`: loopback until you
    /// decide what to expose (7777 is the port Openfire and Prosody use).
    pub listen: Vec<SocketAddr>,
    /// The streamhosts announced in the bytestreams answer. Empty (default): one per bound
    /// listener, with its address and port. Set it to announce a public address or a host
    /// name (several are allowed).
    pub announce: Vec<(Host, u16)>,
    /// Domains whose users may use the proxy (a JID's domain must equal one of them).
    /// Default: none, so everyone is refused with `auth/forbidden` until configured.
    pub allowed_domains: Vec<String>,
    /// How long a connection may wait for activation. Default 60 s.
    pub activation_timeout: Duration,
    /// How long the SOCKS5 handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// Active relays one requester (bare JID) may hold at once. Default 16.
    pub max_relays_per_jid: usize,
    /// Connections waiting for activation, over all sessions. Default 1024.
    pub max_pending: usize,
    /// Connections from one IP address that are in their SOCKS5 handshake or wait for
    /// activation; more are closed at once, so one host cannot fill the pending table for
    /// everyone (BAD-INPUT E8). Default 32.
    pub max_pending_per_ip: usize,
    /// Connections in their SOCKS5 handshake at once, over all addresses. When all are
    /// taken, a new connection ends the oldest handshake (E7, E8: together with
    /// `handshake_timeout`, a slowloris flood holds at most this many sockets, and only
    /// displaces itself: a real client's handshake takes a round trip). Default 1024.
    pub max_handshakes: usize,
    /// Per-direction rate limit of each relay, bytes per second. Default: none.
    pub bandwidth_limit: Option<u64>,
    /// A relay on which no byte moved in either direction for this long is closed on both
    /// sides (a peer that vanished without FIN, or stopped reading), freeing its sockets,
    /// pipes and its per-JID slot. Default 180 s (BAD-INPUT E10); `None` never.
    pub relay_idle_timeout: Option<Duration>,
    /// The largest pipe (Linux splice) or buffer a relay direction grows to, so a relay
    /// holds at most twice this. A direction holds nothing until its first byte, starts at
    /// the system's pipe size (64 KiB; 16 KiB for the user-space buffer elsewhere), grows
    /// when one read fills it (the sender is ahead: the relay is busy; a pipe goes straight
    /// to this size, the user-space buffer doubles towards it), and gives it
    /// back after 1 s without data: idle relays hold sockets only (BAD-INPUT I5). Default
    /// 1 MiB, Linux's default `pipe-max-size` (larger requests are capped by the kernel; a
    /// refused resize, as for a user over `pipe-user-pages-soft`, keeps the smaller pipe).
    /// On a shared 2-core loopback, 64 KiB, 256 KiB and 1 MiB pipes measured within noise
    /// of each other (1.1–2.0 GB/s); the larger pipe means fewer system calls per byte on
    /// faster links.
    pub buffer_size: usize,
    /// Threads of the proxy's own that run the activated relays (each a current-thread
    /// tokio runtime; relays are handed out in turn). Default 1. The SOCKS5 handshakes, the
    /// timers and the stanzas stay on the runtime that called
    /// `Proxy::bind`: a flood of handshakes there no longer delays a
    /// relay's bytes (issue 9: a legitimate relay under a 50,000-connection slowloris
    /// flood ran at 0.26–0.49× its unflooded speed on the same runtime). Raise it for many
    /// busy relays on many cores; 0 runs the relays on the caller's runtime.
    pub relay_threads: usize,
}

impl ProxyConfig {
    /// Defaults (see each field) for a proxy at `jid`.
    pub fn new(jid: Jid) -> Self {
        Self {
            jid,
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 7777))],
            announce: Vec::new(),
            allowed_domains: Vec::new(),
            activation_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            max_relays_per_jid: 16,
            max_pending: 1024,
            max_pending_per_ip: 32,
            max_handshakes: 1024,
            bandwidth_limit: None,
            relay_idle_timeout: Some(Duration::from_secs(180)),
            buffer_size: 1 << 20,
            relay_threads: 1,
        }
    }

    /// Whether `jid`'s domain is one of [`allowed_domains`](Self::allowed_domains).
    pub fn is_allowed(&self, jid: &Jid) -> bool {
        let d = jid.domain();
        self.allowed_domains
            .iter()
            .any(|a| a.eq_ignore_ascii_case(d.as_str()))
    }
}
