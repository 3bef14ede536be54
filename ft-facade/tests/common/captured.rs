//! Replaying captured stanzas (the seed captures): loading them, a scripted peer on the hub,
//! a bare SOCKS5 CONNECT. Used by `seeds.rs` and `seeds_late.rs`.

use std::time::Duration;

use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;

use super::jid;

pub const NS_IBB: &str = "http://jabber.org/protocol/ibb";
pub const NS_BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";
pub const NS_SI: &str = "http://jabber.org/protocol/si";

/// A captured stanza: comment lines dropped, `rewrites` applied, the stream's default
/// namespace added where the capture left it out, errors read leniently (seed 000).
pub fn load(xml: &str, rewrites: &[(&str, &str)]) -> Stanza {
    let mut s = xml
        .lines()
        .filter(|l| !l.trim_start().starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n");
    for (from, to) in rewrites {
        s = s.replace(from, to);
    }
    // The captures were pretty-printed for the blog posts: indentation between tags is
    // layout, not content.
    s = drop_indentation(&s);
    let head_end = s.find('>').unwrap();
    if !s[..head_end].contains("xmlns=") {
        let name_end = s.find([' ', '>']).unwrap();
        s.insert_str(name_end, " xmlns='jabber:client'");
    }
    let el: Element = s.trim().parse().expect("fixture parses as xml");
    match el.name() {
        "iq" => Stanza::Iq(ft_transport::lenient::parse_iq_lenient(el).expect("fixture iq")),
        "message" => Stanza::Message(Message::try_from(el).expect("fixture message")),
        other => panic!("unexpected fixture root {other}"),
    }
}

pub fn drop_indentation(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending = String::new();
    let mut after_tag = false;
    for c in s.chars() {
        if after_tag && c.is_whitespace() {
            pending.push(c);
            continue;
        }
        if c != '<' {
            out.push_str(&pending);
        }
        pending.clear();
        out.push(c);
        after_tag = c == '>';
    }
    out
}

pub fn with_id(stanza: Stanza, id: &str) -> Stanza {
    match stanza {
        Stanza::Iq(mut iq) => {
            *iq.id_mut() = id.to_owned();
            Stanza::Iq(iq)
        }
        other => other,
    }
}

pub struct Scripted {
    t: HubTransport,
    rx: HubReceiver,
}

impl Scripted {
    pub fn new(hub: &Hub, me: &str) -> Self {
        let (t, rx) = hub.connect(jid(me));
        Self { t, rx }
    }

    pub async fn next(&mut self) -> Stanza {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a stanza within 10 s")
            .expect("hub open")
    }

    pub async fn next_iq(&mut self) -> Iq {
        loop {
            if let Stanza::Iq(iq) = self.next().await {
                return iq;
            }
        }
    }

    pub async fn send(&self, s: Stanza) {
        self.t.send(s).await.unwrap();
    }
}

pub fn set_payload(iq: &Iq) -> &Element {
    match iq {
        Iq::Set { payload, .. } => payload,
        other => panic!("expected a set, got {other:?}"),
    }
}

/// A SOCKS5 CONNECT with DST.ADDR `hash` (domain form, port 0), as XEP-0065 §5.3.3 asks.
pub async fn socks5_connect(addr: std::net::SocketAddr, hash: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut sel = [0u8; 2];
    s.read_exact(&mut sel).await.unwrap();
    assert_eq!(sel, [5, 0]);
    let mut req = vec![5, 1, 0, 3, hash.len() as u8];
    req.extend_from_slice(hash.as_bytes());
    req.extend_from_slice(&[0, 0]);
    s.write_all(&req).await.unwrap();
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(&head[..2], &[5, 0], "socks5 success");
    let mut rest = vec![0u8; head[4] as usize + 2];
    s.read_exact(&mut rest).await.unwrap();
    s
}
