//! Every `<hash/>` Gajim 1.7.3 sent in the interop suite (`tests/fixtures/gajim/`: offers,
//! its echo in session-accept, and the session-info `<checksum/>` of a file over 10 MB) reads
//! as a known blake2b-512 digest, and our streaming hasher computes the same digest over the
//! same bytes: the test files of the suite are `ft_testkit::content(len, len)`, regenerated
//! here (the generator is copied: this crate does not depend on the test kit).

use std::path::Path;

use minidom::Element;
use xep0300_hashes::{HashAlgo, Hasher, KnownHash, MAX_HASHES, read_hashes};

/// `ft_testkit::content`: the bytes of the interop suite's test files.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn find<'a>(e: &'a Element, name: &str, out: &mut Vec<&'a Element>) {
    if e.name() == name {
        out.push(e);
    }
    e.children().for_each(|c| find(c, name, out));
}

#[test]
fn gajims_blake2b_512_digests_read_and_match_ours() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gajim");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let iq: Element = std::fs::read_to_string(&p)
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut files = Vec::new();
        find(&iq, "file", &mut files);
        assert_eq!(files.len(), 1, "{name}");
        let file = files[0];
        let known =
            read_hashes(file.children(), MAX_HASHES).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(known.len(), 1, "{name}");
        assert_eq!(known[0].algo, HashAlgo::Blake2b512, "{name}");
        // Each element alone reads the same.
        let el = file.children().find(|c| c.name() == "hash").unwrap();
        assert_eq!(
            KnownHash::from_element(el).unwrap().as_ref(),
            Some(&known[0])
        );
        // The file's length: its <size/>, or (the session-info checksum carries only the
        // hash) the 10,500,000 bytes of the over-10-MB case.
        let len: usize = match file.children().find(|c| c.name() == "size") {
            Some(s) => s.text().parse().unwrap(),
            None => {
                assert!(name.starts_with("s5b-over-10mb-"), "{name}");
                10_500_000
            }
        };
        let mut h = Hasher::new(HashAlgo::Blake2b512);
        for chunk in content(len, len as u64).chunks(65_536) {
            h.update(chunk);
        }
        assert!(
            known[0].matches(&h.finish()),
            "{name}: our blake2b-512 differs"
        );
        checked += 1;
    }
    assert_eq!(checked, 12, "the recorded stanzas with a hash");
}
