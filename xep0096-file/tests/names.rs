//! Property tests: whatever name a peer sends, the result stays inside the directory.

use std::path::{Component, Path};

use proptest::prelude::*;
use xep0096_file::{MAX_NAME_BYTES, safe_file_name};

fn hostile_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("C:".to_owned()),
        Just("CON".to_owned()),
        Just("nul".to_owned()),
        Just(" ".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{1b}".to_owned()),
        Just("é".to_owned()),
        Just(".txt".to_owned()),
        "[a-zA-Z0-9 ._-]{0,20}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn a_safe_name_never_leaves_the_directory(name in hostile_name()) {
        if let Ok(safe) = safe_file_name(&name) {
            prop_assert!(!safe.is_empty());
            prop_assert!(safe.len() <= MAX_NAME_BYTES);
            prop_assert!(!safe.contains(['/', '\\', '\0', ':']));
            prop_assert!(!safe.chars().any(char::is_control));
            prop_assert!(!safe.starts_with('.'));
            prop_assert!(!safe.ends_with(['.', ' ']));
            let dir = Path::new("/srv/incoming");
            let joined = dir.join(&safe);
            prop_assert_eq!(joined.parent(), Some(dir));
            let comps: Vec<_> = Path::new(&safe).components().collect();
            prop_assert_eq!(comps.len(), 1);
            prop_assert!(matches!(comps[0], Component::Normal(_)));
            // Idempotent: a safe name stays as it is.
            let again = safe_file_name(&safe);
            prop_assert_eq!(again.as_deref(), Ok(safe.as_str()));
        }
    }

    #[test]
    fn any_unicode_never_panics(name in any::<String>()) {
        let _ = safe_file_name(&name);
    }
}
