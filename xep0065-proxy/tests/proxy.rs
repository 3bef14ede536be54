//! The proxy service: disco, address query, pairing, activation rules, timeouts.

mod common;

use std::time::Duration;

use common::*;
use ft_transport::hub::Hub;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xep0065_s5b::payload::ProxyInfo;
use xep0065_s5b::{Host, Sid, dst_addr};
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

#[tokio::test]
async fn disco_info_names_the_bytestreams_proxy_identity_and_feature() {
    let hub = Hub::new();
    let _p = proxy(&hub, |_| {}).await;
    let mut c = Raw::new(&hub, "alice@example.org/a");
    let r = c
        .ask(Iq::Get {
            from: None,
            to: Some(jid("proxy.example.org")),
            id: "d1".into(),
            payload: "<query xmlns='http://jabber.org/protocol/disco#info'/>"
                .parse()
                .unwrap(),
        })
        .await;
    let Iq::Result {
        payload: Some(p), ..
    } = r
    else {
        panic!("{r:?}")
    };
    let info = DiscoInfoResult::try_from(p).unwrap();
    assert!(
        info.identities
            .iter()
            .any(|i| i.category == "proxy" && i.type_ == "bytestreams")
    );
    assert!(
        info.features
            .contains("http://jabber.org/protocol/bytestreams")
    );
}

#[tokio::test]
async fn e5_address_query_lists_every_configured_streamhost_and_refuses_outsiders() {
    let hub = Hub::new();
    let _p = proxy(&hub, |c| {
        c.announce = vec![
            (Host::Name("proxy.example.org".into()), 7777),
            (Host::Ip("192.0.2.7".parse().unwrap()), 7778),
        ];
    })
    .await;
    let mut c = Raw::new(&hub, "alice@example.org/a");
    let q = |id: &str| Iq::Get {
        from: None,
        to: Some(jid("proxy.example.org")),
        id: id.into(),
        payload: ProxyInfo::request(),
    };
    let r = c.ask(q("q1")).await;
    let Iq::Result {
        payload: Some(p), ..
    } = r
    else {
        panic!("{r:?}")
    };
    let info = ProxyInfo::try_from(&p).unwrap();
    assert_eq!(info.streamhosts.len(), 2);
    assert_eq!(
        info.streamhosts[0].host,
        Host::Name("proxy.example.org".into())
    );
    assert_eq!(info.streamhosts[1].port, 7778);
    let mut m = Raw::new(&hub, "mallory@evil.example/x");
    let r = m.ask(q("q2")).await;
    assert_eq!(error_of(&r), (ErrorType::Auth, DefinedCondition::Forbidden));
}

