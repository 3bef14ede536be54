#![no_main]

//! A responder IBB session fed whatever a hostile peer can send after a valid open: data in
//! iq or message with any seq and any text, closes, reads and the clock moving. The session
//! must never panic, never hold more than its bounds, and once it has failed must not hand
//! out data that arrived after the failure.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use minidom::Element;
use xep0047_ibb::Config;
use xep0047_ibb::Session;
use xep0047_ibb::proto::IncomingOpen;
use xmpp_parsers::stanza::Stanza;

const NS: &str = "http://jabber.org/protocol/ibb";
const BLOCK: u16 = 64;
const RECV_BUFFER: usize = 512;
/// The hard cap on buffered received bytes, whatever the peer does with acknowledgements.
const OVERRUN: usize = 1024;

fn stanza(xml: &str) -> Option<Stanza> {
    let el: Element = xml.parse().ok()?;
    Stanza::try_from(el).ok()
}

fn escape(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

fuzz_target!(|data: &[u8]| {
    let mut config = Config::default();
    config
        .max_block_size(BLOCK)
        .recv_buffer(RECV_BUFFER)
        .message_overrun(OVERRUN);
    let open = stanza(&format!(
        "<iq xmlns='jabber:client' type='set' id='o' from='a@x/r' to='b@x/r'>\
         <open xmlns='{NS}' sid='s' block-size='{BLOCK}' stanza='iq'/></iq>"
    ))
    .unwrap();
    let incoming = IncomingOpen::parse(&open).unwrap().unwrap();
    let mut now = Instant::now();
    let mut session = Session::accept(&config, &incoming, now);
    let mut read_total = 0usize;
    let mut failed_at_read: Option<usize> = None;
    let mut ops = data;
    while let [op, arg, rest @ ..] = ops {
        ops = rest;
        match op % 6 {
            0 | 1 => {
                // data with seq `arg` (mostly in order) and the next `len` bytes as text
                let len = usize::from(rest.first().copied().unwrap_or(0)) % 120;
                let text = rest.get(1..1 + len).unwrap_or_default();
                ops = rest.get(1 + len..).unwrap_or_default();
                let seq = u16::from(*arg) % 8;
                let body = format!(
                    "<data xmlns='{NS}' sid='s' seq='{seq}'>{}</data>",
                    escape(text)
                );
                let xml = if op % 6 == 0 {
                    format!(
                        "<iq xmlns='jabber:client' type='set' id='d{seq}' from='a@x/r' to='b@x/r'>{body}</iq>"
                    )
                } else {
                    format!(
                        "<message xmlns='jabber:client' from='a@x/r' to='b@x/r'>{body}</message>"
                    )
                };
                if let Some(s) = stanza(&xml) {
                    let _ = session.handle_stanza(now, s);
                }
            }
            2 => {
                if let Some(s) = stanza(&format!(
                    "<iq xmlns='jabber:client' type='set' id='c' from='a@x/r' to='b@x/r'><close xmlns='{NS}' sid='s'/></iq>"
                )) {
                    let _ = session.handle_stanza(now, s);
                }
            }
            3 => {
                let mut buf = vec![0u8; 1 + usize::from(*arg) * 4];
                match session.read(&mut buf) {
                    Ok(n) => {
                        assert!(failed_at_read.is_none(), "data handed out after a failure");
                        read_total += n;
                    }
                    Err(_) => {
                        failed_at_read.get_or_insert(read_total);
                    }
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(*arg) * 250);
                session.handle_timeout(now);
            }
            _ => {
                // something that is not ours must come back untouched
                if let Some(s) = stanza(
                    "<message xmlns='jabber:client' from='a@x/r' to='b@x/r'><body>hi</body></message>",
                ) {
                    assert!(matches!(
                        session.handle_stanza(now, s),
                        ControlFlow::Continue(_)
                    ));
                }
            }
        }
        while session.poll_transmit().is_some() {}
        while session.poll_event().is_some() {}
        assert!(
            session.readable() <= OVERRUN + usize::from(BLOCK),
            "receive buffer over its bound: {}",
            session.readable()
        );
    }
});
