//! Settings: method preference, every stage's timeout, receive policies.

use std::path::PathBuf;
use std::time::Duration;

use jid::{BareJid, Jid};

/// A way to carry the bytes, in the order of preference given to [`Config::methods`].
///
/// A method is a method: how S5B picks its streamhosts is [`S5bRoute`] (with
/// [`ProxySource`]), how IBB frames its chunks is [`IbbOptions`]. The `xft --method`
/// names (`s5b-direct`, `ibb-message`, …) are a method plus one of those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// XEP-0065 SOCKS5 Bytestreams, through the streamhosts [`Config::s5b_route`] allows.
    S5b,
    /// XEP-0047 In-Band Bytestreams, framed as [`Config::ibb_options`] says.
    Ibb,
}

impl Method {
    /// The SI stream-method namespace this method is offered under.
    pub fn namespace(self) -> &'static str {
        match self {
            Self::S5b => xep0095_si::method::BYTESTREAMS,
            Self::Ibb => xep0095_si::method::IBB,
        }
    }

    /// The name: `s5b` or `ibb`.
    pub fn name(self) -> &'static str {
        match self {
            Self::S5b => "s5b",
            Self::Ibb => "ibb",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "s5b" => Self::S5b,
            "ibb" => Self::Ibb,
            other => return Err(UnknownMethod(other.to_owned())),
        })
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A method name that is not one of [`Method`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown method {0:?} (expected s5b or ibb)")]
pub struct UnknownMethod(pub String);

/// Which streamhosts [`Method::S5b`] offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum S5bRoute {
    /// Our own streamhost and the proxies of [`Config::proxies`]. The default.
    #[default]
    Any,
    /// Our own streamhost only: no proxy is looked for or offered.
    Direct,
    /// Proxies only: our own streamhost is not offered (the transfer fails with
    /// [`ErrorKind::NoProxy`](crate::ErrorKind::NoProxy) when none is found).
    Proxy,
}

/// How IBB opens its sessions: the block size and the stanza kind, in one value with one
/// default. It is the IBB crate's own [`xep0047_ibb::OpenOptions`]:
/// `block_size` [`xep0047_ibb::DEFAULT_BLOCK_SIZE`] (65535, a ceiling: the chunk size is
/// chosen below it by the acknowledgement rate), `stanza`
/// [`StanzaKind::Iq`](xep0047_ibb::StanzaKind::Iq).
pub use xep0047_ibb::OpenOptions as IbbOptions;

/// Where SOCKS5 proxies come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProxySource {
    /// No proxy.
    None,
    /// Exactly these proxy JIDs (their streamhosts are asked for with a bytestreams query).
    Jids(Vec<Jid>),
    /// Discover through disco on our own server's domain (`disco#items`, then
    /// `proxy/bytestreams` identities), then query each. The default, as Spark, Pidgin and
    /// QXmpp do it.
    #[default]
    Discover,
}

