//! The proxy under measure, in a process of its own: `proxy-memory --serve` binds a
//! proxy on 127.0.0.1, prints its address, then answers one line per command on stdin:
//! `act SID` (alice@example.org/a activates SID towards bob@example.org/b: `ok` or `err
//! CONDITION`), `act-as JID SID` (the same from JID), `stat` (`stat RSS FDS PIPES TASKS PENDING HANDSHAKES`), `quit`.

use std::io::{BufRead, Write};

use minidom::Element;
use xep0065_proxy::{Proxy, ProxyConfig};
use xep0065_s5b::Sid;
use xep0065_s5b::payload::Activate;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use crate::sys::{Proc, fd_limit};

pub(crate) fn serve(fds: u64) {
    let limit = fd_limit(fds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut c = ProxyConfig::new("proxy.example.org".parse().expect("jid"));
        c.listen = vec!["127.0.0.1:0".parse().expect("addr")];
        c.allowed_domains = vec!["example.org".into()];
        c.max_relays_per_jid = usize::MAX;
        c.max_pending = usize::MAX;
        // `XFT_PROXY_RELAY_THREADS=0` puts the relays back on this runtime (the placement
        // before issue 9's flood fix), for an A/B with the same binary.
        if let Some(n) = std::env::var("XFT_PROXY_RELAY_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            c.relay_threads = n;
        }
        let proxy = Proxy::bind(c).await.expect("bind");
        let mut out = proxy.outbound().expect("outbound");
        let sh = &proxy.streamhosts()[0];
        println!("addr {}:{} limit {limit}", sh.host, sh.port);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let alice: jid::Jid = "alice@example.org/a".parse().expect("jid");
        let bob: jid::Jid = "bob@example.org/b".parse().expect("jid");
        let mut stdout = std::io::stdout().lock();
        while let Some(line) = rx.recv().await {
            let words: Vec<&str> = line.split_whitespace().collect();
            let answer = match words.as_slice() {
                ["act", sid] => activate(&proxy, &mut out, &alice, &bob, sid),
                ["act-as", from, sid] => match from.parse::<jid::Jid>() {
                    Ok(from) => activate(&proxy, &mut out, &from, &bob, sid),
                    Err(e) => format!("err {e}"),
                },
                ["stat"] => format!(
                    "stat {} {} {} {}",
                    Proc::of_self().to_line(),
                    proxy.tasks(),
                    proxy.pending(),
                    proxy.handshakes()
                ),
                ["quit"] => break,
                _ => format!("err unknown command {line:?}"),
            };
            let _ = writeln!(stdout, "{answer}");
            let _ = stdout.flush();
        }
    });
}

/// `from` activates `sid` towards `target`: `ok` or `err CONDITION`.
fn activate(
    proxy: &Proxy,
    out: &mut tokio::sync::mpsc::UnboundedReceiver<Stanza>,
    from: &jid::Jid,
    target: &jid::Jid,
    sid: &str,
) -> String {
    let Ok(sid_v) = Sid::new(sid) else {
        return "err bad sid".to_owned();
    };
    let iq = Iq::Set {
        from: Some(from.clone()),
        to: Some("proxy.example.org".parse().expect("jid")),
        id: sid.to_owned(),
        payload: Element::from(&Activate {
            sid: sid_v,
            target: target.clone(),
        }),
    };
    let _ = proxy.handle_stanza(Stanza::Iq(iq));
    match out.try_recv() {
        Ok(Stanza::Iq(Iq::Result { .. })) => "ok".to_owned(),
        Ok(Stanza::Iq(Iq::Error { error, .. })) => format!("err {:?}", error.defined_condition),
        other => format!("err {other:?}"),
    }
}
