//! `xft send` and `xft recv` against a real Prosody 0.12 with a slixmpp 1.17 peer (both
//! started by `ft-testkit`): IBB over iq and over message, S5B through Prosody's proxy65 and
//! through `xft proxy`, and a decline. Every address is loopback; every process started
//! here is stopped by its pid (`kill_on_drop`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions, SlixPeer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One whole transfer, generous: a few MiB through Prosody on two shared cores.
const BUDGET: Duration = Duration::from_secs(120);

use ft_testkit::content;

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The login and `--json` for `xft send` or `xft recv` (`side`), with the one flag each side
/// needs on loopback: the sender's own streamhost on 127.0.0.1, the receiver allowed to dial
/// it (the default, public only, refuses it).
fn account(side: &str, prosody: &Prosody, user: &str, resource: &str) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--server".into(),
        prosody.c2s_addr().to_string(),
        "--jid".into(),
        format!("{}/{resource}", prosody.jid(user)),
        "--password-file".into(),
        password_file().to_string_lossy().into_owned(),
        "--plaintext".into(),
        "--json".into(),
    ];
    match side {
        "send" => args.extend(["--local-address".into(), "127.0.0.1".into()]),
        _ => args.extend(["--dial".into(), "any".into()]),
    }
    args
}

/// A file holding the rig's password (with a line end, as an editor leaves it), in cargo's
/// scratch directory for integration tests.
fn password_file() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join("xft-interop-password");
    let want = format!("{PASSWORD}\n");
    if std::fs::read_to_string(&p).ok().as_deref() != Some(want.as_str()) {
        // Written aside and renamed: a test running beside never reads it half-written.
        let tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
        std::fs::write(tmp.path(), &want).unwrap();
        tmp.persist(&p).unwrap();
    }
    p
}

fn xft(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xft"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("xft starts")
}

/// The first JSON line `xft` prints on stdout.
async fn json_row(child: &mut Child) -> Value {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(BUDGET, lines.next_line())
        .await
        .expect("a result within the budget")
        .unwrap()
        .expect("a result line");
    serde_json::from_str(&line).expect("one json object")
}

/// Waits until `xft recv` says it is online.
async fn wait_online(child: &mut Child) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let online = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains(" online ") {
                return true;
            }
            seen.push(l);
        }
        false
    })
    .await;
    assert!(
        matches!(online, Ok(true)),
        "xft not online within 30 s: {seen:?}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_string_lossy().into_owned()
}

async fn xft_sends_to_slixmpp(method: &str, slix_extra: &[&str], xft_extra: &[&str], size: usize) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut bob = SlixPeer::recv(&prosody, "bob", &inbox, 1, slix_extra)
        .await
        .unwrap();
    let bob_jid = bob.jid().unwrap().to_string();
    let data = content(size, size as u64);
    let file = write(dir.path(), "to-slixmpp.bin", &data);
    let mut args = vec!["send".to_owned()];
    args.extend(account("send", &prosody, "alice", "xft"));
    args.extend(["--to".into(), bob_jid, "--method".into(), method.into()]);
    args.extend(xft_extra.iter().map(|s| (*s).to_owned()));
    args.push(file);
    let mut child = xft(&args);
    let row = json_row(&mut child).await;
    assert!(row["error"].is_null(), "{row}");
    assert_eq!(row["sha256"], sha256_hex(&data).as_str(), "{row}");
    assert_eq!(row["bytes"].as_u64(), Some(size as u64), "{row}");
    let got = bob.wait_event("file").await.unwrap();
    assert_eq!(got["sha256"], sha256_hex(&data).as_str(), "{got}");
    assert!(child.wait().await.unwrap().success());
    assert_eq!(row["method"], method, "{row}");
}

#[tokio::test]
async fn xft_send_to_slixmpp_by_ibb_over_iq() {
    xft_sends_to_slixmpp("ibb-iq", &[], &["--block-size", "4096"], 256 * 1024).await;
}

