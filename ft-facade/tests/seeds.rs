//! Replays of every flow in the seed captures (`/work/shared/seeds`, copied to
//! `tests/fixtures/seeds/`): a scripted peer on the hub sends exactly the captured stanzas
//! (ids rewritten to answer ours, JIDs as captured or mapped to hub entities, addresses to
//! 127.0.0.1), and the facade on the other side must interoperate.

mod common;

use std::time::Duration;

use common::*;
use ft_facade::{
    AcceptOptions, ErrorKind, Method, MethodUsed, ProxySource, SendOptions, Side, Stage,
};
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{Stanza, StanzaTransport};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;

const NS_IBB: &str = "http://jabber.org/protocol/ibb";
const NS_BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";
const NS_SI: &str = "http://jabber.org/protocol/si";

/// A captured stanza: comment lines dropped, `rewrites` applied, the stream's default
/// namespace added where the capture left it out, errors read leniently (seed 000).
fn load(xml: &str, rewrites: &[(&str, &str)]) -> Stanza {
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

fn drop_indentation(s: &str) -> String {
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

fn with_id(stanza: Stanza, id: &str) -> Stanza {
    match stanza {
        Stanza::Iq(mut iq) => {
            *iq.id_mut() = id.to_owned();
            Stanza::Iq(iq)
        }
        other => other,
    }
}

struct Scripted {
    t: HubTransport,
    rx: HubReceiver,
}

impl Scripted {
    fn new(hub: &Hub, me: &str) -> Self {
        let (t, rx) = hub.connect(jid(me));
        Self { t, rx }
    }

    async fn next(&mut self) -> Stanza {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a stanza within 10 s")
            .expect("hub open")
    }

    async fn next_iq(&mut self) -> Iq {
        loop {
            if let Stanza::Iq(iq) = self.next().await {
                return iq;
            }
        }
    }

    async fn send(&self, s: Stanza) {
        self.t.send(s).await.unwrap();
    }
}

fn set_payload(iq: &Iq) -> &Element {
    match iq {
        Iq::Set { payload, .. } => payload,
        other => panic!("expected a set, got {other:?}"),
    }
}

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

/// A SOCKS5 CONNECT with DST.ADDR `hash` (domain form, port 0), as XEP-0065 §5.3.3 asks.
async fn socks5_connect(addr: std::net::SocketAddr, hash: &str) -> TcpStream {
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

// ------------------------------------------------------ seed 003: QXmpp's hash and date

async fn qxmpp_003(
    hash: Option<&str>,
) -> (
    Result<ft_facade::Outcome, ft_facade::TransferError>,
    tempfile::TempDir,
    Vec<u8>,
) {
    const QXMPP: &str = "b@rabbitim.com/QXmpp";
    const US: &str = "c@rabbitim.com/QXmpp";
    let hub = Hub::new();
    let us = entity(&hub, US, config(&[Method::Ibb]));
    let (qt, mut qrx) = hub.connect(jid(QXMPP));
    let ibb = xep0047_ibb::Ibb::new(qt.clone(), xep0047_ibb::Config::default());
    let mut answers = {
        let ibb = ibb.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(s) = qrx.recv().await {
                ibb.ready().await;
                if let std::ops::ControlFlow::Continue(s) = ibb.handle_stanza(s) {
                    let _ = tx.send(s);
                }
            }
        });
        rx
    };
    let data = content(879_394, 6);
    let md5 = hash.map_or_else(|| hex::encode(md5_of(&data)), str::to_owned);
    qt.send(load(
        include_str!("fixtures/seeds/003-offer.xml"),
        &[("076e3caed758a1c18c91a0e9cae3368f", &md5)],
    ))
    .await
    .unwrap();
    let offer = us.next_offer().await.unwrap();
    assert_eq!(offer.file().name, "Chrysanthemum.jpg");
    assert_eq!(
        offer.file().date.as_deref(),
        Some("2009-07-14T04:52:25.650Z")
    );
    assert_eq!(offer.file().md5.as_deref(), Some(md5.as_str()));
    let dst = tempfile::tempdir().unwrap();
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let Some(Stanza::Iq(Iq::Result { id, .. })) = answers.recv().await else {
        panic!("an accept")
    };
    assert_eq!(id, "qxmpp73");
    let mut s = ibb
        .open(
            jid(US),
            ft_facade::Sid::new("MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr").unwrap(),
            xep0047_ibb::OpenOptions::default(),
        )
        .await
        .unwrap();
    s.write_all(&data).await.unwrap();
    s.shutdown().await.unwrap();
    (receiving.outcome().await, dst, data)
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[tokio::test]
async fn seed_003_qxmpp_offer_with_hash_and_date_is_verified_by_md5() {
    let (r, dst, data) = qxmpp_003(None).await;
    let received = r.unwrap();
    assert_eq!(
        received.md5.as_deref(),
        Some(hex::encode(md5_of(&data)).as_str())
    );
    assert_eq!(
        sha256_file(&dst.path().join("Chrysanthemum.jpg")),
        sha256_hex(&data)
    );
}

#[tokio::test]
async fn seed_003_content_that_does_not_match_the_offered_hash_is_refused_and_not_kept() {
    let (r, dst, _) = qxmpp_003(Some("076e3caed758a1c18c91a0e9cae3368f")).await;
    let err = r.unwrap_err();
    assert_eq!(err.stage, Stage::Verify);
    assert!(
        matches!(&err.kind, ErrorKind::HashMismatch { offered, .. } if offered == "076e3caed758a1c18c91a0e9cae3368f"),
        "{err}"
    );
    assert!(listing(dst.path()).is_empty(), "{:?}", listing(dst.path()));
}

// ------------------------------- seed 004: Spark's S5B failure, then IBB over message

#[tokio::test]
async fn seed_004_spark_opens_ibb_while_we_still_try_s5b_and_the_file_arrives_by_message() {
    const SPARK: &str = "user1@host/spark";
    const US: &str = "user2@host/spark";
    let hub = Hub::new();
    let us = entity(&hub, US, config(&[Method::S5b, Method::Ibb]));
    let mut spark = Scripted::new(&hub, SPARK);
    spark
        .send(load(include_str!("fixtures/seeds/004-offer.xml"), &[]))
        .await;
    let offer = us.next_offer().await.unwrap();
    assert_eq!(offer.file().name, "RunSpark.lnk");
    assert_eq!(offer.file().desc.as_deref(), Some("Sending"));
    let dst = tempfile::tempdir().unwrap();
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let answer = spark.next_iq().await;
    assert_eq!(answer.id(), "vrC08-126");

    // Streamhosts the target cannot reach: they accept TCP and never answer SOCKS5.
    let mut ports = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(l.local_addr().unwrap().port().to_string());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
    }
    spark
        .send(load(
            include_str!("fixtures/seeds/004-s5b-offer.xml"),
            &[
                (
                    "host=\"10.211.167.248\" port=\"7777\"",
                    &format!("host=\"127.0.0.1\" port=\"{}\"", ports[0]),
                ),
                (
                    "host=\"63.246.20.126\" port=\"7777\"",
                    &format!("host=\"127.0.0.1\" port=\"{}\"", ports[1]),
                ),
            ],
        ))
        .await;
    // Spark's response timeout, shortened from 15 s: IBB while we are still trying.
    tokio::time::sleep(Duration::from_millis(300)).await;
    spark
        .send(load(include_str!("fixtures/seeds/004-ibb-open.xml"), &[]))
        .await;
    let open_answer = loop {
        let iq = spark.next_iq().await;
        if iq.id() == "vrC08-128" {
            break iq;
        }
    };
    assert!(matches!(open_answer, Iq::Result { .. }), "{open_answer:?}");
    let data_stanza = load(include_str!("fixtures/seeds/004-data-message.xml"), &[]);
    let Stanza::Message(m) = &data_stanza else {
        unreachable!()
    };
    let expected = xep0047_ibb::payload::decode_text(&m.payloads[0]).unwrap();
    spark.send(data_stanza).await;
    spark
        .send(load(include_str!("fixtures/seeds/004-close.xml"), &[]))
        .await;
    let close_answer = loop {
        let iq = spark.next_iq().await;
        if iq.id() == "vrC08-130" {
            break iq;
        }
    };
    assert!(
        matches!(close_answer, Iq::Result { .. }),
        "{close_answer:?}"
    );
    let received = receiving.outcome().await.unwrap();
    assert!(received.fallback);
    assert_eq!(received.bytes, 597);
    assert_eq!(
        std::fs::read(dst.path().join("RunSpark.lnk")).unwrap(),
        expected
    );
}

// -------------------------------- captured: QXmpp 1.4 offers an empty file without size

/// QXmpp (`peers/qxmpppeer`) as sender of `data` with its captured size-less offer: the
/// facade must take it as "size unknown", pick IBB (its close ends the file explicitly),
/// and hold the bytes to `max_size` as they arrive.
async fn qxmpp_sizeless(
    data: &[u8],
    max_size: Option<u64>,
) -> (
    Result<ft_facade::Outcome, ft_facade::TransferError>,
    tempfile::TempDir,
    ft_facade::Progress,
) {
    const QXMPP: &str = "alice@localhost/qxmpp";
    const US: &str = "bob@localhost/xft";
    let hub = Hub::new();
    let mut cfg = config(&[Method::S5b, Method::Ibb]);
    if let Some(max) = max_size {
        cfg.policy(ft_facade::Policy::default().with_max_size(max));
    }
    let us = entity(&hub, US, cfg);
    let (qt, mut qrx) = hub.connect(jid(QXMPP));
    let ibb = xep0047_ibb::Ibb::new(qt.clone(), xep0047_ibb::Config::default());
    let mut answers = {
        let ibb = ibb.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(s) = qrx.recv().await {
                ibb.ready().await;
                if let std::ops::ControlFlow::Continue(s) = ibb.handle_stanza(s) {
                    let _ = tx.send(s);
                }
            }
        });
        rx
    };
    let md5 = hex::encode(md5_of(data));
    qt.send(load(
        include_str!("fixtures/captured/qxmpp-1.4-empty-file-offer.xml"),
        &[("d41d8cd98f00b204e9800998ecf8427e", &md5)],
    ))
    .await
    .unwrap();
    let offer = us.next_offer().await.unwrap();
    assert_eq!(offer.file().name, "empty.bin");
    assert_eq!(offer.file().size, None, "no size offered: unknown, not 0");
    let dst = tempfile::tempdir().unwrap();
    let receiving = offer.accept_into_dir(dst.path(), AcceptOptions::new());
    let Some(Stanza::Iq(Iq::Result {
        id,
        payload: Some(answer),
        ..
    })) = answers.recv().await
    else {
        panic!("an accept")
    };
    assert_eq!(id, "qxmpp9");
    assert!(
        String::from(&answer).contains(NS_IBB),
        "IBB chosen for a size-less offer: {}",
        String::from(&answer)
    );
    let mut s = ibb
        .open(
            jid(US),
            ft_facade::Sid::new("df16548c-d02f-4b80-9a54-b8c089c4a32a").unwrap(),
            xep0047_ibb::OpenOptions::default(),
        )
        .await
        .unwrap();
    s.write_all(data).await.unwrap();
    let _ = s.shutdown().await;
    let progress = receiving.progress();
    (receiving.outcome().await, dst, progress)
}

