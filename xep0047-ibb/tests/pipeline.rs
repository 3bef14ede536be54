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