/// The facade's settings. `Config::default()` is tuned for a person on each side over a
/// public server; tests and the demo shorten the timeouts.
///
/// Settings of the sub-protocols (the IBB window, the S5B listener addresses, the dial
/// policy) are given to their own configs: [`Config::ibb`] and [`Config::s5b`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Methods in order of preference. Default `[S5b, Ibb]`: S5B is orders of magnitude
    /// faster, IBB always works through the server; both are offered so fallback is possible.
    pub methods: Vec<Method>,
    /// How [`Method::S5b`] picks its streamhosts. Default [`S5bRoute::Any`].
    pub s5b_route: S5bRoute,
    /// How [`Method::Ibb`] opens: block size and stanza kind. Default
    /// [`IbbOptions::default()`]: block size [`xep0047_ibb::DEFAULT_BLOCK_SIZE`] (65535, see
    /// there why) over `<iq/>`, the XEP's default, which has flow control.
    pub ibb_options: IbbOptions,
    /// Whether to ask the peer's disco#info before offering and refuse early (stage `Disco`)
    /// when it lacks SI file transfer. Default `false`: several clients (Spark, old Pidgin)
    /// answer disco slowly or not at all for some resources, and the offer itself tells.
    pub check_features: bool,
    /// Where proxies come from. Default [`ProxySource::Discover`].
    pub proxies: ProxySource,
    /// How long discovered proxy streamhosts are kept. Default 10 minutes: proxies rarely
    /// move, and discovery costs two round trips per proxy.
    pub proxy_cache_ttl: Duration,
    /// How long the sender waits for the answer to an offer. Default 5 minutes: on most
    /// clients a person has to click "accept".
    pub offer_timeout: Duration,
    /// One total budget for everything S5B needs before bytes flow (the target's attempts on
    /// every streamhost, its answer, proxy activation). When it runs out and IBB was offered
    /// the transfer falls back to IBB. Default 20 s: long enough for a proxy over a slow
    /// link, short enough that a dead streamhost list does not hold the user for minutes
    /// (Spark waits 15 s for the answer, then opens IBB).
    pub s5b_budget: Duration,
    /// How long the target waits for a bytestream (S5B offer or IBB open) after accepting.
    /// Default 60 s: the sender may discover proxies and query them first.
    pub stream_start_timeout: Duration,
    /// After S5B failed on the target's side, how long it still accepts an IBB open on the
    /// same sid (the libpurple fallback). Default 30 s: Spark opens IBB after a 15 s timeout
    /// of its own.
    pub fallback_window: Duration,
    /// While streaming, how long without a single byte before the transfer fails; on the
    /// receiver also how long its writer (the disk, the application's `AsyncWrite`) may take
    /// nothing before it counts as hung and the transfer fails. Default 60 s.
    pub inactivity_timeout: Duration,
    /// How long the sender waits for its end-of-stream (IBB `<close/>` acknowledgement, S5B
    /// shutdown) to complete. Default 30 s.
    pub close_timeout: Duration,
    /// S5B: after our half-close, how long the sender waits for the receiver to close its
    /// side, the only sign over a socket that the bytes arrived ([`Delivery`](crate::Delivery)).
    /// A receiver that has not closed by then gets the result
    /// [`Unconfirmed`](crate::Delivery::Unconfirmed), never a failure. Default 5 s: receivers
    /// close as soon as they have read the end (most at `size`), well within it.
    pub receiver_close_grace: Duration,
    /// Whether [`FileTransfer::handle_stanza`](crate::FileTransfer::handle_stanza) answers
    /// disco#info requests to our JID with a `client/pc` identity and the file-transfer
    /// features (what Pidgin and others check before offering, seed 002). Default `true`;
    /// an application that answers disco itself (with its own features, entity caps nodes)
    /// sets it to `false` and advertises `si`, the file-transfer profile, `bytestreams` and
    /// `ibb` there.
    pub answer_disco: bool,
    /// Receive policy.
    pub policy: Policy,
    /// SOCKS5 settings: our streamhost's addresses, static proxies, the target's racing
    /// (stagger, handshake timeout, dial policy), the timeout of each bytestreams iq (the
    /// streamhost query to a proxy among them: the facade has none of its own). Its `connect_budget` is capped at
    /// [`s5b_budget`](Self::s5b_budget). Default: `xep0065_s5b::Config::default()`.
    pub s5b: xep0065_s5b::Config,
    /// IBB settings: the window of chunks in flight, buffers, the largest block size we
    /// accept, and the timeout of the `<open/>` answer (the facade has none of its own).
    /// Default: `xep0047_ibb::Config::default()`.
    pub ibb: xep0047_ibb::Config,
    /// XEP-0030 settings: the timeout of each disco query (the feature check, proxy
    /// discovery) and how long answers are cached. Default: `DiscoConfig::default()`.
    pub disco: xep0030_disco::DiscoConfig,
    /// How the sender makes the offer's MD5 (XEP-0096 `hash`). Default
    /// [`OfferHash::default()`]: see there.
    pub offer_hash: OfferHash,
    /// The stacks to send with, in order of preference: the first one the peer's
    /// disco#info supports is used (Jingle: `urn:xmpp:jingle:1`, the file-transfer:5
    /// application and a transport of [`methods`](Self::methods); SI: as before). A peer
    /// whose disco#info does not answer gets SI. Default `[Jingle, Si]`. Both are always
    /// received.
    pub stacks: Vec<crate::Stack>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            methods: vec![Method::S5b, Method::Ibb],
            s5b_route: S5bRoute::Any,
            ibb_options: IbbOptions::default(),
            check_features: false,
            proxies: ProxySource::Discover,
            proxy_cache_ttl: Duration::from_secs(600),
            offer_timeout: Duration::from_secs(300),
            s5b_budget: Duration::from_secs(20),
            stream_start_timeout: Duration::from_secs(60),
            fallback_window: Duration::from_secs(30),
            inactivity_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(30),
            receiver_close_grace: Duration::from_secs(5),
            answer_disco: true,
            policy: Policy::default(),
            s5b: xep0065_s5b::Config::default(),
            ibb: xep0047_ibb::Config::default(),
            disco: xep0030_disco::DiscoConfig::default(),
            offer_hash: OfferHash::default(),
            stacks: vec![crate::Stack::Jingle, crate::Stack::Si],
        }
    }
}

