//! The cases that need a real server or peer, all through one Prosody started by
//! `ft-testkit` (generated config, free loopback ports, `mod_limits` left out, Nagle off,
//! 64 KiB reads, `proxy65` on 127.0.0.1): Prosody's own stanza relay rate measured with a
//! minimal raw client, our IBB through it, S5B through its proxy65, and slixmpp as sender
//! and receiver for comparison.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use ft_testkit::{Prosody, ProsodyOptions, SlixPeer};
use ft_transport::StanzaTransport;
use ft_transport::xmpp::{ClientInbound, ClientTransport};
use tokio::task::JoinSet;
use xep0065_s5b::{Config as S5bConfig, S5b};

use crate::measure::{self, Run, Spec};
use crate::rawclient::{self, RawMode};
use crate::report::{Case, Outcome, Versions};
use crate::suite::{Options, size_label};
use crate::transfer;

pub(crate) fn spec(
    id: String,
    group: &'static str,
    method: &str,
    implementation: &'static str,
    block: Option<u16>,
    bytes: u64,
    ceiling: Option<String>,
) -> Spec {
    Spec {
        id,
        group,
        method: method.to_owned(),
        implementation,
        path: "prosody",
        block_size: block.map(u32::from),
        bytes,
        ceiling,
        note: None,
    }
}

/// What every external case runs with: the options, where its case goes, the server.
pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a Options,
    pub(crate) cases: &'a mut Vec<Case>,
    /// Prosody's pid, whose CPU seconds each case records beside ours.
    server_pid: Option<u32>,
}

impl Ctx<'_> {
    pub(crate) async fn case<F, Fut>(&mut self, spec: Spec, runs: usize, run: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Run, String>>,
    {
        if !self.opts.filter.is_empty()
            && !self
                .opts
                .filter
                .iter()
                .any(|f| spec.id.contains(f.as_str()))
        {
            return;
        }
        let case =
            measure::measure_with_server(spec, runs, self.opts.budget, self.server_pid, run).await;
        eprintln!(
            "{:<44} {:>9} {}",
            case.id,
            case.mbps
                .map_or_else(String::new, |s| format!("{:.1} MB/s", s.median)),
            match &case.outcome {
                Outcome::Ok => "ok".to_owned(),
                Outcome::Failed(r) => format!("FAILED: {r}"),
                Outcome::Skipped(r) => format!("skipped: {r}"),
            }
        );
        self.cases.push(case);
    }
}

