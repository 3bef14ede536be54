//! The target's side of connecting: which addresses a peer may make us dial, and the
//! staggered race over the offered streamhosts under one time budget.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use jid::Jid;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::stream::{S5bStream, client_handshake};
use crate::tokio::Config;
use crate::{Attempt, Host, Outcome, StreamHost};

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

    /// Allows every address (what deployed clients do).
    pub fn allow_all() -> Self {
        Self::new(|_, _, _| true)
    }

    /// Refuses loopback, unspecified, link-local and multicast addresses, so a peer cannot
    /// make us open connections to services on this host.
    pub fn no_loopback() -> Self {
        Self::new(|_, _, a| {
            let ip = a.ip();
            !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || is_link_local(&ip))
        })
    }

    fn allows(&self, peer: &Jid, sh: &StreamHost, addr: &SocketAddr) -> bool {
        (self.0)(peer, sh, addr)
    }
}

impl fmt::Debug for DialPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DialPolicy(..)")
    }
}

pub(crate) fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

pub(crate) async fn resolve(sh: &StreamHost) -> Result<Vec<SocketAddr>, String> {
    match &sh.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, sh.port)]),
        Host::Name(n) => tokio::net::lookup_host((n.as_str(), sh.port))
            .await
            .map(Iterator::collect)
            .map_err(|e| format!("cannot resolve {n}: {e}")),
    }
}

pub(crate) async fn dial_addr(
    a: SocketAddr,
    hash: &str,
    timeout: Duration,
) -> Result<S5bStream, String> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(a))
        .await
        .map_err(|_| format!("tcp connect timed out after {timeout:?}"))?
        .map_err(|e| format!("tcp connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let parts = client_handshake(tcp, hash, timeout)
        .await
        .map_err(|e| format!("socks5: {e}"))?;
    Ok(S5bStream::from_parts(parts))
}

/// Staggered racing under one budget: attempt `i` starts `i * stagger` after the previous
/// one (or at once when everything started so far has failed); the first finished SOCKS5
/// handshake wins and the others are dropped (closed).
pub(crate) async fn race(
    peer: &Jid,
    hosts: &[StreamHost],
    hash: &str,
    config: &Config,
) -> Result<(S5bStream, usize, Vec<Attempt>), Vec<Attempt>> {
    let t0 = Instant::now();
    let deadline = t0 + config.connect_budget;
    let mut attempts: Vec<Attempt> = hosts
        .iter()
        .map(|h| Attempt {
            streamhost: h.clone(),
            outcome: Outcome::NotTried,
            duration: Duration::ZERO,
        })
        .collect();
    let mut started_at: Vec<Option<Instant>> = vec![None; hosts.len()];
    let mut set: JoinSet<(usize, Result<S5bStream, Outcome>)> = JoinSet::new();
    let mut next = 0usize;
    let mut next_at = t0;
    loop {
        // Start every attempt that is due (skipping refused ones at once).
        while next < hosts.len() && (Instant::now() >= next_at || set.is_empty()) {
            let i = next;
            next += 1;
            let sh = hosts[i].clone();
            let now = Instant::now();
            started_at[i] = Some(now);
            let hash = hash.to_owned();
            let hs = config.handshake_timeout;
            let policy = config.dial_policy.clone();
            let peer = peer.clone();
            // Resolution, the policy check and the dial all run in the attempt's task, so a
            // slow DNS answer never holds up the next attempt.
            set.spawn(async move {
                let addrs = match resolve(&sh).await {
                    Ok(a) => a,
                    Err(e) => return (i, Err(Outcome::Failed(e))),
                };
                let allowed: Vec<SocketAddr> = addrs
                    .into_iter()
                    .filter(|a| policy.allows(&peer, &sh, a))
                    .collect();
                if allowed.is_empty() {
                    let why = String::from("the dial policy refused every address");
                    return (i, Err(Outcome::Refused(why)));
                }
                let mut last = String::new();
                for a in allowed {
                    match dial_addr(a, &hash, hs).await {
                        Ok(s) => return (i, Ok(s)),
                        Err(e) => last = format!("{a}: {e}"),
                    }
                }
                (i, Err(Outcome::Failed(last)))
            });
            next_at = now + config.stagger;
        }
        if set.is_empty() {
            return Err(attempts);
        }
        let wake = if next < hosts.len() {
            next_at.min(deadline)
        } else {
            deadline
        };
        tokio::select! {
            joined = set.join_next() => {
                let Some(Ok((i, res))) = joined else { continue };
                let took = started_at[i].map(|s| s.elapsed()).unwrap_or_default();
                attempts[i].duration = took;
                match res {
                    Ok(stream) => {
                        attempts[i].outcome = Outcome::Won;
                        set.abort_all();
                        for (j, a) in attempts.iter_mut().enumerate() {
                            if j != i && a.outcome == Outcome::NotTried
                                && let Some(s) = started_at[j] {
                                    a.outcome = Outcome::Lost;
                                    a.duration = s.elapsed();
                                }
                        }
                        return Ok((stream, i, attempts));
                    }
                    Err(outcome) => attempts[i].outcome = outcome,
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    set.abort_all();
                    for (j, a) in attempts.iter_mut().enumerate() {
                        if let (Some(s), Outcome::NotTried) = (started_at[j], &a.outcome) {
                            a.outcome = Outcome::Failed(format!("no socks5 connection within the {:?} budget", config.connect_budget));
                            a.duration = s.elapsed();
                        }
                    }
                    return Err(attempts);
                }
            }
        }
    }
}
