//! How the sending side keeps its pipeline fed (issue 13, IBB over a raw stream): the
//! writer hears about free send-buffer space as soon as there is some.

mod support;

use support::{Pair, iq_opts};
use xep0047_ibb::Event;

#[test]
fn a_writer_blocked_on_a_full_send_buffer_is_told_when_a_chunk_goes_in_flight() {
    let mut p = Pair::established(iq_opts(4096));
    let s = p.a.s();
    while s.poll_event().is_some() {}
    let room = s.send_capacity();
    assert_eq!(s.send(&vec![7; room]).unwrap(), room);
    assert_eq!(s.send_capacity(), 0, "the writer now waits for Writable");
    assert!(
        s.poll_transmit().is_some(),
        "a chunk goes out (the window is open)"
    );
    // The chunk's bytes no longer count against the buffer (they are in flight)...
    assert_eq!(s.send_capacity(), 4096);
    // ...and the writer is told now, not one acknowledgement round trip later.
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Writable)),
        "{events:?}"
    );
    // Only a writer that found the buffer full is woken: the next chunk tells nobody.
    assert!(s.poll_transmit().is_some());
    assert!(s.poll_event().is_none());
}

/// Writes plenty on an established session of `block_size` (every chunk that size) and
/// sends what the window allows without any acknowledgement; the chunks in flight.
fn in_flight_after_a_burst(
    block_size: u16,
    config: impl FnOnce(&mut xep0047_ibb::Config),
) -> usize {
    let mut p = Pair::new();
    p.a.config
        .adaptive_chunks(false)
        .initial_window(64)
        .max_in_flight(64);
    config(&mut p.a.config);
    p.open("burst", iq_opts(block_size));
    p.drive();
    let s = p.a.s();
    let mut sent = 0;
    for _ in 0..200 {
        let room = s.send_capacity();
        s.send(&vec![1; room]).unwrap();
        match s.poll_transmit() {
            Some(_) => sent += 1,
            None => break,
        }
    }
    assert_eq!(s.in_flight(), sent);
    sent
}

#[test]
fn the_bytes_in_flight_are_bounded_as_well_as_the_chunks() {
    // Default bound, 512 KiB: 8 chunks of 65535 bytes, the whole window of 4096-byte ones.
    assert_eq!(in_flight_after_a_burst(65535, |_| {}), 8);
    assert_eq!(in_flight_after_a_burst(4096, |_| {}), 64);
    // One chunk always goes, whatever the bound.
    assert_eq!(
        in_flight_after_a_burst(65535, |c| {
            c.max_in_flight_bytes(1000);
        }),
        1
    );
    // A bound of a whole window leaves the window alone.
    assert_eq!(
        in_flight_after_a_burst(65535, |c| {
            c.max_in_flight_bytes(64 * 65535);
        }),
        64
    );
}

#[test]
fn a_reader_can_take_whole_chunks_out_and_hand_their_buffers_back() {
    let mut p = Pair::established(iq_opts(4096));
    p.b.auto_read = false;
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    p.a.write(&data, false);
    p.a.s().flush();
    p.drive();
    let b = p.b.s();
    assert_eq!(b.readable(), 10_000);
    // A partial read first; the next chunk taken out is the rest of the first one.
    let mut head = [0u8; 100];
    assert_eq!(b.read(&mut head).unwrap(), 100);
    let mut got = head.to_vec();
    let first = b.read_chunk().unwrap().expect("a chunk");
    assert_eq!(first.len(), 4096 - 100);
    got.extend_from_slice(&first);
    b.recycle_chunk(first);
    while let Some(chunk) = b.read_chunk().unwrap() {
        got.extend_from_slice(&chunk);
        b.recycle_chunk(chunk);
    }
    assert_eq!(got, data);
    assert_eq!(b.readable(), 0);
    assert!(
        b.read_chunk().unwrap().is_none(),
        "nothing buffered, no error"
    );
}
