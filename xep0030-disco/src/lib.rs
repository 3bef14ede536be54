//! XEP-0030 Service Discovery for XMPP file transfer: feature checks, proxy discovery, disco#info answers
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