#[tokio::test]
async fn captured_qxmpp_empty_file_without_size_is_received_as_size_unknown() {
    let (r, dst, progress) = qxmpp_sizeless(b"", None).await;
    let got = r.expect("the empty file is received");
    assert_eq!(got.bytes, 0);
    assert_eq!(
        got.delivery,
        ft_facade::Delivery::Received {
            size_checked: false,
            hash_checked: true
        }
    );
    assert_eq!(listing(dst.path()), ["empty.bin"]);
    assert_eq!(
        std::fs::metadata(dst.path().join("empty.bin"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(progress.total, None, "no total without a size");
}

#[tokio::test]
async fn a_size_less_offer_is_held_to_the_size_limit_as_its_bytes_arrive() {
    let data = content(20_000, 9);
    let (r, dst, _) = qxmpp_sizeless(&data, Some(10_000)).await;
    let e = r.unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::TooLarge { limit: 10_000, .. }),
        "{e}"
    );
    assert!(
        listing(dst.path()).iter().all(|n| n != "empty.bin"),
        "nothing under the final name"
    );
}

// -------------------------- captured: libpurple 2.14 never answers an IBB <close/>

#[tokio::test]
async fn captured_libpurple_never_answers_the_ibb_close_and_the_send_succeeds_with_a_warning() {
    const PIDGIN: &str = "bob@localhost/purple";
    let hub = Hub::new();
    let mut c = config(&[Method::Ibb]);
    c.block_size(4096);
    let us = entity(&hub, "alice@localhost/xft", c);
    let mut pidgin = Scripted::new(&hub, PIDGIN);
    let data = content(50_000, 12);
    let sending = us.send_reader(
        jid(PIDGIN),
        std::io::Cursor::new(data.clone()),
        ft_facade::FileInfo::new("payload.bin", data.len() as u64),
        SendOptions::default(),
    );
    let offer = pidgin.next_iq().await;
    pidgin
        .send(with_id(
            load(
                include_str!("fixtures/captured/libpurple-2.14-si-accept-ibb.xml"),
                &[],
            ),
            offer.id(),
        ))
        .await;
    let ack = |id: &str| {
        with_id(
            load(
                include_str!("fixtures/captured/libpurple-2.14-ibb-result.xml"),
                &[],
            ),
            id,
        )
    };
    let mut got = Vec::new();
    let mut closes = 0;
    let start = tokio::time::Instant::now();
    let outcome = loop {
        let iq = pidgin.next_iq().await;
        let Iq::Set { payload, id, .. } = &iq else {
            continue;
        };
        if payload.is("open", NS_IBB) {
            pidgin.send(ack(id)).await;
        } else if payload.is("data", NS_IBB) {
            got.extend(xep0047_ibb::payload::decode_text(payload).unwrap());
            pidgin.send(ack(id)).await;
        } else if payload.is("close", NS_IBB) {
            // libpurple: "IBB: received close", and no answer, ever.
            closes += 1;
            break sending.outcome().await;
        }
    };
    let sent = outcome.expect("every chunk was acknowledged: a success");
    assert_eq!(got, data);
    assert_eq!(closes, 1);
    assert_eq!(sent.delivery, ft_facade::Delivery::Acknowledged);
    assert_eq!(sent.warnings, vec![ft_facade::Warning::CloseUnanswered]);
    // The grace (3 s), not the 30 s close timeout.
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}
