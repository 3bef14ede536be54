//! BAD-INPUT D1-D13, C6 and H5 on the wire: real TCP on 127.0.0.1 against our own
//! streamhost listener (what a hostile target reads back), and scripted streamhosts that a
//! hostile requester offers us (what our target does with their replies).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use xep0065_s5b::payload::{Offer, StreamHostUsed};
use xep0065_s5b::{Connected, Error, Outcome, Sid, dst_addr};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const ALICE: &str = "alice@example.org/a";
const BOB: &str = "bob@example.org/b";
const WAIT: Duration = Duration::from_secs(10);

/// Alice (our S5b, the requester) offers her own listener to bob (a raw hub client).
struct Listener {
    addr: SocketAddr,
    /// The DST.ADDR of this session.
    right: String,
    bob: Raw,
    offer_id: String,
    offer: Offer,
    requester: JoinHandle<Result<Connected, Error>>,
    _hub: Hub,
}

async fn listener(sid: &str, config: xep0065_s5b::Config) -> Listener {
    let hub = Hub::new();
    let a = peer(&hub, ALICE, config);
    let mut bob = Raw::new(&hub, BOB);
    let sid = Sid::new(sid).unwrap();
    let right = dst_addr(&sid, &jid(ALICE), &jid(BOB));
    let requester = tokio::spawn(async move { a.connect(jid(BOB), sid, &[]).await });
    let iq = bob.recv_iq().await;
    let Iq::Set { payload, id, .. } = &iq else {
        panic!("{iq:?}")
    };
    let offer = Offer::try_from(payload).unwrap();
    let addr = SocketAddr::new(LOCALHOST, offer.streamhosts[0].port);
    Listener {
        addr,
        right,
        bob,
        offer_id: id.clone(),
        offer,
        requester,
        _hub: hub,
    }
}

impl Listener {
    /// Bob tells alice that he connected to her listener; her `connect` then resolves.
    async fn used(self) -> Connected {
        let used = StreamHostUsed {
            sid: Some(self.offer.sid.clone()),
            jid: self.offer.streamhosts[0].jid.clone(),
        };
        self.bob
            .send(Iq::Result {
                from: None,
                to: Some(jid(ALICE)),
                id: self.offer_id.clone(),
                payload: Some((&used).into()),
            })
            .await;
        tokio::time::timeout(WAIT, self.requester)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    }
}

/// A CONNECT request for `dst` (domain form) and `port`.
fn request(cmd: u8, dst: &[u8], port: u16) -> Vec<u8> {
    let mut r = vec![5, cmd, 0, 3, dst.len() as u8];
    r.extend_from_slice(dst);
    r.extend_from_slice(&port.to_be_bytes());
    r
}

/// Everything the server sends until it closes (bounded by [`WAIT`]).
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("the server closes within 10 s")
        .unwrap();
    got
}

/// Sends the greeting, checks `05 00`, sends `req`; returns the reply's REP and checks the
/// server closed after a failure.
async fn rep_for(addr: SocketAddr, req: &[u8]) -> u8 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut sel = [0u8; 2];
    s.read_exact(&mut sel).await.unwrap();
    assert_eq!(sel, [5, 0]);
    s.write_all(req).await.unwrap();
    let reply = until_closed(&mut s).await;
    assert!(reply.len() >= 2 && reply[0] == 5, "{reply:?}");
    reply[1]
}

#[tokio::test]
async fn d1_a_greeting_of_another_version_gets_05_ff_and_close() {
    let l = listener("d1", config()).await;
    for ver in [4u8, 0, 6, 0xff] {
        let mut s = TcpStream::connect(l.addr).await.unwrap();
        s.write_all(&[ver, 1, 0]).await.unwrap();
        assert_eq!(until_closed(&mut s).await, [5, 0xff], "version {ver}");
    }
}

#[tokio::test]
async fn d2_no_methods_or_no_no_auth_method_gets_05_ff_and_close() {
    let l = listener("d2", config()).await;
    for greeting in [&[5u8, 0][..], &[5, 1, 2], &[5, 2, 1, 2]] {
        let mut s = TcpStream::connect(l.addr).await.unwrap();
        s.write_all(greeting).await.unwrap();
        assert_eq!(until_closed(&mut s).await, [5, 0xff], "{greeting:?}");
    }
}

