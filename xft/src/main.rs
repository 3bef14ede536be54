//! `xft`: XMPP file transfer from the command line (SI file transfer, XEP-0096, over SOCKS5
//! Bytestreams, XEP-0065, and In-Band Bytestreams, XEP-0047).
//!
//! ```text
//! cargo run --release -p xft -- demo                      # no server: every method, verified
//! xft send --server 127.0.0.1:5222 --plaintext --jid alice@localhost --to bob@localhost/x FILE
//! xft recv --server 127.0.0.1:5222 --plaintext --jid bob@localhost/x --dir inbox --count 1
//! xft proxy --server 127.0.0.1:5347 --component-jid proxy.localhost --secret S --listen 127.0.0.1:7777
//! xft bench --quick                                       # with --features bench
//! ```
//!
//! The password comes from `--password` or `XFT_PASSWORD`; `--plaintext` is refused unless
//! the server address is loopback. `--json` prints one result object per transfer (method,
//! bytes, seconds, MB/s, sha256, streamhost, fallback, error and stage).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod demo;
mod log;
mod method;
mod net;
mod proxy;
mod report;
mod size;

/// An error for the command's top level.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// XMPP file transfer: SI (XEP-0095/0096) over SOCKS5 (XEP-0065) and IBB (XEP-0047).
#[derive(Debug, Parser)]
#[command(name = "xft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: log::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Two entities and a proxy in one process, one file by every method, verified; no server.
    Demo(DemoArgs),
    /// Send files to a peer through a real server.
    Send(SendArgs),
    /// Receive files through a real server.
    Recv(RecvArgs),
    /// Run the SOCKS5 proxy (XEP-0065) as a XEP-0114 component.
    Proxy(ProxyArgs),
    /// The throughput benchmarks (the benches crate's suite; build with `--features bench`).
    Bench(BenchArgs),
}

/// `xft bench`.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Small sizes, one run per case.
    #[arg(long)]
    quick: bool,
    /// Only the in-process cases (no Prosody, no slixmpp).
    #[arg(long)]
    in_process: bool,
    /// Where to write results.json, latest.md and index.html.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Print the table only.
    #[arg(long)]
    no_write: bool,
}

/// `xft demo`.
#[derive(Debug, Args)]
struct DemoArgs {
    /// Size of the generated file (`64MiB`, `4MiB`, `100000`, `10MB`).
    #[arg(long, default_value = "64MiB", value_parser = size::parse)]
    size: u64,
    /// Only these methods (repeatable): s5b-direct, s5b-proxy, ibb-iq, ibb-message.
    #[arg(long = "method")]
    methods: Vec<String>,
    /// IBB block size (default: the one IBB default, 4096).
    #[arg(long, default_value_t = ft_facade::ibb::DEFAULT_BLOCK_SIZE)]
    block_size: u16,
    /// Print one JSON object per transfer instead of the table.
    #[arg(long)]
    json: bool,
}

/// Which addresses `--dial` lets a peer make us connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Dial {
    /// Public addresses only.
    Public,
    /// Public and private (LAN) addresses.
    Lan,
    /// Every address, loopback included.
    Any,
}

impl Dial {
    fn policy(self) -> ft_facade::s5b::DialPolicy {
        use ft_facade::s5b::DialPolicy;
        match self {
            Self::Public => DialPolicy::public_only(),
            Self::Lan => DialPolicy::lan(),
            Self::Any => DialPolicy::allow_all(),
        }
    }
}

/// Connection settings shared by `send` and `recv`.
#[derive(Debug, Args)]
struct Account {
    /// The server's address, `HOST:PORT`.
    #[arg(long)]
    server: String,
    /// Our JID (a resource is added by the server if none is given).
    #[arg(long)]
    jid: String,
    /// The password (or the environment variable `XFT_PASSWORD`).
    #[arg(long, env = "XFT_PASSWORD", hide_env_values = true)]
    password: String,
    /// Log in without TLS; refused unless the server address is loopback.
    #[arg(long)]
    plaintext: bool,
    /// Method: auto, s5b, s5b-direct, s5b-proxy, ibb, ibb-iq, ibb-message.
    #[arg(long, default_value = "auto")]
    method: String,
    /// A SOCKS5 proxy JID to use (default: discover on our server).
    #[arg(long)]
    proxy: Option<String>,
    /// Addresses our own streamhost listens on and offers (repeatable; default: this
    /// host's non-loopback addresses).
    #[arg(long = "local-address")]
    local_addresses: Vec<IpAddr>,
    /// Which streamhost addresses a peer's offer may make us dial: `public` (default: never
    /// this host, the LAN, link-local, multicast or reserved ranges, nor their IPv4-mapped,
    /// NAT64 or 6to4 forms), `lan` (public and private ranges), `any` (this host too: tests,
    /// same-host transfers).
    #[arg(long, value_enum, default_value_t = Dial::Public)]
    dial: Dial,
    /// IBB block size (default: the one IBB default, 4096; larger opens that the peer
    /// refuses are retried at half the size).
    #[arg(long, default_value_t = ft_facade::ibb::DEFAULT_BLOCK_SIZE)]
    block_size: u16,
    /// How long a sent offer waits for the peer's answer (seconds, or `5m`; default 300).
    #[arg(long, value_name = "SECS", value_parser = size::parse_secs)]
    offer_timeout: Option<std::time::Duration>,
    /// The budget for every SOCKS5 attempt together before falling back to IBB (default 20).
    #[arg(long, value_name = "SECS", value_parser = size::parse_secs)]
    s5b_budget: Option<std::time::Duration>,
    /// Give a transfer up when no data has moved for this long (default 60).
    #[arg(long, value_name = "SECS", value_parser = size::parse_secs)]
    inactivity_timeout: Option<std::time::Duration>,
    /// Print one JSON result object per transfer.
    #[arg(long)]
    json: bool,
}

