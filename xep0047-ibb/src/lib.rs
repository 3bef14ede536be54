//! XEP-0047 In-Band Bytestreams (v2.0.1): strict, bidirectional, windowed.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod config;
pub mod error;
pub mod payload;
pub mod proto;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use config::{Config, OpenOptions};
pub use error::{Error, MisuseError, PayloadError, ProtocolError, TimeoutKind};
pub use payload::{Close, Data, Open, Payload, Sid, StanzaKind};
pub use proto::{Event, Role, Session};
#[cfg(feature = "tokio")]
pub use tokio::{Ibb, IbbStream, IncomingOpen};
