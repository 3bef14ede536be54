//! The checks of one run: outcomes, stages, files, as the module doc of `tests/faults.rs`
//! lists them.

use std::path::Path;

use ft_facade::{ErrorKind, Side, Stage};

use super::plan::{Mode, Plan, Who};
use super::relay::TcpFault;
use super::sink::SinkFault;
use super::{Ended, NAME, PART, PART_SIDECAR, stage_index};
use crate::common::{listing, sha256_file, sha256_hex};

pub fn brief(e: &Ended) -> String {
    match &e.outcome {
        Ok(o) => format!(
            "ok {:?}{} {:?}",
            o.method,
            if o.fallback { " (fallback)" } else { "" },
            o.delivery
        ),
        Err(e) => format!("err {}: {}", e.stage, e),
    }
}

/// Every assertion of a run.
pub fn check(
    plan: &Plan,
    data: &[u8],
    sent: &Ended,
    received: Option<&Ended>,
    dst: &Path,
    taken: &[u8],
) -> Result<(), String> {
    let mut bad = Vec::new();
    let sha = sha256_hex(data);
    for (who, e) in [("sender", Some(sent)), ("receiver", received)] {
        let Some(e) = e else { continue };
        if e.terminal_events != 1 || e.terminal_ok != Some(e.outcome.is_ok()) {
            bad.push(format!(
                "{who}: {} terminal event(s) (last ok: {:?}) for outcome {}",
                e.terminal_events,
                e.terminal_ok,
                brief(e)
            ));
        }
    }
    let s_err = sent.outcome.as_ref().err();
    let r_err = received.and_then(|r| r.outcome.as_ref().err());
    let r_ok = received.and_then(|r| r.outcome.as_ref().ok());
    if received.is_none()
        && (sent.outcome.is_ok() || s_err.is_some_and(|e| stage_index(e.stage) != 0))
    {
        bad.push(format!(
            "no offer arrived, yet the sender ended with {}",
            brief(sent)
        ));
    }
    // The files: the final name only with the source's bytes, `.part` (and the sidecar that
    // says it is ours) only when asked.
    if plan.into_dir {
        for name in listing(dst) {
            match name.as_str() {
                NAME => {
                    if r_ok.is_none() {
                        bad.push(format!("{NAME} exists but the receiver did not complete"));
                    }
                    if sha256_file(&dst.join(NAME)) != sha {
                        bad.push(format!("{NAME} differs from the source"));
                    }
                }
                n if (n == PART || n == PART_SIDECAR) && r_err.is_some() && plan.keep_partial => {}
                other => bad.push(format!(
                    "unexpected file {other:?} (receiver {})",
                    received.map_or("no offer".into(), brief)
                )),
            }
        }
        if let Some(o) = r_ok
            && (o.path.as_deref() != Some(&dst.join(NAME)) || !dst.join(NAME).exists())
        {
            bad.push(format!("completed, but not at {NAME}: {:?}", o.path));
        }
    } else if r_ok.is_some() && taken != data {
        bad.push(format!(
            "completed into the writer with {} bytes that differ from the source",
            taken.len()
        ));
    }
    if let Some(o) = r_ok
        && (o.sha256 != sha || o.bytes != data.len() as u64)
    {
        bad.push(format!(
            "completed with bytes {} sha {} (source {})",
            o.bytes, o.sha256, sha
        ));
    }
    // What must succeed, and at which stage a failure must be.
    let tcp_clean = plan
        .tcp
        .iter()
        .all(|f| matches!(f, TcpFault::None | TcpFault::Slow { .. }));
    let stanzas = plan.sender_stanzas.any() || plan.receiver_stanzas.any();
    let others_clean = plan.disconnect.is_none() && plan.cancel.is_none() && !stanzas;
    if plan.clean()
        || (plan.mode == Mode::Fallback && others_clean && !plan.sink.breaks(data.len() as u64))
    {
        if s_err.is_some() || r_ok.is_none() {
            bad.push("a run without faults did not complete on both sides".into());
        } else if plan.mode == Mode::Fallback && !sent.outcome.as_ref().is_ok_and(|o| o.fallback) {
            bad.push("S5B was cut at every connection, yet no fallback".into());
        }
    }
    let late = [Stage::Stream, Stage::Verify, Stage::Close];
    if plan.sink.breaks(data.len() as u64) && others_clean && tcp_clean {
        match r_err {
            Some(e) if late.contains(&e.stage) => {
                let errno = match plan.sink {
                    SinkFault::DiskFull { .. } => Some(28),
                    SinkFault::Eio { .. } => Some(5),
                    _ => None,
                };
                let named = match &e.kind {
                    ErrorKind::Io(io) => io.raw_os_error() == errno,
                    ErrorKind::Write(_) => true,
                    _ => false,
                };
                if errno.is_some() && !named {
                    bad.push(format!("a failing disk reported as {e}"));
                }
            }
            _ => bad.push("a failing sink, yet the receiver did not fail while streaming".into()),
        }
        if let Some(e) = s_err
            && !late.contains(&e.stage)
        {
            bad.push(format!(
                "a failing sink, yet the sender failed at stage {}",
                e.stage
            ));
        }
    }
    // S5B direct: one connection crosses the relay, the receiver's; sender → receiver is
    // its downstream. A fault there after 256 bytes (well past the SOCKS5 handshake and
    // its reply, under 100 bytes) hits the stream, never the set-up. Only when this is the
    // one transfer: with further transfers beside it, which of them makes the relay's first
    // connection is a race (s5b-direct seed 4898: the first fault went to the other
    // transfer, the second, in the middle of SOCKS5, to this one).
    if plan.mode == Mode::S5bDirect
        && plan.also.is_empty()
        && !stanzas
        && plan.disconnect.is_none()
        && plan.cancel.is_none()
        && !plan.sink.breaks(data.len() as u64)
        && matches!(
            plan.tcp.first(),
            Some(
                TcpFault::Reset { after, upstream: false }
                    | TcpFault::HalfClose { after, upstream: false }
                    | TcpFault::Stall { after, upstream: false }
            ) if *after >= 256
        )
    {
        for e in s_err.into_iter().chain(r_err) {
            if !late.contains(&e.stage) {
                bad.push(format!(
                    "a bytestream fault after the handshake, yet a failure at stage {}: {e}",
                    e.stage
                ));
            }
        }
    }
    let data_only = stanzas
        && (!plan.sender_stanzas.any() || plan.sender_stanzas.data_only)
        && (!plan.receiver_stanzas.any() || plan.receiver_stanzas.data_only);
    if data_only
        && plan.disconnect.is_none()
        && plan.cancel.is_none()
        && tcp_clean
        && !plan.sink.breaks(data.len() as u64)
    {
        for e in s_err.into_iter().chain(r_err) {
            if !late.contains(&e.stage) {
                bad.push(format!(
                    "faults only on IBB data, yet a failure at stage {}: {e}",
                    e.stage
                ));
            }
        }
    }
    if let Some(c) = plan.cancel
        && plan.disconnect.is_none()
        && !stanzas
        && tcp_clean
        && !plan.sink.breaks(data.len() as u64)
    {
        let mine = if c.who == Who::Sender { s_err } else { r_err };
        if let Some(e) = mine
            && !e.is_cancelled_by(Side::Local)
        {
            bad.push(format!("the {:?} cancelled, yet it ended with {e}", c.who));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} (sender {}; receiver {})",
            bad.join("; "),
            brief(sent),
            received.map_or("no offer".into(), brief)
        ))
    }
}
