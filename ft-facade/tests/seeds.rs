//! Replays of every flow in the seed captures (`/work/shared/seeds`, copied to
//! `tests/fixtures/seeds/`): a scripted peer on the hub sends exactly the captured stanzas
//! (ids rewritten to answer ours, JIDs as captured or mapped to hub entities, addresses to
//! 127.0.0.1), and the facade on the other side must interoperate.

mod common;

use common::captured::*;
use common::*;
use ft_facade::{
    AcceptOptions, ErrorKind, Method, MethodUsed, ProxySource, SendOptions, Side, Stage,
};
use ft_transport::hub::{Hub, HubTransport};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xmpp_parsers::iq::Iq;

// ---------------------------------------------------------------- seed 000: Spark, IBB only

const SPARK_000: &str = "lxy2@user-20160421db/Spark";
const US_000: &str = "lxy@user-20160421db/8xz8uslghx";

fn sender_000(hub: &Hub) -> ft_facade::FileTransfer<HubTransport> {
    let mut c = config(&[Method::Ibb]);
    c.block_size(4096);
    entity(hub, US_000, c)
}

#[tokio::test]
async fn seed_000_spark_refusal_with_a_mangled_406_is_a_decline() {
    let hub = Hub::new();
    let us = sender_000(&hub);
    let mut spark = Scripted::new(&hub, SPARK_000);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "File (2).pdf", &content(457_701, 0));
    let sending = us.send_file(
        jid(SPARK_000),
        &path,
        SendOptions::default().with_sid(ft_facade::Sid::new("jsi_33fe4dbdf2313").unwrap()),
    );
    let offer = spark.next_iq().await;
    let si = set_payload(&offer);
    assert!(si.is("si", NS_SI));
    assert_eq!(si.attr("id"), Some("jsi_33fe4dbdf2313"));
    spark
        .send(with_id(
            load(include_str!("fixtures/seeds/000-decline.xml"), &[]),
            offer.id(),
        ))
        .await;
    let err = sending.outcome().await.unwrap_err();
    assert_eq!(err.stage, Stage::Offer);
    assert!(
        matches!(err.kind, ErrorKind::Declined { text: None }),
        "{err}"
    );
}

/// Spark's side of an accepted IBB transfer: acknowledges every chunk with the captured
/// result; with `cancel_after`, sends the captured receiver close after that many chunks.
async fn spark_000_receive(
    spark: &mut Scripted,
    cancel_after: Option<usize>,
) -> (Vec<u8>, Option<Iq>) {
    let offer = spark.next_iq().await;
    spark
        .send(with_id(
            load(include_str!("fixtures/seeds/000-accept.xml"), &[]),
            offer.id(),
        ))
        .await;
    let open = spark.next_iq().await;
    let p = set_payload(&open);
    assert!(p.is("open", NS_IBB));
    assert_eq!(p.attr("block-size"), Some("4096"));
    assert_eq!(p.attr("stanza"), Some("iq"));
    spark
        .send(with_id(
            load(include_str!("fixtures/seeds/000-open-result.xml"), &[]),
            open.id(),
        ))
        .await;
    let mut got = Vec::new();
    let mut chunks = 0;
    loop {
        let iq = spark.next_iq().await;
        let Iq::Set { payload, id, .. } = &iq else {
            continue;
        };
        if payload.is("data", NS_IBB) {
            assert_eq!(payload.attr("seq"), Some(chunks.to_string().as_str()));
            got.extend(xep0047_ibb::payload::decode_text(payload).unwrap());
            spark
                .send(with_id(
                    load(include_str!("fixtures/seeds/000-data-result.xml"), &[]),
                    id,
                ))
                .await;
            chunks += 1;
            if cancel_after == Some(chunks) {
                spark
                    .send(load(
                        include_str!("fixtures/seeds/000-receiver-close.xml"),
                        &[
                            ("jsi_33fe9702f3329", "jsi_33fe66c647209"),
                            // That capture's session had another resource.
                            ("lxy@user-20160421db/76xgw7w2r6", US_000),
                        ],
                    ))
                    .await;
                // Our answer to Spark's close reuses its id.
                // Chunks already on their way are still acknowledged, as a server would
                // relay them; our answer to the close reuses its id.
                loop {
                    let iq = spark.next_iq().await;
                    if iq.id() == "pfVx0-912" {
                        return (got, Some(iq));
                    }
                    if let Iq::Set { payload, id, .. } = &iq
                        && payload.is("data", NS_IBB)
                    {
                        spark
                            .send(with_id(
                                load(include_str!("fixtures/seeds/000-data-result.xml"), &[]),
                                id,
                            ))
                            .await;
                    }
                }
            }
        } else if payload.is("close", NS_IBB) {
            spark
                .send(with_id(
                    load(include_str!("fixtures/seeds/000-close-result.xml"), &[]),
                    id,
                ))
                .await;
            return (got, None);
        }
    }
}

