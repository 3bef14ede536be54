//! The fault harness's leak checkpoint finds a run that leaves a descriptor behind, names
//! its seed and replays it alone (issue 9). In a test binary of its own: the descriptors
//! it leaves on purpose would otherwise be seen by the checkpoints of `tests/faults.rs`
//! running beside it.

mod common;
mod fault_harness;

use fault_harness::{Mode, Plan, checkpoint, close_leaked, run_plan};

/// One test at a time: a checkpoint sees the whole process.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_run_that_leaves_a_descriptor_open_fails_with_its_seed_and_replay_command() {
    let _alone = alone();
    let _ = checkpoint(); // the baseline
    let mut bad = None;
    for seed in [11, 12, 13] {
        let mut plan = Plan::new(seed, Mode::IbbIq).without_faults();
        plan.size = 5000;
        if seed == 12 {
            plan.leak_fds = 1;
            bad = Some(plan.clone());
        }
        run_plan(&plan).unwrap();
    }
    let found = checkpoint();
    close_leaked();
    let bad = bad.unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    let (seed, msg) = &found[0];
    assert_eq!(*seed, bad.seed);
    assert!(
        msg.starts_with("XFT_SEED=12 XFT_MODE=ibb-iq cargo test -p ft-facade --test faults replay"),
        "{msg}"
    );
    assert!(
        msg.contains("left behind:") && msg.contains("socket:["),
        "{msg}"
    );
    // Closed again: the next checkpoint finds nothing.
    assert!(checkpoint().is_empty());
}

#[test]
fn runs_without_faults_leave_nothing_behind() {
    let _alone = alone();
    let _ = checkpoint();
    for mode in Mode::ALL {
        run_plan(&Plan::new(3, mode).without_faults()).unwrap();
    }
    let found = checkpoint();
    assert!(found.is_empty(), "{found:#?}");
}