impl Config {
    /// Sets the method preference (most preferred first).
    pub fn methods(&mut self, methods: &[Method]) -> &mut Self {
        self.methods = methods.to_vec();
        self
    }

    /// Sets the stack preference (most preferred first; see [`Config::stacks`]).
    pub fn stacks(&mut self, stacks: &[crate::Stack]) -> &mut Self {
        self.stacks = stacks.to_vec();
        self
    }

    /// Sets the IBB block size (of [`ibb_options`](Self::ibb_options)) and uses it for every
    /// chunk: a size the user names is not searched below
    /// ([`xep0047_ibb::Config::adaptive_chunks`] off). Without it, IBB opens at 65535 and
    /// picks the chunk size from the acknowledgement rate.
    pub fn block_size(&mut self, block_size: u16) -> &mut Self {
        self.ibb_options.block_size = block_size;
        self.ibb.adaptive_chunks(false);
        self
    }

    /// Sets the IBB stanza kind (of [`ibb_options`](Self::ibb_options)).
    pub fn ibb_stanza(&mut self, stanza: xep0047_ibb::StanzaKind) -> &mut Self {
        self.ibb_options.stanza = stanza;
        self
    }

    /// Sets how S5B picks its streamhosts.
    pub fn s5b_route(&mut self, route: S5bRoute) -> &mut Self {
        self.s5b_route = route;
        self
    }

    /// Sets where proxies come from.
    pub fn proxies(&mut self, proxies: ProxySource) -> &mut Self {
        self.proxies = proxies;
        self
    }

    /// Sets the total S5B budget.
    pub fn s5b_budget(&mut self, budget: Duration) -> &mut Self {
        self.s5b_budget = budget;
        self
    }

    /// Sets the receive policy.
    pub fn policy(&mut self, policy: Policy) -> &mut Self {
        self.policy = policy;
        self
    }

    /// Shortens every timeout to `t` at most (tests, the demo).
    pub fn cap_timeouts(&mut self, t: Duration) -> &mut Self {
        for d in [
            &mut self.disco.timeout,
            &mut self.offer_timeout,
            &mut self.s5b.iq_timeout,
            &mut self.s5b_budget,
            &mut self.stream_start_timeout,
            &mut self.fallback_window,
            &mut self.inactivity_timeout,
            &mut self.close_timeout,
            &mut self.receiver_close_grace,
        ] {
            *d = (*d).min(t);
        }
        self.ibb.cap_timeouts(t);
        self
    }