#[tokio::test]
async fn seed_000_spark_accepts_ibb_and_gets_every_byte_chunk_by_chunk() {
    let hub = Hub::new();
    let us = sender_000(&hub);
    let mut spark = Scripted::new(&hub, SPARK_000);
    let src = tempfile::tempdir().unwrap();
    let data = content(30_000, 1);
    let path = write_file(src.path(), "File (1).pdf", &data);
    let sending = us.send_file(
        jid(SPARK_000),
        &path,
        SendOptions::default().with_sid(ft_facade::Sid::new("jsi_33fe66c647209").unwrap()),
    );
    let (got, _) = spark_000_receive(&mut spark, None).await;
    let sent = sending.outcome().await.unwrap();
    assert_eq!(sent.method, MethodUsed::IbbIq);
    assert_eq!(got, data);
}

#[tokio::test]
async fn seed_000_sender_cancel_mid_transfer_sends_an_ibb_close_spark_acknowledges() {
    let hub = Hub::new();
    let us = sender_000(&hub);
    let mut spark = Scripted::new(&hub, SPARK_000);
    let src = tempfile::tempdir().unwrap();
    let data = content(2_000_000, 2);
    let path = write_file(src.path(), "File (1).pdf", &data);
    let mut sending = us.send_file(
        jid(SPARK_000),
        &path,
        SendOptions::default().with_sid(ft_facade::Sid::new("jsi_33fe66c647209").unwrap()),
    );
    let canceller = sending.canceller();
    let spark_task = tokio::spawn(async move { spark_000_receive(&mut spark, None).await });
    while sending.progress().bytes == 0 {
        assert!(sending.progress_changed().await);
    }
    canceller.cancel();
    let err = sending.outcome().await.unwrap_err();
    assert!(err.is_cancelled_by(Side::Local), "{err}");
    let (got, _) = spark_task.await.unwrap();
    assert!(got.len() < data.len(), "the close came before the end");
    assert_eq!(got[..], data[..got.len()]);
}

#[tokio::test]
async fn seed_000_spark_cancels_with_an_ibb_close_and_the_sender_reports_the_peer() {
    let hub = Hub::new();
    let us = sender_000(&hub);
    let mut spark = Scripted::new(&hub, SPARK_000);
    let src = tempfile::tempdir().unwrap();
    let path = write_file(src.path(), "File (1).pdf", &content(2_000_000, 3));
    let sending = us.send_file(
        jid(SPARK_000),
        &path,
        SendOptions::default().with_sid(ft_facade::Sid::new("jsi_33fe66c647209").unwrap()),
    );
    let (_, answer) = spark_000_receive(&mut spark, Some(3)).await;
    let answer = answer.unwrap();
    assert!(matches!(answer, Iq::Result { .. }), "{answer:?}");
    let err = sending.outcome().await.unwrap_err();
    assert_eq!(err.stage, Stage::Stream);
    assert!(err.is_cancelled_by(Side::Peer), "{err}");
}

// ---------------------------------------------------- seed 001: XIFF through a proxy, Spark