#[tokio::test]
async fn xft_send_to_slixmpp_by_ibb_over_message() {
    xft_sends_to_slixmpp("ibb-message", &[], &["--block-size", "4096"], 256 * 1024).await;
}

#[tokio::test]
async fn xft_send_to_slixmpp_through_prosody_proxy65() {
    xft_sends_to_slixmpp("s5b-proxy", &["--prefer", "s5b"], &[], 2 * 1024 * 1024).await;
}

#[tokio::test]
async fn xft_send_to_slixmpp_through_xft_proxy() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions {
        proxy65: false,
        ..ProsodyOptions::default()
    })
    .unwrap();
    let component = prosody.component_jid().to_string();
    let mut proxy = xft(&[
        "proxy".into(),
        "--server".into(),
        prosody.component_addr().to_string(),
        "--component-jid".into(),
        component.clone(),
        "--secret".into(),
        prosody.component_secret().into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ]);
    wait_online(&mut proxy).await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut bob = SlixPeer::recv(&prosody, "bob", &inbox, 1, &["--prefer", "s5b"])
        .await
        .unwrap();
    let data = content(1 << 20, 3);
    let file = write(dir.path(), "via-xft-proxy.bin", &data);
    let mut args = vec!["send".to_owned()];
    args.extend(account("send", &prosody, "alice", "xft"));
    args.extend([
        "--to".into(),
        bob.jid().unwrap().to_string(),
        "--method".into(),
        "s5b-proxy".into(),
        "--proxy".into(),
        component,
        file,
    ]);
    let mut child = xft(&args);
    let row = json_row(&mut child).await;
    assert!(row["error"].is_null(), "{row}");
    assert_eq!(row["method"], "s5b-proxy", "{row}");
    let got = bob.wait_event("file").await.unwrap();
    assert_eq!(got["sha256"], sha256_hex(&data).as_str(), "{got}");
    proxy.kill().await.unwrap();
}

async fn slixmpp_sends_to_xft(method: &str, slix_extra: &[&str], size: usize) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut args = vec!["recv".to_owned()];
    args.extend(account("recv", &prosody, "bob", "xft"));
    args.extend([
        "--dir".into(),
        inbox.to_string_lossy().into_owned(),
        "--count".into(),
        "1".into(),
    ]);
    let mut child = xft(&args);
    wait_online(&mut child).await;
    let data = content(size, 7);
    let file = dir.path().join("from-slixmpp.bin");
    std::fs::write(&file, &data).unwrap();
    let to = format!("{}/xft", prosody.jid("bob"));
    let mut alice = SlixPeer::send(&prosody, "alice", &to, &file, method, slix_extra)
        .await
        .unwrap();
    let row = json_row(&mut child).await;
    assert!(row["error"].is_null(), "{row}");
    assert_eq!(row["sha256"], sha256_hex(&data).as_str(), "{row}");
    let sent = alice.wait_event("sent").await.unwrap();
    assert_eq!(sent["sha256"], sha256_hex(&data).as_str(), "{sent}");
    assert_eq!(
        sha256_hex(&std::fs::read(inbox.join("from-slixmpp.bin")).unwrap()),
        sha256_hex(&data)
    );
    assert!(child.wait().await.unwrap().success());
    let expected = match method {
        "s5b" => "s5b-proxy",
        other => other,
    };
    assert_eq!(row["method"], expected, "{row}");
}

#[tokio::test]
async fn slixmpp_sends_to_xft_recv_by_ibb_over_iq() {
    slixmpp_sends_to_xft("ibb-iq", &["--block-size", "4096"], 256 * 1024).await;
}

#[tokio::test]
async fn slixmpp_sends_to_xft_recv_by_ibb_over_message() {
    slixmpp_sends_to_xft("ibb-message", &["--block-size", "4096"], 256 * 1024).await;
}

#[tokio::test]
async fn slixmpp_sends_to_xft_recv_through_prosody_proxy65() {
    slixmpp_sends_to_xft("s5b", &[], 2 * 1024 * 1024).await;
}

