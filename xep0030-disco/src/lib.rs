//! XEP-0030 Service Discovery (v2.5.0) for XMPP file transfer: feature checks, proxy discovery, disco#info answers
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "tokio")]
pub mod error;
pub mod proto;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "tokio")]
pub use error::Error;
pub use proto::{DiscoResponder, features, has_identity, identity, is_bytestreams_proxy};
#[cfg(feature = "tokio")]
pub use tokio::{Disco, DiscoConfig};
pub use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