#[tokio::test]
async fn seed_001_xiff_sends_through_the_proxy_after_spark_names_both_methods() {
    const XIFF: &str = "iphone@192.168.1.113/xiff";
    const SPARK: &str = "android@192.168.1.113/Spark 2.6.3";
    let hub = Hub::new();
    let mut pc = xep0065_proxy::ProxyConfig::new(jid("proxy.192.168.1.113"));
    pc.listen = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))];
    pc.allowed_domains = vec!["192.168.1.113".into()];
    let proxy = xep0065_proxy::Proxy::bind(pc).await.unwrap();
    let (pt, mut prx) = hub.connect(jid("proxy.192.168.1.113"));
    proxy.serve(pt);
    let p2 = proxy.clone();
    tokio::spawn(async move {
        while let Some(s) = prx.recv().await {
            let _ = p2.handle_stanza(s);
        }
    });
    let mut c = proxy_only(config(&[Method::S5b, Method::Ibb]));
    c.proxies(ProxySource::Discover);
    let us = entity(&hub, XIFF, c);
    let mut spark = Scripted::new(&hub, SPARK);
    let src = tempfile::tempdir().unwrap();
    let data = content(152_443, 4);
    let path = write_file(src.path(), "img0545.png", &data);
    let sid = "82B0C697-C1DE-93F9-103E-481C8E7A3BD8";
    let sending = us.send_file(
        jid(SPARK),
        &path,
        SendOptions::default()
            .with_sid(ft_facade::Sid::new(sid).unwrap())
            .with_desc("send"),
    );

    let offer = spark.next_iq().await;
    spark
        .send(with_id(
            load(
                include_str!("fixtures/seeds/001-accept-two-values.xml"),
                &[],
            ),
            offer.id(),
        ))
        .await;
    // Both values named: ours decides, bytestreams first.
    let s5b = spark.next_iq().await;
    let q = set_payload(&s5b);
    assert!(q.is("query", NS_BYTESTREAMS));
    assert_eq!(q.attr("sid"), Some(sid));
    let hosts: Vec<&Element> = q.children().filter(|c| c.name() == "streamhost").collect();
    assert_eq!(hosts.len(), 1, "proxy only: {q:?}");
    assert_eq!(hosts[0].attr("jid"), Some("proxy.192.168.1.113"));
    assert_eq!(hosts[0].attr("host"), Some("127.0.0.1"));
    let port: u16 = hosts[0].attr("port").unwrap().parse().unwrap();
    let hash = xep0065_s5b::dst_addr(&sid.parse().unwrap(), &jid(XIFF), &jid(SPARK));
    let mut conn = socks5_connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)), &hash).await;
    spark
        .send(with_id(
            load(include_str!("fixtures/seeds/001-streamhost-used.xml"), &[]),
            s5b.id(),
        ))
        .await;
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    let sent = sending.outcome().await.unwrap();
    assert!(
        matches!(&sent.method, MethodUsed::S5bProxy { proxy, .. } if proxy == &jid("proxy.192.168.1.113"))
    );
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
}

// --------------------------------------- seed 002: Pidgin's disco, offer, five streamhosts

