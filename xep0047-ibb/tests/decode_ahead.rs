//! A chunk decoded ahead of its session (`proto::decode_ahead`, what the tokio driver does
//! so that it decodes outside the session's lock) gets exactly the answer, the bytes and the
//! error it gets when the session decodes it: every case below runs both ways and the
//! outcomes are compared.

mod support;

use support::inject::{inject_data, inject_iq_to_b, pair_errs};
use support::{Pair, iq_opts, message_with, msg_opts, pattern};
use xep0047_ibb::OpenOptions;
use xmpp_parsers::stanza::Stanza;

/// What the peer and the application see.
#[derive(Debug, PartialEq)]
struct Outcome {
    errors_to_sender: Vec<(String, String)>,
    closes_to_sender: usize,
    read: Vec<u8>,
    read_error: String,
    events: String,
}

fn run(options: OpenOptions, ahead: bool, inject: &dyn Fn(&mut Pair)) -> Outcome {
    let mut p = Pair::established(options);
    p.b.decode_ahead = ahead;
    inject(&mut p);
    p.drive();
    Outcome {
        errors_to_sender: pair_errs(&p.a),
        closes_to_sender: p.a.closes_received(),
        read: p.b.read.clone(),
        read_error: format!("{:?}", p.b.read_error),
        events: format!("{:?}", p.b.events),
    }
}

fn same_both_ways(what: &str, options: OpenOptions, inject: &dyn Fn(&mut Pair)) -> Outcome {
    let plain = run(options, false, inject);
    let ahead = run(options, true, inject);
    assert_eq!(plain, ahead, "{what}");
    ahead
}

fn data_msg(p: &mut Pair, seq: &str, sid: &str, text: &str) {
    let to = p.b.jid.clone();
    p.inject_to_b(message_with(
        &to,
        &format!(
            "<data xmlns='http://jabber.org/protocol/ibb' seq='{seq}' sid='{sid}'>{text}</data>"
        ),
    ));
}

#[test]
fn chunks_decoded_ahead_are_read_as_the_session_would_decode_them() {
    let good = same_both_ways("two chunks", iq_opts(4096), &|p| {
        inject_data(p, "0", "QUJD");
        inject_data(p, "1", "REVG");
    });
    assert_eq!(good.read, b"ABCDEF");
    assert!(good.errors_to_sender.is_empty());
    let wrapped = same_both_ways("wrapped lines", iq_opts(3), &|p| {
        inject_data(p, "0", "\n  QU\n  JD\n  ");
    });
    assert_eq!(wrapped.read, b"ABC");
    let empty = same_both_ways("an empty chunk", iq_opts(4096), &|p| {
        inject_data(p, "0", "");
        inject_data(p, "1", "QUJD");
    });
    assert_eq!(empty.read, b"ABC");
}

#[test]
fn a_whole_transfer_with_chunks_decoded_ahead_arrives_intact() {
    // (Message mode has no flow control in the simulation: its reader is overrun.)
    for options in [iq_opts(4096), iq_opts(1000), iq_opts(65535)] {
        let mut p = Pair::established(options);
        p.b.decode_ahead = true;
        p.a.decode_ahead = true;
        let data = pattern(300_000);
        p.a.write(&data, true);
        p.drive();
        assert!(
            p.b.read == data,
            "{options:?}: {} bytes read",
            p.b.read.len()
        );
        assert!(p.b.s().is_eof());
    }
}

#[test]
fn f8_invalid_base64_decoded_ahead_gets_the_same_answer() {
    for text in ["QU=D", "=AAA", "QUI", "QUI==", "QU*D", "QU-D"] {
        let out = same_both_ways(text, iq_opts(4096), &|p| inject_data(p, "0", text));
        assert_eq!(out.errors_to_sender.len(), 1, "{text}");
        assert!(
            out.read_error.contains("Malformed"),
            "{text}: {}",
            out.read_error
        );
        assert!(out.read.is_empty());
    }
}

#[test]
fn a5_text_too_long_is_not_decoded_ahead_and_gets_the_same_answer() {
    // Eight characters that are not even base64, for a block-size of 3: refused from their
    // length by the session, never decoded (decode_ahead declines them).
    let long = same_both_ways("too long", iq_opts(3), &|p| {
        inject_data(p, "0", "QUJD");
        inject_data(p, "1", "!!!!!!!!");
    });
    assert!(
        long.read_error.contains("ChunkTooLarge"),
        "{}",
        long.read_error
    );
    assert_eq!(long.read, b"ABC");
}

#[test]
fn other_bad_chunks_decoded_ahead_get_the_same_answer_in_the_same_order() {
    // The sequence number is checked before the text: a gap with bad base64 is the gap.
    let gap = same_both_ways("gap and bad base64", iq_opts(4096), &|p| {
        inject_data(p, "0", "QUJD");
        inject_data(p, "2", "QU*D");
    });
    assert!(
        gap.read_error.contains("UnexpectedSeq"),
        "{}",
        gap.read_error
    );
    // Decodes to more than the block size (F9).
    let big = same_both_ways("decodes too large", iq_opts(2), &|p| {
        inject_data(p, "0", "QUJD");
    });
    assert!(
        big.read_error.contains("ChunkTooLarge"),
        "{}",
        big.read_error
    );
    // Another sid is not this session's (F3).
    let other = same_both_ways("unknown sid", iq_opts(4096), &|p| {
        inject_iq_to_b(
            p,
            "x",
            "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='nope'>AAAA</data>",
        );
    });
    assert_eq!(other.errors_to_sender.len(), 1);
}

#[test]
fn message_chunks_decoded_ahead_match_too() {
    let two = same_both_ways("message mode", msg_opts(4096), &|p| {
        data_msg(p, "0", "i781hf64", "QUJD");
        data_msg(p, "1", "i781hf64", "REVG");
    });
    assert_eq!(two.read, b"ABCDEF");
    let bad = same_both_ways("bad base64 in a message", msg_opts(4096), &|p| {
        data_msg(p, "0", "i781hf64", "QU*D");
    });
    assert!(bad.read_error.contains("Malformed"), "{}", bad.read_error);
    // A message whose first <data/> is another session's: ours is the second one.
    let to_other = same_both_ways("two data payloads", msg_opts(4096), &|p| {
        let to = p.b.jid.clone();
        let mut m = message_with(
            &to,
            "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='other'>REVG</data>",
        );
        if let Stanza::Message(m) = &mut m {
            m.payloads.push(
                "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='i781hf64'>QUJD</data>"
                    .parse()
                    .unwrap(),
            );
        }
        p.inject_to_b(m);
    });
    assert_eq!(to_other.read, b"ABC");
}
