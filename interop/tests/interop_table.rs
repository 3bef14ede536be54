//! Prints the interop table (README) from the rows the interop tests appended to
//! `target/interop-table/rows.jsonl`, and writes it to `target/interop-table/TABLE.md`:
//!
//! ```text
//! rm -f target/interop-table/rows.jsonl
//! cargo test -p interop --test purple --test qxmpp --test slixmpp
//! cargo test -p interop --test interop_table -- --ignored --nocapture
//! ```

mod common {
    pub mod xftcli;
}

#[test]
#[ignore = "prints the table from the rows of the tests that ran; run it after them"]
fn print_interop_table() {
    let table = common::xftcli::render_table();
    let path = common::xftcli::table_dir().join("TABLE.md");
    std::fs::create_dir_all(common::xftcli::table_dir()).unwrap();
    std::fs::write(&path, &table).unwrap();
    println!("{table}");
    println!("(written to {})", path.display());
}
