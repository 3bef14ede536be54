//! Settings: method preference, every stage's timeout, receive policies.

use std::path::PathBuf;
use std::time::Duration;

use jid::{BareJid, Jid};

/// A way to carry the bytes, in the order of preference given to [`Config::methods`].
///
/// [`S5b`](Self::S5b) and [`Ibb`](Self::Ibb) are what a user normally names; the finer
/// choices restrict what is offered or opened (the `xft --method` flag maps to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// XEP-0065 SOCKS5 Bytestreams: our own streamhost and any proxies.
    S5b,
    /// XEP-0065 through our own streamhost only (no proxy offered).
    S5bDirect,
    /// XEP-0065 through proxies only (our own streamhost not offered).
    S5bProxy,
    /// XEP-0047 In-Band Bytestreams, over iq unless [`Config::ibb_stanza`] says message.
    Ibb,
    /// XEP-0047 over `<iq/>` stanzas (acknowledged chunks).
    IbbIq,
    /// XEP-0047 over `<message/>` stanzas (no acknowledgements).
    IbbMessage,
}

impl Method {
    /// Whether this is one of the SOCKS5 variants.
    pub fn is_s5b(self) -> bool {
        matches!(self, Self::S5b | Self::S5bDirect | Self::S5bProxy)
    }

    /// Whether this is one of the in-band variants.
    pub fn is_ibb(self) -> bool {
        !self.is_s5b()
    }

    /// The SI stream-method namespace this method is offered under.
    pub fn namespace(self) -> &'static str {
        if self.is_s5b() {
            xep0095_si::method::BYTESTREAMS
        } else {
            xep0095_si::method::IBB
        }
    }

    /// The name the `xft` command uses (`s5b`, `s5b-direct`, `s5b-proxy`, `ibb`, `ibb-iq`,
    /// `ibb-message`).
    pub fn name(self) -> &'static str {
        match self {
            Self::S5b => "s5b",
            Self::S5bDirect => "s5b-direct",
            Self::S5bProxy => "s5b-proxy",
            Self::Ibb => "ibb",
            Self::IbbIq => "ibb-iq",
            Self::IbbMessage => "ibb-message",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "s5b" => Self::S5b,
            "s5b-direct" => Self::S5bDirect,
            "s5b-proxy" => Self::S5bProxy,
            "ibb" => Self::Ibb,
            "ibb-iq" => Self::IbbIq,
            "ibb-message" => Self::IbbMessage,
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
#[error("unknown method {0:?} (expected s5b, s5b-direct, s5b-proxy, ibb, ibb-iq or ibb-message)")]
pub struct UnknownMethod(pub String);

/// Which stanza IBB data goes in when [`Method::Ibb`] is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IbbStanza {
    /// `<iq/>`: every chunk acknowledged, the XEP's default.
    #[default]
    Iq,
    /// `<message/>`: no acknowledgements.
    Message,
}

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
    /// The stanza IBB uses for [`Method::Ibb`]. Default [`IbbStanza::Iq`], the XEP's default,
    /// which has flow control.
    pub ibb_stanza: IbbStanza,
    /// The IBB block size we open with, in bytes before base64. Default 8192: the largest
    /// slixmpp accepts out of the box; the IBB driver retries smaller on
    /// `resource-constraint`.
    pub block_size: u16,
    /// Whether to ask the peer's disco#info before offering and refuse early (stage `Disco`)
    /// when it lacks SI file transfer. Default `false`: several clients (Spark, old Pidgin)
    /// answer disco slowly or not at all for some resources, and the offer itself tells.
    pub check_features: bool,
    /// Where proxies come from. Default [`ProxySource::Discover`].
    pub proxies: ProxySource,
    /// How long discovered proxy streamhosts are kept. Default 10 minutes: proxies rarely
    /// move, and discovery costs two round trips per proxy.
    pub proxy_cache_ttl: Duration,
    /// Timeout of each disco request. Default 10 s: servers answer in milliseconds; a
    /// client that does not answer in 10 s will not.
    pub disco_timeout: Duration,
    /// How long the sender waits for the answer to an offer. Default 5 minutes: on most
    /// clients a person has to click "accept".
    pub offer_timeout: Duration,
    /// Timeout of the bytestreams query to each proxy. Default 10 s.
    pub streamhost_query_timeout: Duration,
    /// One total budget for everything S5B needs before bytes flow (the target's attempts on
    /// every streamhost, its answer, proxy activation). When it runs out and IBB was offered
    /// the transfer falls back to IBB. Default 20 s: long enough for a proxy over a slow
    /// link, short enough that a dead streamhost list does not hold the user for minutes
    /// (Spark waits 15 s for the answer, then opens IBB).
    pub s5b_budget: Duration,
    /// Timeout of the IBB `<open/>` answer. Default 15 s.
    pub ibb_open_timeout: Duration,
    /// How long the target waits for a bytestream (S5B offer or IBB open) after accepting.
    /// Default 60 s: the sender may discover proxies and query them first.
    pub stream_start_timeout: Duration,
    /// After S5B failed on the target's side, how long it still accepts an IBB open on the
    /// same sid (the libpurple fallback). Default 30 s: Spark opens IBB after a 15 s timeout
    /// of its own.
    pub fallback_window: Duration,
    /// While streaming, how long without a single byte before the transfer fails. Default
    /// 60 s.
    pub inactivity_timeout: Duration,
    /// How long the sender waits for its end-of-stream (IBB `<close/>` acknowledgement, S5B
    /// shutdown) to complete. Default 30 s.
    pub close_timeout: Duration,
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
    /// (stagger, handshake timeout, dial policy). Its `connect_budget` is capped at
    /// [`s5b_budget`](Self::s5b_budget). Default: `xep0065_s5b::Config::default()`.
    pub s5b: xep0065_s5b::Config,
    /// IBB settings: the window of chunks in flight, buffers, the largest block size we
    /// accept. Default: `xep0047_ibb::Config::default()`.
    pub ibb: xep0047_ibb::Config,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            methods: vec![Method::S5b, Method::Ibb],
            ibb_stanza: IbbStanza::Iq,
            block_size: 8192,
            check_features: false,
            proxies: ProxySource::Discover,
            proxy_cache_ttl: Duration::from_secs(600),
            disco_timeout: Duration::from_secs(10),
            offer_timeout: Duration::from_secs(300),
            streamhost_query_timeout: Duration::from_secs(10),
            s5b_budget: Duration::from_secs(20),
            ibb_open_timeout: Duration::from_secs(15),
            stream_start_timeout: Duration::from_secs(60),
            fallback_window: Duration::from_secs(30),
            inactivity_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(30),
            answer_disco: true,
            policy: Policy::default(),
            s5b: xep0065_s5b::Config::default(),
            ibb: xep0047_ibb::Config::default(),
        }
    }
}

