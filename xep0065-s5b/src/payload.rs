//! The `<query xmlns='http://jabber.org/protocol/bytestreams'/>` wire types
//! ([XEP-0065 §7](https://xmpp.org/extensions/xep-0065.html#schema)), without logic.
//!
//! xmpp-parsers 0.23 has no bytestreams payloads (only the Jingle transport), so they live
//! here. Each type parses from and serializes to a [`minidom::Element`] with a typed
//! [`PayloadError`] per defect, because XEP-0065 names the answer (`modify/bad-request`) for
//! every malformed offer.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use jid::Jid;
use minidom::Element;
use sha1::{Digest, Sha1};

use crate::error::PayloadError;

/// An attribute name for the element builder.
macro_rules! n {
    ($s:literal) => {
        minidom::rxml::xml_ncname!($s).into()
    };
}

/// The bytestreams namespace.
pub const NS: &str = "http://jabber.org/protocol/bytestreams";

/// The port a `<streamhost/>` without `port` means (the SOCKS5 port of RFC 1928; XEP-0065
/// before 1.6 made `port` optional with this default, and old clients still omit it).
pub const DEFAULT_PORT: u16 = 1080;

/// How many `<streamhost/>` children of one offer are kept.
///
/// Real clients offer one to five (Pidgin five, QXmpp three). A longer list is **cut**, not
/// refused: the first entries are the ones the requester prefers (XEP-0065 §5.3.2 asks to
/// try them in order), and a target only races a handful within its time budget anyway.
/// Cutting keeps an odd but honest peer working while bounding what a hostile list costs.
pub const MAX_STREAMHOSTS: usize = 16;

/// A bytestream's Stream ID (the `sid` attribute): the one [`ft_transport::Sid`] every xft
/// crate shares (an NMTOKEN of 1 to 128 bytes).
pub use ft_transport::Sid;

/// The SOCKS5 DST.ADDR of a bytestream ([XEP-0065 §5.3.2]): the lowercase hex SHA-1 of
/// `sid + requester JID + target JID`, 40 ASCII characters.
///
/// The JIDs are the ones of the iq exchange (normally full JIDs), already in their
/// stringprep'd form as [`Jid`] holds them.
///
/// [XEP-0065 §5.3.2]: https://xmpp.org/extensions/xep-0065.html#direct-proto-establish
pub fn dst_addr(sid: &Sid, requester: &Jid, target: &Jid) -> String {
    let mut h = Sha1::new();
    h.update(sid.as_str().as_bytes());
    h.update(requester.to_string().as_bytes());
    h.update(target.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// The `mode` attribute ([XEP-0065 §5.3.1](https://xmpp.org/extensions/xep-0065.html#direct-proto-initiate)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// TCP, the default.
    #[default]
    Tcp,
    /// UDP (XEP-0065 §8, optional; parsed so it can be refused with the right error).
    Udp,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A streamhost's network address: an IP literal or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A host name (resolved with A/AAAA at connect time).
    Name(String),
}

impl FromStr for Host {
    type Err = PayloadError;
    fn from_str(s: &str) -> Result<Self, PayloadError> {
        let t = s.trim();
        // RFC 5952 says no brackets, but some clients send them.
        let unbracketed = t
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(t);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let ok = !t.is_empty()
            && t.len() <= 253
            && !t
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/[]@:".contains(c));
        if ok {
            Ok(Self::Name(t.to_owned()))
        } else {
            Err(PayloadError::BadHost(s.to_owned()))
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip)
    }
}

/// A `<streamhost jid host port/>` ([XEP-0065 §7](https://xmpp.org/extensions/xep-0065.html#schema)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamHost {
    /// The streamhost's JID (the requester itself, or a proxy).
    pub jid: Jid,
    /// Where to connect.
    pub host: Host,
    /// The SOCKS5 port.
    pub port: u16,
}

