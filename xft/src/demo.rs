//! `xft demo`: two entities on the in-memory hub, our proxy on loopback, every method.

use std::process::ExitCode;

use crate::{BoxError, DemoArgs};

pub(crate) async fn run(_args: DemoArgs) -> Result<ExitCode, BoxError> {
    Err("the demo is not wired yet".into())
}
