use std::net::{IpAddr, Ipv4Addr};

use ft_facade::{Config, ErrorKind, Method, Stack, Stage};
use ft_transport::hub::{Hub, HubTransport};

use super::*;

#[test]
fn server_addresses_and_host_names_parse() {
    assert_eq!(
        server("127.0.0.1:5222").unwrap(),
        Server::Addr("127.0.0.1:5222".parse().unwrap())
    );
    assert!(is_loopback(&server("[::1]:5222").unwrap()));
    assert!(is_loopback(&server("localhost:5222").unwrap()));
    assert!(!is_loopback(&server("example.org:5222").unwrap()));
    assert!(server("example.org").is_err());
}

const WITHIN: Duration = Duration::from_secs(30);

/// An entity on the hub, S5B only, its own streamhost on 127.0.0.1 (and allowed to dial it).
fn entity(hub: &Hub, me: &str, stack: Stack) -> FileTransfer<HubTransport> {
    let (t, mut rx) = hub.connect(me.parse().unwrap());
    let mut c = Config::default();
    c.stacks(&[stack]);
    c.methods(&[Method::S5b]);
    c.s5b.listen(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    let ft = FileTransfer::new(t, c);
    let pumped = ft.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            pumped.ready().await;
            let _ = pumped.handle_stanza(s);
        }
    });
    ft
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// `xft send`'s own per-file path ([`send_one`] and [`Row::succeeded`], which make the exit
/// status) against a receiver that rejects the file: the file changes on disk after the
/// sender hashed it for the offer (same size), so the receiver's hash check fails. By SI it
/// resets the S5B connection after the last byte: the transfer "completes" on the sender's
/// side (every byte written) with `reset-by-receiver`, and that must not exit 0; by Jingle
/// it ends the session with `<media-error/>`, a failed transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_of_a_file_the_receiver_rejects_exits_1_and_the_same_file_unchanged_exits_0() {
    for stack in [Stack::Si, Stack::Jingle] {
        rejected_then_accepted(stack).await;
    }
}

async fn rejected_then_accepted(stack: Stack) {
    let hub = Hub::new();
    let alice = entity(&hub, "alice@x/a", stack);
    let bob = entity(&hub, "bob@x/b", stack);
    let src_dir = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("report.pdf");
    let (v1, v2) = (content(300_000, 1), content(300_000, 2));
    std::fs::write(&src, &v1).unwrap();
    let to = bob.jid().clone();

    let one = |alice: FileTransfer<HubTransport>, src: std::path::PathBuf| {
        let to = to.clone();
        tokio::spawn(async move { send_one(&alice, &to, &src, "s5b", false).await })
    };
    let sending = one(alice.clone(), src.clone());
    let offer = tokio::time::timeout(WITHIN, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    // The offer, with v1's hash, is out: now the file becomes v2 in place.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
        f.write_all(&v2).unwrap();
        f.sync_all().unwrap();
    }
    let received = tokio::time::timeout(
        WITHIN,
        offer
            .accept_into_dir(dst.path(), AcceptOptions::new())
            .outcome(),
    )
    .await
    .unwrap();
    let err = received.unwrap_err();
    assert_eq!(err.stage, Stage::Verify);
    assert!(matches!(err.kind, ErrorKind::HashMismatch { .. }), "{err}");
    let row = tokio::time::timeout(WITHIN, sending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.stack, Some(stack.name()));
    match stack {
        // SI has no word for it: the sender only sees the reset, after every byte went out.
        Stack::Si => {
            assert!(row.error.is_none(), "{row:?}");
            assert_eq!(row.warnings, ["reset-by-receiver"]);
            assert_eq!(row.delivery, Some("unconfirmed"));
        }
        // Jingle says it: the receiver ends the session with <media-error/>.
        _ => {
            let e = row.error.as_deref().unwrap_or_default();
            assert!(e.contains("media-error"), "{row:?}");
        }
    }
    assert!(!row.verified);
    assert!(!row.succeeded(), "a rejected file must not exit 0: {row:?}");

    // The same file, unchanged this time: acknowledged, exit 0.
    let sending = one(alice.clone(), src.clone());
    let offer = tokio::time::timeout(WITHIN, bob.next_offer())
        .await
        .unwrap()
        .unwrap();
    let received = tokio::time::timeout(
        WITHIN,
        offer
            .accept_into_dir(dst.path(), AcceptOptions::new())
            .outcome(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(std::fs::read(received.path.unwrap()).unwrap(), v2);
    let row = tokio::time::timeout(WITHIN, sending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.delivery, Some("acknowledged"));
    assert!(row.warnings.is_empty() && row.succeeded(), "{row:?}");
}
