//! The external cases still run against a real Prosody (started by ft-testkit on free
//! loopback ports): the raw client's relay ceiling, our IBB through Prosody, S5B through its
//! proxy65 and slixmpp as sender and receiver, each at a small size. `XFT_SKIP_INTEROP=1`
//! skips, loudly. No figure is asserted.

use benches::report::Outcome;
use benches::suite::{self, MIB, Options};

#[test]
fn the_prosody_cases_complete_and_move_every_byte() {
    if !ft_testkit::interop_enabled() {
        return;
    }
    let mut opts = Options::quick();
    opts.sizes = vec![MIB];
    opts.ibb_size = MIB / 4;
    opts.filter = vec![
        "server/prosody/iq-32/4096".into(),
        "server/prosody/message/65535".into(),
        "ibb/prosody/iq-default/4096".into(),
        "ibb/prosody/iq-default/65535".into(),
        "s5b/proxy65".into(),
        "ibb/prosody-slixmpp/message/4096".into(),
        "s5b/proxy65-slixmpp".into(),
        "setup/prosody/".into(),
    ];
    let report = suite::run(opts).expect("suite runs");
    for id in [
        "server/prosody/iq-32/4096/256KiB",
        "server/prosody/message/65535/256KiB",
        "ibb/prosody/iq-default/4096/256KiB",
        "ibb/prosody/iq-default/65535/256KiB",
        "s5b/proxy65/1MiB",
        "ibb/prosody-slixmpp/message/4096/256KiB",
        "s5b/proxy65-slixmpp/256KiB",
        "setup/prosody/jingle/1MiB",
        "setup/prosody/si/1MiB",
        "setup/prosody/gajim-jingle/1MiB",
    ] {
        let case = report
            .case(id)
            .unwrap_or_else(|| panic!("{id} missing: {:#?}", report.cases));
        assert_eq!(case.outcome, Outcome::Ok, "{id}");
    }
    // Each setup run recorded its setup time; the goal names all three.
    for who in ["jingle", "si", "gajim-jingle"] {
        let c = report.case(&format!("setup/prosody/{who}/1MiB")).unwrap();
        assert_eq!(c.ack_latency_us.unwrap().count, 1, "{who}");
    }
    let setup = report
        .goals
        .iter()
        .find(|g| g.name.starts_with("Jingle session setup"))
        .unwrap();
    assert_ne!(
        setup.verdict,
        benches::report::Verdict::NotMeasured,
        "{}",
        setup.detail
    );
    // Our IBB over iq through Prosody timed one acknowledgement per 4096-byte chunk.
    let ours = report.case("ibb/prosody/iq-default/4096/256KiB").unwrap();
    assert_eq!(ours.ack_latency_us.unwrap().count, 64);
    assert!(
        report
            .versions
            .prosody
            .as_deref()
            .unwrap_or("")
            .starts_with("0.12")
    );
    assert_eq!(report.versions.slixmpp.as_deref(), Some("1.17.0"));
}