#[tokio::test]
async fn e6_stalled_clients_are_dropped_at_the_timeouts_while_a_relay_keeps_flowing() {
    let hub = Hub::new();
    let p = proxy(&hub, |c| {
        c.handshake_timeout = Duration::from_millis(300);
        c.activation_timeout = Duration::from_millis(600);
    })
    .await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");

    // A relay, activated before the others stall.
    let hash = dst_addr(
        &Sid::new("flow").unwrap(),
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    );
    let (mut t, _) = socks_connect(addr, &hash).await;
    let (mut r, _) = socks_connect(addr, &hash).await;
    let res = alice
        .ask(activate_iq("f", "flow", "bob@example.org/b"))
        .await;
    assert!(matches!(res, Iq::Result { .. }), "{res:?}");

    // One says nothing at all; one completes SOCKS5 but is never activated.
    let silent = TcpStream::connect(addr).await.unwrap();
    let (never_activated, code) =
        socks_connect(addr, "0123456789012345678901234567890123456789").await;
    assert_eq!(code, 0);
    for _ in 0..100 {
        if p.pending() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(p.pending(), 1);

    let feeder = tokio::spawn(async move {
        let chunk = data(64 * 1024);
        for _ in 0..40 {
            r.write_all(&chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        r.shutdown().await.unwrap();
    });
    let (silent_closed, idle_closed) = tokio::join!(
        closes_within(silent, Duration::from_secs(5)),
        closes_within(never_activated, Duration::from_secs(5)),
    );
    assert!(silent_closed, "the silent client was dropped");
    assert!(idle_closed, "the never-activated connection was dropped");
    assert_eq!(p.pending(), 0);
    let mut got = Vec::new();
    t.read_to_end(&mut got).await.unwrap();
    feeder.await.unwrap();
    assert_eq!(
        got.len(),
        40 * 64 * 1024,
        "the relay kept flowing throughout"
    );
}

#[tokio::test]
async fn a_bandwidth_limited_relay_still_delivers_every_byte() {
    let hub = Hub::new();
    let p = proxy(&hub, |c| c.bandwidth_limit = Some(4 << 20)).await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let hash = dst_addr(
        &Sid::new("bw").unwrap(),
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    );
    let (mut t, _) = socks_connect(addr, &hash).await;
    let (mut r, _) = socks_connect(addr, &hash).await;
    let res = alice.ask(activate_iq("b", "bw", "bob@example.org/b")).await;
    assert!(matches!(res, Iq::Result { .. }), "{res:?}");
    let payload = data(1 << 20);
    let want = sha256(&payload);
    tokio::spawn(async move {
        r.write_all(&payload).await.unwrap();
        r.shutdown().await.unwrap();
        r
    });
    let mut got = Vec::new();
    t.read_to_end(&mut got).await.unwrap();
    assert_eq!(sha256(&got), want);
}

#[tokio::test]
async fn e9_a_requester_over_its_relay_cap_gets_resource_constraint() {
    let hub = Hub::new();
    let p = proxy(&hub, |c| c.max_relays_per_jid = 1).await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let mut keep = Vec::new();
    for (i, sid) in ["c1", "c2"].iter().enumerate() {
        let hash = dst_addr(
            &Sid::new(*sid).unwrap(),
            &jid("alice@example.org/a"),
            &jid("bob@example.org/b"),
        );
        keep.push(socks_connect(addr, &hash).await.0);
        keep.push(socks_connect(addr, &hash).await.0);
        let r = alice
            .ask(activate_iq(&format!("cap{i}"), sid, "bob@example.org/b"))
            .await;
        if i == 0 {
            assert!(matches!(r, Iq::Result { .. }), "{r:?}");
        } else {
            assert_eq!(
                error_of(&r),
                (ErrorType::Wait, DefinedCondition::ResourceConstraint)
            );
        }
    }
}

/// A requester that activates the moment it has read the proxy's SOCKS5 success reply must
/// find its connection already paired (the benchmark suite once saw `not-allowed` here).
#[tokio::test]
async fn activation_right_after_the_success_reply_always_finds_both_connections() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    for i in 0..40 {
        let sid = format!("race-{i}");
        let hash = dst_addr(
            &Sid::new(sid.clone()).unwrap(),
            &jid("alice@example.org/a"),
            &jid("bob@example.org/b"),
        );
        let (mut target, code) = socks_connect(addr, &hash).await;
        assert_eq!(code, 0);
        let (mut requester, code) = socks_connect(addr, &hash).await;
        assert_eq!(code, 0);
        let r = alice
            .ask(activate_iq(&format!("r{i}"), &sid, "bob@example.org/b"))
            .await;
        assert!(matches!(r, Iq::Result { .. }), "round {i}: {r:?}");
        requester.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        target.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"x");
    }
}

/// BAD-INPUT E12: a requester that writes its first bytes at once, in the same segment as
/// its SOCKS5 request and right after `<activate/>` before the result (libpurple does),
/// loses none of them: the target reads every byte in order.
#[tokio::test]
async fn e12_bytes_a_requester_writes_before_activation_are_relayed_not_dropped() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let sid = "early-bytes";
    let hash = dst_addr(
        &Sid::new(sid).unwrap(),
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    );
    let (mut target, code) = socks_connect(addr, &hash).await;
    assert_eq!(code, 0);
    // Greeting, CONNECT and the first file bytes in one write.
    let mut requester = TcpStream::connect(addr).await.unwrap();
    let mut first = vec![5u8, 1, 0, 5, 1, 0, 3, 40];
    first.extend_from_slice(hash.as_bytes());
    first.extend_from_slice(&[0, 0]);
    first.extend_from_slice(b"early ");
    requester.write_all(&first).await.unwrap();
    let mut reply = [0u8; 2 + 5 + 40 + 2];
    requester.read_exact(&mut reply).await.unwrap();
    assert_eq!((reply[0], reply[1], reply[3]), (5, 0, 0), "{reply:?}");
    // Then more, still before the activation's result is in.
    alice
        .send(activate_iq("e1", sid, "bob@example.org/b"))
        .await;
    requester.write_all(b"bird ").await.unwrap();
    let r = alice.recv_iq().await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    requester.write_all(b"worm").await.unwrap();
    requester.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), target.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"early bird worm");
}