#[tokio::test]
async fn xft_recv_declines_a_sender_it_does_not_accept_from() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut args = vec!["recv".to_owned()];
    args.extend(account("recv", &prosody, "bob", "xft"));
    args.extend([
        "--dir".into(),
        inbox.to_string_lossy().into_owned(),
        "--from".into(),
        prosody.jid("carol").to_string(),
    ]);
    let mut child = xft(&args);
    wait_online(&mut child).await;
    let file = dir.path().join("unwanted.bin");
    std::fs::write(&file, content(1000, 9)).unwrap();
    let to = format!("{}/xft", prosody.jid("bob"));
    let mut alice = SlixPeer::send(&prosody, "alice", &to, &file, "ibb-iq", &[])
        .await
        .unwrap();
    let r = alice.wait_event("sent").await;
    assert!(r.is_err(), "the offer is refused: {r:?}");
    assert!(!inbox.join("unwanted.bin").exists());
    // The user learns of it: one row with who, which file, the stage and what was answered.
    let row = json_row(&mut child).await;
    assert_eq!(row["kind"], "refused", "{row}");
    assert_eq!(row["file"], "unwanted.bin", "{row}");
    assert_eq!(row["stage"], "offer", "{row}");
    assert_eq!(
        row["peer"],
        format!("{}/slix", prosody.jid("alice")),
        "{row}"
    );
    assert!(
        row["error"].as_str().unwrap().contains("forbidden"),
        "{row}"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn xft_recv_reports_an_offer_its_size_policy_refused_and_exits_1() {
    size_policy_refusal("si").await;
}

/// The same by Jingle: the receiver ends the session instead of an iq error, and the row
/// names the session-terminate's reason.
#[tokio::test]
async fn xft_recv_reports_a_jingle_offer_its_size_policy_refused_and_exits_1() {
    size_policy_refusal("jingle").await;
}

async fn size_policy_refusal(stack: &str) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut args = vec!["recv".to_owned()];
    args.extend(account("recv", &prosody, "bob", "xft"));
    args.extend([
        "--dir".into(),
        inbox.to_string_lossy().into_owned(),
        "--max-size".into(),
        "1000".into(),
        "--count".into(),
        "1".into(),
    ]);
    let mut bob = xft(&args);
    wait_online(&mut bob).await;
    let file = write(dir.path(), "big.bin", &content(5000, 3));
    let mut args = vec!["send".to_owned()];
    args.extend(account("send", &prosody, "alice", "xft"));
    args.extend(["--stack".into(), stack.into()]);
    args.extend(["--to".into(), format!("{}/xft", prosody.jid("bob")), file]);
    let mut alice = xft(&args);
    let sent = json_row(&mut alice).await;
    assert_eq!(sent["stack"], stack, "{sent}");
    assert!(
        sent["error"].as_str().unwrap().contains("declined"),
        "{sent}"
    );
    let row = json_row(&mut bob).await;
    assert_eq!(row["kind"], "refused", "{row}");
    assert_eq!(row["file"], "big.bin", "{row}");
    let error = row["error"].as_str().unwrap();
    assert!(error.contains("exceeds the limit 1000"), "{row}");
    assert_eq!(row["stack"], stack, "{row}");
    if stack == "si" {
        assert!(error.contains("answered forbidden"), "{row}");
    } else {
        assert!(
            error.contains("answered session-terminate <decline/>"),
            "{row}"
        );
    }
    // --count 1: the refused offer was the one; xft recv ends, and not with success.
    let status = tokio::time::timeout(BUDGET, bob.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(!inbox.join("big.bin").exists());
    let _ = alice.wait().await;
}

#[tokio::test]
async fn xft_send_of_a_4_gib_file_puts_its_offer_on_the_wire_at_once_without_hash() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    // bob declines everyone but carol: alice's offer is answered as soon as it arrives.
    let mut args = vec!["recv".to_owned()];
    args.extend(account("recv", &prosody, "bob", "xft"));
    args.extend([
        "--dir".into(),
        inbox.to_string_lossy().into_owned(),
        "--from".into(),
        prosody.jid("carol").to_string(),
    ]);
    let mut bob = xft(&args);
    wait_online(&mut bob).await;
    // Sparse: no disk space; hashing it before the offer would read 4 GiB.
    let file = dir.path().join("big.iso");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let mut args = vec!["send".to_owned()];
    args.extend(account("send", &prosody, "alice", "xft"));
    args.extend([
        "--to".into(),
        format!("{}/xft", prosody.jid("bob")),
        file.to_string_lossy().into_owned(),
    ]);
    let mut alice = xft(&args);
    let row = json_row(&mut alice).await;
    assert_eq!(row["stage"], "offer", "{row}");
    assert!(
        row["error"]
            .as_str()
            .unwrap_or_default()
            .contains("declined"),
        "{row}"
    );
    // From send_file to the peer's decline: offer out, answer back. With a hash pass over
    // 4 GiB first this is seconds; without, one round trip through Prosody.
    let seconds = row["seconds"].as_f64().unwrap();
    eprintln!("xft send 4 GiB: offer out and declined after {seconds:.3} s");
    assert!(seconds < 5.0, "{row}");
    let _ = alice.wait().await;
    bob.kill().await.unwrap();
}

