//! `xft demo` end to end: the binary runs every method by both stacks (Jingle File Transfer
//! and SI) and verifies each by SHA-256.

use std::process::Command;

#[test]
fn demo_with_a_4_mib_file_verifies_every_method_of_both_stacks_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_xft"))
        .args(["demo", "--size", "4MiB"])
        .output()
        .expect("xft runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for stack in ["jingle", "si"] {
        for method in ["s5b-direct", "s5b-proxy", "ibb-iq", "ibb-message"] {
            let line = stdout
                .lines()
                .find(|l| {
                    let mut w = l.split_whitespace();
                    w.next() == Some(stack) && w.next() == Some(method)
                })
                .unwrap_or_else(|| panic!("no row for {stack} {method}:\n{stdout}"));
            assert!(line.contains("4194304"), "{line}");
            assert!(line.ends_with("yes (sha256)"), "{line}");
        }
    }
}

#[test]
fn demo_stack_si_runs_si_alone() {
    let out = Command::new(env!("CARGO_BIN_EXE_xft"))
        .args([
            "demo", "--size", "100KB", "--json", "--stack", "si", "--method", "ibb-iq",
        ])
        .output()
        .expect("xft runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one json object per line"))
        .collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert_eq!(rows[0]["stack"], "si");
    assert_eq!(rows[0]["verified"], true);
}

#[test]
fn demo_json_prints_one_verified_object_per_method() {
    let out = Command::new(env!("CARGO_BIN_EXE_xft"))
        .args([
            "demo",
            "--size",
            "100KB",
            "--json",
            "--method",
            "ibb-iq",
            "--method",
            "s5b-direct",
        ])
        .output()
        .expect("xft runs");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one json object per line"))
        .collect();
    // Jingle first, then SI, each by both methods asked for.
    assert_eq!(rows.len(), 4, "{stdout}");
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["stack"].as_str().unwrap(), r["method"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("jingle", "ibb-iq"),
            ("jingle", "s5b-direct"),
            ("si", "ibb-iq"),
            ("si", "s5b-direct")
        ]
    );
    assert_eq!(rows[0]["requested"], "ibb-iq");
    // The receiver checked a hash: SI offers MD5; xft's Jingle sender a XEP-0300 hash.
    assert_eq!(rows[2]["verified_by"], "md5");
    assert!(rows[0]["verified_by"].is_string(), "{}", rows[0]);
    let docs = include_str!("../../docs/json.md");
    for r in &rows {
        assert_eq!(r["bytes"], 100_000);
        assert_eq!(r["verified"], true);
        assert_eq!(r["side"], "demo");
        assert!(r["error"].is_null());
        // The stages of a completed transfer are all timed, within the whole.
        let total = r["seconds"].as_f64().unwrap();
        for k in ["prepare_s", "offer_s", "connect_s", "stream_s", "finish_s"] {
            let t = r[k].as_f64().unwrap_or_else(|| panic!("{k}: {r}"));
            assert!((0.0..=total).contains(&t), "{k}: {r}");
        }
        // Every field a real run emits is described in docs/json.md.
        for key in r.as_object().unwrap().keys() {
            assert!(docs.contains(&format!("| `{key}` |")), "{key} undocumented");
        }
    }
}
