//! The arguments of `xft send` and `xft recv`: each takes only the flags that act in it.
//!
//! Shared by both ([`Account`]): how to log in (server, JID, the password's sources,
//! `--plaintext`, `--config`), the S5B budget, the inactivity timeout and `--json`. Only the
//! sender offers streamhosts, picks the method, the proxy, the IBB block size and waits for
//! an answer ([`SendArgs`]); only the receiver dials streamhosts (`--dial`), accepts methods,
//! caps the IBB block size and the file size, filters senders and stores files
//! ([`RecvArgs`]). In SI file transfer the receiver is the S5B target: it offers no
//! streamhost of its own. By Jingle (XEP-0260) a receiver may offer candidates too: `xft recv`
//! offers a direct one only on the addresses `--local-address` names (none by default: an
//! offer from a stranger learns none of this host's addresses); it always races the sender's.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ft_facade::{Method, Stack};

use crate::size;

/// Which addresses `--dial` lets a peer make us connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dial {
    /// Public addresses only.
    Public,
    /// Public and private (LAN) addresses.
    Lan,
    /// Every address, loopback included.
    Any,
}

impl Dial {
    pub(crate) fn policy(self) -> ft_facade::s5b::DialPolicy {
        use ft_facade::s5b::DialPolicy;
        match self {
            Self::Public => DialPolicy::public_only(),
            Self::Lan => DialPolicy::lan(),
            Self::Any => DialPolicy::allow_all(),
        }
    }
}

/// Which stack `xft send` negotiates a transfer with (`--stack`, or `stack` in the config
/// file). `xft recv` takes both, whichever the sender picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StackChoice {
    /// Jingle File Transfer when the peer's disco#info lists it with a transport we share,
    /// else SI (the facade's default preference).
    Auto,
    /// Jingle File Transfer only (XEP-0234 over XEP-0260 S5B or XEP-0261 IBB); a peer
    /// without it fails at the disco stage.
    Jingle,
    /// SI file transfer only (XEP-0095/0096 over XEP-0065 S5B or XEP-0047 IBB).
    Si,
}

impl StackChoice {
    /// The facade's stack preference for this choice.
    pub(crate) fn stacks(self) -> Vec<Stack> {
        match self {
            Self::Auto => ft_facade::Config::default().stacks,
            Self::Jingle => vec![Stack::Jingle],
            Self::Si => vec![Stack::Si],
        }
    }
}

