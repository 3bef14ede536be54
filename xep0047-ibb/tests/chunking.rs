//! Chunk sizes chosen by what the path gives (issue 13): deterministic two-peer
//! simulations on a virtual clock, the receiver's view of every `<data/>` chunk.

mod support;

use std::time::Duration;

use support::{Pair, iq_opts, pattern};
use xep0047_ibb::payload::{NS_IBB, decode_text};
use xep0047_ibb::{OpenOptions, StanzaKind};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

const MIB: usize = 1 << 20;

/// The length of every `<data/>` chunk b received, in order.
fn chunks(p: &Pair) -> Vec<usize> {
    p.b.received
        .iter()
        .filter_map(|s| match s {
            Stanza::Iq(Iq::Set { payload, .. }) if payload.is("data", NS_IBB) => {
                Some(decode_text(payload).unwrap().len())
            }
            _ => None,
        })
        .collect()
}

/// The bytes of a stanza's `<data/>` text (0 for anything else).
fn data_len(s: &Stanza) -> usize {
    match s {
        Stanza::Iq(Iq::Set { payload, .. }) if payload.is("data", NS_IBB) => {
            decode_text(payload).map_or(0, |d| d.len())
        }
        _ => 0,
    }
}

/// Sends `n` bytes a -> b, opened with `options`, and checks they all arrive.
fn transfer(p: &mut Pair, options: OpenOptions, n: usize) {
    p.open("chunks", options);
    p.drive();
    let data = pattern(n);
    p.a.write(&data, true);
    p.drive();
    assert!(p.b.read == data, "bytes differ");
}

#[test]
fn a_path_that_carries_any_size_alike_gets_the_block_size_after_a_search_from_4096() {
    // 10 ms per stanza whatever its size, many in flight: larger chunks are faster.
    let mut p = Pair::new();
    transfer(&mut p, iq_opts(65535), 16 * MIB);
    let c = chunks(&p);
    assert_eq!(c[0], 4096, "starts at 4096");
    assert_eq!(c[c.len() - 2], 65535, "ends at the block-size");
    let s = p.a.s().sizer().unwrap();
    assert!(s.is_settled());
    assert!(
        s.rates().iter().all(Option::is_some),
        "every size probed: {:?}",
        s.rates()
    );
}

#[test]
fn a_path_where_large_stanzas_are_slow_settles_on_4096_after_one_probe_above() {
    // A stock Prosody relays one stanza at a time: 0.5 ms for one of up to 4096 bytes of
    // payload (8 MB/s), 2 ms per 4096 bytes above that (2 MB/s: its reads pause for the
    // event loop's `min_wait` whenever they leave bytes buffered).
    let mut p = Pair::new();
    p.latency_of = Some(|s| match data_len(s) {
        0..=4096 => Duration::from_micros(500),
        n => Duration::from_millis(2) * n.div_ceil(4096) as u32,
    });
    transfer(&mut p, iq_opts(65535), 8 * MIB);
    let c = chunks(&p);
    let large: usize = c.iter().filter(|n| **n > 4096).sum();
    assert!(c.iter().all(|n| *n <= 16384), "never above 16384: {c:?}");
    assert!(large <= MIB, "{large} bytes sent in 16384-byte chunks");
    assert_eq!(c[c.len() - 2], 4096, "settled back on 4096");
    assert_eq!(
        p.a.s().sizer().unwrap().rates()[2],
        None,
        "65535 never probed"
    );
}

#[test]
fn a_peers_resource_constraint_caps_the_search() {
    let mut p = Pair::new();
    p.b.config.max_block_size(16384);
    transfer(&mut p, iq_opts(65535), 4 * MIB);
    assert_eq!(p.a.s().block_size(), 16384);
    let c = chunks(&p);
    assert!(c.iter().all(|n| *n <= 16384));
    assert_eq!(c[c.len() - 2], 16384);
    assert_eq!(p.a.s().sizer().unwrap().candidates(), &[4096, 16384]);
}

#[test]
fn a_block_size_the_user_names_is_used_for_every_chunk() {
    let mut p = Pair::new();
    p.a.config.adaptive_chunks(false);
    transfer(&mut p, iq_opts(65535), 2 * MIB + 5);
    let c = chunks(&p);
    assert!(c[..c.len() - 1].iter().all(|n| *n == 65535), "{c:?}");
    assert!(p.a.s().sizer().is_none());
}

#[test]
fn message_mode_has_nothing_to_measure_and_stays_at_4096() {
    let mut p = Pair::new();
    p.b.config.max_queued_blocks(usize::MAX);
    p.open(
        "msg",
        OpenOptions {
            block_size: 65535,
            stanza: StanzaKind::Message,
        },
    );
    p.drive();
    let data = pattern(MIB);
    p.a.write(&data, true);
    p.drive();
    assert!(p.b.read == data);
    let c: Vec<usize> =
        p.b.received
            .iter()
            .filter_map(|s| match s {
                Stanza::Message(m) => m
                    .payloads
                    .iter()
                    .find(|e| e.is("data", NS_IBB))
                    .map(|d| decode_text(d).unwrap().len()),
                _ => None,
            })
            .collect();
    assert_eq!(c.len(), MIB / 4096);
    assert!(c.iter().all(|n| *n == 4096));
}