impl StreamHost {
    /// A streamhost.
    pub fn new(jid: Jid, host: impl Into<Host>, port: u16) -> Self {
        Self {
            jid,
            host: host.into(),
            port,
        }
    }

    fn parse(el: &Element) -> Result<Self, PayloadError> {
        let jid = parse_jid(el, "streamhost", "streamhost jid")?;
        let host = el.attr("host").ok_or(PayloadError::MissingAttribute {
            element: "streamhost",
            attribute: "host",
        })?;
        let host = host.parse()?;
        let port = match el.attr("port") {
            None => DEFAULT_PORT,
            Some(p) => match p.trim().parse::<u16>() {
                Ok(n) if n != 0 => n,
                _ => return Err(PayloadError::BadPort(p.to_owned())),
            },
        };
        Ok(Self { jid, host, port })
    }

    fn to_element(&self) -> Element {
        Element::builder("streamhost", NS)
            .attr(n!("jid"), self.jid.to_string())
            .attr(n!("host"), self.host.to_string())
            .attr(n!("port"), self.port.to_string())
            .build()
    }
}

fn parse_jid(
    el: &Element,
    element: &'static str,
    context: &'static str,
) -> Result<Jid, PayloadError> {
    let v = el.attr("jid").ok_or(PayloadError::MissingAttribute {
        element,
        attribute: "jid",
    })?;
    v.parse().map_err(|e: jid::Error| PayloadError::BadJid {
        context,
        value: v.to_owned(),
        reason: e.to_string(),
    })
}

fn check_query(el: &Element) -> Result<(), PayloadError> {
    if el.is("query", NS) {
        Ok(())
    } else {
        Err(PayloadError::NotQuery {
            name: el.name().to_owned(),
            ns: el.ns(),
        })
    }
}

fn parse_sid(el: &Element) -> Result<Sid, PayloadError> {
    Sid::new(el.attr("sid").unwrap_or_default()).map_err(PayloadError::from)
}

fn parse_streamhosts(el: &Element) -> Result<Vec<StreamHost>, PayloadError> {
    el.children()
        .filter(|c| c.is("streamhost", NS))
        .take(MAX_STREAMHOSTS)
        .map(StreamHost::parse)
        .collect()
}

/// The requester's offer: an iq-set `<query sid mode>` with its streamhosts
/// ([XEP-0065 §5.3.1](https://xmpp.org/extensions/xep-0065.html#direct-proto-initiate)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The stream ID.
    pub sid: Sid,
    /// `tcp` (default) or `udp`.
    pub mode: Mode,
    /// The optional precomputed DST.ADDR (XEP-0065 §6, MUC use).
    pub dstaddr: Option<String>,
    /// The streamhosts, in the requester's order of preference (at most
    /// [`MAX_STREAMHOSTS`]; longer lists are cut).
    pub streamhosts: Vec<StreamHost>,
}

impl TryFrom<&Element> for Offer {
    type Error = PayloadError;
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        check_query(el)?;
        let sid = parse_sid(el)?;
        let mode = match el.attr("mode") {
            None | Some("tcp") => Mode::Tcp,
            Some("udp") => Mode::Udp,
            Some(other) => return Err(PayloadError::UnknownMode(other.to_owned())),
        };
        let streamhosts = parse_streamhosts(el)?;
        if streamhosts.is_empty() {
            return Err(PayloadError::NoStreamHost);
        }
        Ok(Self {
            sid,
            mode,
            dstaddr: el.attr("dstaddr").map(str::to_owned),
            streamhosts,
        })
    }
}

impl From<&Offer> for Element {
    fn from(o: &Offer) -> Self {
        let mut b = Self::builder("query", NS)
            .attr(n!("sid"), o.sid.as_str())
            .attr(n!("mode"), o.mode.as_str());
        if let Some(d) = &o.dstaddr {
            b = b.attr(n!("dstaddr"), d.as_str());
        }
        b.append_all(o.streamhosts.iter().map(StreamHost::to_element))
            .build()
    }
}

