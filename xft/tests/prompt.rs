//! The password prompt on a real terminal: `xft recv` with no other password source, run
//! in a pseudo-terminal by util-linux `script`, asks for the password, does not echo it,
//! and logs in to a real Prosody with what was typed. Loopback only; `script` and its
//! child are stopped by pid (`kill_on_drop`; the child gets the terminal's hang-up).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Waits until the terminal's output holds `needle`; the output so far.
async fn wait_for(out: &Arc<Mutex<String>>, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = out.lock().unwrap().clone();
        if text.contains(needle) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {needle:?} within 30 s on the terminal:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_another_source_xft_prompts_on_the_terminal_and_logs_in_with_the_answer() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("!!! util-linux `script` not found: SKIPPING the password prompt test !!!");
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jid = format!("{}/tty", prosody.jid("bob"));
    let cmdline = format!(
        "'{}' recv --server {} --jid {jid} --plaintext --count 1 --dir '{}'",
        env!("CARGO_BIN_EXE_xft"),
        prosody.c2s_addr(),
        dir.path().display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env_remove("XFT_PASSWORD")
        .env("XDG_CONFIG_HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("script starts");
    let out = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = out.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });

    let prompt = format!("password for {jid}: ");
    wait_for(&out, &prompt).await;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    // Logged in with what was typed; the typed password never shows on the terminal.
    let text = wait_for(&out, "xft recv: online as").await;
    let after_prompt = &text[text.find(&prompt).unwrap() + prompt.len()..];
    assert!(!after_prompt.contains(PASSWORD), "echoed:\n{text}");
    let _ = child.kill().await;
}
