//! `xft send` / `xft recv` against a real server.

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ft_facade::{AcceptOptions, FileTransfer, SendOptions};
use ft_transport::iq::IqTracker;
use ft_transport::xmpp::{ClientInbound, ClientOptions, ClientTransport, Server, connect_client};
use ft_transport::{Stanza, StanzaHandler, StanzaTransport, pump_refusing};
use jid::Jid;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ping::Ping;

use crate::BoxError;
use crate::args::{Account, RecvArgs, SendArgs};
use crate::progress::{self, follow};
use crate::report::{Row, print};
use crate::settings::{self, Env, Login};

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

/// The config file named by `--config` (or the default one, when it exists).
fn config_file(account: &Account) -> Result<settings::Loaded, BoxError> {
    settings::load(account.config.as_deref(), &Env::from_process())
}

/// The login settings from the flags, the environment and the config file `loaded` (its
/// warnings printed), and the config file's contents for the rest.
async fn settings(
    account: &Account,
    loaded: settings::Loaded,
) -> Result<(Login, settings::FileConfig), BoxError> {
    let env = Env::from_process();
    let login = settings::login(account, &loaded, &env).await?;
    for w in &login.warnings {
        eprintln!("xft: warning: {w}");
    }
    Ok((login, loaded.file))
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

async fn login(login: &Login) -> Result<(ClientTransport, ClientInbound), BoxError> {
    let server = server(&login.server)?;
    if login.plaintext && !is_loopback(&server) {
        return Err(format!(
            "--plaintext is refused for {}: only a loopback server may be used without TLS",
            login.server
        )
        .into());
    }
    let options = ClientOptions::new(login.jid.parse()?, login.password.clone(), server)
        .with_plaintext(login.plaintext)
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

pub(crate) async fn send(args: SendArgs) -> Result<ExitCode, BoxError> {
    // Every flag and the config file are checked before a password is asked for.
    let loaded = config_file(&args.account)?;
    let config = args.facade_config(settings::stack(args.stack, &loaded.file)?)?;
    let to: Jid = args.to.parse()?;
    let (account, _) = settings(&args.account, loaded).await?;
    let (transport, inbound) = match login(&account).await {
        Ok(online) => online,
        Err(e) => return login_failed(e),
    };
    let ft = FileTransfer::new(transport.clone(), config);
    let tracker = pump(ft.clone(), transport.clone(), inbound);
    let json = args.account.json;
    let show = progress::wanted(json);
    let mut ok = true;
    for path in &args.files {
        let row = send_one(&ft, &to, path, &args.method, show).await;
        ok &= row.succeeded();
        print(&row, json);
    }
    drain(&tracker, &transport).await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One file of `xft send`: sent, followed (the bar when `show`), and its result row. The
/// command's exit status is the AND of every row's [`Row::succeeded`].
pub(crate) async fn send_one<T: StanzaTransport + Clone>(
    ft: &FileTransfer<T>,
    to: &Jid,
    path: &std::path::Path,
    requested: &str,
    show: bool,
) -> Row {
    let name = path.display().to_string();
    let started = Instant::now();
    let handle = ft.send_file(to.clone(), path, SendOptions::default());
    let (r, timeline) = follow(handle, &name, show, true).await;
    let mut row = Row::from_result("send", requested, &name, started, &timeline, &r);
    row.peer.get_or_insert_with(|| to.to_string());
    row
}

pub(crate) async fn recv(args: RecvArgs) -> Result<ExitCode, BoxError> {
    let (account, file) = settings(&args.account, config_file(&args.account)?).await?;
    let config = args.facade_config(settings::dial(args.dial, &file)?);
    let dir = settings::dir(args.dir.as_deref(), &file);
    let requested = args
        .methods()
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(",");
    let from: Vec<Jid> = args
        .from
        .iter()
        .map(|j| j.parse::<Jid>())
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(&dir)?;
    let get_from = match (&args.get[..], &from[..]) {
        ([], _) => None,
        (_, [peer]) if peer.resource().is_some() => Some(peer.clone()),
        _ => return Err("--get needs exactly one --from, a full JID".into()),
    };
    let served = crate::pull::served(&args.serve)?;
    let (transport, inbound) = match login(&account).await {
        Ok(online) => online,
        Err(e) => return login_failed(e),
    };
    let ft = FileTransfer::new(transport.clone(), config);
    let tracker = pump(ft.clone(), transport.clone(), inbound);
    // On stderr even with --json: scripts wait for this line before sending.
    eprintln!(
        "xft recv: online as {}, saving into {}",
        ft.jid(),
        dir.display()
    );
    let json = args.account.json;
    let show = progress::wanted(json);
    if let Some(peer) = get_from {
        let rows = crate::pull::get(&ft, &peer, &args.get, &dir, args.overwrite, show).await;
        let ok = rows.iter().all(Row::succeeded);
        for row in &rows {
            print(row, json);
        }
        drain(&tracker, &transport).await;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
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
            request = ft.next_request() => {
                // A peer's pull: served only for a --serve file, else declined.
                let Some(request) = request else { break };
                let allowed = allowed(request.from());
                let row = crate::pull::answer(request, &served, allowed, show).await;
                if row.kind != "refused" {
                    ok &= row.succeeded();
                    done += 1;
                }
                print(&row, json);
                continue;
            }
            refused = ft.next_refused() => {
                let Some(r) = refused else { break };
                let reason = format!("{}; answered {}", r.reason, r.answer_text());
                let counts = r.from.as_ref().is_some_and(allowed);
                let mut row = Row::refused(
                    &requested,
                    r.from.as_ref().map(ToString::to_string),
                    r.name.as_deref().unwrap_or("?"),
                    reason,
                );
                row.stack = Some(r.stack.name());
                print(&row, json);
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
                &requested,
                Some(peer),
                &name,
                format!("{WHY}; answered forbidden"),
            );
            print(&row, json);
            continue;
        }
        let (name, peer, stack) = (
            offer.file().name.clone(),
            offer.from().to_string(),
            offer.stack(),
        );
        let started = Instant::now();
        let handle =
            offer.accept_into_dir(&dir, AcceptOptions::new().with_overwrite(args.overwrite));
        let (r, timeline) = follow(handle, &name, show, false).await;
        let mut row = Row::from_result("recv", &requested, &name, started, &timeline, &r);
        ok &= row.succeeded();
        row.peer.get_or_insert(peer);
        row.stack.get_or_insert(stack.name());
        if let Ok(o) = &r
            && let Some(p) = &o.path
        {
            row.file = p.display().to_string();
        }
        print(&row, json);
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
#[path = "net_tests.rs"]
mod tests;