/// BAD-INPUT C3 through the command line: by default `xft recv` dials no streamhost on this
/// host (nor the LAN), so a sender offering only its loopback listener gets `item-not-found`
/// and the transfer fails at connect; nothing lands.
#[tokio::test]
async fn xft_recv_by_default_dials_no_loopback_streamhost() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut args = vec!["recv".to_owned()];
    // The rig's account without its `--dial any`: the default policy.
    let mut acct = account("recv", &prosody, "bob", "xft");
    let i = acct.iter().position(|a| a == "--dial").unwrap();
    acct.drain(i..i + 2);
    args.extend(acct);
    args.extend([
        "--dir".into(),
        inbox.to_string_lossy().into_owned(),
        "--count".into(),
        "1".into(),
    ]);
    let mut bob = xft(&args);
    wait_online(&mut bob).await;
    let file = write(dir.path(), "probe.bin", &content(10_000, 4));
    let mut args = vec!["send".to_owned()];
    args.extend(account("send", &prosody, "alice", "xft"));
    args.extend([
        "--method".into(),
        "s5b-direct".into(),
        "--s5b-budget".into(),
        "5".into(),
        "--to".into(),
        format!("{}/xft", prosody.jid("bob")),
        file,
    ]);
    let mut alice = xft(&args);
    let sent = json_row(&mut alice).await;
    assert_eq!(sent["stage"], "connect", "{sent}");
    let got = json_row(&mut bob).await;
    assert!(!got["error"].is_null(), "{got}");
    assert!(!inbox.join("probe.bin").exists());
    let _ = alice.wait().await;
    let _ = tokio::time::timeout(BUDGET, bob.wait()).await;
}

