//! Replays every fixture through the fuzzing entry points, at every prefix length, so
//! they run on stable without cargo-fuzz: `cargo test -p xep0095-si --features __fuzzing`.
#![cfg(feature = "__fuzzing")]

fn fixtures(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fixtures(&p, out);
        } else if p.extension().is_some_and(|x| x == "xml") {
            out.push(std::fs::read(p).unwrap());
        }
    }
}

#[test]
fn every_fixture_and_every_prefix_goes_through_the_fuzz_entry_point() {
    let mut all = Vec::new();
    fixtures(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures").as_ref(),
        &mut all,
    );
    assert!(!all.is_empty());
    for data in all {
        let text = String::from_utf8(data).unwrap();
        let body = text.split_once("-->\n").map_or(text.as_str(), |(_, b)| b);
        let wrapped = format!("<w xmlns='jabber:client'>{body}</w>");
        let root: minidom::Element = wrapped.parse().unwrap();
        for child in root.children() {
            let mut bytes = Vec::new();
            child.write_to(&mut bytes).unwrap();
            for n in (0..=bytes.len()).step_by(7) {
                xep0095_si::fuzzing::fuzz_si_stanza(&bytes[..n]);
            }
            xep0095_si::fuzzing::fuzz_si_stanza(&bytes);
        }
    }
}