/// The target's answer: an iq-result `<query><streamhost-used jid/></query>`
/// ([XEP-0065 §5.3.3](https://xmpp.org/extensions/xep-0065.html#direct-proto-ack)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHostUsed {
    /// The sid, which the XEP includes but many clients (Spark, Pidgin) leave out.
    pub sid: Option<Sid>,
    /// The JID of the streamhost the target connected to.
    pub jid: Jid,
}

impl TryFrom<&Element> for StreamHostUsed {
    type Error = PayloadError;
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        check_query(el)?;
        let used = el
            .get_child("streamhost-used", NS)
            .ok_or(PayloadError::Missing("streamhost-used"))?;
        Ok(Self {
            sid: el.attr("sid").and_then(|s| Sid::new(s).ok()),
            jid: parse_jid(used, "streamhost-used", "streamhost-used jid")?,
        })
    }
}

impl From<&StreamHostUsed> for Element {
    fn from(u: &StreamHostUsed) -> Self {
        let mut b = Self::builder("query", NS);
        if let Some(s) = &u.sid {
            b = b.attr(n!("sid"), s.as_str());
        }
        b.append(
            Self::builder("streamhost-used", NS)
                .attr(n!("jid"), u.jid.to_string())
                .build(),
        )
        .build()
    }
}

/// The requester's activation request to a proxy: iq-set `<query sid><activate>target</activate></query>`
/// ([XEP-0065 §6.3.5](https://xmpp.org/extensions/xep-0065.html#mediated-proto-activation)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activate {
    /// The stream ID.
    pub sid: Sid,
    /// The target's JID.
    pub target: Jid,
}

impl TryFrom<&Element> for Activate {
    type Error = PayloadError;
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        check_query(el)?;
        let sid = parse_sid(el)?;
        let a = el
            .get_child("activate", NS)
            .ok_or(PayloadError::Missing("activate"))?;
        let text = a.text();
        let target = text
            .trim()
            .parse()
            .map_err(|e: jid::Error| PayloadError::BadJid {
                context: "activate",
                value: text.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { sid, target })
    }
}

impl From<&Activate> for Element {
    fn from(a: &Activate) -> Self {
        Self::builder("query", NS)
            .attr(n!("sid"), a.sid.as_str())
            .append(
                Self::builder("activate", NS)
                    .append(a.target.to_string())
                    .build(),
            )
            .build()
    }
}

/// A proxy's answer to the network-address request: iq-result `<query>` with one or more
/// streamhosts ([XEP-0065 §4](https://xmpp.org/extensions/xep-0065.html#discover)).
///
/// The request itself is an empty `<query/>` ([`ProxyInfo::request`]); before XEP-0065 1.8
/// it carried a `sid`, which QXmpp still sends and which is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    /// The proxy's streamhosts (hostnames included as given).
    pub streamhosts: Vec<StreamHost>,
}

impl ProxyInfo {
    /// The empty `<query/>` that asks a proxy for its network address.
    pub fn request() -> Element {
        Element::builder("query", NS).build()
    }

    /// Whether `el` is a bytestreams query with no sid-bearing content (a proxy request).
    pub fn is_request(el: &Element) -> bool {
        el.is("query", NS) && el.children().next().is_none()
    }
}

impl TryFrom<&Element> for ProxyInfo {
    type Error = PayloadError;
    fn try_from(el: &Element) -> Result<Self, PayloadError> {
        check_query(el)?;
        let streamhosts = parse_streamhosts(el)?;
        if streamhosts.is_empty() {
            return Err(PayloadError::NoStreamHost);
        }
        Ok(Self { streamhosts })
    }
}

