//! `xft send` / `xft recv` against a real server.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ft_facade::{
    AcceptOptions, Config, Event, FileTransfer, Outcome, Policy, ProxySource, SendOptions,
    TransferError, TransferHandle,
};
use ft_transport::iq::IqTracker;
use ft_transport::xmpp::{ClientInbound, ClientOptions, ClientTransport, Server, connect_client};
use ft_transport::{Stanza, StanzaHandler, StanzaTransport, pump_refusing};
use jid::Jid;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ping::Ping;

use crate::method::MethodSpec;
use crate::report::{self, Row};
use crate::{Account, BoxError, RecvArgs, SendArgs};

/// `HOST:PORT` (an address literal or a host name).
pub(crate) fn server(s: &str) -> Result<Server, BoxError> {
    if let Ok(addr) = s.parse() {
        return Ok(Server::Addr(addr));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("--server {s:?} is not HOST:PORT"))?;
    Ok(Server::HostPort {
        host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
        port: port
            .parse()
            .map_err(|_| format!("bad port in --server {s:?}"))?,
    })
}

fn is_loopback(server: &Server) -> bool {
    match server {
        Server::Addr(a) => a.ip().is_loopback(),
        Server::HostPort { host, .. } => {
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// The facade's config from the command line.
pub(crate) fn facade_config(account: &Account) -> Result<Config, BoxError> {
    let mut c = Config::default();
    MethodSpec::parse(&account.method)?.apply_to_config(&mut c);
    c.block_size(account.block_size);
    c.proxies(match &account.proxy {
        Some(p) => ProxySource::Jids(vec![p.parse::<Jid>()?]),
        None => ProxySource::Discover,
    });
    if !account.local_addresses.is_empty() {
        c.s5b.listen(account.local_addresses.clone());
    }
    c.s5b.dial_policy(account.dial.policy());
    if let Some(t) = account.offer_timeout {
        c.offer_timeout = t;
    }
    if let Some(t) = account.s5b_budget {
        c.s5b_budget(t);
    }
    if let Some(t) = account.inactivity_timeout {
        c.inactivity_timeout = t;
    }
    Ok(c)
}

/// Exit status when the login failed (1: a transfer failed, 2: bad usage).
const EXIT_LOGIN: u8 = 3;

/// A login the server or the network refused (exit status [`EXIT_LOGIN`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot log in: {0}")]
struct LoginFailed(#[source] ft_transport::xmpp::Error);

/// A failed [`login`] as the command's result: a refused login is said in one line and
/// exits with [`EXIT_LOGIN`]; anything else (bad flags) is the usual error.
fn login_failed(e: BoxError) -> Result<ExitCode, BoxError> {
    if e.is::<LoginFailed>() {
        eprintln!("xft: {e}");
        Ok(ExitCode::from(EXIT_LOGIN))
    } else {
        Err(e)
    }
}

async fn login(account: &Account) -> Result<(ClientTransport, ClientInbound), BoxError> {
    let server = server(&account.server)?;
    if account.plaintext && !is_loopback(&server) {
        return Err(format!(
            "--plaintext is refused for {}: only a loopback server may be used without TLS",
            account.server
        )
        .into());
    }
    let options = ClientOptions::new(account.jid.parse()?, account.password.clone(), server)
        .with_plaintext(account.plaintext)
        .with_xml_log(crate::log::xml_log());
    tracing::debug!(jid = %options.jid, server = %options.server, tls = !options.plaintext, "logging in");
    connect_client(options).await.map_err(|e| {
        if e.is_login_failure() {
            LoginFailed(e).into()
        } else {
            e.into()
        }
    })
}

/// The facade as a [`StanzaHandler`], with its backpressure: a lagging IBB-over-message
/// receiver pauses reading the socket, so TCP flow control slows the sender instead of us
/// overrunning.
struct Facade(FileTransfer<ClientTransport>);

impl StanzaHandler for Facade {
    fn handle_stanza(&self, stanza: Stanza) -> ControlFlow<(), Stanza> {
        self.0.handle_stanza(stanza)
    }

    fn ready(&self) -> impl Future<Output = ()> + Send {
        self.0.ready()
    }
}

/// Feeds inbound stanzas to the facade (and our own iq tracker, for [`drain`]); answers
/// requests nobody handles with `service-unavailable`, as a client should.
fn pump(
    ft: FileTransfer<ClientTransport>,
    transport: ClientTransport,
    inbound: ClientInbound,
) -> Arc<IqTracker> {
    let tracker = Arc::new(IqTracker::new("xft-drain-"));
    let handlers = (Facade(ft), tracker.clone());
    tokio::spawn(async move { pump_refusing(inbound, handlers, &transport).await });
    tracker
}

/// Before the process exits: every reply the facade queued (a decline, the answer to a
/// close) is written and has reached the server. Replies are sent from tasks of their own
/// and the writer is a task too, so returning from `main` at once could drop a refusal
/// that was already reported (the sender then waited out its offer timeout). A ping to
/// our server, queued after them, comes back only once they are on the wire (the stream is
/// one ordered queue); bounded by `DRAIN_TIMEOUT`.
async fn drain(tracker: &IqTracker, transport: &ClientTransport) {
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
    // Let the reply tasks spawned just before queue their stanzas first.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let server = transport.jid().domain().to_owned();
    let ping = Iq::from_get(String::new(), Ping).with_to(Jid::from(server));
    let _ = tracker.request(transport, ping, DRAIN_TIMEOUT).await;
}

/// Follows a transfer's events, drawing a progress line on a terminal, then returns its
/// outcome.
async fn follow(
    mut handle: TransferHandle,
    name: &str,
    show: bool,
) -> Result<Outcome, TransferError> {
    while let Some(ev) = handle.next_event().await {
        match ev {
            Event::Progress(p) if show => match p.total {
                Some(total) => {
                    let pct = if total > 0 {
                        p.bytes as f64 * 100.0 / total as f64
                    } else {
                        100.0
                    };
                    eprint!(
                        "\r{name}: {}/{total} bytes {pct:5.1}% {:8.2} MB/s",
                        p.bytes,
                        p.rate / 1e6
                    );
                }
                // No size offered: bytes so far, no percentage.
                None => eprint!("\r{name}: {} bytes {:8.2} MB/s", p.bytes, p.rate / 1e6),
            },
            Event::Fallback { reason, .. } if show => {
                eprintln!("\r{name}: socks5 failed ({reason}), falling back to in-band");
            }
            Event::Completed(_) | Event::Failed(_) => break,
            _ => {}
        }
    }
    if show {
        eprintln!();
    }
    handle.outcome().await
}

fn print(row: &Row, json: bool) {
    if json {
        println!("{}", report::json(row));
    } else if let Some(e) = &row.error {
        if row.kind == "refused" {
            eprintln!(
                "{}: offer from {} refused: {e}",
                row.file,
                row.peer.as_deref().unwrap_or("?")
            );
        } else {
            eprintln!(
                "{}: failed at {}: {e}",
                row.file,
                row.stage.as_deref().unwrap_or("?")
            );
        }
    } else {
        eprintln!(
            "{}: {} bytes by {} in {:.2} s ({:.1} MB/s{}), {}, sha256 {}",
            row.file,
            row.bytes,
            row.method.as_deref().unwrap_or("?"),
            row.seconds,
            row.mb_per_s,
            if row.fallback { ", after fallback" } else { "" },
            match row.delivery {
                Some("unconfirmed") => "delivery UNCONFIRMED (the receiver acknowledged nothing)",
                Some("acknowledged") => "acknowledged by the receiver",
                _ => "size checked",
            },
            row.sha256.as_deref().unwrap_or("")
        );
        for w in &row.warnings {
            eprintln!("{}: warning: {w}", row.file);
        }
    }
}

pub(crate) async fn send(args: SendArgs) -> Result<ExitCode, BoxError> {
    let config = facade_config(&args.account)?;
    let to: Jid = args.to.parse()?;
    let (transport, inbound) = match login(&args.account).await {
        Ok(online) => online,
        Err(e) => return login_failed(e),
    };
    let ft = FileTransfer::new(transport.clone(), config);
    let tracker = pump(ft.clone(), transport.clone(), inbound);
    let show = std::io::stderr().is_terminal() && !args.account.json;
    let mut ok = true;
    for path in &args.files {
        let name = path.display().to_string();
        let started = Instant::now();
        let handle = ft.send_file(to.clone(), path, SendOptions::default());
        let r = follow(handle, &name, show).await;
        ok &= r.is_ok();
        print(
            &Row::from_result(&args.account.method, &name, started, &r),
            args.account.json,
        );
    }
    drain(&tracker, &transport).await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) async fn recv(args: RecvArgs) -> Result<ExitCode, BoxError> {
    let mut config = facade_config(&args.account)?;
    if let Some(max) = args.max_size {
        config.policy(Policy::default().with_max_size(max));
    }
    let from: Vec<Jid> = args
        .from
        .iter()
        .map(|j| j.parse::<Jid>())
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(&args.dir)?;
    let (transport, inbound) = match login(&args.account).await {
        Ok(online) => online,
        Err(e) => return login_failed(e),
    };
    let ft = FileTransfer::new(transport.clone(), config);
    let tracker = pump(ft.clone(), transport.clone(), inbound);
    // On stderr even with --json: scripts wait for this line before sending.
    eprintln!(
        "xft recv: online as {}, saving into {}",
        ft.jid(),
        args.dir.display()
    );
    let show = std::io::stderr().is_terminal() && !args.account.json;
    let mut done = 0usize;
    let mut ok = true;
    while args.count.is_none_or(|n| done < n) {
        let allowed = |peer: &Jid| {
            from.is_empty()
                || from
                    .iter()
                    .any(|j| j == peer || (j.resource().is_none() && j.to_bare() == peer.to_bare()))
        };
        // An offer the manager refused itself (malformed, too large, no common method) is
        // reported like a failed transfer, so that the user learns it came; from a sender
        // `--from` accepts it also counts toward `--count` (a stranger's bad offers do not
        // end the wait).
        let offer = tokio::select! {
            offer = ft.next_offer() => offer,
            refused = ft.next_refused() => {
                let Some(r) = refused else { break };
                let reason = format!("{}; answered {}", r.reason, r.answer_text());
                let counts = r.from.as_ref().is_some_and(allowed);
                let row = Row::refused(
                    &args.account.method,
                    r.from.as_ref().map(ToString::to_string),
                    r.name.as_deref().unwrap_or("?"),
                    reason,
                );
                print(&row, args.account.json);
                if counts {
                    ok = false;
                    done += 1;
                }
                continue;
            }
        };
        let Some(offer) = offer else {
            break;
        };
        if !allowed(offer.from()) {
            // Not a sender we wait for: reported, not counted.
            const WHY: &str = "not accepted from this sender";
            let (peer, name) = (offer.from().to_string(), offer.file().name.clone());
            offer.decline(Some(WHY));
            let row = Row::refused(
                &args.account.method,
                Some(peer),
                &name,
                format!("{WHY}; answered forbidden"),
            );
            print(&row, args.account.json);
            continue;
        }
        let name = offer.file().name.clone();
        let started = Instant::now();
        let handle = offer.accept_into_dir(
            &args.dir,
            AcceptOptions::new().with_overwrite(args.overwrite),
        );
        let r = follow(handle, &name, show).await;
        ok &= r.is_ok();
        let mut row = Row::from_result(&args.account.method, &name, started, &r);
        if let Ok(o) = &r
            && let Some(p) = &o.path
        {
            row.file = p.display().to_string();
        }
        print(&row, args.account.json);
        done += 1;
    }
    drain(&tracker, &transport).await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
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

    use std::time::Duration;

    use clap::Parser;

    fn recv_account(extra: &[&str]) -> Account {
        let mut argv = vec![
            "xft",
            "recv",
            "--server",
            "127.0.0.1:5222",
            "--jid",
            "bob@localhost",
            "--password",
            "pw",
        ];
        argv.extend_from_slice(extra);
        match crate::Cli::try_parse_from(argv).unwrap().command {
            crate::Command::Recv(r) => r.account,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeout_flags_reach_the_facade_and_the_defaults_stay_otherwise() {
        let defaults = Config::default();
        let c = facade_config(&recv_account(&[])).unwrap();
        assert_eq!(c.offer_timeout, defaults.offer_timeout);
        assert_eq!(c.s5b_budget, defaults.s5b_budget);
        assert_eq!(c.inactivity_timeout, defaults.inactivity_timeout);
        let c = facade_config(&recv_account(&[
            "--offer-timeout",
            "5m",
            "--s5b-budget",
            "3",
            "--inactivity-timeout",
            "7.5s",
        ]))
        .unwrap();
        assert_eq!(c.offer_timeout, Duration::from_secs(300));
        assert_eq!(c.s5b_budget, Duration::from_secs(3));
        assert_eq!(c.inactivity_timeout, Duration::from_millis(7500));
        assert!(
            crate::Cli::try_parse_from([
                "xft",
                "recv",
                "--server",
                "x:1",
                "--jid",
                "a@b",
                "--password",
                "p",
                "--offer-timeout",
                "0",
            ])
            .is_err()
        );
    }
}
