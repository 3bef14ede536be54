//! The flags of `send` and `recv` reach the facade, and the receiver's own act on a real
//! transfer (two facades on the in-memory hub, real files).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use ft_facade::{AcceptOptions, Config, FileTransfer, Method, SendOptions};
use ft_transport::hub::{Hub, HubTransport};

use super::*;

fn recv_args(extra: &[&str]) -> RecvArgs {
    let mut argv = vec!["xft", "recv"];
    argv.extend_from_slice(extra);
    match crate::Cli::try_parse_from(argv).unwrap().command {
        crate::Command::Recv(r) => r,
        other => panic!("{other:?}"),
    }
}

fn send_args(extra: &[&str]) -> SendArgs {
    let mut argv = vec!["xft", "send", "--to", "bob@localhost/x"];
    argv.extend_from_slice(extra);
    argv.push("FILE");
    match crate::Cli::try_parse_from(argv).unwrap().command {
        crate::Command::Send(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn timeout_flags_reach_the_facade_and_the_defaults_stay_otherwise() {
    let defaults = Config::default();
    let c = recv_args(&[]).facade_config(Dial::Public);
    assert_eq!(c.s5b_budget, defaults.s5b_budget);
    assert_eq!(c.inactivity_timeout, defaults.inactivity_timeout);
    let c = recv_args(&["--s5b-budget", "3", "--inactivity-timeout", "7.5s"])
        .facade_config(Dial::Public);
    assert_eq!(c.s5b_budget, Duration::from_secs(3));
    assert_eq!(c.inactivity_timeout, Duration::from_millis(7500));
    let c = send_args(&["--offer-timeout", "5m", "--s5b-budget", "4"])
        .facade_config(StackChoice::Auto)
        .unwrap();
    assert_eq!(c.offer_timeout, Duration::from_secs(300));
    assert_eq!(c.s5b_budget, Duration::from_secs(4));
    assert!(
        crate::Cli::try_parse_from(["xft", "send", "--to", "a@b/c", "--offer-timeout", "0", "F"])
            .is_err()
    );
}

#[test]
fn block_size_flag_pins_every_chunk_and_without_it_ibb_opens_at_65535_and_chooses() {
    let c = send_args(&[]).facade_config(StackChoice::Auto).unwrap();
    assert_eq!(c.ibb_options.block_size, 65535);
    assert!(c.ibb.is_adaptive_chunks());
    let c = send_args(&["--block-size", "4096"])
        .facade_config(StackChoice::Auto)
        .unwrap();
    assert_eq!(c.ibb_options.block_size, 4096);
    assert!(
        !c.ibb.is_adaptive_chunks(),
        "the user's size is used for every chunk"
    );
}

#[test]
fn flags_that_act_only_when_sending_are_rejected_by_recv_and_the_other_way_round() {
    for flag in [
        ["--method", "ibb"],
        ["--proxy", "proxy.localhost"],
        ["--block-size", "4096"],
        ["--offer-timeout", "5"],
    ] {
        let argv = ["xft", "recv", flag[0], flag[1]];
        let e = crate::Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::UnknownArgument,
            "{flag:?}"
        );
    }
    for flag in [
        ["--dial", "any"],
        ["--max-block-size", "4096"],
        ["--accept-method", "ibb"],
        ["--dir", "x"],
        ["--count", "1"],
        ["--from", "a@b"],
        ["--max-size", "1"],
    ] {
        let argv = ["xft", "send", "--to", "a@b/c", flag[0], flag[1], "FILE"];
        let e = crate::Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::UnknownArgument,
            "{flag:?}"
        );
    }
}

#[test]
fn accept_method_takes_a_list_in_order_and_refuses_unknown_names() {
    assert_eq!(recv_args(&[]).methods(), [Method::S5b, Method::Ibb]);
    assert_eq!(
        recv_args(&["--accept-method", "ibb,s5b"]).methods(),
        [Method::Ibb, Method::S5b]
    );
    let c = recv_args(&["--accept-method", "ibb"]).facade_config(Dial::Any);
    assert_eq!(c.methods, [Method::Ibb]);
    assert!(crate::Cli::try_parse_from(["xft", "recv", "--accept-method", "jingle"]).is_err());
}

/// An entity on the hub; `seen` collects the Debug form of every stanza it receives.
fn entity(
    hub: &Hub,
    me: &str,
    config: Config,
    seen: Arc<Mutex<Vec<String>>>,
) -> FileTransfer<HubTransport> {
    let (t, mut rx) = hub.connect(me.parse().unwrap());
    let ft = FileTransfer::new(t, config);
    let pumped = ft.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            seen.lock().unwrap().push(format!("{s:?}"));
            pumped.ready().await;
            let _ = pumped.handle_stanza(s);
        }
    });
    ft
}

fn sender_config(methods: &[Method], block_size: u16) -> Config {
    let mut c = Config::default();
    c.methods(methods);
    c.block_size(block_size);
    c.proxies(ft_facade::ProxySource::None);
    c.s5b.listen(vec![std::net::Ipv4Addr::LOCALHOST.into()]);
    c.cap_timeouts(Duration::from_secs(10));
    c
}

struct Run {
    sent: Result<ft_facade::Outcome, ft_facade::TransferError>,
    received: Option<Result<ft_facade::Outcome, ft_facade::TransferError>>,
    /// What the sender received: the receiver's answers.
    sender_saw: Vec<String>,
}

