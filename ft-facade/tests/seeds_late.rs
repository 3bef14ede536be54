//! Replays of the seed captures 003 onward (QXmpp's hash, date and size-less offers,
//! Spark opening IBB during S5B, libpurple's unanswered close); see `seeds.rs`.

mod common;

use std::time::Duration;

use common::captured::*;
use common::*;
use ft_facade::{AcceptOptions, ErrorKind, Method, SendOptions, Stage};
use ft_transport::hub::Hub;
use ft_transport::{Stanza, StanzaTransport};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use xmpp_parsers::iq::Iq;

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
