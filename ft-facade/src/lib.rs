//! The complete XMPP file transfer (XEP-0096 SI File Transfer over XEP-0065 and XEP-0047).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod config;
mod copy;
mod error;
mod event;
mod handle;

pub use config::{Config, IbbStanza, Method, Policy, ProxySource, UnknownMethod};
pub use error::{ErrorKind, Side, Stage, TransferError};
pub use event::{CandidateReport, Event, FileInfo, MethodUsed, Outcome, Progress};
pub use handle::{Canceller, PROGRESS_INTERVAL, TransferHandle};
mod glue;
mod manager;
mod recv;
mod send;

pub use manager::{FileTransfer, SendOptions};
pub use recv::{AcceptOptions, IncomingOffer};

/// XEP-0030 Service Discovery (the `xep0030-disco` crate).
pub use xep0030_disco as disco;
/// XEP-0047 In-Band Bytestreams (the `xep0047-ibb` crate).
pub use xep0047_ibb as ibb;
/// XEP-0065 SOCKS5 Bytestreams (the `xep0065-s5b` crate).
pub use xep0065_s5b as s5b;
/// XEP-0095 Stream Initiation (the `xep0095-si` crate).
pub use xep0095_si as si;
/// XEP-0096 SI File Transfer (the `xep0096-file` crate).
pub use xep0096_file as file;
