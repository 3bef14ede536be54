//! The Jingle File Transfer stack (XEP-0234 over XEP-0166; XEP-0260 and XEP-0261 for the
//! bytes), composed from the `xep0166-jingle`, `xep0234-jingle-ft`, `xep0260-jingle-s5b`,
//! `xep0261-jingle-ibb` and `xep0300-hashes` crates.
//!
//! * [`core`]: the one `Endpoint` of the manager and its tasks.
//! * [`send`]: the sender's negotiation and its end (checksum, delivery state).
//! * [`recv`]: the receiver's offer, answer and transport wait.
//! * [`incoming`]: a session-initiate turned into an offer (policy, bounds).
//! * [`transport`]: candidates, the S5B race, the IBB wait, both roles.
//! * [`link`]: a transfer task's end of its session.
//! * [`pull`]: requesting a file from a peer (XEP-0234 §5), received like an offer.
//! * [`serve`]: a peer's request, for the application to serve or decline.

pub(crate) mod core;
pub(crate) mod incoming;
pub(crate) mod link;
pub(crate) mod pull;
pub(crate) mod recv;
pub(crate) mod send;
pub(crate) mod serve;
pub(crate) mod transport;
