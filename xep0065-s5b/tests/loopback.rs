//! End-to-end bytestreams on 127.0.0.1 with the in-memory hub for the stanzas.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xep0065_s5b::{Error, Outcome, Sid, StreamHost, dst_addr};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

const MIB: usize = 1 << 20;

#[tokio::test]
async fn direct_transfer_to_our_listener_arrives_byte_identical() {
    let hub = Hub::new();
    let a = peer(&hub, "alice@example.org/a", config());
    let b = peer(&hub, "bob@example.org/b", config());
    let sid = Sid::new("direct-1").unwrap();
    let expect = b.expect(
        jid("alice@example.org/a"),
        sid.clone(),
        Duration::from_secs(10),
    );
    let target = tokio::spawn(expect);
    let mut conn = a.connect(jid("bob@example.org/b"), sid, &[]).await.unwrap();
    assert_eq!(conn.streamhost.jid, jid("alice@example.org/a"));
    let payload = data(6 * MIB);
    let want = sha256(&payload);
    let writer = tokio::spawn(async move {
        conn.stream.write_all(&payload).await.unwrap();
        conn.stream.shutdown().await.unwrap();
    });
    let mut got = target.await.unwrap().unwrap();
    assert_eq!(got.streamhost.jid, jid("alice@example.org/a"));
    assert_eq!(got.attempts[0].outcome, Outcome::Won);
    let mut buf = Vec::new();
    got.stream.read_to_end(&mut buf).await.unwrap();
    writer.await.unwrap();
    assert_eq!(buf.len(), 6 * MIB);
    assert_eq!(sha256(&buf), want);
}

#[tokio::test]
async fn no_working_streamhost_is_item_not_found_for_the_peer_with_the_reasons_kept_for_us() {
    let hub = Hub::new();
    let refused = {
        let l = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        l.local_addr().unwrap()
    };
    let mut ac = config();
    ac.listen(vec![]);
    let a = peer(&hub, "alice@example.org/a", ac);
    let b = peer(&hub, "bob@example.org/b", config());
    let hosts = [
        StreamHost::new(jid("p1.example.org"), refused.ip(), refused.port()),
        StreamHost::new(jid("p2.example.org"), refused.ip(), refused.port()),
    ];
    let sid = Sid::new("none-1").unwrap();
    let target = tokio::spawn(b.expect(
        jid("alice@example.org/a"),
        sid.clone(),
        Duration::from_secs(10),
    ));
    let err = a
        .connect(jid("bob@example.org/b"), sid, &hosts)
        .await
        .unwrap_err();
    let se = err.stanza_error().expect("a stanza error");
    assert_eq!(se.type_, ErrorType::Cancel);
    assert_eq!(se.defined_condition, DefinedCondition::ItemNotFound);
    // The peer learns that nothing worked, not which host failed how (BAD-INPUT C3).
    let text = se.texts.values().next().cloned().unwrap_or_default();
    assert_eq!(text, "no streamhost could be reached");
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
}

#[tokio::test]
async fn d10_a_wrong_dst_addr_is_refused_by_our_listener() {
    let hub = Hub::new();
    let a = peer(&hub, "alice@example.org/a", config());
    let mut bob = Raw::new(&hub, "bob@example.org/b");
    let sid = Sid::new("wrong-1").unwrap();
    let requester =
        tokio::spawn(async move { a.connect(jid("bob@example.org/b"), sid, &[]).await });
    let offer_iq = bob.recv_iq().await;
    let xmpp_parsers::iq::Iq::Set { payload, id, .. } = &offer_iq else {
        panic!("{offer_iq:?}")
    };
    let offer = xep0065_s5b::payload::Offer::try_from(payload).unwrap();
    let sh = &offer.streamhosts[0];
    let addr = SocketAddr::new("127.0.0.1".parse().unwrap(), sh.port);
    // A hash over the bare JIDs: what a buggy client would send.
    let wrong = dst_addr(
        &offer.sid,
        &jid("alice@example.org"),
        &jid("bob@example.org"),
    );
    let (mut s, code) = socks_connect(addr, &wrong).await;
    assert_eq!(code, 0x02, "not allowed (BAD-INPUT D10)");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "closed after the failure reply");
    // The right hash still works afterwards.
    let right = dst_addr(
        &offer.sid,
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    );
    let (_s, code) = socks_connect(addr, &right).await;
    assert_eq!(code, 0x00);
    let used = xep0065_s5b::payload::StreamHostUsed {
        sid: Some(offer.sid.clone()),
        jid: sh.jid.clone(),
    };
    bob.send(xmpp_parsers::iq::Iq::Result {
        from: None,
        to: Some(jid("alice@example.org/a")),
        id: id.clone(),
        payload: Some((&used).into()),
    })
    .await;
    let conn = requester.await.unwrap().unwrap();
    assert_eq!(conn.streamhost.jid, jid("alice@example.org/a"));
}

