#![no_main]

//! Whatever name a peer sends, the name we write under stays one plain component of the
//! target directory.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    if let Ok(safe) = xep0096_file::safe_file_name(&name) {
        assert!(!safe.is_empty(), "{name:?} -> empty");
        assert!(
            safe.len() <= xep0096_file::MAX_NAME_BYTES,
            "{name:?} -> too long"
        );
        assert!(safe != "." && safe != "..", "{name:?} -> {safe:?}");
        assert!(!safe.contains(['/', '\\', '\0']), "{name:?} -> {safe:?}");
        assert!(!safe.chars().any(char::is_control), "{name:?} -> {safe:?}");
        let path = std::path::Path::new("dir").join(&safe);
        assert_eq!(path.parent(), Some(std::path::Path::new("dir")), "{safe:?}");
    }
});