/// `xft send`.
#[derive(Debug, Args)]
struct SendArgs {
    #[command(flatten)]
    account: Account,
    /// The receiver's full JID.
    #[arg(long)]
    to: String,
    /// Files to send.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// `xft recv`.
#[derive(Debug, Args)]
struct RecvArgs {
    #[command(flatten)]
    account: Account,
    /// Where received files go.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Stop after this many transfers (default: run until interrupted).
    #[arg(long)]
    count: Option<usize>,
    /// Accept offers only from these JIDs (repeatable; default: anyone).
    #[arg(long = "from")]
    from: Vec<String>,
    /// Decline offers larger than this (`1GiB`, …).
    #[arg(long, value_parser = size::parse)]
    max_size: Option<u64>,
    /// Overwrite existing files.
    #[arg(long)]
    overwrite: bool,
}

/// `xft proxy`.
#[derive(Debug, Args)]
struct ProxyArgs {
    /// The server's component port, `HOST:PORT`.
    #[arg(long)]
    server: String,
    /// The component's JID, for example `proxy.example.org`.
    #[arg(long)]
    component_jid: String,
    /// The component secret.
    #[arg(long, env = "XFT_COMPONENT_SECRET", hide_env_values = true)]
    secret: String,
    /// Addresses to listen on and announce (repeatable).
    #[arg(long = "listen", required = true)]
    listen: Vec<SocketAddr>,
    /// Domains whose users may use the proxy (repeatable; default: the component's parent
    /// domain).
    #[arg(long = "allow-domain")]
    allow_domains: Vec<String>,
    /// Maximum simultaneous connections per JID.
    #[arg(long)]
    max_per_jid: Option<usize>,
    /// Bandwidth cap per relay, bytes per second (`10MB`, …).
    #[arg(long, value_parser = size::parse)]
    rate: Option<u64>,
    /// The XEP-0114 link is plaintext (the handshake is a SHA-1 of the secret, the stanzas,
    /// activations included, travel in the clear): it is refused to a non-loopback server
    /// unless this says the path is protected (same host, a VPN, an SSH tunnel).
    #[arg(long)]
    link_is_protected: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = cli.log.init() {
        eprintln!("xft: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xft: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Send(args) => net::send(args).await,
            Command::Recv(args) => net::recv(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::Bench(args) => bench(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xft: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "bench")]
fn bench(args: BenchArgs) -> Result<ExitCode, BoxError> {
    let mut opts = if args.quick {
        benches::suite::Options::quick()
    } else {
        benches::suite::Options::default()
    };
    opts.in_process_only = args.in_process;
    opts.command = std::env::args().collect::<Vec<_>>().join(" ");
    // The suite runs on its own runtime on its own thread, so calling it from ours is fine.
    let report = benches::suite::run(opts)?;
    print!("{}", benches::render::markdown(&report));
    if !args.no_write {
        benches::render::write_all(&report, &args.out)?;
        eprintln!(
            "wrote {}/{{results.json,latest.md,index.html}}",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "bench"))]
fn bench(args: BenchArgs) -> Result<ExitCode, BoxError> {
    let mut cmd = String::from("cargo run --release -p benches --bin transfer --");
    if args.quick {
        cmd.push_str(" --quick");
    }
    if args.in_process {
        cmd.push_str(" --in-process");
    }
    if args.no_write {
        cmd.push_str(" --no-write");
    }
    cmd.push_str(&format!(" --out {}", args.out.display()));
    eprintln!(
        "this xft was built without the `bench` feature; the suite lives in the benches crate:\n  {cmd}\nor build xft with `--features bench`"
    );
    Ok(ExitCode::FAILURE)
}
