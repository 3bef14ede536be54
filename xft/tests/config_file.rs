//! The config file through a real Prosody: with `server`, `jid`, `plaintext` and a
//! `password_command` in `$XDG_CONFIG_HOME/xft/config.toml`, `xft send --to JID FILE` is
//! enough; `xft recv` takes its `dir`, `dial` and `password_file` from a file named by
//! `--config`. The rows carry the per-stage times, and `verified` holds on both sides.
//! Loopback only; every process is stopped by its pid (`kill_on_drop`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BUDGET: Duration = Duration::from_secs(60);

fn xft(args: &[&str], xdg: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xft"))
        .args(args)
        .env_remove("XFT_PASSWORD")
        .env("XDG_CONFIG_HOME", xdg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("xft starts")
}

async fn rows(child: &mut Child) -> Vec<Value> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    while let Some(l) = tokio::time::timeout(BUDGET, lines.next_line())
        .await
        .expect("output within the budget")
        .unwrap()
    {
        out.push(serde_json::from_str(&l).expect("one json object per line"));
    }
    out
}

/// Stderr lines until one contains `needle` (or EOF); the rest is drained in the background.
async fn wait_stderr(child: &mut Child, needle: &str) -> Vec<String> {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            let hit = l.contains(needle);
            seen.push(l);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no {needle:?} on stderr: {seen:?}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    seen
}

#[tokio::test]
async fn send_to_a_jid_and_a_file_is_enough_with_a_config_file() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = prosody.c2s_addr().to_string();

    // Bob: a config file named by --config, the password in a file next to it.
    let bob_cfg = dir.path().join("bob.toml");
    std::fs::write(dir.path().join("bob-password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(
        &bob_cfg,
        format!(
            "server = \"{server}\"\njid = \"{}/cfg\"\nplaintext = true\n\
             password_file = \"bob-password\"\ndir = \"{}\"\ndial = \"any\"\n",
            prosody.jid("bob"),
            dir.path().join("inbox").display()
        ),
    )
    .unwrap();
    let no_xdg = dir.path().join("empty-xdg");
    let mut bob = xft(
        &[
            "recv",
            "--config",
            bob_cfg.to_str().unwrap(),
            "--count",
            "1",
            "--json",
        ],
        &no_xdg,
    );
    wait_stderr(&mut bob, " online ").await;

    // Alice: the default config file under XDG_CONFIG_HOME, the password from a command.
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(xdg.join("xft")).unwrap();
    std::fs::write(
        xdg.join("xft/config.toml"),
        format!(
            "server = \"{server}\"\njid = \"{}/cfg\"\nplaintext = true\n\
             password_command = \"printf '%s\\\\n' {PASSWORD}\"\n",
            prosody.jid("alice")
        ),
    )
    .unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path().join("from-config.bin");
    std::fs::write(&file, &data).unwrap();
    let to = format!("{}/cfg", prosody.jid("bob"));
    // The only flag beyond --to and the file: our streamhost on loopback (this test's rule),
    // and --json to read the row.
    let mut alice = xft(
        &[
            "send",
            "--to",
            &to,
            "--local-address",
            "127.0.0.1",
            "--json",
            file.to_str().unwrap(),
        ],
        &xdg,
    );
    let sent = rows(&mut alice).await;
    assert!(alice.wait().await.unwrap().success(), "{sent:?}");
    let got = rows(&mut bob).await;
    assert!(
        tokio::time::timeout(BUDGET, bob.wait())
            .await
            .unwrap()
            .unwrap()
            .success()
    );
    let (sent, got) = (&sent[0], &got[0]);
    assert!(sent["error"].is_null(), "{sent}");
    assert_eq!(
        got["file"],
        dir.path().join("inbox/from-config.bin").to_str().unwrap()
    );
    assert_eq!(
        std::fs::read(dir.path().join("inbox/from-config.bin")).unwrap(),
        data
    );
    assert_eq!(sent["sha256"], got["sha256"]);
    // One meaning of `verified` on both sides, and the stage times of a completed transfer.
    assert_eq!(
        (&sent["side"], &got["side"]),
        (&"send".into(), &"recv".into())
    );
    assert_eq!(sent["delivery"], "acknowledged", "{sent}");
    assert_eq!(sent["verified"], true, "{sent}");
    assert_eq!(got["size_checked"], true, "{got}");
    assert_eq!(
        got["hash_checked"], true,
        "xft offers the MD5 of a small file: {got}"
    );
    assert_eq!(got["verified"], true, "{got}");
    for row in [sent, got] {
        for k in ["prepare_s", "offer_s", "connect_s", "stream_s", "finish_s"] {
            let t = row[k].as_f64().unwrap_or_else(|| panic!("{k}: {row}"));
            assert!(
                t >= 0.0 && t <= row["seconds"].as_f64().unwrap() + 0.01,
                "{k}: {row}"
            );
        }
        assert!(row["mb_per_s"].as_f64().unwrap() > 0.0, "{row}");
    }
}
