//! `docs/bad-input.md` maps every item of the bad-input catalogue to a test named after it.
//!
//! The catalogue's ids come from `../shared/BAD-INPUT.md` beside the repository when it is
//! there (CI has it), otherwise from [`EMBEDDED_IDS`]. The test fails when an id has no row,
//! when a row names no test, when a named test does not start with its id and `_`, when the
//! named file has no `fn <name>`, or when a row says TODO (except, until the lead merges the
//! owners' work, the ids in [`AWAITING_MERGE`]). The J section (Jingle and XEP-0300) is
//! not in the catalogue: its ids are the rows `docs/bad-input.md` has, checked the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The catalogue's ids, for checkouts without `../shared/BAD-INPUT.md`.
const EMBEDDED_IDS: &[(char, u32)] = &[
    ('A', 5),
    ('B', 12),
    ('C', 10),
    ('D', 13),
    ('E', 13),
    ('F', 14),
    ('G', 11),
    ('H', 6),
    ('I', 5),
];

/// Items whose tests are written by other helpers in parallel: their rows may still say
/// `TODO(owner)`. The lead empties this list when merging their work; from then on a TODO
/// anywhere fails this test.
const AWAITING_MERGE: &[&str] = &[];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// The ids of the catalogue: every `- X9 ` bullet of `../shared/BAD-INPUT.md`, or the
/// embedded list.
fn catalogue_ids(root: &Path) -> (Vec<String>, &'static str) {
    let shared = root.join("../shared/BAD-INPUT.md");
    if let Ok(text) = std::fs::read_to_string(&shared) {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("- "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| is_id(w))
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            return (ids, "../shared/BAD-INPUT.md");
        }
    }
    let ids = EMBEDDED_IDS
        .iter()
        .flat_map(|&(group, n)| (1..=n).map(move |i| format!("{group}{i}")))
        .collect();
    (ids, "the embedded list")
}

fn is_id(w: &str) -> bool {
    let mut c = w.chars();
    matches!(c.next(), Some('A'..='J'))
        && !c.as_str().is_empty()
        && c.as_str().bytes().all(|b| b.is_ascii_digit())
}

/// The map's rows: id → the row's text.
fn rows(map: &str) -> BTreeMap<String, String> {
    map.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // "| A1 | ... |" splits into ["", "A1", ..., ""].
            let id = cells.get(1)?;
            is_id(id).then(|| ((*id).to_owned(), l.to_owned()))
        })
        .collect()
}

/// The tests a row names: every `` `path.rs::name` `` in its last cell.
fn named_tests(row: &str) -> Vec<(String, String)> {
    let cells: Vec<&str> = row.split('|').collect();
    let last = cells.iter().rev().find(|c| !c.trim().is_empty()).copied();
    let last = last.unwrap_or("");
    last.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|t| t.split_once("::"))
        .map(|(p, n)| (p.to_owned(), n.to_owned()))
        .collect()
}

#[test]
fn every_catalogue_item_is_mapped_to_existing_tests_named_after_it() {
    let root = repo_root();
    let (ids, source) = catalogue_ids(&root);
    let map_path = root.join("docs/bad-input.md");
    let map = std::fs::read_to_string(&map_path)
        .unwrap_or_else(|e| panic!("{}: {e}", map_path.display()));
    let rows = rows(&map);
    // Section J (Jingle and XEP-0300) is defined by docs/bad-input.md itself, not by the
    // shared catalogue: its rows are checked like the others.
    let mut ids = ids;
    ids.extend(
        rows.keys()
            .filter(|id| id.starts_with('J') && !ids.contains(id))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut problems = Vec::new();
    let mut awaiting = Vec::new();
    for id in &ids {
        let Some(row) = rows.get(id) else {
            problems.push(format!("{id}: no row in docs/bad-input.md"));
            continue;
        };
        if row.contains("TODO") {
            if AWAITING_MERGE.contains(&id.as_str()) {
                awaiting.push(id.clone());
            } else {
                problems.push(format!("{id}: the row still says TODO"));
            }
            continue;
        }
        let tests = named_tests(row);
        if tests.is_empty() {
            problems.push(format!("{id}: the row names no test"));
        }
        let prefix = format!("{}_", id.to_lowercase());
        for (path, name) in tests {
            if !name.starts_with(&prefix) {
                problems.push(format!("{id}: {path}::{name} does not start with {prefix}"));
            }
            match std::fs::read_to_string(root.join(&path)) {
                Err(e) => problems.push(format!("{id}: {path}: {e}")),
                Ok(src) => {
                    let found = src.match_indices(&format!("fn {name}")).any(|(i, m)| {
                        let after = src[i + m.len()..].chars().next();
                        !matches!(after, Some(c) if c.is_alphanumeric() || c == '_')
                    });
                    if !found {
                        problems.push(format!("{id}: {path} has no fn {name}"));
                    }
                }
            }
        }
    }
    // Section J (Jingle and XEP-0300) is numbered in docs/bad-input.md itself, not in the
    // shared catalogue: its rows are checked like the others but need no catalogue id.
    for (id, row) in rows.iter().filter(|(id, _)| id.starts_with('J')) {
        let tests = named_tests(row);
        if tests.is_empty() || row.contains("TODO") {
            problems.push(format!("{id}: the row names no test or says TODO"));
        }
        let prefix = format!("{}_", id.to_lowercase());
        for (path, name) in tests {
            let found = std::fs::read_to_string(root.join(&path))
                .is_ok_and(|src| src.contains(&format!("fn {name}(")));
            if !name.starts_with(&prefix) || !found {
                problems.push(format!(
                    "{id}: {path}::{name} missing or not named {prefix}..."
                ));
            }
        }
    }
    for id in rows.keys().filter(|id| !id.starts_with('J')) {
        if !ids.contains(id) {
            problems.push(format!("{id}: a row for an id the catalogue does not have"));
        }
    }
    if !awaiting.is_empty() {
        eprintln!(
            "rows still TODO, allowed until their owners' work is merged (AWAITING_MERGE): {}",
            awaiting.join(", ")
        );
    }
    assert!(
        problems.is_empty(),
        "docs/bad-input.md against {source} ({} ids):\n{}",
        ids.len(),
        problems.join("\n")
    );
}

#[test]
fn the_embedded_ids_match_the_catalogue_when_it_is_present() {
    let root = repo_root();
    let (ids, source) = catalogue_ids(&root);
    if source == "the embedded list" {
        return;
    }
    let embedded: Vec<String> = EMBEDDED_IDS
        .iter()
        .flat_map(|&(group, n)| (1..=n).map(move |i| format!("{group}{i}")))
        .collect();
    assert_eq!(ids, embedded, "update EMBEDDED_IDS to the catalogue");
}
