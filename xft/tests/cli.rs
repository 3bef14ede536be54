//! The `xft` binary as a user meets it, without a server: each subcommand's `--help` lists
//! only the flags that act in it, shell completions and the man page, the `--password`
//! warning, and no hang waiting for a password that cannot be typed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn xft() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xft"));
    // No config file of the machine's user, no password from the environment.
    c.env_remove("XFT_PASSWORD")
        .env("XDG_CONFIG_HOME", "/nonexistent/xft-test")
        .env("HOME", "/nonexistent/xft-test")
        .stdin(Stdio::null());
    c
}

/// The long flags `xft SUB --help` lists.
fn flags(sub: &str) -> BTreeSet<String> {
    let out = xft().args([sub, "--help"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split([' ', ',', '=', '<'])
                .find(|w| w.starts_with("--"))
                // A counted flag is listed as `--verbose...`.
                .map(|w| w.trim_end_matches("...").to_owned())
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const SHARED: &[&str] = &[
    "--server",
    "--jid",
    "--password",
    "--password-file",
    "--plaintext",
    "--config",
    "--s5b-budget",
    "--inactivity-timeout",
    "--json",
    "--help",
    // Global: logging and the stanza console (xft/src/log.rs) act in every subcommand.
    "--verbose",
    "--quiet",
    "--xml-log",
];

#[test]
fn recv_help_lists_the_receivers_flags_and_none_that_act_only_when_sending() {
    let mut want = set(SHARED);
    want.extend(set(&[
        "--dir",
        "--count",
        "--from",
        "--max-size",
        "--overwrite",
        "--accept-method",
        "--max-block-size",
        "--dial",
        // Jingle: the receiver's own S5B candidate, only where named.
        "--local-address",
        // Jingle pull: files served on request, files asked for.
        "--serve",
        "--get",
    ]));
    assert_eq!(flags("recv"), want);
    // The sender's flags are refused, not ignored.
    for (flag, value) in [
        ("--block-size", "4096"),
        ("--method", "ibb"),
        ("--proxy", "p.localhost"),
        ("--offer-timeout", "5"),
        // The receiver takes both stacks: nothing to choose.
        ("--stack", "jingle"),
    ] {
        let out = xft().args(["recv", flag, value]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unexpected argument"), "{flag}: {err}");
    }
}

#[test]
fn send_help_lists_the_senders_flags_and_none_of_the_receivers() {
    let mut want = set(SHARED);
    want.extend(set(&[
        "--to",
        "--stack",
        "--method",
        "--proxy",
        "--local-address",
        "--block-size",
        "--offer-timeout",
    ]));
    assert_eq!(flags("send"), want);
    let out = xft()
        .args(["send", "--to", "b@h/x", "--dial", "any", "FILE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn send_stack_takes_auto_jingle_or_si_and_refuses_anything_else_as_bad_usage() {
    let out = xft()
        .args(["send", "--to", "b@h/x", "--stack", "xmpp", "FILE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for v in ["auto", "jingle", "si"] {
        assert!(err.contains(v), "the error names {v}: {err}");
    }
    // The help says what each value does.
    let out = xft().args(["send", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--stack <STACK>"), "{help}");
    assert!(help.contains("Jingle File Transfer"), "{help}");
}

#[test]
fn completions_for_each_shell_and_the_man_page_name_every_subcommand() {
    let subs = [
        "demo",
        "send",
        "recv",
        "proxy",
        "bench",
        "completions",
        "man",
    ];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = xft().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for sub in subs {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
        // The receiver's own flags are completed too.
        assert!(text.contains("max-block-size"), "{shell}");
        // `--stack` and its values.
        assert!(text.contains("stack"), "{shell}");
        if shell != "elvish" {
            assert!(
                text.contains("jingle"),
                "{shell} completions lack --stack's values"
            );
        }
    }
    let out = xft().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH xft 1"), "{page}");
    for sub in subs {
        assert!(page.contains(sub), "the man page lacks {sub}");
    }
    // Each subcommand's own page, with its own flags only.
    let out = xft().args(["man", "recv"]).output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH xft-recv 1"), "{page}");
    assert!(page.contains("\\-\\-max\\-block\\-size"), "{page}");
    assert!(!page.contains("\\-\\-block\\-size"), "{page}");
    let out = xft().args(["man", "send"]).output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains("\\-\\-stack"), "{page}");
    assert!(page.contains("jingle"), "{page}");
    assert_eq!(
        xft().args(["man", "nope"]).output().unwrap().status.code(),
        Some(2)
    );
    assert_eq!(
        xft()
            .args(["completions", "cmd.exe"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn password_on_the_command_line_is_warned_about_on_stderr() {
    let mut child = xft()
        .args([
            "send",
            "--server",
            "127.0.0.1:9",
            "--jid",
            "alice@localhost",
            "--plaintext",
            "--password",
            "hunter2",
            "--to",
            "bob@localhost/x",
            "FILE",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The warning comes before the login (which then fails on the closed port): read it,
    // then stop the process by its pid.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("xft: warning: --password is visible to every local user"),
        "{first}"
    );
    assert!(!first.contains("hunter2"));
}

#[test]
fn without_any_password_source_and_no_terminal_xft_says_so_at_once() {
    let started = Instant::now();
    let out = xft()
        .args([
            "recv",
            "--server",
            "127.0.0.1:9",
            "--jid",
            "bob@localhost",
            "--plaintext",
        ])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no password"), "{err}");
    assert!(
        err.contains("--password-file") && err.contains("XFT_PASSWORD"),
        "{err}"
    );
}
