//! The SI stack, receiver side: the answer (method chosen, `<range offset/>` for a
//! resume) and the bytestream awaited on the SI sid.

use std::sync::Arc;

use ft_transport::{Stanza, StanzaTransport};
use jid::Jid;
use xep0095_si::method;
use xep0096_file::{FileOffer, Range};

use crate::error::{ErrorKind, Stage, TransferError};
use crate::event::Event;
use crate::handle::TaskSide;
use crate::shared::Shared;
use crate::stack::Established;

/// Chooses a method, gets ready for the bytestream, answers, and waits for it.
pub(super) async fn answer_and_wait<T: StanzaTransport + Clone>(
    shared: &Arc<Shared<T>>,
    side: &mut TaskSide,
    offer: &FileOffer,
    from: &Jid,
    offset: u64,
) -> Result<Established, TransferError> {
    let inner = &**shared;
    let config = &inner.config;
    let sid = offer.offer.sid.clone();

    // Choose a method and get ready for the bytestream before answering.
    let ours = config.offered_namespaces();
    // Without a size the file ends where the bytestream ends: IBB's <close/> says so
    // explicitly, while an S5B sender of a size-less (empty) file may wait for us to close
    // (QXmpp does): prefer IBB when it was offered.
    let chosen =
        if offer.file.size.is_none() && offer.offer.is_offered(method::IBB) && config.has_ibb() {
            Some(method::IBB)
        } else {
            offer.offer.choose(&ours)
        };
    let Some(chosen) = chosen else {
        crate::shared::spawn_send(shared, Stanza::Iq(offer.offer.no_valid_streams()));
        return Err(TransferError::new(Stage::Offer, ErrorKind::NoCommonMethod));
    };
    let ibb_ok = offer.offer.is_offered(method::IBB) && config.has_ibb();
    // `expect` registers the pre-authorisation when it is called, not when its future is
    // first polled: call it now, before the answer goes out, or a peer that sends its
    // bytestreams offer right after our answer (slixmpp does) finds no session.
    let s5b_wait = (chosen == method::BYTESTREAMS).then(|| {
        inner
            .s5b
            .expect(from.clone(), sid.clone(), config.stream_start_timeout)
    });
    // IBB is awaited even when S5B was chosen: the libpurple fallback after item-not-found,
    // and Spark's open without any earlier error (seed 004).
    let ibb_window = config.stream_start_timeout + config.s5b_budget + config.fallback_window;
    let ibb_wait = ibb_ok.then(|| inner.ibb.expect(from.clone(), sid.clone(), ibb_window));

    let range = (offset > 0).then(|| Range::from_offset(offset));
    let answer = offer.accept(chosen, range).map_err(|e| {
        TransferError::new(
            Stage::Offer,
            ErrorKind::Si(Arc::new(xep0095_si::Error::Misuse(e))),
        )
    })?;
    inner
        .transport
        .send(Stanza::Iq(answer))
        .await
        .map_err(|e| TransferError::new(Stage::Offer, ErrorKind::Transport(Arc::new(e))))?;
    side.reporter.emit(Event::Accepted {
        method: chosen.to_owned(),
        offset,
        at: side.reporter.at(),
    });

    // Connect.
    side.reporter.stage(Stage::Connect);
    super::si_wait::wait_stream(inner, side, from, s5b_wait, ibb_wait).await
}
