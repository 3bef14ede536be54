//! Hostile or broken XEP-0300 input (docs/bad-input.md, section J, J40–J49).

use std::time::{Duration, Instant};

use minidom::Element;
use xep0300_hashes::{
    HashAlgo, HashError, Hasher, KnownHash, MAX_HASHES, NS_HASHES, choose, read_hashes,
};

fn file(children: &str) -> Element {
    format!("<file xmlns='urn:xmpp:jingle:apps:file-transfer:5'>{children}</file>")
        .parse()
        .expect("test XML parses")
}

fn hash(algo: &str, value: &str) -> String {
    format!("<hash xmlns='urn:xmpp:hashes:2' algo='{algo}'>{value}</hash>")
}

fn sha256_of(data: &[u8]) -> String {
    let mut h = Hasher::new(HashAlgo::Sha256);
    h.update(data);
    h.finish().to_base64()
}

#[test]
fn j40_a_hash_of_an_unknown_algorithm_is_ignored_not_fatal() {
    // Unknown algorithms, even with a value that is not base64, are skipped undecoded;
    // the known one beside them is kept.
    let f = file(&format!(
        "{}{}{}",
        hash("whirlpool", "!!not base64!!"),
        hash("md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        hash("sha-256", &sha256_of(b"x")),
    ));
    let known = read_hashes(f.children(), MAX_HASHES).expect("unknown ones are ignored");
    assert_eq!(known.len(), 1);
    assert_eq!(known[0].algo, HashAlgo::Sha256);
    // Only unknown ones: no hash to verify, and no error either.
    let f = file(&hash("sha-224", "AAAA"));
    assert_eq!(read_hashes(f.children(), MAX_HASHES), Ok(vec![]));
}

#[test]
fn j41_a_value_of_the_wrong_length_for_its_algorithm_is_refused() {
    // 32 bytes labelled blake2b-512 (64), 64 bytes labelled sha-256 (32), and empty.
    let thirty_two = sha256_of(b"x");
    let f = file(&hash("blake2b-512", &thirty_two));
    assert_eq!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::WrongLength {
            algo: HashAlgo::Blake2b512,
            expected: 64,
            got: 32
        })
    );
    let mut b = Hasher::new(HashAlgo::Blake2b512);
    b.update(b"x");
    let f = file(&hash("sha-256", &b.finish().to_base64()));
    assert!(matches!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::WrongLength {
            algo: HashAlgo::Sha256,
            expected: 32,
            got: 64
        })
    ));
    let f = file(&hash("sha3-256", ""));
    assert!(matches!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::WrongLength { got: 0, .. })
    ));
}

#[test]
fn j42_a_value_that_is_not_base64_is_refused_with_its_algorithm() {
    for bad in ["****", "YWJj\u{e9}", "YWJjZA", "YW Jj"] {
        let f = file(&hash("sha-256", bad));
        let err = read_hashes(f.children(), MAX_HASHES).expect_err(bad);
        assert!(
            matches!(
                err,
                HashError::NotBase64 {
                    algo: HashAlgo::Sha256,
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
    // Surrounding whitespace (pretty-printed XML) is not an error.
    let f = file(&hash("sha-256", &format!("\n  {}\n", sha256_of(b"x"))));
    assert_eq!(
        read_hashes(f.children(), MAX_HASHES).map(|v| v.len()),
        Ok(1)
    );
}

#[test]
fn j43_thousands_of_hashes_stop_at_the_bound_without_decoding_the_rest() {
    let many: String = (0..5000)
        .map(|_| hash("sha-256", &sha256_of(b"x")))
        .collect();
    let f = file(&many);
    let t = Instant::now();
    assert_eq!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::TooMany { max: MAX_HASHES })
    );
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    // Exactly the bound is fine (and the duplicates, equal, count once).
    let f = file(
        &(0..MAX_HASHES)
            .map(|_| hash("sha-256", &sha256_of(b"x")))
            .collect::<String>(),
    );
    assert_eq!(
        read_hashes(f.children(), MAX_HASHES).map(|v| v.len()),
        Ok(1)
    );
}

#[test]
fn j44_a_hash_without_an_algo_attribute_is_refused() {
    let f = file(&format!(
        "<hash xmlns='{NS_HASHES}'>{}</hash>",
        sha256_of(b"x")
    ));
    assert_eq!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::MissingAlgo)
    );
}

#[test]
fn j45_two_different_values_for_one_algorithm_are_refused() {
    let f = file(&format!(
        "{}{}",
        hash("sha-256", &sha256_of(b"x")),
        hash("sha-256", &sha256_of(b"y"))
    ));
    assert_eq!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::Conflicting {
            algo: HashAlgo::Sha256
        })
    );
}

#[test]
fn j46_a_megabyte_value_is_refused_before_it_is_decoded() {
    let huge = "A".repeat(1 << 20);
    let f = file(&hash("sha-256", &huge));
    let t = Instant::now();
    assert!(matches!(
        read_hashes(f.children(), MAX_HASHES),
        Err(HashError::WrongLength {
            algo: HashAlgo::Sha256,
            expected: 32,
            ..
        })
    ));
    assert!(t.elapsed() < Duration::from_millis(200));
}

#[test]
fn j47_a_checksum_that_does_not_match_what_arrived_is_told_apart() {
    let f = file(&hash("sha-256", &sha256_of(b"what was offered")));
    let known = read_hashes(f.children(), MAX_HASHES).expect("valid");
    let mut arrived = Hasher::new(HashAlgo::Sha256);
    arrived.update(b"what arrived");
    assert!(!known[0].matches(&arrived.finish()));
    // Same bytes under another algorithm do not match either.
    let mut other = Hasher::new(HashAlgo::Sha3_256);
    other.update(b"what was offered");
    assert!(!known[0].matches(&other.finish()));
    let mut same = Hasher::new(HashAlgo::Sha256);
    same.update(b"what was offered");
    assert!(known[0].matches(&same.finish()));
}

#[test]
fn j48_a_peer_without_hashes_2_or_with_only_weak_functions_gets_no_hash() {
    // Text names without urn:xmpp:hashes:2 (Gajim sends no hash then either).
    assert_eq!(choose(["urn:xmpp:hash-function-text-names:sha-256"]), None);
    // Only MD5 / SHA-1: we never choose them.
    let weak = [
        NS_HASHES,
        "urn:xmpp:hash-function-text-names:md5",
        "urn:xmpp:hash-function-text-names:sha-1",
    ];
    assert_eq!(choose(weak), None);
    // Thousands of unrelated features: still a bounded scan, the right answer.
    let mut noise: Vec<String> = (0..5000).map(|i| format!("urn:example:{i}")).collect();
    noise.push(NS_HASHES.into());
    noise.push("urn:xmpp:hash-function-text-names:id-blake2b256".into());
    assert_eq!(choose(&noise), Some(HashAlgo::Blake2b256));
}

#[test]
fn j49_a_hash_in_another_namespace_is_not_read() {
    // XEP-0300's old namespace, no namespace of its own: not a urn:xmpp:hashes:2 hash.
    let f = file(
        "<hash xmlns='urn:xmpp:hashes:1' algo='sha-256'>!!</hash>\
         <hash algo='sha-256'>!!</hash>",
    );
    assert_eq!(read_hashes(f.children(), MAX_HASHES), Ok(vec![]));
    // And the xmpp-parsers element with an unknown algo passes through as ignored.
    let parsed = xep0300_hashes::Hash::new(xep0300_hashes::Algo::Unknown("x".into()), vec![1]);
    assert_eq!(KnownHash::from_parsed(&parsed), Ok(None));
}
