//! Session setup through Prosody on loopback: from the moment an xft receiver has the offer
//! (Jingle `session-initiate`, SI offer) to the first byte of the file in its hands, over
//! S5B with the sender's own streamhost on 127.0.0.1. Three senders to the same receiver:
//! xft by Jingle, xft by SI, and Gajim 1.7.3 (Jingle; `ft_testkit::gajim::GajimPeer`). The
//! receiver accepts at once, so the figure is the negotiation itself: the answer, the
//! candidates (Jingle) or streamhosts (SI), the SOCKS5 connect and the first read.
//!
//! Each run records its setup time, in microseconds, as the run's one latency sample (the
//! case's `ack_latency_us` percentiles then are those of the setup time; see its note).

use std::path::Path;
use std::time::{Duration, Instant};

use ft_facade::{FileTransfer, Stack};
use ft_testkit::Prosody;
use ft_testkit::{GajimOptions, GajimPeer};
use ft_transport::xmpp::ClientTransport;
use tokio::task::JoinSet;

use crate::measure::{Run, latency_histogram};
use crate::stacks::{self, Route};

/// The accounts the setup cases log in with.
pub const ACCOUNTS: [&str; 3] = ["setup1", "setup2", "gajim1"];

/// How long Gajim may take from its start to the end of one transfer.
const GAJIM_WAIT: Duration = Duration::from_secs(60);

fn run_of(bytes: u64, setup: Duration, streaming: Duration) -> Run {
    let mut h = latency_histogram();
    h.saturating_record(setup.as_micros().clamp(1, 100_000_000) as u64);
    Run {
        bytes,
        elapsed: Some(streaming),
        latency: Some(h),
    }
}

/// The receiver, logged in as `setup2/recv` on `prosody`.
async fn receiver(
    prosody: &Prosody,
    set: &mut JoinSet<Result<(), String>>,
) -> Result<FileTransfer<ClientTransport>, String> {
    let (t, r) = prosody
        .connect("setup2", "recv")
        .await
        .map_err(|e| format!("login setup2: {e}"))?;
    Ok(stacks::facade_on(set, t, r, stacks::receiver_config()))
}

/// One file of `bytes` from xft (`setup1/send`, by `stack`) to xft through Prosody.
pub async fn xft_to_xft(prosody: &Prosody, stack: Stack, bytes: u64) -> Result<Run, String> {
    let mut set = JoinSet::new();
    let (ta, ra) = prosody
        .connect("setup1", "send")
        .await
        .map_err(|e| format!("login setup1: {e}"))?;
    let alice = stacks::facade_on(
        &mut set,
        ta,
        ra,
        stacks::sender_config(stack, Route::S5bDirect),
    );
    let bob = receiver(prosody, &mut set).await?;
    let (received, offered, checker) =
        stacks::one_file(&alice, &bob, stack, Route::S5bDirect, bytes).await?;
    set.abort_all();
    let first = checker.first_byte().ok_or("no byte arrived")?;
    Ok(run_of(
        received.bytes,
        first.saturating_duration_since(offered),
        received.streaming,
    ))
}

