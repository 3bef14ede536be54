//! The second half of the negotiation: the peer's verdict, the nomination rule (XEP-0260
//! §2.4), the proxy activation (§2.5) and the end.

use std::net::SocketAddr;
use std::time::Instant;

use minidom::Element;
use xep0065_s5b::payload::Activate;
use xep0065_s5b::wire::ReplyCode;
use xep0065_s5b::{Failure, Host};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jingle_s5b::{CandidateId, TransportPayload};

use super::{Action, Choice, Event, Negotiation, Phase, Role, Transmit, Via};
use crate::Kind;
use crate::error::{Error, InputError};

impl Negotiation {
    /// The peer's `<candidate-used cid/>`: it connected to our candidate `cid`.
    pub(super) fn peer_used(&mut self, now: Instant, cid: &str) -> Result<(), InputError> {
        let Some(l) = self.local.iter().position(|c| c.cid == cid) else {
            return Err(InputError::UnknownCid(cid.to_owned()));
        };
        if self.theirs != Choice::Pending || self.phase != Phase::Negotiating {
            return Err(InputError::OutOfOrder(
                "a second candidate-used or candidate-error",
            ));
        }
        self.theirs = Choice::Used(l, None);
        // XEP-0260 §2.3: keep trying only while a candidate left could outrank theirs.
        let theirs = self.local[l].priority;
        let best_left = self
            .remote
            .as_ref()
            .and_then(|r| self.order.iter().map(|&i| r[i].priority).max());
        if self.ours == Choice::Pending
            && self.race.is_some()
            && best_left.is_some_and(|p| p < theirs)
        {
            if let Some(r) = &mut self.race {
                r.cancel(now);
            }
            self.pump(now);
            self.ours = Choice::Error;
            self.send(TransportPayload::CandidateError);
        }
        self.decide(now);
        Ok(())
    }

    /// The peer's `<candidate-error/>`.
    pub(super) fn peer_error(&mut self, now: Instant) -> Result<(), InputError> {
        if self.theirs != Choice::Pending || self.phase != Phase::Negotiating {
            return Err(InputError::OutOfOrder(
                "a second candidate-used or candidate-error",
            ));
        }
        self.theirs = Choice::Error;
        self.decide(now);
        Ok(())
    }

    /// The peer's `<activated cid/>`: its proxy, which we use, is activated.
    pub(super) fn activated(&mut self, now: Instant, cid: &str) -> Result<(), InputError> {
        let Phase::AwaitActivated(r, a) = self.phase else {
            return Err(InputError::OutOfOrder(
                "activated before the proxy's nomination",
            ));
        };
        let c = self.remote.as_ref().map(|l| l[r].clone());
        match c {
            Some(c) if c.cid == cid => {
                self.connected(now, Via::Attempt(a), c, false);
                Ok(())
            }
            _ => Err(InputError::UnknownCid(cid.to_owned())),
        }
    }

    /// The peer's `<proxy-error/>`.
    pub(super) fn proxy_error(&mut self, now: Instant) -> Result<(), InputError> {
        let cid = match &self.phase {
            Phase::AwaitActivated(r, _) => self.remote.as_ref().map(|l| l[*r].cid.clone()),
            Phase::ConnectingProxy(l) | Phase::Activating(l, _) => Some(self.local[*l].cid.clone()),
            _ => None,
        };
        let Some(cid) = cid else {
            return Err(InputError::OutOfOrder(
                "proxy-error without a nominated proxy",
            ));
        };
        self.fail(now, Error::PeerProxyError { cid });
        Ok(())
    }

    /// Once both verdicts are in: the nominated candidate (XEP-0260 §2.4).
    pub(super) fn decide(&mut self, now: Instant) {
        if self.phase != Phase::Negotiating {
            return;
        }
        let pick_ours = match (self.ours, self.theirs) {
            (Choice::Pending, _) | (_, Choice::Pending) => return,
            (Choice::Error, Choice::Error) => {
                let attempts = std::mem::take(&mut self.attempts);
                self.fail(now, Error::NoCandidate { attempts });
                return;
            }
            (Choice::Used(..), Choice::Error) => true,
            (Choice::Error, Choice::Used(..)) => false,
            (Choice::Used(r, _), Choice::Used(l, _)) => {
                let pr = self.remote.as_ref().map_or(0, |c| c[r].priority);
                let pl = self.local[l].priority;
                if pr == pl {
                    self.role == Role::Initiator
                } else {
                    pr > pl
                }
            }
        };
        if pick_ours {
            let (Choice::Used(r, Some(a)), Some(remote)) = (self.ours, &self.remote) else {
                return;
            };
            let c = remote[r].clone();
            self.stop_accepting();
            if c.kind == Kind::Proxy {
                self.phase = Phase::AwaitActivated(r, a);
            } else {
                self.connected(now, Via::Attempt(a), c, false);
            }
            return;
        }
        let Choice::Used(l, _) = self.theirs else {
            return;
        };
        if let Choice::Used(_, Some(a)) = self.ours {
            self.actions.push_back(Action::Close { attempt: a });
        }
        let c = self.local[l].clone();
        match (c.kind, &c.host) {
            (Kind::Proxy, Host::Ip(ip)) => {
                self.stop_accepting();
                self.phase = Phase::ConnectingProxy(l);
                self.actions.push_back(Action::ConnectProxy {
                    addr: SocketAddr::new(*ip, c.port),
                    dst_addr: self.local_dst_addr(),
                });
            }
            _ if self.inbound => self.connected(now, Via::Inbound, c, true),
            _ => self.phase = Phase::AwaitInbound(l),
        }
    }

