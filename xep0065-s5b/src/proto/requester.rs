//! The requester: offers, learns which streamhost the target used, and activates a proxy.
//!
//! ```text
//!  Requester::new --> offer --> Offering --error / offer_timeout--> Done (Failed)
//!                                  | <-- streamhost-used
//!        +-------------------------+---------------------------+
//!        | own JID                 | an offered proxy          | anything else
//!        v                         v                           v
//!  AwaitingInbound           Dialing (SOCKS5 to the proxy)   Done (Failed
//!   | inbound ready           | done --> <activate/>          UnknownStreamHostUsed)
//!   v                         v
//!  Done (Connected)         Activating --result--> Done (Connected)
//!                             | error / iq_timeout --> Done (Failed), socket closed
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use xmpp_parsers::stanza::Stanza;

use super::{Action, Attempt, AttemptId, Event, Failure, IqIds, Outcome, Via, iq_set, response};
use crate::error::{Error, MisuseError, ProtocolError};
use crate::payload::{Activate, Mode, Offer, StreamHostUsed};
use crate::wire::ReplyCode;
use crate::{Config, Host, Sid, StreamHost, dst_addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    None,
    /// Accepted, its SOCKS5 reply being sent; on this local port.
    Claimed(u16),
    Ready(u16),
}

#[derive(Debug)]
enum State {
    Offering {
        id: String,
        deadline: Instant,
    },
    AwaitingInbound {
        deadline: Instant,
    },
    Dialing {
        proxy: StreamHost,
        started: Instant,
        deadline: Instant,
    },
    Activating {
        proxy: StreamHost,
        started: Instant,
        id: String,
        deadline: Instant,
    },
    Done,
}

/// The requester of one bytestream: `sid` to `target`. See the [module docs](super) for
/// the run loop.
#[derive(Debug)]
pub struct Requester {
    config: Config,
    me: Jid,
    target: Jid,
    sid: Sid,
    hash: String,
    streamhosts: Vec<StreamHost>,
    ids: IqIds,
    inbound: Inbound,
    state: State,
    transmits: VecDeque<Stanza>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

/// The one attempt a requester makes: to the proxy the target used.
const PROXY: AttemptId = AttemptId(0);

impl Requester {
    /// Offers `streamhosts` (own first, proxies last, as the caller orders them) for
    /// `sid` from `me` to `target`; queues [`Action::Accept`] for the DST.ADDR and the offer.
    pub fn new(
        config: &Config,
        me: Jid,
        target: Jid,
        sid: Sid,
        streamhosts: Vec<StreamHost>,
        now: Instant,
    ) -> Result<Self, Error> {
        if streamhosts.is_empty() {
            return Err(MisuseError::NothingToOffer.into());
        }
        let hash = dst_addr(&sid, &me, &target);
        let mut ids = IqIds::new(&config.id_prefix, &sid);
        let id = ids.next();
        let offer = Offer {
            sid: sid.clone(),
            mode: Mode::Tcp,
            dstaddr: None,
            streamhosts: streamhosts.clone(),
        };
        let mut this = Self {
            config: config.clone(),
            me,
            target,
            sid,
            hash,
            streamhosts,
            ids,
            inbound: Inbound::None,
            state: State::Offering {
                id: id.clone(),
                deadline: now + config.offer_timeout,
            },
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        };
        this.actions.push_back(Action::Accept {
            dst_addr: this.hash.clone(),
        });
        let offer = iq_set(&this.target, id, Element::from(&offer));
        this.transmits.push_back(offer);
        Ok(this)
    }

    /// The DST.ADDR of this bytestream.
    pub fn dst_addr(&self) -> &str {
        &self.hash
    }

    /// The target.
    pub fn target(&self) -> &Jid {
        &self.target
    }

