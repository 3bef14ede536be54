//! XEP-0030 Service Discovery (v2.5.0) for file transfer: features, proxies, answers.
//!
//! Feature checks of a peer, discovery of the server's SOCKS5 proxies, and our own
//! disco#info answers.
//!
//! # Flow
//!
//! As XEP-0030 §3–4 draw it, for what file transfer needs (a peer's features, the server's
//! SOCKS5 proxies):
//!
//! ```text
//! Requester                                          Entity
//!   | iq get <query xmlns='…disco#info'/>                  |
//!   |----------------------------------------------------->|
//!   | iq result <identity category='client' type='pc'/>    |
//!   |           <feature var='…si'/> <feature var='…ibb'/> |
//!   |<-----------------------------------------------------|
//!
//! Requester                                          Our server
//!   | iq get <query xmlns='…disco#items'/>                 |
//!   |----------------------------------------------------->|
//!   | iq result <item jid='proxy.example.org'/> …          |
//!   |<-----------------------------------------------------|
//!   | iq get disco#info  to proxy.example.org              |
//!   |----------------------------------------------------->|
//!   | iq result <identity category='proxy' type='bytestreams'/>
//!   |<-----------------------------------------------------|
//! ```
//!
//! # What this crate does and does not do
//!
//! * Answering: [`DiscoResponder`] answers disco#info (identity `client/pc` and the
//!   file-transfer features by default: si, the si file-transfer profile, bytestreams,
//!   ibb, disco#info) and disco#items for our own JID, and `cancel/item-not-found` for a
//!   node it does not have. It is sans-IO: it hands back the reply to send.
//! * Asking (feature `tokio`): [`Disco`] sends disco#info / disco#items with a timeout on
//!   every query and caches answers with an expiry ([`DiscoConfig`]); [`Disco::supports`]
//!   checks a peer's feature and [`Disco::find_proxies`] finds a server's SOCKS5 proxies
//!   (disco#items, then disco#info on each item, keeping identity `proxy/bytestreams`).
//!   A server listing thousands of items costs at most 20 probes, 4 at a time, all within
//!   30 s ([`DiscoConfig::max_probed_items`], [`DiscoConfig::max_parallel_probes`],
//!   [`DiscoConfig::find_proxies_deadline`]).
//!
//! It reuses the xmpp-parsers `disco` types. It does not compute XEP-0115 entity
//! capabilities, does not page with RSM, and does not ask a proxy for its streamhosts
//! (that bytestreams query belongs to `xep0065-s5b`).
//!
//! # Example
//!
//! ```
//! use std::ops::ControlFlow;
//! use xep0030_disco::{DiscoResponder, features, parse_info_result};
//! use xmpp_parsers::{disco::DiscoInfoQuery, iq::Iq, stanza::Stanza};
//!
//! let me = "bob@example.org/pc".parse().unwrap();
//! let responder = DiscoResponder::file_transfer_client().with_jid(me);
//!
//! // Pidgin checks our features before it offers a file (seed 002).
//! let request = Iq::from_get("info1", DiscoInfoQuery { node: None })
//!     .with_from("alice@example.org/home".parse().unwrap())
//!     .with_to("bob@example.org/pc".parse().unwrap());
//! let ControlFlow::Break(Some(Stanza::Iq(reply))) = responder.handle_stanza(Stanza::Iq(request))
//! else {
//!     unreachable!("a disco#info get to us is ours")
//! };
//! let Iq::Result { id, payload: Some(info), .. } = reply else { unreachable!() };
//! assert_eq!(id, "info1");
//! let info = parse_info_result(info).unwrap();
//! assert!(info.features.contains(features::SI_FILE_TRANSFER));
//! ```
//!
//! The client over the in-memory hub (any `ft_transport::StanzaTransport` works the same):
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::{ops::ControlFlow, sync::Arc};
//! use ft_transport::{StanzaTransport, hub::Hub, iq::IqTracker};
//! use xep0030_disco::{Disco, DiscoConfig, DiscoResponder, identity};
//!
//! let hub = Hub::new();
//! // A proxy component under example.org that answers disco#info.
//! let (proxy, mut proxy_rx) = hub.connect("proxy.example.org".parse().unwrap());
//! tokio::spawn(async move {
//!     let responder = DiscoResponder::new(identity("proxy", "bytestreams"));
//!     while let Some(s) = proxy_rx.recv().await {
//!         if let ControlFlow::Break(Some(reply)) = responder.handle_stanza(s) {
//!             proxy.send(reply).await.unwrap();
//!         }
//!     }
//! });
//! // Our client: every inbound stanza goes to the iq tracker.
//! let (me, mut me_rx) = hub.connect("alice@example.org/home".parse().unwrap());
//! let tracker = Arc::new(IqTracker::new("disco"));
//! let t = tracker.clone();
//! tokio::spawn(async move {
//!     while let Some(s) = me_rx.recv().await {
//!         let _ = t.handle_stanza(s);
//!     }
//! });
//! let disco = Disco::new(me, tracker, DiscoConfig::default());
//! let proxies = disco.find_proxies(&"example.org".parse().unwrap()).await.unwrap();
//! assert_eq!(proxies, ["proxy.example.org".parse::<ft_transport::Jid>().unwrap()]);
//! # });
//! ```
//!
//! # Interoperability
//!
//! Results with stray text inside the query (documents eliding features with `...`) are
//! read by dropping the text ([`parse_info_result`], [`parse_items_result`]); xmpp-parsers
//! alone refuses them.
//!
//! # Cargo features
//!
//! * `tokio` (default): [`Disco`], the caching async client over `ft_transport`.
//! * `__fuzzing`: private, don't rely on this.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "tokio")]
pub mod error;
#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod proto;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "tokio")]
pub use error::Error;
pub use proto::{
    DiscoResponder, features, has_identity, identity, is_bytestreams_proxy, parse_info_result,
    parse_items_result,
};
#[cfg(feature = "tokio")]
pub use tokio::{Disco, DiscoConfig};
pub use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