/// Issue 10, finding 3 (BAD-INPUT G8): `xft recv` killed (SIGKILL) in the middle of v1 of a
/// file, then v2 (same name, same size, other content) sent by `xft send`: the receiver
/// must not resume v1's part (v2's offer has another MD5 and date), and v2 lands intact.
#[tokio::test]
async fn g8_xft_recv_killed_mid_v1_then_v2_of_the_same_name_and_size_lands_as_v2() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    const SIZE: usize = 4 << 20;
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let recv_args = || {
        let mut args = vec!["recv".to_owned()];
        args.extend(account("recv", &prosody, "bob", "xft"));
        args.extend([
            "--dir".into(),
            inbox.to_string_lossy().into_owned(),
            "--count".into(),
            "1".into(),
        ]);
        args
    };
    let send_args = |file: String| {
        let mut args = vec!["send".to_owned()];
        args.extend(account("send", &prosody, "alice", "xft"));
        // IBB over iq through Prosody: slow enough to be killed in the middle.
        args.extend([
            "--to".into(),
            format!("{}/xft", prosody.jid("bob")),
            "--method".into(),
            "ibb".into(),
            file,
        ]);
        args
    };
    let (d1, d2) = (dir.path().join("v1"), dir.path().join("v2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let v1 = content(SIZE, 81);
    let v2 = content(SIZE, 82);

    // v1: killed once at least a quarter is on disk.
    let mut bob = xft(&recv_args());
    wait_online(&mut bob).await;
    let mut alice = xft(&send_args(write(&d1, "v.bin", &v1)));
    let part = inbox.join("v.bin.part");
    let cut = tokio::time::timeout(BUDGET, async {
        loop {
            if std::fs::metadata(&part).is_ok_and(|m| m.len() >= (SIZE / 4) as u64) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(cut.is_ok(), "v1's part never grew");
    bob.start_kill().unwrap();
    let _ = bob.wait().await;
    let len = std::fs::metadata(&part).unwrap().len();
    assert!(len < SIZE as u64, "killed in the middle: {len}");
    // v1's sender is of no further interest: stopped by its pid rather than left to find
    // out at its inactivity timeout (up to 60 s) that the receiver is gone.
    let _ = alice.start_kill();
    let _ = tokio::time::timeout(BUDGET, alice.wait()).await;

    // v2, same name and size.
    let mut bob = xft(&recv_args());
    wait_online(&mut bob).await;
    let mut alice = xft(&send_args(write(&d2, "v.bin", &v2)));
    let sent = json_row(&mut alice).await;
    let got = json_row(&mut bob).await;
    assert!(got["error"].is_null(), "{got}");
    assert!(sent["error"].is_null(), "{sent}");
    assert_eq!(got["sha256"], sha256_hex(&v2).as_str(), "{got}");
    let landed = std::fs::read(inbox.join("v.bin")).unwrap();
    assert_eq!(sha256_hex(&landed), sha256_hex(&v2));
    assert!(!part.exists(), "the part went with the finished file");
    let _ = tokio::time::timeout(BUDGET, bob.wait()).await;
    let _ = tokio::time::timeout(BUDGET, alice.wait()).await;
}

/// XEP-0234 pull between two xft through Prosody: `xft recv --serve FILE` answers
/// `xft recv --get NAME --from PEER`; a name it does not serve is declined with
/// `<failed-application/>`.
#[tokio::test]
async fn xft_recv_get_pulls_a_file_xft_recv_serve_offers_and_nothing_else() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = content(300_000, 7);
    let served = write(dir.path(), "served.bin", &data);
    let mut args = vec!["recv".to_owned()];
    args.extend(account("recv", &prosody, "bob", "xft"));
    args.extend(["--serve".into(), served, "--count".into(), "1".into()]);
    let mut bob = xft(&args);
    wait_online(&mut bob).await;
    let get = |name: &str, inbox: &Path| {
        let mut args = vec!["recv".to_owned()];
        args.extend(account("recv", &prosody, "alice", "xft"));
        args.extend([
            "--local-address".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            inbox.to_string_lossy().into_owned(),
            "--from".into(),
            format!("{}/xft", prosody.jid("bob")),
            "--get".into(),
            name.into(),
        ]);
        xft(&args)
    };
    // A name bob does not serve: declined, nothing lands.
    let missing = dir.path().join("missing");
    let mut alice = get("secret.txt", &missing);
    let row = json_row(&mut alice).await;
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .contains("failed-application"),
        "{row}"
    );
    assert_eq!(alice.wait().await.unwrap().code(), Some(1));
    assert!(std::fs::read_dir(&missing).unwrap().next().is_none());
    // The served one: identical, verified, and bob's one transfer ends its --count 1.
    let inbox = dir.path().join("inbox");
    let mut alice = get("served.bin", &inbox);
    let row = json_row(&mut alice).await;
    assert_eq!(row["stack"], "jingle", "{row}");
    assert_eq!(row["verified"], true, "{row}");
    assert_eq!(row["sha256"], sha256_hex(&data), "{row}");
    assert_eq!(
        sha256_hex(&std::fs::read(inbox.join("served.bin")).unwrap()),
        sha256_hex(&data)
    );
    assert_eq!(alice.wait().await.unwrap().code(), Some(0));
    let status = tokio::time::timeout(BUDGET, bob.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
