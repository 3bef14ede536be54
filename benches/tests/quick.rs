//! CI proof that the suite still runs: the in-process cases (raw TCP, relay hop, S5B direct
//! and through our proxy, IBB over the hub and over a raw XML stream, both stacks through
//! the facade) at `--quick` sizes,
//! then the three output files. No figure is asserted.

use benches::report::Outcome;
use benches::suite::{self, MIB, Options};

#[test]
fn the_quick_in_process_suite_completes_every_case_and_writes_the_dashboard() {
    let mut opts = Options::quick();
    opts.sizes = vec![2 * MIB];
    opts.ibb_size = MIB / 4;
    opts.in_process_only = true;
    opts.filter = vec![
        "ceiling/raw-tcp".into(),
        "ceiling/relay-hop".into(),
        "ceiling/raw-xml-pump/65535".into(),
        "s5b/".into(),
        "ibb/hub/iq-default/4096".into(),
        "ibb/hub/message/65535".into(),
        "ibb/raw-xml/iq-default/65535".into(),
        "stack/".into(),
    ];
    let report = suite::run(opts).expect("suite runs");
    let ids: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
    for want in [
        "ceiling/raw-tcp/2MiB",
        "ceiling/relay-hop/2MiB",
        "s5b/direct/2MiB",
        "s5b/xft-proxy/2MiB",
        "ibb/hub/iq-default/4096/256KiB",
        "ibb/raw-xml/iq-default/65535/256KiB",
        // Both stacks through the facade, Jingle judged against SI of the same run.
        "stack/si/s5b-direct/2MiB",
        "stack/jingle/s5b-direct/2MiB",
        "stack/si/s5b-proxy/2MiB",
        "stack/jingle/s5b-proxy/2MiB",
        "stack/si/ibb-iq/4096/256KiB",
        "stack/jingle/ibb-iq/4096/256KiB",
    ] {
        let case = report
            .case(want)
            .unwrap_or_else(|| panic!("{want} missing from {ids:?}"));
        assert_eq!(case.outcome, Outcome::Ok, "{want}");
        assert_eq!(case.runs_mbps.len(), 1, "{want}");
    }
    // Every IBB-over-iq case timed one acknowledgement per chunk.
    let hub = report.case("ibb/hub/iq-default/4096/256KiB").unwrap();
    assert_eq!(hub.ack_latency_us.unwrap().count, 64);
    let jingle = report.case("stack/jingle/s5b-direct/2MiB").unwrap();
    assert_eq!(jingle.ceiling.as_deref(), Some("stack/si/s5b-direct/2MiB"));
    assert!(jingle.ratio_to_ceiling.is_some());
    for goal in [
        "Jingle S5B direct",
        "Jingle S5B through our proxy",
        "Jingle IBB",
    ] {
        let g = report
            .goals
            .iter()
            .find(|g| g.name.starts_with(goal))
            .unwrap_or_else(|| panic!("no goal {goal}"));
        assert_ne!(g.verdict, benches::report::Verdict::NotMeasured, "{goal}");
    }
    let dir = tempfile::tempdir().unwrap();
    benches::render::write_all(&report, dir.path()).unwrap();
    let json = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    let back: benches::report::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.cases.len(), report.cases.len());
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("s5b/direct/2MiB") && html.contains("<svg"));
    let md = std::fs::read_to_string(dir.path().join("latest.md")).unwrap();
    assert!(md.contains("| `s5b/xft-proxy/2MiB` |"));
}
