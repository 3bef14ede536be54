//! A whole Jingle FT negotiation with the IBB transport between two sans-IO peers, its
//! iqs routed by the in-memory hub, then a real file's bytes over the existing
//! `xep0047-ibb` tokio session on the same hub, the checksum in session-info, `<received/>`
//! and session-terminate `<success/>`: SHA-256 equal on disk.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use ft_transport::{FullJid, Jid, Stanza, StanzaTransport};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use xep0047_ibb::{Config as IbbConfig, Ibb, OpenOptions, StanzaKind};
use xep0096_file::FileMeta;
use xep0166_jingle::{Config, Endpoint, Event, Reason, Sid};
use xep0234_jingle_ft::{FileInfo, FtEvent, FtSession, Verdict};
use xep0261_jingle_ibb::IbbTransport;
use xmpp_parsers::hashes::{Algo, Hash};
use xmpp_parsers::iq::Iq;

/// One entity: its IBB driver gets every stanza first; the rest (jingle iqs) go to `iqs`.
struct Peer {
    jid: FullJid,
    tx: HubTransport,
    ibb: Ibb<HubTransport>,
    iqs: mpsc::UnboundedReceiver<Iq>,
    ep: Endpoint,
}

fn peer(hub: &Hub, jid: &str) -> Peer {
    let jid: FullJid = jid.parse().unwrap();
    let (tx, mut rx): (HubTransport, HubReceiver) = hub.connect(Jid::from(jid.clone()));
    let ibb = Ibb::new(tx.clone(), IbbConfig::default());
    let (iq_tx, iqs) = mpsc::unbounded_channel();
    let i = ibb.clone();
    tokio::spawn(async move {
        while let Some(st) = rx.recv().await {
            if let ControlFlow::Continue(Stanza::Iq(iq)) = i.handle_stanza(st) {
                let _ = iq_tx.send(iq);
            }
        }
    });
    let mut c = Config::default();
    xep0234_jingle_ft::configure(&mut c);
    Peer {
        ep: Endpoint::new(jid.clone(), c),
        jid,
        tx,
        ibb,
        iqs,
    }
}

impl Peer {
    async fn flush(&mut self) {
        while let Some(iq) = self.ep.poll_transmit() {
            self.tx.send(Stanza::Iq(iq)).await.unwrap();
        }
    }

    /// Takes the jingle iqs that arrive within `d`, answers them, returns the events.
    async fn step(&mut self, d: Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(iq)) = tokio::time::timeout_at(deadline, self.iqs.recv()).await {
            assert!(
                self.ep.handle_iq(Instant::now(), iq).is_break(),
                "not a jingle iq"
            );
            self.flush().await;
        }
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }
}

