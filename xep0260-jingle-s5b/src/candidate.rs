//! The `<transport xmlns='urn:xmpp:jingle:transports:s5b:1'/>` element: candidates with
//! their XEP-0260 priorities, and a bounded reading of what a peer sends.
//!
//! Reading is our own rather than `xmpp_parsers::jingle_s5b::Transport::try_from`:
//! that type keeps a candidate's fields private (no getters in 0.23), accepts only IP
//! literals as `host`, and parses every candidate of an element (thousands, if a peer
//! sends thousands). Here at most [`MAX_PARSED_CANDIDATES`] are kept and the rest are
//! counted, not stored. Writing goes through `xmpp_parsers`' `Transport`, which the
//! Jingle layer embeds as is.

use std::net::SocketAddr;

use jid::Jid;
use minidom::Element;
use xep0065_s5b::{Host, StreamHost};
use xmpp_parsers::jingle_s5b::{
    self, CandidateId, StreamId, Transport, TransportPayload, Type as WireType,
};

use crate::error::InputError;

/// The transport's namespace.
pub const NS: &str = "urn:xmpp:jingle:transports:s5b:1";

/// The most candidates read from one transport element; further ones are skipped without
/// being stored (BAD-INPUT J23). Of those read, the first
/// [`Config::max_candidates`](xep0065_s5b::Config::max_candidates) (8) by priority are dialled.
pub const MAX_PARSED_CANDIDATES: usize = 64;

/// The longest `cid` accepted (a peer's longer ones are skipped as malformed).
pub const MAX_CID_LEN: usize = 64;

/// XEP-0260 §3 type preferences (priority = 65536 × type preference + local preference).
pub mod preference {
    /// A direct candidate (our own listener).
    pub const DIRECT: u32 = 126;
    /// An assisted candidate (NAT-PMP, UPnP, STUN).
    pub const ASSISTED: u32 = 120;
    /// A tunnel candidate (Teredo, 6to4).
    pub const TUNNEL: u32 = 110;
    /// A proxy candidate (a XEP-0065 streamhost).
    pub const PROXY: u32 = 10;
}

/// A candidate's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `direct` (the default when absent).
    Direct,
    /// `assisted`.
    Assisted,
    /// `tunnel`.
    Tunnel,
    /// `proxy`: a streamhost that must be activated by the party that offered it.
    Proxy,
}

impl Kind {
    fn parse(s: Option<&str>) -> Option<Self> {
        Some(match s {
            None | Some("direct") => Self::Direct,
            Some("assisted") => Self::Assisted,
            Some("tunnel") => Self::Tunnel,
            Some("proxy") => Self::Proxy,
            Some(_) => return None,
        })
    }

    fn wire(self) -> WireType {
        match self {
            Self::Direct => WireType::Direct,
            Self::Assisted => WireType::Assisted,
            Self::Tunnel => WireType::Tunnel,
            Self::Proxy => WireType::Proxy,
        }
    }
}

/// One `<candidate/>`: ours or the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The candidate id, unique among the candidates of the party that offers it.
    pub cid: String,
    /// The streamhost's JID (the offering party for a direct candidate, the proxy's JID).
    pub jid: Jid,
    /// Where to connect.
    pub host: Host,
    /// The port (1080 when a peer leaves it out, as Gajim reads it).
    pub port: u16,
    /// The XEP-0260 priority; higher is better.
    pub priority: u32,
    /// The type.
    pub kind: Kind,
}

impl Candidate {
    /// The XEP-0065 streamhost this candidate names (what the dialer races).
    pub fn streamhost(&self) -> StreamHost {
        StreamHost::new(self.jid.clone(), self.host.clone(), self.port)
    }

    /// The wire candidate; `None` for a host name (`xmpp_parsers` carries only IP
    /// literals: resolve a proxy's name before offering it).
    pub fn to_wire(&self) -> Option<jingle_s5b::Candidate> {
        let Host::Ip(ip) = self.host else {
            return None;
        };
        Some(
            jingle_s5b::Candidate::new(
                CandidateId(self.cid.clone()),
                ip,
                self.jid.clone(),
                self.priority,
            )
            .with_port(self.port)
            .with_type(self.kind.wire()),
        )
    }

    /// Reads one `<candidate/>`; `None` if it is malformed.
    fn parse(el: &Element) -> Option<Self> {
        let cid = el
            .attr("cid")
            .filter(|c| !c.is_empty() && c.len() <= MAX_CID_LEN)?;
        let jid = el.attr("jid")?.parse().ok()?;
        let host = el.attr("host")?.parse().ok()?;
        let port = match el.attr("port") {
            None => 1080,
            Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        };
        Some(Self {
            cid: cid.to_owned(),
            jid,
            host,
            port,
            priority: el.attr("priority")?.parse().ok()?,
            kind: Kind::parse(el.attr("type"))?,
        })
    }
}

