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
