//! `xft recv --overwrite` through a real Prosody: two files of one name in a row replace each
//! other with it, and land side by side without it. Loopback only; every process is
//! stopped by its pid (`kill_on_drop`).

use std::process::Stdio;
use std::time::Duration;

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BUDGET: Duration = Duration::from_secs(60);

fn xft(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xft"))
        .args(args)
        .env("XFT_PASSWORD", PASSWORD)
        .env("XDG_CONFIG_HOME", "/nonexistent/xft-test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("xft starts")
}

fn login(prosody: &Prosody, user: &str) -> Vec<String> {
    [
        "--server",
        &prosody.c2s_addr().to_string(),
        "--jid",
        &format!("{}/xft", prosody.jid(user)),
        "--plaintext",
        "--json",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Two files both named `same.bin` (different bytes) from alice to `xft recv` with
/// `recv_extra`; the names in the inbox afterwards, sorted.
async fn two_of_one_name(recv_extra: &[&str]) -> (Vec<String>, Vec<u8>) {
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let mut args = vec!["recv".to_owned()];
    args.extend(login(&prosody, "bob"));
    args.extend([
        "--dir".into(),
        inbox.display().to_string(),
        "--count".into(),
        "2".into(),
    ]);
    args.extend(["--accept-method".into(), "ibb".into()]);
    args.extend(recv_extra.iter().map(|s| (*s).to_owned()));
    let mut bob = xft(&args);
    let mut lines = BufReader::new(bob.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains(" online ") {
                return;
            }
        }
        panic!("xft recv ended before it was online");
    })
    .await
    .expect("online within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (d, byte) in [(&a, 1u8), (&b, 2u8)] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("same.bin"), vec![byte; 5000]).unwrap();
    }
    let mut args = vec!["send".to_owned()];
    args.extend(login(&prosody, "alice"));
    args.extend([
        "--to".into(),
        format!("{}/xft", prosody.jid("bob")),
        "--method".into(),
        "ibb".into(),
        a.join("same.bin").display().to_string(),
        b.join("same.bin").display().to_string(),
    ]);
    let mut alice = xft(&args);
    let sent = tokio::time::timeout(BUDGET, alice.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(sent.success());
    let got = tokio::time::timeout(BUDGET, bob.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(got.success());
    let mut names: Vec<String> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let same = std::fs::read(inbox.join("same.bin")).unwrap();
    (names, same)
}

#[tokio::test]
async fn overwrite_replaces_a_file_of_the_same_name_and_its_absence_keeps_both() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let (names, same) = two_of_one_name(&["--overwrite"]).await;
    assert_eq!(names, ["same.bin"]);
    assert_eq!(same, vec![2u8; 5000], "the second replaced the first");

    let (names, same) = two_of_one_name(&[]).await;
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"same.bin".to_owned()), "{names:?}");
    assert_eq!(same, vec![1u8; 5000], "the first stays under its name");
}
