//! Interoperability tests of xft against a real Prosody server and slixmpp peer: see `tests/`.