impl Config {
    /// Sets the method preference (most preferred first).
    pub fn methods(&mut self, methods: &[Method]) -> &mut Self {
        self.methods = methods.to_vec();
        self
    }

    /// Sets the IBB block size.
    pub fn block_size(&mut self, block_size: u16) -> &mut Self {
        self.block_size = block_size;
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
            &mut self.disco_timeout,
            &mut self.offer_timeout,
            &mut self.streamhost_query_timeout,
            &mut self.s5b_budget,
            &mut self.ibb_open_timeout,
            &mut self.stream_start_timeout,
            &mut self.fallback_window,
            &mut self.inactivity_timeout,
            &mut self.close_timeout,
        ] {
            *d = (*d).min(t);
        }
        self
    }

    /// The SI stream-method namespaces to offer, in preference order, without duplicates.
    pub(crate) fn offered_namespaces(&self) -> Vec<&'static str> {
        namespaces(&self.methods)
    }

    /// The first configured IBB variant resolved to a stanza kind, if any.
    pub(crate) fn ibb_variant(&self) -> Option<IbbStanza> {
        ibb_variant(&self.methods, self.ibb_stanza)
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

/// The first IBB variant of `methods` as a stanza kind ([`Method::Ibb`] means `default`).
pub(crate) fn ibb_variant(methods: &[Method], default: IbbStanza) -> Option<IbbStanza> {
    methods.iter().find_map(|m| match m {
        Method::Ibb => Some(default),
        Method::IbbIq => Some(IbbStanza::Iq),
        Method::IbbMessage => Some(IbbStanza::Message),
        _ => None,
    })
}

/// What the receiving side does with offers before the application sees them.
#[derive(Debug, Clone, Default)]
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
    /// How many offers wait for the application in [`next_offer`](crate::FileTransfer::next_offer)
    /// before further ones are declined with `resource-constraint`. Default 16.
    pub max_pending_offers: usize,
}

impl Policy {
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

    pub(crate) fn pending_capacity(&self) -> usize {
        if self.max_pending_offers == 0 {
            16
        } else {
            self.max_pending_offers
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_through_from_str() {
        for m in [
            Method::S5b,
            Method::S5bDirect,
            Method::S5bProxy,
            Method::Ibb,
            Method::IbbIq,
            Method::IbbMessage,
        ] {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("auto".parse::<Method>().is_err());
    }

    #[test]
    fn default_offers_bytestreams_then_ibb() {
        let c = Config::default();
        assert_eq!(
            c.offered_namespaces(),
            [xep0095_si::method::BYTESTREAMS, xep0095_si::method::IBB]
        );
        assert_eq!(c.ibb_variant(), Some(IbbStanza::Iq));
    }

    #[test]
    fn ibb_message_only_offers_ibb_over_message() {
        let mut c = Config::default();
        c.methods(&[Method::IbbMessage]);
        assert_eq!(c.offered_namespaces(), [xep0095_si::method::IBB]);
        assert_eq!(c.ibb_variant(), Some(IbbStanza::Message));
    }
}
