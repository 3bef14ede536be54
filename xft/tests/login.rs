//! `xft` logging in to a real Prosody over STARTTLS with a certificate from a CA the test
//! makes (trusted through `SSL_CERT_FILE`), and each way a login fails: one line on stderr
//! that says what happened, at once, and exit status 3. Loopback only; every process is
//! stopped by its pid.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ft_testkit::{PASSWORD, Prosody, ProsodyOptions, TestCa};
use tokio::process::Command;

/// A refusal comes in about a round trip (plus starting the binary); generous for a loaded
/// machine, far below the old 15 s.
const PROMPT: Duration = Duration::from_secs(3);

/// The exit status of a refused login.
const EXIT_LOGIN: i32 = 3;

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `xft recv --count 0` as `user`: logs in, then exits. `ca_file` becomes `SSL_CERT_FILE`
/// (none: the variable is removed, so only the system's roots count).
async fn recv_once(
    server: &str,
    user: &str,
    password: &str,
    extra: &[&str],
    ca_file: Option<&Path>,
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xft"));
    cmd.args([
        "recv",
        "--server",
        server,
        "--jid",
        &format!("{user}@localhost/login"),
        "--count",
        "0",
        "--json",
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    match ca_file {
        Some(f) => cmd.env("SSL_CERT_FILE", f),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    // The password from the environment (a --password flag earns a warning line), and no
    // config file of the user running the tests.
    let dir = tempfile::tempdir().unwrap();
    cmd.env("XFT_PASSWORD", password)
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["--dir", &dir.path().to_string_lossy()]);
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("xft ends within 30 s")
        .unwrap();
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The one line a refused login prints: on stderr, nothing on stdout, exit status 3.
fn refused(run: &Run) -> &str {
    assert_eq!(run.status.code(), Some(EXIT_LOGIN), "{}", run.stderr);
    assert!(
        run.took < PROMPT,
        "refused after {:?}: {}",
        run.took,
        run.stderr
    );
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].starts_with("xft: cannot log in: "), "{}", lines[0]);
    eprintln!("after {:?}: {}", run.took, lines[0]);
    lines[0]
}

#[tokio::test]
async fn xft_logs_in_over_starttls_trusting_the_test_ca_from_ssl_cert_file() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let run = recv_once(
        &prosody.c2s_addr().to_string(),
        "alice",
        PASSWORD,
        &[],
        Some(&prosody.ca_file()),
    )
    .await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stderr.contains("online as alice@localhost/login"),
        "{}",
        run.stderr
    );
    assert!(prosody.log().contains("Authenticated as alice@localhost"));
}

#[tokio::test]
async fn xft_with_a_wrong_password_says_not_authorized_at_once() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let run = recv_once(
        &prosody.c2s_addr().to_string(),
        "alice",
        "not-the-password",
        &[],
        Some(&prosody.ca_file()),
    )
    .await;
    let line = refused(&run);
    assert!(line.contains("alice@localhost"), "{line}");
    assert!(line.contains("not-authorized"), "{line}");
}

#[tokio::test]
async fn xft_says_for_which_name_and_why_a_certificate_is_not_trusted() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    TestCa::new("another test ca")
        .unwrap()
        .write_pem(&other)
        .unwrap();
    // Another CA in SSL_CERT_FILE, then the system's roots: neither issued the certificate.
    for ca_file in [Some(other.as_path()), None] {
        let run = recv_once(
            &prosody.c2s_addr().to_string(),
            "alice",
            PASSWORD,
            &[],
            ca_file,
        )
        .await;
        let line = refused(&run);
        assert!(
            line.contains(&format!(
                "the certificate of {} is not trusted for localhost",
                prosody.c2s_addr()
            )),
            "{line}"
        );
        assert!(
            line.contains("certificate authority that is not trusted"),
            "{line}"
        );
    }
    assert!(!prosody.log().contains("Authenticated as"));
}

#[tokio::test]
async fn xft_names_the_address_of_a_closed_port() {
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let run = recv_once(&addr, "alice", PASSWORD, &[], None).await;
    let line = refused(&run);
    assert!(
        line.contains(&format!("cannot connect to {addr}")),
        "{line}"
    );
    assert!(line.to_lowercase().contains("refused"), "{line}");
}

#[tokio::test]
async fn xft_says_the_server_offers_no_starttls_when_tls_is_required() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    // The default rig has no certificate: no STARTTLS offered. Without --plaintext, xft
    // requires TLS.
    let prosody = Prosody::start(ProsodyOptions::default()).unwrap();
    let run = recv_once(
        &prosody.c2s_addr().to_string(),
        "alice",
        PASSWORD,
        &[],
        None,
    )
    .await;
    let line = refused(&run);
    assert!(
        line.contains("offers no starttls and tls is required"),
        "{line}"
    );
    assert!(!prosody.log().contains("Authenticated as"));
}

#[tokio::test]
async fn xft_with_plaintext_to_a_server_that_requires_tls_says_so() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let prosody = Prosody::start(ProsodyOptions::default().with_tls(true)).unwrap();
    let run = recv_once(
        &prosody.c2s_addr().to_string(),
        "alice",
        PASSWORD,
        &["--plaintext"],
        None,
    )
    .await;
    let line = refused(&run);
    assert!(line.contains("the server requires tls first"), "{line}");
}
