//! Two endpoints with Jingle FT configured, and a deterministic "server".
#![allow(dead_code, unreachable_pub)]

use std::time::Instant;

use minidom::Element;
use xep0166_jingle::{Config, Endpoint, Event};

pub const A: &str = "romeo@montague.example/orchard";
pub const B: &str = "juliet@capulet.example/balcony";

pub struct Pair {
    pub a: Endpoint,
    pub b: Endpoint,
    pub now: Instant,
}

impl Pair {
    pub fn new() -> Self {
        let mut c = Config::default();
        xep0234_jingle_ft::configure(&mut c);
        Self {
            a: Endpoint::new(A.parse().unwrap(), c.clone()),
            b: Endpoint::new(B.parse().unwrap(), c),
            now: Instant::now(),
        }
    }

    /// Delivers both ways until quiet; returns the events of a and b.
    pub fn run(&mut self) -> (Vec<Event>, Vec<Event>) {
        loop {
            let mut moved = false;
            while let Some(iq) = self.a.poll_transmit() {
                let _ = self.b.handle_iq(self.now, iq.with_from(A.parse().unwrap()));
                moved = true;
            }
            while let Some(iq) = self.b.poll_transmit() {
                let _ = self.a.handle_iq(self.now, iq.with_from(B.parse().unwrap()));
                moved = true;
            }
            if !moved {
                break;
            }
        }
        (
            std::iter::from_fn(|| self.a.poll_event()).collect(),
            std::iter::from_fn(|| self.b.poll_event()).collect(),
        )
    }
}

pub fn el(s: &str) -> Element {
    s.parse().unwrap()
}

pub fn ibb(sid: &str) -> Element {
    el(&format!(
        "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' sid='{sid}' block-size='4096'/>"
    ))
}
