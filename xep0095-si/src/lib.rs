//! XEP-0095 Stream Initiation: offer, stream-method negotiation, SI errors
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
