//! `xft proxy`: the XEP-0065 proxy as a XEP-0114 component.

use std::process::ExitCode;

use crate::{BoxError, ProxyArgs};

pub(crate) async fn run(_args: ProxyArgs) -> Result<ExitCode, BoxError> {
    Err("proxy needs ft_transport::xmpp::connect_component, which has not landed yet".into())
}
