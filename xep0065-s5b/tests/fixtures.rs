//! Every captured S5B stanza and the XEP's examples: parse, check meaning, serialize and
//! re-parse to the same value.

use minidom::Element;
use xep0065_s5b::payload::{Activate, Offer, ProxyInfo, StreamHostUsed};
use xep0065_s5b::{Host, Mode, Sid, StreamHost};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

/// Drops the leading comments, adds the client namespace the captures leave implicit.
fn iq(text: &str) -> Iq {
    let mut t = text.trim_start();
    while let Some(rest) = t.strip_prefix("<!--") {
        t = rest.split_once("-->").unwrap().1.trim_start();
    }
    let t = if t.starts_with("<iq") && !t.split('>').next().unwrap().contains("xmlns=") {
        t.replacen("<iq", "<iq xmlns='jabber:client'", 1)
    } else {
        t.to_owned()
    };
    let el: Element = t.parse().unwrap();
    Iq::try_from(el).unwrap()
}

fn payload(iq: &Iq) -> &Element {
    match iq {
        Iq::Get { payload, .. } | Iq::Set { payload, .. } => payload,
        Iq::Result {
            payload: Some(p), ..
        } => p,
        other => panic!("no payload in {other:?}"),
    }
}

fn sh(jid: &str, host: &str, port: u16) -> StreamHost {
    StreamHost::new(
        jid.parse::<jid::Jid>().unwrap(),
        host.parse::<Host>().unwrap(),
        port,
    )
}

fn offer(text: &str) -> Offer {
    let o = Offer::try_from(payload(&iq(text))).unwrap();
    assert_eq!(
        Offer::try_from(&Element::from(&o)).unwrap(),
        o,
        "round trip"
    );
    o
}

fn used(text: &str) -> StreamHostUsed {
    let u = StreamHostUsed::try_from(payload(&iq(text))).unwrap();
    assert_eq!(
        StreamHostUsed::try_from(&Element::from(&u)).unwrap(),
        u,
        "round trip"
    );
    u
}

fn activate(text: &str) -> Activate {
    let a = Activate::try_from(payload(&iq(text))).unwrap();
    assert_eq!(
        Activate::try_from(&Element::from(&a)).unwrap(),
        a,
        "round trip"
    );
    a
}

fn proxy_info(text: &str) -> ProxyInfo {
    let p = ProxyInfo::try_from(payload(&iq(text))).unwrap();
    assert_eq!(
        ProxyInfo::try_from(&Element::from(&p)).unwrap(),
        p,
        "round trip"
    );
    p
}

fn error(text: &str) -> (ErrorType, DefinedCondition) {
    match iq(text) {
        Iq::Error { error, .. } => (error.type_, error.defined_condition),
        other => panic!("{other:?}"),
    }
}

fn empty_result(text: &str) {
    assert!(matches!(iq(text), Iq::Result { payload: None, .. }));
}

fn sid(s: &str) -> Sid {
    Sid::new(s).unwrap()
}

#[test]
fn captured_001_openfire_proxy_session() {
    let q = iq(include_str!("fixtures/captured/001-proxy-query.xml"));
    assert!(ProxyInfo::is_request(payload(&q)));
    let p = proxy_info(include_str!("fixtures/captured/001-proxy-answer.xml"));
    assert_eq!(
        p.streamhosts,
        [sh("proxy.192.168.1.113", "192.168.1.113", 7777)]
    );
    let o = offer(include_str!("fixtures/captured/001-offer.xml"));
    assert_eq!(o.sid, sid("82B0C697-C1DE-93F9-103E-481C8E7A3BD8"));
    assert_eq!(o.mode, Mode::Tcp);
    assert_eq!(
        o.streamhosts,
        [sh("proxy.192.168.1.113", "192.168.1.113", 7777)]
    );
    let u = used(include_str!("fixtures/captured/001-streamhost-used.xml"));
    assert_eq!(u.sid, None, "Spark leaves the sid out");
    assert_eq!(u.jid, "proxy.192.168.1.113".parse::<jid::Jid>().unwrap());
    let a = activate(include_str!("fixtures/captured/001-activate.xml"));
    assert_eq!(a.sid, o.sid);
    assert_eq!(
        a.target,
        "android@192.168.1.113/Spark 2.6.3"
            .parse::<jid::Jid>()
            .unwrap()
    );
    empty_result(include_str!("fixtures/captured/001-activate-result.xml"));
}

#[test]
fn captured_002_pidgin_five_streamhosts_in_order() {
    let o = offer(include_str!("fixtures/captured/002-offer.xml"));
    assert_eq!(o.sid, sid("purple69ca5fc8"));
    let me = "hezhiqiang@xmpp.myserver.info/hezhiqiang-2";
    assert_eq!(
        o.streamhosts,
        [
            sh(me, "192.168.8.104", 57526),
            sh(me, "172.16.40.1", 57526),
            sh(me, "192.168.172.1", 57526),
            sh(me, "公网地址隐藏", 57526),
            sh("proxy.xmpp.myserver.info", "172.17.0.7", 7777),
        ]
    );
    assert_eq!(o.streamhosts[3].host, Host::Name("公网地址隐藏".into()));
    let u = used(include_str!("fixtures/captured/002-streamhost-used.xml"));
    assert_eq!(
        u.jid,
        me.parse::<jid::Jid>().unwrap(),
        "direct: names the sender itself"
    );
}