/// BAD-INPUT E10 / issue 10, finding 6: a relay on which nothing moves for the idle timeout
/// is closed on both sides (its per-JID slot and sockets freed); one that keeps moving a
/// byte now and then stays open past it.
#[tokio::test]
async fn e10_an_idle_relay_is_closed_at_its_timeout_and_a_trickling_one_is_not() {
    let hub = Hub::new();
    let p = proxy(&hub, |c| {
        c.relay_idle_timeout = Some(Duration::from_millis(400))
    })
    .await;
    let addr = proxy_addr(&p);
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let pair = |sid: &'static str| {
        let hash = dst_addr(
            &Sid::new(sid).unwrap(),
            &jid("alice@example.org/a"),
            &jid("bob@example.org/b"),
        );
        async move {
            let (target, code) = socks_connect(addr, &hash).await;
            assert_eq!(code, 0);
            let (requester, code) = socks_connect(addr, &hash).await;
            assert_eq!(code, 0);
            (target, requester)
        }
    };
    let (mut idle_t, mut idle_r) = pair("idle-1").await;
    let r = alice
        .ask(activate_iq("i1", "idle-1", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    let (mut busy_t, mut busy_r) = pair("busy-1").await;
    let r = alice
        .ask(activate_iq("b1", "busy-1", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    // The busy relay moves a byte every 100 ms for 1.2 s: three idle timeouts' worth.
    let trickle = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..12 {
            busy_r.write_all(b".").await.unwrap();
            let mut b = [0u8; 1];
            busy_t.read_exact(&mut b).await.unwrap();
            got.push(b[0]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got.len()
    });
    // The idle one: both ends see the close within a few timeouts.
    let mut b = [0u8; 1];
    let t = tokio::time::timeout(Duration::from_secs(5), idle_t.read(&mut b)).await;
    assert!(matches!(t, Ok(Ok(0) | Err(_))), "target closed: {t:?}");
    let r = tokio::time::timeout(Duration::from_secs(5), idle_r.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0) | Err(_))), "requester closed: {r:?}");
    assert_eq!(
        trickle.await.unwrap(),
        12,
        "the trickling relay stayed open"
    );
}

/// BAD-INPUT E8 / issue 10, finding 4: one address cannot fill the pending table. Beyond
/// its cap, connections from 127.0.0.1 are closed at once, while another address
/// (127.0.0.2) still gets its SOCKS5 handshake; the cap frees as connections go.
#[tokio::test]
async fn e8_one_address_over_its_pending_cap_is_closed_at_once_and_others_are_served() {
    let hub = Hub::new();
    let p = proxy(&hub, |c| c.max_pending_per_ip = 4).await;
    let addr = proxy_addr(&p);
    // Four connections that never finish their handshake.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closed_at_once = |mut s: TcpStream| async move {
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await;
        matches!(r, Ok(Ok(0) | Err(_)))
    };
    let fifth = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_at_once(fifth).await,
        "the fifth from 127.0.0.1 is refused"
    );
    // Another loopback address is not affected.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = sock.connect(addr).await.unwrap();
    other.write_all(&[5, 1, 0]).await.unwrap();
    let mut sel = [0u8; 2];
    other.read_exact(&mut sel).await.unwrap();
    assert_eq!(sel, [5, 0], "127.0.0.2 gets its method selection");
    // The held ones go; 127.0.0.1 is served again.
    held.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(addr).await.unwrap();
    again.write_all(&[5, 1, 0]).await.unwrap();
    again.read_exact(&mut sel).await.unwrap();
    assert_eq!(sel, [5, 0]);
}