impl From<&ProxyInfo> for Element {
    fn from(p: &ProxyInfo) -> Self {
        Self::builder("query", NS)
            .append_all(p.streamhosts.iter().map(StreamHost::to_element))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn dst_addr_matches_independently_computed_vectors() {
        // Computed with python3 hashlib.sha1((sid + requester + target).encode()).hexdigest().
        let cases = [
            (
                "vxf9n471bn46",
                "requester@example.com/foo",
                "target@example.org/bar",
                "98b8d688d0f5d895fd41c5e7309a2e9e33ba32ff",
            ),
            (
                "82B0C697-C1DE-93F9-103E-481C8E7A3BD8",
                "iphone@192.168.1.113/xiff",
                "android@192.168.1.113/Spark 2.6.3",
                "c34ab601c693c7358f0888a101be2626b9b4d658",
            ),
            (
                "MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr",
                "b@rabbitim.com/QXmpp",
                "c@rabbitim.com/QXmpp",
                "306ac621fa1ce6d8283436298bda2cd71113feef",
            ),
            (
                "purple69ca5fc8",
                "hezhiqiang@xmpp.myserver.info/hezhiqiang-2",
                "test1@xmpp.myserver.info/hezhiqiang-macbookpro",
                "b519376aa692eaaadc2446f75975b7a41fa38907",
            ),
            (
                "s1",
                "réquester@example.com/föo",
                "target@example.org/bar",
                "6ccdd47248a4286c69d16294cc2a5b5bd18281f0",
            ),
        ];
        for (sid, r, t, want) in cases {
            let got = dst_addr(&Sid::new(sid).unwrap(), &jid(r), &jid(t));
            assert_eq!(got, want, "{sid}");
            assert_eq!(got.len(), 40);
        }
    }

    #[test]
    fn offer_round_trips_with_ipv6_and_hostname_hosts() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s' mode='tcp'>\
            <streamhost jid='a@x/r' host='2001:db8::1' port='1346'/>\
            <streamhost jid='proxy.x' host='proxy.example.org' port='7777'/></query>",
        );
        let o = Offer::try_from(&e).unwrap();
        assert_eq!(
            o.streamhosts[0].host,
            Host::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            o.streamhosts[1].host,
            Host::Name("proxy.example.org".into())
        );
        let back = Offer::try_from(&Element::from(&o)).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn c5_ipv6_literals_parse_with_or_without_brackets_and_a_zone_id_is_refused() {
        let ip = Host::Ip("2001:db8::1".parse().unwrap());
        assert_eq!("2001:db8::1".parse::<Host>(), Ok(ip.clone()));
        assert_eq!("[2001:db8::1]".parse::<Host>(), Ok(ip));
        // Never split on ':' (no host:port reading), and a zone id (Openfire can advertise
        // one) is no host: link-local is never dialled.
        for bad in [
            "fe80::1%eth0",
            "[fe80::1%eth0]",
            "2001:db8::1:80x",
            "[2001:db8::1]:80",
        ] {
            assert!(
                matches!(bad.parse::<Host>(), Err(PayloadError::BadHost(_))),
                "{bad}"
            );
        }
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
            <streamhost jid='a@x/r' host='[2001:db8::1]' port='1346'/></query>",
        );
        let o = Offer::try_from(&e).unwrap();
        assert_eq!(o.streamhosts[0].host, "2001:db8::1".parse().unwrap());
        assert_eq!(o.streamhosts[0].port, 1346);
    }

    #[test]
    fn streamhost_without_port_means_1080() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
            <streamhost jid='a@x/r' host='10.0.0.1'/></query>",
        );
        assert_eq!(Offer::try_from(&e).unwrap().streamhosts[0].port, 1080);
    }

    #[test]
    fn udp_mode_parses_so_it_can_be_refused() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s' mode='udp'>\
            <streamhost jid='a@x/r' host='10.0.0.1' port='1'/></query>",
        );
        assert_eq!(Offer::try_from(&e).unwrap().mode, Mode::Udp);
    }

    #[test]
    fn invalid_offer_without_sid_is_missing_sid() {
        let e = el("<query xmlns='http://jabber.org/protocol/bytestreams'>\
            <streamhost jid='a@x/r' host='10.0.0.1' port='1'/></query>");
        assert_eq!(Offer::try_from(&e).unwrap_err(), PayloadError::MissingSid);
    }

    #[test]
    fn invalid_offer_with_empty_sid_is_missing_sid() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid=''>\
            <streamhost jid='a@x/r' host='10.0.0.1' port='1'/></query>",
        );
        assert_eq!(Offer::try_from(&e).unwrap_err(), PayloadError::MissingSid);
    }

    #[test]
    fn invalid_streamhost_without_host_is_missing_attribute_host() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
            <streamhost jid='a@x/r' port='1'/></query>",
        );
        assert_eq!(
            Offer::try_from(&e).unwrap_err(),
            PayloadError::MissingAttribute {
                element: "streamhost",
                attribute: "host"
            }
        );
    }

    #[test]
    fn invalid_streamhost_without_jid_is_missing_attribute_jid() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
            <streamhost host='10.0.0.1' port='1'/></query>",
        );
        assert_eq!(
            Offer::try_from(&e).unwrap_err(),
            PayloadError::MissingAttribute {
                element: "streamhost",
                attribute: "jid"
            }
        );
    }

    #[test]
    fn invalid_streamhost_ports_are_bad_port() {
        for p in ["0", "65536", "-1", "http", ""] {
            let e = el(&format!(
                "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
                <streamhost jid='a@x/r' host='10.0.0.1' port='{p}'/></query>"
            ));
            assert_eq!(
                Offer::try_from(&e).unwrap_err(),
                PayloadError::BadPort(p.into()),
                "{p}"
            );
        }
    }

    #[test]
    fn invalid_offer_without_streamhost_is_no_streamhost() {
        let e = el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'/>");
        assert_eq!(Offer::try_from(&e).unwrap_err(), PayloadError::NoStreamHost);
    }

    #[test]
    fn invalid_mode_is_unknown_mode() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s' mode='sctp'>\
            <streamhost jid='a@x/r' host='10.0.0.1' port='1'/></query>",
        );
        assert_eq!(
            Offer::try_from(&e).unwrap_err(),
            PayloadError::UnknownMode("sctp".into())
        );
    }

    #[test]
    fn invalid_host_with_spaces_is_bad_host() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>\
            <streamhost jid='a@x/r' host='a b' port='1'/></query>",
        );
        assert_eq!(
            Offer::try_from(&e).unwrap_err(),
            PayloadError::BadHost("a b".into())
        );
    }

    #[test]
    fn invalid_streamhost_used_without_jid_is_missing_attribute_jid() {
        let e =
            el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used/></query>");
        assert_eq!(
            StreamHostUsed::try_from(&e).unwrap_err(),
            PayloadError::MissingAttribute {
                element: "streamhost-used",
                attribute: "jid"
            }
        );
    }

    #[test]
    fn invalid_activate_with_bad_jid_is_bad_jid() {
        let e = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'><activate>@@</activate></query>",
        );
        assert!(matches!(
            Activate::try_from(&e).unwrap_err(),
            PayloadError::BadJid {
                context: "activate",
                ..
            }
        ));
    }

    #[test]
    fn every_payload_error_maps_to_modify_bad_request() {
        use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
        let e = StanzaError::from(&PayloadError::MissingSid);
        assert_eq!(e.type_, ErrorType::Modify);
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
    }

    #[test]
    fn an_offer_of_thousands_of_streamhosts_is_cut_to_the_first_sixteen() {
        let mut s = String::from("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'>");
        for i in 0..5000u32 {
            s += &format!(
                "<streamhost jid='h{i}.x' host='10.0.{}.{}' port='1'/>",
                i / 256 % 256,
                i % 256
            );
        }
        s += "</query>";
        let o = Offer::try_from(&el(&s)).unwrap();
        assert_eq!(o.streamhosts.len(), MAX_STREAMHOSTS);
        assert_eq!(o.streamhosts[0].jid, jid("h0.x"));
        assert_eq!(o.streamhosts[15].jid, jid("h15.x"));
    }
}
