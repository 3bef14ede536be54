//! `xft send`'s exit status when the receiver rejects the file after the last byte, the
//! binary against a real Prosody (started by `ft-testkit`): the receiver is a facade in this
//! process that checks the offered hash. The file changes on disk after `xft send` hashed it
//! for the offer (same size), so the receiver's check fails. By SI it resets the S5B
//! connection after the last byte: every byte went out, but the file was refused, and
//! `xft send` says so with exit status 1 (it exited 0 before). By Jingle the receiver ends
//! the session with `<media-error/>`: a failed transfer, exit 1. The same file unchanged
//! exits 0. Every address is loopback; the `xft` process is stopped by its pid when dropped.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ft_facade::{AcceptOptions, Config, FileTransfer, Method, ProxySource};
use ft_testkit::{PASSWORD, Prosody, ProsodyOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BUDGET: Duration = Duration::from_secs(120);

fn password_file(dir: &Path) -> String {
    let p = dir.join("password");
    std::fs::write(&p, format!("{PASSWORD}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p.to_string_lossy().into_owned()
}

fn xft_send(prosody: &Prosody, dir: &Path, to: &str, stack: &str, file: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xft"))
        .args(["send", "--server"])
        .arg(prosody.c2s_addr().to_string())
        .arg("--jid")
        .arg(format!("{}/xft", prosody.jid("alice")))
        .arg("--password-file")
        .arg(password_file(dir))
        .args(["--plaintext", "--json", "--local-address", "127.0.0.1"])
        .args(["--method", "s5b", "--stack", stack, "--to", to])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("xft starts")
}

async fn row_and_status(mut child: Child) -> (Value, Option<i32>) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(BUDGET, lines.next_line())
        .await
        .expect("a row within the budget")
        .unwrap()
        .expect("a row");
    let status = tokio::time::timeout(BUDGET, child.wait())
        .await
        .expect("xft exits")
        .unwrap();
    (serde_json::from_str(&line).unwrap(), status.code())
}

/// Bob: a facade logged in to `prosody`, both stacks, S5B only, no streamhost of its own,
/// allowed to dial xft's on loopback.
async fn bob(prosody: &Prosody) -> FileTransfer<ft_transport::xmpp::ClientTransport> {
    let (t, inbound) = prosody.connect("bob", "in").await.unwrap();
    let mut c = Config::default();
    c.methods(&[Method::S5b]);
    c.s5b.listen(Vec::new());
    c.proxies(ProxySource::None);
    c.s5b.dial_policy(ft_facade::s5b::DialPolicy::allow_all());
    let ft = FileTransfer::new(t, c);
    let pumped = ft.clone();
    tokio::spawn(ft_transport::pump(inbound, move |s| {
        let _ = pumped.handle_stanza(s);
        ControlFlow::Break(())
    }));
    ft
}

async fn rejected_then_accepted(stack: &str) {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let bob = bob(&prosody).await;
    let to = bob.jid().to_string();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let file = dir.path().join("report.pdf");
    let v1 = ft_testkit::content(400_000, 1);
    let v2 = ft_testkit::content(400_000, 2);
    std::fs::write(&file, &v1).unwrap();

    let child = xft_send(&prosody, dir.path(), &to, stack, &file);
    let offer = tokio::time::timeout(BUDGET, bob.next_offer())
        .await
        .expect("an offer")
        .unwrap();
    assert_eq!(offer.stack().name(), stack);
    // The offer, with v1's hash, is out: the file becomes v2 in place.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.write_all(&v2).unwrap();
        f.sync_all().unwrap();
    }
    let received = offer
        .accept_into_dir(&inbox, AcceptOptions::new())
        .outcome()
        .await;
    assert!(received.is_err(), "the receiver must reject: {received:?}");
    let (row, status) = row_and_status(child).await;
    assert_eq!(row["stack"], stack, "{row}");
    if stack == "si" {
        // SI has no word for it: every byte went out, then the reset.
        assert!(row["error"].is_null(), "{row}");
        let warned = serde_json::json!(["reset-by-receiver"]);
        assert_eq!(row["warnings"], warned, "{row}");
    } else {
        // Jingle says it: the receiver ends the session with <media-error/>.
        let error = row["error"].as_str().unwrap_or_default();
        assert!(error.contains("media-error"), "{row}");
    }
    assert_eq!(row["verified"], false, "{row}");
    assert_eq!(status, Some(1), "a rejected file must exit 1: {row}");
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 0);

    // The same file, unchanged now: acknowledged, exit 0.
    let child = xft_send(&prosody, dir.path(), &to, stack, &file);
    let offer = tokio::time::timeout(BUDGET, bob.next_offer())
        .await
        .expect("an offer")
        .unwrap();
    let received = offer
        .accept_into_dir(&inbox, AcceptOptions::new())
        .outcome()
        .await
        .unwrap();
    assert_eq!(std::fs::read(received.path.unwrap()).unwrap(), v2);
    let (row, status) = row_and_status(child).await;
    assert_eq!(row["delivery"], "acknowledged", "{row}");
    assert_eq!(status, Some(0), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_si_of_a_file_the_receiver_rejects_exits_1() {
    rejected_then_accepted("si").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_jingle_of_a_file_the_receiver_rejects_exits_1() {
    rejected_then_accepted("jingle").await;
}