    /// The sid.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The streamhosts offered, in order.
    pub fn streamhosts(&self) -> &[StreamHost] {
        &self.streamhosts
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn finish(&mut self, event: Event) {
        self.state = State::Done;
        self.actions.push_back(Action::StopAccepting {
            dst_addr: self.hash.clone(),
        });
        self.events.push_back(event);
    }

    fn fail(&mut self, e: Error) {
        self.finish(Event::Failed(e));
    }

    /// An inbound SOCKS5 connection on our listener (local port `local_port`) asked for
    /// our DST.ADDR: the first is accepted (reply success, then call
    /// [`handle_inbound_ready`](Self::handle_inbound_ready)); any later one gets this code.
    pub fn handle_inbound(&mut self, now: Instant, local_port: u16) -> Result<(), ReplyCode> {
        let _ = now;
        if self.inbound != Inbound::None || self.is_done() {
            return Err(ReplyCode::NotAllowed);
        }
        self.inbound = Inbound::Claimed(local_port);
        Ok(())
    }

    /// The accepted inbound connection got its success reply: it can carry the stream.
    pub fn handle_inbound_ready(&mut self, now: Instant) {
        let _ = now;
        if let Inbound::Claimed(p) = self.inbound {
            self.inbound = Inbound::Ready(p);
        }
        if matches!(self.state, State::AwaitingInbound { .. }) {
            self.connected_inbound();
        }
    }

    fn connected_inbound(&mut self) {
        let (Inbound::Ready(port) | Inbound::Claimed(port)) = self.inbound else {
            return;
        };
        let streamhost = self
            .streamhosts
            .iter()
            .find(|s| s.jid == self.me && s.port == port)
            .or_else(|| self.streamhosts.iter().find(|s| s.jid == self.me))
            .cloned()
            .unwrap_or_else(|| StreamHost::new(self.me.clone(), Host::Name(String::new()), port));
        self.finish(Event::Connected {
            via: Via::Inbound,
            streamhost,
            attempts: Vec::new(),
        });
    }

    /// Takes the target's answer to the offer and the proxy's answer to `<activate/>`;
    /// hands back everything else.
    pub fn handle_stanza(&mut self, now: Instant, stanza: Stanza) -> ControlFlow<(), Stanza> {
        match &self.state {
            State::Offering { id, .. } => {
                let Some(r) = response(&stanza, id, &self.target) else {
                    return ControlFlow::Continue(stanza);
                };
                match r {
                    Err(e) => self.fail(Error::Rejected(Box::new(e.clone()))),
                    Ok(None) => self.fail(ProtocolError::MissingPayload("streamhost-used").into()),
                    Ok(Some(p)) => match StreamHostUsed::try_from(p) {
                        Err(e) => self.fail(e.into()),
                        Ok(used) => self.used(now, used),
                    },
                }
            }
            State::Activating { id, proxy, .. } => {
                let Some(r) = response(&stanza, id, &proxy.jid) else {
                    return ControlFlow::Continue(stanza);
                };
                let State::Activating { proxy, started, .. } =
                    std::mem::replace(&mut self.state, State::Done)
                else {
                    return ControlFlow::Break(());
                };
                match r {
                    Err(e) => {
                        self.actions.push_back(Action::Close { attempt: PROXY });
                        self.fail(Error::Rejected(Box::new(e.clone())));
                    }
                    Ok(_) => {
                        let attempt = Attempt {
                            streamhost: proxy.clone(),
                            outcome: Outcome::Won,
                            duration: now.saturating_duration_since(started),
                        };
                        self.finish(Event::Connected {
                            via: Via::Attempt(PROXY),
                            streamhost: proxy,
                            attempts: vec![attempt],
                        });
                    }
                }
            }
            _ => return ControlFlow::Continue(stanza),
        }
        ControlFlow::Break(())
    }

    fn used(&mut self, now: Instant, used: StreamHostUsed) {
        if used.jid == self.me {
            if matches!(self.inbound, Inbound::Ready(_)) {
                self.connected_inbound();
            } else {
                self.state = State::AwaitingInbound {
                    deadline: now + self.config.handshake_timeout,
                };
            }
            return;
        }
        let Some(proxy) = self.streamhosts.iter().find(|s| s.jid == used.jid).cloned() else {
            self.fail(ProtocolError::UnknownStreamHostUsed(used.jid.to_string()).into());
            return;
        };
        self.state = State::Dialing {
            proxy: proxy.clone(),
            started: now,
            deadline: now + self.config.handshake_timeout,
        };
        // The requester chose its proxies: no dial policy.
        match &proxy.host {
            Host::Ip(ip) => self.actions.push_back(Action::Connect {
                attempt: PROXY,
                addrs: vec![SocketAddr::new(*ip, proxy.port)],
                dst_addr: self.hash.clone(),
            }),
            Host::Name(n) => self.actions.push_back(Action::Resolve {
                attempt: PROXY,
                name: n.clone(),
                port: proxy.port,
            }),
        }
    }

    fn proxy_failed(&mut self, now: Instant, failure: Failure) {
        let State::Dialing { proxy, started, .. } = std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        self.actions.push_back(Action::Close { attempt: PROXY });
        self.fail(Error::NoStreamHost(vec![Attempt {
            streamhost: proxy,
            outcome: Outcome::Failed(failure),
            duration: now.saturating_duration_since(started),
        }]));
    }

    /// The resolver answered for the proxy's host name.
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        attempt: AttemptId,
        addrs: Result<Vec<SocketAddr>, io::ErrorKind>,
    ) {
        let State::Dialing { proxy, .. } = &self.state else {
            return;
        };
        if attempt != PROXY {
            return;
        }
        let name = proxy.host.to_string();
        match addrs {
            Err(kind) => self.proxy_failed(now, Failure::Resolve { name, kind }),
            Ok(a) if a.is_empty() => self.proxy_failed(now, Failure::NoAddress { name }),
            Ok(addrs) => self.actions.push_back(Action::Connect {
                attempt,
                addrs,
                dst_addr: self.hash.clone(),
            }),
        }
    }

