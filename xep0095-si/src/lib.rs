//! XEP-0095 Stream Initiation (v1.2): offer, stream-method negotiation, SI errors
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod compat;
pub mod error;
pub mod payload;
pub mod proto;
#[cfg(feature = "tokio")]
mod tokio;

pub use error::{AppCondition, Error, Misuse, Rejection, SiError};
pub use payload::{FeatureNeg, NS_FEATURE_NEG, NS_SI, STREAM_METHOD, Si, Sid, method};
pub use proto::{Accepted, Answer, Offer, error_reply, offer_iq, parse_answer, pick_method};
#[cfg(feature = "tokio")]
pub use tokio::offer;