/// Our own candidates, before cids and priorities are given: the addresses our listener
/// is bound to (direct) and the proxies discovered by the caller (already resolved to IP
/// addresses; a streamhost with a host name is skipped).
#[derive(Debug, Clone, Default)]
pub struct LocalCandidates {
    /// Our listener's addresses, best first.
    pub direct: Vec<SocketAddr>,
    /// Proxies' streamhosts, best first.
    pub proxies: Vec<StreamHost>,
}

impl LocalCandidates {
    /// Our candidates: direct ones first (type preference 126), proxies after (10); the
    /// local preference is 65535 for the first of each type, one less for each next one.
    /// `cid_prefix` makes the cids (`{prefix}{n}`).
    pub(crate) fn build(&self, me: &Jid, cid_prefix: &str) -> Vec<Candidate> {
        let direct = self
            .direct
            .iter()
            .map(|a| (me.clone(), a.ip(), a.port(), Kind::Direct));
        let proxies = self.proxies.iter().filter_map(|sh| match sh.host {
            Host::Ip(ip) => Some((sh.jid.clone(), ip, sh.port, Kind::Proxy)),
            Host::Name(_) => None,
        });
        let mut out: Vec<Candidate> = Vec::new();
        for (jid, ip, port, kind) in direct.chain(proxies).take(MAX_PARSED_CANDIDATES) {
            let same_kind = out.iter().filter(|c| c.kind == kind).count();
            let local = 65535u32.saturating_sub(same_kind as u32);
            let tp = match kind {
                Kind::Direct => preference::DIRECT,
                _ => preference::PROXY,
            };
            out.push(Candidate {
                cid: format!("{cid_prefix}{}", out.len()),
                jid,
                host: Host::Ip(ip),
                port,
                priority: tp * 65536 + local,
                kind,
            });
        }
        out
    }
}

/// What a peer's transport element carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Candidates (at most [`MAX_PARSED_CANDIDATES`]); `skipped` counts the ones beyond
    /// that limit and the malformed ones.
    Candidates {
        /// The candidates read, in document order.
        list: Vec<Candidate>,
        /// How many were not read.
        skipped: usize,
    },
    /// `<candidate-used cid/>`.
    CandidateUsed(String),
    /// `<candidate-error/>`.
    CandidateError,
    /// `<activated cid/>`.
    Activated(String),
    /// `<proxy-error/>`.
    ProxyError,
}

/// A peer's transport element, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The transport sid.
    pub sid: String,
    /// What it carries.
    pub payload: Payload,
}

impl Incoming {
    /// Reads a transport element, bounded: at most [`MAX_PARSED_CANDIDATES`] candidates
    /// are stored, malformed candidates are skipped, `mode='udp'` is refused.
    pub fn parse(el: &Element) -> Result<Self, InputError> {
        if !el.is("transport", NS) {
            return Err(InputError::Malformed("not a s5b:1 transport"));
        }
        let sid = el.attr("sid").ok_or(InputError::Malformed("no sid"))?;
        match el.attr("mode") {
            None | Some("tcp") => {}
            Some(_) => return Err(InputError::Udp),
        }
        let mut list = Vec::new();
        let mut skipped = 0usize;
        let mut other = None;
        for child in el.children().filter(|c| c.ns() == NS) {
            let p = match child.name() {
                "candidate" => {
                    match (list.len() < MAX_PARSED_CANDIDATES).then(|| Candidate::parse(child)) {
                        Some(Some(c)) => list.push(c),
                        _ => skipped += 1,
                    }
                    continue;
                }
                "candidate-used" => Payload::CandidateUsed(cid(child)?),
                "activated" => Payload::Activated(cid(child)?),
                "candidate-error" => Payload::CandidateError,
                "proxy-error" => Payload::ProxyError,
                _ => return Err(InputError::Malformed("unknown child")),
            };
            if other.replace(p).is_some() {
                return Err(InputError::Malformed("more than one notification"));
            }
        }
        let payload = match other {
            Some(_) if !list.is_empty() || skipped > 0 => {
                return Err(InputError::Malformed(
                    "candidates mixed with a notification",
                ));
            }
            Some(p) => p,
            None => Payload::Candidates { list, skipped },
        };
        Ok(Self {
            sid: sid.to_owned(),
            payload,
        })
    }
}

fn cid(el: &Element) -> Result<String, InputError> {
    el.attr("cid")
        .filter(|c| !c.is_empty() && c.len() <= MAX_CID_LEN)
        .map(str::to_owned)
        .ok_or(InputError::Malformed("no cid"))
}

/// A transport element with this payload.
pub(crate) fn transport(sid: &str, payload: TransportPayload) -> Transport {
    Transport::new(StreamId(sid.to_owned())).with_payload(payload)
}
