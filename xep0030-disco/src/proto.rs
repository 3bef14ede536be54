//! The answering side, sans I/O: [`DiscoResponder`] answers disco#info and disco#items
//! requests addressed to us.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use jid::Jid;
use minidom::Element;
use xmpp_parsers::disco::{
    DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item,
};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xso::error::FromElementError;

/// Feature namespaces file transfer advertises and checks.
pub mod features {
    /// XEP-0030 disco#info (every responder advertises it, XEP-0030 §3.1).
    pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
    /// XEP-0030 disco#items.
    pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    /// XEP-0095 Stream Initiation.
    pub const SI: &str = "http://jabber.org/protocol/si";
    /// XEP-0096 the SI file-transfer profile.
    pub const SI_FILE_TRANSFER: &str = "http://jabber.org/protocol/si/profile/file-transfer";
    /// XEP-0065 SOCKS5 Bytestreams.
    pub const BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";
    /// XEP-0047 In-Band Bytestreams.
    pub const IBB: &str = "http://jabber.org/protocol/ibb";
}

/// Answers disco#info and disco#items `get`s with what was configured.
///
/// [`handle_stanza`](Self::handle_stanza) returns `ControlFlow<Option<Stanza>, Stanza>`:
///
/// * `Break(Some(reply))`: the request was ours; send `reply` (a result, or
///   `cancel/item-not-found` for a node we do not have);
/// * `Break(None)` is not produced today and is reserved for requests that are ours but
///   need no answer;
/// * `Continue(stanza)`: not ours (not a disco `get`, or addressed to another JID), handed
///   back unchanged so handlers chain.
///
/// Only `get` is handled: a disco `set` is handed back, so the application's fallback
/// answers it (usually `service-unavailable`).
#[derive(Debug, Clone)]
pub struct DiscoResponder {
    jid: Option<Jid>,
    info: DiscoInfoResult,
    nodes: BTreeMap<String, DiscoInfoResult>,
    items: Vec<Item>,
}

impl Default for DiscoResponder {
    /// [`file_transfer_client`](Self::file_transfer_client).
    fn default() -> Self {
        Self::file_transfer_client()
    }
}

impl DiscoResponder {
    /// A responder with one identity and only the disco#info feature.
    pub fn new(identity: Identity) -> Self {
        Self {
            jid: None,
            info: DiscoInfoResult {
                node: None,
                identities: vec![identity],
                features: BTreeSet::from([features::DISCO_INFO.to_owned()]),
                extensions: Vec::new(),
            },
            nodes: BTreeMap::new(),
            items: Vec::new(),
        }
    }

    /// Identity `client/pc` and the features a file-transfer client advertises: si, the
    /// si file-transfer profile, bytestreams, ibb and disco#info (what Pidgin checks, seed
    /// 002, and what XEP-0096 §3.1 makes mandatory).
    pub fn file_transfer_client() -> Self {
        Self::new(identity("client", "pc")).with_features([
            features::SI,
            features::SI_FILE_TRANSFER,
            features::BYTESTREAMS,
            features::IBB,
        ])
    }

    /// Only answers requests whose `to` is `jid` (full) or its bare form; requests with no
    /// `to` are always answered (they came on our connection). Without this, every request
    /// given to the responder is answered.
    #[must_use]
    pub fn with_jid(mut self, jid: Jid) -> Self {
        self.jid = Some(jid);
        self
    }

    /// Replaces the identities.
    #[must_use]
    pub fn with_identities(mut self, identities: Vec<Identity>) -> Self {
        self.info.identities = identities;
        self
    }

    /// Adds features.
    #[must_use]
    pub fn with_features<S: Into<String>>(mut self, features: impl IntoIterator<Item = S>) -> Self {
        self.info
            .features
            .extend(features.into_iter().map(Into::into));
        self
    }

    /// Answers disco#info on `node` with `info` (its `node` attribute is set to `node`).
    #[must_use]
    pub fn with_node(mut self, node: impl Into<String>, mut info: DiscoInfoResult) -> Self {
        let node = node.into();
        info.node = Some(node.clone());
        self.nodes.insert(node, info);
        self
    }

    /// The items listed for disco#items without a node.
    #[must_use]
    pub fn with_items(mut self, items: Vec<Item>) -> Self {
        self.items = items;
        self
    }

    /// What disco#info without a node answers.
    pub fn info(&self) -> &DiscoInfoResult {
        &self.info
    }

