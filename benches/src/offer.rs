//! How long `xft send` of a 4 GiB file takes to put its offer on the wire (issue 13): the
//! facade's `send_file` on a sparse 4 GiB file, timed until the SI offer reaches the peer's
//! connection on the in-memory hub. The peer answers the sender's disco#info at once, as an
//! SI client (the stack is chosen from it; unanswered, the sender would wait out its disco
//! timeout first), and nothing else (the transfer is dropped after).

use std::time::{Duration, Instant};

use ft_facade::{Config, FileTransfer, Method, ProxySource, SendOptions};
use ft_transport::StanzaTransport;
use ft_transport::hub::{Hub, HubReceiver, HubTransport};
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use crate::measure::Run;
use crate::report::{Goal, Report, Verdict};

/// The case id.
pub const ID: &str = "offer/4GiB";

/// The goal's name in the table.
pub const GOAL: &str = "xft send of a 4 GiB file puts its offer on the wire within 1 s";

const GIB: u64 = 1 << 30;

async fn offer_arrives(tx: &HubTransport, rx: &mut HubReceiver) -> bool {
    while let Some(stanza) = rx.recv().await {
        match stanza {
            Stanza::Iq(Iq::Set { payload, .. }) if payload.is("si", ft_facade::si::NS_SI) => {
                return true;
            }
            Stanza::Iq(Iq::Get {
                from, id, payload, ..
            }) if payload.is("query", "http://jabber.org/protocol/disco#info") => {
                let info = DiscoInfoResult {
                    node: None,
                    identities: vec![Identity::new_anonymous::<_, _, String, String>(
                        "client", "pc",
                    )],
                    features: [
                        "http://jabber.org/protocol/disco#info",
                        "http://jabber.org/protocol/si",
                        "http://jabber.org/protocol/si/profile/file-transfer",
                        "http://jabber.org/protocol/bytestreams",
                        "http://jabber.org/protocol/ibb",
                    ]
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                    extensions: Vec::new(),
                };
                let answer = Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: Some(info.into()),
                };
                if tx.send(Stanza::Iq(answer)).await.is_err() {
                    return false;
                }
            }
            _ => {}
        }
    }
    false
}

/// One run: the time from `send_file` to the offer on the hub, as the run's elapsed time
/// (its "bytes" are the file's size, so MB/s reads as size over offer delay).
pub async fn run() -> Result<Run, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("big.iso");
    // Sparse: no disk space; a hash made before the offer would still read 4 GiB.
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(4 * GIB))
        .map_err(|e| format!("sparse file: {e}"))?;
    let hub = Hub::new();
    let alice_jid = "alice@bench.example/a"
        .parse()
        .map_err(|e| format!("{e}"))?;
    let bob_jid: ft_transport::Jid = "bob@bench.example/b".parse().map_err(|e| format!("{e}"))?;
    let (t, alice_rx) = hub.connect(alice_jid);
    let (bob, mut bob_rx) = hub.connect(bob_jid.clone());
    let mut c = Config::default();
    c.methods(&[Method::S5b, Method::Ibb]);
    c.proxies(ProxySource::None);
    let alice = FileTransfer::new(t, c);
    let handler = alice.clone();
    let pump = tokio::spawn(ft_transport::pump(alice_rx, move |s| {
        handler.handle_stanza(s)
    }));
    let t0 = Instant::now();
    let sending = alice.send_file(bob_jid, &path, SendOptions::default());
    let arrived =
        tokio::time::timeout(Duration::from_secs(30), offer_arrives(&bob, &mut bob_rx)).await;
    let elapsed = t0.elapsed();
    drop(sending);
    pump.abort();
    match arrived {
        Ok(true) => Ok(Run {
            bytes: 4 * GIB,
            elapsed: Some(elapsed),
            latency: None,
        }),
        Ok(false) => Err("the hub closed before the offer came".to_owned()),
        Err(_) => Err("no offer within 30 s".to_owned()),
    }
}

/// Met when the slowest run's offer came within 1 s.
pub fn goal(report: &Report) -> Goal {
    let Some(case) = report.case(ID).filter(|c| !c.runs_mbps.is_empty()) else {
        return Goal {
            name: GOAL.to_owned(),
            verdict: Verdict::NotMeasured,
            detail: format!("needs {ID}"),
        };
    };
    let mb = case.bytes as f64 / crate::report::MB;
    let worst = case.runs_mbps.iter().map(|r| mb / r).fold(0.0f64, f64::max);
    Goal {
        name: GOAL.to_owned(),
        verdict: if worst <= 1.0 {
            Verdict::Met
        } else {
            Verdict::Missed
        },
        detail: format!(
            "offer on the hub after {:.1} ms at most ({} runs; sparse file, the offer's MD5 \
             only within Config::offer_hash, goal ≤ 1000 ms)",
            worst * 1000.0,
            case.runs_mbps.len()
        ),
    }
}
