//! The transports of a Jingle session, both roles: our XEP-0260 candidates (our listener
//! and proxies per [`ProxySource`](crate::ProxySource) / [`S5bRoute`]), the race run by
//! `xep0260-jingle-s5b`'s driver through the [`Link`], and the XEP-0261 IBB session on
//! the existing IBB manager.

use ft_transport::{Sid, StanzaTransport};
use jid::Jid;
use xep0260_jingle_s5b::proto::{Negotiation, Role};
use xep0260_jingle_s5b::{Driver, Kind, LocalCandidates};

use super::core::JingleCore;
use super::link::Link;
use crate::config::S5bRoute;
use crate::error::{ErrorKind, Stage, TransferError};
use crate::event::{CandidateReport, Event, MethodUsed};
use crate::glue::BoxStream;
use crate::handle::TaskSide;
use crate::shared::Shared;

/// The S5B config the Jingle race uses: the facade's, budget capped.
pub(crate) fn s5b_config<T: StanzaTransport + Clone>(shared: &Shared<T>) -> xep0065_s5b::Config {
    let mut c = shared.config.s5b.clone();
    c.connect_budget = c.connect_budget.min(shared.config.s5b_budget);
    c
}

/// Our candidates for `route`: the listener's addresses (not for `Proxy`) and the proxies
/// (not for `Direct`), resolved to IP addresses.
pub(crate) async fn local_candidates<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    core: &JingleCore<T>,
    side: &mut TaskSide,
    route: S5bRoute,
    direct_ok: bool,
) -> Result<LocalCandidates, TransferError> {
    let config = &shared.config;
    let direct = if route == S5bRoute::Proxy || !direct_ok {
        Vec::new()
    } else {
        core.direct_candidates(&config.s5b).await
    };
    let mut proxies = Vec::new();
    if route != S5bRoute::Direct {
        side.reporter.stage(Stage::Proxies);
        let cancel = side.cancel.clone();
        let found = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Proxies)),
            r = tokio::time::timeout(config.s5b_budget, shared.proxies()) => r,
        };
        let mut hosts = match found {
            Ok(Ok(p)) => p,
            _ => Vec::new(),
        };
        hosts.extend(config.s5b.proxies.iter().cloned());
        side.reporter.emit(Event::Proxies {
            streamhosts: hosts
                .iter()
                .map(|s| format!("{} {}:{}", s.jid, s.host, s.port))
                .collect(),
            at: side.reporter.at(),
        });
        proxies = xep0260_jingle_s5b::resolve_proxies(&hosts, config.s5b.handshake_timeout).await;
        if route == S5bRoute::Proxy && proxies.is_empty() {
            return Err(TransferError::new(Stage::Proxies, ErrorKind::NoProxy));
        }
    }
    Ok(LocalCandidates { direct, proxies })
}

/// A fresh negotiation of transport `tsid` with `peer`.
pub(crate) fn negotiation<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    core: &JingleCore<T>,
    role: Role,
    peer: &Jid,
    tsid: Sid,
    local: &LocalCandidates,
) -> Negotiation {
    let mut c = s5b_config(shared);
    c.id_prefix = format!("{}j", c.id_prefix);
    let mut n = Negotiation::new(&c, role, core.me().into(), peer.clone(), tsid, local);
    // Gajim 1.7.3 under load puts its candidate on the wire before its listener is up: an
    // immediate dial is refused (the benchmark's setup case failed 1 in 3 so). A refused
    // candidate is dialled again after 25, 50, … 150 ms, within the budget; a refusal that
    // lasts delays the fallback by those 525 ms.
    n.redial_refused(REDIALS, REDIAL_STEP);
    n
}

/// How often a peer candidate whose connect was refused is dialled again.
const REDIALS: u32 = 6;
/// The wait before the first redial (the n-th waits n times as long).
const REDIAL_STEP: std::time::Duration = std::time::Duration::from_millis(25);

/// Runs the race to its end within the S5B budget (cancel cuts it short).
pub(crate) async fn race<T: StanzaTransport + Clone>(
    shared: &Shared<T>,
    side: &mut TaskSide,
    link: &mut Link<T>,
    driver: Driver<'_>,
) -> Result<(BoxStream, MethodUsed), TransferError> {
    let config = s5b_config(shared);
    link.activate = Some((shared.tracker.clone(), config.iq_timeout));
    let cancel = side.cancel.clone();
    let budget = shared.config.s5b_budget + config.iq_timeout;
    let r = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        r = tokio::time::timeout(budget, driver.run(link, &config)) => Some(r),
    };
    link.s5b_done();
    let Some(r) = r else {
        return Err(crate::handle::cancelled(Stage::Connect));
    };
    let est = match r {
        Err(_) => {
            return Err(TransferError::new(
                Stage::Connect,
                ErrorKind::Timeout(budget),
            ));
        }
        Ok(Err(e)) => {
            if let xep0260_jingle_s5b::DriverError::Failed(
                xep0260_jingle_s5b::Error::NoCandidate { attempts },
            ) = &e
            {
                for a in attempts {
                    side.reporter
                        .emit(Event::Candidate(CandidateReport::new(a)));
                }
            }
            return Err(TransferError::new(
                Stage::Connect,
                crate::JingleError::S5b(e).into(),
            ));
        }
        Ok(Ok(est)) => est,
    };
    for a in &est.attempts {
        side.reporter
            .emit(Event::Candidate(CandidateReport::new(a)));
    }
    let sh = est.candidate.streamhost();
    let streamhost = format!("{}:{}", sh.host, sh.port);
    let used = if est.candidate.kind == Kind::Proxy {
        MethodUsed::S5bProxy {
            proxy: est.candidate.jid.clone(),
            streamhost,
        }
    } else {
        MethodUsed::S5bDirect { streamhost }
    };
    Ok((Box::pin(est.stream), used))
}

/// Waits, bounded by `within` and the cancel, for the IBB `<open/>` of `ibb` (a future
/// from `Ibb::expect`), watching the session: its end fails the wait at once.
pub(crate) async fn wait_ibb<T, F>(
    side: &mut TaskSide,
    link: &mut Link<T>,
    ibb: F,
    within: std::time::Duration,
) -> Result<(BoxStream, MethodUsed), TransferError>
where
    T: StanzaTransport + Clone,
    F: Future<Output = Result<(BoxStream, xep0047_ibb::StanzaKind), xep0047_ibb::Error>>,
{
    let cancel = side.cancel.clone();
    let r = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(crate::handle::cancelled(Stage::Connect)),
        e = link.until_end() => return Err(e.error(Stage::Connect, within)),
        r = tokio::time::timeout(within, ibb) => r,
    };
    match r {
        Ok(Ok((s, k))) => Ok((s, MethodUsed::ibb(k))),
        Ok(Err(e)) => Err(TransferError::new(Stage::Connect, e.into())),
        Err(_) => Err(TransferError::new(
            Stage::Connect,
            ErrorKind::Timeout(within),
        )),
    }
}
