//! The SI stack, receiver side: waiting for the bytestream on the SI sid (S5B if chosen,
//! IBB if it was offered: the libpurple fallback after `item-not-found`, or a peer that
//! opens IBB without waiting for S5B to fail).

use std::sync::Arc;

use ft_transport::StanzaTransport;
use jid::Jid;
use xep0047_ibb::StanzaKind;

use crate::error::{ErrorKind, Stage, TransferError};
use crate::event::{CandidateReport, Event, FallbackReason, MethodUsed};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::shared::Shared;
use crate::stack::Established;

/// Waits for the bytestream: S5B if chosen, IBB if it was offered (fallback, or a peer that
/// opens IBB without waiting for S5B to fail).
pub(super) async fn wait_stream<T, S, I>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    from: &Jid,
    s5b: Option<S>,
    ibb: Option<I>,
) -> Result<Established, TransferError>
where
    T: StanzaTransport + Clone,
    S: Future<Output = Result<xep0065_s5b::Connected, xep0065_s5b::Error>>,
    I: Future<Output = Result<(BoxStream, StanzaKind), xep0047_ibb::Error>>,
{
    let config = &shared.config;
    let cancel = side.cancel.clone();
    let connect = |kind: ErrorKind| TransferError::new(Stage::Connect, kind);
    let mut ibb = ibb.map(Box::pin);
    if let Some(s5b) = s5b {
        let s5b = std::pin::pin!(s5b);
        let ibb_any = async {
            match ibb.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
            r = s5b => Ok(r),
            r = ibb_any => Err(r),
        };
        match first {
            Ok(Ok(c)) => {
                for a in &c.attempts {
                    side.reporter
                        .emit(Event::Candidate(CandidateReport::new(a)));
                }
                let used = MethodUsed::s5b(&c.streamhost, from);
                return Ok(established(Box::pin(c.stream), used, false));
            }
            Ok(Err(e)) => {
                if let xep0065_s5b::Error::NoStreamHost(attempts) = &e {
                    for a in attempts {
                        side.reporter
                            .emit(Event::Candidate(CandidateReport::new(a)));
                    }
                }
                let kind = ErrorKind::from(e);
                let Some(ibb) = ibb.take() else {
                    return Err(connect(kind));
                };
                side.reporter.emit(Event::Fallback {
                    reason: FallbackReason::S5bFailed(Arc::new(kind)),
                    at: side.reporter.at(),
                });
                let r = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
                    r = tokio::time::timeout(config.fallback_window, ibb) => r,
                };
                return match r {
                    Ok(Ok((s, k))) => Ok(established(s, MethodUsed::ibb(k), true)),
                    Ok(Err(e)) => Err(connect(e.into())),
                    Err(_) => Err(connect(ErrorKind::Timeout(config.fallback_window))),
                };
            }
            Err(Ok((s, k))) => {
                side.reporter.emit(Event::Fallback {
                    reason: FallbackReason::PeerOpenedIbb,
                    at: side.reporter.at(),
                });
                return Ok(established(s, MethodUsed::ibb(k), true));
            }
            Err(Err(e)) => return Err(connect(e.into())),
        }
    }
    let Some(ibb) = ibb else {
        return Err(connect(ErrorKind::NoCommonMethod));
    };
    let r = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        r = ibb => r,
    };
    match r {
        Ok((s, k)) => Ok(established(s, MethodUsed::ibb(k), false)),
        Err(e) => Err(connect(e.into())),
    }
}

fn established(stream: BoxStream, method: MethodUsed, fallback: bool) -> Established {
    Established {
        stream,
        method,
        fallback,
        stack: super::Stack::Si,
    }
}
