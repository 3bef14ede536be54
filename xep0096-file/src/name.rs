//! Safe local names for a peer's file name.

use crate::error::NameError;

/// The longest name [`safe_file_name`] returns, in bytes: the usual 255-byte limit of a
/// file name, less 5 for the `.part` suffix the receiver writes first and 6 for a
/// ` (nnn)` collision suffix, so every name the receiver derives still fits.
pub const MAX_NAME_BYTES: usize = 255 - 5 - 6;

/// Windows device names, reserved with any extension and in any case.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "COM¹", "COM²", "COM³", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
    "LPT9", "LPT¹", "LPT²", "LPT³", "CONIN$", "CONOUT$",
];

/// The longest extension kept whole when a name is shortened.
const MAX_KEPT_EXTENSION: usize = 16;

/// Turns the `name` a peer offered into a name that is safe to create inside the target
/// directory on Linux, macOS and Windows. It never yields a path: the result has no
/// separator, is never `.` or `..`, and so always stays in the directory it is joined to.
///
/// The rules, in order:
///
/// 1. a NUL anywhere is refused ([`NameError::Nul`]): no honest client sends one;
/// 2. only the last component after `/` or `\` is kept (`../../etc/passwd` → `passwd`,
///    `C:\Users\x\a.txt` → `a.txt`), and a last component of `.` or `..` is refused
///    ([`NameError::DotName`]);
/// 3. control characters (C0, DEL, C1) and the characters Windows forbids (`<>:"|?*`, so a
///    drive letter `C:` too) become `_`;
/// 4. leading spaces and dots are dropped (no hidden files, no `..x` games), and trailing
///    spaces and dots too (Windows strips them, which would change the name);
/// 5. nothing left is refused ([`NameError::Empty`]);
/// 6. a Windows reserved device name (`CON`, `nul.txt`, `COM1.tar.gz`, …) gets a `_`
///    prefix;
/// 7. a name longer than [`MAX_NAME_BYTES`] is cut at a character boundary, keeping the
///    extension (up to 16 bytes) intact.
///
/// ```
/// use xep0096_file::safe_file_name;
/// assert_eq!(safe_file_name("../../.ssh/authorized_keys").unwrap(), "authorized_keys");
/// assert_eq!(safe_file_name("C:\\boot.ini").unwrap(), "boot.ini");
/// assert_eq!(safe_file_name("nul.txt").unwrap(), "_nul.txt");
/// assert!(safe_file_name("..").is_err());
/// ```
pub fn safe_file_name(name: &str) -> Result<String, NameError> {
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if last == "." || last == ".." {
        return Err(NameError::DotName(name.to_owned()));
    }
    let replaced: String = last
        .chars()
        .map(|c| {
            if c.is_control()
                || is_invisible_or_bidi(c)
                || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = replaced
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return Err(NameError::Empty(name.to_owned()));
    }
    let mut out = trimmed.to_owned();
    let stem = out.split('.').next().unwrap_or("").trim_end();
    if RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem) || *r == stem.to_uppercase())
    {
        out.insert(0, '_');
    }
    Ok(shorten(out, MAX_NAME_BYTES))
}