    /// Whether we advertise `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.info.features.contains(feature)
    }

    fn addressed_to_us(&self, to: Option<&Jid>) -> bool {
        match (&self.jid, to) {
            (None, _) | (_, None) => true,
            (Some(me), Some(to)) => {
                me == to || (to.resource().is_none() && me.to_bare() == to.to_bare())
            }
        }
    }

    /// See the type's docs for the return value.
    pub fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<Option<Stanza>, Stanza> {
        match stanza {
            Stanza::Iq(iq) => match self.handle_iq(iq) {
                ControlFlow::Break(reply) => ControlFlow::Break(reply.map(Stanza::Iq)),
                ControlFlow::Continue(iq) => ControlFlow::Continue(Stanza::Iq(iq)),
            },
            other => ControlFlow::Continue(other),
        }
    }

    /// [`handle_stanza`](Self::handle_stanza) for an iq.
    pub fn handle_iq(&self, iq: Iq) -> ControlFlow<Option<Iq>, Iq> {
        let Iq::Get {
            from,
            to,
            id,
            payload,
        } = &iq
        else {
            return ControlFlow::Continue(iq);
        };
        if !self.addressed_to_us(to.as_ref()) {
            return ControlFlow::Continue(iq);
        }
        let answer = if payload.is("query", features::DISCO_INFO) {
            match DiscoInfoQuery::try_from(payload.clone()) {
                Ok(q) => match q.node {
                    None => Ok(Iq::from_result(id.clone(), Some(self.info.clone()))),
                    Some(node) => match self.nodes.get(&node) {
                        Some(info) => Ok(Iq::from_result(id.clone(), Some(info.clone()))),
                        None => Err(DefinedCondition::ItemNotFound),
                    },
                },
                Err(_) => Err(DefinedCondition::BadRequest),
            }
        } else if payload.is("query", features::DISCO_ITEMS) {
            match DiscoItemsQuery::try_from(payload.clone()) {
                Ok(q) => match q.node {
                    None => Ok(Iq::from_result(
                        id.clone(),
                        Some(DiscoItemsResult {
                            node: None,
                            items: self.items.clone(),
                            rsm: None,
                        }),
                    )),
                    Some(_) => Err(DefinedCondition::ItemNotFound),
                },
                Err(_) => Err(DefinedCondition::BadRequest),
            }
        } else {
            return ControlFlow::Continue(iq);
        };
        let mut reply = match answer {
            Ok(reply) => reply,
            Err(condition) => {
                let type_ = if condition == DefinedCondition::BadRequest {
                    ErrorType::Modify
                } else {
                    ErrorType::Cancel
                };
                Iq::from_error(
                    id.clone(),
                    StanzaError {
                        type_,
                        by: None,
                        defined_condition: condition,
                        texts: BTreeMap::new(),
                        other: None,
                    },
                )
            }
        };
        *reply.to_mut() = from.clone();
        *reply.from_mut() = to.clone();
        ControlFlow::Break(Some(reply))
    }
}

/// Drops text (other than whitespace) between the children of `elem`, for peers and
/// documents that leave stray text in a query (the XEP-0095 and seed 002 examples elide
/// features with `...`).
fn without_text(mut elem: Element) -> Element {
    let children: Vec<Element> = elem
        .take_nodes()
        .into_iter()
        .filter_map(|n| n.as_element().cloned())
        .collect();
    for c in children {
        elem.append_child(c);
    }
    elem
}