fn prosody_version() -> Option<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "prosody"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn slixmpp_version() -> Option<String> {
    let py = ft_testkit::python().ok()?;
    let out = std::process::Command::new(py)
        .args(["-c", "import slixmpp; print(slixmpp.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs every external case, appending to `cases`. A Prosody that cannot start makes each
/// case a failure with the reason, never a silent skip.
pub async fn run_all(cases: &mut Vec<Case>, opts: &Options, versions: &mut Versions) {
    let started = tokio::task::spawn_blocking(|| {
        let mut o = ProsodyOptions::default();
        for u in ["raw1", "raw2", "ours1", "ours2", "slix1", "slix2"]
            .into_iter()
            .chain(crate::setup::ACCOUNTS)
        {
            o = o.with_account(u, ft_testkit::PASSWORD);
        }
        Prosody::start(o)
    })
    .await;
    let prosody = match started {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            cases.push(failed_all(&format!("Prosody did not start: {e}")));
            return;
        }
        Err(e) => {
            cases.push(failed_all(&format!("Prosody start task failed: {e}")));
            return;
        }
    };
    versions.prosody = prosody_version().map(|v| format!("{v} (Debian package)"));
    let mut ctx = Ctx {
        opts,
        cases,
        server_pid: prosody.pid(),
    };
    server_ceiling(&mut ctx, &prosody).await;
    ours_ibb(&mut ctx, &prosody).await;
    proxy65(&mut ctx, &prosody).await;
    crate::setup::cases(&mut ctx, &prosody).await;
    crate::blocksize::run(ctx.cases, opts, &prosody).await;
    versions.slixmpp = slixmpp_version();
    slixmpp(&mut ctx, &prosody).await;
    drop(prosody);
}

fn failed_all(reason: &str) -> Case {
    spec(
        "external/prosody".to_owned(),
        "server",
        "every Prosody and slixmpp case",
        "prosody",
        None,
        0,
        None,
    )
    .without_runs(Outcome::Failed(reason.to_owned()))
}

/// The raw client's figure that a Prosody IBB case is compared with.
fn raw_id(mode: &str, block: u16, size: u64) -> String {
    format!("server/prosody/{mode}/{block}/{}", size_label(size))
}

async fn server_ceiling(ctx: &mut Ctx<'_>, prosody: &Prosody) {
    let size = ctx.opts.ibb_size;
    for block in [4096u16, 16384, 65535] {
        for (mode, id, name) in [
            (RawMode::Iq(1), "iq-1", "raw client, iq stop-and-wait"),
            (RawMode::Iq(32), "iq-32", "raw client, iq with 32 in flight"),
            (RawMode::Message, "message", "raw client, message"),
        ] {
            let s = spec(
                raw_id(id, block, size),
                "server",
                name,
                "prosody",
                Some(block),
                size,
                None,
            );
            ctx.case(s, ctx.opts.runs, || async {
                let addr = prosody.c2s_addr();
                let d = prosody.domain().to_owned();
                let pw = ft_testkit::PASSWORD;
                let (a, b) = tokio::join!(
                    rawclient::login(addr, "raw1", &d, pw, "r"),
                    rawclient::login(addr, "raw2", &d, pw, "r")
                );
                rawclient::relay(a?, b?, mode, usize::from(block), size).await
            })
            .await;
        }
    }
}

async fn login_pair(
    prosody: &Prosody,
) -> Result<
    (
        (ClientTransport, ClientInbound),
        (ClientTransport, ClientInbound),
    ),
    String,
> {
    let (a, b) = tokio::join!(prosody.connect("ours1", "a"), prosody.connect("ours2", "b"));
    Ok((
        a.map_err(|e| format!("login ours1: {e}"))?,
        b.map_err(|e| format!("login ours2: {e}"))?,
    ))
}

async fn ours_ibb(ctx: &mut Ctx<'_>, prosody: &Prosody) {
    let size = ctx.opts.ibb_size;
    for (params, mode, name) in crate::suite::ibb_modes() {
        let block = params.block_size;
        let ceiling = match params.iq_window {
            Some(_) => raw_id("iq-32", block, size),
            None => raw_id("message", block, size),
        };
        let s = spec(
            format!("ibb/prosody/{mode}/{block}/{}", size_label(size)),
            "ibb",
            name,
            "xft",
            Some(block),
            size,
            Some(ceiling),
        );
        ctx.case(s, ctx.opts.runs, move || async move {
            let (a, b) = login_pair(prosody).await?;
            transfer::ibb(a, b, params, size).await
        })
        .await;
    }
}

async fn proxy65(ctx: &mut Ctx<'_>, prosody: &Prosody) {
    for &size in &ctx.opts.sizes.clone() {
        let s = Spec {
            path: "proxy65",
            ..spec(
                format!("s5b/proxy65/{}", size_label(size)),
                "s5b",
                "S5B through Prosody's proxy65 (xft both ends)",
                "prosody",
                None,
                size,
                Some(crate::suite::raw_tcp_id(size)),
            )
        };
        ctx.case(s, ctx.opts.runs, move || async move {
            s5b_proxy65(prosody, size).await
        })
        .await;
    }
}

async fn s5b_proxy65(prosody: &Prosody, size: u64) -> Result<Run, String> {
    let ((ta, ra), (tb, rb)) = login_pair(prosody).await?;
    let mut set = JoinSet::new();
    let mut ac = S5bConfig::default();
    ac.listen(Vec::new());
    let mut bc = S5bConfig::default();
    bc.listen(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    // Everything here is on loopback: allowed explicitly (the default refuses it).
    ac.dial_policy(xep0065_s5b::DialPolicy::allow_all());
    bc.dial_policy(xep0065_s5b::DialPolicy::allow_all());
    let a_jid = ta.jid().clone();
    let b_jid = tb.jid().clone();
    let sa = S5b::new(ta, ac);
    let sb = S5b::new(tb, bc);
    for (s, r) in [(sa.clone(), ra), (sb.clone(), rb)] {
        set.spawn(ft_transport::pump(r, move |st| {
            let _ = s.handle_stanza(st);
            ControlFlow::Break(())
        }));
    }
    let proxy_jid: ft_transport::Jid = prosody.proxy_jid().into();
    let hosts = sa
        .query_proxy(proxy_jid)
        .await
        .map_err(|e| format!("proxy65 query: {e}"))?;
    let sid = xep0065_s5b::Sid::new("bench-p65").map_err(|e| e.to_string())?;
    let expect = sb.expect(a_jid, sid.clone(), Duration::from_secs(20));
    let (req, tgt) = tokio::join!(sa.connect(b_jid, sid, &hosts), expect);
    let req = req.map_err(|e| format!("requester: {e}"))?;
    let tgt = tgt.map_err(|e| format!("target: {e}"))?;
    let t0 = Instant::now();
    let mut w = req.stream;
    let mut r = tgt.stream;
    let writer = tokio::spawn(async move { crate::pattern::write_pattern(&mut w, size).await });
    let got = crate::pattern::read_verify(&mut r, size)
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let elapsed = t0.elapsed();
    writer
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("writer: {e}"))?;
    set.abort_all();
    Ok(Run {
        bytes: got,
        elapsed: Some(elapsed),
        latency: None,
    })
}

async fn slixmpp(ctx: &mut Ctx<'_>, prosody: &Prosody) {
    let size = ctx.opts.ibb_size;
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            ctx.cases
                .push(failed_all(&format!("temp dir for slixmpp: {e}")));
            return;
        }
    };
    let file = dir.path().join("payload.bin");
    let mut body = Vec::with_capacity(size as usize);
    while (body.len() as u64) < size {
        let s = crate::pattern::slice_at(body.len() as u64, (size - body.len() as u64) as usize);
        body.extend_from_slice(s);
    }
    if let Err(e) = std::fs::write(&file, &body) {
        ctx.cases
            .push(failed_all(&format!("writing the slixmpp payload: {e}")));
        return;
    }
    drop(body);
    for (method, block, id) in [
        ("ibb-iq", 4096u16, "iq"),
        ("ibb-iq", 65535, "iq"),
        ("ibb-message", 4096, "message"),
    ] {
        let mut s = spec(
            format!("ibb/prosody-slixmpp/{id}/{block}/{}", size_label(size)),
            "ibb",
            &format!("slixmpp IBB over {id}"),
            "slixmpp",
            Some(block),
            size,
            Some(raw_id(
                if id == "iq" { "iq-1" } else { "message" },
                block,
                size,
            )),
        );
        s.note = Some(
            "slixmpp 1.17 both ends through the same Prosody; MB/s from the sender's data phase, \
             bytes checked by the receiver's SHA-256; one run (it is slow)"
                .to_owned(),
        );
        let (file, recv_dir) = (file.clone(), dir.path().join(format!("in-{id}-{block}")));
        ctx.case(s, 1, move || {
            let (file, recv_dir) = (file.clone(), recv_dir.clone());
            async move { slix_run(prosody, &file, &recv_dir, method, block, size).await }
        })
        .await;
    }
    let mut s = Spec {
        path: "proxy65",
        ..spec(
            format!("s5b/proxy65-slixmpp/{}", size_label(size)),
            "s5b",
            "slixmpp S5B through Prosody's proxy65",
            "slixmpp",
            None,
            size,
            Some(crate::suite::raw_tcp_id(ctx.opts.sizes[0])),
        )
    };
    s.note = Some(
        "slixmpp 1.17 both ends, proxy-only (slixmpp has no own streamhost); MB/s from the \
         sender's data phase; one run"
            .to_owned(),
    );
    let (file, recv_dir) = (file.clone(), dir.path().join("in-s5b"));
    ctx.case(s, 1, move || {
        let (file, recv_dir) = (file.clone(), recv_dir.clone());
        async move { slix_run(prosody, &file, &recv_dir, "s5b", 4096, size).await }
    })
    .await;
}