/// Bidi controls and zero-width characters: `invoice\u{202E}fdp.exe` shows as
/// `invoiceexe.pdf`, and invisible characters make two names look alike (BAD-INPUT G3).
fn is_invisible_or_bidi(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{061C}' // Arabic letter mark
        | '\u{FEFF}' // zero-width no-break space
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Cuts `name` to at most `max` bytes, keeping a short extension.
pub(crate) fn shorten(name: String, max: usize) -> String {
    if name.len() <= max {
        return name;
    }
    let ext_len = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= MAX_KEPT_EXTENSION => name.len() - dot,
        _ => 0,
    };
    let (stem, ext) = name.split_at(name.len() - ext_len);
    let keep = floor_char_boundary(stem, max - ext_len);
    let stem = stem[..keep].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    format!("{stem}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_replaced() {
        // U+202E makes "invoice\u{202E}fdp.exe" display as "invoiceexe.pdf".
        assert_eq!(
            safe_file_name("invoice\u{202E}fdp.exe").unwrap(),
            "invoice_fdp.exe"
        );
        assert_eq!(
            safe_file_name("a\u{200B}b\u{FEFF}.txt").unwrap(),
            "a_b_.txt"
        );
        assert_eq!(
            safe_file_name("x\u{2066}y\u{2069}.png").unwrap(),
            "x_y_.png"
        );
        // Ordinary non-ASCII is kept.
        assert_eq!(safe_file_name("ünïcødé ✓.bin").unwrap(), "ünïcødé ✓.bin");
    }

    #[test]
    fn traversal_names_keep_only_the_last_component() {
        assert_eq!(safe_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(safe_file_name("/etc/shadow").unwrap(), "shadow");
        assert_eq!(
            safe_file_name("..\\..\\Windows\\win.ini").unwrap(),
            "win.ini"
        );
        assert_eq!(
            safe_file_name("C:\\Windows\\System32\\x.dll").unwrap(),
            "x.dll"
        );
        assert_eq!(safe_file_name("a/..\\b.txt").unwrap(), "b.txt");
    }

    #[test]
    fn dot_names_are_refused() {
        assert_eq!(safe_file_name(".."), Err(NameError::DotName("..".into())));
        assert_eq!(
            safe_file_name("a/.."),
            Err(NameError::DotName("a/..".into()))
        );
        assert_eq!(safe_file_name("."), Err(NameError::DotName(".".into())));
    }

    #[test]
    fn empty_names_are_refused() {
        for n in ["", "   ", "dir/", "...", " . ", "x\\"] {
            assert_eq!(safe_file_name(n), Err(NameError::Empty(n.into())), "{n:?}");
        }
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(safe_file_name("a\0.txt"), Err(NameError::Nul));
    }

    #[test]
    fn drive_letters_and_control_characters_become_underscores() {
        assert_eq!(safe_file_name("C:evil.txt").unwrap(), "C_evil.txt");
        assert_eq!(
            safe_file_name("a\nb\u{7f}c\u{85}d.txt").unwrap(),
            "a_b_c_d.txt"
        );
        assert_eq!(safe_file_name("what?<*>|\".txt").unwrap(), "what______.txt");
    }

    #[test]
    fn hidden_and_trailing_dots_are_dropped() {
        assert_eq!(safe_file_name(".bashrc").unwrap(), "bashrc");
        assert_eq!(safe_file_name("report.pdf. . ").unwrap(), "report.pdf");
    }

    #[test]
    fn windows_reserved_names_get_a_prefix() {
        assert_eq!(safe_file_name("CON").unwrap(), "_CON");
        assert_eq!(safe_file_name("nul.txt").unwrap(), "_nul.txt");
        assert_eq!(safe_file_name("Com1.tar.gz").unwrap(), "_Com1.tar.gz");
        assert_eq!(safe_file_name("lpt9 .txt").unwrap(), "_lpt9 .txt");
        assert_eq!(safe_file_name("CONSOLE.txt").unwrap(), "CONSOLE.txt");
        assert_eq!(safe_file_name("com10").unwrap(), "com10");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.tar.gz", "a".repeat(400));
        let s = safe_file_name(&long).unwrap();
        assert_eq!(s.len(), MAX_NAME_BYTES);
        assert!(s.ends_with("a.gz"), "{s}");
        // Multi-byte characters are never split.
        let long = format!("{}.txt", "é".repeat(300));
        let s = safe_file_name(&long).unwrap();
        assert!(s.len() <= MAX_NAME_BYTES);
        assert!(s.ends_with("é.txt"));
    }

    #[test]
    fn ordinary_names_are_unchanged() {
        for n in [
            "File (2).pdf",
            "img0545.png",
            "Chrysanthemum.jpg",
            "公共房间.txt",
            "RunSpark.lnk",
        ] {
            assert_eq!(safe_file_name(n).unwrap(), n);
        }
    }
}
