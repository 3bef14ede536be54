//! XEP-0065 SOCKS5 Bytestreams: codec, direct and mediated streams, proxy service
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