    /// An inbound SOCKS5 connection on our listener presented `dst_addr`. `Ok`: accept it
    /// (send the success reply); `Err`: refuse it with this reply code. Only the first one
    /// with one of our DST.ADDRs ([`accepted_dst_addrs`](Self::accepted_dst_addrs): the
    /// XEP's order and Gajim's) is taken (BAD-INPUT J25).
    pub fn handle_inbound(&mut self, now: Instant, dst_addr: &str) -> Result<(), ReplyCode> {
        let open = matches!(self.phase, Phase::Negotiating | Phase::AwaitInbound(_));
        let ours = self
            .accepted_dst_addrs()
            .iter()
            .any(|d| dst_addr.eq_ignore_ascii_case(d));
        if !open || self.inbound || !ours {
            return Err(ReplyCode::HostUnreachable);
        }
        self.inbound = true;
        if let Phase::AwaitInbound(l) = self.phase {
            let c = self.local[l].clone();
            self.connected(now, Via::Inbound, c, true);
        }
        Ok(())
    }

    /// Our proxy accepted our SOCKS5 CONNECT: the activation iq goes out.
    pub fn handle_proxy_connected(&mut self, now: Instant) {
        let _ = now;
        let Phase::ConnectingProxy(l) = self.phase else {
            self.actions.push_back(Action::CloseProxy);
            return;
        };
        let id = format!("{}{}-act", self.config.id_prefix, self.sid);
        let act = Activate {
            sid: self.sid.clone(),
            target: self.peer.clone(),
        };
        self.transmits
            .push_back(Transmit::Activate(Box::new(Iq::Set {
                from: None,
                to: Some(self.local[l].jid.clone()),
                id: id.clone(),
                payload: Element::from(&act),
            })));
        self.phase = Phase::Activating(l, id);
    }

    /// We could not connect to our proxy: `<proxy-error/>` to the peer, and we fail.
    pub fn handle_proxy_failed(&mut self, now: Instant, failure: Failure) {
        let Phase::ConnectingProxy(l) = self.phase else {
            return;
        };
        self.send(TransportPayload::ProxyError);
        let proxy = self.local[l].jid.clone();
        self.fail(
            now,
            Error::ProxyConnect {
                proxy,
                source: failure,
            },
        );
    }

    /// The answer to our activation iq (its id and sender checked; a missing sender is
    /// taken as the proxy, for in-process proxies). `false`: not ours.
    pub fn handle_iq(&mut self, now: Instant, iq: &Iq) -> bool {
        let Phase::Activating(l, id) = &self.phase else {
            return false;
        };
        let l = *l;
        let proxy = self.local[l].jid.clone();
        if iq.id() != id || iq.from().is_some_and(|f| *f != proxy) {
            return false;
        }
        match iq {
            Iq::Result { .. } => {
                let cid = self.local[l].cid.clone();
                self.send(TransportPayload::Activated(CandidateId(cid)));
                let c = self.local[l].clone();
                self.connected(now, Via::Proxy, c, true);
            }
            Iq::Error { error, .. } => {
                self.send(TransportPayload::ProxyError);
                let condition = error.defined_condition.clone();
                self.fail(now, Error::ProxyActivation { proxy, condition });
            }
            _ => return false,
        }
        true
    }

    fn stop_accepting(&mut self) {
        if self.local.iter().any(|c| c.kind != Kind::Proxy) {
            let dst_addr = self.local_dst_addr();
            if !self.actions.contains(&Action::StopAccepting {
                dst_addr: dst_addr.clone(),
            }) {
                self.actions.push_back(Action::StopAccepting { dst_addr });
            }
        }
    }

    fn connected(&mut self, now: Instant, via: Via, candidate: super::Candidate, ours: bool) {
        self.close_all(now, Some(via));
        self.phase = Phase::Done;
        self.events.push_back(Event::Connected {
            via,
            candidate,
            ours,
            attempts: std::mem::take(&mut self.attempts),
        });
    }

    pub(super) fn fail(&mut self, now: Instant, e: Error) {
        self.close_all(now, None);
        self.phase = Phase::Done;
        self.events.push_back(Event::Failed(e));
    }

    /// Closes every socket but `keep`.
    pub(super) fn close_all(&mut self, now: Instant, keep: Option<Via>) {
        if let Some(r) = &mut self.race {
            r.cancel(now);
        }
        self.pump(now);
        if let Choice::Used(_, Some(a)) = self.ours {
            let close = Action::Close { attempt: a };
            if keep != Some(Via::Attempt(a)) && !self.actions.contains(&close) {
                self.actions.push_back(close);
            }
        }
        if matches!(
            self.phase,
            Phase::ConnectingProxy(_) | Phase::Activating(..)
        ) && keep != Some(Via::Proxy)
        {
            self.actions.push_back(Action::CloseProxy);
        }
        self.stop_accepting();
        self.race = None;
    }
}
