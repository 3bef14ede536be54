//! Interoperability tests of xft (XEP-0096 v1.3.1 SI File Transfer over XEP-0065 v1.8.2
//! SOCKS5 Bytestreams and XEP-0047 v2.0.1 In-Band Bytestreams) against a real Prosody 0.12
//! and a real slixmpp 1.17; the tests live in `tests/`.
//!
//! # What this crate does and does not do
//!
//! Every test starts its own Prosody (`ft_testkit::Prosody`, free loopback ports) and its
//! own slixmpp peer (`peers/slixpeer.py`), and stops both by their pids. Our side is the
//! `ft-facade` `FileTransfer` over the tokio-xmpp client adapter, with a wire tap that
//! records the IBB `<open/>`s, `<data/>`s, `<close/>`s and iq errors crossing our
//! connection, so a test can assert the method really used, not only the outcome.
//!
//! * `tests/ibb.rs`: ours → slixmpp and slixmpp → ours, over `<iq/>` and `<message/>`,
//!   block sizes 4096 and 65535 (slixmpp's limit raised with `--max-block-size`), 1 MiB;
//!   32 MiB for one iq and one message case in each direction; both methods offered
//!   (slixmpp picks IBB); a 65535 open against slixmpp's stock 8192 limit (its refusal and
//!   our smaller retry, which slixmpp then refuses `not-acceptable`, typed on our side).
//! * `tests/s5b.rs`: both directions through Prosody's `mod_proxy65`, and through our own
//!   `xep0065_proxy::Proxy` attached as the XEP-0114 component (found by slixmpp's and our
//!   discovery, or named with `--proxy`); slixmpp as target dialling our own streamhost.
//!   All streamhosts are on 127.0.0.1.
//! * `tests/complete.rs`: our decline (and our size policy's) as `cancel/forbidden` with the
//!   reason, read back from slixmpp's own `IqError.format()`; slixmpp's decline
//!   (`xep_0095.decline()`, `slixpeer.py recv --decline [TEXT]`) failing our send at stage
//!   `Offer` as `Declined` with its text; slixmpp's `no-valid-streams` and `bad-profile`
//!   typed by our XEP-0095 driver; cancels mid-transfer from each side: ours sending (IBB,
//!   S5B) and receiving (IBB), slixmpp's sender (`send --cancel-after`: IBB `close()` over iq
//!   and message, the S5B socket closed through proxy65) failing our receiver at stage
//!   `Stream` as `Truncated` with the `.part` kept (or not, with `keep_partial` off) and
//!   never a file under the final name, slixmpp's receiver (`recv --cancel-after`, IBB and
//!   S5B) failing our sender as cancelled by the peer; a slixmpp sender that disappears
//!   mid-transfer; an offer to a resource that is not online.
//!
//! It does not measure
//! throughput: every wait is bounded by a generous budget so a broken peer fails a test
//! instead of hanging it. `XFT_SKIP_INTEROP=1` skips every test, loudly.
//!
//! # Example
//!
//! The smallest round trip the tests build on: slixmpp sends a file over IBB, our facade
//! receives it into a directory.
//!
//! ```
//! use ft_facade::{AcceptOptions, Config, FileTransfer, Method, MethodUsed, ProxySource};
//! use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! if !ft_testkit::interop_enabled() {
//!     return;
//! }
//! let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
//! let (bob, inbound) = prosody.connect("bob", "rust").await.unwrap();
//! let mut config = Config::default();
//! config.methods(&[Method::Ibb]).proxies(ProxySource::None);
//! let ft = FileTransfer::new(bob, config);
//! let pumped = ft.clone();
//! tokio::spawn(ft_transport::pump(inbound, move |stanza| pumped.handle_stanza(stanza)));
//!
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("hello.txt");
//! std::fs::write(&file, b"hello from slixmpp").unwrap();
//! let mut alice = SlixPeer::send(&prosody, "alice", "bob@localhost/rust", &file, "ibb-iq", &[])
//!     .await
//!     .unwrap();
//!
//! let inbox = dir.path().join("inbox");
//! std::fs::create_dir(&inbox).unwrap();
//! let offer = ft.next_offer().await.unwrap();
//! let received = offer.accept_into_dir(&inbox, AcceptOptions::new()).outcome().await.unwrap();
//! let sent = alice.wait_event("sent").await.unwrap();
//! assert_eq!(received.method, MethodUsed::IbbIq);
//! assert_eq!(sent["sha256"], received.sha256.as_str());
//! assert_eq!(std::fs::read(inbox.join("hello.txt")).unwrap(), b"hello from slixmpp");
//! # });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]