#[tokio::test]
async fn d3_a_handshake_written_one_byte_at_a_time_succeeds() {
    let l = listener("d3", config()).await;
    let mut s = TcpStream::connect(l.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut all = vec![5, 1, 0];
    all.extend(request(1, l.right.as_bytes(), 0));
    for b in all {
        s.write_all(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut head = [0u8; 2 + 4];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head, [5, 0, 5, 0, 0, 3], "method 00, then REP 00");
    l.used().await;
}

#[tokio::test]
async fn d4_greeting_connect_and_data_in_one_segment_succeed_and_keep_the_data() {
    let l = listener("d4", config()).await;
    let s = TcpStream::connect(l.addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let payload = data(1 << 20);
    let mut all = vec![5, 1, 0];
    all.extend(request(1, l.right.as_bytes(), 0));
    all.extend_from_slice(&payload);
    // Everything in one write, more than any handshake buffer: what the server does not
    // need for the handshake stays in the socket (back-pressure), and none of it is lost.
    let writer = tokio::spawn(async move {
        w.write_all(&all).await.unwrap();
        w
    });
    let mut head = [0u8; 2 + 5 + 40 + 2];
    r.read_exact(&mut head).await.unwrap();
    assert_eq!(head[..4], [5, 0, 5, 0], "method 00, then REP 00");
    let mut conn = l.used().await;
    let mut got = vec![0u8; payload.len()];
    tokio::time::timeout(WAIT, conn.stream.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got == payload,
        "every byte after the request arrives, in order"
    );
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn d5_cmd_other_than_connect_gets_rep_07_and_close() {
    let l = listener("d5", config()).await;
    for cmd in [2u8, 3, 0, 9] {
        let started = std::time::Instant::now();
        assert_eq!(
            rep_for(l.addr, &request(cmd, l.right.as_bytes(), 0)).await,
            0x07,
            "cmd {cmd}"
        );
        assert!(started.elapsed() < WAIT);
    }
}

#[tokio::test]
async fn d6_atyp_other_than_domain_gets_rep_08_and_close() {
    let l = listener("d6", config()).await;
    let ipv4 = [5u8, 1, 0, 1, 127, 0, 0, 1, 0, 0];
    let mut ipv6 = vec![5u8, 1, 0, 4];
    ipv6.extend_from_slice(&[0; 15]);
    ipv6.extend_from_slice(&[1, 0, 0]);
    let unknown = [5u8, 1, 0, 9, 0, 0];
    for req in [&ipv4[..], &ipv6, &unknown] {
        assert_eq!(rep_for(l.addr, req).await, 0x08, "{req:?}");
    }
}

#[tokio::test]
async fn d7_a_dst_addr_length_other_than_40_gets_rep_02_and_close() {
    let l = listener("d7", config()).await;
    for len in [0usize, 39, 41, 0x80, 0xff] {
        let dst = "a".repeat(len);
        assert_eq!(
            rep_for(l.addr, &request(1, dst.as_bytes(), 0)).await,
            0x02,
            "length {len}"
        );
    }
    // Still serving the right one.
    let (_s, code) = socks_connect(l.addr, &l.right).await;
    assert_eq!(code, 0x00);
}

#[tokio::test]
async fn d8_a_dst_addr_not_hex_gets_rep_02_and_uppercase_is_read_as_lowercase() {
    let l = listener("d8", config()).await;
    let mut not_hex = l.right.clone().into_bytes();
    not_hex[39] = b'z';
    assert_eq!(rep_for(l.addr, &request(1, &not_hex, 0)).await, 0x02);
    let (_s, code) = socks_connect(l.addr, &l.right.to_ascii_uppercase()).await;
    assert_eq!(code, 0x00, "uppercase hex is the same hash");
    l.used().await;
}

#[tokio::test]
async fn d9_a_dst_port_other_than_0_gets_rep_02_and_close() {
    let l = listener("d9", config()).await;
    for port in [1u16, 1080, 65535] {
        assert_eq!(
            rep_for(l.addr, &request(1, l.right.as_bytes(), port)).await,
            0x02,
            "port {port}"
        );
    }
}

#[tokio::test]
async fn d13_eof_at_every_handshake_byte_leaves_nothing_behind() {
    let l = listener("d13", config()).await;
    let mut all = vec![5, 1, 0];
    all.extend(request(1, l.right.as_bytes(), 0));
    for cut in 0..all.len() {
        let mut s = TcpStream::connect(l.addr).await.unwrap();
        s.write_all(&all[..cut]).await.unwrap();
        s.shutdown().await.unwrap();
        let got = until_closed(&mut s).await;
        // Nothing, the method selection, or a failure reply to the cut request: never
        // REP 00.
        let ok =
            got.is_empty() || got == [5, 0] || (got.len() > 3 && got[..2] == [5, 0] && got[3] != 0);
        assert!(ok, "cut at {cut}: {got:?}");
    }
    // Nothing of the cut attempts is left: the session's own handshake still succeeds.
    let (_s, code) = socks_connect(l.addr, &l.right).await;
    assert_eq!(code, 0x00);
    l.used().await;
}

#[tokio::test]
async fn h5_a_streamhost_connection_after_the_requester_gave_up_gets_rep_02() {
    // Timed out: the offer is never answered.
    let mut c = config();
    c.offer_timeout = Duration::from_millis(300);
    let l = listener("h5t", c).await;
    let r = tokio::time::timeout(WAIT, l.requester)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    let (mut s, code) = socks_connect(l.addr, &l.right).await;
    assert_eq!(code, 0x02, "a late connection is refused");
    assert!(until_closed(&mut s).await.is_empty());

    // Cancelled: the requester's future is dropped.
    let l = listener("h5c", config()).await;
    l.requester.abort();
    let _ = l.requester.await;
    let (mut s, code) = socks_connect(l.addr, &l.right).await;
    assert_eq!(code, 0x02, "a connection after cancel is refused");
    assert!(until_closed(&mut s).await.is_empty());
}

// ---- our target against streamhosts a hostile requester offers ----

/// Bob (our S5b, the target) expects `sid` from alice (a raw hub client), who offers
/// `streamhosts` (each `(jid, port)` on 127.0.0.1) plus `extra` attributes on `<query>`.
async fn offer_to_target(
    hub: &Hub,
    sid: &str,
    streamhosts: &[(&str, u16)],
    extra: &str,
) -> (Iq, JoinHandle<Result<Connected, Error>>) {
    let b = peer(hub, BOB, config());
    let mut alice = Raw::new(hub, ALICE);
    let target = tokio::spawn(b.expect(jid(ALICE), Sid::new(sid).unwrap(), WAIT));
    let hosts: String = streamhosts
        .iter()
        .map(|(j, p)| format!("<streamhost jid='{j}' host='127.0.0.1' port='{p}'/>"))
        .collect();
    let iq = Iq::Set {
        from: None,
        to: Some(jid(BOB)),
        id: "offer1".into(),
        payload: format!(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='{sid}'{extra}>{hosts}</query>"
        )
        .parse()
        .unwrap(),
    };
    let answer = alice.ask(iq).await;
    (answer, target)
}

/// A one-connection SOCKS5 server that answers the greeting with `method`, then (if the
/// method is `00`) reads the request and answers `reply`. Returns the listening port and a
/// task yielding the request's DST.ADDR and whatever the client sent after our last answer.
async fn scripted(method: [u8; 2], reply: Vec<u8>) -> (u16, JoinHandle<(String, Vec<u8>)>) {
    let l = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut g = [0u8; 3];
        s.read_exact(&mut g).await.unwrap();
        s.write_all(&method).await.unwrap();
        let mut dst = String::new();
        if method == [5, 0] {
            let mut head = [0u8; 5];
            s.read_exact(&mut head).await.unwrap();
            let mut d = vec![0u8; usize::from(head[4]) + 2];
            s.read_exact(&mut d).await.unwrap();
            dst = String::from_utf8_lossy(&d[..d.len() - 2]).into_owned();
            s.write_all(&reply).await.unwrap();
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        (dst, rest)
    });
    (port, task)
}

fn error_of(iq: &Iq) -> (ErrorType, DefinedCondition) {
    match iq {
        Iq::Error { error, .. } => (error.type_.clone(), error.defined_condition.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn reply_with(rep: u8, atyp_and_bnd: &[u8]) -> Vec<u8> {
    let mut r = vec![5, rep, 0];
    r.extend_from_slice(atyp_and_bnd);
    r
}

#[tokio::test]
async fn d11_a_failing_or_odd_reply_fails_the_candidate_and_an_ipv6_bnd_is_read() {
    let hub = Hub::new();
    let ipv4_bnd = [1u8, 127, 0, 0, 1, 0, 0];
    let (p1, s1) = scripted([5, 0], reply_with(0x05, &ipv4_bnd)).await;
    let (p2, s2) = scripted([5, 0], {
        let mut r = reply_with(0, &ipv4_bnd);
        r[0] = 4; // VER 4 in the reply
        r
    })
    .await;
    let (answer, target) = offer_to_target(&hub, "d11a", &[("h1@x", p1), ("h2@x", p2)], "").await;
    assert_eq!(
        error_of(&answer),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
    match target.await.unwrap() {
        Err(Error::NoStreamHost(attempts)) => {
            assert_eq!(attempts.len(), 2);
            assert!(
                attempts
                    .iter()
                    .all(|a| matches!(a.outcome, Outcome::Failed(_)))
            );
        }
        other => panic!("{other:?}"),
    }
    s1.await.unwrap();
    s2.await.unwrap();

    // An IPv6 BND.ADDR and a BND.PORT that are not what we asked for: tolerated.
    let hub = Hub::new();
    let mut bnd = vec![4u8];
    bnd.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    bnd.extend_from_slice(&[0; 11]);
    bnd.push(1);
    bnd.extend_from_slice(&[0x1f, 0x90]);
    let (p, s) = scripted([5, 0], reply_with(0, &bnd)).await;
    let (answer, target) = offer_to_target(&hub, "d11b", &[("h3@x", p)], "").await;
    assert!(matches!(answer, Iq::Result { .. }), "{answer:?}");
    let mut conn = target.await.unwrap().unwrap();
    conn.stream.write_all(b"ok").await.unwrap();
    conn.stream.shutdown().await.unwrap();
    drop(conn);
    let (_, rest) = s.await.unwrap();
    assert_eq!(
        rest, b"ok",
        "the stream starts right after the 22-byte reply"
    );
}

#[tokio::test]
async fn d12_a_server_asking_for_credentials_fails_the_candidate_and_gets_none() {
    let hub = Hub::new();
    let (p1, s1) = scripted([5, 2], Vec::new()).await;
    let (p2, s2) = scripted([5, 1], Vec::new()).await;
    let (answer, target) = offer_to_target(&hub, "d12", &[("h1@x", p1), ("h2@x", p2)], "").await;
    assert_eq!(
        error_of(&answer),
        (ErrorType::Cancel, DefinedCondition::ItemNotFound)
    );
    assert!(matches!(target.await.unwrap(), Err(Error::NoStreamHost(_))));
    for s in [s1, s2] {
        let (_, rest) = s.await.unwrap();
        assert!(rest.is_empty(), "no credentials, nothing at all: {rest:?}");
    }
}

#[tokio::test]
async fn c6_an_offered_dstaddr_is_ignored_and_the_computed_hash_is_sent() {
    let hub = Hub::new();
    let ipv4_bnd = [1u8, 127, 0, 0, 1, 0, 0];
    let (p, s) = scripted([5, 0], reply_with(0, &ipv4_bnd)).await;
    // Another session's hash, which a requester could use to make us take its place at a
    // proxy.
    let foreign = "ab".repeat(20);
    let (answer, target) =
        offer_to_target(&hub, "c6", &[("h1@x", p)], &format!(" dstaddr='{foreign}'")).await;
    assert!(matches!(answer, Iq::Result { .. }), "{answer:?}");
    drop(target.await.unwrap().unwrap());
    let (dst, _) = s.await.unwrap();
    let sid = Sid::new("c6").unwrap();
    assert_eq!(dst, dst_addr(&sid, &jid(ALICE), &jid(BOB)));
}
