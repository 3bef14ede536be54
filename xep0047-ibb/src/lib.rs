//! XEP-0047 In-Band Bytestreams: strict, bidirectional, windowed
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