async fn slix_run(
    prosody: &Prosody,
    file: &std::path::Path,
    recv_dir: &std::path::Path,
    method: &str,
    block: u16,
    size: u64,
) -> Result<Run, String> {
    std::fs::create_dir_all(recv_dir).map_err(|e| e.to_string())?;
    let recv_dir_s = recv_dir.display().to_string();
    let block_s = block.to_string();
    let prefer = if method == "s5b" { "s5b" } else { "ibb" };
    let mut rx = SlixPeer::spawn(
        prosody,
        "slix2",
        "slix",
        &[
            "recv",
            "--dir",
            &recv_dir_s,
            "--count",
            "1",
            "--max-block-size",
            "65535",
            "--prefer",
            prefer,
        ],
    )
    .await
    .map_err(|e| format!("slixmpp receiver: {e}"))?;
    let to = format!("{}/slix", prosody.jid("slix2"));
    let file_s = file.display().to_string();
    let proxy = prosody.proxy_jid().to_string();
    let mut send_args = vec![
        "send",
        "--to",
        &to,
        "--file",
        &file_s,
        "--method",
        method,
        "--block-size",
        &block_s,
    ];
    if method == "s5b" {
        send_args.extend(["--proxy", proxy.as_str()]);
    }
    let mut tx = SlixPeer::spawn(prosody, "slix1", "slix", &send_args)
        .await
        .map_err(|e| format!("slixmpp sender: {e}"))?;
    let wait = Duration::from_secs(3600);
    let sent = loop {
        let v = tx
            .wait_json_for(wait)
            .await
            .map_err(|e| format!("sender: {e}"))?;
        match v["event"].as_str() {
            Some("sent") => break v,
            Some("error") => return Err(format!("sender: {}", v["message"])),
            _ => {}
        }
    };
    let got = loop {
        let v = rx
            .wait_json_for(wait)
            .await
            .map_err(|e| format!("receiver: {e}"))?;
        match v["event"].as_str() {
            Some("file") => break v,
            Some("error") => return Err(format!("receiver: {}", v["message"])),
            _ => {}
        }
    };
    tx.stop().await;
    rx.stop().await;
    if got["sha256"] != sent["sha256"] || got["size"].as_u64() != Some(size) {
        return Err(format!(
            "slixmpp receiver got {} bytes ({}), sender sent {size} ({})",
            got["size"], got["sha256"], sent["sha256"]
        ));
    }
    let secs = sent["seconds"].as_f64().unwrap_or(0.0);
    Ok(Run {
        bytes: size,
        elapsed: Some(Duration::from_secs_f64(secs.max(1e-6))),
        latency: None,
    })
}
