//! xft benchmarks: criterion micro-benchmarks and the end-to-end transfer suite (XEP-0065
//! SOCKS5 Bytestreams 1.8.2 and XEP-0047 In-Band Bytestreams 2.0.1) with its dashboard.
//!
//! # What this crate does and does not do
//!
//! * [`suite::run`] runs every case of the suite and returns a [`report::Report`]; the
//!   `transfer` binary (and `xft bench`) write it as `docs/bench/results.json`, a Markdown
//!   table `latest.md` and a self-contained dashboard `index.html` ([`render`]); each full
//!   run is also kept in `docs/bench/history/` ([`history`]), and the dashboard draws every
//!   goal across the recorded runs (`dashboard` binary: re-render or record without
//!   running the suite).
//! * Each case moves a pattern that the receiver checks byte for byte ([`pattern`]), several
//!   times, each run bounded by a time budget ([`measure`]): a case that stalls fails, it
//!   never hangs the suite. Figures: MB/s (MB = 10^6 bytes, median and range), per-chunk
//!   acknowledgement latency for IBB over iq, peak RSS and CPU seconds of this process, and
//!   each as a ratio to the ceiling measured in the same run ([`ceiling`]).
//! * The raw-XML cases run the shipped client transport (`ft_transport::xmpp`, over
//!   `ft_transport::codec`) on a loopback stream with no server
//!   ([`transfer::serverless_pair`]); the suite carries no transport of its own.
//! * The external cases ([`external`]) run Prosody and slixmpp when they are installed.
//!
//! It does not gate anything on timings: no figure is asserted anywhere, and the tests only
//! prove that each case still runs and moves every byte.
//!
//! # Example
//!
//! ```
//! use benches::suite::{self, Options, MIB};
//!
//! // Just the raw TCP ceiling, 1 MiB once.
//! let mut opts = Options::quick();
//! opts.sizes = vec![MIB];
//! opts.filter = vec!["ceiling/raw-tcp".into()];
//! opts.in_process_only = true;
//! let report = suite::run(opts).unwrap();
//! let case = report.case("ceiling/raw-tcp/1MiB").unwrap();
//! assert_eq!(case.outcome, benches::report::Outcome::Ok);
//! assert!(case.mbps.unwrap().median > 0.0);
//! assert!(benches::render::markdown(&report).contains("ceiling/raw-tcp/1MiB"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod blocksize;
pub mod ceiling;
pub mod external;
pub mod goals;
pub mod history;
pub mod machine;
pub mod measure;
pub mod offer;
pub mod pattern;
pub mod rawclient;
pub mod render;
pub mod report;
pub mod setup;
pub mod stacks;
pub mod suite;
pub mod transfer;