    /// The SI stream-method namespaces to offer, in preference order, without duplicates.
    pub(crate) fn offered_namespaces(&self) -> Vec<&'static str> {
        namespaces(&self.methods)
    }

    /// Whether IBB is among the methods.
    pub(crate) fn has_ibb(&self) -> bool {
        self.methods.contains(&Method::Ibb)
    }
}

/// The SI stream-method namespaces of `methods`, in order, without duplicates.
pub(crate) fn namespaces(methods: &[Method]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in methods {
        if !out.contains(&m.namespace()) {
            out.push(m.namespace());
        }
    }
    out
}

/// How the sender makes the MD5 its offer carries (XEP-0096's optional `hash` attribute).
///
/// The offer waits for it: hashing a 4 GiB file at disk speed would hold the offer for
/// tens of seconds. So the sender hashes before the offer only what fits a budget, and
/// offers without `hash` when the file is larger (XEP-0096 §2.3 makes `hash` optional; the
/// receiver then checks the size, and the sender still reports the SHA-256 of the bytes it
/// sent, hashed while streaming). A receiver verifies the MD5 whenever one was offered.
///
/// Default: files up to [`OfferHash::DEFAULT_MAX_SIZE`] (64 MiB, well under a second at
/// the 1–2 GB/s MD5 runs on one core, and about that from a page cache) are hashed before
/// the offer; larger ones are offered without `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OfferHash {
    /// Files up to this many bytes are hashed before the offer; `0` never hashes before the
    /// offer, `u64::MAX` always does (the behaviour before this setting).
    pub max_size: u64,
}

impl OfferHash {
    /// 64 MiB: see [`OfferHash`].
    pub const DEFAULT_MAX_SIZE: u64 = 64 * 1024 * 1024;

    /// Hash files up to `max_size` bytes before the offer.
    pub fn up_to(max_size: u64) -> Self {
        Self { max_size }
    }
}

impl Default for OfferHash {
    fn default() -> Self {
        Self::up_to(Self::DEFAULT_MAX_SIZE)
    }
}

/// What the receiving side does with offers before the application sees them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Policy {
    /// Offers from these accounts (any resource) are accepted into
    /// [`auto_accept_dir`](Self::auto_accept_dir) without asking. Default empty.
    pub auto_accept_from: Vec<BareJid>,
    /// Where auto-accepted files go. Auto-accept is off while this is `None`.
    pub auto_accept_dir: Option<PathBuf>,
    /// Offers larger than this many bytes are declined (`forbidden`) without asking.
    /// Default `None` (no limit).
    pub max_size: Option<u64>,
    /// How many incoming offers may be pending (waiting in
    /// [`next_offer`](crate::FileTransfer::next_offer) or for the application's answer) or
    /// active (receiving, auto-accepted ones included) at once, from all peers together;
    /// further offers are refused with `wait/resource-constraint`
    /// ([`Refusal::Busy`](crate::Refusal::Busy)). `0` means the default, 256.
    pub max_pending_offers: usize,
    /// How many incoming offers one account (bare JID: every resource of it together) may
    /// have pending or active at once; its next offer is refused with
    /// `wait/resource-constraint` ([`Refusal::PeerBusy`](crate::Refusal::PeerBusy)) while
    /// other peers are still served (BAD-INPUT I2). `0` means the default, 16.
    pub max_offers_per_peer: usize,
    /// An offer whose size plus this margin exceeds the free space of the directory it
    /// would be stored in is declined with `forbidden` and a text saying so, before
    /// anything is opened: by the manager for [`auto_accept_dir`](Self::auto_accept_dir)
    /// (it then reaches [`next_refused`](crate::FileTransfer::next_refused) as
    /// [`Refusal::NoSpace`](crate::Refusal::NoSpace)), and by
    /// [`accept_into_dir`](crate::IncomingOffer::accept_into_dir) for its directory (the
    /// transfer fails with [`ErrorKind::NoSpace`](crate::ErrorKind::NoSpace)). The free
    /// space is what `statvfs` gives an unprivileged user. Default
    /// [`Policy::DEFAULT_FREE_SPACE_MARGIN`] (64 MiB, room for the file system's own
    /// needs); `None` turns the check off (where the free space cannot be read, off Unix,
    /// there is no check either).
    pub free_space_margin: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            auto_accept_from: Vec::new(),
            auto_accept_dir: None,
            max_size: None,
            max_pending_offers: 256,
            max_offers_per_peer: 16,
            free_space_margin: Some(Self::DEFAULT_FREE_SPACE_MARGIN),
        }
    }
}