#[tokio::test]
async fn seed_002_pidgin_five_streamhost_offer_is_answered_with_its_own_direct_streamhost() {
    const PIDGIN: &str = "hezhiqiang@xmpp.myserver.info/hezhiqiang-2";
    const US: &str = "test1@xmpp.myserver.info/hezhiqiang-macbookpro";
    let hub = Hub::new();
    let us = entity(&hub, US, config(&[Method::S5b, Method::Ibb]));
    let mut pidgin = Scripted::new(&hub, PIDGIN);

    // Disco: si and the file-transfer profile are advertised.
    pidgin
        .send(load(
            include_str!("fixtures/seeds/002-disco-info.xml"),
            &[
                ("receiver@jabber.org/resource", US),
                ("sender@jabber.org/resource", PIDGIN),
            ],
        ))
        .await;
    let info = pidgin.next_iq().await;
    assert_eq!(info.id(), "info1");
    let Iq::Result {
        payload: Some(p), ..
    } = &info
    else {
        panic!("{info:?}")
    };
    let info = xmpp_parsers::disco::DiscoInfoResult::try_from(p.clone()).unwrap();
    assert!(info.features.contains("http://jabber.org/protocol/si"));
    assert!(
        info.features
            .contains("http://jabber.org/protocol/si/profile/file-transfer")
    );

    // The offer, accepted with bytestreams.
    pidgin
        .send(load(include_str!("fixtures/seeds/002-offer.xml"), &[]))
        .await;
    let offer = us.next_offer().await.unwrap();
    assert_eq!(offer.file().name, "sery-lvs-cluster.pdf");
    assert_eq!(offer.file().size, Some(532_473));
    let dst = tempfile::tempdir().unwrap();
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let answer = pidgin.next_iq().await;
    assert_eq!(answer.id(), "purple69ca5fc7");
    let Iq::Result {
        payload: Some(si), ..
    } = &answer
    else {
        panic!("{answer:?}")
    };
    assert!(String::from(si).contains(NS_BYTESTREAMS));

    // Five streamhosts on 127.0.0.1: refused, silent, Pidgin's real listener, refused, a
    // dead "proxy".
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let real = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let real_port = real.local_addr().unwrap().port();
    let data = content(532_473, 5);
    let hash = xep0065_s5b::dst_addr(&"purple69ca5fc8".parse().unwrap(), &jid(PIDGIN), &jid(US));
    let (used_tx, used_rx) = tokio::sync::oneshot::channel::<()>();
    let served = data.clone();
    let server = tokio::spawn(async move {
        let (mut s, _) = real.accept().await.unwrap();
        let mut greet = [0u8; 3];
        s.read_exact(&mut greet).await.unwrap();
        assert_eq!(greet, [5, 1, 0]);
        s.write_all(&[5, 0]).await.unwrap();
        let mut head = [0u8; 5];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..4], &[5, 1, 0, 3]);
        let mut addr = vec![0u8; head[4] as usize + 2];
        s.read_exact(&mut addr).await.unwrap();
        assert_eq!(
            &addr[..addr.len() - 2],
            hash.as_bytes(),
            "dst.addr is the xep-0065 hash"
        );
        assert_eq!(&addr[addr.len() - 2..], &[0, 0]);
        let mut reply = vec![5, 0, 0, 3, hash.len() as u8];
        reply.extend_from_slice(hash.as_bytes());
        reply.extend_from_slice(&[0, 0]);
        s.write_all(&reply).await.unwrap();
        // Pidgin starts sending once it has the streamhost-used answer.
        used_rx.await.unwrap();
        s.write_all(&served).await.unwrap();
        s.shutdown().await.unwrap();
    });
    let dead_s = dead_port.to_string();
    let silent_s = silent_port.to_string();
    let real_s = real_port.to_string();
    pidgin
        .send(load(
            include_str!("fixtures/seeds/002-s5b-offer.xml"),
            &[
                (
                    "host='192.168.8.104' port='57526'",
                    &format!("host='127.0.0.1' port='{dead_s}'"),
                ),
                (
                    "host='172.16.40.1' port='57526'",
                    &format!("host='127.0.0.1' port='{silent_s}'"),
                ),
                (
                    "host='192.168.172.1' port='57526'",
                    &format!("host='127.0.0.1' port='{real_s}'"),
                ),
                (
                    "host='公网地址隐藏' port='57526'",
                    &format!("host='127.0.0.1' port='{dead_s}'"),
                ),
                (
                    "host='172.17.0.7' port='7777'",
                    &format!("host='127.0.0.1' port='{dead_s}'"),
                ),
            ],
        ))
        .await;
    let used = pidgin.next_iq().await;
    assert_eq!(used.id(), "purple69ca5fc9");
    let Iq::Result {
        payload: Some(q), ..
    } = &used
    else {
        panic!("{used:?}")
    };
    let sh = q
        .get_child("streamhost-used", NS_BYTESTREAMS)
        .expect("streamhost-used");
    assert_eq!(
        sh.attr("jid"),
        Some(PIDGIN),
        "a direct connection to the sender"
    );
    used_tx.send(()).unwrap();
    let received = receiving.outcome().await.unwrap();
    server.await.unwrap();
    assert!(
        matches!(&received.method, MethodUsed::S5bDirect { streamhost } if streamhost == &format!("127.0.0.1:{real_port}"))
    );
    assert_eq!(
        sha256_file(&dst.path().join("sery-lvs-cluster.pdf")),
        sha256_hex(&data)
    );
}
