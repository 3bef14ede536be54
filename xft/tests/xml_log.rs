//! `--xml-log` and `-v` on a real transfer: `xft send` to `xft recv` by IBB through a real
//! Prosody over STARTTLS (a test CA in `SSL_CERT_FILE`). The sender logs to a file, the
//! receiver to stderr with `-v`; stdout keeps only the `--json` rows. Loopback only; every
//! process is stopped by its pid.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

const BUDGET: Duration = Duration::from_secs(120);

/// 4 blocks of 4096 bytes and a last one of 3616: base64 5464 and 4824 characters.
const SIZE: usize = 4 * 4096 + 3616;

/// `xft` trusting the test CA, the password from the environment (a `--password` flag earns
/// a warning), and no config file of the user running the tests.
fn xft(prosody: &Prosody, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xft"))
        .args(args)
        .env("SSL_CERT_FILE", prosody.ca_file())
        .env("XFT_PASSWORD", PASSWORD)
        .env("XDG_CONFIG_HOME", prosody.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("xft starts")
}

/// Collects a child's stderr lines; the receiver fires once "online as" was printed.
fn collect_stderr(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, oneshot::Receiver<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = oneshot::channel();
    let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut online = Some(tx);
        while let Ok(Some(l)) = reader.next_line().await {
            if l.contains("online as")
                && let Some(tx) = online.take()
            {
                let _ = tx.send(());
            }
            sink.lock().unwrap().push(l);
        }
    });
    (lines, rx)
}

/// Whether `s` holds a run of at least `n` base64-alphabet characters (an unshortened
/// payload).
fn has_base64_run(s: &str, n: usize) -> bool {
    let mut run = 0;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[tokio::test]
async fn xml_log_of_an_ibb_transfer_over_starttls_is_complete_shortened_and_redacted() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let server = prosody.c2s_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path().join("logged.bin");
    std::fs::write(&file, &data).unwrap();
    let log_path = dir.path().join("send.xml.log");

    let mut recv = xft(
        &prosody,
        &[
            "-v",
            "recv",
            "--server",
            &server,
            "--jid",
            "bob@localhost/xft",
            "--dir",
            &inbox.to_string_lossy(),
            "--count",
            "1",
            "--json",
            "--xml-log",
            "-",
        ],
    );
    let (recv_err, online) = collect_stderr(&mut recv);
    tokio::time::timeout(Duration::from_secs(30), online)
        .await
        .expect("xft recv online within 30 s")
        .unwrap();

    let send = xft(
        &prosody,
        &[
            "send",
            "--xml-log",
            &log_path.to_string_lossy(),
            "--server",
            &server,
            "--jid",
            "alice@localhost/xft",
            // The SI stanzas are what this log is checked for (xft to xft is Jingle by
            // default).
            "--stack",
            "si",
            "--method",
            "ibb-iq",
            "--block-size",
            "4096",
            "--json",
            "--to",
            "bob@localhost/xft",
            &file.to_string_lossy(),
        ],
    );
    let sent = tokio::time::timeout(BUDGET, send.wait_with_output())
        .await
        .expect("xft send ends")
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let status = tokio::time::timeout(BUDGET, recv.wait())
        .await
        .expect("xft recv ends")
        .unwrap();
    assert!(status.success(), "{:?}", recv_err.lock().unwrap());
    let got = std::fs::read(inbox.join("logged.bin")).unwrap();
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));

    // stdout: only the JSON row, on both sides, whatever went to stderr.
    for out in [sent.stdout.clone(), {
        let mut s = Vec::new();
        recv.stdout
            .take()
            .unwrap()
            .read_to_end(&mut s)
            .await
            .unwrap();
        s
    }] {
        let out = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 1, "{out}");
        let row: serde_json::Value = serde_json::from_str(rows[0]).unwrap();
        assert!(row["error"].is_null(), "{row}");
    }

    // The sender's file: one timestamped element per line, both ways.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let out = |needle: &str| {
        lines
            .iter()
            .any(|l| l.contains(" >> ") && l.contains(needle))
    };
    let inn = |needle: &str| {
        lines
            .iter()
            .any(|l| l.contains(" << ") && l.contains(needle))
    };
    for l in &lines {
        let (stamp, _) = l.split_once(' ').unwrap();
        assert!(
            stamp.len() >= 20 && stamp.starts_with("20") && stamp.ends_with('Z'),
            "{l}"
        );
    }
    // The login over STARTTLS, SASL redacted.
    assert!(
        inn("<starttls") && out("<starttls") && inn("<proceed"),
        "{log}"
    );
    // SCRAM (no password on the wire), every payload redacted.
    assert!(out("mechanism='SCRAM-SHA-1'>[redacted]</auth>"), "{log}");
    assert!(
        inn(">[redacted]</challenge>") && out(">[redacted]</response>"),
        "{log}"
    );
    assert!(inn(">[redacted]</success>"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
    // SCRAM's client-first message "n,,n=alice,r=…" in base64.
    assert!(!log.contains("biwsbj1hbGljZ"), "{log}");
    // The offer, its acceptance, the IBB open, the data shortened, the close.
    assert!(out("<si ") && out("http://jabber.org/protocol/si"), "{log}");
    assert!(inn("http://jabber.org/protocol/si"), "{log}");
    assert!(
        out("<open ") && out("http://jabber.org/protocol/ibb"),
        "{log}"
    );
    assert!(out(">[5464 base64 chars]</data>"), "{log}");
    assert!(out(">[4824 base64 chars]</data>"), "{log}");
    assert!(out("<close "), "{log}");
    assert!(!has_base64_run(&log, 200), "an unshortened payload: {log}");

    // The receiver: its inbound data shortened too, and -v's debug lines, all on stderr.
    let err = recv_err.lock().unwrap().join("\n");
    assert!(
        err.contains(" << ") && err.contains(">[5464 base64 chars]</data>"),
        "{err}"
    );
    assert!(err.contains("DEBUG"), "{err}");
    assert!(!has_base64_run(&err, 200), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}
