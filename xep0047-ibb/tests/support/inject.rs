//! What a hostile or failing peer sends: stanzas put straight into a [`Pair`]'s side `b`
//! as if `a` had sent them, a server's error in place of a delivery, and what `a` must get
//! back.

use xep0047_ibb::{Error, Event, ProtocolError};
use xmpp_parsers::{
    iq::Iq,
    stanza::Stanza,
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
};

use super::{Pair, Side, iq_opts, iq_set};

/// A (type, condition) pair as [`Side::errors_received`] lists them.
pub fn e(t: &str, c: &str) -> (String, String) {
    (t.to_owned(), c.to_owned())
}

/// The errors `side` received, as (type, condition).
pub fn pair_errs(side: &Side) -> Vec<(String, String)> {
    side.errors_received()
}

/// An `<iq type='set' id=id>` carrying `xml`, put into `b` as if from `a`.
pub fn inject_iq_to_b(p: &mut Pair, id: &str, xml: &str) {
    let to = p.b.jid.clone();
    p.inject_to_b(iq_set(id, &to, xml));
}

/// `<data seq=seq>text</data>` on the sid of [`Pair::established`], put into `b`.
pub fn inject_data(p: &mut Pair, seq: &str, text: &str) {
    inject_iq_to_b(
        p,
        &format!("inj{seq}"),
        &format!(
            "<data xmlns='http://jabber.org/protocol/ibb' seq='{seq}' sid='i781hf64'>{text}</data>"
        ),
    );
}

/// A fresh pair whose `b` got `<open {attrs}/>`, driven.
pub fn inject_open_to_fresh_b(attrs: &str) -> Pair {
    let mut p = Pair::new();
    inject_iq_to_b(
        &mut p,
        "o1",
        &format!("<open xmlns='http://jabber.org/protocol/ibb' {attrs}/>"),
    );
    p.drive();
    p
}

/// Drives `p`: `a` got one error `cond` for what was injected, `b` closed the stream and
/// failed with a protocol error that `err` accepts.
pub fn assert_closed_with(p: &mut Pair, cond: (&str, &str), err: impl Fn(&ProtocolError) -> bool) {
    p.drive();
    assert_eq!(pair_errs(&p.a), vec![e(cond.0, cond.1)]);
    assert_eq!(p.a.closes_received(), 1, "b closes the stream");
    match &p.b.read_error {
        Some(Error::Protocol(pe)) if err(pe) => {}
        other => panic!("unexpected read error {other:?}"),
    }
    assert!(matches!(
        p.b.events.last(),
        Some(Event::Failed(Error::Protocol(_)))
    ));
}

/// Chunks `b` takes without a word: on a fresh iq-mode pair at `block_size`, `texts` go in
/// as seq 0, 1, …; no error comes back and `b` reads `want`.
pub fn assert_accepted(block_size: u16, texts: &[&str], want: &[u8]) {
    let mut p = Pair::established(iq_opts(block_size));
    for (seq, text) in texts.iter().enumerate() {
        inject_data(&mut p, &seq.to_string(), text);
    }
    p.drive();
    assert!(pair_errs(&p.a).is_empty(), "{:?}", pair_errs(&p.a));
    assert_eq!(p.b.read, want);
}

/// What a server on the way answers in place of delivering the set `id`: an error
/// `error_type`/`condition`.
pub fn iq_error(id: &str, error_type: ErrorType, condition: DefinedCondition) -> Stanza {
    Stanza::Iq(Iq::Error {
        from: None,
        to: None,
        id: id.to_owned(),
        error: StanzaError::new(error_type, condition, "en", ""),
        payload: None,
    })
}