#[tokio::test]
async fn the_offer_lists_own_streamhosts_first_ipv6_included_and_proxies_last() {
    let hub = Hub::new();
    let mut ac = config();
    let v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut listen = vec![LOCALHOST];
    if v6 {
        listen.push("::1".parse().unwrap());
    }
    ac.listen(listen.clone());
    ac.proxies(vec![StreamHost::new(
        jid("proxy.example.org"),
        LOCALHOST,
        9,
    )]);
    let a = peer(&hub, "alice@example.org/a", ac);
    let mut bob = Raw::new(&hub, "bob@example.org/b");
    let extra = [StreamHost::new(
        jid("other-proxy.example.net"),
        LOCALHOST,
        10,
    )];
    let requester = tokio::spawn(async move {
        a.connect(
            jid("bob@example.org/b"),
            Sid::new("order-1").unwrap(),
            &extra,
        )
        .await
    });
    let offer_iq = bob.recv_iq().await;
    let xmpp_parsers::iq::Iq::Set { payload, id, .. } = &offer_iq else {
        panic!("{offer_iq:?}")
    };
    let offer = xep0065_s5b::payload::Offer::try_from(payload).unwrap();
    let hosts: Vec<_> = offer
        .streamhosts
        .iter()
        .map(|s| (s.jid.to_string(), s.host.to_string()))
        .collect();
    let mut want: Vec<(String, String)> = listen
        .iter()
        .map(|ip| ("alice@example.org/a".to_owned(), ip.to_string()))
        .collect();
    want.push(("proxy.example.org".into(), "127.0.0.1".into()));
    want.push(("other-proxy.example.net".into(), "127.0.0.1".into()));
    assert_eq!(hosts, want);
    if v6 {
        // The IPv6 listener works too.
        let sh = &offer.streamhosts[1];
        let addr = SocketAddr::new("::1".parse().unwrap(), sh.port);
        let hash = dst_addr(
            &offer.sid,
            &jid("alice@example.org/a"),
            &jid("bob@example.org/b"),
        );
        let (_s, code) = socks_connect(addr, &hash).await;
        assert_eq!(code, 0);
    }
    let mut err = xmpp_parsers::stanza_error::StanzaError::new(
        ErrorType::Cancel,
        DefinedCondition::ItemNotFound,
        "en",
        "",
    );
    err.texts.clear();
    bob.send(xmpp_parsers::iq::Iq::from_error(id.clone(), err).with_to(jid("alice@example.org/a")))
        .await;
    let e = requester.await.unwrap().unwrap_err();
    assert_eq!(
        e.stanza_error().unwrap().defined_condition,
        DefinedCondition::ItemNotFound
    );
}

#[tokio::test]
async fn the_dial_policy_keeps_a_peer_from_making_us_dial_loopback() {
    let hub = Hub::new();
    let a = peer(&hub, "alice@example.org/a", config());
    let mut bc = config();
    bc.dial_policy(xep0065_s5b::DialPolicy::no_loopback());
    let b = peer(&hub, "bob@example.org/b", bc);
    let sid = Sid::new("policy-1").unwrap();
    let target = tokio::spawn(b.expect(
        jid("alice@example.org/a"),
        sid.clone(),
        Duration::from_secs(10),
    ));
    let err = a
        .connect(jid("bob@example.org/b"), sid, &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.stanza_error().unwrap().defined_condition,
        DefinedCondition::ItemNotFound
    );
    match target.await.unwrap() {
        Err(Error::NoStreamHost(attempts)) => {
            assert!(
                matches!(attempts[0].outcome, Outcome::Refused(_)),
                "{attempts:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}