/// One file of `bytes` from Gajim (`gajim1`, its own 127.0.0.1 candidate) to xft through
/// Prosody. `file` holds the pattern.
pub async fn gajim_to_xft(prosody: &Prosody, file: &Path, bytes: u64) -> Result<Run, String> {
    let mut set = JoinSet::new();
    let bob = receiver(prosody, &mut set).await?;
    let to = bob.jid().to_string();
    let mut gajim = GajimPeer::send(
        prosody,
        "gajim1",
        &GajimOptions::default(),
        &to,
        file,
        "s5b",
        &[],
    )
    .await
    .map_err(|e| format!("gajim: {e}"))?;
    let Ok(Some(offer)) = tokio::time::timeout(GAJIM_WAIT, bob.next_offer()).await else {
        return Err(format!(
            "no offer from gajim within {} s: {}",
            GAJIM_WAIT.as_secs(),
            gajim.stderr_tail()
        ));
    };
    let offered = Instant::now();
    if offer.stack() != Stack::Jingle {
        return Err(format!("gajim offered by {}", offer.stack().name()));
    }
    let checker = stacks::PatternChecker::default();
    let received = tokio::time::timeout(
        GAJIM_WAIT,
        offer
            .accept_into(checker.clone(), ft_facade::AcceptOptions::new())
            .outcome(),
    )
    .await
    .map_err(|_| "gajim's transfer did not end in time".to_owned())?
    .map_err(|e| format!("receiver: {}", e.kind.chain()))?;
    if received.bytes != bytes {
        return Err(format!("gajim sent {} bytes of {bytes}", received.bytes));
    }
    let _ = gajim.finish(Duration::from_secs(10)).await;
    gajim.stop().await;
    set.abort_all();
    let first = checker.first_byte().ok_or("no byte arrived")?;
    Ok(run_of(
        received.bytes,
        first.saturating_duration_since(offered),
        received.streaming,
    ))
}

/// Writes `bytes` of the pattern into `path` (Gajim sends from a file).
pub fn write_pattern_file(path: &Path, bytes: u64) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(bytes as usize);
    while (body.len() as u64) < bytes {
        let left = (bytes - body.len() as u64) as usize;
        body.extend_from_slice(crate::pattern::slice_at(body.len() as u64, left));
    }
    std::fs::write(path, body)
}

/// The size of each setup case's file: small, the setup is what is timed.
pub const SETUP_BYTES: u64 = 1 << 20;

/// The ids of the three setup cases: `setup/prosody/{jingle,si,gajim-jingle}/1MiB`.
pub fn case_id(who: &str) -> String {
    format!(
        "setup/prosody/{who}/{}",
        crate::suite::size_label(SETUP_BYTES)
    )
}

/// Runs the three setup cases through `prosody`.
pub(crate) async fn cases(ctx: &mut crate::external::Ctx<'_>, prosody: &Prosody) {
    let note = "setup: ack_latency_us holds, per run, the time from the receiver having the \
                offer to the first byte in its hands (S5B, the sender's own streamhost on \
                127.0.0.1); MB/s is the receiver's streaming phase of the 1 MiB file";
    let spec = |who: &str, method: &str, implementation: &'static str| {
        let mut s = crate::external::spec(
            case_id(who),
            "setup",
            method,
            implementation,
            None,
            SETUP_BYTES,
            None,
        );
        s.note = Some(note.to_owned());
        s
    };
    for (stack, who, method) in [
        (
            Stack::Jingle,
            "jingle",
            "Jingle session-initiate to first byte (xft to xft)",
        ),
        (Stack::Si, "si", "SI offer to first byte (xft to xft)"),
    ] {
        ctx.case(
            spec(who, method, "xft"),
            ctx.opts.runs,
            move || async move { xft_to_xft(prosody, stack, SETUP_BYTES).await },
        )
        .await;
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            let s = spec("gajim-jingle", "", "gajim");
            ctx.cases
                .push(s.without_runs(crate::report::Outcome::Failed(format!("temp dir: {e}"))));
            return;
        }
    };
    let file = dir.path().join("setup.bin");
    if let Err(e) = write_pattern_file(&file, SETUP_BYTES) {
        let s = spec("gajim-jingle", "", "gajim");
        ctx.cases
            .push(s.without_runs(crate::report::Outcome::Failed(format!("{e}"))));
        return;
    }
    let file = &file;
    ctx.case(
        spec(
            "gajim-jingle",
            "Gajim 1.7.3 session-initiate to first byte (Gajim to xft)",
            "gajim",
        ),
        ctx.opts.runs,
        move || async move { gajim_to_xft(prosody, file, SETUP_BYTES).await },
    )
    .await;
}