fn content(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_file_over_jingle_ibb_arrives_with_sha256_equal() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("report.bin");
    let bytes = content(300 * 1024 + 17);
    std::fs::write(&src, &bytes).unwrap();
    let hub = Hub::new();
    let mut alice = peer(&hub, "alice@example.org/a");
    let mut bob = peer(&hub, "bob@example.org/b");
    let step = Duration::from_millis(300);

    // Alice offers the file, hash to come in a <checksum/>, over IBB with block-size 8192.
    let meta = FileMeta::from_path(&src).unwrap();
    let file = FileInfo::offer(&meta, vec![], vec![Algo::Sha_256]);
    let ours = IbbTransport::new(
        Sid::new("ch3d9s71").unwrap(),
        OpenOptions {
            block_size: 8192,
            stanza: StanzaKind::Iq,
        },
    );
    let mut out = FtSession::offer(
        &mut alice.ep,
        Instant::now(),
        bob.jid.clone(),
        Sid::new("851ba2").unwrap(),
        "a-file-offer",
        file,
        (&ours).into(),
    )
    .unwrap();
    alice.flush().await;

    // Bob reads the offer and the transport, answers with block-size 4096 (down only).
    let ev = bob.step(step).await;
    let Some(Event::Initiated { key, contents }) = ev.first() else {
        panic!("{ev:?}")
    };
    let mut inc =
        FtSession::incoming(&mut bob.ep, Instant::now(), key, contents, Some(1 << 30)).unwrap();
    assert_eq!(inc.file().safe_name().unwrap(), "report.bin");
    assert_eq!(inc.file().size, Some(bytes.len() as u64));
    let theirs = IbbTransport::parse(inc.peer_transport().unwrap()).unwrap();
    let answer = theirs.answer(4096);
    // Bob expects the IBB open before accepting, so it cannot race the accept.
    let incoming = bob.ibb.expect(
        Jid::from(alice.jid.clone()),
        answer.sid.clone(),
        Duration::from_secs(15),
    );
    inc.accept(&mut bob.ep, Instant::now(), (&answer).into(), None)
        .unwrap();
    bob.flush().await;

    // Alice gets session-accept, checks the transport answer, opens IBB with it.
    let ev = alice.step(step).await;
    let Some(FtEvent::Accepted {
        transport: Some(t),
        range: None,
    }) = ev.iter().find_map(|e| out.handle(e))
    else {
        panic!("{ev:?}")
    };
    let agreed = ours
        .check_answer(&IbbTransport::parse(&t).unwrap())
        .unwrap();
    assert_eq!(agreed.block_size, 4096);
    let bob_jid = Jid::from(bob.jid.clone());
    let opts = agreed.open_options();
    let ibb = alice.ibb.clone();
    let sender = tokio::spawn(async move {
        let mut s = ibb.open(bob_jid, agreed.sid, opts).await.unwrap();
        let mut f = tokio::fs::File::open(src).await.unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = f.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]); // hashed while streaming, never a second read
            s.write_all(&buf[..n]).await.unwrap();
        }
        s.shutdown().await.unwrap();
        h.finalize().to_vec()
    });
    let mut inc_stream = incoming.await.unwrap();
    assert_eq!(inc_stream.block_size(), 4096);
    let dst = dir.path().join("received.bin");
    let mut w = tokio::fs::File::create(&dst).await.unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = inc_stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        w.write_all(&buf[..n]).await.unwrap();
    }
    w.flush().await.unwrap();
    let sent_digest = sender.await.unwrap();

    // The checksum arrives after the bytes; Bob verifies, says <received/>, ends with success.
    out.send_checksum(
        &mut alice.ep,
        Instant::now(),
        vec![Hash::new(Algo::Sha_256, sent_digest)],
    )
    .unwrap();
    alice.flush().await;
    let ev = bob.step(step).await;
    assert!(
        ev.iter()
            .filter_map(|e| inc.handle(e))
            .any(|e| matches!(e, FtEvent::Checksum(_)))
    );
    assert_eq!(
        inc.verify(&[Hash::new(Algo::Sha_256, h.finalize().to_vec())]),
        Verdict::Match
    );
    inc.send_received(&mut bob.ep, Instant::now()).unwrap();
    inc.terminate(&mut bob.ep, Instant::now(), Reason::Success)
        .unwrap();
    bob.flush().await;
    let got: Vec<_> = alice
        .step(step)
        .await
        .iter()
        .filter_map(|e| out.handle(e))
        .collect();
    assert!(got.contains(&FtEvent::Received), "{got:?}");
    assert!(
        matches!(
            got.last(),
            Some(FtEvent::Ended {
                reason: Some(Reason::Success),
                ..
            })
        ),
        "{got:?}"
    );
    bob.step(step).await;
    assert!(alice.ep.is_empty() && bob.ep.is_empty());

    let on_disk = std::fs::read(&dst).unwrap();
    assert_eq!(Sha256::digest(&on_disk), Sha256::digest(&bytes));
    assert_eq!(on_disk.len(), bytes.len());
}