/// Reads a disco#info result, strictly first, then with stray text dropped.
pub fn parse_info_result(elem: Element) -> Result<DiscoInfoResult, FromElementError> {
    match DiscoInfoResult::try_from(elem.clone()) {
        Ok(info) => Ok(info),
        Err(e) if elem.is("query", features::DISCO_INFO) => {
            DiscoInfoResult::try_from(without_text(elem)).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// Reads a disco#items result, strictly first, then with stray text dropped.
pub fn parse_items_result(elem: Element) -> Result<DiscoItemsResult, FromElementError> {
    match DiscoItemsResult::try_from(elem.clone()) {
        Ok(items) => Ok(items),
        Err(e) if elem.is("query", features::DISCO_ITEMS) => {
            DiscoItemsResult::try_from(without_text(elem)).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// An identity with no name and no language, `category`/`type_`.
pub fn identity(category: &str, type_: &str) -> Identity {
    Identity::new_anonymous::<_, _, String, String>(category, type_)
}

/// Whether `info` has an identity of `category`/`type_`.
pub fn has_identity(info: &DiscoInfoResult, category: &str, type_: &str) -> bool {
    info.identities
        .iter()
        .any(|i| i.category == category && i.type_ == type_)
}

/// Whether `info` describes a SOCKS5 bytestreams proxy (identity `proxy/bytestreams`,
/// XEP-0065 §4).
pub fn is_bytestreams_proxy(info: &DiscoInfoResult) -> bool {
    has_identity(info, "proxy", "bytestreams")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn get(payload: &str, to: &str) -> Stanza {
        let s = format!(
            "<iq xmlns='jabber:client' type='get' id='q1' from='a@x/1' to='{to}'>{payload}</iq>"
        );
        Stanza::Iq(Iq::try_from(s.parse::<Element>().unwrap()).unwrap())
    }

    fn reply(flow: ControlFlow<Option<Stanza>, Stanza>) -> Iq {
        match flow {
            ControlFlow::Break(Some(Stanza::Iq(iq))) => iq,
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn disco_info_lists_client_pc_and_the_file_transfer_features() {
        let r = DiscoResponder::default().with_jid(jid("b@x/2"));
        let iq = reply(r.handle_stanza(get(
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            "b@x/2",
        )));
        let Iq::Result {
            id,
            to,
            from,
            payload: Some(p),
        } = iq
        else {
            panic!()
        };
        assert_eq!(
            (id.as_str(), to, from),
            ("q1", Some(jid("a@x/1")), Some(jid("b@x/2")))
        );
        let info = DiscoInfoResult::try_from(p).unwrap();
        assert!(has_identity(&info, "client", "pc"));
        for f in [
            features::SI,
            features::SI_FILE_TRANSFER,
            features::BYTESTREAMS,
            features::IBB,
            features::DISCO_INFO,
        ] {
            assert!(info.features.contains(f), "{f}");
        }
    }

    #[test]
    fn unknown_node_is_cancel_item_not_found() {
        let r = DiscoResponder::default();
        let iq = reply(r.handle_stanza(get(
            "<query xmlns='http://jabber.org/protocol/disco#info' node='urn:nope'/>",
            "b@x/2",
        )));
        let Iq::Error { error, id, .. } = iq else {
            panic!()
        };
        assert_eq!(id, "q1");
        assert_eq!(error.type_, ErrorType::Cancel);
        assert_eq!(error.defined_condition, DefinedCondition::ItemNotFound);
    }

    #[test]
    fn a_configured_node_is_answered_with_its_node_attribute() {
        let info = DiscoInfoResult {
            node: None,
            identities: vec![identity("client", "pc")],
            features: BTreeSet::from(["urn:x".to_owned()]),
            extensions: vec![],
        };
        let r = DiscoResponder::default().with_node("n1", info);
        let iq = reply(r.handle_stanza(get(
            "<query xmlns='http://jabber.org/protocol/disco#info' node='n1'/>",
            "b@x/2",
        )));
        let Iq::Result {
            payload: Some(p), ..
        } = iq
        else {
            panic!()
        };
        let got = DiscoInfoResult::try_from(p).unwrap();
        assert_eq!(got.node.as_deref(), Some("n1"));
        assert!(got.features.contains("urn:x"));
    }

    #[test]
    fn disco_items_lists_the_configured_items() {
        let item = Item {
            jid: jid("proxy.x"),
            node: None,
            name: Some("p".into()),
        };
        let r = DiscoResponder::default().with_items(vec![item.clone()]);
        let iq = reply(r.handle_stanza(get(
            "<query xmlns='http://jabber.org/protocol/disco#items'/>",
            "b@x/2",
        )));
        let Iq::Result {
            payload: Some(p), ..
        } = iq
        else {
            panic!()
        };
        assert_eq!(DiscoItemsResult::try_from(p).unwrap().items, [item]);
    }

    #[test]
    fn other_stanzas_and_other_recipients_are_handed_back_unchanged() {
        fn handed_back(r: &DiscoResponder, s: Stanza, id: &str) {
            match r.handle_stanza(s) {
                ControlFlow::Continue(Stanza::Iq(iq)) => assert_eq!(iq.id(), id),
                other => panic!("consumed: {other:?}"),
            }
        }
        let r = DiscoResponder::default().with_jid(jid("b@x/2"));
        handed_back(&r, get("<ping xmlns='urn:xmpp:ping'/>", "b@x/2"), "q1");
        handed_back(
            &r,
            get(
                "<query xmlns='http://jabber.org/protocol/disco#info'/>",
                "c@x/2",
            ),
            "q1",
        );
        let bare = get(
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            "b@x",
        );
        assert!(r.handle_stanza(bare).is_break());
        let set = Stanza::Iq(Iq::Set {
            from: None,
            to: None,
            id: "s".into(),
            payload: DiscoInfoQuery { node: None }.into(),
        });
        handed_back(&r, set, "s");
    }
}