/// BAD-INPUT E6 / issue 10, finding 4: a connection that closes while it waits for
/// activation frees its place at once, not at the 60 s activation timeout; one that sends
/// bytes early keeps them for the relay.
#[tokio::test]
async fn e6_a_waiting_connection_that_closes_is_freed_at_once() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let addr = proxy_addr(&p);
    let hash = dst_addr(
        &Sid::new("gone-1").unwrap(),
        &jid("alice@example.org/a"),
        &jid("bob@example.org/b"),
    );
    let (target, code) = socks_connect(addr, &hash).await;
    assert_eq!(code, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(p.pending(), 1);
    drop(target);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while p.pending() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.pending(), 0, "freed long before the activation timeout");
    // The sid is usable again, end to end, with bytes written before activation.
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let (mut target, code) = socks_connect(addr, &hash).await;
    assert_eq!(code, 0);
    let (mut requester, code) = socks_connect(addr, &hash).await;
    assert_eq!(code, 0);
    requester.write_all(b"early").await.unwrap();
    let r = alice
        .ask(activate_iq("g1", "gone-1", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    requester.write_all(b" late").await.unwrap();
    requester.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), target.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"early late");
}

/// BAD-INPUT E10 (back-pressure): a target that stops reading stalls the requester's
/// writes within a bounded amount (the socket buffers on both sides and one pipe per
/// direction), instead of the proxy reading on into memory; once the target reads again
/// every byte arrives in order.
#[tokio::test]
async fn e10_a_reader_that_stops_stalls_the_sender_after_a_bounded_amount() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let mut alice = Raw::new(&hub, "alice@example.org/a");
    let (mut target, mut requester) = connected(&p, "stall").await;
    let r = alice
        .ask(activate_iq("s1", "stall", "bob@example.org/b"))
        .await;
    assert!(matches!(r, Iq::Result { .. }), "{r:?}");
    let chunk = data(256 * 1024);
    let mut written = 0usize;
    // Write until a write makes no progress for 500 ms (at most 256 MiB).
    while written < 256 << 20 {
        match tokio::time::timeout(Duration::from_millis(500), requester.write_all(&chunk)).await {
            Ok(r) => {
                r.unwrap();
                written += chunk.len();
            }
            Err(_) => break,
        }
    }
    assert!(
        written < 64 << 20,
        "{written} bytes accepted while nobody read: no back-pressure"
    );
    // The target reads again: everything written (and the partial chunk) arrives.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        target.read_to_end(&mut got).await.unwrap();
        got
    });
    requester.shutdown().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(got.len() >= written, "{} of {written}", got.len());
    assert!(
        got.chunks(chunk.len())
            .take(written / chunk.len())
            .all(|c| c == chunk),
        "in order, intact"
    );
}

/// BAD-INPUT E8: the listen backlog is 4096 (capped by `net.core.somaxconn`), not the 128
/// `TcpListener::bind` gives: under a connection flood a full backlog drops new SYNs and a real client waits
/// for its SYN retransmission (measured by `proxy-memory`: the legitimate pair's setup
/// during a 3,000-connection flood took 1.2 s with 128, 0.1 s with 4096). Read with
/// `ss` (its Send-Q column is a listener's backlog); skipped where `ss` is missing.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn e8_the_listen_backlog_holds_a_flood() {
    let hub = Hub::new();
    let p = proxy(&hub, |_| {}).await;
    let port = proxy_addr(&p).port();
    let Ok(out) = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
    else {
        eprintln!("no ss: skipped");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let backlog: u32 = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("ss said {text:?}"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(4096);
    assert_eq!(backlog, 4096.min(somaxconn), "{text}");
}
