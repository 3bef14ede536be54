//! `xft`: XMPP file transfer from the command line: Jingle File Transfer (XEP-0234 over
//! XEP-0260 and XEP-0261) and SI file transfer (XEP-0095/0096), over SOCKS5 Bytestreams
//! (XEP-0065) and In-Band Bytestreams (XEP-0047).
//!
//! ```text
//! cargo run --release -p xft -- demo                      # no server: every method, both stacks
//! xft send --server 127.0.0.1:5222 --plaintext --jid alice@localhost --to bob@localhost/x FILE
//! xft recv --server 127.0.0.1:5222 --plaintext --jid bob@localhost/x --dir inbox --count 1
//! xft proxy --server 127.0.0.1:5347 --component-jid proxy.localhost --secret S --listen 127.0.0.1:7777
//! xft bench --quick                                       # with --features bench
//! ```
//!
//! Login settings come from the flags, then the environment (`XFT_PASSWORD`), then the
//! config file (`~/.config/xft/config.toml`, see the `settings` module); `--plaintext` is refused
//! unless the server address is loopback. `--json` prints one result object per transfer,
//! described field by field in `docs/json.md`. `xft completions SHELL` and `xft man` print
//! shell completions and a man page generated from these definitions.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

mod args;
mod demo;
mod log;
mod method;
mod net;
mod progress;
mod proxy;
mod pull;
mod report;
mod settings;
mod size;
mod timeline;

use args::{RecvArgs, SendArgs};

/// An error for the command's top level.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// XMPP file transfer: Jingle (XEP-0234/0260/0261) and SI (XEP-0095/0096) over SOCKS5
/// (XEP-0065) and IBB (XEP-0047).
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
    /// Entities and a proxy in one process, one file by every method of both stacks (Jingle
    /// and SI), verified; no server.
    Demo(DemoArgs),
    /// Send files to a peer through a real server.
    Send(SendArgs),
    /// Receive files through a real server.
    Recv(RecvArgs),
    /// Run the SOCKS5 proxy (XEP-0065) as a XEP-0114 component.
    Proxy(ProxyArgs),
    /// The throughput benchmarks (the benches crate's suite; build with `--features bench`).
    Bench(BenchArgs),
    /// Print shell completions for SHELL on stdout (for example
    /// `xft completions bash > ~/.local/share/bash-completion/completions/xft`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `xft man > xft.1; man ./xft.1`; `xft man recv`
    /// prints xft-recv(1).
    Man {
        /// A subcommand's page instead of xft(1).
        subcommand: Option<String>,
    },
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
    /// Only this stack (repeatable): `jingle`, `si`; `auto`, the default, runs both.
    #[arg(long = "stack", value_enum)]
    stacks: Vec<args::StackChoice>,
    /// IBB block size, used for every chunk (default: open at 65535 and pick the chunk
    /// size from the acknowledgement rate).
    #[arg(long)]
    block_size: Option<u16>,
    /// Print one JSON object per transfer instead of the table.
    #[arg(long)]
    json: bool,
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
    // Neither needs a runtime nor a network.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man { subcommand } => return man(subcommand.as_deref()),
        _ => {}
    }
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
            Command::Completions { .. } | Command::Man { .. } => Ok(ExitCode::SUCCESS),
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

/// `xft completions SHELL`.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(shell, &mut Cli::command(), "xft", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `xft man [SUBCOMMAND]`.
fn man(subcommand: Option<&str>) -> ExitCode {
    let mut cmd = Cli::command();
    // Built, so that global flags show on the subcommands' pages too.
    cmd.build();
    let page = match subcommand {
        None => clap_mangen::Man::new(cmd),
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => {
                let sub = sub.clone().version(env!("CARGO_PKG_VERSION"));
                clap_mangen::Man::new(sub).title(format!("xft-{name}"))
            }
            None => {
                eprintln!("xft: no subcommand {name:?}");
                return ExitCode::from(2);
            }
        },
    };
    match page.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xft: cannot write the man page: {e}");
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
