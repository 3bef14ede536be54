//! XEP-0096 SI File Transfer: file metadata, range, hashing, safe naming
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
