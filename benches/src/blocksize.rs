//! The IBB block-size cases (issue 13): xft -> xft over iq through two Prosody
//! configurations, every fixed block size beside what xft picks by default, in interleaved
//! rounds so that every figure of one configuration sees the same machine.
//!
//! * **tuned**: `ft-testkit`'s Prosody as the other server cases run it (Nagle off,
//!   `network_default_read_size = 65536`);
//! * **stock**: the same Prosody with this machine's Debian defaults for the network:
//!   Nagle on and `network_default_read_size` 4096 (`core/portmanager.lua`'s default for
//!   c2s; `mod_limits` stays off, it would throttle every case to 10 kB/s).
//!
//! Case ids: `ibb/prosody-{tuned,stock}/block/{4096,16384,65535,default}/{size}`.

use std::time::Duration;

use ft_testkit::{Prosody, ProsodyOptions};

use crate::measure::{Accumulator, Spec};
use crate::report::{Case, Goal, Outcome, Report, Verdict};
use crate::suite::{Options, size_label};
use crate::transfer::{self, IbbParams, Window};

/// The fixed block sizes every configuration runs, beside xft's default.
pub const FIXED: [u16; 3] = [4096, 16384, 65535];

/// The two Prosody configurations, as (name, extra global config).
pub const PROFILES: [(&str, &str); 2] = [
    ("tuned", ""),
    (
        "stock",
        "network_settings = { nagle = true }\nnetwork_default_read_size = 4096\n",
    ),
];

/// The id of a block-size case: `block` is a size or `"default"`.
pub fn case_id(profile: &str, block: &str, size: u64) -> String {
    format!("ibb/prosody-{profile}/block/{block}/{}", size_label(size))
}

fn spec(profile: &str, block: Option<u16>, size: u64) -> Spec {
    let label = block.map_or_else(|| "default".to_owned(), |b| b.to_string());
    Spec {
        id: case_id(profile, &label, size),
        group: "ibb",
        method: match block {
            Some(_) => format!("IBB over iq, fixed block size, {profile} Prosody"),
            None => format!("IBB over iq, xft's default block size, {profile} Prosody"),
        },
        implementation: "xft",
        path: "prosody",
        block_size: block.map(u32::from),
        bytes: size,
        ceiling: None,
        note: Some(match profile {
            "stock" => "Prosody with Debian's network defaults: Nagle on, 4096-byte reads".into(),
            _ => "Prosody tuned: Nagle off, 64 KiB reads".into(),
        }),
    }
}

/// Starts a Prosody with the `stock` settings (or any extra global config).
async fn start(extra: &'static str) -> Result<Prosody, String> {
    tokio::task::spawn_blocking(move || {
        let mut o = ProsodyOptions::default().with_extra_global_config(extra);
        for u in ["ours1", "ours2"] {
            o = o.with_account(u, ft_testkit::PASSWORD);
        }
        Prosody::start(o)
    })
    .await
    .map_err(|e| format!("start task: {e}"))?
    .map_err(|e| format!("Prosody did not start: {e}"))
}

/// Runs the block-size cases through `tuned` (already running) and a stock Prosody started
/// here, appending them to `cases`.
pub async fn run(cases: &mut Vec<Case>, opts: &Options, tuned: &Prosody) {
    let size = opts.ibb_size;
    let rounds = opts.runs;
    for (profile, extra) in PROFILES {
        let wanted = |block: Option<u16>| {
            let id = spec(profile, block, size).id;
            opts.filter.is_empty() || opts.filter.iter().any(|f| id.contains(f.as_str()))
        };
        // Each round starts one case later (the order rotates): the case run last in a
        // round ran 0.75x of its rate when first (Prosody after three transfers).
        let blocks: Vec<Option<u16>> = [None]
            .into_iter()
            .chain(FIXED.iter().map(|b| Some(*b)))
            .filter(|b| wanted(*b))
            .collect();
        if blocks.is_empty() {
            continue;
        }
        let stock;
        let prosody = if extra.is_empty() {
            tuned
        } else {
            match start(extra).await {
                Ok(p) => {
                    stock = p;
                    &stock
                }
                Err(e) => {
                    for b in blocks {
                        cases.push(spec(profile, b, size).without_runs(Outcome::Failed(e.clone())));
                    }
                    continue;
                }
            }
        };
        let mut accs: Vec<(Option<u16>, Accumulator)> = blocks
            .iter()
            .map(|b| {
                (
                    *b,
                    Accumulator::new(spec(profile, *b, size), rounds).with_server(prosody.pid()),
                )
            })
            .collect();
        for round in 0..rounds {
            let n = accs.len();
            accs.rotate_left(round % n);
            for (block, acc) in &mut accs {
                let params = match block {
                    Some(b) => IbbParams::fixed(*b, Window::Adaptive),
                    None => IbbParams::xft_default(),
                };
                acc.run_once(opts.budget, async {
                    let (a, b) =
                        tokio::join!(prosody.connect("ours1", "a"), prosody.connect("ours2", "b"));
                    let a = a.map_err(|e| format!("login ours1: {e}"))?;
                    let b = b.map_err(|e| format!("login ours2: {e}"))?;
                    let run = transfer::ibb(a, b, params, size).await;
                    // Let Prosody forget the sessions before the next round.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    run
                })
                .await;
            }
        }
        for (_, acc) in accs {
            let case = acc.finish();
            eprintln!(
                "{:<44} {:>9} {:?}",
                case.id,
                case.mbps
                    .map_or_else(String::new, |s| format!("{:.1} MB/s", s.median)),
                case.outcome
            );
            cases.push(case);
        }
    }
}

/// The goal's name in the table.
pub const GOAL: &str =
    "IBB block size chosen by the path ≥ 0.9× the best fixed size (stock and tuned Prosody)";

/// What xft picks by default against the best fixed block size of the same run, through
/// each Prosody: met when both reach 0.9×.
pub fn goal(report: &Report, size: u64) -> Goal {
    let mut parts = Vec::new();
    let mut met = true;
    for (profile, _) in PROFILES {
        let best = FIXED
            .iter()
            .filter_map(|b| {
                report
                    .median(&case_id(profile, &b.to_string(), size))
                    .map(|m| (*b, m))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let default = report.median(&case_id(profile, "default", size));
        let (Some((block, best)), Some(default)) = (best, default) else {
            return Goal {
                name: GOAL.to_owned(),
                verdict: Verdict::NotMeasured,
                detail: format!(
                    "needs {} and the fixed sizes {FIXED:?}",
                    case_id(profile, "default", size)
                ),
            };
        };
        let ratio = default / best;
        met &= ratio >= 0.9;
        parts.push(format!(
            "{profile}: {default:.1} / {best:.1} MB/s (best fixed: {block}) = {ratio:.2}×"
        ));
    }
    Goal {
        name: GOAL.to_owned(),
        verdict: if met { Verdict::Met } else { Verdict::Missed },
        detail: format!("{} (goal 0.9×)", parts.join("; ")),
    }
}
