//! `xft proxy`: the XEP-0065 proxy as a XEP-0114 component.

use std::process::ExitCode;

use ft_transport::pump_refusing;
use ft_transport::xmpp::{ComponentOptions, connect_component_with};
use jid::BareJid;
use xep0065_proxy::{Proxy, ProxyConfig};

use crate::{BoxError, ProxyArgs};

/// The domain a component's users usually live on: `proxy.example.org` → `example.org`.
fn parent_domain(component: &str) -> String {
    match component.split_once('.') {
        Some((_, rest)) if rest.contains('.') || rest == "localhost" => rest.to_owned(),
        _ => component.to_owned(),
    }
}

/// The component link carries activations in plaintext: an on-path attacker could inject
/// them. Only loopback, or a path the user vouches for.
fn check_link(addr: &std::net::SocketAddr, protected: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || protected {
        Ok(())
    } else {
        Err(format!(
            "--server {addr} is not loopback: the XEP-0114 link is plaintext (activations \
             could be injected on the way); run the proxy on the server's host, or tunnel the \
             link and pass --link-is-protected"
        ))
    }
}

pub(crate) async fn run(args: ProxyArgs) -> Result<ExitCode, BoxError> {
    // Every relay holds two sockets (and two pipes while it moves data): the common soft
    // limit of 1024 descriptors would cap the proxy at a few hundred relays.
    match xep0065_proxy::raise_fd_limit() {
        Ok(Some(n)) => eprintln!("xft proxy: file descriptor limit {n}"),
        Ok(None) => {}
        Err(e) => eprintln!("xft proxy: cannot raise the file descriptor limit: {e}"),
    }
    let jid: BareJid = args.component_jid.parse()?;
    let addr = tokio::net::lookup_host(&args.server)
        .await?
        .next()
        .ok_or_else(|| format!("--server {} does not resolve", args.server))?;
    check_link(&addr, args.link_is_protected)?;
    let mut pc = ProxyConfig::new(jid.clone().into());
    pc.listen = args.listen.clone();
    pc.allowed_domains = if args.allow_domains.is_empty() {
        vec![parent_domain(jid.as_str())]
    } else {
        args.allow_domains.clone()
    };
    if let Some(n) = args.max_per_jid {
        pc.max_relays_per_jid = n;
    }
    pc.bandwidth_limit = args.rate;
    let proxy = Proxy::bind(pc.clone()).await?;
    let mut options = ComponentOptions::new(jid.clone(), args.secret.clone(), addr);
    options.xml_log = crate::log::xml_log();
    let (transport, inbound) = connect_component_with(options).await?;
    proxy.serve(transport.clone());
    eprintln!(
        "xft proxy: {} online at {addr}, streamhosts {}, allowed domains {}",
        jid,
        proxy
            .streamhosts()
            .iter()
            .map(|s| format!("{}:{}", s.host, s.port))
            .collect::<Vec<_>>()
            .join(", "),
        pc.allowed_domains.join(", ")
    );
    // Requests the proxy does not take are refused `service-unavailable`, from the JID
    // they were sent to.
    pump_refusing(inbound, |s| proxy.handle_stanza(s), &transport).await;
    Err("the component stream closed".into())
}

#[cfg(test)]
mod tests {
    use super::{check_link, parent_domain};

    #[test]
    fn the_component_link_is_refused_off_loopback_unless_said_protected() {
        // A pure check: nothing is dialled.
        let off: std::net::SocketAddr = "192.0.2.7:5347".parse().unwrap();
        let e = check_link(&off, false).unwrap_err();
        assert!(e.contains("--link-is-protected"), "{e}");
        assert!(check_link(&off, true).is_ok());
        assert!(check_link(&"127.0.0.1:5347".parse().unwrap(), false).is_ok());
        assert!(check_link(&"[::1]:5347".parse().unwrap(), false).is_ok());
    }

    #[test]
    fn the_default_allowed_domain_is_the_components_parent() {
        assert_eq!(parent_domain("proxy.example.org"), "example.org");
        assert_eq!(parent_domain("proxy.localhost"), "localhost");
        assert_eq!(parent_domain("localhost"), "localhost");
    }
}
