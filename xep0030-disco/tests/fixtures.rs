//! Every disco stanza captured from real clients (`fixtures/captured/`) and every XEP-0030
//! example (`fixtures/xep0030/`): parsed, summarised (the summary is the meaning checked),
//! serialized and parsed again to the same value. The responder is run on each captured
//! request too.

use std::ops::ControlFlow;

use minidom::Element;
use xep0030_disco::{DiscoResponder, features, parse_info_result, parse_items_result};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

const INFO: &str = "http://jabber.org/protocol/disco#info";
const ITEMS: &str = "http://jabber.org/protocol/disco#items";

fn elements(text: &str) -> Vec<Element> {
    let body = text.split_once("-->\n").map_or(text, |(_, b)| b);
    let root: Element = format!("<stream xmlns='jabber:client'>{body}</stream>")
        .parse()
        .expect("fixture is well-formed XML");
    root.children().cloned().collect()
}

fn query(p: &Element) -> String {
    if p.is("query", INFO) {
        if let Ok(q) = DiscoInfoQuery::try_from(p.clone())
            && p.children().next().is_none()
        {
            return format!("info{}", node(q.node.as_deref()));
        }
        let r = parse_info_result(p.clone()).expect("disco#info");
        let ids: Vec<String> = r
            .identities
            .iter()
            .map(|i| format!("{}/{}", i.category, i.type_))
            .collect();
        let f: Vec<&str> = r
            .features
            .iter()
            .map(|f| f.strip_prefix("http://jabber.org/protocol/").unwrap_or(f))
            .collect();
        format!(
            "info{} [{}] {{{}}}",
            node(r.node.as_deref()),
            ids.join(" "),
            f.join(" ")
        )
    } else if p.is("query", ITEMS) {
        if let Ok(q) = DiscoItemsQuery::try_from(p.clone())
            && p.children().next().is_none()
        {
            return format!("items{}", node(q.node.as_deref()));
        }
        let r = parse_items_result(p.clone()).expect("disco#items");
        let items: Vec<String> = r
            .items
            .iter()
            .map(|i| {
                format!(
                    "{}{}",
                    i.jid,
                    i.node
                        .as_deref()
                        .map(|n| format!("#{n}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        format!("items{} [{}]", node(r.node.as_deref()), items.join(" "))
    } else {
        panic!("not disco: {p:?}")
    }
}

fn node(n: Option<&str>) -> String {
    n.map(|n| format!(" node={n}")).unwrap_or_default()
}

/// A one-line summary of a disco iq: type, addressing, and what it says.
fn describe(iq: &Iq) -> String {
    let to = iq.to().map(|j| j.to_string()).unwrap_or("-".into());
    match iq {
        Iq::Get { payload, id, .. } => format!("get {id} to {to}: {}", query(payload)),
        Iq::Set { id, .. } => format!("set {id}"),
        Iq::Result { payload, id, .. } => format!(
            "result {id} to {to}: {}",
            payload.as_ref().map(query).unwrap_or_default()
        ),
        Iq::Error { error, id, .. } => format!(
            "error {id} to {to}: {:?} {:?}",
            error.type_, error.defined_condition
        ),
    }
}

fn check(text: &str, want: &[&str]) -> Vec<Iq> {
    let iqs: Vec<Iq> = elements(text)
        .into_iter()
        .map(|e| Iq::try_from(e).expect("strict iq parse"))
        .collect();
    let got: Vec<String> = iqs.iter().map(describe).collect();
    assert_eq!(got, want);
    for iq in &iqs {
        let back = Iq::try_from(Element::from(iq.clone())).unwrap();
        assert_eq!(&back, iq);
        assert_eq!(describe(&back), describe(iq));
    }
    iqs
}

macro_rules! fixture {
    ($name:ident, $file:literal, $($want:literal),+ $(,)?) => {
        #[test]
        fn $name() {
            check(include_str!(concat!("fixtures/", $file)), &[$($want),+]);
        }
    };
}

// ---- captured ----

fixture!(
    captured_xiff_disco_items_request,
    "captured/001-disco-items-request.xml",
    "get iq_15 to -: items"
);
fixture!(
    captured_openfire_disco_items_result,
    "captured/001-disco-items-result.xml",
    "result iq_15 to iphone@192.168.1.113/xiff: items [proxy.192.168.1.113 pubsub.192.168.1.113 conference.192.168.1.113 search.192.168.1.113]"
);
fixture!(
    captured_pidgin_disco_info_request,
    "captured/002-disco-info-request.xml",
    "get info1 to receiver@jabber.org/resource: info"
);
fixture!(
    captured_disco_info_result_with_elided_features,
    "captured/002-disco-info-result.xml",
    "result info1 to sender@jabber.org/resource: info [] {si si/profile/file-transfer}"
);
fixture!(
    captured_qxmpp_disco_items_request,
    "captured/003-disco-items-request.xml",
    "get qxmpp74 to -: items"
);
fixture!(
    captured_openfire_disco_items_result_qxmpp,
    "captured/003-disco-items-result.xml",
    "result qxmpp74 to b@rabbitim.com/QXmpp: items [proxy.rabbitim.com pubsub.rabbitim.com conference.rabbitim.com search.rabbitim.com]"
);

/// Pidgin's feature check, answered by our responder: si and the file profile are there.
#[test]
fn our_responder_passes_pidgins_feature_check() {
    let text = include_str!("fixtures/captured/002-disco-info-request.xml");
    let iq = Iq::try_from(elements(text).remove(0)).unwrap();
    let r = DiscoResponder::default().with_jid("receiver@jabber.org/resource".parse().unwrap());
    let ControlFlow::Break(Some(Stanza::Iq(reply))) = r.handle_stanza(Stanza::Iq(iq)) else {
        panic!("not answered")
    };
    assert_eq!(reply.id(), "info1");
    assert_eq!(
        reply.to().unwrap().to_string(),
        "sender@jabber.org/resource"
    );
    let Iq::Result {
        payload: Some(p), ..
    } = reply
    else {
        panic!()
    };
    let info = parse_info_result(p).unwrap();
    assert!(info.features.contains(features::SI));
    assert!(info.features.contains(features::SI_FILE_TRANSFER));
}

// ---- XEP-0030 examples ----

fixture!(
    xep0030_example1,
    "xep0030/ex01-querying-for-information.xml",
    "get info1 to plays.shakespeare.lit: info"
);
fixture!(
    xep0030_example2,
    "xep0030/ex02-result-set-for-information-request.xml",
    "result info1 to romeo@montague.net/orchard: info [conference/text directory/chatroom] {disco#info disco#items muc jabber:iq:register jabber:iq:search jabber:iq:time jabber:iq:version}"
);
fixture!(
    xep0030_example3,
    "xep0030/ex03-target-entity-does-not-exist.xml",
    "error info1 to romeo@montague.net/orchard: Cancel ItemNotFound"
);
fixture!(
    xep0030_example4,
    "xep0030/ex04-service-unavailable.xml",
    "error info1 to romeo@montague.net/orchard: Cancel ServiceUnavailable"
);
fixture!(
    xep0030_example5,
    "xep0030/ex05-requesting-info-from-a-bare-jid.xml",
    "get info2 to juliet@capulet.com: info"
);
fixture!(
    xep0030_example6,
    "xep0030/ex06-server-replies-on-behalf-of-bare-jid.xml",
    "result info2 to shakespeare.lit: info [account/registered] {disco#info}"
);
fixture!(
    xep0030_example7,
    "xep0030/ex07-querying-a-specific-conference-room.xml",
    "get info3 to balconyscene@plays.shakespeare.lit: info",
    "result info3 to juliet@capulet.com/balcony: info [conference/text] {disco#info muc muc_hidden muc_nonanonymous muc_open muc_passwordprotected muc_temporary muc_unmoderated}"
);
fixture!(
    xep0030_example8,
    "xep0030/ex08-querying-a-connected-resource-for-further-inform.xml",
    "get info4 to romeo@montague.net/orchard: info",
    "result info4 to juliet@capulet.com/balcony: info [client/pc] {disco#info jabber:iq:time jabber:iq:version}"
);
fixture!(
    xep0030_example9,
    "xep0030/ex09-querying-a-specific-jid-and-node-combination.xml",
    "get info3 to mim.shakespeare.lit: info node=http://jabber.org/protocol/commands"
);
fixture!(
    xep0030_example10,
    "xep0030/ex10-jid-node-result.xml",
    "result info3 to romeo@montague.net/orchard: info node=http://jabber.org/protocol/commands [automation/command-list] {disco#info}"
);
fixture!(
    xep0030_example11,
    "xep0030/ex11-requesting-all-items.xml",
    "get items1 to shakespeare.lit: items"
);
fixture!(
    xep0030_example12,
    "xep0030/ex12-result-set-for-all-items.xml",
    "result items1 to romeo@montague.net/orchard: items [people.shakespeare.lit plays.shakespeare.lit mim.shakespeare.lit words.shakespeare.lit globe.shakespeare.lit headlines.shakespeare.lit catalog.shakespeare.lit en2fr.shakespeare.lit]"
);
fixture!(
    xep0030_example13,
    "xep0030/ex13-empty-result-set.xml",
    "result items1 to romeo@montague.net/orchard: items"
);
fixture!(
    xep0030_example14,
    "xep0030/ex14-requesting-items-from-a-bare-jid.xml",
    "get items2 to juliet@capulet.com: items"
);
fixture!(
    xep0030_example15,
    "xep0030/ex15-server-replies-on-behalf-of-bare-jid.xml",
    "result items2 to shakespeare.lit: items [juliet@capulet.com/balcony juliet@capulet.com/chamber]"
);
fixture!(
    xep0030_example16,
    "xep0030/ex16-requesting-nodes.xml",
    "get items2 to catalog.shakespeare.lit: items"
);
fixture!(
    xep0030_example17,
    "xep0030/ex17-service-returns-nodes.xml",
    "result items2 to romeo@montague.net/orchard: items [catalog.shakespeare.lit#books catalog.shakespeare.lit#clothing catalog.shakespeare.lit#music]"
);
fixture!(
    xep0030_example18,
    "xep0030/ex18-requesting-further-nodes.xml",
    "get items3 to catalog.shakespeare.lit: items node=music"
);
fixture!(
    xep0030_example19,
    "xep0030/ex19-service-returns-further-nodes.xml",
    "result items3 to romeo@montague.net/orchard: items node=music [catalog.shakespeare.lit#music/A catalog.shakespeare.lit#music/B catalog.shakespeare.lit#music/C catalog.shakespeare.lit#music/D]"
);
fixture!(
    xep0030_example20,
    "xep0030/ex20-requesting-even-more-nodes.xml",
    "get items4 to catalog.shakespeare.lit: items node=music/D"
);
fixture!(
    xep0030_example21,
    "xep0030/ex21-service-returns-even-more-nodes.xml",
    "result items4 to romeo@montague.net/orchard: items node=music/D [catalog.shakespeare.lit#music/D/dowland-firstbooke catalog.shakespeare.lit#music/D/dowland-solace]"
);
fixture!(
    xep0030_example22,
    "xep0030/ex22-user-queries-entity-regarding-tunes.xml",
    "get items4 to romeo@montague.net: items node=http://jabber.org/protocol/tune"
);
fixture!(
    xep0030_example23,
    "xep0030/ex23-entity-returns-multiple-items.xml",
    "result items4 to juliet@capulet.com/chamber: items node=http://jabber.org/protocol/tune [pubsub.shakespeare.lit#s623nms9s3bfh8js pubsub.montague.net#music/R/Romeo/iPod tunes.characters.lit#g8k4kds9sd89djf3]"
);
fixture!(
    xep0030_example24,
    "xep0030/ex24-jid-node-error.xml",
    "error info3 to romeo@montague.net/orchard: Cancel NotAllowed"
);

/// Examples 26 and 28 are what an XEP-0147 `?disco` URI turns into, before the client adds
/// an id: xmpp-parsers (rightly) refuses an iq without one, the query itself reads fine.
fn check_uri_stanza(text: &str, items: bool) {
    let e = elements(text).remove(0);
    let err = Iq::try_from(e.clone()).unwrap_err();
    assert!(err.to_string().contains("'id'"), "{err}");
    assert_eq!(e.attr("to"), Some("romeo@montague.net"));
    let q = e.children().next().unwrap().clone();
    if items {
        assert_eq!(DiscoItemsQuery::try_from(q).unwrap().node, None);
    } else {
        assert_eq!(DiscoInfoQuery::try_from(q).unwrap().node, None);
    }
}

#[test]
fn xep0030_example26_uri_info_request_lacks_an_id() {
    check_uri_stanza(
        include_str!("fixtures/xep0030/ex26-service-discovery-information-request-resulting-.xml"),
        false,
    );
}

#[test]
fn xep0030_example28_uri_items_request_lacks_an_id() {
    check_uri_stanza(
        include_str!("fixtures/xep0030/ex28-service-discovery-items-request-resulting-stanza.xml"),
        true,
    );
}