/// How to log in, and what acts on both sides. Every login setting may come from the
/// config file instead (flag > environment > config file).
#[derive(Debug, Args)]
pub(crate) struct Account {
    /// The server's address, `HOST:PORT` (default: `server` in the config file).
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// Our JID; a resource is added by the server if none is given (default: `jid` in the
    /// config file).
    #[arg(long)]
    pub(crate) jid: Option<String>,
    /// The password as an argument: visible to every local user in `ps`, so xft warns;
    /// prefer --password-file, XFT_PASSWORD, the config file or the prompt.
    #[arg(long, conflicts_with = "password_file")]
    pub(crate) password: Option<String>,
    /// Read the password from FILE (its first line; the line end is not part of it).
    /// Then XFT_PASSWORD, then the config file's `password_command` or `password_file`,
    /// then a prompt on a terminal.
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Log in without TLS; refused unless the server address is loopback.
    #[arg(long)]
    pub(crate) plaintext: bool,
    /// The config file (default: `$XDG_CONFIG_HOME/xft/config.toml`, else
    /// `~/.config/xft/config.toml`, read when it exists).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The budget for every SOCKS5 attempt together before falling back to IBB (default 20;
    /// the sender's proxy discovery and activation, the receiver's dials).
    #[arg(long, value_name = "SECS", value_parser = size::parse_secs)]
    pub(crate) s5b_budget: Option<Duration>,
    /// Give a transfer up when no data has moved for this long (default 60).
    #[arg(long, value_name = "SECS", value_parser = size::parse_secs)]
    pub(crate) inactivity_timeout: Option<Duration>,
    /// Print one JSON object per transfer on stdout (docs/json.md); no progress bar.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `xft send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) account: Account,
    /// The receiver's full JID.
    #[arg(long)]
    pub(crate) to: String,
    /// The stack: `auto` (Jingle File Transfer when the peer's disco#info lists it, else SI),
    /// `jingle` or `si` (default: `stack` in the config file, else auto).
    #[arg(long, value_enum)]
    pub(crate) stack: Option<StackChoice>,
    /// Method: auto, s5b, s5b-direct, s5b-proxy, ibb, ibb-iq, ibb-message.
    #[arg(long, default_value = "auto")]
    pub(crate) method: String,
    /// A SOCKS5 proxy JID to offer (default: discover on our server).
    #[arg(long)]
    pub(crate) proxy: Option<String>,
    /// Addresses our own streamhost listens on and offers (repeatable; default: this
    /// host's non-loopback addresses).
    #[arg(long = "local-address")]
    pub(crate) local_addresses: Vec<IpAddr>,
    /// IBB block size, used for every chunk (default: open at 65535 and pick the chunk
    /// size from the acknowledgement rate; opens the peer refuses as too large are retried
    /// at the power of two below).
    #[arg(long)]
    pub(crate) block_size: Option<u16>,
    /// How long a sent offer waits for the peer's answer (seconds, or `5m`; default 300).
    #[arg(long, value_name = "SECS", value_parser = size::parse_secs)]
    pub(crate) offer_timeout: Option<Duration>,
    /// Files to send.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

/// `xft recv`.
#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    pub(crate) account: Account,
    /// Where received files go (default: `dir` in the config file, else `.`).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Stop after this many transfers (default: run until interrupted).
    #[arg(long)]
    pub(crate) count: Option<usize>,
    /// Accept offers only from these JIDs (repeatable; a bare JID takes any resource;
    /// default: anyone).
    #[arg(long = "from")]
    pub(crate) from: Vec<String>,
    /// Decline offers larger than this (`1GiB`, …) with `forbidden`.
    #[arg(long, value_parser = size::parse)]
    pub(crate) max_size: Option<u64>,
    /// Overwrite existing files (default: a free name next to them).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// The methods we accept, in order of preference (`s5b,ibb`, the default; `ibb`
    /// alone never dials a streamhost).
    #[arg(long = "accept-method", value_name = "METHOD", value_delimiter = ',', value_parser = parse_method)]
    pub(crate) accept_methods: Vec<Method>,
    /// The largest IBB block size we accept; a larger `<open/>` is answered
    /// `resource-constraint` so the sender retries smaller (default 65535).
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_block_size: Option<u16>,
    /// Which streamhost addresses a sender's offer may make us dial: `public` (default:
    /// never this host, the LAN, link-local, multicast or reserved ranges, nor their
    /// IPv4-mapped, NAT64 or 6to4 forms), `lan` (public and private ranges), `any` (this
    /// host too: tests, same-host transfers). Default: `dial` in the config file, else public.
    #[arg(long, value_enum)]
    pub(crate) dial: Option<Dial>,
    /// Jingle only: addresses our own S5B candidate listens on and offers to a sender
    /// (repeatable; default: none, we only dial the sender's candidates and proxies).
    #[arg(long = "local-address")]
    pub(crate) local_addresses: Vec<IpAddr>,
    /// Jingle only: serve this file to a peer that requests it (XEP-0234 pull) by its file
    /// name or SHA-256 (repeatable; `--from` applies). Every other request is declined with
    /// `<failed-application/>`. Default: none (every request is declined).
    #[arg(long = "serve", value_name = "FILE")]
    pub(crate) serve: Vec<PathBuf>,
    /// Jingle only: instead of waiting for offers, ask the one full JID `--from` names for
    /// this file by name and receive it into `--dir` (XEP-0234 pull; repeatable, in turn).
    #[arg(long = "get", value_name = "NAME", conflicts_with_all = ["serve", "count"])]
    pub(crate) get: Vec<String>,
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse::<Method>().map_err(|e| e.to_string())
}

/// What both sides set from [`Account`].
fn shared_config(account: &Account) -> ft_facade::Config {
    let mut c = ft_facade::Config::default();
    if let Some(t) = account.s5b_budget {
        c.s5b_budget(t);
    }
    if let Some(t) = account.inactivity_timeout {
        c.inactivity_timeout = t;
    }
    c
}

impl SendArgs {
    /// The facade's config for sending, with `stack` (`--stack` or the config file's, see
    /// [`crate::settings::stack`]).
    pub(crate) fn facade_config(
        &self,
        stack: StackChoice,
    ) -> Result<ft_facade::Config, crate::BoxError> {
        use ft_facade::ProxySource;
        let mut c = shared_config(&self.account);
        c.stacks(&stack.stacks());
        crate::method::MethodSpec::parse(&self.method)?.apply_to_config(&mut c);
        if let Some(b) = self.block_size {
            c.block_size(b);
        }
        c.proxies(match &self.proxy {
            Some(p) => ProxySource::Jids(vec![p.parse::<jid::Jid>()?]),
            None => ProxySource::Discover,
        });
        if !self.local_addresses.is_empty() {
            c.s5b.listen(self.local_addresses.clone());
        }
        if let Some(t) = self.offer_timeout {
            c.offer_timeout = t;
        }
        Ok(c)
    }
}

impl RecvArgs {
    /// The methods we accept, in order (default `s5b,ibb`).
    pub(crate) fn methods(&self) -> Vec<Method> {
        if self.accept_methods.is_empty() {
            vec![Method::S5b, Method::Ibb]
        } else {
            self.accept_methods.clone()
        }
    }

    /// The facade's config for receiving; `dial` is `--dial` or the config file's.
    pub(crate) fn facade_config(&self, dial: Dial) -> ft_facade::Config {
        let mut c = shared_config(&self.account);
        c.methods(&self.methods());
        if let Some(max) = self.max_size {
            c.policy(ft_facade::Policy::default().with_max_size(max));
        }
        if let Some(b) = self.max_block_size {
            c.ibb.max_block_size(b);
        }
        c.s5b.dial_policy(dial.policy());
        // None (not this host's addresses) unless named: see the module docs.
        c.s5b.listen = (!self.local_addresses.is_empty()).then(|| self.local_addresses.clone());
        c
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