/// Alice (offering `methods`, IBB blocks of `block_size`) sends 20 000 bytes to Bob, whose
/// config is `xft recv`'s from `recv_flags`.
async fn transfer(methods: &[Method], block_size: u16, recv_flags: &[&str]) -> Run {
    let hub = Hub::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let alice = entity(
        &hub,
        "alice@localhost/a",
        sender_config(methods, block_size),
        seen.clone(),
    );
    let mut bob_config = recv_args(recv_flags).facade_config(Dial::Any);
    bob_config.cap_timeouts(Duration::from_secs(10));
    let bob = entity(&hub, "bob@localhost/b", bob_config, Arc::default());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, vec![7u8; 20_000]).unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let sending = alice.send_file(bob.jid().clone(), &src, SendOptions::default());
    let receiving = async {
        match tokio::time::timeout(Duration::from_secs(5), bob.next_offer()).await {
            Ok(Some(offer)) => Some(
                offer
                    .accept_into_dir(&inbox, AcceptOptions::new())
                    .outcome()
                    .await,
            ),
            _ => None,
        }
    };
    let (sent, received) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(sending.outcome(), receiving)
    })
    .await
    .expect("the transfer ends within 30 s");
    let sender_saw = seen.lock().unwrap().clone();
    Run {
        sent,
        received,
        sender_saw,
    }
}

fn constrained(saw: &[String]) -> bool {
    saw.iter().any(|s| s.contains("ResourceConstraint"))
}

#[tokio::test]
async fn max_block_size_4096_answers_an_8192_open_with_resource_constraint() {
    let run = transfer(&[Method::Ibb], 8192, &["--max-block-size", "4096"]).await;
    assert!(constrained(&run.sender_saw), "{:#?}", run.sender_saw);
    // The sender retries at 4096: the file still arrives.
    let got = run.received.expect("an offer").expect("received");
    assert_eq!(got.bytes, 20_000);
    assert!(run.sent.is_ok());

    // Without the flag the 8192 open is taken as it is.
    let run = transfer(&[Method::Ibb], 8192, &[]).await;
    assert!(!constrained(&run.sender_saw), "{:#?}", run.sender_saw);
    assert!(run.received.expect("an offer").is_ok());
}

#[tokio::test]
async fn accept_method_ibb_takes_an_s5b_and_ibb_offer_in_band() {
    let run = transfer(
        &[Method::S5b, Method::Ibb],
        4096,
        &["--accept-method", "ibb"],
    )
    .await;
    let got = run.received.expect("an offer").expect("received");
    assert_eq!(got.method.name(), "ibb-iq");
    let run = transfer(&[Method::S5b, Method::Ibb], 4096, &[]).await;
    let got = run.received.expect("an offer").expect("received");
    assert_eq!(got.method.name(), "s5b-direct");
}

#[tokio::test]
async fn max_size_declines_a_larger_offer_before_the_application_sees_it() {
    let run = transfer(&[Method::Ibb], 4096, &["--max-size", "10KB"]).await;
    assert!(run.received.is_none(), "no offer reaches the application");
    let e = run.sent.unwrap_err();
    assert_eq!(e.stage, ft_facade::Stage::Offer, "{e}");
}

#[test]
fn stack_flag_beats_the_config_files_stack_key_and_reaches_the_facade() {
    use crate::settings::{FileConfig, stack};
    use ft_facade::Stack;
    let file = |s: Option<&str>| FileConfig {
        stack: s.map(str::to_owned),
        ..FileConfig::default()
    };
    let resolve = |flags: &[&str], cfg: &FileConfig| {
        let args = send_args(flags);
        let choice = stack(args.stack, cfg).unwrap();
        args.facade_config(choice).unwrap().stacks
    };
    // Nothing said: the facade's own preference, Jingle first.
    assert_eq!(resolve(&[], &file(None)), [Stack::Jingle, Stack::Si]);
    assert_eq!(
        resolve(&["--stack", "auto"], &file(None)),
        [Stack::Jingle, Stack::Si]
    );
    assert_eq!(resolve(&["--stack", "si"], &file(None)), [Stack::Si]);
    assert_eq!(
        resolve(&["--stack", "jingle"], &file(None)),
        [Stack::Jingle]
    );
    // The config file's key when no flag is given, in any case; the flag wins.
    assert_eq!(resolve(&[], &file(Some("si"))), [Stack::Si]);
    assert_eq!(resolve(&[], &file(Some("Jingle"))), [Stack::Jingle]);
    assert_eq!(
        resolve(&["--stack", "jingle"], &file(Some("si"))),
        [Stack::Jingle]
    );
    let e = stack(None, &file(Some("xep-0096")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("auto, jingle, si"), "{e}");
    let e = crate::Cli::try_parse_from(["xft", "send", "--to", "a@b/c", "--stack", "s5b", "F"])
        .unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
}

#[test]
fn recv_listens_for_jingle_only_on_the_local_addresses_named() {
    // Default: no listen addresses, so a Jingle receiver offers no candidate on this host's
    // own addresses (the facade's default would find and offer them).
    assert_eq!(recv_args(&[]).facade_config(Dial::Public).s5b.listen, None);
    let c = recv_args(&["--local-address", "127.0.0.1", "--local-address", "::1"])
        .facade_config(Dial::Any);
    assert_eq!(
        c.s5b.listen,
        Some(vec![
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ])
    );
}