impl Policy {
    /// 64 MiB: see [`Policy::free_space_margin`].
    pub const DEFAULT_FREE_SPACE_MARGIN: u64 = 64 * 1024 * 1024;

    /// A policy auto-accepting offers from `from` into `dir`.
    pub fn auto_accept(from: Vec<BareJid>, dir: impl Into<PathBuf>) -> Self {
        Self {
            auto_accept_from: from,
            auto_accept_dir: Some(dir.into()),
            ..Self::default()
        }
    }

    /// Sets the size limit.
    #[must_use]
    pub fn with_max_size(mut self, max: u64) -> Self {
        self.max_size = Some(max);
        self
    }

    /// Sets the free-space margin (`None`: no free-space check).
    #[must_use]
    pub fn with_free_space_margin(mut self, margin: Option<u64>) -> Self {
        self.free_space_margin = margin;
        self
    }

    /// `Err` when an offer of `size` bytes does not fit in `dir` with the margin (see
    /// [`free_space_margin`](Self::free_space_margin)); `Ok` when it fits, when the check
    /// is off, or when the free space cannot be read (the open then tells).
    pub(crate) fn check_free_space(
        &self,
        dir: &std::path::Path,
        size: Option<u64>,
    ) -> Result<(), NoSpace> {
        let (Some(margin), Some(size)) = (self.free_space_margin, size) else {
            return Ok(());
        };
        match xep0096_file::available_space(dir) {
            Ok(available) if size.saturating_add(margin) > available => {
                Err(NoSpace { size, available })
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn pending_capacity(&self) -> usize {
        if self.max_pending_offers == 0 {
            256
        } else {
            self.max_pending_offers
        }
    }

    pub(crate) fn per_peer_capacity(&self) -> usize {
        if self.max_offers_per_peer == 0 {
            16
        } else {
            self.max_offers_per_peer
        }
    }
}

/// An offer larger than the free space ([`Policy::free_space_margin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSpace {
    pub(crate) size: u64,
    pub(crate) available: u64,
}

impl NoSpace {
    /// The text the peer gets with `forbidden`.
    pub(crate) fn text(&self) -> String {
        format!(
            "file of {} bytes does not fit in the {} bytes free",
            self.size, self.available
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_through_from_str() {
        for m in [Method::S5b, Method::Ibb] {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("auto".parse::<Method>().is_err());
        assert!("ibb-iq".parse::<Method>().is_err());
    }

    #[test]
    fn default_offers_bytestreams_then_ibb_over_iq_at_the_one_block_size() {
        let c = Config::default();
        assert_eq!(
            c.offered_namespaces(),
            [xep0095_si::method::BYTESTREAMS, xep0095_si::method::IBB]
        );
        assert!(c.has_ibb());
        assert_eq!(c.ibb_options.block_size, xep0047_ibb::DEFAULT_BLOCK_SIZE);
        assert_eq!(c.ibb_options.stanza, xep0047_ibb::StanzaKind::Iq);
    }

    #[test]
    fn ibb_only_offers_ibb() {
        let mut c = Config::default();
        c.methods(&[Method::Ibb]);
        assert_eq!(c.offered_namespaces(), [xep0095_si::method::IBB]);
    }
}