    /// The SOCKS5 handshake with the proxy completed: `<activate/>` goes out.
    pub fn handle_connected(&mut self, now: Instant, attempt: AttemptId) {
        let State::Dialing { proxy, started, .. } = &self.state else {
            self.actions.push_back(Action::Close { attempt });
            return;
        };
        let (proxy, started) = (proxy.clone(), *started);
        let id = self.ids.next();
        let activate = Activate {
            sid: self.sid.clone(),
            target: self.target.clone(),
        };
        self.transmits
            .push_back(iq_set(&proxy.jid, id.clone(), Element::from(&activate)));
        self.state = State::Activating {
            proxy,
            started,
            id,
            deadline: now + self.config.iq_timeout,
        };
    }

    /// Connecting to the proxy failed.
    pub fn handle_connect_failed(&mut self, now: Instant, attempt: AttemptId, failure: Failure) {
        if attempt == PROXY && matches!(self.state, State::Dialing { .. }) {
            self.proxy_failed(now, failure);
        }
    }

    /// The next instant `handle_timeout` is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Offering { deadline, .. }
            | State::AwaitingInbound { deadline }
            | State::Dialing { deadline, .. }
            | State::Activating { deadline, .. } => Some(*deadline),
            State::Done => None,
        }
    }

    /// Fires the deadline of the current state.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|d| d > now) {
            return;
        }
        let timeout = |d: Duration| Error::Timeout(d);
        match self.state {
            State::Offering { .. } => self.fail(timeout(self.config.offer_timeout)),
            State::AwaitingInbound { .. } => self.fail(timeout(self.config.handshake_timeout)),
            State::Dialing { .. } => {
                let hs = self.config.handshake_timeout;
                self.proxy_failed(now, Failure::HandshakeTimeout(hs));
            }
            State::Activating { .. } => {
                self.actions.push_back(Action::Close { attempt: PROXY });
                self.fail(timeout(self.config.iq_timeout));
            }
            State::Done => {}
        }
    }

    /// The next stanza to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Stanza> {
        self.transmits.pop_front()
    }

    /// The next socket action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use xmpp_parsers::iq::Iq;

    use super::*;

    fn requester(now: Instant) -> Requester {
        let proxy = StreamHost::new(
            "proxy.example.org".parse().unwrap(),
            "192.0.2.9".parse::<std::net::IpAddr>().unwrap(),
            7777,
        );
        let mut config = Config::default();
        config.id_prefix("t-");
        let mut r = Requester::new(
            &config,
            "alice@example.org/a".parse().unwrap(),
            "bob@example.org/b".parse().unwrap(),
            Sid::new("s1").unwrap(),
            vec![proxy],
            now,
        )
        .unwrap();
        while r.poll_transmit().is_some() {}
        while r.poll_action().is_some() {}
        r
    }

    fn used_from(from: &str, jid: &str) -> Stanza {
        let used = StreamHostUsed {
            sid: None,
            jid: jid.parse().unwrap(),
        };
        Stanza::Iq(Iq::Result {
            from: Some(from.parse().unwrap()),
            to: None,
            id: "t-s1-1".into(),
            payload: Some(Element::from(&used)),
        })
    }

    #[test]
    fn nothing_to_offer_is_misuse() {
        let e = Requester::new(
            &Config::default(),
            "alice@example.org/a".parse().unwrap(),
            "bob@example.org/b".parse().unwrap(),
            Sid::new("s1").unwrap(),
            Vec::new(),
            Instant::now(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Misuse(MisuseError::NothingToOffer)));
    }

    #[test]
    fn a_streamhost_used_from_a_third_party_is_not_taken() {
        let now = Instant::now();
        let mut r = requester(now);
        let s = used_from("mallory@example.org/m", "proxy.example.org");
        assert!(r.handle_stanza(now, s).is_continue());
        assert!(r.poll_action().is_none());
    }

    #[test]
    fn the_proxy_is_dialed_then_activated_and_a_result_from_elsewhere_is_ignored() {
        let now = Instant::now();
        let mut r = requester(now);
        let s = used_from("bob@example.org/b", "proxy.example.org");
        assert!(r.handle_stanza(now, s).is_break());
        assert!(matches!(
            r.poll_action(),
            Some(Action::Connect { attempt: PROXY, .. })
        ));
        r.handle_connected(now, PROXY);
        let Some(Stanza::Iq(Iq::Set { to, id, .. })) = r.poll_transmit() else {
            panic!()
        };
        assert_eq!(to, Some("proxy.example.org".parse().unwrap()));
        assert_eq!(id, "t-s1-2");
        // The target cannot answer for the proxy.
        let fake = Stanza::Iq(Iq::Result {
            from: Some("bob@example.org/b".parse().unwrap()),
            to: None,
            id,
            payload: None,
        });
        assert!(r.handle_stanza(now, fake).is_continue());
        assert!(r.poll_event().is_none());
        r.handle_timeout(now + Duration::from_secs(15));
        assert_eq!(r.poll_action(), Some(Action::Close { attempt: PROXY }));
        assert!(matches!(
            r.poll_event(),
            Some(Event::Failed(Error::Timeout(_)))
        ));
    }
}
