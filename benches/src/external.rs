//! The cases that need a real server or peer: Prosody (its proxy65, its own stanza relay
//! rate measured with a minimal raw client, our IBB through it) and slixmpp.

use crate::report::{Case, Outcome, Versions};
use crate::suite::Options;

/// Runs every external case, appending to `cases`.
pub async fn run_all(cases: &mut Vec<Case>, opts: &Options, versions: &mut Versions) {
    let _ = (opts, versions);
    let spec = crate::measure::Spec {
        id: "external/prosody-and-slixmpp".to_owned(),
        group: "server",
        method: "Prosody and slixmpp cases".to_owned(),
        implementation: "prosody",
        path: "prosody",
        block_size: None,
        bytes: 0,
        ceiling: None,
        note: None,
    };
    cases.push(spec.without_runs(Outcome::Skipped(
        "not wired yet: waiting for ft-testkit's Prosody launcher".to_owned(),
    )));
}
