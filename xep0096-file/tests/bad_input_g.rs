//! BAD-INPUT section G, items G1–G5: the peer's file name never leaves the directory and
//! never misleads. One thin test per item (the name rules are unit-tested in `name.rs`;
//! G6–G11 are in `src/part/tests_safety.rs` and `ft-facade/tests/part_safety.rs`).

use xep0096_file::{MAX_NAME_BYTES, NameError, safe_file_name};

#[test]
fn g1_both_separators_are_split_and_only_the_basename_is_kept() {
    for (peer, ours) in [
        ("a/b/c.txt", "c.txt"),
        ("a\\b\\c.txt", "c.txt"),
        ("a/b\\c.txt", "c.txt"),
        ("a\\b/c.txt", "c.txt"),
    ] {
        assert_eq!(safe_file_name(peer).unwrap(), ours, "{peer:?}");
    }
}

/// The catalogue suggests `file` for `..`, `.` and empty names; xft refuses them instead
/// (`bad-request` + `<bad-profile/>`, see `NameError`): no honest client sends one. A
/// leading dot is dropped rather than prefixed with `_` (no hidden files either way).
#[test]
fn g2_dot_and_empty_names_are_refused_and_absolute_paths_keep_only_the_basename() {
    assert!(matches!(safe_file_name(".."), Err(NameError::DotName(_))));
    assert!(matches!(safe_file_name("."), Err(NameError::DotName(_))));
    for empty in ["", "   ", "\\"] {
        assert!(
            matches!(safe_file_name(empty), Err(NameError::Empty(_))),
            "{empty:?}"
        );
    }
    for (peer, ours) in [
        ("/etc/passwd", "passwd"),
        ("C:\\boot.ini", "boot.ini"),
        ("C:foo", "C_foo"),
        ("\\\\srv\\share\\x.doc", "x.doc"),
        (".profile", "profile"),
    ] {
        assert_eq!(safe_file_name(peer).unwrap(), ours, "{peer:?}");
    }
}

#[test]
fn g3_controls_bidi_overrides_and_zero_width_characters_become_underscores() {
    assert!(matches!(safe_file_name("a\0b"), Err(NameError::Nul)));
    assert_eq!(
        safe_file_name("invoice\u{202E}fdp.exe").unwrap(),
        "invoice_fdp.exe"
    );
    assert_eq!(
        safe_file_name("a\u{1}b\u{7f}c\u{9b}d\u{200B}e.txt").unwrap(),
        "a_b_c_d_e.txt"
    );
}

#[test]
fn g4_windows_reserved_names_and_characters_are_replaced() {
    assert_eq!(safe_file_name("con").unwrap(), "_con");
    assert_eq!(safe_file_name("LPT1.tar.gz").unwrap(), "_LPT1.tar.gz");
    assert_eq!(
        safe_file_name("a<b>c:d\"e|f?g*h").unwrap(),
        "a_b_c_d_e_f_g_h"
    );
    assert_eq!(safe_file_name("report.pdf. ").unwrap(), "report.pdf");
    assert_eq!(
        safe_file_name("file.txt:stream").unwrap(),
        "file.txt_stream"
    );
}

#[test]
fn g5_a_long_name_is_cut_at_a_character_boundary_keeping_the_extension() {
    let long = format!("{}.pdf", "ж".repeat(300));
    let ours = safe_file_name(&long).unwrap();
    assert!(ours.len() <= MAX_NAME_BYTES, "{}", ours.len());
    assert!(ours.ends_with("ж.pdf"), "{ours}");
    assert!(MAX_NAME_BYTES + ".part".len() + " (999)".len() <= 255);
}