#[test]
fn captured_003_qxmpp_own_addresses_first_ipv6_then_proxy() {
    let q = iq(include_str!("fixtures/captured/003-proxy-query.xml"));
    assert!(
        ProxyInfo::is_request(payload(&q)),
        "the pre-1.8 sid is ignored"
    );
    let p = proxy_info(include_str!("fixtures/captured/003-proxy-answer.xml"));
    assert_eq!(
        p.streamhosts,
        [sh("proxy.rabbitim.com", "182.254.185.29", 7777)]
    );
    let o = offer(include_str!("fixtures/captured/003-offer.xml"));
    assert_eq!(o.sid, sid("MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr"));
    assert_eq!(
        o.streamhosts,
        [
            sh("b@rabbitim.com/QXmpp", "192.168.1.101", 1346),
            sh(
                "b@rabbitim.com/QXmpp",
                "2001:0:5ef5:79fb:86b:f7e8:50fd:af01",
                1346
            ),
            sh("proxy.rabbitim.com", "182.254.185.29", 7777),
        ]
    );
    assert!(matches!(
        o.streamhosts[1].host,
        Host::Ip(std::net::IpAddr::V6(_))
    ));
    let u = used(include_str!("fixtures/captured/003-streamhost-used.xml"));
    assert_eq!(u.sid, Some(o.sid));
    assert_eq!(u.jid, "proxy.rabbitim.com".parse::<jid::Jid>().unwrap());
    let a = activate(include_str!("fixtures/captured/003-activate.xml"));
    assert_eq!(
        a.target,
        "c@rabbitim.com/QXmpp".parse::<jid::Jid>().unwrap()
    );
    empty_result(include_str!("fixtures/captured/003-activate-result.xml"));
}

#[test]
fn xep_examples_parse_with_their_meaning() {
    let q = iq(include_str!(
        "fixtures/xep0065/ex07-proxy-address-request.xml"
    ));
    assert!(ProxyInfo::is_request(payload(&q)));
    let p = proxy_info(include_str!(
        "fixtures/xep0065/ex08-proxy-address-result.xml"
    ));
    assert_eq!(
        p.streamhosts,
        [sh("streamer.example.com", "24.24.24.1", 7625)]
    );
    assert_eq!(
        error(include_str!("fixtures/xep0065/ex09-proxy-forbidden.xml")),
        (ErrorType::Auth, DefinedCondition::Forbidden)
    );
    assert_eq!(
        error(include_str!("fixtures/xep0065/ex10-proxy-not-allowed.xml")),
        (ErrorType::Cancel, DefinedCondition::NotAllowed)
    );
    let o = offer(include_str!("fixtures/xep0065/ex11-direct-offer.xml"));
    assert_eq!(o.sid, sid("vxf9n471bn46"));
    assert_eq!(
        o.streamhosts,
        [sh("requester@example.com/foo", "192.168.4.1", 5086)]
    );
    assert_eq!(
        error(include_str!("fixtures/xep0065/ex12-target-refuses.xml")),
        (ErrorType::Modify, DefinedCondition::NotAcceptable)
    );
    assert_eq!(
        error(include_str!(
            "fixtures/xep0065/ex15-target-item-not-found.xml"
        )),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
    let u = used(include_str!(
        "fixtures/xep0065/ex16-direct-streamhost-used.xml"
    ));
    assert_eq!(
        u.jid,
        "requester@example.com/foo".parse::<jid::Jid>().unwrap()
    );
    let o = offer(include_str!("fixtures/xep0065/ex17-mediated-offer.xml"));
    assert_eq!(
        o.streamhosts,
        [sh("streamer.example.com", "24.24.24.1", 7625)]
    );
    let u = used(include_str!(
        "fixtures/xep0065/ex20-mediated-streamhost-used.xml"
    ));
    assert_eq!(u.jid, "streamer.example.com".parse::<jid::Jid>().unwrap());
    assert_eq!(u.sid, Some(sid("vxf9n471bn46")));
    let a = activate(include_str!("fixtures/xep0065/ex23-activate.xml"));
    assert_eq!(
        a.target,
        "target@example.org/bar".parse::<jid::Jid>().unwrap()
    );
    empty_result(include_str!("fixtures/xep0065/ex24-activate-result.xml"));
    let o = offer(include_str!("fixtures/xep0065/ex29-udp-offer.xml"));
    assert_eq!(o.mode, Mode::Udp);
    assert_eq!(o.sid, sid("mySID"));
}
